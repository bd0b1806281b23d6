"""Radial profile of the ROI's spectrum and Bragg-peak intensity through the frames (critical dose),
in one small plot labelled from the run it shows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QDoubleSpinBox, QLabel, QPushButton

from napari_cryomat.widgets._base import EventLinks, Section, room_for_axis_label
from napari_cryomat.widgets.live_fft._jobs import RadialProfile, SeriesRun
from napari_cryomat.widgets.live_fft._model import LiveFFTModel
from napari_cryomat.widgets.live_fft.lattice_panel import grid_form

__all__ = ["SeriesPanel"]

PLOT_MIN_HEIGHT = 120


class CompactPlot(pg.PlotWidget):
    """A plot that asks for little room (pyqtgraph's asks for 640x480) and shrinks to 120 px."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        room_for_axis_label(self)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(300, 160)


class SeriesPanel(Section):
    """Radial profile button; dose per frame and "Peak intensity vs frame"; the plot."""

    def __init__(self, model: LiveFFTModel, start: Callable, *, expanded: bool = False):
        super().__init__("Radial profile and dose series", expanded=expanded)
        self.model = model
        self._start = start
        self.radial_button = QPushButton("Radial profile")
        self.radial_button.setToolTip("Rotational average of the ROI's power spectrum (rings of amorphous "
                                      "or polycrystalline material)")
        self.radial_button.clicked.connect(self.run_radial_profile)
        self.dose_per_frame = QDoubleSpinBox()
        self.dose_per_frame.setRange(0.0, 1e4)
        self.dose_per_frame.setDecimals(2)
        self.dose_per_frame.setValue(0.0)
        self.dose_per_frame.setSuffix(" e/Å²")
        self.dose_per_frame.setSpecialValueText("unknown")
        self.dose_per_frame.setToolTip("Dose per frame; when set, a critical dose is fitted")
        self.series_button = QPushButton("Peak intensity vs frame")
        self.series_button.setToolTip("Intensity of the lattice spots (or picks) in the ROI, frame by frame")
        self.series_button.clicked.connect(self.run_series)

        self.plot = CompactPlot()
        self.plot.setMinimumHeight(PLOT_MIN_HEIGHT)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)  # keep 1/Å, not "(x0.001)"
        self.plot.hide()  # until there is something to show

        form, grid = grid_form()
        grid.addWidget(self.radial_button, 0, 0)
        grid.addWidget(self.series_button, 1, 0)
        grid.addWidget(QLabel("dose/frame"), 1, 1, Qt.AlignRight)
        grid.addWidget(self.dose_per_frame, 1, 2)
        grid.addWidget(self.plot, 2, 0, 1, 3)
        self.add(form)
        self.links = EventLinks(self)
        self.links.connect(model.profile_changed, self.show_run)

    def run_radial_profile(self):
        """Radial profile of the ROI's spectrum (worker)."""
        return self._start(self.model.radial_job)

    def run_series(self):
        """Bragg intensity of the lattice spots through the frames (worker)."""
        dose = self.dose_per_frame.value()
        return self._start(lambda: self.model.series_job(dose))

    def show_run(self, run) -> None:
        """Plot a :class:`RadialProfile` or a :class:`SeriesRun`, titled from its own parameters."""
        self.set_expanded(True)
        self.plot.show()
        self.plot.clear()
        if isinstance(run, RadialProfile):
            self._plot_radial(run)
        elif isinstance(run, SeriesRun):
            self._plot_series(run)

    def _plot_radial(self, profile: RadialProfile) -> None:
        self.plot.setLogMode(x=False, y=True)
        self.plot.setLabel("bottom", "|g| (1/Å)")
        self.plot.setLabel("left", "mean power")
        self.plot.plot(profile.g, np.maximum(profile.power, 1e-12), pen=pg.mkPen("w"))
        self.plot.setTitle(profile.title(), size="8pt")

    def _plot_series(self, run: SeriesRun) -> None:
        res = run.result
        self.plot.setLogMode(x=False, y=False)
        x = res.dose if res.dose is not None else np.arange(len(res.total))
        self.plot.setLabel("bottom", "cumulative dose (e/Å²)" if res.dose is not None else "frame")
        self.plot.setLabel("left", "Bragg intensity (norm.)")
        self.plot.plot(x, res.total, pen=None, symbol="o", symbolSize=6)
        if res.critical_dose is not None:
            xs = np.linspace(0, x[-1], 100)
            self.plot.plot(xs, np.exp(-xs / res.critical_dose), pen=pg.mkPen("y"))
        self.plot.setTitle(run.title(), size="8pt")
