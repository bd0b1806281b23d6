"""PCA denoising: Poisson-normalised PCA of the SI with its scree plot, and the SI rebuilt from
the first components as a new (hidden) layer. Both run in the tool's :class:`TaskRunner`."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import EventLinks, TaskRunner, hbox
from napari_cryomat.widgets.spectrum._jobs import compute_denoised, compute_pca
from napari_cryomat.widgets.spectrum._model import SpectrumModel
from napari_cryomat.widgets.spectrum._view_parts import CompactPlot, run_request

__all__ = ["PcaPanel"]

#: components kept by a PCA run (the scree plot shows these plus the range finder's oversampling)
MAX_COMPONENTS = 32


class PcaPanel(QWidget):
    """PCA (scree) → components (suggested: above the noise floor) → Add denoised SI."""

    def __init__(self, model: SpectrumModel, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.runner = runner
        self.links = EventLinks(self)
        self.pca_button = QPushButton("PCA (scree)")
        self.pca_button.setToolTip("Poisson-normalised PCA (randomised SVD) of the spectrum image; scree plot below")
        self.pca_spin = QSpinBox()
        self.pca_spin.setRange(1, 64)
        self.pca_spin.setValue(6)
        self.pca_apply = QPushButton("Add denoised SI")
        self.pca_apply.setEnabled(False)
        self.scree = CompactPlot(120)
        self.scree.setLogMode(y=True)
        self.scree.setLabel("bottom", "component")
        self.scree.setLabel("left", "variance")
        self.scree.getAxis("left").enableAutoSIPrefix(False)
        self.scree.setVisible(False)  # shown once a PCA has run
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(hbox(self.pca_button, QLabel("components"), self.pca_spin))
        layout.addWidget(self.pca_apply)
        layout.addWidget(self.scree)
        self.pca_button.clicked.connect(self.run_pca)
        self.pca_apply.clicked.connect(self.add_denoised)
        self.links.connect(model.pca_changed, self._on_pca_changed)

    def run_pca(self):
        """PCA of the chosen SI (a worker); returns the worker or None with a message."""
        return run_request(self.runner, lambda: self.model.pca_request(MAX_COMPONENTS), compute_pca,
                           on_done=self.model.set_pca, label="PCA")

    def add_denoised(self):
        """The SI of the last PCA run rebuilt from the chosen number of components, as a layer."""
        n_components = self.pca_spin.value()
        return run_request(self.runner, lambda: self.model.denoise_request(n_components), compute_denoised,
                           on_done=self.model.add_denoised, label="Denoise")

    def _on_pca_changed(self) -> None:
        run = self.model.pca
        variance = run.result.explained_variance[:100]
        self.scree.clear()
        self.scree.setVisible(True)
        self.scree.setTitle(f"<small>PCA of {run.source.name}</small>")
        self.scree.plot(np.arange(1, variance.size + 1), np.maximum(variance, 1e-30), pen=None, symbol="o",
                        symbolSize=4)
        self.pca_spin.setMaximum(run.result.factors.shape[0])
        self.pca_spin.setValue(run.suggested)
        self.pca_apply.setEnabled(True)
