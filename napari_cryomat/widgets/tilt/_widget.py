"""Dock widget "Tilt series": align, drop bad tilts, preview (WBP), reconstruct (SIRT), quantify.

What an IMOD user does in etomo's steps, in one window: coarse and fine alignment (fiducial-free),
the residuals per tilt with the bad ones excluded, a quick back-projection, the final SIRT volume
(calibrated in Å, so the tomogram browser opens it), the missing wedge on its Fourier transform,
and numbers from a segmentation of it (local thickness, porosity, particle-to-support distances).

Every computation runs in the TaskRunner (progress, Cancel); Cancel or an error leaves the viewer
as it was, because layers are written only when a run finishes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
from qtpy.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from napari_cryomat.io.tilt import read_tilt_angles
from napari_cryomat.widgets._base import EventLinks, ScrollPanel, TaskRunner, show_error, show_info, show_warning
from napari_cryomat.widgets._base.layers import image_data
from napari_cryomat.widgets.tilt._model import (
    TiltModel,
    angles_of,
    pixel_size_for,
    run_align,
    run_quantify,
    run_reconstruct,
    run_threshold,
)
from napari_cryomat.widgets.tilt._panels import AlignPanel, QuantPanel, ReconPanel, SourcePanel

if TYPE_CHECKING:
    import napari

__all__ = ["TiltSeriesWidget"]


class TiltSeriesWidget(QWidget):
    """From a tilt series to a calibrated tomogram and numbers.

    Attributes
    ----------
    model : TiltModel
        State (alignment, kept tilts, last volume and quantification); scripts can drive it.
    source, align, recon, quant : the four sections of the dock.
    runner : TaskRunner
        Progress bar and Cancel of every step.
    angles : ndarray or None
        Tilt angles (degrees) of the chosen stack.
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = TiltModel(napari_viewer)
        self.source = SourcePanel(napari_viewer)
        self.align = AlignPanel()
        self.recon = ReconPanel()
        self.quant = QuantPanel(napari_viewer)
        self.runner = TaskRunner("Tilt series")
        self.angles: Optional[np.ndarray] = None

        panel = ScrollPanel()
        for section in (self.source, self.align, self.recon, self.quant):
            panel.add(section)
        panel.finish()
        panel.add_footer(self.runner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel)

        self.links = EventLinks(self)
        self.links.connect(self.model.aligned, lambda run: self.align.show_run(run, self.model.kept))
        self.links.connect(self.model.kept_changed, lambda: self.align.show_kept(self.model.run, self.model.kept))
        self.links.connect(self.model.reconstructed, self.recon.show_reconstruction)
        self.links.connect(self.model.quantified, self.quant.show_quantification)
        self.source.layer_combo.currentIndexChanged.connect(self._layer_changed)
        self.source.angles_button.clicked.connect(self._choose_angles_file)
        self.align.align_button.clicked.connect(self.run_align)
        self.align.kept_toggled.connect(self.model.set_kept)
        self.align.drop_button.clicked.connect(self._drop_outliers)
        self.recon.preview_button.clicked.connect(lambda: self.run_reconstruct("wbp"))
        self.recon.reconstruct_button.clicked.connect(lambda: self.run_reconstruct("sirt"))
        self.quant.otsu_button.clicked.connect(self.run_threshold)
        self.quant.quantify_button.clicked.connect(self.run_quantify)
        self._layer_changed()

    # -- source ----------------------------------------------------------------------------------
    def _layer_changed(self, *_args) -> None:
        layer = self.source.layer()
        self.angles = None
        if layer is None:
            self.source.show_angles(None, "no stack")
            self.source.pixel_size.setValue(self.source.pixel_size.minimum())  # "unknown", not the last stack's
            return
        self.source.pixel_size.setValue(pixel_size_for(layer))
        try:
            angles, origin = angles_of(layer)
        except ValueError as exc:
            self.source.show_angles(None, str(exc))
            return
        self.angles = angles
        self.source.show_angles(angles, origin)

    def load_angles(self, path: str | Path) -> None:
        """Read the tilt angles of the chosen stack from a .tlt/.rawtlt/.mdoc file (or an MRC header)."""
        try:
            angles = read_tilt_angles(path)
        except ValueError as exc:
            show_error(str(exc))
            return
        self.angles = angles
        self.source.show_angles(angles, Path(path).name)

    def _choose_angles_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Tilt angles", "", "Tilt angles (*.tlt *.rawtlt *.mdoc);;All (*)")
        if path:
            self.load_angles(path)

    def _need_angles(self) -> Optional[np.ndarray]:
        if self.angles is None:
            show_error("No tilt angles: choose a .tlt, .rawtlt or .mdoc file (Angles file…).")
        return self.angles

    # -- actions -----------------------------------------------------------------------------
    def run_align(self) -> None:
        """Align the chosen stack in the background; the residuals and tilt list follow."""
        if self._need_angles() is None:
            return
        try:
            request = self.model.align_request(self.source.layer(), self.angles, self.source.pixel_size.value(),
                                               **self.align.axis_values())
        except ValueError as exc:
            show_error(str(exc))
            return
        self.runner.start(run_align, request, on_done=self._aligned, label="Aligning")

    def _aligned(self, run) -> None:
        """Keep the alignment; what it warned of (an unreliable blind axis) is shown, without blocking,
        as a napari warning and under the Align button next to the result."""
        self.model.accept_alignment(run)
        for note in run.notes:
            show_warning(note.message)

    def _drop_outliers(self) -> None:
        dropped = self.model.drop_outliers()
        show_info(f"Dropped {len(dropped)} tilt(s): {dropped}" if dropped else "No tilt stands out.")

    def run_reconstruct(self, method: str = "sirt") -> None:
        """Reconstruct the kept tilts: ``"wbp"`` (preview) or ``"sirt"``, in the background."""
        if self._need_angles() is None:
            return
        try:
            request = self.model.recon_request(self.source.layer(), self.angles, self.source.pixel_size.value(),
                                               method=method, invert=self.recon.invert.isChecked(),
                                               **self.recon.values())
        except ValueError as exc:
            show_error(str(exc))
            return
        if request.alignment is None:
            show_info("Not aligned yet: the tilts are reconstructed as they are.")
        label = "WBP preview" if method == "wbp" else "SIRT"
        self.runner.start(run_reconstruct, request, on_done=self._reconstructed, label=label)

    def _reconstructed(self, rec) -> None:
        new = rec.request.layer_name not in self.viewer.layers
        layer = self.model.accept_reconstruction(rec)
        self.quant.volume_combo.set_layer(layer)
        if new:  # show the middle section of a new volume, not wherever the tilt slider was
            axis = self.viewer.dims.ndim - 3
            self.viewer.dims.set_point(axis, float(layer.translate[0] + layer.scale[0] * (layer.data.shape[0] - 1) / 2))

    def run_threshold(self) -> None:
        """Otsu mask of the chosen volume, as a labels layer to quantify (or refine in Segmentation)."""
        volume = self.quant.volume_combo.layer()
        if volume is None:
            show_error("Choose a volume (reconstruct one first).")
            return
        self.runner.start(run_threshold, image_data(volume), on_done=lambda mask: self._masked(volume, mask),
                          label="Otsu mask")

    def _masked(self, volume, mask) -> None:
        layer = self.model.accept_mask(volume, mask)
        self.quant.mask_combo.set_layer(layer)

    def run_quantify(self) -> None:
        """Local thickness, porosity and particle distances of the chosen structure, in the background."""
        try:
            request = self.model.quant_request(self.quant.mask_combo.layer(), self.quant.particles_layer())
        except ValueError as exc:
            show_error(str(exc))
            return
        self.runner.start(run_quantify, request, on_done=self.model.accept_quantification, label="Quantify")

    @property
    def idle(self) -> bool:
        return not self.runner.busy
