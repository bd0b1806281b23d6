"""The objects table: a view on the objects layer's features. Selecting rows selects the object in
the viewer (its frame or slice, centred); picking an object in the viewer selects its rows."""

from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import EmptyViewNote, hbox
from napari_cryomat.widgets.objects._model import ObjectsModel
from napari_cryomat.widgets.objects.table_model import FeaturesTableView

__all__ = ["TablePanel"]

#: what the table says while it has no row
EMPTY_NOTE = "Press Measure: one row per object (area, size, shape, intensity) appears here; click a row to find it."


class TablePanel(QWidget):
    """The table (sortable by a click on a header) and "show only the selected object"."""

    def __init__(self, model: ObjectsModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.table_view = FeaturesTableView()
        self.table_view.setMinimumHeight(150)
        self.empty_note = EmptyViewNote(self.table_view, EMPTY_NOTE)
        self.highlight_check = QCheckBox("show only the selected object")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table_view, 1)
        self.row = hbox(self.highlight_check, stretch_last=True)
        layout.addWidget(self.row)
        self._syncing = False  # one side is following the other: do not echo back
        self.table_view.selectionModel().selectionChanged.connect(self._on_rows_selected)
        self.highlight_check.toggled.connect(self._on_rows_selected)
        model.features_changed.connect(self.refresh)
        model.label_selected.connect(self._on_label_picked)
        self.refresh()

    def refresh(self) -> None:
        self.table_view.set_features(self.model.features)

    def selected_rows(self) -> list[int]:
        """Rows of the model's features selected in the (possibly sorted) table."""
        return self.table_view.selected_rows()

    def _on_rows_selected(self, *_args) -> None:
        if self._syncing or self.model.features is None:
            return
        rows = self.selected_rows()
        self._syncing = True
        try:
            if rows:
                self.model.select_row(rows[0], only_selected=self.highlight_check.isChecked())
            else:
                self.model.layer.show_selected_label = False
        finally:
            self._syncing = False

    def _on_label_picked(self, label: int) -> None:
        """The user picked an object in the viewer: select its rows, leave the view where it is."""
        if self._syncing:
            return
        self._syncing = True
        try:
            self.table_view.select_rows(self.model.rows_of_label(label))
        finally:
            self._syncing = False
