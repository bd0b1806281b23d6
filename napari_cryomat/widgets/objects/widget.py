"""The Objects and classes dock: measure labelled objects in physical units, a sortable table that
selects objects in the viewer, colour by a property, histograms, shape classes, tracking over time
with growth curves, CSV export.

The state is in :class:`~._model.ObjectsModel` (measurements live in the objects layer's
``features``); the panels gather parameters and draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import EventLinks, ScrollPanel, Section, TaskRunner
from napari_cryomat.widgets.objects._model import ObjectsModel
from napari_cryomat.widgets.objects.classes_panel import ClassesPanel
from napari_cryomat.widgets.objects.export_panel import ExportPanel
from napari_cryomat.widgets.objects.measure_panel import ColourPanel, MeasurePanel
from napari_cryomat.widgets.objects.table_panel import TablePanel
from napari_cryomat.widgets.objects.tracking_panel import TrackingPanel

if TYPE_CHECKING:
    import napari

__all__ = ["ObjectTableWidget"]


class ObjectTableWidget(QWidget):
    """Measure, table, colour, histogram, classify, track, export.

    ``model`` holds the state (see :class:`ObjectsModel`); the panels are ``measure_panel``,
    ``table_panel``, ``colour_panel``, ``classes_panel``, ``tracking_panel`` and
    ``export_panel``; ``runner`` runs one computation at a time with progress and Cancel.
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = ObjectsModel(napari_viewer)
        self.runner = TaskRunner("Objects")
        self.measure_panel = MeasurePanel(napari_viewer, self.model, self.runner)
        self.table_panel = TablePanel(self.model)
        self.export_panel = ExportPanel(self.model)
        self.colour_panel = ColourPanel(self.model, self.runner)
        self.classes_panel = ClassesPanel(self.model, self.runner, self.table_panel)
        self.tracking_panel = TrackingPanel(self.model, self.runner)

        panel = ScrollPanel()
        self.sections = {
            "measure": Section("Measure"),
            "colour": Section("Colour and histogram"),
            "classes": Section("Shape classes", expanded=False),
            "tracking": Section("Tracking (time series)", expanded=False),
        }
        self.sections["measure"].add(self.measure_panel)
        self.sections["colour"].add(self.colour_panel)
        self.sections["classes"].add(self.classes_panel)
        self.sections["tracking"].add(self.tracking_panel)
        panel.add(self.sections["measure"])
        panel.add(self.table_panel, stretch=1)  # a tall dock shows more rows
        panel.add(self.export_panel)
        for key in ("colour", "classes", "tracking"):
            panel.add(self.sections[key])
        panel.finish()
        panel.add_footer(self.runner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel)
        self.panel = panel
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)  # fill the dock (see ScrollPanel)

        # a time series opens the tracking section: "Measure" then "Track" with no setup
        time_check = self.measure_panel.time_check
        time_check.toggled.connect(self.sections["tracking"].set_expanded)
        self.sections["tracking"].set_expanded(time_check.isChecked())
        self._links = EventLinks(self)
        self._links.on_close(self.model.close)
