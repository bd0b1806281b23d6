"""EDS identification (with a reason per candidate element) and quantification (Cliff–Lorimer with
user or theoretical k-factors, zeta-factors with dose, absorption from the thickness).

How to add it (the Spectrum imaging dock wires it in)::

    from napari_cryomat.widgets.spectrum.eds_panel import EdsQuantPanel
    panel = EdsQuantPanel(viewer, model, runner)        # model: SpectrumModel, runner: TaskRunner (optional)
    section = Section("EDS identification and quantification", expanded=False)
    section.add(panel)
    dock.add(section)                                   # show it only in EDS mode: model.mode_changed
    identify_button.clicked.connect(panel.identify)     # the dock's one Identify, next to Elements

Without a ``runner`` the panel makes its own progress bar and Cancel (shown under it). It reads the
chosen spectrum image, elements, windows and detector FWHM from the model; the ROI sum (if an ROI
is drawn) is what it identifies, at the panel's beam energy; the elements found go into the
model's Elements (and so into the dock's field), the reasons into the panel. Quantification
results become layers "<El> at.% (CL|zeta)" placed on the SI and "mass thickness (zeta)" in kg/m².
Every row fits a ~380 px dock: long text wraps, nothing is clipped at the dock's edge.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.core.units import angstrom_units
from napari_cryomat.widgets._base import TaskRunner, hbox, show_error, show_info
from napari_cryomat.widgets._base.layers import upsert_layer
from napari_cryomat.widgets.spectrum._view_parts import run_request
from napari_cryomat.widgets.spectrum.eds_jobs import (
    METHODS,
    EdsQuantResult,
    compute_eds_identification,
    compute_eds_quant,
    identification_html,
    quant_request,
)

__all__ = ["EdsQuantPanel"]

QUANT_KEY = "eds_quant"  # metadata key of the layers this panel makes


class EdsQuantPanel(QWidget):
    """Identify (reasons per element, found elements put in Elements), then quantify; see the module
    docstring for wiring.

    ``identify()`` and ``quantify()`` return the started worker (None when the input is refused,
    with a message naming what to change).
    """

    def __init__(self, viewer, model, runner: TaskRunner | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer, self.model = viewer, model
        self.own_runner = runner is None
        self.runner = runner or TaskRunner("EDS")
        self.identification = None
        self.last_quant: EdsQuantResult | None = None

        self.beam_spin = _spin(1.0, 1000.0, 200.0, " kV", 0)
        self.beam_spin.setToolTip("Beam energy: which lines Identify may expect (overvoltage) and the theoretical "
                                  "k- and zeta-factors")
        self.found_label = _rich_label()
        self.method_combo = QComboBox()
        self.method_combo.addItems(list(METHODS))
        self.source_combo = QComboBox()
        self.source_combo.addItems(["theoretical", "user"])
        self.factors_edit = QLineEdit()
        self.factors_edit.setPlaceholderText("e.g. Fe: 1.0, Pt: 1.6 (k) or Fe: 400, Pt: 700 (zeta, kg/m²)")
        self.dose_edit = QLineEdit("1e8")
        self.dose_edit.setToolTip("Electrons per pixel: beam current × dwell time / e")
        self.thickness_spin = _spin(0.0, 10000.0, 0.0, " nm", 1)
        self.thickness_spin.setToolTip("Cliff–Lorimer absorption correction; 0: none")
        self.toa_spin = _spin(1.0, 90.0, 22.0, "°", 1)
        self.toa_spin.setToolTip("Detector take-off angle, for the absorption correction")
        self.min_counts_spin = _spin(0.0, 1e9, 20.0, "", 0)
        self.min_counts_spin.setToolTip("Pixels with fewer net counts (all elements) are left out: NaN, not noise")
        self.quant_button = QPushButton("Quantify")
        self.quant_label = _rich_label()
        self._lay_out()
        self.quant_button.clicked.connect(self.quantify)
        self.method_combo.currentTextChanged.connect(self._on_method)
        self.source_combo.currentTextChanged.connect(self._on_method)
        self._on_method()

    def _lay_out(self) -> None:
        # one form, one field per row (two spin boxes side by side overflow a laptop-sized dock)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        form.addRow("Beam", self.beam_spin)
        form.addRow(self.found_label)
        form.addRow("Method", hbox(self.method_combo, self.source_combo))
        self.factors_label = QLabel("k-factors")
        form.addRow(self.factors_label, self.factors_edit)
        self.dose_label = QLabel("Dose (e⁻/px)")
        form.addRow(self.dose_label, self.dose_edit)
        self.thickness_label = QLabel("Thickness")
        form.addRow(self.thickness_label, self.thickness_spin)
        form.addRow("Take-off", self.toa_spin)
        form.addRow("Min. counts", self.min_counts_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.quant_button)
        layout.addWidget(self.quant_label)
        if self.own_runner:
            layout.addWidget(self.runner)

    # -- actions ----------------------------------------------------------------------------------
    def identify(self):
        """Identify the elements of the ROI's (or the whole SI's) summed spectrum in a worker; the found
        elements then replace the model's Elements and the reasons show under Beam."""
        return run_request(self.runner, lambda: self.model.identify_request(self.beam_spin.value()),
                           compute_eds_identification, on_done=self._identified, label="Identify")

    def _identified(self, found) -> None:
        self.identification = found
        self.found_label.setText(identification_html(found, notes=self.model.not_lines()))
        errors = self.model.apply_identification(found)
        if errors:
            show_error(" ".join(errors))
        elif not found.elements:
            show_info("No element lines found above the noise.")

    def quantify(self):
        method = METHODS[self.method_combo.currentText()]

        def request():
            self.model.refuse_xray_excited("Quantify")
            return quant_request(self.model.source(), self.model.elements(), self.model.windows, self.model.fwhm,
                                 method=method, source_of_factors=self.source_combo.currentText(),
                                 factors_text=self.factors_edit.text(), dose_text=self.dose_edit.text(),
                                 thickness_nm=self.thickness_spin.value(), take_off_angle=self.toa_spin.value(),
                                 beam_energy_kev=self.beam_spin.value(), min_counts=self.min_counts_spin.value())

        return run_request(self.runner, request, compute_eds_quant, on_done=self._show_quant, label="Quantify")

    def _show_quant(self, result: EdsQuantResult) -> None:
        q, src = result.quant, result.request.source
        tag = "CL" if q.method == "cliff_lorimer" else "zeta"
        place = {"scale": (src.pixel_size, src.pixel_size), "translate": src.translate, "units": angstrom_units(2)}
        info = {"method": q.method, "factors": q.factors, "factor_source": q.factor_source, "lines": q.lines}
        for el, data in q.atomic_percent.items():
            upsert_layer(self.viewer, data, name=f"{el} at.% ({tag})", colormap="viridis", contrast_limits=(0.0, 100.0),
                         metadata={QUANT_KEY: dict(info, element=el)}, **place)
        if q.mass_thickness is not None and q.method == "zeta":
            upsert_layer(self.viewer, q.mass_thickness.astype("float32"), name="mass thickness (zeta)",
                         colormap="magma", metadata={QUANT_KEY: dict(info, unit="kg/m²")}, **place)
        self.last_quant = result
        self.quant_label.setText(_quant_text(q))

    def _on_method(self, *_args) -> None:
        zeta = self.method_combo.currentText() == "zeta-factor"
        user = self.source_combo.currentText() == "user"
        self.factors_label.setText("zeta-factors" if zeta else "k-factors")
        for widget in (self.factors_label, self.factors_edit):
            widget.setVisible(user)
        for widget in (self.dose_label, self.dose_edit):
            widget.setVisible(zeta)
        self.thickness_spin.setEnabled(not zeta)  # zeta: the mass thickness comes out of the data


def _quant_text(q) -> str:
    kind = "k" if q.method == "cliff_lorimer" else "ζ"
    factors = ", ".join(f"{el} {v:.3g}" for el, v in q.factors.items())
    text = f"{kind}-factors <b>{q.factor_source}</b>: {factors} ({', '.join(q.lines.values())})."
    if q.absorption is not None:
        text += f" Absorption corrected ({q.iterations} iterations)."
    means = ", ".join(f"{el} {_nanmean(a):.1f}" for el, a in q.atomic_percent.items())
    text += f"<br>Mean at.%: {means}."
    for note in q.notes:
        text += f"<br><i>{note}</i>"
    return text


def _nanmean(a) -> float:
    import numpy as np

    ok = np.isfinite(a)
    return float(a[ok].mean()) if ok.any() else float("nan")


def _spin(low, high, value, suffix, decimals) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin


def _rich_label() -> QLabel:
    """Word-wrapped rich text that never asks for more width than the dock gives it."""
    label = QLabel("")
    label.setTextFormat(Qt.RichText)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    return label

