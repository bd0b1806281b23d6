"""Low-loss EELS: ZLP alignment, mean free path, thickness, Fourier-log and Fourier-ratio."""

from math import factorial

import numpy as np
import pytest

from napari_cryomat.core import lowloss as ll
from napari_cryomat.core import spectral as sp
from napari_cryomat.core._progress import Cancelled
from napari_cryomat.core.synthetic import spectral as syn


def _grid_conv(a, b, i_zero, n):
    """Linear convolution on an energy grid whose 0 eV is channel ``i_zero``."""
    return np.convolve(a, b)[i_zero : i_zero + n]


def _plural(rng, tau, counts=1e6):
    """A low-loss spectrum built by Poisson plural scattering of a known single-scattering
    distribution (a Drude plasmon at a random energy plus a weak edge), and its parts."""
    e = sp.energy_axis(offset=-10.0, scale=0.1, size=2400)
    i0 = int(np.argmin(np.abs(e)))
    fwhm = rng.uniform(0.5, 1.2)
    z = np.exp(-0.5 * (e / (fwhm / 2.3548)) ** 2)
    z /= z.sum()
    ep, width = rng.uniform(15, 27), rng.uniform(2.5, 6)
    s = (e > 1) * (e * width * ep**2 / ((e**2 - ep**2) ** 2 + (e * width) ** 2))
    s += rng.uniform(0.005, 0.03) * s.max() * (e > 100) * (np.maximum(e, 100) / 100) ** -3
    s /= s.sum()
    spec, term = np.zeros_like(e), z.copy()
    for n in range(10):
        spec += counts * np.exp(-tau) * tau**n / factorial(n) * term
        term = _grid_conv(term, s, i0, e.size)
    return e, rng.poisson(spec).astype(np.float32), z, s, i0, spec


@pytest.mark.parametrize("seed", range(3))
def test_fourier_log_recovers_single_scattering(seed):
    rng = np.random.default_rng(seed)
    tau = rng.uniform(0.3, 1.5)
    e, j, z, s, i0, clean = _plural(rng, tau)
    counts_zlp = 1e6 * np.exp(-tau)
    band = (e > 4) & (e < 200)
    g = np.exp(-0.5 * (e / (1.0 / 2.3548)) ** 2)
    g /= g.sum()
    expect = counts_zlp * tau * _grid_conv(g, s, i0, e.size)
    # noise-free: exact up to the truncation of the spectrum at its last channel
    exact = ll.fourier_log_deconvolve(clean, energy=e, zlp_threshold=3.0, fwhm=1.0)
    assert np.abs(exact[band] - expect[band]).sum() / expect[band].sum() < 0.01
    with_zlp = ll.fourier_log_deconvolve(clean, energy=e, zlp_threshold=3.0)
    expect_zlp = counts_zlp * tau * _grid_conv(z, s, i0, e.size)
    assert np.abs(with_zlp[band] - expect_zlp[band]).sum() / expect_zlp[band].sum() < 0.01
    # Poisson noise: the plasmon is recovered to a few per cent, the total single scattering to 2 %
    ssd = ll.fourier_log_deconvolve(j, energy=e, zlp_threshold=3.0, fwhm=1.0)
    plasmon = (e > 4) & (e < 50)
    assert np.abs(ssd[plasmon] - expect[plasmon]).sum() / expect[plasmon].sum() < 0.05
    assert ssd[band].sum() / expect[band].sum() == pytest.approx(1.0, abs=0.02)
    # the plural-scattering peaks are gone: the second plasmon is no longer there
    ep = e[np.argmax(expect)]
    two = (e > 1.8 * ep) & (e < 2.2 * ep)
    assert ssd[two].sum() < 0.5 * j[two].sum()
    # log-ratio thickness of the same spectrum
    # log-ratio thickness of the same spectrum: exact up to noise for the counts recorded (the
    # plural tail beyond the last channel is lost, as in any measured spectrum)
    t, _t_nm, thr = ll.thickness_map(j[None], energy=e)
    assert 0.5 < thr < 6
    recorded = np.log(clean.sum() / clean[e < thr].sum())
    assert t[0] == pytest.approx(recorded, abs=0.005)
    assert t[0] == pytest.approx(tau, abs=0.05)


def test_fourier_ratio_removes_plural_scattering():
    rng = np.random.default_rng(11)
    tau = 0.9
    e, j, z, s, i0, clean = _plural(rng, tau)
    ec = sp.energy_axis(offset=250.0, scale=0.1, size=1600)
    edge = 1e3 * (ec > 284) * (np.maximum(ec, 284) / 284) ** -3.0
    core = _grid_conv(edge, j / (1e6 * np.exp(-tau)), i0, ec.size) + rng.normal(0, 1.0, ec.size)
    got = ll.fourier_ratio_deconvolve(core, j, energy_low_loss=e, fwhm=1.0)
    g = np.exp(-0.5 * (e / (1.0 / 2.3548)) ** 2)
    g /= g.sum()
    expect = _grid_conv(edge, g, i0, ec.size)
    band = (ec > 280) & (ec < 350)
    assert np.abs(got[band] - expect[band]).sum() / expect[band].sum() < 0.02
    # the plasmon replica of the edge (at onset + Ep) is removed
    assert np.abs(got[band].sum() / expect[band].sum() - 1) < 0.01


