"""EELS quantification: hydrogenic cross-sections, atomic ratios, linear model fit."""

import numpy as np
import pytest

from napari_cryomat.core import eels_quant as q
from napari_cryomat.core import spectral as sp
from napari_cryomat.core._progress import Cancelled

# σ(β, Δ) in barn from exSpy 0.3.2's hydrogenic EELSCLEdge (Egerton's SIGMAK3/SIGMAL3 as
# translated by I. Iyengar), integrated from the onset over Δ; exSpy's onsets (C 284, O 532,
# B 188, Mn L3 640, Fe L3 708 eV) are within 0.5 eV of xraylib's.
EXSPY_SIGMA = [
    ("C", 50, 100, 10, 0, 3996.0),
    ("O", 50, 200, 50, 0, 1251.4),
    ("B", 100, 200, 20, 20, 12108.3),
    ("Mn", 50, 200, 50, 0, 1723.7),
    ("Fe", 50, 100, 10, 0, 823.5),
]


@pytest.mark.parametrize(("element", "width", "e0", "beta", "alpha", "reference"), EXSPY_SIGMA)
def test_cross_sections_agree_with_exspy_hydrogenic(element, width, e0, beta, alpha, reference):
    sigma = q.edge_cross_section(element, width=width, e0=e0, beta=beta, alpha=alpha)
    tolerance = 0.005 if sp.choose_edge(element, energy=np.arange(100.0, 1000.0)).name == "K" else 0.02
    assert sigma == pytest.approx(reference, rel=tolerance)


def test_cross_section_physics():
    # grows with the collection angle and saturates (Bethe ridge collected)
    sig = [q.edge_cross_section("C", width=50, e0=200, beta=b) for b in (2, 5, 10, 50, 200, 400)]
    assert np.all(np.diff(sig) > 0)
    assert sig[-1] / sig[-2] < 1.05 < sig[1] / sig[0]
    # grows with the integration width, less than linearly (edges decay)
    s50, s100 = (q.edge_cross_section("O", width=w, e0=200, beta=20) for w in (50, 100))
    assert s50 < s100 < 2 * s50
    # convergence: alpha -> 0 is the parallel beam; alpha >> beta collects less
    assert q.edge_cross_section("O", width=50, e0=200, beta=20, alpha=1e-3) == pytest.approx(
        q.edge_cross_section("O", width=50, e0=200, beta=20), rel=1e-3)
    # Egerton's effective angle (values of exSpy's effective_angle, the same published formula):
    # alpha < beta loses a little scattering; alpha > beta also loses I0, so beta* grows towards alpha
    eff = q.effective_collection_angle([300.0, 600.0, 532.0], e0=200, alpha=30, beta=10)
    np.testing.assert_allclose(eff, [29.1496, 29.1591, 29.1564], rtol=1e-4)
    assert q.effective_collection_angle([532.0], e0=200, alpha=5, beta=20)[0] == pytest.approx(19.6912, rel=1e-4)
    # differential cross-section: 0 below the onset, positive and decaying above
    e = sp.energy_axis(offset=500, scale=1.0, size=300)
    d = q.differential_cross_section("O", energy=e, e0=200, beta=20)
    assert np.all(d[e < 532] == 0) and np.all(d[e >= 532] > 0)
    assert d[e >= 540][0] > d[-1]


def _two_element_si(rng, elements, fractions, e0, beta, alpha, shape=(6, 8)):
    """Power law + hydrogenic edges with known amounts (atoms per barn × dose), Poisson noise."""
    first_onset = min(sp.choose_edge(el, energy=np.arange(100.0, 2000.0)).onset for el in elements)
    e0_axis = round(0.72 * first_onset)
    e = sp.energy_axis(offset=e0_axis, scale=0.5, size=900)
    r = rng.uniform(2.6, 3.6) * (1 + 0.04 * rng.uniform(-1, 1, shape))
    bg0 = rng.uniform(2e4, 1e5)  # counts per channel at the first channel
    a = bg0 * e0_axis ** r
    lam = a[..., None] * e ** -r[..., None]
    jump = rng.uniform(0.3, 0.8)  # edge / background just above the first onset
    d = {el: q.differential_cross_section(el, energy=e, e0=e0, beta=beta, alpha=alpha) * 0.5 for el in elements}
    first = min(elements, key=lambda el: sp.choose_edge(el, energy=e).onset)
    onset = sp.choose_edge(first, energy=e).onset
    dose = jump * bg0 * (onset / e0_axis) ** -r.mean() / (fractions[0] * d[first][e >= onset][:5].mean())
    for el, f in zip(elements, fractions):
        lam = lam + (dose * f) * d[el]
    return rng.poisson(lam).astype(np.float32), e


