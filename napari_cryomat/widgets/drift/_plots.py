"""Plots of one alignment run: trajectory, residuals, FRC curves, resolution against dose, and the
shifts as a table. A series of volumes shows (dz, dy, dx) against the frame in the first tab.

Everything drawn (axis labels, legend units, the caption) comes from the run, so the plots keep
describing the run they show when the controls change afterwards.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.widgets._base import EmptyPlotNote, EmptyViewNote, room_for_axis_label
from napari_cryomat.widgets.drift._run import AlignRun
from napari_cryomat.widgets.drift._volume import AXES, VolumeRun

__all__ = ["DriftPlots"]

PLOT_MIN_HEIGHT = 120
#: what the plots ask for: pyqtgraph's own 640x480 would widen the whole dock area and, through
#: the word-wrapped labels' height-for-width, make the scroll area as tall as that
PLOTS_SIZE_HINT = (300, 240)
#: what each plot says before a first run
NOTES = {
    "traj": "Press Align: the path of the drift (Å), frame by frame from the first (square), appears here.",
    "resid": "Press Align: how far each frame's pairwise measurements disagree with the solved path (Å) "
             "appears here; a tall bar flags a frame to check.",
    "frc": "Press Align: the even/odd FRC of the aligned sum at each cumulative dose appears here.",
    "res": "Press Align: the resolution (FRC 0.143) against cumulative dose appears here.",
}
#: what the table says before a first run
TABLE_NOTE = "Press Align: each frame's shift (Å) from the first appears here."


class DriftPlots(QWidget):
    """Four tabbed pyqtgraph plots and a caption naming the run they show."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        import pyqtgraph as pg

        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: grey;")
        self.tabs = QTabWidget()
        self.traj_plot = pg.PlotWidget()
        self.traj_legend = self.traj_plot.addLegend(offset=(-4, 4), labelTextSize="7pt", colCount=3,
                                                    brush=(0, 0, 0, 170))
        self.resid_plot = pg.PlotWidget()
        self.resid_plot.setLabel("bottom", "frame")
        self.resid_plot.setLabel("left", "residual", units="Å")
        self.frc_plot = pg.PlotWidget()
        self.frc_plot.setLabel("bottom", "spatial frequency (1/Å)")
        self.frc_plot.setLabel("left", "FRC even/odd")
        # up to six doses: three columns along the top keep the legend off most of the curves
        self.frc_legend = self.frc_plot.addLegend(offset=(-4, 4), labelTextSize="7pt", colCount=3,
                                                  brush=(0, 0, 0, 170), verSpacing=-6)
        self.res_plot = pg.PlotWidget()
        self.res_plot.setLabel("left", "FRC 0.143 resolution (Å)")
        self.res_plot.setLabel("bottom", "cumulative dose")
        for plot, name in ((self.traj_plot, "Trajectory"), (self.resid_plot, "Residuals"),
                           (self.frc_plot, "FRC"), (self.res_plot, "Resolution")):
            plot.setBackground("k")
            plot.setMinimumHeight(PLOT_MIN_HEIGHT)
            room_for_axis_label(plot)
            for axis in ("bottom", "left"):
                plot.getAxis(axis).enableAutoSIPrefix(False)  # 0.25 1/Å, not "250 (x0.001)"
            self.tabs.addTab(plot, name)
        self.notes = {key: EmptyPlotNote(getattr(self, f"{key}_plot"), text) for key, text in NOTES.items()}
        self.table = QTableWidget(0, 3)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("Shift of each frame's content relative to the first frame (Å); the aligned frame "
                              "is moved back by it.")
        self.tabs.addTab(self.table, "Table")
        self.table_note = EmptyViewNote(self.table, TABLE_NOTE)
        self._trajectory_axes(volume=False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.caption)
        layout.addWidget(self.tabs, 1)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(*PLOTS_SIZE_HINT)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt name)
        return False  # else the layout asks the plots' own (large) hints, not sizeHint()

    def clear(self) -> None:
        for plot in (self.traj_plot, self.resid_plot, self.frc_plot, self.res_plot):
            plot.clear()
        self.table.setRowCount(0)
        self.caption.setText("")
        self._update_notes()

    def _update_notes(self) -> None:
        for note in self.notes.values():
            note.update()

    def draw(self, run: AlignRun | VolumeRun) -> None:
        """Show ``run``: its trajectory (Å), residuals, FRC curves and resolution against its dose axis;
        for a series of volumes (dz, dy, dx) against the frame. The table lists the shifts in Å."""
        self.clear()
        volume = isinstance(run, VolumeRun)
        self._trajectory_axes(volume)
        if volume:
            self.caption.setText(f"{run.request.source_name}: volumes, {run.params.describe()}")
            self._draw_volume_shifts(run)
        else:
            self.caption.setText(f"{run.request.source_name}: {run.params.describe()}")
            self._draw_trajectory(run)
            self._draw_frc(run)
        self._fill_table(run.shifts_angstrom if volume else run.drift.shifts_angstrom)
        self._update_notes()

    def _trajectory_axes(self, volume: bool) -> None:
        """The first tab: y against x drift (Å, y down as the image) or, for volumes, shifts against frame."""
        plot = self.traj_plot
        plot.setLabel("bottom", "frame" if volume else "x drift", units=None if volume else "Å")
        plot.setLabel("left", "shift" if volume else "y drift", units="Å")
        plot.invertY(not volume)
        plot.setAspectLocked(not volume)
        self.traj_legend.setVisible(volume)
        self.tabs.setTabText(0, "Shifts" if volume else "Trajectory")
        for i in (1, 2, 3):  # residuals and FRC: (T, Y, X) stacks only
            self.tabs.setTabEnabled(i, not volume)

    def _fill_table(self, shifts_angstrom: np.ndarray) -> None:
        axes = AXES[-shifts_angstrom.shape[1]:]
        self.table.setColumnCount(1 + len(axes))
        self.table.setHorizontalHeaderLabels(["frame", *(f"{a} (Å)" for a in axes)])
        self.table.setRowCount(len(shifts_angstrom))
        for i, row in enumerate(shifts_angstrom):
            self.table.setItem(i, 0, QTableWidgetItem(str(i)))
            for j, value in enumerate(row):
                self.table.setItem(i, j + 1, QTableWidgetItem(f"{value:.2f}"))
        self.table.resizeColumnsToContents()

    def _draw_volume_shifts(self, run: VolumeRun) -> None:
        import pyqtgraph as pg

        frames = np.arange(run.n_frames)
        for axis, values, colour in zip(AXES, run.shifts_angstrom.T, ("m", "y", "c")):
            self.traj_plot.plot(frames, values, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                                symbolBrush=colour, name=axis)

    def _draw_trajectory(self, run: AlignRun) -> None:
        import pyqtgraph as pg

        shifts = run.drift.shifts_angstrom
        self.traj_plot.plot(shifts[:, 1], shifts[:, 0], pen=pg.mkPen("c", width=2), symbol="o", symbolSize=5,
                            symbolBrush="c")
        # the first frame, where the trajectory starts
        self.traj_plot.plot([shifts[0, 1]], [shifts[0, 0]], pen=None, symbol="s", symbolSize=9, symbolBrush="y")
        residuals = run.drift.residuals * run.drift.pixel_size
        self.resid_plot.addItem(pg.BarGraphItem(x=np.arange(len(residuals)), height=residuals, width=0.8, brush="m"))

    def _draw_frc(self, run: AlignRun) -> None:
        import pyqtgraph as pg

        frc, params = run.frc, run.params
        colours = [pg.intColor(i, hues=max(len(frc.curves), 2)) for i in range(len(frc.curves))]
        for colour, curve, dose in zip(colours, frc.curves, frc.dose):
            self.frc_plot.plot(frc.frequency, curve, pen=pg.mkPen(colour, width=2), name=f"{dose:g}{params.dose_unit}")
        self.frc_plot.addItem(pg.InfiniteLine(pos=frc.threshold, angle=0, pen=pg.mkPen("w", style=Qt.DashLine)))
        self.res_plot.setLabel("bottom", params.dose_label)
        ok = np.isfinite(frc.resolution)
        self.res_plot.plot(frc.dose[ok], frc.resolution[ok], pen=pg.mkPen("y", width=2), symbol="o", symbolSize=6)
