"""Randomised EDS sum spectra with known truth, for identification tests and benchmarks.

Deliberately not the identification's own model: line ratios are jittered (±20 % per line, ×0.6–1.5 per
family), the
detector has an unknown energy offset (±25 eV) and resolution (±8 %), lines have a low-energy
tail (incomplete charge collection), and the continuum is Kramers' law with absorption. The truth
says which elements are present and how significant each one's most visible line is.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core._eds_physics import grouped_lines
from napari_cryomat.core.eds import eds_fwhm
from napari_cryomat.core.spectral import energy_axis

__all__ = ["POOL", "random_eds_spectrum", "line_significance"]

#: elements a sample may hold (common in materials TEM/SEM)
POOL = ("C", "N", "O", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti", "V", "Cr", "Mn", "Fe", "Co",
        "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Sr", "Y", "Zr", "Nb", "Mo", "Ag", "Sn", "Sb", "Ba", "La", "Ce",
        "Nd", "Gd", "Hf", "Ta", "W", "Pt", "Au", "Pb", "Bi")


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


def random_eds_spectrum(seed: int, *, n_elements: tuple[int, int] = (2, 5), beam_energy_kev: float | None = None,
                        fwhm_mn_ka: float = 130.0) -> dict:
    """One random sum spectrum: ``spectrum`` (counts), ``energy`` (eV), ``elements`` present,
    ``significance`` {element: σ of its most visible line alone}, ``beam_energy_kev``,
    ``fwhm_mn_ka`` (what the analyst is told), ``shift`` (the detector's true offset, eV)."""
    rng = np.random.default_rng(seed)
    beam = float(beam_energy_kev or rng.choice([15.0, 20.0, 200.0]))
    e_max = 20000.0 if beam >= 20 else 1000.0 * beam
    energy = energy_axis(offset=0.0, scale=10.0, size=int(e_max / 10.0))
    k = int(rng.integers(n_elements[0], n_elements[1] + 1))
    elements = list(rng.choice(POOL, size=k, replace=False))
    shift = rng.uniform(-25, 25)
    res = fwhm_mn_ka * rng.uniform(0.92, 1.08)
    tail = rng.uniform(0.0, 0.06)
    # continuum: Kramers (E0 − E)/E, absorbed below ~1.5 keV (window and sample)
    e = np.maximum(energy, 50.0)
    counts = 10 ** rng.uniform(1.5, 3.0)
    continuum = counts * np.clip(1000.0 * beam - e, 0, None) / e * np.exp(-((600.0 / e) ** 2.5)) * 10.0 / 10.0
    lines_only = {}
    for el in elements:
        amount = 10 ** rng.uniform(3.0, 5.5)  # counts in the element's strongest line (before absorption)
        spec = np.zeros_like(energy)
        lines = [r for r in grouped_lines(_z(el), beam) if 150 <= r[1] <= energy[-1] and r[2] >= 0.01]
        if not lines:
            continue
        strongest = max(r[3] for r in lines)
        family_jitter = {fam: rng.uniform(0.6, 1.5) for fam in "KLM"}  # theory ratios across families are rough
        for name, en, _w, strength in lines:
            absorb = np.exp(-((700.0 / en) ** 2.5))  # light lines are absorbed too
            area = amount * strength / strongest * family_jitter[name[0]] * rng.uniform(0.8, 1.2) * absorb
            spec += _peak(energy, en + shift, eds_fwhm(max(en, 100.0), fwhm_mn_ka=res), area, tail)
        lines_only[el] = spec
    lam = continuum + sum(lines_only.values())
    spectrum = rng.poisson(np.clip(lam, 0, None)).astype(np.float64)
    sig = {el: line_significance(energy, lines_only[el], lam, fwhm_mn_ka) for el in elements}
    return {"spectrum": spectrum, "energy": energy, "elements": sorted(elements), "significance": sig,
            "beam_energy_kev": beam, "fwhm_mn_ka": fwhm_mn_ka, "shift": shift, "min_energy": 200.0}


def line_significance(energy, element_part, total, fwhm_mn_ka: float, min_energy: float = 200.0) -> float:
    """σ of an element's most visible line: its counts within ±0.6 FWHM of the local maximum over
    the Poisson noise of everything counted there, max over the spectrum above ``min_energy``."""
    de = energy[1] - energy[0]
    best = 0.0
    from scipy.signal import find_peaks

    idx, _ = find_peaks(element_part)
    for i in idx:
        if energy[i] < min_energy:
            continue
        hw = max(1, int(round(0.6 * eds_fwhm(max(energy[i], 100.0), fwhm_mn_ka=fwhm_mn_ka) / de)))
        sl = slice(max(0, i - hw), i + hw + 1)
        best = max(best, float(element_part[sl].sum() / np.sqrt(max(total[sl].sum(), 1.0))))
    return best
