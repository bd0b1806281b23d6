"""Physics checks for napari_cryomat.core.spectral against xraylib and synthetic truth."""

import numpy as np
import pytest
import xraylib

from napari_cryomat.core import spectral as sp
from napari_cryomat.core._progress import Cancelled
from napari_cryomat.core.synthetic import spectral as syn


@pytest.fixture(scope="module")
def eels():
    return syn.eels_spectrum_image(shape=(32, 48))


def _truth_integral(d, el, window):
    sl = sp.window_slice(d["energy"], window)
    shape = syn.eels_edge_shape(d["energy"], d["onsets"][el], exponent=d["edge_exponent"], width=d["edge_width"])
    return d["truth_amplitude"][el] * shape[sl].sum()


# -- element data ---------------------------------------------------------------------------


def test_edge_onsets_come_from_xraylib():
    for sym, z in (("Li", 3), ("C", 6), ("N", 7), ("O", 8)):
        (k,) = [e for e in sp.eels_edges(sym) if e.name == "K"]
        assert k.onset == pytest.approx(1000 * xraylib.EdgeEnergy(z, xraylib.K_SHELL))
    fe = {e.name: e.onset for e in sp.eels_edges("Fe")}
    assert fe["L2,3"] == pytest.approx(1000 * xraylib.EdgeEnergy(26, xraylib.L3_SHELL))
    ce = {e.name: e.onset for e in sp.eels_edges("Ce")}
    assert ce["M4,5"] == pytest.approx(1000 * xraylib.EdgeEnergy(58, xraylib.M5_SHELL))
    # textbook values: C K 284 eV, O K 532 eV
    assert sp.choose_edge("C", energy=np.arange(200.0, 600.0)).onset == pytest.approx(284, abs=1)


# -- EELS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lsq", "two_area"])
def test_power_law_recovered_exactly_without_noise(method):
    e = sp.energy_axis(offset=200, scale=0.5, size=600)
    a = np.array([[1e9, 3e8], [5e9, 2e12]])
    r = np.array([[3.0, 2.5], [3.5, 4.0]])
    si = sp.power_law(e, a, r)
    fa, fr = sp.fit_power_law(si, energy=e, window=(250, 300), method=method)
    np.testing.assert_allclose(fr, r, atol=0.01)
    np.testing.assert_allclose(fa, a, rtol=0.05)


def test_power_law_background_of_synthetic_si(eels):
    bgw = (35.0, 52.0)  # below the Li K edge at 55 eV
    for method in ("lsq", "two_area"):
        a, r = sp.fit_power_law(eels["si"], energy=eels["energy"], window=bgw, method=method)
        assert np.abs(r - eels["truth_background"]["r"]).max() < 0.05
        assert np.median(np.abs(a / eels["truth_background"]["A"] - 1)) < 0.05


@pytest.mark.parametrize("method", ["lsq", "two_area"])
def test_eels_maps_match_truth(eels, method):
    maps = sp.eels_maps(eels["si"], energy=eels["energy"], elements="Li, C, N, O", method=method)
    assert list(maps) == ["Li", "C", "N", "O"]
    for el, m in maps.items():
        truth = _truth_integral(eels, el, m.windows["integration"])
        corr = np.corrcoef(truth.ravel(), m.data.ravel())[0, 1]
        rel = np.linalg.norm(m.data - truth) / np.linalg.norm(truth)
        assert corr > 0.9, (el, corr)
        assert rel < 0.35, (el, rel)
        assert m.feature == f"{el} K"
        assert m.windows["background"][1] < m.energy <= m.windows["integration"][0] + 1e-9
    # Li and C (strong) are recovered to a few per cent
    for el in ("Li", "C"):
        truth = _truth_integral(eels, el, maps[el].windows["integration"])
        assert abs(maps[el].data.mean() / truth.mean() - 1) < 0.05


def test_subtract_background_leaves_edge(eels):
    spec = eels["si"][:4, -4:]  # carbon-rich side
    out = sp.subtract_background(spec, energy=eels["energy"], window=(240.0, 280.0))
    i = np.searchsorted(eels["energy"], 250)
    j = np.searchsorted(eels["energy"], 300)
    assert abs(out[..., i : i + 20].mean()) < 0.05 * spec[..., i : i + 20].mean()
    assert out[..., j : j + 20].mean() > 0  # the C K edge remains
    assert np.all(out[..., : np.searchsorted(eels["energy"], 240.0)] == 0)


def test_ratio_map_and_thickness(eels):
    maps = sp.eels_maps(eels["si"], energy=eels["energy"], elements=["O", "C"])
    ratio = sp.ratio_map(maps["O"].data, maps["C"].data)
    truth = eels["concentration"]["O"] / np.maximum(eels["concentration"]["C"], 1e-6)
    ok = np.isfinite(ratio) & (eels["concentration"]["C"] > 0.3)
    assert np.corrcoef(ratio[ok], truth[ok])[0, 1] > 0.8
    lo = syn.eels_lowloss_image(t_over_lambda=eels["thickness"])
    t, thr = sp.thickness_log_ratio(lo["si"], energy=lo["energy"])
    assert 0.5 < thr < 15
    np.testing.assert_allclose(t, eels["thickness"], atol=0.05)


# -- PCA / profiles -------------------------------------------------------------------------


def test_pca_denoises(eels):
    clean = syn.eels_spectrum_image(shape=(32, 48), noise=False)["si"]
    res = sp.pca(eels["si"], max_components=16)
    n = sp.suggest_components(res.explained_variance)
    assert 3 <= n <= 12
    assert np.all(np.diff(res.explained_variance) <= 1e-6 * res.explained_variance[0])
    den = sp.pca_reconstruct(res, n_components=n)
    assert den.shape == eels["si"].shape
    err_noisy = np.linalg.norm(eels["si"] - clean)
    err_den = np.linalg.norm(den - clean)
    assert err_den < 0.5 * err_noisy


def test_pca_cancel(eels):
    def cb(f):
        if f > 0.1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        sp.pca(eels["si"], progress=cb)


def test_line_profile_across_interface():
    img = np.zeros((20, 40), np.float32)
    img[:, 20:] = 1.0
    d, v = sp.line_profile(img, start=(10, 0), end=(10, 39), pixel_size=2.5)
    assert d[-1] == pytest.approx(39 * 2.5)
    step = d[np.argmax(v > 0.5)]
    assert step == pytest.approx(20 * 2.5, abs=2.5)


# -- bad input ------------------------------------------------------------------------------


def test_bad_input_messages(eels):
    si, e = eels["si"], eels["energy"]
    with pytest.raises(ValueError, match="no energy axis"):
        sp.eels_maps(si, energy=None, elements="C")
    with pytest.raises(ValueError, match="not increasing"):
        sp.eels_maps(si, energy=e[::-1].copy(), elements="C")
    with pytest.raises(ValueError, match="outside the recorded range"):
        sp.eels_map(si, energy=e, background_window=(10, 20), integration_window=(284, 300))
    with pytest.raises(ValueError, match="negative counts"):
        sp.eels_maps(si - 1e7, energy=e, elements="C")
    with pytest.raises(ValueError, match="Nearest edges: .*Fe L2,3 at 708 eV"):
        sp.eels_maps(si, energy=e, elements="Fe")
    with pytest.raises(ValueError, match="2D image"):
        sp.eels_maps(si[..., 0], energy=e, elements="C")
    with pytest.raises(ValueError, match="not a chemical element"):
        sp.parse_elements("Fe, Xx")
