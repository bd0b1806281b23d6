"""Strain (geometric phase analysis) and periodic-lattice-displacement maps: the mask radius, two
buttons, and what the last runs measured."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QPushButton

from napari_cryomat.widgets._base import EventLinks, Section, show_info
from napari_cryomat.widgets.live_fft._model import LiveFFTModel
from napari_cryomat.widgets.live_fft.lattice_panel import grid_form, reciprocal_spin

__all__ = ["GPAPanel"]


class GPAPanel(Section):
    """GPA strain maps (mask radius) and the PLD map of the first superlattice modulation."""

    def __init__(self, model: LiveFFTModel, start: Callable):
        super().__init__("Strain (GPA) and PLD")
        self.model = model
        self._start = start
        self.gpa_radius = reciprocal_spin(0.04, 0.002, 1.0, "GPA mask radius; strain resolution ≈ 1/radius Å")
        self.gpa_button = QPushButton("GPA strain maps")
        self.gpa_button.setToolTip("exx, eyy, exy and rotation from the lattice basis (or the first two picks)")
        self.gpa_button.clicked.connect(self.run_gpa)
        self.pld_button = QPushButton("PLD map")
        self.pld_button.setToolTip("Amplitude (Å) and direction of the periodic lattice displacement, from the "
                                   "superlattice satellites of the detected lattice")
        self.pld_button.clicked.connect(self.run_pld)
        self.results = QLabel("")
        self.results.setWordWrap(True)
        self.results.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.results.hide()

        form, grid = grid_form()
        grid.addWidget(self.gpa_button, 0, 0)
        grid.addWidget(QLabel("mask"), 0, 1, Qt.AlignRight)
        grid.addWidget(self.gpa_radius, 0, 2)
        grid.addWidget(self.pld_button, 1, 0)
        grid.addWidget(self.results, 2, 0, 1, 3)
        self.add(form)
        self.links = EventLinks(self)
        self.links.connect(model.gpa_changed, self._show_results)
        self.links.connect(model.pld_changed, self._on_pld)

    def run_gpa(self):
        """GPA of the ROI (or whole frame) with the lattice basis (worker)."""
        radius = self.gpa_radius.value()
        return self._start(lambda: self.model.gpa_job(radius))

    def run_pld(self):
        """PLD maps of the ROI (or whole frame) from the detected superlattice (worker)."""
        return self._start(self.model.pld_job)

    def _on_pld(self, run) -> None:
        self._show_results()
        show_info(run.summary())

    def _show_results(self, *_args) -> None:
        lines = [run.summary() for run in (self.model.gpa, self.model.pld) if run is not None]
        self.results.setText("\n".join(lines))
        self.results.setVisible(bool(lines))
