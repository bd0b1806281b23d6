"""Pixel classifier view: train on the annotation's strokes and predict, once or while painting."""

from __future__ import annotations

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QPushButton, QSpinBox, QWidget

from napari_cryomat.widgets._base import EventLinks, Section, TaskRunner, hbox, notify
from napari_cryomat.widgets.segmentation._controls import form, note, set_note, spin, start_job
from napari_cryomat.widgets.segmentation._model import ClassifierOptions

__all__ = ["ClassifierPanel"]


class ClassifierPanel(Section):
    """Train & predict, and retrain after each pause in painting (as in ilastik)."""

    #: pause in painting before a live retraining, ms
    LIVE_DELAY_MS = 800

    def __init__(self, model, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__("Pixel classifier", expanded=True, parent=parent)
        self.model = model
        self.runner = runner
        defaults = ClassifierOptions()
        self.sigma_max_spin = spin(1, 64, defaults.sigma_max, suffix=" px",
                                   tip="Largest feature scale: about the size of the structures.")
        self.trees_spin = QSpinBox()
        self.trees_spin.setRange(5, 500)
        self.trees_spin.setValue(defaults.n_estimators)
        self.trees_spin.setToolTip("Trees of the random forest: more is steadier and slower.")
        self.train_button = QPushButton("Train && predict")
        self.train_button.setToolTip("Paint strokes of at least two classes on the annotation first "
                                     "(e.g. particle and void).")
        self.live_check = QCheckBox("retrain while painting")
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Write the trained classifier to a .skops file (safe format, version-checked).")
        self.load_button = QPushButton("Load…")
        self.load_button.setToolTip("Read a classifier saved earlier; Apply classifies the image with it.")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Classify the image with the current classifier (no training).")
        self.status_label = note(model.classifier_status or "Paint strokes of ≥ 2 classes, then train.")
        rows = form()
        rows.addRow("Largest scale", self.sigma_max_spin)
        rows.addRow("Trees", self.trees_spin)
        self.layout_.addLayout(rows)
        self.add(hbox(self.train_button, self.live_check, stretch_last=True))
        self.add(hbox(self.save_button, self.load_button, self.apply_button))
        self.add(self.status_label)

        self.live_timer = QTimer(self)
        self.live_timer.setSingleShot(True)
        self.live_timer.setInterval(self.LIVE_DELAY_MS)
        self.live_timer.timeout.connect(self._retrain)
        self.train_button.clicked.connect(self.train)
        self.save_button.clicked.connect(lambda: self.save())
        self.load_button.clicked.connect(lambda: self.load())
        self.apply_button.clicked.connect(self.apply)
        self.links = EventLinks(self)
        self.links.connect(model.painted, self._on_painted)
        self.links.connect(model.classifier_changed, lambda text: set_note(self.status_label, text))

    def options(self) -> ClassifierOptions:
        return ClassifierOptions(sigma_max=self.sigma_max_spin.value(), n_estimators=self.trees_spin.value())

    def train(self):
        """Train on the strokes and predict every pixel, in a worker."""
        return start_job(self.runner, lambda: self.model.training_job(self.options()))

    def save(self, path: str | None = None) -> None:
        """Save the classifier (asks where when ``path`` is None)."""
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            path, _ = QFileDialog.getSaveFileName(self, "Save pixel classifier", "classifier.skops",
                                                  "Pixel classifier (*.skops)")
            if not path:
                return
        try:
            notify.show_info(self.model.save_classifier(path))
        except ValueError as exc:
            notify.show_error(str(exc))

    def load(self, path: str | None = None) -> None:
        """Load a saved classifier (asks which when ``path`` is None); a wrong file is a message."""
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(self, "Load pixel classifier", "", "Pixel classifier (*.skops)")
            if not path:
                return
        try:
            notify.show_info(self.model.load_classifier(path))
        except ValueError as exc:
            notify.show_error(str(exc))

    def apply(self):
        """Classify the image with the current classifier, in a worker."""
        return start_job(self.runner, self.model.prediction_job)

    def _on_painted(self) -> None:
        if self.live_check.isChecked() and self.model.classifier is not None:
            self.live_timer.start()  # restarted by every stroke: retrain after a pause

    def _retrain(self) -> None:
        if not self.live_check.isChecked():
            return
        if self.runner.busy:  # try again after the running job
            self.live_timer.start()
            return
        self.train()
