"""The four sections of the "Tilt series" dock: source, alignment, reconstruction, quantification.

Views only: they gather parameters and draw results; the widget wires them to the model.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QWidget,
)

from napari_cryomat.widgets._base import EmptyViewNote, LayerCombo, Section, hbox, is_grey_image
from napari_cryomat.widgets.tilt._model import ALIGNED_KEY
from napari_cryomat.widgets.tilt._plots import HistogramPlot, ResidualPlot, WedgeView
from napari_cryomat.widgets.tilt._run import AlignRun, Quantification, Reconstruction

__all__ = ["AlignPanel", "QuantPanel", "ReconPanel", "SourcePanel"]

#: the tilt-axis spin box's "auto" value (find it from the data; below the valid -90..90)
AXIS_AUTO = -90.1
#: what the list of tilts says before an alignment
TILT_LIST_NOTE = "Press Align: each tilt's angle, residual and shift appear here; untick a tilt to drop it."


def _note() -> QLabel:
    label = QLabel("")
    label.setWordWrap(True)
    label.setStyleSheet("color: grey;")
    return label


def _is_stack(layer) -> bool:
    """A (N, Y, X) tilt series or (Z, Y, X) volume; not a spectrum image, whose first axis is energy."""
    return getattr(layer, "ndim", 0) == 3 and is_grey_image(layer)


class SourcePanel(Section):
    """The tilt-series layer, its angles (metadata, or a .tlt/.rawtlt/.mdoc file) and pixel size."""

    def __init__(self, viewer):
        super().__init__("Tilt series")
        from napari.layers import Image

        # neither a volume made here nor the aligned tilts (a view of an alignment, whose axis is already upright)
        self.layer_combo = LayerCombo(viewer, (Image,), predicate=lambda layer: _is_stack(layer)
                                      and "tilt_reconstruction" not in layer.metadata
                                      and ALIGNED_KEY not in layer.metadata, placeholder="no tilt series",
                                      why="No tilt series (a stack of tilts) in the viewer: open one (File > Open: "
                                          "MRC/.st, TIFF, DM).")
        self.angles_button = QPushButton("Angles file…")
        self.angles_button.setToolTip("Read the tilt angles from an IMOD .tlt/.rawtlt or SerialEM .mdoc file")
        self.angles_label = _note()
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setRange(0.001, 1e5)
        self.pixel_size.setDecimals(3)
        self.pixel_size.setSuffix(" Å")
        self.pixel_size.setSpecialValueText("unknown")  # its minimum, shown while no stack gives a size (was "0.001 Å")
        form = QWidget()
        layout = QFormLayout(form)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow("Stack", self.layer_combo)
        layout.addRow("Angles", hbox(self.angles_button, stretch_last=True))
        layout.addRow(self.angles_label)
        layout.addRow("Pixel size", self.pixel_size)
        self.add(form)

    def layer(self):
        return self.layer_combo.layer()

    def show_angles(self, angles: Optional[np.ndarray], origin: str) -> None:
        if angles is None:
            self.angles_label.setText(origin)
        else:
            self.angles_label.setText(f"{len(angles)} angles, {angles.min():+.1f}° to {angles.max():+.1f}° ({origin})")


class AlignPanel(Section):
    """Align button, residuals per tilt, and the list of tilts to keep (untick to drop)."""

    kept_toggled = Signal(int, bool)

    def __init__(self):
        super().__init__("Align")
        self.align_button = QPushButton("Align")
        self.method = QComboBox()
        self.method.addItem("Fiducial-free", None)
        self.method.addItem("Gold beads", "beads")
        self.method.setToolTip("Fiducial-free: cross-correlation and projection matching, any specimen.\n"
                               "Gold beads: find and follow the beads, fit shifts and axis (IMOD beadtrack + "
                               "tiltalign); far more precise where beads were put on the grid.")
        self.bead_diameter = QDoubleSpinBox()
        self.bead_diameter.setRange(1.0, 1e4)
        self.bead_diameter.setDecimals(0)
        self.bead_diameter.setValue(100.0)
        self.bead_diameter.setSuffix(" Å")
        self.bead_diameter.setToolTip("Diameter of the gold beads (10 nm gold: 100 Å)")
        self.method.currentIndexChanged.connect(self._show_method)
        self.axis = QDoubleSpinBox()
        self.axis.setRange(AXIS_AUTO, 90.0)
        self.axis.setDecimals(1)
        self.axis.setSuffix("°")
        self.axis.setSpecialValueText("auto")
        self.axis.setValue(AXIS_AUTO)
        self.axis.setToolTip("Tilt-axis angle, degrees counter-clockwise on screen from the image Y axis, "
                             "when known (e.g. from the microscope's calibration)")
        self.refine_axis = QCheckBox("refine")
        self.refine_axis.setToolTip("Refine the tilt-axis angle by projection matching (slower)")
        self.summary = _note()
        self.plot = ResidualPlot()
        self.tilt_list = QListWidget()
        self.tilt_list.setMaximumHeight(110)
        self.tilt_list_note = EmptyViewNote(self.tilt_list, TILT_LIST_NOTE)
        self.tilt_list.itemChanged.connect(self._item_changed)
        self.drop_button = QPushButton("Drop outliers")
        self.drop_button.setToolTip("Untick tilts whose residual is far above the others (median + 3 MAD)")
        form = QWidget()
        layout = QFormLayout(form)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow("Method", self.method)
        layout.addRow("Bead size", self.bead_diameter)
        layout.addRow("Tilt axis", hbox(self.axis, self.refine_axis))
        self._show_method()
        self.add(form)
        self.add(self.align_button)
        self.add(self.summary)
        self.add(self.plot.widget)
        self.add(QLabel("Tilts used (untick to drop): angle, residual, shift"))
        self.add(self.tilt_list)
        self.add(hbox(self.drop_button, stretch_last=True))

    def _show_method(self, *_args) -> None:
        beads = self.method.currentData() == "beads"
        self.bead_diameter.setEnabled(beads)
        self.refine_axis.setEnabled(not beads)  # the bead fit always refines the axis

    def axis_values(self) -> dict:
        """The alignment options of the controls, as keywords of ``TiltModel.align_request``."""
        angle = self.axis.value()
        beads = self.method.currentData() == "beads"
        return {"tilt_axis_angle": None if angle <= AXIS_AUTO else float(angle),
                "refine_tilt_axis": self.refine_axis.isChecked() and not beads,
                "bead_diameter": float(self.bead_diameter.value()) if beads else None}

    def show_run(self, run: Optional[AlignRun], kept: Optional[np.ndarray]) -> None:
        self.tilt_list.blockSignals(True)
        self.tilt_list.clear()
        if run is not None:
            a = run.alignment
            for i, (angle, resid, shift) in enumerate(zip(a.angles, a.residuals, a.shifts)):
                item = QListWidgetItem(f"{i:2d} {angle:+5.1f}°  {resid:.3f}  ({shift[0]:+.1f}, {shift[1]:+.1f}) px")
                item.setToolTip("tilt index, angle, residual, shift (dy, dx) in raw pixels")
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Checked if kept[i] else Qt.Unchecked)
                self.tilt_list.addItem(item)
        self.tilt_list.blockSignals(False)
        self.summary.setText("" if run is None else run.summary())
        self.plot.draw(run, kept)

    def show_kept(self, run: Optional[AlignRun], kept: Optional[np.ndarray]) -> None:
        self.tilt_list.blockSignals(True)
        for i in range(self.tilt_list.count()):
            self.tilt_list.item(i).setCheckState(Qt.Checked if kept[i] else Qt.Unchecked)
        self.tilt_list.blockSignals(False)
        self.plot.draw(run, kept)

    def _item_changed(self, item: QListWidgetItem) -> None:
        self.kept_toggled.emit(self.tilt_list.row(item), item.checkState() == Qt.Checked)


class ReconPanel(Section):
    """Binning, thickness, SIRT iterations; Preview (WBP) and Reconstruct (SIRT); the missing wedge."""

    def __init__(self):
        super().__init__("Reconstruct")
        self.binning = QComboBox()
        for b in (1, 2, 4, 8):
            self.binning.addItem(f"bin {b}", b)
        self.thickness = QDoubleSpinBox()
        self.thickness.setRange(0.0, 1e7)
        self.thickness.setDecimals(0)
        self.thickness.setSuffix(" Å")
        self.thickness.setSpecialValueText("auto (image width)")
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 1000)
        self.iterations.setValue(50)
        self.iterations.setToolTip("The most SIRT iterations: on noisy tilts SIRT stops sooner, where tilts left out "
                                   "of a trial run are reprojected best (more would fit the noise)")
        self.invert = QCheckBox("Dense is dark (bright field): invert")
        self.invert.setChecked(True)
        self.invert.setToolTip("Reconstruct -tilts so that dense material is bright and positive")
        self.preview_button = QPushButton("Preview (WBP)")
        self.reconstruct_button = QPushButton("Reconstruct (SIRT)")
        self.summary = _note()
        self.wedge = WedgeView()
        form = QWidget()
        layout = QFormLayout(form)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow("Binning", self.binning)
        layout.addRow("Thickness", self.thickness)
        layout.addRow("SIRT iterations", self.iterations)
        self.add(form)
        self.add(self.invert)
        self.add(hbox(self.preview_button, self.reconstruct_button))
        self.add(self.summary)
        self.add(QLabel("Missing wedge: log |FFT|, central XZ section"))
        self.add(self.wedge.widget)

    def values(self) -> dict:
        thickness = self.thickness.value()
        return {"binning": int(self.binning.currentData()), "iterations": int(self.iterations.value()),
                "thickness": float(thickness) if thickness > 0 else None}

    def show_reconstruction(self, rec: Optional[Reconstruction]) -> None:
        if rec is None:
            self.summary.setText("")
        else:
            z, y, x = rec.volume.shape
            self.summary.setText(f"{rec.request.layer_name}: {z} x {y} x {x} voxels; {rec.describe()}")
        self.wedge.draw(rec)


class QuantPanel(Section):
    """Structure mask (labels), optional particles, Otsu mask of a volume, Quantify; histogram and numbers."""

    def __init__(self, viewer):
        super().__init__("Quantify")
        from napari.layers import Image, Labels

        self.volume_combo = LayerCombo(viewer, (Image,), predicate=_is_stack, placeholder="no volume",
                                       why="No 3D image: press Reconstruct above, or open a tomogram.")
        self.otsu_button = QPushButton("Otsu mask")
        self.otsu_button.setToolTip("Two-phase mask of the volume (smoothed, Otsu threshold): a first "
                                    "segmentation; refine it in Segmentation")
        self.mask_combo = LayerCombo(viewer, (Labels,), predicate=_is_stack, placeholder="no 3D labels",
                                     why="No 3D labels layer: press Otsu mask, or segment the volume.")
        self.use_particles = QCheckBox("Particles")
        self.particles_combo = LayerCombo(viewer, (Labels,), predicate=_is_stack, placeholder="no 3D labels",
                                          why="No 3D labels layer of particles: segment them in the volume first.")
        self.quantify_button = QPushButton("Quantify")
        self.summary = _note()
        self.histogram = HistogramPlot()
        form = QWidget()
        layout = QFormLayout(form)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow("Volume", hbox(self.volume_combo, self.otsu_button))
        layout.addRow("Structure", self.mask_combo)
        layout.addRow(self.use_particles, self.particles_combo)
        self.add(form)
        self.add(self.quantify_button)
        self.add(self.summary)
        self.add(self.histogram.widget)

    def particles_layer(self):
        return self.particles_combo.layer() if self.use_particles.isChecked() else None

    def show_quantification(self, q: Optional[Quantification]) -> None:
        self.summary.setText("" if q is None else q.summary())
        self.histogram.draw(q)
