"""Automatic particles view: threshold + watershed on the image, or frame by frame on a movie."""

from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QComboBox, QPushButton, QWidget

from napari_cryomat.widgets._base import Section, TaskRunner
from napari_cryomat.widgets.segmentation._controls import form, spin, start_job
from napari_cryomat.widgets.segmentation._model import ParticleOptions

__all__ = ["ParticlesPanel"]


class ParticlesPanel(Section):
    """Segment particles of the model's image into a labels layer."""

    def __init__(self, model, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__("Automatic particles", expanded=True, parent=parent)
        self.model = model
        self.runner = runner
        defaults = ParticleOptions()
        self.polarity_combo = QComboBox()
        self.polarity_combo.addItems(["dark", "bright"])
        self.polarity_combo.setToolTip("dark: bright-field TEM / cryo-EM; bright: HAADF-STEM")
        self.threshold_combo = QComboBox()
        self.threshold_combo.addItems(["otsu", "li", "local"])
        self.threshold_combo.setToolTip("local: for uneven illumination or ice (removes the slow background)")
        self.frames_check = QCheckBox("frame by frame (first axis is time)")
        self.frames_check.setToolTip("A movie (T, Y, X) is segmented one frame at a time, not as a volume.")
        self.segment_button = QPushButton("Segment particles")
        rows = form()
        rows.addRow("Particles are", self.polarity_combo)
        rows.addRow("Threshold", self.threshold_combo)
        rows.addRow(self.frames_check)
        rows.addRow(self.segment_button)
        self.layout_.addLayout(rows)

        # rarely changed: folded away
        self.options_section = Section("Particle options", expanded=False)
        self.smoothing_spin = spin(0, 1000, defaults.smoothing, suffix=" Å", tip="Gaussian smoothing σ")
        self.min_size_spin = spin(0, 1e9, defaults.min_size, step=100.0, decimals=0, suffix=" Å²",
                                  tip="Smaller objects are dropped (Å³ for volumes).")
        self.split_check = QCheckBox("split touching, centres ≥")
        self.split_check.setChecked(defaults.split)
        self.split_spin = spin(1, 1e5, defaults.split_distance, step=5.0, suffix=" Å",
                               tip="Minimum distance between particle centres (about the smallest radius).")
        options = form()
        options.addRow("Smoothing σ", self.smoothing_spin)
        options.addRow("Minimum size", self.min_size_spin)
        options.addRow(self.split_check, self.split_spin)
        self.options_section.layout_.addLayout(options)
        self.add(self.options_section)

        self.segment_button.clicked.connect(self.segment)
        self.split_check.toggled.connect(self.split_spin.setEnabled)
        self.on_image_changed()

    def options(self) -> ParticleOptions:
        return ParticleOptions(
            threshold=self.threshold_combo.currentText(), polarity=self.polarity_combo.currentText(),
            smoothing=self.smoothing_spin.value(), min_size=self.min_size_spin.value(),
            split=self.split_check.isChecked(), split_distance=self.split_spin.value(),
            series=self.frames_check.isEnabled() and self.frames_check.isChecked(),
        )

    def segment(self):
        """Segment the particles of the image in a worker; the result is a labels layer."""
        return start_job(self.runner, lambda: self.model.particles_job(self.options()))

    def on_image_changed(self, *_args) -> None:
        """Frame by frame is offered for 3D images and on by default for movies."""
        image = self.model.image
        self.frames_check.setEnabled(image is not None and image.data.ndim == 3)
        self.frames_check.setChecked(self.model.image_is_series())
