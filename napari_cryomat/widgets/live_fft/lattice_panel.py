"""Lattice detection and indexing, picked spots and the Bragg filter: a form that gathers the
parameters, asks the model for jobs and shows the detection's summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QLabel, QPushButton, QWidget

from napari_cryomat.widgets._base import EventLinks, Section
from napari_cryomat.widgets.live_fft._model import FILTER_MODES, LiveFFTModel

__all__ = ["LatticePanel"]

NO_LATTICE = "No lattice yet. Auto-detect, or click spots in the FFT to pick them."


def grid_form() -> tuple[QWidget, QGridLayout]:
    """A widget with a margin-less grid layout: the body of a panel's Section."""
    form = QWidget()
    grid = QGridLayout(form)
    grid.setContentsMargins(0, 0, 0, 0)
    return form, grid


def reciprocal_spin(value: float, minimum: float, maximum: float, tooltip: str) -> QDoubleSpinBox:
    """A spin box for a radius in reciprocal space (1/Å)."""
    spin = QDoubleSpinBox()
    spin.setDecimals(3)
    spin.setRange(minimum, maximum)
    spin.setSingleStep(0.005)
    spin.setValue(value)
    spin.setSuffix(" 1/Å")
    spin.setToolTip(tooltip)
    return spin


class LatticePanel(Section):
    """Auto-detect, min SNR, clear picks, spots as layers, Bragg filter (spot set, mask radius)."""

    def __init__(self, model: LiveFFTModel, start: Callable):
        super().__init__("Lattice and Bragg filter")
        self.model = model
        self._start = start

        self.detect_button = QPushButton("Auto-detect lattice")
        self.detect_button.setToolTip("Find and index the lattice and superlattice spots in the ROI")
        self.detect_button.clicked.connect(self.detect)
        self.min_snr = QDoubleSpinBox()
        self.min_snr.setRange(3, 1e4)
        self.min_snr.setValue(25)
        self.min_snr.setToolTip("Spot threshold: power over the rotationally averaged background")
        self.clear_picks_button = QPushButton("Clear picks")
        self.clear_picks_button.clicked.connect(model.clear_picks)
        self.as_layers = QCheckBox("spots also as napari layers (1/Å)")
        self.as_layers.setToolTip(
            "Auto-detect also adds the ROI's spectrum as an image layer and the spots as Points layers,\n"
            "calibrated in 1/Å around the world origin, in a napari window of their own (reciprocal space)"
        )
        self.summary = QLabel(NO_LATTICE)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self.filter_mode = QComboBox()
        self.filter_mode.addItems(FILTER_MODES)
        self.filter_mode.setToolTip("Spots the filter lets through (with their Friedel mates)")
        self.filter_radius = reciprocal_spin(0.03, 0.001, 2.0, "Soft mask radius; resolution ≈ 1/radius Å")
        self.bragg_button = QPushButton("Bragg filter")
        self.bragg_button.clicked.connect(self.bragg_filter)

        form, grid = grid_form()
        grid.addWidget(self.detect_button, 0, 0)
        grid.addWidget(QLabel("min SNR"), 0, 1, Qt.AlignRight)
        grid.addWidget(self.min_snr, 0, 2)
        grid.addWidget(self.as_layers, 1, 0, 1, 2)
        grid.addWidget(self.clear_picks_button, 1, 2)
        grid.addWidget(self.summary, 2, 0, 1, 3)
        grid.addWidget(self.bragg_button, 3, 0)
        grid.addWidget(self.filter_mode, 3, 1)
        grid.addWidget(self.filter_radius, 3, 2)
        self.add(form)
        self.links = EventLinks(self)
        self.links.connect(model.lattice_changed, self._show_detection)

    def detect(self):
        """Auto-detect the lattice in the ROI (worker)."""
        min_snr, as_layers = self.min_snr.value(), self.as_layers.isChecked()
        return self._start(lambda: replace(self.model.detect_job(min_snr, as_layers=as_layers),
                                           on_error=self._detection_failed))

    def bragg_filter(self):
        """Bragg-filter the ROI (or whole frame) through the chosen spots (worker)."""
        mode, radius = self.filter_mode.currentText(), self.filter_radius.value()
        return self._start(lambda: self.model.bragg_job(mode, radius))

    def _detection_failed(self, exc: BaseException) -> None:
        """Say why here too: the notification is cut to a line, and what to change is at its end."""
        if isinstance(exc, ValueError):
            self.summary.setText(str(exc))

    def _show_detection(self, detection) -> None:
        self.summary.setText(NO_LATTICE if detection is None else detection.summary())
