"""EELS quantification and low-loss tools of the Spectrum imaging dock, driven as a user would in a
real napari window: spectrum images added, buttons clicked, workers waited for, layers checked."""

import dask.array as da
import numpy as np
import pytest

from napari_cryomat.core import eels_quant as q
from napari_cryomat.core import spectral as sp
from napari_cryomat.core._progress import Cancelled
from napari_cryomat.core.synthetic.spectral import eels_lowloss_image


def _wait(qtbot, widget, timeout=30000):
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)


@pytest.fixture
def dock(spectrum_dock):
    viewer, widget = spectrum_dock()
    widget.eels_section.set_expanded(True)
    return viewer, widget


def _oxide(rng, shape=(12, 16)):
    """C and O K edges (hydrogenic σ, 200 kV, 30 mrad) with the O fraction rising along X, Poisson."""
    e = sp.energy_axis(offset=200.0, scale=0.5, size=900)
    frac_o = np.broadcast_to(np.linspace(0.2, 0.8, shape[1]), shape)
    bg = 3e4 * (e / 200.0) ** -3.0
    dc = q.differential_cross_section("C", energy=e, e0=200, beta=30)
    do = q.differential_cross_section("O", energy=e, e0=200, beta=30)
    dose = 0.5 * bg[np.searchsorted(e, 290)] / dc[np.searchsorted(e, 290)]
    lam = bg + dose * ((1 - frac_o)[..., None] * dc + frac_o[..., None] * do)
    return rng.poisson(lam).astype(np.float32), e, frac_o


def test_atomic_percent_from_the_dock(dock, qtbot, add_si):
    viewer, w = dock
    si, e, frac_o = _oxide(np.random.default_rng(1))
    add_si(viewer, da.from_array(si, chunks=(4, 16, 900)), e, "C-O SI")  # lazy, as opened from a file
    w.si_combo.setCurrentText("C-O SI")
    w.set_elements("C, O")
    w.eels.e0_spin.setValue(200)
    w.eels.beta_spin.setValue(30)
    for method in ("edge integrals", "linear model fit"):
        w.eels.quant_combo.setCurrentText(method)
        w.eels.quant_button.click()
        _wait(qtbot, w)
        at_o = viewer.layers["O at.% (EELS)"].data
        np.testing.assert_allclose(np.median(at_o, axis=0), 100 * frac_o[0], atol=5.0)
        assert viewer.layers["O at.% (EELS)"].metadata["spectrum_map"]["method"] == method
        assert viewer.layers["O at.% (EELS)"].scale[-1] == pytest.approx(5.0)
        assert f"Median at.% ({method})" in w.eels.status.text()


def test_zlp_alignment_thickness_and_fourier_log(dock, qtbot, messages, add_si):
    viewer, w = dock
    rng = np.random.default_rng(2)
    tau = 0.3 + 0.8 * rng.random((10, 12))
    d = eels_lowloss_image(t_over_lambda=tau, offset=-8.0, scale=0.1, size=800, total_counts=1e5)
    drift = rng.uniform(-1.5, 1.5, tau.shape)
    e = d["energy"]
    si = np.stack([np.interp(e - s, e, spec) for s, spec in zip(drift.ravel(), d["si"].reshape(-1, e.size))])
    add_si(viewer, si.reshape(d["si"].shape).astype(np.float32), e, "low-loss drifting")
    w.si_combo.setCurrentText("low-loss drifting")
    w.eels.align_button.click()
    _wait(qtbot, w)
    shifts = viewer.layers["ZLP shift (low-loss drifting)"].data
    assert np.abs(shifts - drift).max() < 0.05
    assert "low-loss drifting ZLP-aligned" in viewer.layers
    # t/λ and t (Malis) on the aligned SI
    w.si_combo.setCurrentText("low-loss drifting ZLP-aligned")
    w.eels.mfp_combo.setCurrentText("Malis")
    w.eels.mfp_spin.setValue(6.0)
    w.eels.thickness_button.click()
    _wait(qtbot, w)
    t = viewer.layers["t/λ (low-loss drifting ZLP-aligned)"].data
    np.testing.assert_allclose(t, tau, atol=0.06)
    t_nm = viewer.layers["t nm (low-loss drifting ZLP-aligned)"]
    lam = t_nm.metadata["spectrum_map"]["mean_free_path_nm"]
    np.testing.assert_allclose(t_nm.data, lam * t, rtol=1e-5)
    assert any("Malis" in m for _k, m in messages)
    # Fourier-log: the plasmon replicas are removed
    w.eels.fourier_log_button.click()
    _wait(qtbot, w)
    ssd = np.moveaxis(viewer.layers["low-loss drifting ZLP-aligned SSD (Fourier-log)"].data, 0, -1)
    two = (e > 40) & (e < 50)  # second plasmon at 44 eV
    raw = np.moveaxis(viewer.layers["low-loss drifting ZLP-aligned"].data, 0, -1)
    assert ssd[..., two].sum() < 0.5 * raw[..., two].sum()


