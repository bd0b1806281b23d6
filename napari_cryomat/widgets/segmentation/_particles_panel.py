"""Automatic particles view: threshold + watershed on the image, or frame by frame on a movie.

Every setting starts at "auto": read off the image (polarity, particle size, smoothing, threshold,
minimum size, split distance). After a run each "auto" shows the value it stood for, and the line
under the button says what was assumed; typing a value overrides that one setting only.
"""

from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QPushButton, QWidget

from napari_cryomat.widgets._base import Section, TaskRunner
from napari_cryomat.widgets.segmentation._controls import form, note, set_note, spin, start_job
from napari_cryomat.widgets.segmentation._model import ParticleOptions

__all__ = ["ParticlesPanel"]

AUTO = -1.0  # a spin box at its minimum reads "auto"


def auto_spin(hi: float, *, step: float = 1.0, decimals: int = 1, suffix: str = "", tip: str = "") -> QDoubleSpinBox:
    box = spin(AUTO, hi, AUTO, step=step, decimals=decimals, suffix=suffix, tip=tip + "\nAt its minimum: auto.")
    box.setSpecialValueText("auto")
    box.setMinimumWidth(130)  # room for "auto (1234 Å²)" once the estimate is shown
    return box


def auto_value(box: QDoubleSpinBox, *, zero_is_auto: bool = False) -> float | None:
    value = box.value()
    return None if value <= AUTO or (zero_is_auto and value <= 0) else value


class ParticlesPanel(Section):
    """Segment particles of the model's image into a labels layer."""

    def __init__(self, model, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__("Automatic particles", expanded=True, parent=parent)
        self.model = model
        self.runner = runner
        defaults = ParticleOptions()
        self.polarity_combo = QComboBox()
        self.polarity_combo.addItems(["auto", "dark", "bright"])
        self.polarity_combo.setToolTip("dark: bright-field TEM / cryo-EM; bright: HAADF-STEM; auto: read off the image")
        self.threshold_combo = QComboBox()
        self.threshold_combo.addItems(["auto", "otsu", "li", "local", "detect"])
        self.threshold_combo.setToolTip("local: for uneven illumination or ice (removes the support's slow variation);\n"
                                        "detect: faint small particles (about 20 counts/px), found by a significance\n"
                                        "test against the noise and grown half way;\n"
                                        "auto: detect for faint small particles; local when the support varies by more\n"
                                        "than 1/6 of the contrast or the contrast is under twice the noise; else otsu")
        self.frames_check = QCheckBox("frame by frame (first axis is time)")
        self.frames_check.setToolTip("A movie (T, Y, X) is segmented one frame at a time, not as a volume, "
                                     "with the settings of its first frame.")
        self.segment_button = QPushButton("Segment particles")
        self.assumed_note = note("")
        rows = form()
        rows.addRow("Particles are", self.polarity_combo)
        rows.addRow("Threshold", self.threshold_combo)
        rows.addRow(self.frames_check)
        rows.addRow(self.segment_button)
        rows.addRow(self.assumed_note)
        self.layout_.addLayout(rows)

        # rarely changed: folded away
        self.options_section = Section("Particle options", expanded=False)
        self.diameter_spin = auto_spin(1e6, step=5.0, decimals=0, suffix=" Å",
                                       tip="Typical particle diameter; the scales below follow from it.")
        self.smoothing_spin = auto_spin(1000, suffix=" Å", tip="Gaussian smoothing σ (0: none)")
        self.min_size_spin = auto_spin(1e9, step=100.0, decimals=0, suffix=" Å²",
                                       tip="Smaller objects are dropped (Å³ for volumes).")
        self.split_check = QCheckBox("split touching particles")
        self.split_check.setChecked(defaults.split)
        self.split_spin = auto_spin(1e5, step=5.0, suffix=" Å",
                                    tip="Minimum distance between particle centres (about the smallest radius).")
        options = form()
        options.addRow("Diameter", self.diameter_spin)
        options.addRow("Smoothing σ", self.smoothing_spin)
        options.addRow("Minimum size", self.min_size_spin)
        options.addRow(self.split_check)
        options.addRow("Centres ≥", self.split_spin)
        self.options_section.layout_.addLayout(options)
        self.add(self.options_section)

        self.segment_button.clicked.connect(self.segment)
        self.split_check.toggled.connect(self.split_spin.setEnabled)
        model.particle_settings_changed.connect(self.show_settings)
        self.on_image_changed()

    def options(self) -> ParticleOptions:
        return ParticleOptions(
            threshold=self.threshold_combo.currentText().split()[0],
            polarity=self.polarity_combo.currentText().split()[0],
            smoothing=auto_value(self.smoothing_spin), min_size=auto_value(self.min_size_spin),
            split=self.split_check.isChecked(), split_distance=auto_value(self.split_spin),
            diameter=auto_value(self.diameter_spin, zero_is_auto=True),
            series=self.frames_check.isEnabled() and self.frames_check.isChecked(),
        )

    def segment(self):
        """Segment the particles of the image in a worker; the result is a labels layer."""
        return start_job(self.runner, lambda: self.model.particles_job(self.options()))

    def show_settings(self, settings) -> None:
        """What the last run assumed: each "auto" shows its value; the note says it in one line."""
        for box, value, fmt in ((self.diameter_spin, settings.diameter, "{:.0f} Å"),
                                (self.smoothing_spin, settings.smoothing, "{:.1f} Å"),
                                (self.min_size_spin, settings.min_size, "{:.0f} Å²"),
                                (self.split_spin, settings.split_distance, "{:.0f} Å")):
            box.setSpecialValueText(f"auto: {fmt.format(value)}")
        for combo, value in ((self.polarity_combo, settings.polarity), (self.threshold_combo, settings.threshold)):
            combo.setItemText(0, f"auto ({value})")
        caution = settings.caution()
        set_note(self.assumed_note, (f"⚠ {caution}\n" if caution else "")
                 + "Assumed (* read off the image): " + settings.describe())

    def on_image_changed(self, *_args) -> None:
        """Frame by frame is offered for 3D images and on by default for movies; estimates of another
        image no longer apply."""
        image = self.model.image
        self.frames_check.setEnabled(image is not None and image.data.ndim == 3)
        self.frames_check.setChecked(self.model.image_is_series())
        for box in (self.diameter_spin, self.smoothing_spin, self.min_size_spin, self.split_spin):
            box.setSpecialValueText("auto")
        for combo in (self.polarity_combo, self.threshold_combo):
            combo.setItemText(0, "auto")
        set_note(self.assumed_note, "")
