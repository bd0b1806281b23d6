"""Plots of one beam-damage run: resolution, Bragg spot intensity and FRC/FRPR against dose."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

from napari_cryomat.core.dose import CRITERIA
from napari_cryomat.widgets._base import EmptyPlotNote, legend_html, room_for_axis_label
from napari_cryomat.widgets.beam_damage._model import DamageRun

__all__ = ["DamagePlots"]

#: what the plots ask for; pyqtgraph's own 640x480 would widen the whole dock area
PLOTS_SIZE_HINT = (300, 240)
#: what each plot says while it is empty (before a first run; the Bragg plot also after a run without spots)
NOTES = {
    "resolution": "Press Run: the resolution reached at each cumulative dose, by three criteria, appears here.",
    "bragg": "Press Run: each Bragg spot's intensity against dose, with its exponential fade (critical dose), "
             "appears here.",
    "rings": "Press Run: the FRC and FRPR curves of each dose appear here.",
}
NO_BRAGG_SPOTS = ("No Bragg spot stands out of this series' power spectrum: nothing to follow (an amorphous or too "
                  "noisy sample).")
COLOURS = {"FRC 0.5": "#4aa3ff", "FRC 0.143": "#5fd35f", "FRPR 45°": "#ff6060"}


class DamagePlots(QWidget):
    """Three tabbed pyqtgraph plots."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        import pyqtgraph as pg

        self.tabs = QTabWidget()
        self.resolution_plot = pg.PlotWidget()
        self.resolution_plot.setLabel("left", "resolution (Å)")
        self.bragg_plot = pg.PlotWidget()
        self.bragg_plot.setLabel("left", "Bragg intensity / I0")
        # the legends under the plots: inside, in a corner, the resolution legend covered the points at 60-77 e/Å²
        # (data fill every corner of these plots: the resolution rises with dose towards the top right)
        self.legends = {"resolution": QLabel(), "bragg": QLabel()}
        for label in self.legends.values():
            label.setTextFormat(Qt.RichText)
            label.setWordWrap(True)
        self.rings_plot = pg.PlotWidget()
        self.rings_plot.setLabel("bottom", "spatial frequency (1/Å)")
        self.rings_plot.setLabel("left", "FRC (FRPR / 180°, dashed)")
        for plot, name in ((self.resolution_plot, "Resolution"), (self.bragg_plot, "Bragg spots"),
                           (self.rings_plot, "FRC / FRPR")):
            plot.setBackground("k")
            plot.setMinimumHeight(120)
            room_for_axis_label(plot)
            for axis in ("bottom", "left"):
                plot.getAxis(axis).enableAutoSIPrefix(False)
            legend = self.legends.get("resolution" if plot is self.resolution_plot else
                                      "bragg" if plot is self.bragg_plot else "")
            if legend is None:
                self.tabs.addTab(plot, name)
                continue
            page = QWidget()
            page_layout = QVBoxLayout(page)
            page_layout.setContentsMargins(0, 0, 0, 0)
            page_layout.setSpacing(2)
            page_layout.addWidget(plot, 1)
            page_layout.addWidget(legend)
            self.tabs.addTab(page, name)
        self.notes = {key: EmptyPlotNote(plot, NOTES[key]) for key, plot in
                      (("resolution", self.resolution_plot), ("bragg", self.bragg_plot), ("rings", self.rings_plot))}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(*PLOTS_SIZE_HINT)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt name)
        return False

    def clear(self) -> None:
        for plot in (self.resolution_plot, self.bragg_plot, self.rings_plot):
            plot.clear()
        for label in self.legends.values():
            label.setText("")
        for note in self.notes.values():
            note.update()

    def draw(self, run: DamageRun) -> None:
        import pyqtgraph as pg

        self.clear()
        s = run.series
        dose_label = f"cumulative dose ({'e/Å²' if s.dose_unit == 'e/Å²' else 'frames'})"
        for plot in (self.resolution_plot, self.bragg_plot):
            plot.setLabel("bottom", dose_label)
        for criterion in CRITERIA:
            values = s.resolution[criterion]
            ok = np.isfinite(values)
            self.resolution_plot.plot(s.dose[ok], values[ok], pen=pg.mkPen(COLOURS[criterion], width=2),
                                      symbol="o", symbolSize=5, symbolBrush=COLOURS[criterion], name=criterion)
        if run.request.params.budget_resolution > 0:
            self.resolution_plot.addItem(pg.InfiniteLine(pos=run.request.params.budget_resolution, angle=0,
                                                         pen=pg.mkPen("w", style=Qt.DashLine)))
        for i, shell in enumerate(s.shells):
            colour = pg.intColor(i, hues=max(len(s.shells), 2))
            norm = shell.fit.i0 if shell.fit is not None and shell.fit.i0 > 0 else max(shell.intensity.max(), 1e-30)
            self.bragg_plot.plot(s.frame_dose, shell.intensity / norm, pen=None, symbol="o", symbolSize=4,
                                 symbolBrush=colour, name=f"{shell.d_spacing:.2f} Å")
            if shell.fit is not None:
                d = np.linspace(0, s.frame_dose[-1], 100)
                self.bragg_plot.plot(d, shell.fit.curve(d) / norm, pen=pg.mkPen(colour, width=2))
        self.bragg_plot.addItem(pg.InfiniteLine(pos=np.exp(-1), angle=0, pen=pg.mkPen("w", style=Qt.DotLine)))
        hues = max(len(s.dose), 2)
        for k in range(len(s.dose)):
            colour = pg.intColor(k, hues=hues)
            self.rings_plot.plot(s.frequency, s.frc[k], pen=pg.mkPen(colour, width=1))
            self.rings_plot.plot(s.frequency, s.frpr[k] / 180.0, pen=pg.mkPen(colour, width=1, style=Qt.DashLine))
        for level in (0.5, 0.143, 45.0 / 180.0):
            self.rings_plot.addItem(pg.InfiniteLine(pos=level, angle=0, pen=pg.mkPen("#888", style=Qt.DotLine)))
        self.notes["bragg"].say(NOTES["bragg"] if s.shells else NO_BRAGG_SPOTS)
        self.legends["resolution"].setText(legend_html([(c, COLOURS[c], "&#8212;&#9679;") for c in CRITERIA]))
        self.legends["bragg"].setText(legend_html(
            [(f"{shell.d_spacing:.2f} Å", pg.intColor(i, hues=max(len(s.shells), 2)).name(), "&#9679;")
             for i, shell in enumerate(s.shells)]))
        for note in self.notes.values():
            note.update()

