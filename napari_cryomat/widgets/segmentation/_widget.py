"""The Segmentation dock: image and annotation, then the panels, in a scroll panel that fits a laptop.

Layout, top to bottom: image, annotation, New annotation / Restore autosave and the autosave status
(always visible: a "NOT SAVING" must never be folded away); automatic particles (second: it needs only
the image, and it is what a new user with a micrograph of particles is after; below the annotation tools
it was off a laptop's screen); classes; brush and click to segment; pixel classifier; autosave settings
(folded). The progress bar with Cancel stays below the scrolled part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QFormLayout, QPushButton, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import (
    DockVisibility,
    EventLinks,
    LayerCombo,
    ScrollPanel,
    TaskRunner,
    hbox,
    is_grey_image,
    notify,
)
from napari_cryomat.widgets.segmentation._autosave_panel import AutosavePanel
from napari_cryomat.widgets.segmentation._classes_panel import ClassesPanel
from napari_cryomat.widgets.segmentation._classifier_panel import ClassifierPanel
from napari_cryomat.widgets.segmentation._model import ROLE, SegmentationModel
from napari_cryomat.widgets.segmentation._particles_panel import ParticlesPanel
from napari_cryomat.widgets.segmentation._tools_panel import ToolsPanel

if TYPE_CHECKING:
    import napari

__all__ = ["SegmentationWidget"]


def _paintable(layer) -> bool:
    """Labels the user paints on: not a result the tools computed (a prediction, particles)."""
    return layer.metadata.get(ROLE) not in ("prediction", "particles")


class SegmentationWidget(QWidget):
    """Annotate with classes (autosaved), segment particles automatically, train a pixel
    classifier from strokes, click to segment."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: QWidget | None = None):
        super().__init__(parent)
        from napari.layers import Image, Labels

        self.viewer = napari_viewer
        self.model = SegmentationModel(napari_viewer)
        self.runner = TaskRunner("Segmentation")
        self.image_combo = LayerCombo(napari_viewer, (Image,), predicate=is_grey_image, placeholder="no grey image",
                                      why="No grey image in the viewer: open a micrograph (File > Open).")
        self.labels_combo = LayerCombo(napari_viewer, (Labels,), predicate=_paintable, placeholder="none yet",
                                       why="No annotation yet: press New annotation (or Segment particles).")
        self.new_button = QPushButton("New annotation")
        self.new_button.setToolTip("A labels layer matched to the image: same shape, scale and units.")
        self.autosave_panel = AutosavePanel(self.model)
        self.classes_panel = ClassesPanel(self.model, self.runner)
        self.tools_panel = ToolsPanel(self.model, napari_viewer)
        self.classifier_panel = ClassifierPanel(self.model, self.runner)
        self.particles_panel = ParticlesPanel(self.model, self.runner)

        top = QWidget()
        rows = QFormLayout(top)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.addRow("Image", self.image_combo)
        rows.addRow("Annotation", self.labels_combo)
        rows.addRow(hbox(self.new_button, self.autosave_panel.restore_button))
        rows.addRow(self.autosave_panel.status_label)
        self.panel = ScrollPanel()
        for widget in (top, self.particles_panel, self.classes_panel, self.tools_panel, self.classifier_panel,
                       self.autosave_panel):
            self.panel.add(widget)
        self.panel.finish()
        self.panel.add_footer(self.runner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)

        self.new_button.clicked.connect(self.new_annotation)
        self.image_combo.currentIndexChanged.connect(self._on_image_chosen)
        self.labels_combo.currentIndexChanged.connect(self._on_annotation_chosen)
        self.links = EventLinks(self)
        self.links.connect(self.model.annotation_changed, self._show_annotation)
        self.links.on_close(self.model.close)
        DockVisibility(self, self.tools_panel.set_in_front)
        self._on_image_chosen()
        self._on_annotation_chosen()

    # the controls other tools' tests and scripts drive (kept from the one-module widget)
    @property
    def train_button(self):
        return self.classifier_panel.train_button

    @property
    def trees_spin(self):
        return self.classifier_panel.trees_spin

    @property
    def idle(self) -> bool:
        """No job, click or autosave work running."""
        return not self.runner.busy and self.tools_panel.idle and self.autosave_panel.idle

    def new_annotation(self):
        """A labels layer matched to the image, with the class table, in paint mode."""
        try:
            layer = self.model.new_annotation()
        except ValueError as exc:
            notify.show_error(str(exc))
            return None
        self.autosave_panel.look_for_autosave()
        return layer

    def _on_image_chosen(self, *_args) -> None:
        image = self.image_combo.layer()
        self.model.set_image(image)
        self.particles_panel.on_image_changed()
        self.autosave_panel.look_for_autosave()
        if image is not None:  # follow with the annotation of this image, if one is open
            for layer in self.labels_combo.candidates():
                if layer.metadata.get("cryomat_image") == image.name and layer.metadata.get(ROLE) == "annotation":
                    self.labels_combo.set_layer(layer)
                    break

    def _on_annotation_chosen(self, *_args) -> None:
        self.model.set_annotation(self.labels_combo.layer())

    def _show_annotation(self, layer) -> None:
        if layer is not None and self.labels_combo.currentText() != layer.name:
            self.labels_combo.set_layer(layer)
