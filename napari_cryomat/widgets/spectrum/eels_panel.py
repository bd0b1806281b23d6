"""EELS quantification (atomic % from edge integrals and hydrogenic cross-sections, or the linear
model fit) and low-loss tools (ZLP alignment, t/λ and t, Fourier-log, Fourier-ratio).

Each action builds a request on the GUI thread (:class:`EelsTools`) and runs in the tool's
:class:`TaskRunner` (progress, Cancel); results become layers placed on the spectrum image.
"""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import LayerCombo, TaskRunner, hbox, show_info, show_warning
from napari_cryomat.widgets.spectrum._eels_jobs import (
    QUANT_METHODS,
    EelsTools,
    LowLossResult,
    Microscope,
    QuantResult,
    compute_lowloss,
    compute_quant,
)
from napari_cryomat.widgets.spectrum._model import SpectrumModel, is_spectrum_image
from napari_cryomat.widgets.spectrum._view_parts import run_request

__all__ = ["EelsPanel"]

#: mean-free-path formulas as the combo shows them -> (core name, parameter label, range, default)
MFP = {
    "Iakoubovskii": ("iakoubovskii", " g/cm³", (0.1, 25.0), 2.0),
    "Malis": ("malis", " Zeff", (1.0, 100.0), 6.0),
}


def _spin(low: float, high: float, value: float, suffix: str, decimals: int = 1) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin


