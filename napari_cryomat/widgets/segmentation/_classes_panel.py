"""Classes view: the class table (label value, name, colour), add / remove, interpolation between
slices. Selecting a row paints with that class; double-click a colour to change it."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from napari_cryomat.widgets._base import EventLinks, Section, TaskRunner, hbox, notify
from napari_cryomat.widgets.segmentation._controls import note, start_job

__all__ = ["ClassesPanel"]


class ClassesPanel(Section):
    """The class table of a :class:`SegmentationModel`."""

    #: rows shown without scrolling (the five default classes and three more)
    VISIBLE_ROWS = 8
    ROW_HEIGHT = 22

    def __init__(self, model, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__("Classes of the annotation (label value = class)", expanded=True, parent=parent)
        self.model = model
        self.runner = runner
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Value", "Name", "Colour"])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.ROW_HEIGHT)
        self.table.verticalHeader().setMinimumSectionSize(self.ROW_HEIGHT)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.add_button = QPushButton("Add class")
        self.remove_button = QPushButton("Remove class")
        self.interpolate_button = QPushButton("Interpolate slices")
        self.interpolate_button.setToolTip(
            "Fill the slices between annotated slices of a stack or tomogram (along the first axis).")
        self.add(self.table)
        # ilastik keeps pixel classes and objects apart: the particle and click layers number their objects, and
        # a user read particle #2 of "... particles" as a dendrite (gui21 item 7)
        self.instances_note = note("For painting and the pixel classifier. Automatic particles number their "
                                   "objects 1, 2, 3, … in a layer of their own: those numbers are not classes.")
        self.add(self.instances_note)
        self.add(hbox(self.add_button, self.remove_button, self.interpolate_button))

        self.add_button.clicked.connect(lambda: self.model.classes.add())
        self.remove_button.clicked.connect(self.remove_selected)
        self.interpolate_button.clicked.connect(self.interpolate)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.table.currentCellChanged.connect(lambda row, *_: self.model.select_class(row))
        self.links = EventLinks(self)
        self.links.connect(model.classes.changed, self.fill)
        self.fill()

    def fill(self) -> None:
        """Show the model's classes; the table is as tall as its rows (up to VISIBLE_ROWS)."""
        rows = self.model.classes.rows
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        for r, c in enumerate(rows):
            value = QTableWidgetItem(str(c["id"]))
            value.setFlags(value.flags() & ~Qt.ItemIsEditable)
            colour = QTableWidgetItem(c["colour"])
            colour.setBackground(QColor(c["colour"]))
            colour.setData(Qt.DecorationRole, QColor(c["colour"]))  # still seen when the row is selected
            colour.setForeground(QColor("black" if QColor(c["colour"]).lightness() > 140 else "white"))
            colour.setFlags(colour.flags() & ~Qt.ItemIsEditable)
            colour.setToolTip("Double-click to change the colour")
            self.table.setItem(r, 0, value)
            self.table.setItem(r, 1, QTableWidgetItem(c["name"]))
            self.table.setItem(r, 2, colour)
        self.table.blockSignals(False)
        self._fit_height()

    def _fit_height(self) -> None:
        shown = max(1, min(self.table.rowCount(), self.VISIBLE_ROWS))
        frame = 2 * self.table.frameWidth()
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + shown * self.ROW_HEIGHT + frame)

    def showEvent(self, event):  # noqa: N802 (Qt name)
        # napari's style sheet (a taller header) applies only once the dock is in its window
        self._fit_height()
        super().showEvent(event)

    def remove_selected(self) -> None:
        try:
            self.model.classes.remove(self.table.currentRow())
        except ValueError as exc:
            notify.show_warning(str(exc))

    def interpolate(self):
        return start_job(self.runner, self.model.interpolation_job)

    def _on_item_changed(self, item) -> None:
        if item.column() == 1:
            self.model.classes.rename(item.row(), item.text())

    def _on_double_click(self, row: int, column: int) -> None:
        if column != 2:
            return
        current = QColor(self.model.classes.rows[row]["colour"])
        colour = QColorDialog.getColor(current, self, "Class colour")
        if colour.isValid():
            self.model.classes.recolour(row, colour.name())
