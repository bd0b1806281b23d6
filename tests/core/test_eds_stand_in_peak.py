"""A heavy element's M family standing in for a light element's K line (core/_eds_rivals.py, ``_takes_the_peak``).

Randomised draws (three fixed seeds), after the real Velox superalloy (tests/core/test_eds_velox_superalloy.py): a Ni-rich
Ni/Fe/Cr matrix whose big K peaks carry low-energy tails (incomplete charge collection, which the identification does
not model), and Al, whose Kα lies 25 eV above Tm Mα; Tm's L lines fall on those tails (Lα between Fe Kβ and Ni Kα).
The forward selection is made to take Tm (its candidates lack Al and the other elements whose Mα lies on Al Kα), as it
did on the real file; the rival pass must then give the peak back. Before, Tm was kept in each of the 8 draws tried:
its L lines soak up the tails' misfit, so Al fits worse in its place, although Al still adds 17-21σ beside Tm and
leaves no line of Tm on a peak of its own. On seed 2884474387 Al even fits 6.5σ better in Tm's place, but Tm is not
redundant beside Al (its L lines still hold the tails' misfit), so the peak must also decide for a better-fitting
rival: that seed kept Tm until it did, and is drawn beside two of the 20 draws that passed since. (Mg Kα / Tb Mα in an Fe-rich
matrix behaves alike but is not decided in every draw; Si Kα / Ta Mα is a different gap, left open: Si is never tried
for Ta when W or Hf fits better.)
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryomat.core import eds
from napari_cryomat.core._eds_physics import grouped_lines
from napari_cryomat.core.synthetic.eds import _peak, _z

# (light, heavy, matrix): the matrix's first element is drawn at about 60 % of its counts
CASES = [("Al", "Tm", ("Ni", "Fe", "Cr"))]


def _spectrum(rng, light, matrix):
    """Counts on a 5 eV axis at 200 kV, FWHM 130 eV: Kramers continuum, the matrix's K and L lines (2e5 counts) with an
    8-12 % low-energy tail above 3 keV, and the light element's K lines (4500-7500 counts in Kα)."""
    energy = -1000.0 + 5.0 * np.arange(4096)
    e = np.maximum(energy, 50.0)
    continuum = np.clip(200e3 - e, 0, None) / e * np.exp(-((600.0 / e) ** 2.5))
    lam = continuum / continuum[energy > 0].sum() * 3e5 * rng.uniform(0.7, 1.3)
    shift, tail = rng.uniform(-6, 6), rng.uniform(0.08, 0.12)
    amounts = dict(zip(matrix, rng.dirichlet([12.0, 4.0, 4.0]) * 2e5))
    amounts[light] = rng.uniform(4500, 7500)
    for el, amount in amounts.items():
        lines = [r for r in grouped_lines(_z(el), 200.0) if 150 <= r[1] <= energy[-1] and r[2] >= 0.01]
        if el == light:
            lines = [r for r in lines if r[0].startswith("K")]
        ka = next(r[3] for r in lines if r[0] == "Ka")
        for _name, en, _w, strength in lines:
            area = amount * strength / ka * np.exp(-((700.0 / en) ** 2.5))  # absorption of soft lines
            lam += _peak(energy, en + shift, eds.eds_fwhm(en, fwhm_mn_ka=130.0), area, tail if en > 3000 else 0.0)
    return energy, rng.poisson(lam).astype(np.float64)


# 2884474387 kept Tm until the peak decided for better-fitting rivals too; 994911861 (Al 12.0σ beside Tm, the weakest)
# and 642489502 (with a false Nd the test does not judge) are two of the 20 draws of session 26 that all passed: fixed
# draws, so that CI never turns red on a draw nobody can replay
@pytest.mark.parametrize("seed", [2884474387, 994911861, 642489502])
@pytest.mark.parametrize("light,heavy,matrix", CASES)
def test_heavy_m_family_does_not_keep_a_light_k_peak(monkeypatch, light, heavy, matrix, seed):
    import napari_cryomat.core._eds_identify as engine

    light_ka = next(e for n, e, _w, _s in grouped_lines(_z(light), 200.0) if n == "Ka")
    fwhm = eds.eds_fwhm(light_ka, fwhm_mn_ka=130.0)

    def m_on_light_ka(el):
        ma = [e for n, e, _w, _s in grouped_lines(_z(el), 200.0) if n == "Ma"]
        return bool(ma) and abs(ma[0] - light_ka) <= fwhm

    real = engine.candidate_elements

    def heavy_takes_the_peak(problem, peaks_e, pool, max_shift):
        found = real(problem, peaks_e, pool, max_shift)
        return [el for el in found if el != light and not m_on_light_ka(el)] + [heavy]

    monkeypatch.setattr(engine, "candidate_elements", heavy_takes_the_peak)
    energy, counts = _spectrum(np.random.default_rng(seed), light, matrix)
    res = eds.identify_elements(counts, energy=energy, beam_energy_kev=200.0, fwhm_mn_ka=130.0)
    assert heavy not in res.elements, (seed, res.elements, res.reasons.get(heavy))
    assert light in res.elements, (seed, res.elements, res.reasons.get(light), res.reasons.get(heavy))
    assert res.reasons[heavy].startswith(f"rejected: a stand-in for {light}"), (seed, res.reasons[heavy])
    assert set(matrix) <= set(res.elements), (seed, res.elements)
