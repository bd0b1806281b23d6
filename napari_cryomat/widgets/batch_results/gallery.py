"""The object gallery: one class at a time, a grid of thumbnails (image around the object, its
outline in yellow). Clicking a thumbnail asks for that object (``object_clicked``)."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QSize, Qt, Signal
from qtpy.QtGui import QIcon, QImage, QPixmap
from qtpy.QtWidgets import QComboBox, QLabel, QListView, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import EmptyViewNote, placeholder_while_empty

__all__ = ["GalleryPanel", "ROW_ROLE"]

ROW_ROLE = Qt.UserRole  # the objects-table row of a thumbnail
#: what the gallery says while it holds no thumbnail
EMPTY_NOTE = "Open an output folder: the objects of the chosen shape class appear here as thumbnails."


def _pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888)
    return QPixmap.fromImage(image.copy())  # copy: the numpy buffer goes away


class GalleryPanel(QWidget):
    """Class chooser and thumbnail grid; :meth:`show_thumbnails` fills it, the view asks for them."""

    class_changed = Signal(int)
    object_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, icon: int = 72):
        super().__init__(parent)
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("shape classes found across all files (1 = the most common)")
        placeholder_while_empty(self.class_combo, "no classes yet",
                                "Open a batch output folder above: its shape classes are listed here.")
        self.description = QLabel("")  # the chosen class's mean shape, in numbers
        self.description.setWordWrap(True)
        self._descriptions: dict[int, tuple[str, str]] = {}
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.grid = QListWidget()
        self.grid.setViewMode(QListView.IconMode)
        self.grid.setIconSize(QSize(icon, icon))
        self.grid.setGridSize(QSize(icon + 8, icon + 8))
        self.grid.setResizeMode(QListView.Adjust)
        self.grid.setMovement(QListView.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setMinimumHeight(2 * icon + 30)
        self.grid.setToolTip("click an object to open its image with the object selected")
        self.empty_note = EmptyViewNote(self.grid, EMPTY_NOTE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.class_combo)
        layout.addWidget(self.description)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.status)
        self.class_combo.currentIndexChanged.connect(self._on_class)
        self.grid.itemClicked.connect(lambda item: self.object_clicked.emit(int(item.data(ROW_ROLE))))

    def set_classes(self, counts: dict[int, int], descriptions: dict[int, tuple[str, str]] | None = None) -> None:
        """Fill the chooser with ``{class: count}`` (class 0: not classified, listed last), each class with its
        ``(short, full)`` description: "class 1: Ø 166 Å, round" in the chooser, the count and the full one
        ("52 objects · equivalent diameter …") under it and in its tooltip."""
        self._descriptions = dict(descriptions or {})
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        # the shape classes first, the objects not classified last: the gallery opens on class 1, not on the
        # specks of a cautioned file (the review's batch opened on 331 007 of them)
        for class_id, n in sorted(counts.items(), key=lambda item: (item[0] == 0, item[0])):
            label = f"class {class_id}" if class_id > 0 else "not classified"
            short, full = self._descriptions.get(class_id, ("", ""))
            # the count goes under the chooser: "class 1 (138 objects): Ø 65 Å, oval" was cut to "…, ova" in a
            # 420 px dock, and the shape word is what the chooser is for
            full = " · ".join(part for part in (f"{n} objects", full) if part)
            self._descriptions[class_id] = (short, full)
            self.class_combo.addItem(label + (f": {short}" if short else f" ({n} objects)"), class_id)
            self.class_combo.setItemData(self.class_combo.count() - 1, full, Qt.ToolTipRole)
        self.class_combo.blockSignals(False)
        self.grid.clear()
        if counts:
            self._on_class(0)

    def current_class(self) -> int | None:
        data = self.class_combo.currentData()
        return None if data is None else int(data)

    def _on_class(self, _index: int) -> None:
        class_id = self.current_class()
        self.description.setText(self._descriptions.get(class_id, ("", ""))[1] if class_id is not None else "")
        if class_id is not None:
            self.grid.clear()
            self.status.setText("loading thumbnails…")
            self.class_changed.emit(class_id)

    def show_thumbnails(self, thumbnails, tooltips: dict[int, str]) -> None:
        """``thumbnails``: (row, RGB array or None); rows without a picture are listed as missing."""
        self.grid.clear()
        missing = 0
        for row, rgb in thumbnails:
            if rgb is None:
                missing += 1
                continue
            item = QListWidgetItem(QIcon(_pixmap(rgb)), "")
            item.setData(ROW_ROLE, int(row))
            item.setToolTip(tooltips.get(int(row), ""))
            self.grid.addItem(item)
        text = f"{self.grid.count()} objects shown"
        if missing:
            text += f"; {missing} could not be read (image moved or changed since the run)"
        self.status.setText(text)

    def items(self) -> list[QListWidgetItem]:
        return [self.grid.item(i) for i in range(self.grid.count())]
