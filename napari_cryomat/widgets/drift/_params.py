"""The drift tool's parameter form: which stack, its calibration, and how to align it.

It only gathers values (:meth:`ParametersPanel.values` gives an :class:`AlignParams`); the model
builds the request from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.io.spectral import is_spectrum_image_layer
from napari_cryomat.widgets._base import LayerCombo, Section
from napari_cryomat.widgets.drift._model import DriftModel
from napari_cryomat.widgets.drift._run import METHODS, PATCHES, AlignParams

if TYPE_CHECKING:
    import napari

__all__ = ["ParametersPanel"]


def _narrow(combo: QComboBox, characters: int = 14) -> QComboBox:
    """Let a combo box with long entries shrink with the dock (its popup still shows them whole)."""
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(characters)
    return combo


def _is_stack(layer) -> bool:
    """A (T, Y, X) stack (or (T, 1, Y, X): image frames beside an SI's) or a (T, Z, Y, X) series of volumes; not a
    spectrum image, whose first axis is energy ((E, Y, X): a Velox file's summed EDS was offered, first, beside its
    HAADF frames), nor its (T, E, Y, X) frames (they take the shifts of the HAADF frames under "Apply shifts to
    another stack")."""
    return layer.ndim in (3, 4) and not is_spectrum_image_layer(layer)


def _form(parent: QWidget) -> QFormLayout:
    form = QFormLayout(parent)
    form.setContentsMargins(0, 0, 0, 0)
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    return form


class ParametersPanel(QWidget):
    """Stack, pixel size, dose, local motion, and (folded) the correlation settings; the Align button."""

    def __init__(self, viewer: "napari.viewer.Viewer", parent: Optional[QWidget] = None):
        super().__init__(parent)
        from napari.layers import Image, Shapes

        self.layer_combo = LayerCombo(viewer, (Image,), predicate=_is_stack, placeholder="no stack of frames",
                                      why="No (T, Y, X) stack of frames in the viewer: open a movie (File > Open: "
                                          "MRC, TIFF, DM, EMD).")
        _narrow(self.layer_combo)
        self.layer_combo.setToolTip("A (T, Y, X) stack of frames (a movie, a fast STEM series, a time series) or a "
                                    "(T, Z, Y, X) time series of volumes (aligned in 3D: dz, dy, dx).")
        self.pixel_size = QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=1e5, value=1.0, suffix=" Å")
        self.pixel_size.setToolTip("Pixel size. Taken from the layer scale; change it if the layer is uncalibrated.")
        self.dose = QDoubleSpinBox(decimals=3, minimum=0, maximum=1e4, value=0, singleStep=0.1, suffix=" e/Å²")
        self.dose.setSpecialValueText("unknown")
        self.dose.setToolTip("Dose per frame, for dose weighting (Grant & Grigorieff 2015) and the FRC dose axis.")
        self.patches = QComboBox()
        self.patches.addItems(list(PATCHES))
        self.patches.setToolTip("Local (non-uniform) motion on a grid of patches, on top of the whole-frame drift.")

        self.bfactor = QDoubleSpinBox(decimals=0, minimum=1, maximum=1e5, value=150, singleStep=50, suffix=" Å²")
        self.bfactor.setToolTip("Low-pass exp(-B k²/4) on the correlations. 150 for movies; 500-2000 at very low dose.")
        self.max_shift = QDoubleSpinBox(decimals=1, minimum=0, maximum=1e6, value=0, suffix=" Å")
        self.max_shift.setSpecialValueText("auto (¼ frame)")
        self.max_shift.setToolTip("Largest drift searched between two frames. 0 = a quarter of the frame.")
        self.group = QSpinBox(minimum=0, maximum=50, value=0)
        self.group.setSpecialValueText("auto")
        self.group.setToolTip("Frames summed before correlating. auto picks the smallest that is above noise.")
        self.method = _narrow(QComboBox())
        self.method.addItems(list(METHODS))
        self.method.setToolTip("Low-dose movie: every pair of frames, then each frame against the sum of the "
                               "others. Time series: neighbouring frames only (the specimen may change).")

        self.track_region = QCheckBox("Track a region")
        self.track_region.setToolTip("Measure the drift of the rectangle drawn in a Shapes layer only (a feature "
                                     "that moves differently from the rest); the whole frames are aligned with it.")
        self.region_combo = _narrow(LayerCombo(viewer, (Shapes,)), 10)
        self.region_combo.setToolTip("Shapes layer whose first shape (its bounding box) is the region.")

        main = QWidget()
        form = _form(main)
        form.addRow("Stack", self.layer_combo)
        form.addRow("Pixel size", self.pixel_size)
        form.addRow("Dose per frame", self.dose)
        form.addRow("Local motion", self.patches)
        self.advanced = Section("Correlation settings", expanded=False)
        advanced = self.advanced.add(QWidget())
        form = _form(advanced)
        form.addRow("B-factor", self.bfactor)
        form.addRow("Max shift", self.max_shift)
        form.addRow("Group frames", self.group)
        form.addRow("Method", self.method)
        # the check box on a row of its own: as a form label it would widen the label column
        form.addRow(self.track_region)
        form.addRow("Shapes layer", self.region_combo)
        self.run_button = QPushButton("Align")
        self.run_button.setToolTip("Estimate the drift, then add the aligned stack and sums (runs in the background).")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(main)
        layout.addWidget(self.advanced)
        layout.addWidget(self.run_button)

        self.layer_combo.currentIndexChanged.connect(self._layer_changed)
        self._layer_changed()

    def layer(self):
        """The chosen stack layer, or None."""
        return self.layer_combo.layer()

    def values(self) -> AlignParams:
        """The parameters as the controls show them now."""
        return AlignParams(
            pixel_size=self.pixel_size.value(),
            bfactor=self.bfactor.value(),
            max_shift=self.max_shift.value() or None,
            group=self.group.value() or None,
            method=self.method.currentText(),
            patches=PATCHES[self.patches.currentText()],
            dose_per_frame=self.dose.value() or None,
            region=(self.region_combo.currentText() or None) if self.track_region.isChecked() else None,
        )

    def _layer_changed(self, *_args) -> None:
        layer = self.layer()
        if layer is None:
            return
        defaults = DriftModel.defaults_for(layer)
        if "pixel_size" in defaults:
            self.pixel_size.setValue(defaults["pixel_size"])
        if "dose_per_frame" in defaults:
            self.dose.setValue(defaults["dose_per_frame"])
