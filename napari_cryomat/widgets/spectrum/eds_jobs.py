"""What the EDS panel runs in workers: identification with reasons and quantification (Cliff–Lorimer
with user or theoretical k-factors, zeta-factors with dose, absorption from a thickness). Plain
requests in, results out; no Qt, no viewer. Requests are built on the GUI thread from the
Spectrum imaging model (:class:`SpectrumModel`) and the panel's fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

import numpy as np

from napari_cryomat.core import eds
from napari_cryomat.core._progress import report, sub_progress
from napari_cryomat.widgets.spectrum._jobs import SpectrumImage, parse_k_factors

__all__ = ["EdsIdentifyRequest", "EdsQuantRequest", "EdsQuantResult", "compute_eds_identification",
           "compute_eds_quant", "identification_html", "quant_request"]

METHODS = {"Cliff–Lorimer": "cliff_lorimer", "zeta-factor": "zeta"}
#: Identify's progress bar share of summing the SI (read band by band); the fit takes the rest: 0.4 s of 15 s on the
#: 75 x 100 x 2048 Bruker map, which showed "50 %" for 15 s when the sum had half of the bar
SUM_SHARE = 0.1


@dataclass(frozen=True, eq=False)
class EdsIdentifyRequest:
    source: SpectrumImage
    spectrum: np.ndarray | None  # the ROI sum, or None: the whole SI (summed in the worker)
    fwhm: float
    beam_energy_kev: float


@dataclass(frozen=True, eq=False)
class EdsQuantRequest:
    source: SpectrumImage
    elements: tuple[str, ...]
    windows: dict
    fwhm: float
    method: str  # "cliff_lorimer" | "zeta"
    factors: dict  # user factors, {} for theoretical
    dose: float | None
    thickness: float | None  # Å, Cliff–Lorimer absorption
    take_off_angle: float
    beam_energy_kev: float
    min_counts: float = 0.0  # pixels with fewer summed net counts are left out (NaN)


@dataclass(eq=False)
class EdsQuantResult:
    request: EdsQuantRequest
    quant: eds.Quantification
    maps: dict = field(default_factory=dict)


def compute_eds_identification(request: EdsIdentifyRequest, progress=None) -> eds.Identification:
    report(progress, 0.0)
    spectrum = request.spectrum
    if spectrum is None:  # band by band: a lazy SI is never loaded whole
        from napari_cryomat.core.spectral import iter_si_chunks

        spectrum = np.zeros(request.source.si.shape[-1])
        for _rows, block in iter_si_chunks(request.source.si, progress=sub_progress(progress, 0.0, SUM_SHARE)):
            spectrum += block.sum(axis=(0, 1), dtype=np.float64)
    out = eds.identify_elements(spectrum, energy=request.source.energy, fwhm_mn_ka=request.fwhm,
                                beam_energy_kev=request.beam_energy_kev,
                                progress=sub_progress(progress, SUM_SHARE if request.spectrum is None else 0.0, 1.0))
    report(progress, 1.0)
    return out


def compute_eds_quant(request: EdsQuantRequest, progress=None) -> EdsQuantResult:
    src = request.source
    maps = eds.eds_maps(src.si, energy=src.energy, elements=list(request.elements), fwhm_mn_ka=request.fwhm,
                        windows=request.windows or None, progress=sub_progress(progress, 0.0, 0.9))
    quant = eds.quantify({el: m.data for el, m in maps.items()}, method=request.method,
                         k_factors=request.factors if request.method == "cliff_lorimer" else None,
                         zeta_factors=request.factors if request.method == "zeta" else None,
                         dose=request.dose, thickness=request.thickness, take_off_angle=request.take_off_angle,
                         beam_energy_kev=request.beam_energy_kev, min_total=request.min_counts)
    report(progress, 1.0)
    return EdsQuantResult(request, quant, maps)


def quant_request(source: SpectrumImage, elements, windows, fwhm: float, *, method: str, source_of_factors: str,
                  factors_text: str, dose_text: str, thickness_nm: float, take_off_angle: float,
                  beam_energy_kev: float, min_counts: float = 0.0) -> EdsQuantRequest:
    """Check the panel's fields and build the request; ValueError says what to change."""
    elements = tuple(elements)
    if len(elements) < 2 and method == "cliff_lorimer":
        raise ValueError("Cliff–Lorimer needs at least two elements: type them in Elements (e.g. 'Fe, Pt').")
    factors = {}
    if source_of_factors == "user":
        factors = parse_k_factors(factors_text)
        kind = "k-factor" if method == "cliff_lorimer" else "zeta-factor"
        missing = [el for el in elements if el.split("_")[0] not in factors and el not in factors]
        if missing:
            raise ValueError(f"Give a {kind} for {', '.join(missing)} (e.g. '{missing[0]}: 1.0'), or choose "
                             "'theoretical'.")
        factors = {el: factors.get(el, factors.get(el.split("_")[0])) for el in elements}
    dose = None
    if method == "zeta":
        try:
            dose = float(dose_text)
        except ValueError:
            raise ValueError(f"Dose must be a number of electrons per pixel (e.g. 1e8); got '{dose_text}'.") from None
        if not dose > 0:
            raise ValueError("Dose must be > 0 electrons per pixel (beam current × dwell time / e).")
    thickness = float(thickness_nm) * 10.0 if thickness_nm > 0 else None
    return EdsQuantRequest(source, elements, {el: dict(w) for el, w in windows.items() if el in elements}, fwhm,
                           method, factors, dose, thickness, float(take_off_angle), float(beam_energy_kev),
                           float(min_counts))


def unexplained_text(found: eds.Identification, notes=()) -> str:
    """The unexplained peaks, "0.44 keV, 1.20 keV", each followed by the note of the spectrum image's
    ``metadata["not_lines"]`` range (``{"from_eV", "to_eV", "why"}``) it falls in, if any: what a file or a
    demo says is no line there (the EDS demo's continuum roll-off)."""
    items = []
    for e in found.unexplained:
        why = [n["why"] for n in notes if float(n["from_eV"]) <= e <= float(n["to_eV"])]
        items.append(f"{e / 1000:.2f} keV" + (f" ({escape(why[0], quote=False)})" if why else ""))
    return ", ".join(items)


def identification_html(found: eds.Identification, max_rejected: int = 6, notes=()) -> str:
    """Chosen elements with their reasons, then the strongest rejected candidates with theirs.

    The reasons are plain text from the core ("adds only 2.3σ (< 5σ)"): escaped, so a "<" is shown
    and does not open a tag that swallows the rest of the text.
    """
    if not found.elements:
        text = "No element found above the noise."
    else:
        text = "<b>Found</b>: " + ", ".join(found.elements)
        text += f" (energy offset {found.calibration_shift:+.0f} eV)"
        for el in found.elements:
            text += f"<br>• <b>{el}</b>: {escape(found.reasons.get(el, ''))}"
    rejected = [(el, r) for el, r in found.reasons.items() if el not in found.elements]
    rejected.sort(key=lambda item: ("adds only" in item[1], item[0]))  # family / peak reasons first
    if rejected:
        text += "<br><b>Rejected</b>:"
        for el, r in rejected[:max_rejected]:
            text += f"<br>• {el}: {escape(r.removeprefix('rejected: '))}"
        if len(rejected) > max_rejected:
            text += f"<br>… and {len(rejected) - max_rejected} more candidates with weaker evidence"
    if found.unexplained:
        text += "<br><b>Unexplained peaks</b>: " + unexplained_text(found, notes)
    return text
