"""Export: the table (the objects layer's features, units in the header) and the growth curves."""

from __future__ import annotations

from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QWidget

from napari_cryomat.widgets._base import show_error, show_info
from napari_cryomat.widgets.objects._model import ObjectsModel

__all__ = ["ExportPanel"]


class ExportPanel(QWidget):
    """Two buttons; each asks for a file unless a path is given (scripts, tests)."""

    def __init__(self, model: ObjectsModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.export_button = QPushButton("Export table CSV…")
        self.growth_export_button = QPushButton("Export growth CSV…")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.export_button)
        layout.addWidget(self.growth_export_button)
        self.export_button.clicked.connect(lambda: self.export_csv())
        self.growth_export_button.clicked.connect(lambda: self.export_growth_csv())
        model.features_changed.connect(self._enable)
        model.tracks_changed.connect(self._enable)
        self._enable()

    def _enable(self) -> None:
        self.export_button.setEnabled(self.model.features is not None)
        self.growth_export_button.setEnabled(self.model.tracked is not None)

    def _ask(self, title: str, name: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, name, "CSV (*.csv)")
        return path or None

    def export_csv(self, path: str | None = None) -> str | None:
        """Write the table to CSV; returns the path (None if cancelled or failed)."""
        if self.model.features is None:
            show_error("Measure first: the table is empty.")
            return None
        path = path or self._ask("Export objects", f"{self.model.layer.name}.csv")
        if not path:
            return None
        try:
            self.model.export_csv(path)
        except OSError as exc:
            show_error(f"Could not write {path}: {exc.strerror or exc}. Choose another file.")
            return None
        show_info(f"{len(self.model.features)} objects written to {path}")
        return path

    def export_growth_csv(self, path: str | None = None) -> str | None:
        """Growth curves (one column per track) and rates (``<path>_rates.csv``) to CSV."""
        if self.model.tracked is None:
            show_error("Track first (Tracking): there are no growth curves yet.")
            return None
        path = path or self._ask("Export growth curves", "growth.csv")
        if not path:
            return None
        try:
            path, rates_path = self.model.export_growth_csv(path)
        except OSError as exc:
            show_error(f"Could not write {path}: {exc.strerror or exc}. Choose another file.")
            return None
        show_info(f"Growth curves written to {path} and rates to {rates_path}")
        return path