def test_zlp_alignment_removes_random_drift(tmp_path):
    rng = np.random.default_rng(3)
    tau = rng.uniform(0.2, 1.0, (6, 7))
    d = syn.eels_lowloss_image(t_over_lambda=tau, offset=-8.0, scale=0.1, size=700, total_counts=2e5)
    drift = rng.uniform(-2.0, 2.0, tau.shape)
    e = d["energy"]
    si = np.stack([np.interp(e - s, e, spec) for s, spec in zip(drift.ravel(), d["si"].reshape(-1, e.size))])
    si = si.reshape(d["si"].shape).astype(np.float32)
    pos = ll.zlp_positions(si, energy=e, search_window=(-5.0, 5.0))
    assert np.abs(pos - drift).max() < 0.03
    path = tmp_path / "aligned.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=si.shape)
    src = np.lib.format.open_memmap(tmp_path / "si.npy", mode="w+", dtype=np.float32, shape=si.shape)
    src[:] = si
    seen = []
    aligned, shifts = ll.align_zlp(src, energy=e, out=out, max_bytes=7 * 700 * 4 * 2, progress=seen.append)
    assert aligned is out and len(seen) >= 3
    np.testing.assert_allclose(shifts, pos, atol=1e-6)
    assert np.abs(ll.zlp_positions(aligned, energy=e)).max() < 0.03
    in_memory, _ = ll.align_zlp(si, energy=e)
    np.testing.assert_array_equal(np.asarray(aligned), in_memory)
    t, _, _ = ll.thickness_map(aligned, energy=e, max_bytes=7 * 700 * 4)
    np.testing.assert_allclose(t, tau, atol=0.05)

    def cancel(f):
        if f > 0.2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        ll.align_zlp(src, energy=e, max_bytes=7 * 700 * 4, progress=cancel)


def test_mean_free_path_formulas():
    # Iakoubovskii eq. 9 with angles = exSpy's iMFP_Iakoubovskii × iMFP_angular_correction
    assert ll.mean_free_path(e0=200, beta=10, density=2.2) == pytest.approx(174.9655, rel=1e-5)
    assert ll.mean_free_path(e0=200, beta=30, alpha=20, density=2.2) == pytest.approx(155.8649, rel=1e-5)
    # Malis: λ = 106 F E0 / (Em ln(2 β E0 / Em)), Em = 7.6 Zeff^0.36
    f = (1 + 200 / 1022) / (1 + 200 / 511) ** 2
    em = 7.6 * 6**0.36
    assert ll.mean_free_path(e0=200, beta=10, zeff=6, method="malis") == pytest.approx(
        106 * f * 200 / (em * np.log(2 * 10 * 200 / em)))
    # a larger collection angle collects more scattering: shorter λ
    assert ll.mean_free_path(e0=200, beta=50, density=2.2) < ll.mean_free_path(e0=200, beta=5, density=2.2)
    t, t_nm, _ = ll.thickness_map(_plural(np.random.default_rng(0), 0.5)[1][None],
                                  energy=sp.energy_axis(offset=-10.0, scale=0.1, size=2400), mean_free_path_nm=100.0)
    assert t_nm[0] == pytest.approx(100 * t[0])


def test_bad_input():
    e = sp.energy_axis(offset=100.0, scale=0.1, size=300)
    with pytest.raises(ValueError, match="does not contain the zero-loss peak"):
        ll.thickness_map(np.ones((2, 300), np.float32), energy=e)
    with pytest.raises(ValueError, match="density"):
        ll.mean_free_path(e0=200, beta=10)
    with pytest.raises(ValueError, match="zeff"):
        ll.mean_free_path(e0=200, beta=10, method="malis")
    with pytest.raises(ValueError, match="not increasing"):
        ll.zlp_positions(np.ones((2, 300), np.float32), energy=e[::-1].copy())
    with pytest.raises(ValueError, match="search_window"):
        ll.zlp_positions(np.ones((2, 300), np.float32), energy=e, search_window=(0.0, 5.0))


@pytest.mark.parametrize("zlp_fwhm", [0.6, 1.0, 1.8])
def test_zero_loss_parameters_of_a_known_peak(zlp_fwhm):
    """FWHM of the summed ZLP within a channel of the generator's, the ZLP end in the ZLP/plasmon valley,
    the same from a lazy (dask) SI as in memory, and the end the one thickness_map uses by default."""
    d = syn.eels_lowloss_image(t_over_lambda=np.full((4, 5), 0.5), zlp_fwhm=zlp_fwhm, total_counts=1e6,
                               scale=0.1, size=800)
    end, fwhm = ll.zero_loss_parameters(d["si"], energy=d["energy"])
    assert abs(fwhm - zlp_fwhm) <= 0.1 + 0.05 * zlp_fwhm
    assert 1.0 * zlp_fwhm < end < 22.0 - 6.0  # after the ZLP, before the plasmon (22 eV, 6 eV wide)
    import dask.array as da

    lazy = da.from_array(d["si"], chunks=(2, 5, -1))
    assert ll.zero_loss_parameters(lazy, energy=d["energy"]) == pytest.approx((end, fwhm), rel=1e-6)
    assert ll.thickness_map(d["si"], energy=d["energy"])[2] == end
    with pytest.raises(ValueError, match="zero-loss peak"):
        ll.zero_loss_parameters(d["si"], energy=d["energy"] + 30.0)
