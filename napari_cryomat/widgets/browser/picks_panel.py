"""What a click in the XY canvas does (navigate, pick, measure), the distance read-out, and the picks'
count, undo, export (CSV, RELION STAR) and import. Gathers choices for the model's
:class:`~napari_cryomat.widgets.browser._picks.Annotations` and turns its errors into messages.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QButtonGroup, QFileDialog, QLabel, QPushButton, QRadioButton, QWidget

from napari_cryomat.widgets._base import EventLinks, Section, hbox, show_error, show_info, show_warning
from napari_cryomat.widgets.browser._model import MODES, BrowserModel

__all__ = ["ClickSection"]


class ClickSection(Section):
    """Mouse mode of the XY canvas, distances in Å, picks in the file's voxel indices."""

    def __init__(self, model: BrowserModel, parent: QWidget | None = None):
        super().__init__("A click in the XY canvas will", parent=parent)
        self.model = model
        self.annotations = model.annotations
        self.mode_buttons = {mode: QRadioButton(mode.capitalize()) for mode in MODES}
        self.mode_buttons[model.mode].setChecked(True)
        self._mode_group = QButtonGroup(self)
        for mode, button in self.mode_buttons.items():
            self._mode_group.addButton(button)
            button.toggled.connect(lambda on, m=mode: on and self._set_mode(m))
        self.distance_label = QLabel("Distance: -")
        self.clear_measure_button = QPushButton("Clear")
        self.clear_measure_button.setToolTip("Forget the distances and remove their layer")
        self.picks_label = QLabel("Picks: 0")
        self.undo_pick_button = QPushButton("Undo pick")
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_star_button = QPushButton("Export STAR…")
        self.import_button = QPushButton("Import…")
        for button in (self.export_csv_button, self.export_star_button, self.import_button):
            button.setToolTip("Picks in the file's own voxel indices (as IMOD and RELION read them)")
        self.add(hbox(*self.mode_buttons.values()))
        self.add(hbox(self.distance_label, self.clear_measure_button))
        self.add(hbox(self.picks_label, self.undo_pick_button))
        self.add(hbox(self.export_csv_button, self.export_star_button, self.import_button))
        for label in (self.distance_label, self.picks_label):
            label.parentWidget().layout().setStretchFactor(label, 1)

        self.clear_measure_button.clicked.connect(self.annotations.clear_measurements)
        self.undo_pick_button.clicked.connect(self.annotations.undo_pick)
        self.export_csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.export_star_button.clicked.connect(lambda: self._export_dialog("star"))
        self.import_button.clicked.connect(self._import_dialog)
        self.links = EventLinks(self)
        self.links.connect(self.annotations.picks_changed, self._show_count)
        self.links.connect(self.annotations.measure_changed, self._show_distance)

    def _set_mode(self, mode: str) -> None:
        self.model.mode = mode

    def _show_distance(self, text: str) -> None:
        self.distance_label.setText(text)

    def _show_count(self, count: int) -> None:
        self.picks_label.setText(f"Picks: {count}")

    # ---- files --------------------------------------------------------------------------
    def export_picks(self, path) -> Path | None:
        """Write the picks to ``path`` (``.star`` or CSV); None, with a message, on failure."""
        try:
            out = self.annotations.export_picks(path)
        except (ValueError, OSError) as exc:
            show_error(f"Tomogram browser: cannot export picks to {Path(path).name}: {exc}")
            return None
        show_info(f"Exported {self.annotations.count} picks to {out}")
        return out

    def import_picks(self, path) -> int:
        """Add the picks of a CSV or STAR file; returns how many (0, with a message, on failure)."""
        try:
            report = self.annotations.import_picks(path)
        except (ValueError, OSError) as exc:
            show_error(f"Tomogram browser: cannot import picks: {exc}")
            return 0
        (show_warning if report.outside else show_info)(report.message)
        return report.count

    def _export_dialog(self, kind: str) -> None:
        source = self.model.source
        if source is None:
            show_error(f"Tomogram browser: {self.model.status}")
            return
        filters = "RELION STAR (*.star)" if kind == "star" else "CSV (*.csv)"
        path, _ = QFileDialog.getSaveFileName(self, "Export picks", f"{source.name}_picks.{kind}", filters)
        if path:
            self.export_picks(path if path.lower().endswith(f".{kind}") else f"{path}.{kind}")

    def _import_dialog(self) -> None:
        if self.model.source is None:
            show_error(f"Tomogram browser: {self.model.status}")
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import picks", "", "Picks (*.star *.csv *.txt);;All files (*)")
        if path:
            self.import_picks(path)
