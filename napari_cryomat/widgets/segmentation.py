"""Segmentation dock: manual annotation that autosaves, automatic particles, a scribble-trained
pixel classifier, and click-to-segment.

Thin: the science is in :mod:`napari_cryomat.core.segment` and :mod:`napari_cryomat.core.annotation`.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.core import annotation as ann
from napari_cryomat.core import segment as seg
from napari_cryomat.widgets._common import (
    LayerCombo,
    TaskRunner,
    pixel_size_of,
    show_error,
    show_info,
    show_warning,
)

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

__all__ = ["SegmentationWidget", "class_colormap"]


def class_colormap(classes: list[dict]):
    """A napari DirectLabelColormap: 0 transparent, each class its colour, others grey."""
    from napari.utils.colormaps import DirectLabelColormap

    colors = {None: [0.6, 0.6, 0.6, 1.0], 0: [0.0, 0.0, 0.0, 0.0]}
    for c in classes:
        colors[int(c["id"])] = c["colour"]
    return DirectLabelColormap(color_dict=colors)


def _spin(lo, hi, value, step=1.0, decimals=1, suffix=""):
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(step)
    s.setValue(value)
    if suffix:
        s.setSuffix(suffix)
    return s


class _CloseWatcher(QObject):
    """Calls ``callback`` when the window holding ``parent`` (napari's main window) closes.

    Installed on the application, so it needs no private napari attribute and works whether or
    not the dock was ever shown; it reacts only to the Close of the parent's own top-level window.
    """

    def __init__(self, callback, parent: QWidget):
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, obj, event):  # noqa: N802 (Qt name)
        if (
            event.type() == QEvent.Close
            and isinstance(obj, QWidget)
            and obj.isWindow()
            and obj is self.parent().window()
        ):
            try:
                self._callback()
            except Exception:  # never block closing
                log.exception("autosave on close failed")
        return False


class SegmentationWidget(QWidget):
    """Annotate, autosave, segment automatically, train a pixel classifier, click to segment."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: QWidget | None = None):
        super().__init__(parent)
        from napari.layers import Image, Labels

        self.viewer = napari_viewer
        self.classes: list[dict] = [
            {"id": i + 1, "name": n, "colour": c} for i, (n, c) in enumerate(ann.DEFAULT_CLASSES)
        ]
        self.autosaver: ann.Autosaver | None = None
        self._autosave_layer = None
        self._restorable: ann.Annotation | None = None
        self.classifier: seg.PixelClassifier | None = None
        self._feature_cache = seg.FeatureCache()  # features survive retraining while painting
        self._live_pending = False
        self._click_state: dict | None = None

        layout = QVBoxLayout(self)

        # --- image and annotation -------------------------------------------------------------
        top = QFormLayout()
        self.image_combo = LayerCombo(napari_viewer, (Image,), predicate=lambda l: not l.rgb)
        self.labels_combo = LayerCombo(napari_viewer, (Labels,))
        top.addRow("Image", self.image_combo)
        row = QHBoxLayout()
        self.new_button = QPushButton("New annotation")
        self.new_button.setToolTip("A labels layer matched to the image: same shape, scale and units.")
        self.restore_button = QPushButton("Restore autosave")
        self.restore_button.setEnabled(False)
        row.addWidget(self.new_button)
        row.addWidget(self.restore_button)
        top.addRow(row)
        top.addRow("Annotation", self.labels_combo)
        layout.addLayout(top)

        # --- classes ------------------------------------------------------------------------------
        box = QGroupBox("Classes (label value = class)")
        bl = QVBoxLayout(box)
        self.class_table = QTableWidget(0, 3)
        self.class_table.setHorizontalHeaderLabels(["Value", "Name", "Colour"])
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.class_table.setMinimumHeight(110)
        self.class_table.setMaximumHeight(170)
        bl.addWidget(self.class_table)
        row = QHBoxLayout()
        self.add_class_button = QPushButton("Add class")
        self.remove_class_button = QPushButton("Remove class")
        self.interpolate_button = QPushButton("Interpolate slices")
        self.interpolate_button.setToolTip(
            "Fill the slices between annotated slices of a stack or tomogram (along the first axis)."
        )
        row.addWidget(self.add_class_button)
        row.addWidget(self.remove_class_button)
        row.addWidget(self.interpolate_button)
        bl.addLayout(row)
        layout.addWidget(box)

        # --- autosave ---------------------------------------------------------------------------
        box = QGroupBox("Autosave")
        fl = QFormLayout(box)
        row = QHBoxLayout()
        self.autosave_check = QCheckBox("every")
        # On by default: people annotate for hours and must never lose work. Switching it off is
        # a deliberate choice; an unwritable folder is reported at the first annotation.
        self.autosave_check.setChecked(True)
        self.autosave_check.setToolTip("Save the annotation every N seconds and when napari closes")
        self.autosave_interval = QSpinBox()
        self.autosave_interval.setRange(2, 3600)
        self.autosave_interval.setValue(30)
        self.autosave_interval.setSuffix(" s")
        row.addWidget(self.autosave_check)
        row.addWidget(self.autosave_interval)
        row.addStretch(1)
        fl.addRow(row)
        row = QHBoxLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("next to the image (default)")
        self.folder_button = QPushButton("…")
        self.folder_button.setMaximumWidth(30)
        row.addWidget(self.folder_edit)
        row.addWidget(self.folder_button)
        fl.addRow("Folder", row)
        self.autosave_status = QLabel("on: starts with the first annotation (New annotation)")
        self.autosave_status.setWordWrap(True)
        fl.addRow(self.autosave_status)
        layout.addWidget(box)

        # --- automatic particles ----------------------------------------------------------------
        box = QGroupBox("Automatic particles")
        fl = QFormLayout(box)
        self.threshold_combo = QComboBox()
        self.threshold_combo.addItems(["otsu", "li", "local"])
        self.polarity_combo = QComboBox()
        self.polarity_combo.addItems(["dark", "bright"])
        self.polarity_combo.setToolTip("dark: bright-field TEM / cryo-EM; bright: HAADF-STEM")
        self.smoothing_spin = _spin(0, 1000, 4.0, 1.0, 1, " Å")
        self.min_size_spin = _spin(0, 1e9, 400.0, 100.0, 0, " Å²")
        self.split_check = QCheckBox("split touching particles")
        self.split_check.setChecked(True)
        self.split_spin = _spin(1, 1e5, 30.0, 5.0, 1, " Å")
        self.split_spin.setToolTip("Minimum distance between particle centres (about the smallest radius).")
        self.frames_check = QCheckBox("frame by frame (first axis is time)")
        self.frames_check.setToolTip("A movie (T, Y, X) is segmented one frame at a time, not as a volume.")
        self.segment_button = QPushButton("Segment particles")
        fl.addRow("Threshold", self.threshold_combo)
        fl.addRow("Particles are", self.polarity_combo)
        fl.addRow("Smoothing σ", self.smoothing_spin)
        fl.addRow("Minimum size", self.min_size_spin)
        fl.addRow(self.split_check, self.split_spin)
        fl.addRow(self.frames_check)
        fl.addRow(self.segment_button)
        layout.addWidget(box)

        # --- pixel classifier -------------------------------------------------------------------
        box = QGroupBox("Pixel classifier (paint strokes of ≥ 2 classes in the annotation)")
        fl = QFormLayout(box)
        self.sigma_max_spin = _spin(1, 64, 8.0, 1.0, 1, " px")
        self.sigma_max_spin.setToolTip("Largest feature scale; about the size of the structures.")
        self.trees_spin = QSpinBox()
        self.trees_spin.setRange(5, 500)
        self.trees_spin.setValue(40)
        self.train_button = QPushButton("Train && predict")
        self.live_check = QCheckBox("retrain while painting")
        fl.addRow("Largest scale", self.sigma_max_spin)
        fl.addRow("Trees", self.trees_spin)
        row = QHBoxLayout()
        row.addWidget(self.train_button)
        row.addWidget(self.live_check)
        fl.addRow(row)
        self.classifier_status = QLabel("")
        fl.addRow(self.classifier_status)
        layout.addWidget(box)

        # --- click to segment -------------------------------------------------------------------
        box = QGroupBox("Click to segment")
        fl = QFormLayout(box)
        self.click_check = QCheckBox("active (click: new object, Ctrl-click: add, Shift-click: not object)")
        self.click_method = QComboBox()
        self.click_method.addItems(["flood", "watershed", "random_walker"])
        self.tolerance_spin = _spin(0, 1e6, 0.0, 0.01, 3)
        self.tolerance_spin.setSpecialValueText("auto")
        self.radius_spin = _spin(10, 1e6, 300.0, 50.0, 0, " Å")
        self.radius_spin.setToolTip("Half-size of the search window around the click.")
        self.click_split_spin = _spin(0, 1e5, 30.0, 5.0, 1, " Å")
        self.click_split_spin.setSpecialValueText("off")
        self.click_split_spin.setToolTip(
            "Cut touching neighbours off at the neck (minimum centre distance); off keeps the whole region.")
        fl.addRow(self.click_check)
        fl.addRow("Method", self.click_method)
        fl.addRow("Tolerance", self.tolerance_spin)
        fl.addRow("Search radius", self.radius_spin)
        fl.addRow("Split at necks", self.click_split_spin)
        # optional Segment Anything (micro-sam): only offered when installed, from local weights
        self._sam = None
        self.sam_weights_edit = QLineEdit()
        self.sam_weights_edit.setPlaceholderText("local weights file (.pth); never downloaded")
        self.sam_model_combo = QComboBox()
        self.sam_model_combo.addItems(["vit_b", "vit_l", "vit_h", "vit_b_em_organelles", "vit_b_lm"])
        self.sam_model_combo.setEditable(True)
        if seg.sam_available():
            self.click_method.addItem("segment anything")
            row = QHBoxLayout()
            browse = QPushButton("…")
            browse.setMaximumWidth(30)
            browse.clicked.connect(self._choose_sam_weights)
            row.addWidget(self.sam_weights_edit)
            row.addWidget(browse)
            fl.addRow("SAM weights", row)
            fl.addRow("SAM model", self.sam_model_combo)
        else:
            note = QLabel("Segment Anything: install micro-sam (optional) to enable it here.")
            note.setWordWrap(True)
            fl.addRow(note)
        layout.addWidget(box)

        self.runner = TaskRunner("Segmentation")
        layout.addWidget(self.runner)
        layout.addStretch(1)

        # --- timers -----------------------------------------------------------------------------
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self._autosave_tick)
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(800)
        self._live_timer.timeout.connect(self._live_retrain)

        # --- connections ------------------------------------------------------------------------
        self.new_button.clicked.connect(self.new_annotation)
        self.restore_button.clicked.connect(self.restore_autosave)
        self.add_class_button.clicked.connect(self.add_class)
        self.remove_class_button.clicked.connect(self.remove_class)
        self.interpolate_button.clicked.connect(self.interpolate)
        self.class_table.itemChanged.connect(self._on_class_item_changed)
        self.class_table.cellDoubleClicked.connect(self._on_class_double_click)
        self.class_table.currentCellChanged.connect(self._on_class_row)
        self.autosave_check.toggled.connect(self._on_autosave_toggled)
        self.autosave_interval.valueChanged.connect(self._on_interval)
        self.folder_button.clicked.connect(self._choose_folder)
        self.folder_edit.editingFinished.connect(self._on_folder_edited)
        self.segment_button.clicked.connect(self.segment_particles)
        self.train_button.clicked.connect(self.train_and_predict)
        self.labels_combo.currentIndexChanged.connect(self._on_labels_changed)
        self.image_combo.currentIndexChanged.connect(self._check_for_autosave)
        self.image_combo.currentIndexChanged.connect(self._guess_time_axis)
        self.click_check.toggled.connect(self._on_click_toggled)
        napari_viewer.layers.events.removing.connect(self._on_layer_removing)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.flush_autosave)
        self._close_watcher = _CloseWatcher(self.flush_autosave, self)
        if app is not None:
            app.installEventFilter(self._close_watcher)
        self._fill_class_table()
        self._watched_layer = None
        self._on_labels_changed()
        self._check_for_autosave()
        self._guess_time_axis()

    # ============================================================================ helpers
    def _guess_time_axis(self, *args) -> None:
        layer = self.image_combo.layer()
        is_t = False
        if layer is not None and layer.data.ndim == 3:
            try:
                is_t = str(layer.axis_labels[0]).lower() in ("t", "time", "frame")
            except (AttributeError, IndexError):
                pass
            is_t = is_t or layer.metadata.get("axes") == "TYX"
        self.frames_check.setEnabled(layer is not None and layer.data.ndim == 3)
        self.frames_check.setChecked(is_t)

    def _image(self):
        layer = self.image_combo.layer()
        if layer is None:
            raise ValueError("Open or choose an image first.")
        return layer

    def _annotation(self):
        layer = self.labels_combo.layer()
        if layer is None:
            raise ValueError("Make an annotation first (New annotation).")
        return layer

    def _source_of(self, layer):
        try:
            return layer.source.path
        except AttributeError:
            return None

    def _key(self, image_layer) -> str:
        return ann.image_key(image_layer.data, source=self._source_of(image_layer), name=image_layer.name)

    def _folders(self, image_layer) -> list:
        chosen = self.folder_edit.text().strip()
        return [chosen or None, ann.default_folder(self._source_of(image_layer))]

    def _layer_kwargs(self, image_layer, name: str) -> dict:
        kw = dict(name=name, scale=tuple(image_layer.scale), translate=tuple(image_layer.translate))
        try:
            kw["units"] = tuple(image_layer.units)
            kw["axis_labels"] = tuple(image_layer.axis_labels)
        except AttributeError:
            pass
        return kw

    def _check_shape(self, labels_layer, image_layer) -> None:
        if tuple(labels_layer.data.shape) != tuple(image_layer.data.shape):
            raise ValueError(
                f"The annotation '{labels_layer.name}' has shape {tuple(labels_layer.data.shape)} but the "
                f"image '{image_layer.name}' has shape {tuple(image_layer.data.shape)}: make a New "
                "annotation for this image."
            )

    # ============================================================================ classes
    def _fill_class_table(self) -> None:
        self.class_table.blockSignals(True)
        self.class_table.setRowCount(len(self.classes))
        for r, c in enumerate(self.classes):
            v = QTableWidgetItem(str(c["id"]))
            v.setFlags(v.flags() & ~Qt.ItemIsEditable)
            n = QTableWidgetItem(c["name"])
            col = QTableWidgetItem(c["colour"])
            col.setBackground(QColor(c["colour"]))
            col.setFlags(col.flags() & ~Qt.ItemIsEditable)
            col.setToolTip("Double-click to change the colour")
            self.class_table.setItem(r, 0, v)
            self.class_table.setItem(r, 1, n)
            self.class_table.setItem(r, 2, col)
        self.class_table.blockSignals(False)

    def set_classes(self, classes: list[dict]) -> None:
        """Replace the class table and push it to the annotation layer (features and colours)."""
        self.classes = [dict(id=int(c["id"]), name=str(c["name"]), colour=str(c["colour"])) for c in classes]
        self._fill_class_table()
        self._apply_classes()

    def _apply_classes(self, layer=None) -> None:
        import pandas as pd

        layer = layer or self.labels_combo.layer()
        if layer is None or layer.metadata.get("cryomat_role") != "annotation":
            return
        layer.features = pd.DataFrame({
            "index": [c["id"] for c in self.classes],
            "class": [c["name"] for c in self.classes],
            "colour": [c["colour"] for c in self.classes],
        })
        layer.colormap = class_colormap(self.classes)
        layer.metadata["classes"] = [dict(c) for c in self.classes]
        if self.autosaver is not None:
            self.autosaver.mark_dirty()

    def add_class(self, name: str | None = None, colour: str | None = None) -> None:
        new_id = max([c["id"] for c in self.classes], default=0) + 1
        palette = ["#f58231", "#911eb4", "#f032e6", "#bfef45", "#469990", "#9a6324", "#800000"]
        colour = colour or palette[new_id % len(palette)]
        self.classes.append(dict(id=new_id, name=name or f"class {new_id}", colour=colour))
        self._fill_class_table()
        self._apply_classes()

    def remove_class(self) -> None:
        r = self.class_table.currentRow()
        if r < 0 or r >= len(self.classes):
            show_warning("Select the class to remove in the table first.")
            return
        del self.classes[r]
        self._fill_class_table()
        self._apply_classes()

    def _on_class_item_changed(self, item) -> None:
        if item.column() == 1:
            self.classes[item.row()]["name"] = item.text()
            self._apply_classes()

    def _on_class_double_click(self, row, col) -> None:
        if col != 2:
            return
        colour = QColorDialog.getColor(QColor(self.classes[row]["colour"]), self, "Class colour")
        if colour.isValid():
            self.classes[row]["colour"] = colour.name()
            self._fill_class_table()
            self._apply_classes()

    def _on_class_row(self, row, *args) -> None:
        layer = self.labels_combo.layer()
        if layer is not None and 0 <= row < len(self.classes):
            layer.selected_label = self.classes[row]["id"]

    # ============================================================================ annotation
    def new_annotation(self):
        """Create a labels layer matched to the image (shape, scale, units), with the class table."""
        from napari.layers import Labels

        try:
            image = self._image()
        except ValueError as exc:
            show_error(str(exc))
            return None
        shape = tuple(image.data.shape)
        dtype = np.uint8 if len(self.classes) < 255 and max(c["id"] for c in self.classes) < 255 else np.int32
        layer = Labels(np.zeros(shape, dtype=dtype), **self._layer_kwargs(image, f"{image.name} annotation"))
        layer.metadata.update(cryomat_role="annotation", cryomat_image=image.name,
                              cryomat_key=self._key(image))
        self.viewer.add_layer(layer)
        self.labels_combo.setCurrentText(layer.name)
        self._apply_classes(layer)
        layer.selected_label = self.classes[0]["id"] if self.classes else 1
        layer.mode = "paint"
        self._check_for_autosave()
        if self.autosave_check.isChecked():
            self._start_autosave()
        return layer

    def _check_for_autosave(self, *args) -> None:
        layer = self.image_combo.layer()
        self._restorable = None
        if layer is None:
            self.restore_button.setEnabled(False)
            return
        try:
            found = ann.find_autosave(self._key(layer), self._folders(layer))
        except Exception:  # a lazy image that cannot be sampled: no restore offer
            log.exception("looking for an autosave failed")
            found = None
        if found is not None and tuple(found.labels.shape) == tuple(layer.data.shape):
            self._restorable = found
            when = datetime.datetime.fromtimestamp(found.saved_at).strftime("%Y-%m-%d %H:%M:%S")
            self.restore_button.setEnabled(True)
            self.restore_button.setToolTip(f"Autosave of {when} in {found.path}")
            show_info(f"An autosaved annotation of '{layer.name}' from {when} exists: "
                      "press 'Restore autosave' in the Segmentation dock to get it back.")
        else:
            self.restore_button.setEnabled(False)

    def restore_autosave(self):
        """Add the autosaved labels of the chosen image as an annotation layer."""
        from napari.layers import Labels

        if self._restorable is None:
            show_warning("No autosave of this image was found.")
            return None
        image = self._image()
        found = self._restorable
        layer = Labels(found.labels, **self._layer_kwargs(image, f"{image.name} annotation (restored)"))
        layer.metadata.update(cryomat_role="annotation", cryomat_image=image.name,
                              cryomat_key=self._key(image))
        if found.classes:
            self.classes = [dict(c) for c in found.classes]
            self._fill_class_table()
        self.viewer.add_layer(layer)
        self.labels_combo.setCurrentText(layer.name)
        self._apply_classes(layer)
        show_info(f"Restored the annotation saved in {found.path}.")
        if self.autosave_check.isChecked():
            self._start_autosave()
        return layer

    def interpolate(self) -> None:
        """Interpolate the annotation between painted slices along the first axis."""
        try:
            layer = self._annotation()
            if layer.data.ndim < 3:
                raise ValueError("Interpolation needs a stack or tomogram: this annotation is 2D.")
            new = seg.interpolate_slices(np.asarray(layer.data), axis=0)
        except ValueError as exc:
            show_error(str(exc))
            return
        changed = np.nonzero(new != np.asarray(layer.data))
        if changed[0].size == 0:
            show_info("Nothing to interpolate: paint the same label on two slices with a gap between them.")
            return
        layer.data_setitem(changed, new[changed])
        self._mark_dirty()

    # ============================================================================ autosave
    def _mark_dirty(self, *args) -> None:
        if self.autosaver is not None:
            self.autosaver.mark_dirty()

    def _on_labels_changed(self, *args) -> None:
        layer = self.labels_combo.layer()
        old = self._watched_layer
        if old is not None and old is not layer:
            for ev in (old.events.paint, old.events.data, old.events.labels_update):
                try:
                    ev.disconnect(self._on_painted)
                except (TypeError, ValueError, RuntimeError):
                    pass
        self._watched_layer = layer
        if layer is not None:
            layer.events.paint.connect(self._on_painted)
            layer.events.data.connect(self._on_painted)
            layer.events.labels_update.connect(self._on_painted)
            if layer.metadata.get("cryomat_role") == "annotation" and layer.metadata.get("classes"):
                self.classes = [dict(c) for c in layer.metadata["classes"]]
                self._fill_class_table()
        if self.autosave_check.isChecked():
            self._start_autosave()

    def _on_painted(self, *args) -> None:
        self._mark_dirty()
        if self.live_check.isChecked() and self.classifier is not None:
            self._live_timer.start()

    def _autosave_folder(self, image_layer):
        chosen = self.folder_edit.text().strip()
        return chosen or ann.default_folder(self._source_of(image_layer))

    def _start_autosave(self) -> bool:
        """(Re)start autosaving the current annotation; warn at once if the folder is unwritable."""
        layer = self.labels_combo.layer()
        if layer is None:
            self.autosave_status.setText("on: waiting for an annotation (New annotation)")
            self.autosaver = None
            self.autosave_timer.start(self.autosave_interval.value() * 1000)
            return True
        image = self.image_combo.layer()
        key = layer.metadata.get("cryomat_key") or (self._key(image) if image is not None else None)
        if key is None:
            show_error("Choose the image of this annotation first: autosave needs it to name the file.")
            return False
        folder = self._autosave_folder(image) if image is not None else ann.default_folder()
        if self.autosaver is not None and self._autosave_layer is layer and self.autosaver.key == key \
                and os.path.abspath(self.autosaver.folder) == os.path.abspath(folder):
            self.autosaver.interval = float(self.autosave_interval.value())
            return True
        self.flush_autosave()
        try:
            saver = ann.Autosaver(folder, key, interval=self.autosave_interval.value())
        except ValueError as exc:
            self.autosaver = None
            self.autosave_timer.stop()
            self.autosave_status.setText(f"NOT SAVING: {exc}")
            show_error(str(exc))
            self.autosave_check.blockSignals(True)
            self.autosave_check.setChecked(False)
            self.autosave_check.blockSignals(False)
            return False
        saver.mark_dirty()  # save the current state once right away
        self.autosaver = saver
        self._autosave_layer = layer
        self.autosave_timer.start(self.autosave_interval.value() * 1000)
        self.autosave_status.setText(f"on: {saver.path}")
        return True

    def _on_autosave_toggled(self, on: bool) -> None:
        if on:
            self._start_autosave()
        else:
            self.flush_autosave()
            self.autosave_timer.stop()
            self.autosaver = None
            self._autosave_layer = None
            self.autosave_status.setText("off")

    def _on_interval(self, value: int) -> None:
        if self.autosave_timer.isActive():
            self.autosave_timer.start(value * 1000)
        if self.autosaver is not None:
            self.autosaver.interval = float(value)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Autosave folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self._on_folder_edited()

    def _on_folder_edited(self) -> None:
        folder = self.folder_edit.text().strip()
        if folder:
            try:
                ann.check_writable(folder)
            except ValueError as exc:
                show_error(str(exc))
                if self.autosave_check.isChecked():
                    self.autosave_check.setChecked(False)  # stops the timer, says "off"...
                self.autosave_status.setText(f"NOT SAVING: {exc}")  # ...so say why afterwards
                return
        if self.autosave_check.isChecked():
            self._start_autosave()
        self._check_for_autosave()

    def _autosave_payload(self):
        layer = self._autosave_layer
        meta = {"layer": layer.name, "pixel_size_A": float(pixel_size_of(layer)),
                "image": layer.metadata.get("cryomat_image")}
        return np.asarray(layer.data), meta

    def _autosave_tick(self) -> None:
        if self.autosaver is None:
            if self.labels_combo.layer() is not None:
                self._start_autosave()
            return
        if self._autosave_layer is None or self._autosave_layer not in self.viewer.layers:
            return
        try:
            data, meta = self._autosave_payload()
            path = self.autosaver.maybe_save(data, classes=self.classes, metadata=meta, now=float("inf"))
        except (OSError, ValueError) as exc:
            self.autosave_status.setText(f"NOT SAVING: {exc}")
            show_error(f"Autosave failed: {exc}. Choose another autosave folder.")
            return
        if path is not None:
            self.autosave_status.setText(f"saved {datetime.datetime.now():%H:%M:%S} to {path}")

    def flush_autosave(self) -> None:
        """Save now if anything changed (on close, on quit, when the annotation layer is removed)."""
        if self.autosaver is None or self._autosave_layer is None:
            return
        try:
            data, meta = self._autosave_payload()
            path = self.autosaver.flush(data, classes=self.classes, metadata=meta)
        except (OSError, ValueError) as exc:
            log.error("autosave on close failed: %s", exc)
            return
        if path is not None:
            self.autosave_status.setText(f"saved {datetime.datetime.now():%H:%M:%S} to {path}")

    def _on_layer_removing(self, event) -> None:
        try:
            layer = self.viewer.layers[event.index]
        except (IndexError, AttributeError, TypeError):
            return
        if layer is self._autosave_layer:
            self.flush_autosave()
            self.autosaver = None
            self._autosave_layer = None

    def closeEvent(self, event):  # noqa: N802
        self.flush_autosave()
        super().closeEvent(event)

    # ============================================================================ automatic
    def segment_particles(self):
        """Run :func:`segment_particles` on the chosen image in a worker; add a labels layer."""
        try:
            image = self._image()
        except ValueError as exc:
            show_error(str(exc))
            return None
        ps = pixel_size_of(image)
        kwargs = self._layer_kwargs(image, f"{image.name} particles")

        def done(labels):
            self.viewer.add_labels(labels, **kwargs)
            if series:
                show_info(f"{int(sum(l.max() for l in labels))} particles found in {len(labels)} frames.")
            else:
                show_info(f"{int(labels.max())} particles found.")

        series = self.frames_check.isChecked() and image.data.ndim == 3
        func = seg.segment_series if series else seg.segment_particles
        return self.runner.start(
            func, np.asarray(image.data), pixel_size=ps,
            smoothing=self.smoothing_spin.value(), threshold=self.threshold_combo.currentText(),
            polarity=self.polarity_combo.currentText(), min_size=self.min_size_spin.value(),
            split=self.split_check.isChecked(), split_distance=self.split_spin.value(), on_done=done,
        )

    # ============================================================================ classifier
    def train_and_predict(self):
        """Train the pixel classifier on the annotation's strokes and predict the whole image."""
        try:
            image = self._image()
            scribbles = self._annotation()
            self._check_shape(scribbles, image)
        except ValueError as exc:
            show_error(str(exc))
            return None
        if self.runner.busy:
            self._live_pending = True
            return None
        data = image.data
        scr = np.array(scribbles.data, copy=True)  # painting may go on meanwhile
        options = dict(sigma_max=self.sigma_max_spin.value(), n_estimators=self.trees_spin.value(),
                       cache=self._feature_cache)
        name = f"{image.name} prediction"
        kwargs = self._layer_kwargs(image, name)

        def job(progress=None):
            def part(a, b):
                return None if progress is None else (lambda f: progress(a + (b - a) * f))

            model = seg.train_pixel_classifier(data, scr, progress=part(0.0, 0.3), **options)
            pred = model.predict(data, progress=part(0.3, 1.0))
            return model, pred

        def done(result):
            model, pred = result
            self.classifier = model
            if name in self.viewer.layers:
                self.viewer.layers[name].data = pred
            else:
                layer = self.viewer.add_labels(pred, **kwargs)
                layer.colormap = class_colormap(self.classes)
                layer.opacity = 0.5
                layer.metadata["cryomat_role"] = "prediction"
                # keep painting on the annotation, not on the prediction
                self.viewer.layers.selection.active = scribbles
            self.classifier_status.setText(
                f"trained on {model.n_training_pixels} pixels, classes {list(map(int, model.classes))}")
            if self._live_pending:
                self._live_pending = False
                self._live_timer.start()

        return self.runner.start(job, on_done=done)

    def _live_retrain(self) -> None:
        if not self.live_check.isChecked():
            return
        if self.runner.busy:
            self._live_pending = True
            return
        self.train_and_predict()

    # ============================================================================ click
    def _choose_sam_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Segment Anything weights", "", "Weights (*.pth *.pt)")
        if path:
            self.sam_weights_edit.setText(path)

    def _sam_segmenter(self) -> seg.SamSegmenter:
        """The SAM model for the chosen weights, loaded once (ValueError if missing)."""
        weights = self.sam_weights_edit.text().strip()
        if not weights:
            raise ValueError("Choose a local Segment Anything weights file first (SAM weights).")
        model = self.sam_model_combo.currentText()
        if self._sam is None or str(self._sam.checkpoint) != os.path.expanduser(weights) \
                or self._sam.model_type != model:
            self._sam = seg.SamSegmenter(weights, model_type=model)
        return self._sam

    def _on_click_toggled(self, on: bool) -> None:
        cbs = self.viewer.mouse_drag_callbacks
        if on and self._mouse_click not in cbs:
            cbs.append(self._mouse_click)
        elif not on and self._mouse_click in cbs:
            cbs.remove(self._mouse_click)
        self._click_state = None

    def _mouse_click(self, viewer, event):
        if event.type != "mouse_press":
            return
        image = self.image_combo.layer()
        if image is None:
            return
        point = np.asarray(image.world_to_data(event.position))
        mods = {str(getattr(m, "name", m)).lower() for m in event.modifiers}
        mode = "background" if "shift" in mods else ("add" if ("control" in mods or "meta" in mods) else "new")
        self.click_at(point, mode=mode)

    def click_at(self, point, *, mode: str = "new"):
        """Segment (or refine) one object at ``point`` (data coordinates of the image, pixels).

        ``mode``: ``new`` starts an object; ``add`` adds the clicked part to the current object;
        ``background`` marks the clicked point as not the object. The object is painted on the
        annotation with the selected class, only on unpainted pixels; a refinement replaces the
        previous version of the same object. Returns the object mask.
        """
        try:
            image = self._image()
            layer = self._annotation()
            self._check_shape(layer, image)
        except ValueError as exc:
            show_error(str(exc))
            return None
        point = np.round(np.asarray(point, dtype=float)).astype(int)
        if np.any(point < 0) or np.any(point >= np.asarray(image.data.shape)):
            return None
        state = self._click_state
        if mode == "new" or state is None:
            state = dict(points=[], background=[], previous=None, value=int(layer.selected_label))
        if mode == "background":
            state["background"].append(point)
        else:
            state["points"].append(point)
        # clicks in a 3D image segment the slice on screen (first axis) for speed and control
        data = image.data
        if data.ndim == 3:
            z = int(state["points"][0][0])
            img2 = np.asarray(data[z])
            pts = [p[1:] for p in state["points"] if int(p[0]) == z]
            bgs = [p[1:] for p in state["background"] if int(p[0]) == z]
        else:
            img2, pts, bgs, z = np.asarray(data), state["points"], state["background"], None
        tol = self.tolerance_spin.value() or None
        try:
            if self.click_method.currentText() == "segment anything":
                mask2 = self._sam_segmenter().segment(img2, pts, background_points=bgs)
            else:
                mask2 = seg.click_segment(img2, pts, background_points=bgs, pixel_size=pixel_size_of(image),
                                          method=self.click_method.currentText(), tolerance=tol,
                                          max_radius=self.radius_spin.value(),
                                          split_distance=self.click_split_spin.value())
        except ValueError as exc:
            show_error(str(exc))
            return None
        # undo the previous version of this object, then paint the new one on empty pixels
        if state["previous"] is not None:
            idx, old = state["previous"]
            layer.data_setitem(idx, old, refresh=False)
        lab = np.asarray(layer.data if z is None else layer.data[z])
        target = mask2 & (lab == 0)
        idx2 = np.nonzero(target)
        idx = idx2 if z is None else (np.full(idx2[0].size, z),) + idx2
        state["previous"] = (idx, np.zeros(idx[0].size, dtype=layer.data.dtype))
        layer.data_setitem(idx, state["value"])
        self._click_state = state
        self._mark_dirty()
        if z is None:
            return mask2
        full = np.zeros(layer.data.shape, dtype=bool)
        full[z] = mask2
        return full
