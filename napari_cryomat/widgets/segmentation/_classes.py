"""The class table of an annotation: label value -> name and colour. No Qt.

A class is a plain dict ``{"id": 1, "name": "particle", "colour": "#e6194b"}`` (the form autosaves
keep). Colours come from the one class palette of :mod:`napari_cryomat.widgets._base.layers`, so
class 3 has the same colour here, in a prediction and in the object table.
"""

from __future__ import annotations

from collections.abc import Iterable

from psygnal import Signal

from napari_cryomat.core.annotation import DEFAULT_CLASSES
from napari_cryomat.widgets._base.layers import class_colormap, palette_colour

__all__ = ["ClassTable", "default_classes"]


def default_classes() -> list[dict]:
    """The default classes (names from :data:`core.annotation.DEFAULT_CLASSES`), palette colours."""
    return [{"id": i + 1, "name": name, "colour": palette_colour(i + 1)} for i, (name, _) in enumerate(DEFAULT_CLASSES)]


def _clean(classes: Iterable[dict]) -> list[dict]:
    return [{"id": int(c["id"]), "name": str(c["name"]), "colour": str(c["colour"])} for c in classes]


class ClassTable:
    """An ordered list of classes with a ``changed`` signal (emitted after every edit)."""

    changed = Signal()

    def __init__(self, classes: Iterable[dict] | None = None):
        self._rows = _clean(classes) if classes is not None else default_classes()

    @property
    def rows(self) -> list[dict]:
        """A copy of the classes, in table order."""
        return [dict(c) for c in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def ids(self) -> list[int]:
        return [c["id"] for c in self._rows]

    def id_at(self, row: int) -> int | None:
        """Label value of table row ``row`` (None outside the table)."""
        return self._rows[row]["id"] if 0 <= row < len(self._rows) else None

    def replace(self, classes: Iterable[dict]) -> None:
        """Take another class table (a restored autosave's, an annotation layer's)."""
        rows = _clean(classes)
        if rows != self._rows:
            self._rows = rows
            self.changed.emit()

    def add(self, name: str | None = None, colour: str | None = None) -> dict:
        """Append a class with the next free label value; returns it."""
        new_id = max(self.ids(), default=0) + 1
        row = {"id": new_id, "name": name or f"class {new_id}", "colour": colour or palette_colour(new_id)}
        self._rows.append(row)
        self.changed.emit()
        return dict(row)

    def remove(self, row: int) -> None:
        """Remove table row ``row`` (ValueError when there is no such row)."""
        if not 0 <= row < len(self._rows):
            raise ValueError("Select the class to remove in the table first.")
        del self._rows[row]
        self.changed.emit()

    def rename(self, row: int, name: str) -> None:
        if self._rows[row]["name"] != name:
            self._rows[row]["name"] = str(name)
            self.changed.emit()

    def recolour(self, row: int, colour: str) -> None:
        if self._rows[row]["colour"] != colour:
            self._rows[row]["colour"] = str(colour)
            self.changed.emit()

    def colormap(self):
        """napari DirectLabelColormap: each class its colour, 0 transparent, anything else grey."""
        return class_colormap({c["id"]: c["colour"] for c in self._rows})

    def features(self):
        """The table as a labels layer's ``features`` (index = label value)."""
        import pandas as pd

        return pd.DataFrame({
            "index": [c["id"] for c in self._rows],
            "class": [c["name"] for c in self._rows],
            "colour": [c["colour"] for c in self._rows],
        })

    def label_dtype(self):
        """The smallest labels dtype that holds every class value."""
        import numpy as np

        return np.uint8 if max(self.ids(), default=0) < 255 else np.int32