def test_fourier_ratio_and_bad_input(dock, qtbot, messages, add_si):
    viewer, w = dock
    rng = np.random.default_rng(3)
    tau = np.full((6, 8), 0.7)
    low = eels_lowloss_image(t_over_lambda=tau, offset=-10.0, scale=0.5, size=200, total_counts=1e6)
    ec = sp.energy_axis(offset=230.0, scale=0.5, size=300)
    edge = 5e3 * (ec > 284) * (np.maximum(ec, 284) / 284) ** -3.0
    bg = 2e5 * (ec / 230) ** -3.0
    i0 = int(np.argmin(np.abs(low["energy"])))
    spec0 = low["si"][0, 0].astype(np.float64)
    plural = np.convolve(edge, spec0 / spec0[: i0 + 4].sum())[i0 : i0 + ec.size]
    core = rng.poisson(np.broadcast_to(bg + plural, (6, 8, ec.size))).astype(np.float32)
    add_si(viewer, da.from_array(core, chunks=(2, 8, 300)), ec, "core C K")  # lazy, as opened from a file
    add_si(viewer, low["si"], low["energy"], "low C")
    w.si_combo.setCurrentText("core C K")
    w.set_elements("C")
    w.eels.low_combo.setCurrentText("low C")
    w.eels.fourier_ratio_button.click()
    _wait(qtbot, w)
    out = np.moveaxis(viewer.layers["core C K Fourier-ratio"].data, 0, -1)
    assert isinstance(out, np.memmap)  # written band by band to a memory-mapped file, not held in memory
    band = (ec > 290) & (ec < 330)
    # the single-scattering edge: the plasmon replica at +22 eV is gone, the edge area kept
    assert out[..., band].sum(axis=-1).mean() == pytest.approx(edge[band].sum(), rel=0.08)
    # bad input: a low-loss SI of another dispersion is refused with a message, nothing added
    low2 = eels_lowloss_image(t_over_lambda=tau, offset=-5.0, scale=0.25, size=200)
    add_si(viewer, low2["si"], low2["energy"], "low other dispersion")
    w.eels.low_combo.setCurrentText("low other dispersion")
    n = len(viewer.layers)
    w.eels.fourier_ratio_button.click()
    _wait(qtbot, w)
    assert len(viewer.layers) == n
    assert "same dispersion" in str(w.runner.last_error)
    # an element without a K/L edge in range: the message names it
    w.set_elements("C, Ce")
    assert any("Ce has no EELS edge" in m for _k, m in messages)


def test_out_of_core_maps_with_cancel(dock, qtbot, tmp_path, messages, add_si):
    viewer, w = dock
    si, e, _ = _oxide(np.random.default_rng(4), shape=(48, 16))
    path = tmp_path / "si.raw"
    si.tofile(path)
    raw = sp.RawSpectrumImage(path, si.shape)
    add_si(viewer, da.from_array(raw, chunks=(4, 16, 900)), e, "raw SI")
    w.si_combo.setCurrentText("raw SI")
    w.set_elements("C, O")
    w.maps.maps_button.click()
    _wait(qtbot, w)
    ref = sp.eels_maps(si, energy=e, elements="C, O")
    np.testing.assert_array_equal(viewer.layers["O map"].data, ref["O"].data)
    # Cancel: the viewer is left as it was
    n = len(viewer.layers)
    worker = w.maps.make_maps()
    w.runner.cancel()
    _wait(qtbot, w)
    assert worker is not None and isinstance(w.runner.last_error, Cancelled)
    assert len(viewer.layers) == n


def test_sections_follow_the_signal_and_fit_a_laptop(dock):
    viewer, w = dock
    w.mode_combo.setCurrentText("EELS")
    assert w.eels_section.isVisibleTo(w) and not w.eds_section.isVisibleTo(w)
    w.mode_combo.setCurrentText("EDS")
    assert w.eds_section.isVisibleTo(w) and not w.eels_section.isVisibleTo(w)
    assert w.sizeHint().width() <= 420 and w.minimumSizeHint().width() <= 420