class EelsPanel(QWidget):
    """Microscope (E0, α, β) → Atomic % (integrals | linear fit); Align ZLP, t/λ and t, Fourier-log,
    Fourier-ratio with a chosen low-loss SI. Every ``run_*`` returns the worker or None."""

    def __init__(self, viewer, model: SpectrumModel, runner: TaskRunner, parent: QWidget | None = None):
        from napari.layers import Image

        super().__init__(parent)
        self.model = model
        self.runner = runner
        self.tools = EelsTools(model)
        self.e0_spin = _spin(20.0, 1000.0, 200.0, " kV", 0)
        self.alpha_spin = _spin(0.0, 200.0, 0.0, "")
        self.alpha_spin.setToolTip("convergence semi-angle α, mrad")
        self.beta_spin = _spin(0.1, 500.0, 30.0, "")
        self.beta_spin.setToolTip("collection semi-angle β, mrad")
        self.quant_combo = QComboBox()
        self.quant_combo.addItems(list(QUANT_METHODS))
        self.quant_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.quant_combo.setMinimumContentsLength(10)
        self.quant_button = QPushButton("Atomic %")
        self.quant_button.setToolTip("EELS atomic % per pixel: edge integrals / hydrogenic σ(β, Δ) (Egerton), or a "
                                     "power law + edges fitted at every pixel (overlapping edges)")
        self.align_button = QPushButton("Align ZLP")
        self.align_button.setToolTip("Shift every spectrum so its zero-loss peak sits at 0 eV (drift across the scan)")
        self.thickness_button = QPushButton("t/λ, t")
        self.mfp_combo = QComboBox()
        self.mfp_combo.addItems(list(MFP))
        self.mfp_combo.setToolTip("Inelastic mean free path λ: Iakoubovskii et al. 2008 (from the density, with α "
                                  "and β) or Malis et al. 1988 (from the effective atomic number)")
        self.mfp_spin = _spin(0.1, 25.0, 2.0, " g/cm³", 1)
        self.fourier_log_button = QPushButton("Fourier-log")
        self.fourier_log_button.setToolTip("Single-scattering distribution of the low-loss SI (plural scattering removed)")
        self.low_combo = LayerCombo(viewer, (Image,), predicate=is_spectrum_image, placeholder="open the low-loss SI",
                                    why="No spectrum image in the viewer: open the low-loss SI recorded with the "
                                        "core-loss one (File > Open).")
        self.low_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.low_combo.setMinimumContentsLength(12)
        self.fourier_ratio_button = QPushButton("Fourier-ratio")
        self.fourier_ratio_button.setToolTip("The core-loss SI (chosen above) deconvolved by the Low-loss SI")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("E0", self.e0_spin)
        form.addRow("α, β (mrad)", hbox(self.alpha_spin, self.beta_spin))
        form.addRow("Quantify", hbox(self.quant_combo, self.quant_button))
        form.addRow("λ from", hbox(self.mfp_combo, self.mfp_spin))
        form.addRow("Low-loss SI", self.low_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(hbox(self.align_button, self.thickness_button))
        layout.addWidget(hbox(self.fourier_log_button, self.fourier_ratio_button))
        layout.addWidget(self.status)

        for spin in (self.e0_spin, self.alpha_spin, self.beta_spin):
            spin.valueChanged.connect(self._microscope_changed)
        self.quant_combo.currentTextChanged.connect(lambda text: setattr(self.tools, "quant_method", text))
        self.mfp_combo.currentTextChanged.connect(self._mfp_changed)
        self.mfp_spin.valueChanged.connect(self._mfp_value)
        self.low_combo.currentIndexChanged.connect(lambda *_: setattr(self.tools, "low_loss_layer",
                                                                      self.low_combo.layer()))
        self.tools.low_loss_layer = self.low_combo.layer()
        self.quant_button.clicked.connect(self.run_quant)
        self.align_button.clicked.connect(lambda: self.run_lowloss("align"))
        self.thickness_button.clicked.connect(lambda: self.run_lowloss("thickness"))
        self.fourier_log_button.clicked.connect(lambda: self.run_lowloss("fourier_log"))
        self.fourier_ratio_button.clicked.connect(lambda: self.run_lowloss("fourier_ratio"))

    # -- parameters -------------------------------------------------------------------------------
    def _microscope_changed(self, *_args) -> None:
        self.tools.microscope = Microscope(self.e0_spin.value(), self.alpha_spin.value(), self.beta_spin.value())

    def _mfp_changed(self, text: str) -> None:
        name, suffix, (low, high), default = MFP[text]
        self.tools.mfp_method = name
        self.mfp_spin.blockSignals(True)
        self.mfp_spin.setRange(low, high)
        self.mfp_spin.setSuffix(suffix)
        self.mfp_spin.setValue(self.tools.zeff if name == "malis" else self.tools.density or default)
        self.mfp_spin.blockSignals(False)

    def _mfp_value(self, value: float) -> None:
        if self.tools.mfp_method == "malis":
            self.tools.zeff = float(value)
        else:
            self.tools.density = float(value)

    # -- actions ----------------------------------------------------------------------------------
    def run_quant(self):
        return run_request(self.runner, self.tools.quant_request, compute_quant, on_done=self._quant_done,
                           label="EELS atomic %")

    def run_lowloss(self, action: str):
        return run_request(self.runner, lambda: self.tools.lowloss_request(action), compute_lowloss,
                           on_done=self._lowloss_done, label=action.replace("_", "-"))

    def _quant_done(self, result: QuantResult) -> None:
        self.tools.show_quant(result)
        text = ", ".join(f"{el} {float(_median(v)):.1f}" for el, v in result.atomic_percent.items())
        sigma = ", ".join(f"σ({el}) {s:.3g} b" for el, s in result.cross_sections.items())
        self.status.setText(f"Median at.% ({result.request.method}): {text}" + (f"<br>{sigma}" if sigma else ""))
        self.status.setToolTip("σ: hydrogenic cross-section integrated over each element's integration window")
        if result.messages:
            show_warning(" ".join(result.messages))

    def _lowloss_done(self, result: LowLossResult) -> None:
        self.tools.show_lowloss(result)
        self.status.setText(result.message)
        show_info(result.message)


def _median(data) -> float:
    import numpy as np

    finite = np.asarray(data)[np.isfinite(data)]
    return float(np.median(finite)) if finite.size else float("nan")
