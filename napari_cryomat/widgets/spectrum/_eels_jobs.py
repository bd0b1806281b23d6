"""EELS quantification and low-loss work of the Spectrum imaging tool: requests in, results out.

Requests are built on the GUI thread by :class:`EelsTools` (every parameter read there, the
spectrum image as an array reference, possibly a lazy dask array); the ``compute_*`` functions
run in the tool's :class:`TaskRunner` worker, call the core (band by band for a lazy SI) and
report progress, so Cancel stops them between bands. :class:`EelsTools` turns results into
layers placed on the SI. No Qt.

Fourier-ratio deconvolution reads the core-loss and low-loss SIs band by band too: the core's
``fourier_ratio_deconvolve`` takes in-memory spectra, so :func:`compute_lowloss` feeds it one band
of rows at a time and writes the result into a memory-mapped temporary file when either SI is
lazy (a plain array otherwise). The ZLP end and width it would take from the spectra it is given
are taken once from the whole low-loss SI, so the result does not depend on the band size.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from napari_cryomat.core import eels_quant, lowloss
from napari_cryomat.core import spectral as core
from napari_cryomat.core._progress import report, sub_progress
from napari_cryomat.widgets._base.layers import upsert_layer
from napari_cryomat.widgets.spectrum._jobs import SpectrumImage, upper_limits

if TYPE_CHECKING:
    from napari_cryomat.widgets.spectrum._model import SpectrumModel

__all__ = [
    "Microscope",
    "QuantRequest",
    "QuantResult",
    "LowLossRequest",
    "LowLossResult",
    "EelsTools",
    "compute_quant",
    "compute_lowloss",
]

QUANT_METHODS = ("edge integrals", "linear model fit")
LOWLOSS_ACTIONS = ("align", "thickness", "fourier_log", "fourier_ratio")


@dataclass(frozen=True)
class Microscope:
    """Beam energy ``e0`` (keV), convergence ``alpha`` and collection ``beta`` semi-angles (mrad)."""

    e0: float = 200.0
    alpha: float = 0.0
    beta: float = 30.0


@dataclass(frozen=True, eq=False)
class QuantRequest:
    source: SpectrumImage
    elements: tuple[str, ...]
    windows: dict
    microscope: Microscope
    method: str = "edge integrals"


@dataclass(eq=False)
class QuantResult:
    request: QuantRequest
    atomic_percent: dict  # element -> (Y, X) float32
    cross_sections: dict = field(default_factory=dict)  # element -> barn (edge integrals)
    messages: tuple[str, ...] = ()


def compute_quant(request: QuantRequest, *, progress=None) -> QuantResult:
    """Worker: atomic percent maps from edge integrals and hydrogenic σ, or from the linear fit."""
    src, mic = request.source, request.microscope
    if len(request.elements) < 2:
        raise ValueError("Atomic ratios need at least two elements: type them in Elements.")
    if request.method == "linear model fit":
        fit = eels_quant.fit_edges(src.si, energy=src.energy, elements=list(request.elements), e0=mic.e0,
                                   beta=mic.beta, alpha=mic.alpha, progress=progress)
        return QuantResult(request, fit.atomic_percent, {}, (f"linear fit: median reduced χ² "
                                                             f"{float(np.nanmedian(fit.chi2)):.2f}",))
    maps = core.eels_maps(src.si, energy=src.energy, elements=list(request.elements), windows=request.windows,
                          progress=sub_progress(progress, 0.0, 0.95))
    at, sigma = eels_quant.quantify_maps(maps, e0=mic.e0, beta=mic.beta, alpha=mic.alpha)
    report(progress, 1.0)
    messages = tuple(m.extra["message"] for m in maps.values() if m.extra.get("message"))
    return QuantResult(request, at, sigma, messages)


@dataclass(frozen=True, eq=False)
class LowLossRequest:
    """One low-loss action on ``source``: "align", "thickness", "fourier_log" or "fourier_ratio"
    (then ``core_loss`` is the core-loss SI and ``background_window`` its pre-edge window)."""

    source: SpectrumImage
    action: str
    microscope: Microscope
    mfp_method: str = "iakoubovskii"
    density: float = 2.0
    zeff: float = 6.0
    core_loss: SpectrumImage | None = None
    background_window: tuple[float, float] | None = None
    max_bytes: int = core.CHUNK_BYTES  # one band of both SIs (Fourier-ratio)


@dataclass(eq=False)
class LowLossResult:
    request: LowLossRequest
    layers: list  # (data, name, kind: "si" | "map", extra metadata)
    message: str = ""


def compute_lowloss(request: LowLossRequest, *, progress=None) -> LowLossResult:
    """Worker: ZLP alignment, t/λ and t, Fourier-log or Fourier-ratio deconvolution."""
    src, action = request.source, request.action
    if action == "align":
        aligned, shifts = lowloss.align_zlp(src.si, energy=src.energy, progress=progress)
        msg = f"ZLP aligned: drift {float(shifts.min()):+.2f} … {float(shifts.max()):+.2f} eV across the scan."
        return LowLossResult(request, [(aligned, f"{src.name} ZLP-aligned", "si", {}),
                                       (shifts, f"ZLP shift ({src.name})", "map", {"units": "eV"})], msg)
    if action == "thickness":
        mic = request.microscope
        if request.mfp_method == "malis":
            lam = lowloss.mean_free_path(e0=mic.e0, beta=mic.beta, zeff=request.zeff, method="malis")
        else:
            lam = lowloss.mean_free_path(e0=mic.e0, beta=mic.beta, alpha=mic.alpha, density=request.density)
        t, t_nm, thr = lowloss.thickness_map(src.si, energy=src.energy, mean_free_path_nm=lam, progress=progress)
        msg = (f"t/λ by log-ratio (zero-loss up to {thr:.1f} eV); λ = {lam:.1f} nm ({request.mfp_method.title()}), "
               f"median t = {float(np.nanmedian(t_nm)):.1f} nm.")
        return LowLossResult(request, [(t, f"t/λ ({src.name})", "map", {"zlp_threshold_eV": thr}),
                                       (t_nm, f"t nm ({src.name})", "map", {"mean_free_path_nm": lam})], msg)
    if action == "fourier_log":
        ssd = lowloss.fourier_log_deconvolve(src.si, energy=src.energy, progress=progress)
        return LowLossResult(request, [(ssd, f"{src.name} SSD (Fourier-log)", "si", {})],
                             "Single-scattering distribution (reconvolved with the ZLP).")
    if action == "fourier_ratio":
        return _fourier_ratio(request, progress)
    raise ValueError(f"Unknown low-loss action {action!r}.")


def _fourier_ratio(request: LowLossRequest, progress) -> LowLossResult:
    cl, lo = request.core_loss, request.source
    if cl is None or request.background_window is None:
        raise ValueError("Fourier-ratio needs the core-loss SI (chosen above) with an element's background window.")
    if cl.si.shape[:2] != lo.si.shape[:2]:
        raise ValueError(f"The core-loss SI {cl.si.shape[:2]} and the low-loss SI {lo.si.shape[:2]} must have the "
                         "same pixels: pick the low-loss SI of the same scan.")
    if not np.isclose(cl.energy[1] - cl.energy[0], lo.energy[1] - lo.energy[0], rtol=1e-3):
        raise ValueError("The core-loss and low-loss SIs must have the same dispersion (eV/channel).")
    # what fourier_ratio_deconvolve takes from the spectra it is given when not told: here from the
    # whole low-loss SI, the same for every band
    threshold, fwhm = lowloss.zero_loss_parameters(lo.si, energy=lo.energy, progress=sub_progress(progress, 0.0, 0.1))
    out = _output(cl.si.shape, lazy=core.is_lazy(cl.si) or core.is_lazy(lo.si))
    for rows, block in core.iter_si_chunks(cl.si, max_bytes=max(1, request.max_bytes // 2),
                                           progress=sub_progress(progress, 0.1, 1.0)):
        edge = core.subtract_background(block, energy=cl.energy, window=request.background_window)
        out[rows] = lowloss.fourier_ratio_deconvolve(edge, _band(lo.si, rows), energy_low_loss=lo.energy,
                                                     zlp_threshold=threshold, fwhm=fwhm)
    if isinstance(out, np.memmap):
        out.flush()
    where = " (memory-mapped temporary file)" if isinstance(out, np.memmap) else ""
    return LowLossResult(request, [(out, f"{cl.name} Fourier-ratio", "si", {})],
                         f"Core loss freed of plural scattering (background subtracted, Gaussian reconvolution of "
                         f"{fwhm:.2f} eV FWHM, ZLP up to {threshold:.1f} eV){where}.")


def _band(si, rows: slice) -> np.ndarray:
    """Rows ``rows`` of a (Y, X, E) SI (numpy, memory map or dask) as float32 in memory."""
    block = si[rows]
    if hasattr(block, "compute"):
        block = block.compute()
    return np.asarray(block, np.float32)


def _output(shape, *, lazy: bool) -> np.ndarray:
    """Where a per-pixel result of ``shape`` goes: memory for an in-memory SI, else a memory map of an
    anonymous temporary file (removed by the system once the layer lets it go)."""
    if not lazy:
        return np.empty(shape, np.float32)
    return np.memmap(tempfile.TemporaryFile(prefix="cryomat-fourier-ratio-"), dtype=np.float32, mode="w+",
                     shape=tuple(shape))


class EelsTools:
    """The EELS quantification and low-loss state of the tool (parameters, layers), no Qt."""

    def __init__(self, model: "SpectrumModel"):
        self.model = model
        self.microscope = Microscope()
        self.quant_method = QUANT_METHODS[0]
        self.mfp_method = "iakoubovskii"
        self.density = 2.0
        self.zeff = 6.0
        self.low_loss_layer = None  # for Fourier-ratio
        self.last_quant: QuantResult | None = None

    def quant_request(self) -> QuantRequest:
        model = self.model
        if model.mode != "EELS":
            raise ValueError("EELS quantification: switch Signal to EELS.")
        src, elements = model.source(), model.elements()
        windows = {el: dict(model.windows[el]) for el in model.moved_windows if el in model.windows}
        return QuantRequest(src, tuple(elements), windows, self.microscope, self.quant_method)

    def lowloss_request(self, action: str) -> LowLossRequest:
        if action not in LOWLOSS_ACTIONS:
            raise ValueError(f"Unknown low-loss action {action!r}.")
        model = self.model
        if action != "fourier_ratio":
            return LowLossRequest(model.source(), action, self.microscope, self.mfp_method, self.density, self.zeff)
        from napari_cryomat.io.spectral import si_from_layer

        if self.low_loss_layer is None or self.low_loss_layer not in model.viewer.layers:
            raise ValueError("Fourier-ratio: choose the low-loss SI of the same scan in 'Low-loss SI'.")
        core_src = model.source()
        si, energy, px, kind = si_from_layer(self.low_loss_layer)
        low = SpectrumImage(self.low_loss_layer.name, si, core.check_energy_axis(energy, si.shape[-1]), px, kind)
        elements = model.elements()
        first = elements[0] if elements else None
        if first is None or first not in model.windows:
            raise ValueError("Fourier-ratio: type the element of the edge (its background window is subtracted first).")
        return LowLossRequest(low, action, self.microscope, core_loss=core_src,
                              background_window=tuple(model.windows[first]["background"]))

    def show_quant(self, result: QuantResult) -> None:
        self.last_quant = result
        place = self.model._placement(result.request.source)
        for el, data in result.atomic_percent.items():
            upsert_layer(self.model.viewer, data, name=f"{el} at.% (EELS)", colormap="viridis",
                         contrast_limits=(0.0, 100.0), blending="translucent",
                         metadata={"spectrum_map": {"element": el, "kind": "at.%", "method": result.request.method,
                                                    "cross_section_barn": result.cross_sections.get(el)}}, **place)

    def show_lowloss(self, result: LowLossResult) -> None:
        from napari_cryomat.io.spectral import spectrum_image_layer

        req = result.request
        src = req.core_loss if req.action == "fourier_ratio" else req.source
        place = self.model._placement(src)
        for data, name, kind, extra in result.layers:
            if kind == "si":
                data = data if isinstance(data, np.memmap) else np.asarray(data)  # a memory map stays one
                layer_data, kwargs, _ = spectrum_image_layer(
                    data, energy_offset=float(src.energy[0]),
                    energy_scale=float(src.energy[1] - src.energy[0]), pixel_size=src.pixel_size, name=name,
                    signal_type="EELS", visible=False, origin=src.translate)
                kwargs = dict(kwargs)
                upsert_layer(self.model.viewer, layer_data, name=kwargs.pop("name"), **kwargs)
            else:
                upsert_layer(self.model.viewer, data, name=name, colormap="inferno", contrast_limits=_limits(data),
                             metadata={"spectrum_map": {"kind": name.split(" (")[0], **extra}}, **place)


def _limits(data) -> tuple[float, float]:
    finite = np.asarray(data)[np.isfinite(data)]
    if finite.size and finite.max() > finite.min():
        return float(np.percentile(finite, 0.5)), float(np.percentile(finite, 99.5))
    return upper_limits(data, 99.5)
