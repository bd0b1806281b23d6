"""EDS X-ray lines and windows (private; the public surface is :mod:`napari_cryomat.core.eds`).

Complete K, L and M families from xraylib (:mod:`._eds_physics`), the detector resolution
(Fiori/Newbury scaling from the FWHM at Mn Kα), exSpy's integration/background windows and
background windows moved clear of other elements' lines.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_cryomat.core import _eds_physics as phys
from napari_cryomat.core._validate import nonnegative, number, positive, real_array
from napari_cryomat.core.spectral import (
    _MAX_EV,
    _MAX_FWHM,
    _energy_range,
    _nearest_listing,
    _parse_elements_arg,
    _z,
    check_energy_axis,
)

_MAX_BEAM_KEV = 3000.0
_PRINCIPAL_NAMES = ("Ka", "La", "Ma")


@dataclass(frozen=True)
class Line:
    """An X-ray line: ``element``, ``name`` ("Ka", "Lg1", "Mz", "M2N4"...), ``energy`` (eV),
    ``weight`` (intensity relative to the family's principal line Kα, Lα or Mα)."""

    element: str
    name: str
    energy: float
    weight: float

    @property
    def label(self) -> str:
        return f"{self.element} {self.name}"

    @property
    def family(self) -> str:
        return self.name[0]


def _beam(beam_energy_kev) -> float:
    return positive(beam_energy_kev, "beam_energy_kev", unit="keV", high=_MAX_BEAM_KEV)


def eds_lines(element: str, *, energy_range: tuple[float, float] | None = None,
              beam_energy_kev: float = 200.0) -> list[Line]:
    """X-ray lines of ``element``: its complete K, L and M families, sorted by energy.

    Energies from ``xraylib.LineEnergy``; each named line sums its IUPAC transitions (Kα = KL2 +
    KL3, Lγ1 = L2N4, Mζ = M5N3 + M4N2, ...; transitions without a Siegbahn name keep their
    IUPAC name, e.g. "M2N4"). Weights: electron ionisation cross-section at ``beam_energy_kev``
    × fluorescence yield × radiative rate, relative to the family's principal line. Lines below
    100 eV, weaker than 0.5 % of their principal line, or of shells the beam cannot ionise are
    left out.

    Parameters
    ----------
    element : str
        Chemical symbol ("Fe"; "Fe_Ka" is read as "Fe").
    energy_range : (float, float), optional
        Keep lines inside this range, eV.
    beam_energy_kev : float
        Beam energy, keV (default 200).
    """
    z = _z(element)
    energy_range = _energy_range(energy_range)
    lines = _all_eds_lines(z, element.split("_")[0], _beam(beam_energy_kev))
    if energy_range is None:
        return list(lines)
    return [ln for ln in lines if energy_range[0] <= ln.energy <= energy_range[1]]


@functools.lru_cache(maxsize=512)
def _all_eds_lines(z: int, symbol: str, beam_energy_kev: float) -> tuple[Line, ...]:
    return tuple(Line(symbol, n, float(e), float(w)) for n, e, w, _s in phys.grouped_lines(z, beam_energy_kev))


def choose_line(element: str, *, energy: np.ndarray, fwhm_mn_ka: float = 130.0) -> Line:
    """The line used to map ``element``: the highest-energy family (K, then L, then M) whose
    principal line, with its background windows, fits in the recorded range.

    "Pt_Ma" / "Fe_Kb" choose a given line; "Pt_M" the principal line of a family. Raises
    ValueError naming the element, the range and its nearest lines when none fits.
    """
    _z(element)
    energy = check_energy_axis(energy)
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    sym, _, want = element.partition("_")
    lines = eds_lines(sym)
    e_lo, e_hi = energy[0], energy[-1]

    def fits(ln: Line) -> bool:
        w = eds_windows(ln.energy, fwhm_mn_ka=fwhm_mn_ka)
        return w["background_low"][0] >= e_lo and w["background_high"][1] <= e_hi

    if want:
        cand = [ln for ln in lines if ln.name.lower() == want.lower()
                or (len(want) == 1 and ln.name.lower() == want.lower() + "a")]
        if not cand:
            raise ValueError(f"{sym} has no X-ray line {want!r}; its lines are "
                             f"{', '.join(ln.name for ln in lines if ln.weight >= 0.05)}.")
    else:
        cand = sorted((ln for ln in lines if ln.name in _PRINCIPAL_NAMES), key=lambda ln: -ln.energy)
    for ln in cand:
        if fits(ln):
            return ln
    raise ValueError(
        f"{sym} has no X-ray line{(' ' + want) if want else ''} in the recorded range "
        f"{e_lo / 1000:.2f}–{e_hi / 1000:.2f} keV (with room for background windows). Nearest lines: "
        f"{_nearest_listing([ln for ln in lines if ln.name in _PRINCIPAL_NAMES], energy, lambda ln: ln.energy)}. "
        f"Remove {sym} from the elements or record a wider energy range."
    )


def eds_fwhm(line_energy, *, fwhm_mn_ka: float = 130.0):
    """Detector resolution (FWHM, eV) at ``line_energy`` (eV, scalar or array) from the FWHM
    at Mn Kα.

    Fiori & Newbury scaling: ``FWHM(E)² = FWHM(MnKα)² + 2.5 (E − E(MnKα))`` with energies in eV
    and E(MnKα) from xraylib.
    """
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    if np.ndim(line_energy):
        e = real_array(line_energy, "line_energy", dtype=np.float64, min_size=0)
        if np.any(np.abs(e) > _MAX_EV):
            raise ValueError(f"line_energy must lie within ±{_MAX_EV:g} eV.")
    else:
        e = np.float64(number(line_energy, "line_energy", low=-_MAX_EV, high=_MAX_EV, unit="eV"))
    f = np.sqrt(np.maximum(fwhm_mn_ka**2 + 2.5 * (e - _mn_ka_energy()), 1.0))
    return float(f) if f.ndim == 0 else f


@functools.cache
def _mn_ka_energy() -> float:
    import xraylib

    return 1000.0 * xraylib.LineEnergy(25, xraylib.KA_LINE)


def eds_windows(
    line_energy: float,
    *,
    fwhm_mn_ka: float = 130.0,
    integration_width: float = 2.0,
    background_offset: float = 2.0,
    background_width: float = 1.0,
) -> dict[str, tuple[float, float]]:
    """Integration and background windows (eV) for an EDS line, in units of the local FWHM.

    Integration: ``line ± integration_width/2 · FWHM``; background: windows of
    ``background_width · FWHM`` starting ``background_offset · FWHM`` from the line on both
    sides (the HyperSpy/exSpy defaults).

    Returns ``{"integration": (lo, hi), "background_low": (lo, hi), "background_high": (lo, hi)}``.
    """
    e = positive(line_energy, "line_energy", unit="eV", high=_MAX_EV)
    integration_width = positive(integration_width, "integration_width", unit="FWHM", high=100)
    background_offset = nonnegative(background_offset, "background_offset", unit="FWHM", high=100)
    background_width = positive(background_width, "background_width", unit="FWHM", high=100)
    f = eds_fwhm(e, fwhm_mn_ka=fwhm_mn_ka)
    return {
        "integration": (e - 0.5 * integration_width * f, e + 0.5 * integration_width * f),
        "background_low": (e - (background_offset + background_width) * f, e - background_offset * f),
        "background_high": (e + background_offset * f, e + (background_offset + background_width) * f),
    }


def clean_windows(
    element: str,
    *,
    energy,
    elements: Sequence[str] | str = (),
    fwhm_mn_ka: float = 130.0,
    integration_width: float = 2.0,
    background_offset: float = 2.0,
    background_width: float = 1.0,
    max_offset: float = 8.0,
    clearance: float = 1.2,
) -> dict[str, tuple[float, float]]:
    """Windows of ``element``'s mapping line (:func:`choose_line`) whose background windows
    avoid the lines of ``elements`` (and the element's own other lines).

    Each background window starts at exSpy's place (``background_offset`` FWHM from the line,
    ``background_width`` FWHM wide) and moves outwards in quarter-FWHM steps until no line of
    weight >= 5 % lies within ``clearance`` × its FWHM of it, at most ``max_offset`` FWHM
    away, inside the recorded range. A side with no clean place is dropped (the background is
    then the other side's mean); when neither side is clean a ValueError names the element,
    the lines in the way and what to change.
    """
    energy = check_energy_axis(energy)
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    max_offset = positive(max_offset, "max_offset", unit="FWHM", high=100)
    clearance = nonnegative(clearance, "clearance", unit="FWHM", high=100)
    others = _parse_elements_arg(elements) if (isinstance(elements, str) and elements.strip()) or \
        (not isinstance(elements, str) and len(elements)) else []
    line = choose_line(element, energy=energy, fwhm_mn_ka=fwhm_mn_ka)
    w = eds_windows(line.energy, fwhm_mn_ka=fwhm_mn_ka, integration_width=integration_width,
                    background_offset=background_offset, background_width=background_width)
    f = eds_fwhm(line.energy, fwhm_mn_ka=fwhm_mn_ka)
    avoid = []
    for el in dict.fromkeys([element.split("_")[0]] + [o.split("_")[0] for o in others]):
        for ln in eds_lines(el, energy_range=(energy[0] - 1000.0, energy[-1] + 1000.0)):
            if ln.weight >= 0.05 and abs(ln.energy - line.energy) > 0.5 * f:
                avoid.append((ln, clearance * eds_fwhm(ln.energy, fwhm_mn_ka=fwhm_mn_ka)))
    width = background_width * f
    out = {"integration": w["integration"]}
    blocked = {}
    for key, sign in (("background_low", -1.0), ("background_high", 1.0)):
        offset = background_offset
        while offset <= max_offset + 1e-9:
            near = line.energy + sign * offset * f
            lo, hi = (near - width, near) if sign < 0 else (near, near + width)
            inside = lo >= energy[0] and hi <= energy[-1]
            hit = [ln for ln, gap in avoid if lo - gap < ln.energy < hi + gap]
            if inside and not hit:
                out[key] = (lo, hi)
                break
            blocked[key] = hit[0].label if hit else "the end of the recorded range"
            offset += 0.25
    if "background_low" not in out and "background_high" not in out:
        raise ValueError(
            f"No clean background window for {line.label} ({line.energy / 1000:.2f} keV) within {max_offset:g} FWHM: "
            f"below it {blocked.get('background_low')}, above it {blocked.get('background_high')} are in the way. "
            f"Give {element}'s windows by hand, map another line (e.g. '{line.element}_"
            f"{'La' if line.family == 'K' else 'Ma' if line.family == 'L' else 'La'}'), or fit a model."
        )
    return out
