"""The objects table: a Qt model over a layer's ``features`` DataFrame (as napari's own features
table), sorted through a QSortFilterProxyModel, in a QTableView that reports rows of the DataFrame.

The model keeps each column as a numpy array, so drawing and sorting a few thousand rows reads
arrays, not pandas cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from qtpy.QtCore import QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, QSortFilterProxyModel, Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from napari_cryomat.widgets.objects._features import INDEX

__all__ = ["FeaturesTableModel", "FeaturesTableView", "SORT_ROLE"]

#: the role holding a cell's raw value (float for numbers), by which the proxy sorts
SORT_ROLE = Qt.UserRole


def _text(value) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return ""
        return f"{int(value)}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


class FeaturesTableModel(QAbstractTableModel):
    """Read-only Qt model of a features DataFrame; napari's ``index`` key column is not shown."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._names: list[str] = []
        self._columns: list[np.ndarray] = []
        self._rows = 0

    def set_features(self, features: pd.DataFrame | None) -> None:
        """Show ``features`` (None or empty: an empty table)."""
        self.beginResetModel()
        if features is None:
            self._names, self._columns, self._rows = [], [], 0
        else:
            self._names = [str(c) for c in features.columns if c != INDEX]
            self._columns = [features[c].to_numpy() for c in features.columns if c != INDEX]
            self._rows = len(features)
        self.endResetModel()

    @property
    def column_names(self) -> list[str]:
        return list(self._names)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt name)
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt name)
        return 0 if parent.isValid() else len(self._names)

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        value = self._columns[index.column()][index.row()]
        numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        if role == Qt.DisplayRole:
            return _text(value)
        if role == SORT_ROLE:
            return float(value) if numeric else str(value)
        if role == Qt.TextAlignmentRole and numeric:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None

    def headerData(self, section: int, orientation, role=Qt.DisplayRole):  # noqa: N802 (Qt name)
        if role != Qt.DisplayRole:
            return None
        if orientation == Qt.Horizontal:
            return self._names[section] if section < len(self._names) else None
        return str(section + 1)

    def flags(self, index: QModelIndex):
        return Qt.ItemIsSelectable | Qt.ItemIsEnabled


class FeaturesTableView(QTableView):
    """A sortable table of a :class:`FeaturesTableModel`; rows are reported as rows of the
    DataFrame whatever the sort order."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.source = FeaturesTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.source)
        self.proxy.setSortRole(SORT_ROLE)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(-1, Qt.AscendingOrder)  # unsorted until a header is clicked
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.horizontalHeader().setDefaultSectionSize(90)
        self.verticalHeader().setDefaultSectionSize(22)
        self.verticalHeader().setVisible(False)
        self.setMinimumHeight(120)

    def set_features(self, features: pd.DataFrame | None) -> None:
        self.source.set_features(features)

    def column_of(self, name: str) -> int:
        """View column of the DataFrame column ``name`` (-1 if absent)."""
        names = self.source.column_names
        return names.index(name) if name in names else -1

    def selected_rows(self) -> list[int]:
        """DataFrame rows selected, in the order they are shown."""
        rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        return [self.proxy.mapToSource(self.proxy.index(r, 0)).row() for r in rows]

    def select_rows(self, rows) -> None:
        """Select DataFrame rows ``rows`` (whole rows) and show the first."""
        selection = QItemSelection()
        last = self.source.columnCount() - 1
        for row in rows:
            start = self.proxy.mapFromSource(self.source.index(int(row), 0))
            if start.isValid():
                selection.select(start, self.proxy.index(start.row(), last))
        flags = QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows
        self.selectionModel().select(selection, flags)
        if not selection.isEmpty():
            self.scrollTo(selection.indexes()[0])

    def value(self, view_row: int, column: str):
        """Raw value shown at ``view_row`` (in the current sort order) in column ``column``."""
        return self.proxy.index(view_row, self.column_of(column)).data(SORT_ROLE)
