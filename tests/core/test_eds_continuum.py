"""The physical continuum of EDS identification: Kramers' law times absorption, fitted with the lines."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

from napari_cryomat.core import eds
from napari_cryomat.core._eds_continuum import continuum_columns


def _gauss_lines(energy, el, amount, beam, absorb):
    out = np.zeros_like(energy)
    for ln in eds.eds_lines(el, beam_energy_kev=beam):
        if ln.weight >= 0.01 and 150.0 < ln.energy < energy[-1]:
            f = eds.eds_fwhm(ln.energy, fwhm_mn_ka=130.0) / 2.3548
            area = amount * ln.weight * np.exp(-((absorb / ln.energy) ** 2.5))
            out += area * 10.0 * np.exp(-0.5 * ((energy - ln.energy) / f) ** 2) / (f * np.sqrt(2 * np.pi))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_continuum_columns_follow_an_absorbed_kramers_continuum(seed):
    """Kramers' law absorbed as exp(−(a/E)^p) (p 2.2–3, a 400–900 eV: not a column of the model), 1e6–1e7
    counts: the non-negative mixture of columns stays within 6 % of the true continuum wherever it holds more
    than 20 % of its maximum, where SNIP clipping cuts 10 % or more into the rounded maximum."""
    rng = np.random.default_rng(seed)
    beam = float(rng.choice([10.0, 15.0, 20.0, 200.0]))
    energy = np.arange(1, 1 + int(min(1000 * beam, 20000) / 10)) * 10.0
    a, p = rng.uniform(400.0, 900.0), rng.uniform(2.2, 3.0)
    lam = np.clip(1000 * beam - energy, 0, None) / energy * np.exp(-((a / energy) ** p))
    lam *= rng.uniform(1e6, 1e7) / lam.sum()
    counts = rng.poisson(lam).astype(np.float64)
    mask = energy >= 200.0
    cols = np.stack(continuum_columns(energy, beam, mask), axis=1)
    w = 1.0 / np.sqrt(np.maximum(counts[mask], 1.0))
    x, _ = nnls(cols[mask] * w[:, None], counts[mask] * w, maxiter=5000)
    fitted = cols @ x
    seen = mask & (lam > 0.2 * lam.max())
    assert np.max(np.abs(fitted[seen] / lam[seen] - 1)) < 0.06
    clipped = eds.snip_background(counts, width=np.maximum(1, np.round(2 * eds.eds_fwhm(np.clip(energy, 100, None)) / 10)))
    top = int(np.argmax(lam))
    assert clipped[top] < 0.9 * lam[top]


@pytest.mark.parametrize("seed", range(3))
def test_m_family_without_m_alpha_is_not_a_light_element(seed):
    """Sn, La or Ce (an M family without Mα: Mζ at 0.4–0.7 keV) next to Fe, Cu or Ni on a rounded continuum
    maximum: both are found and Mζ is not named N, O or F (it had no column: La Mζ was taken for F Kα)."""
    rng = np.random.default_rng(200 + seed)
    beam = float(rng.choice([15.0, 200.0]))
    energy = np.arange(1, 2001) * 10.0
    absorb = rng.uniform(500.0, 700.0)
    lam = np.clip(1000.0 * beam - energy, 0, None) / energy * np.exp(-((absorb / energy) ** 2.5))
    lam *= rng.uniform(1e6, 3e6) / lam.sum()
    metal, mzeta = str(rng.choice(["Fe", "Cu", "Ni"])), str(rng.choice(["Sn", "La", "Ce"]))
    continuum = lam.copy()
    lam += _gauss_lines(energy, metal, 0.2 * lam.sum(), beam, absorb)
    lam += _gauss_lines(energy, mzeta, 0.1 * lam.sum(), beam, absorb)
    counts = rng.poisson(lam).astype(np.float64)
    res = eds.identify_elements(counts, energy=energy, fwhm_mn_ka=130.0, beam_energy_kev=beam)
    assert {metal, mzeta} == set(res.elements), res.reasons
    assert res.continuum is not None and res.continuum.shape == counts.shape
    above = energy > 1000.0  # the fitted continuum is the continuum, not the lines
    assert np.abs(res.continuum[above].sum() / continuum[above].sum() - 1) < 0.05


@pytest.mark.parametrize("seed", range(5))
def test_absorbed_family_is_not_another_element(seed):
    """One lanthanide M or 3d-metal L family whose lines are absorbed as exp(−(a/E)^2.5) (a 600–900 eV: its lower
    lines weaker than theory's ratios say), 1e5–1e6 counts: its higher lines are not taken for another element (a
    family column with fixed ratios left La's and Pr's upper M lines to Na and Mg Kα on seeds 1 and 4)."""
    rng = np.random.default_rng(300 + seed)
    beam = float(rng.choice([15.0, 20.0, 200.0]))
    energy = np.arange(1, 2001) * 10.0
    absorb = rng.uniform(600.0, 900.0)
    lam = np.clip(1000.0 * beam - energy, 0, None) / energy * np.exp(-((absorb / energy) ** 2.5))
    lam *= rng.uniform(1e5, 1e6) / lam.sum()
    el = str(rng.choice(["Nd", "Ce", "La", "Pr", "Cu", "Zn", "Ni"]))
    lam += _gauss_lines(energy, el, rng.uniform(0.3, 1.0) * lam.sum(), beam, absorb)
    counts = rng.poisson(lam).astype(np.float64)
    res = eds.identify_elements(counts, energy=energy, fwhm_mn_ka=130.0, beam_energy_kev=beam)
    assert res.elements == [el], res.reasons
