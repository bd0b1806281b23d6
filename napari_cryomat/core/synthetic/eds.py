"""Randomised EDS sum spectra with known truth, for identification tests and benchmarks.

Deliberately not the identification's own model: line ratios are jittered (±20 % per line, ×0.6–1.5 per
family), the detector has an unknown energy offset (±25 eV) and resolution (±8 %), lines have a
low-energy tail (incomplete charge collection), and the continuum is Kramers' law with absorption.
Samples hold 1–5 elements; half of them are built around a classic overlap (Mo L / S K, Pb M / S K,
Ti K / Ba L, Mn / Fe, W M / Si K, ...); the spectrum holds 1e3–1e6 counts in all, so weak elements
sit near the detection limit. The truth says which elements are present and how significant each
one's most visible line is: its counts over the square root of everything else counted under it
(continuum and other elements) in a window one FWHM wide centred on the line.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core._eds_lines import eds_fwhm
from napari_cryomat.core._eds_physics import grouped_lines
from napari_cryomat.core.spectral import energy_axis

__all__ = ["POOL", "OVERLAPS", "random_eds_spectrum", "line_significance"]

#: elements a sample may hold (common in materials TEM/SEM)
POOL = ("C", "N", "O", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti", "V", "Cr", "Mn", "Fe", "Co",
        "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Sr", "Y", "Zr", "Nb", "Mo", "Ag", "Sn", "Sb", "Ba", "La", "Ce",
        "Nd", "Gd", "Hf", "Ta", "W", "Pt", "Au", "Pb", "Bi")
#: pairs whose principal lines overlap within a detector FWHM (the cases identification gets wrong)
OVERLAPS = (("Mo", "S"), ("Pb", "S"), ("Ti", "Ba"), ("Mn", "Fe"), ("W", "Si"), ("Ta", "Si"), ("Y", "P"),
            ("Zr", "P"), ("Nb", "Pt"), ("Au", "Pt"), ("Bi", "Pb"), ("As", "Pb"), ("Sr", "Si"), ("Cr", "V"),
            ("Ce", "Ti"), ("N", "Ti"), ("O", "Cr"), ("Zn", "Na"), ("Mg", "As"), ("Hf", "Al"), ("Ag", "Cl"))


def _z(el):
    import xraylib

    return int(xraylib.SymbolToAtomicNumber(el))


def _peak(energy, centre, fwhm, area, tail):
    """Gaussian of ``area`` counts plus an exponential low-energy tail holding ``tail`` of them."""
    de = energy[1] - energy[0]
    s = fwhm / 2.3548
    g = np.exp(-0.5 * ((energy - centre) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    t = np.where(energy < centre, np.exp((energy - centre) / (3 * fwhm)), 0.0) / (3 * fwhm)
    return area * de * ((1 - tail) * g + tail * t)


def _draw_elements(rng, n_elements):
    k = int(rng.integers(n_elements[0], n_elements[1] + 1))
    chosen = []
    if k >= 2 and rng.random() < 0.5:
        chosen += [str(e) for e in OVERLAPS[int(rng.integers(len(OVERLAPS)))]]
    rest = [e for e in POOL if e not in chosen]
    chosen += [str(e) for e in rng.choice(rest, size=max(0, k - len(chosen)), replace=False)]
    return chosen


def random_eds_spectrum(seed: int, *, n_elements: tuple[int, int] = (1, 5), beam_energy_kev: float | None = None,
                        fwhm_mn_ka: float = 130.0) -> dict:
    """One random sum spectrum: ``spectrum`` (counts), ``energy`` (eV), ``elements`` present,
    ``significance`` {element: σ of its most visible line}, ``beam_energy_kev``,
    ``fwhm_mn_ka`` (what the analyst is told), ``shift`` (the detector's true offset, eV),
    ``total_counts``."""
    rng = np.random.default_rng(seed)
    beam = float(beam_energy_kev or rng.choice([15.0, 20.0, 200.0]))
    e_max = 20000.0 if beam >= 20 else 1000.0 * beam
    energy = energy_axis(offset=0.0, scale=10.0, size=int(e_max / 10.0))
    elements = _draw_elements(rng, n_elements)
    shift = rng.uniform(-25, 25)
    res = fwhm_mn_ka * rng.uniform(0.92, 1.08)
    tail = rng.uniform(0.0, 0.06)
    # continuum: Kramers (E0 − E)/E, absorbed below ~1.5 keV (window and sample)
    e = np.maximum(energy, 50.0)
    continuum = np.clip(1000.0 * beam - e, 0, None) / e * np.exp(-((600.0 / e) ** 2.5))
    lines_only = {}
    for el in elements:
        spec, produced = np.zeros_like(energy), 0.0
        lines = [r for r in grouped_lines(_z(el), beam) if 150 <= r[1] <= energy[-1] and r[2] >= 0.01]
        if not lines:
            continue
        strongest = max(r[3] for r in lines)
        family_jitter = {fam: rng.uniform(0.6, 1.5) for fam in "KLM"}  # theory ratios across families are rough
        for name, en, _w, strength in lines:
            absorb = np.exp(-((700.0 / en) ** 2.5))  # light lines are absorbed too
            area = strength / strongest * family_jitter[name[0]] * rng.uniform(0.8, 1.2)
            produced += area
            area *= absorb
            spec += _peak(energy, en + shift, eds_fwhm(max(en, 100.0), fwhm_mn_ka=res), area, tail)
        lines_only[el] = spec / max(produced, 1e-30) * 10 ** rng.uniform(0.0, 2.0)  # 2 decades of amounts
    # total counts 1e3–1e6; the continuum holds 30–85 % of them
    total = 10 ** rng.uniform(3.0, 6.0)
    f_cont = rng.uniform(0.3, 0.85)
    line_sum = sum(s.sum() for s in lines_only.values()) or 1.0
    lines_only = {el: s * total * (1 - f_cont) / line_sum for el, s in lines_only.items()}
    continuum = continuum * total * f_cont / continuum.sum()
    lam = continuum + sum(lines_only.values())
    spectrum = rng.poisson(np.clip(lam, 0, None)).astype(np.float64)
    sig = {el: line_significance(energy, lines_only.get(el, np.zeros_like(energy)), lam, fwhm_mn_ka, el, beam,
                                 shift) for el in elements}
    return {"spectrum": spectrum, "energy": energy, "elements": sorted(elements), "significance": sig,
            "beam_energy_kev": beam, "fwhm_mn_ka": fwhm_mn_ka, "shift": shift, "min_energy": 200.0,
            "total_counts": float(lam.sum())}


def line_significance(energy, element_part, total, fwhm_mn_ka: float, element: str, beam_energy_kev: float,
                      shift: float = 0.0, min_energy: float = 200.0) -> float:
    """σ of an element's most visible line: the element's counts in a window one FWHM wide centred on
    the line over the square root of everything else expected there (continuum and the other
    elements), the best of its lines above ``min_energy``."""
    de = energy[1] - energy[0]
    best = 0.0
    other = total - element_part
    for _name, en, w, _s in grouped_lines(_z(element), beam_energy_kev):
        c = en + shift
        if w < 0.01 or c < min_energy or c > energy[-1]:
            continue
        hw = 0.5 * eds_fwhm(max(c, 100.0), fwhm_mn_ka=fwhm_mn_ka)
        win = np.abs(energy - c) <= max(hw, 0.5 * de)
        best = max(best, float(element_part[win].sum() / np.sqrt(max(other[win].sum(), 1.0))))
    return best