@pytest.mark.parametrize("seed", range(4))
def test_atomic_ratio_of_synthetic_two_element_spectrum(seed):
    rng = np.random.default_rng(seed)
    pairs = [("O", "Mn"), ("N", "O"), ("C", "O"), ("O", "Fe")]
    elements = pairs[seed]
    frac = rng.uniform(0.25, 0.75)
    e0, beta, alpha = rng.choice([100.0, 200.0, 300.0]), rng.uniform(10, 60), rng.uniform(0, 25)
    si, e = _two_element_si(rng, elements, (frac, 1 - frac), e0, beta, alpha)
    maps = sp.eels_maps(si, energy=e, elements=", ".join(elements))
    at, sigma = q.quantify_maps(maps, e0=e0, beta=beta, alpha=alpha)
    got = np.median(at[elements[0]]) / 100
    assert got == pytest.approx(frac, rel=0.05), (elements, frac, got)
    fit = q.fit_edges(si, energy=e, elements=elements, e0=e0, beta=beta, alpha=alpha)
    got_fit = np.median(fit.atomic_percent[elements[0]]) / 100
    assert got_fit == pytest.approx(frac, rel=0.05), (elements, frac, got_fit)
    assert 0.7 < np.median(fit.chi2) < 1.5


def test_linear_fit_separates_overlapping_edges_and_runs_out_of_core(tmp_path):
    # Mn L2,3 (640 eV) and Fe L2,3 (708 eV): Fe's clean background window would be only 58 eV
    # after Mn's onset; the linear model separates them
    rng = np.random.default_rng(7)
    si, e = _two_element_si(rng, ("Mn", "Fe"), (0.4, 0.6), 200.0, 30.0, 0.0, shape=(10, 6))
    fit = q.fit_edges(si, energy=e, elements="Mn, Fe", e0=200, beta=30)
    assert np.median(fit.atomic_percent["Fe"]) == pytest.approx(60, rel=0.05)
    mm = np.lib.format.open_memmap(tmp_path / "si.npy", mode="w+", dtype=np.float32, shape=si.shape)
    mm[:] = si
    mm.flush()
    seen = []
    lazy = q.fit_edges(np.load(tmp_path / "si.npy", mmap_mode="r"), energy=e, elements="Mn, Fe", e0=200, beta=30,
                       max_bytes=3 * 6 * 900 * 4, progress=seen.append)
    np.testing.assert_allclose(lazy.amounts["Fe"], fit.amounts["Fe"], rtol=1e-5)
    assert len(seen) >= 4 and seen[-1] == 1.0

    def cancel(f):
        if f > 0.3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        q.fit_edges(mm, energy=e, elements="Mn, Fe", e0=200, beta=30, max_bytes=6 * 900 * 4, progress=cancel)


def test_atomic_ratios_from_integrals():
    at = q.atomic_ratios({"C": np.array([2.0, 0.0]), "O": np.array([1.0, 0.0])}, cross_sections={"C": 2.0, "O": 0.5})
    assert at["C"][0] == pytest.approx(100 / 3) and at["O"][0] == pytest.approx(200 / 3)
    assert np.isnan(at["C"][1])


def test_bad_input_names_element_and_what_to_change():
    with pytest.raises(ValueError, match="K and L2,3 edges only.*Ce"):
        q.edge_cross_section("Ce_M", width=50, e0=200, beta=20)
    with pytest.raises(ValueError, match="cross_sections has no value for element 'O'"):
        q.atomic_ratios({"C": np.ones(2), "O": np.ones(2)}, cross_sections={"C": 1.0})
    with pytest.raises(ValueError, match="beta"):
        q.edge_cross_section("C", width=50, e0=200, beta=0)
    e = sp.energy_axis(offset=450.0, scale=0.5, size=200)
    with pytest.raises(ValueError, match="Fe has no EELS edge in the recorded range 450–550 eV.*Fe L2,3 at 708 eV"):
        q.fit_edges(np.ones((2, 2, 200), np.float32), energy=e, elements="O, Fe", e0=200, beta=20)
