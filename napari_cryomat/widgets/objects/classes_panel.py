"""Shape classes: unsupervised (k-means, Gaussian mixture) or from the user's tags (random forest),
computed in a worker; the objects are then coloured by class."""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QSpinBox, QWidget

from napari_cryomat.widgets._base import TaskRunner, hbox, show_error
from napari_cryomat.widgets.objects._jobs import CLASS_METHODS, compute_classify
from napari_cryomat.widgets.objects._model import ObjectsModel
from napari_cryomat.widgets.objects._view import start_job
from napari_cryomat.widgets.objects.table_panel import TablePanel

__all__ = ["ClassesPanel"]


class ClassesPanel(QWidget):
    """Method, number of classes, tags from the table's selected rows, Classify."""

    def __init__(self, model: ObjectsModel, runner: TaskRunner, table: TablePanel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.runner = runner
        self.table = table
        self.class_method = QComboBox()
        for key, text in CLASS_METHODS.items():
            self.class_method.addItem(text, key)
        self.n_classes_spin = QSpinBox()
        self.n_classes_spin.setRange(0, 20)
        self.n_classes_spin.setSpecialValueText("auto")
        self.n_classes_spin.setToolTip("auto: 2 to 6 classes, best silhouette (k-means) or BIC (mixture)")
        self.tag_spin = QSpinBox()
        self.tag_spin.setRange(1, 20)
        self.tag_spin.setToolTip("The class given to the selected rows.")
        self.tag_button = QPushButton("Tag selected rows as")
        self.clear_tags_button = QPushButton("Clear tags")
        self.classify_button = QPushButton("Classify shapes")
        self.class_status = QLabel("")
        self.class_status.setWordWrap(True)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Method", self.class_method)
        form.addRow("Classes", self.n_classes_spin)
        form.addRow(hbox(self.tag_button, self.tag_spin, self.clear_tags_button))
        form.addRow(self.classify_button)
        form.addRow(self.class_status)
        self.tag_button.clicked.connect(lambda: self.tag_selected())
        self.clear_tags_button.clicked.connect(self.model.clear_tags)
        self.classify_button.clicked.connect(self.classify)
        model.classes_changed.connect(self._show_status)

    def _show_status(self, text: str) -> None:
        self.class_status.setText(text)

    @property
    def method(self) -> str:
        return self.class_method.currentData()

    def tag_selected(self, value: int | None = None) -> None:
        """Tag the table's selected rows as class ``value`` (default: the spin box)."""
        try:
            self.model.tag_rows(self.table.selected_rows(), int(value or self.tag_spin.value()))
        except ValueError as exc:
            show_error(str(exc))

    def classify(self):
        """Classify in a worker; returns the worker (None if nothing started)."""
        try:
            request = self.model.classify_request(self.method, self.n_classes_spin.value() or None)
        except ValueError as exc:
            show_error(str(exc))
            return None
        return start_job(self.runner, compute_classify, request, self.model.apply_classify, label="Classify")
