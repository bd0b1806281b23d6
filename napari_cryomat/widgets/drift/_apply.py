"""The "Apply these shifts to layer …" control of the drift tool (view; the work is in ``_apply_model``)."""

from __future__ import annotations

from typing import Optional

import numpy as np
from qtpy.QtWidgets import QCheckBox, QPushButton, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import Section, hbox
from napari_cryomat.widgets._base.layers import LayerCombo

__all__ = ["ApplyPanel"]


class ApplyPanel(Section):
    """"Apply these shifts to layer …": a layer picker, "sum frames", and Apply (enabled after a run)."""

    def __init__(self, viewer, parent: Optional[QWidget] = None):
        super().__init__("Apply shifts to another stack", expanded=False, parent=parent)
        import napari

        self.layers = LayerCombo(viewer, (napari.layers.Image,), predicate=lambda layer: np.ndim(layer.data) >= 3,
                                 placeholder="no stack", why="No stack (3D or more) in the viewer to apply the shifts to.")
        self.layers.setToolTip("A stack with the same number of frames, e.g. the EDS/EELS frames recorded with "
                               "the HAADF frames that were aligned ((T, E, Y, X) or (T, Y, X)).")
        self.summed = QCheckBox("Sum the frames")
        self.summed.setChecked(True)
        self.summed.setToolTip("Checked: one drift-corrected sum (a spectrum image). Unchecked: the aligned "
                               "frames, lazily.")
        self.apply_button = QPushButton("Apply these shifts")
        self.apply_button.setEnabled(False)
        box = QWidget()
        inner = QVBoxLayout(box)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(hbox(self.layers, stretch_last=True))
        inner.addWidget(hbox(self.summed, self.apply_button, stretch_last=False))
        self.layout_.addWidget(box)

    def enable(self, _run=None) -> None:
        self.apply_button.setEnabled(True)
