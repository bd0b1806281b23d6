"""Detector artefacts in EDS identification: the bounded fit and pile-up / escape amplitudes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryomat.core import eds
from napari_cryomat.core._eds_artefacts import MAX_PILE_UP, bounded_nnls, local_excess


@pytest.mark.parametrize("seed", range(12))
def test_bounded_nnls_matches_bounded_least_squares(seed):
    from scipy.optimize import lsq_linear

    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(30, 80)), int(rng.integers(2, 8))
    a = np.abs(rng.normal(size=(m, n))) * rng.uniform(0.1, 10.0, n)  # spectrum-like: non-negative columns
    x_true = rng.uniform(0.0, 3.0, n)
    b = a @ x_true + rng.normal(scale=0.5, size=m)
    upper = np.where(rng.random(n) < 0.5, rng.uniform(0.2, 2.0, n), np.inf)
    x = bounded_nnls(a, b, upper)
    assert np.all(x >= 0) and np.all(x <= upper)
    ref = lsq_linear(a, b, bounds=(np.zeros(n), upper), tol=1e-12)
    cost, best = np.sum((a @ x - b) ** 2), np.sum((a @ ref.x - b) ** 2)
    assert cost <= best * (1 + 1e-6) + 1e-9


def _spectrum_with_pile_up(seed):
    """10 kV SEM spectrum of Al (+ Cu, Mn at random amounts) with a known fraction of piled-up events."""
    rng = np.random.default_rng(seed)
    energy = np.arange(1, 1001) * 10.0
    lam = np.zeros_like(energy)
    for el, amount in (("Al", rng.uniform(2e5, 1e6)), ("Cu", rng.uniform(0, 2e5)), ("Mn", rng.uniform(0, 2e5))):
        for ln in eds.eds_lines(el, beam_energy_kev=10.0):
            if ln.weight >= 0.01 and ln.energy > 150:
                f = eds.eds_fwhm(ln.energy, fwhm_mn_ka=130.0) / 2.3548
                lam += amount * ln.weight * 10.0 * np.exp(-0.5 * ((energy - ln.energy) / f) ** 2) / (f * np.sqrt(2 * np.pi))
    lines = lam.copy()
    continuum = 40.0 * np.clip(10000.0 - energy, 0, None) / energy * np.exp(-((600.0 / energy) ** 2.5))
    # pile-up: a fraction p of the line events is summed with another (channel i + j + 1 holds E_i + E_j)
    p = rng.uniform(0.003, 0.02)
    conv = np.convolve(lines, lines)[1: energy.size + 1] / lines.sum()
    pile = p * np.r_[0.0, conv[:-1]]
    counts = rng.poisson(lines + continuum + pile).astype(np.float64)
    return counts, energy, float(pile[energy > 2 * 1400].sum())


@pytest.mark.parametrize("seed", range(3))
def test_sum_peak_is_pile_up_not_an_element(seed):
    counts, energy, injected = _spectrum_with_pile_up(seed)
    res = eds.identify_elements(counts, energy=energy, fwhm_mn_ka=130.0, beam_energy_kev=10.0)
    assert "Al" in res.elements
    assert set(res.elements) <= {"Al", "Cu", "Mn"}, res.reasons  # no Ar or Ag for the Al + Al sum at 2.97 keV
    label = [lab for e, _c, lab in res.peaks if abs(e - 2974) < 40]
    assert label and label[0] == ["pile-up (sum peak)"]
    fitted = res.artefacts["pile-up (high energy)"]
    assert fitted == pytest.approx(injected, rel=0.35)
    assert fitted <= MAX_PILE_UP * counts.sum()


@pytest.mark.parametrize("seed", range(4))
def test_rounded_continuum_maximum_is_not_a_light_element(seed):
    """A continuum absorbed below ~1 keV has a rounded maximum that continuum clipping cuts into; the humps
    left there must not be named O, F, Na... (1e6–1e7 counts, one or two 3d/4d metals, 15–200 kV; M families
    without Mα, Sn, La, Ce, are in tests/core/test_eds_continuum.py)."""
    rng = np.random.default_rng(100 + seed)
    beam = float(rng.choice([15.0, 20.0, 200.0]))
    energy = np.arange(1, 2001) * 10.0
    e = energy
    absorb = rng.uniform(500.0, 800.0)
    lam = np.clip(1000.0 * beam - e, 0, None) / e * np.exp(-((absorb / e) ** 2.5))
    lam *= rng.uniform(1e6, 1e7) / lam.sum()
    present = [str(x) for x in rng.choice(["Fe", "Cu", "Zn", "Ni", "Ag", "Ti"], size=int(rng.integers(1, 3)),
                                          replace=False)]
    for el in present:
        amount = lam.sum() * rng.uniform(0.02, 0.2)
        for ln in eds.eds_lines(el, beam_energy_kev=beam):
            if ln.weight >= 0.01 and 150.0 < ln.energy < e[-1]:  # whole families, absorbed like the continuum
                f = eds.eds_fwhm(ln.energy, fwhm_mn_ka=130.0) / 2.3548
                area = amount * ln.weight * np.exp(-((absorb / ln.energy) ** 2.5))
                lam += area * 10.0 * np.exp(-0.5 * ((e - ln.energy) / f) ** 2) / (f * np.sqrt(2 * np.pi))
    counts = rng.poisson(lam).astype(np.float64)
    res = eds.identify_elements(counts, energy=energy, fwhm_mn_ka=130.0, beam_energy_kev=beam)
    assert set(present) <= set(res.elements)
    light = {el for el in res.elements if max(ln.energy for ln in eds.eds_lines(el, beam_energy_kev=beam)) < 1200}
    assert not light, {el: res.reasons[el] for el in light}


@pytest.mark.parametrize("seed", range(6))
def test_local_excess_on_a_rounded_continuum(seed):
    """A line on the continuum's rounded maximum is measured above a quadratic through the side bands: its
    counts (0 to 6 times the continuum's level) recovered within 4σ."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    energy = np.arange(1, 1001) * 10.0
    absorb, level = rng.uniform(500.0, 800.0), rng.uniform(1e3, 3e4)
    cont = level * 5000.0 / energy * np.exp(-((absorb / energy) ** 2.5))
    # on the continuum's rounded maximum, above its steep onset (there a quadratic cannot follow it: the excess
    # comes out high, and the test, which can only reject, rejects nothing)
    centre, area = rng.uniform(1.15 * absorb, 1500.0), rng.uniform(0.0, 0.3) * level * 20
    f = eds.eds_fwhm(centre, fwhm_mn_ka=130.0)
    line = area * 10.0 * np.exp(-0.5 * ((energy - centre) / (f / 2.3548)) ** 2) / (f / 2.3548 * np.sqrt(2 * np.pi))
    s = rng.poisson(cont + line).astype(np.float64)
    problem = SimpleNamespace(energy=energy, s=s, mask=energy >= 200.0,
                              fwhm_of=lambda e: eds.eds_fwhm(e, fwhm_mn_ka=130.0))
    excess, noise = local_excess(problem, centre, np.zeros_like(s))
    in_window = line[np.abs(energy - centre) <= 0.6 * f].sum()
    assert abs(excess - in_window) < 4 * noise, (excess, in_window, noise)


@pytest.mark.parametrize("seed", range(6))
def test_si_note_only_for_a_small_si_peak(seed):
    """A Si Kα holding under 2 % of the counts above the Si K edge may be the detector's own fluorescence (the note
    says so); a larger one, or none, gets no note."""
    from napari_cryomat.core._eds_artefacts import MAX_SI_FLUORESCENCE, SI_K_EDGE_EV, si_fluorescence_note

    rng = np.random.default_rng(seed)
    energy = np.arange(20, 2048) * rng.uniform(5.0, 20.0)
    counts = rng.poisson(rng.uniform(5, 500), energy.size).astype(float)
    mask = energy >= 200.0
    above = counts[mask & (energy > SI_K_EDGE_EV)].sum()
    small = rng.uniform(0.05, 0.95) * MAX_SI_FLUORESCENCE * above
    note = si_fluorescence_note(energy, counts, mask, small)
    assert "internal-fluorescence" in note and f"{100 * small / above:.1f} %" in note
    assert si_fluorescence_note(energy, counts, mask, rng.uniform(1.05, 5.0) * MAX_SI_FLUORESCENCE * above) == ""
    assert si_fluorescence_note(energy, counts, mask, 0.0) == ""
