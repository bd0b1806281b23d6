"""Interactive tools view: the brush (size, paint / erase) and click to segment.

Clicks are segmented in a worker, "latest request wins" (see :mod:`._clicks`): a refinement
supersedes the unfinished version of the same object, the GUI never waits. The mouse callback is in
the viewer only while "Click to segment" is ticked and this dock is in front, so a click made for
another tool never paints an object.
"""

from __future__ import annotations

import logging

from qtpy.QtWidgets import QCheckBox, QComboBox, QFileDialog, QLineEdit, QPushButton, QSpinBox, QWidget

from napari_cryomat.core.segment import sam_available
from napari_cryomat.widgets._base import EventLinks, LatestWins, Section, hbox, notify
from napari_cryomat.widgets.segmentation._clicks import CLICK_METHODS, SAM_METHOD, ClickOptions
from napari_cryomat.widgets.segmentation._controls import form, note, spin

log = logging.getLogger(__name__)

__all__ = ["ToolsPanel"]

SAM_MODELS = ("vit_b", "vit_l", "vit_h", "vit_b_em_organelles", "vit_b_lm")


class ToolsPanel(Section):
    """Brush and click-to-segment for the model's annotation."""

    def __init__(self, model, viewer, parent: QWidget | None = None):
        super().__init__("Paint and click", expanded=True, parent=parent)
        self.model = model
        self.viewer = viewer
        self.in_front = True
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(1, 500)
        self.brush_spin.setValue(10)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.setToolTip("Brush size on the annotation")
        self.paint_button = QPushButton("Paint")
        self.erase_button = QPushButton("Erase")
        self.click_check = QCheckBox("Click to segment")
        self.click_check.setToolTip("Click: new object · Ctrl-click: add to it · Shift-click: not the object.\n"
                                    "The object is painted with the selected class on unpainted pixels.")
        rows = form()
        rows.addRow("Brush", hbox(self.brush_spin, self.paint_button, self.erase_button))
        rows.addRow(self.click_check)
        self.layout_.addLayout(rows)
        self.add(note("Click: new object · Ctrl-click: add · Shift-click: not the object"))
        self.options_section = Section("Click options", expanded=False)
        self.options_section.layout_.addLayout(self._options_form())
        self.add(self.options_section)

        self.live = LatestWins(model.clicks.compute, name="click-to-segment")
        self._awaiting: int | None = None  # the job whose result is still to be painted
        self.live.finished.connect(self._on_done)
        self.brush_spin.valueChanged.connect(self._set_brush)
        self.paint_button.clicked.connect(lambda: self._set_mode("paint"))
        self.erase_button.clicked.connect(lambda: self._set_mode("erase"))
        self.click_check.toggled.connect(self._update_callback)
        self.links = EventLinks(self)
        self.links.connect(model.annotation_changed, self._on_annotation)
        self.links.on_close(self._stop)
        self._on_annotation(model.annotation)

    def _options_form(self):
        self.method_combo = QComboBox()
        self.method_combo.addItems(CLICK_METHODS)
        self.tolerance_spin = spin(0, 1e6, 0.0, step=0.01, decimals=3,
                                   tip="Flood tolerance in intensity units; auto: from the local background")
        self.tolerance_spin.setSpecialValueText("auto")
        self.radius_spin = spin(10, 1e6, 300.0, step=50.0, decimals=0, suffix=" Å",
                                tip="Half-size of the search window around the click.")
        self.split_spin = spin(0, 1e5, 30.0, step=5.0, suffix=" Å",
                               tip="Cut touching neighbours off at the neck (minimum centre distance); "
                                   "off keeps the whole region.")
        self.split_spin.setSpecialValueText("off")
        self.sam_weights_edit = QLineEdit()
        self.sam_weights_edit.setPlaceholderText("local weights file (.pth); never downloaded")
        self.sam_model_combo = QComboBox()
        self.sam_model_combo.addItems(SAM_MODELS)
        self.sam_model_combo.setEditable(True)
        rows = form()
        rows.addRow("Method", self.method_combo)
        rows.addRow("Tolerance", self.tolerance_spin)
        rows.addRow("Search radius", self.radius_spin)
        rows.addRow("Split at necks", self.split_spin)
        if sam_available():  # optional: micro-sam / segment-anything, from local weights only
            self.method_combo.addItem(SAM_METHOD)
            browse = QPushButton("…")
            browse.setMaximumWidth(30)
            browse.clicked.connect(self._choose_sam_weights)
            rows.addRow("SAM weights", hbox(self.sam_weights_edit, browse))
            rows.addRow("SAM model", self.sam_model_combo)
        else:
            rows.addRow(note("Segment Anything: install micro-sam (optional) to enable it here."))
        return rows

    def options(self) -> ClickOptions:
        return ClickOptions(method=self.method_combo.currentText(), tolerance=self.tolerance_spin.value() or None,
                            max_radius=self.radius_spin.value(), split_distance=self.split_spin.value(),
                            sam_weights=self.sam_weights_edit.text(), sam_model=self.sam_model_combo.currentText())

    @property
    def idle(self) -> bool:
        """No click being segmented, none computed but not painted yet."""
        return self.live.idle and self._awaiting is None

    # -- brush ----------------------------------------------------------------------------------
    def _on_annotation(self, layer) -> None:
        if layer is not None:
            self.brush_spin.blockSignals(True)
            self.brush_spin.setValue(int(round(layer.brush_size)))
            self.brush_spin.blockSignals(False)

    def _set_brush(self, size: int) -> None:
        if self.model.annotation is not None:
            self.model.annotation.brush_size = size

    def _set_mode(self, mode: str) -> None:
        layer = self.model.annotation
        if layer is None:
            notify.show_warning("Make an annotation first (New annotation).")
            return
        self.click_check.setChecked(False)  # a brush stroke must not also click an object
        layer.mode = mode
        self.viewer.layers.selection.active = layer

    # -- clicks ---------------------------------------------------------------------------------
    def set_in_front(self, in_front: bool) -> None:
        self.in_front = bool(in_front)
        self._update_callback()

    @property
    def clicking(self) -> bool:
        """Is the click-to-segment mouse callback in the viewer?"""
        return self._mouse_click in self.viewer.mouse_drag_callbacks

    def _update_callback(self, *_args) -> None:
        callbacks = self.viewer.mouse_drag_callbacks
        active = self.click_check.isChecked() and self.in_front
        if active and self._mouse_click not in callbacks:
            callbacks.append(self._mouse_click)
            if self.model.annotation is not None:
                self.model.annotation.mode = "pan_zoom"  # a click segments, it does not paint
        elif not active and self._mouse_click in callbacks:
            callbacks.remove(self._mouse_click)
        if not self.click_check.isChecked():
            self.model.clicks.reset()

    def _mouse_click(self, viewer, event) -> None:
        if event.type != "mouse_press" or self.model.image is None:
            return
        point = self.model.image.world_to_data(event.position)
        modifiers = {str(getattr(m, "name", m)).lower() for m in event.modifiers}
        mode = "background" if "shift" in modifiers else ("add" if modifiers & {"control", "meta"} else "new")
        self.click_at(point, mode=mode)

    def click_at(self, point, *, mode: str = "new"):
        """Segment (``"new"``), extend (``"add"``) or cut back (``"background"``) an object at
        ``point`` (data coordinates of the image, pixels), in a worker. Returns the job id or None."""
        try:
            request = self.model.click(point, mode=mode, options=self.options())
        except ValueError as exc:
            notify.show_error(str(exc))
            return None
        if request is None:
            return None
        self._awaiting = self.live.submit(self.model.clicks.unpainted())
        return self._awaiting

    def _on_done(self, job_id, batch, result, error) -> None:
        if job_id == self._awaiting:
            self._awaiting = None
        if error is not None:
            self.model.clicks.drop(batch)
            log.error("click to segment failed", exc_info=error)
            notify.show_error(f"Click to segment failed: {type(error).__name__}: {error}")
            return
        for message in self.model.paint_clicks(result):
            notify.show_error(message)

    def _choose_sam_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Segment Anything weights", "", "Weights (*.pth *.pt)")
        if path:
            self.sam_weights_edit.setText(path)

    def _stop(self) -> None:
        self.live.stop()
        if self._mouse_click in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._mouse_click)
