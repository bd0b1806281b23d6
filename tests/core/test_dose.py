"""Beam damage physics: FRPR thresholds, the critical-dose fit and its interval, the dose budget."""

import numpy as np
import pytest

from napari_cryomat.core import dose
from napari_cryomat.core.synthetic.dose import beam_damage_series


def _poisson(seed, shape=(128, 128), lam=5.0):
    return np.random.default_rng(seed).poisson(lam, shape).astype(np.float32)


def test_frpr_of_identical_images_is_zero_and_frc_one():
    a = _poisson(0)
    rc = dose.ring_comparison(a, a, pixel_size=0.7)
    assert np.allclose(rc.frpr, 0.0, atol=1e-6)
    assert np.allclose(rc.frc, 1.0, atol=1e-9)
    assert rc.frequency[-1] <= 0.5 / 0.7  # rings stop at Nyquist, in 1/Å


def test_frpr_of_independent_noise_is_90_degrees_within_its_predicted_spread():
    z = []
    for seed in range(12):
        rc = dose.ring_comparison(_poisson(2 * seed), _poisson(2 * seed + 1))
        z.append((rc.frpr - 90.0) / rc.random_spread)
    z = np.concatenate(z)
    assert abs(z.mean()) < 0.1  # mean 90°
    assert 0.85 < z.std() < 1.15  # the spread the function predicts is the spread observed


def test_frpr_crosses_45_degrees_where_the_shared_signal_ends():
    """Two noisy copies of a structure band-limited to 1/8 Å: phases agree below, random above."""
    rng = np.random.default_rng(5)
    f = np.fft.fft2(rng.standard_normal((128, 128)))
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
    signal = 50.0 * np.real(np.fft.ifft2(f * (k < 0.125)))
    a = signal + rng.standard_normal(signal.shape)
    b = signal + rng.standard_normal(signal.shape)
    freq, phase = dose.frpr(a, b, pixel_size=1.0)
    assert np.all(phase[freq < 0.1] < 20)
    assert np.all(phase[freq > 0.2] > 45)  # above the band (and the window's leakage): unrelated
    assert abs(phase[freq > 0.2].mean() - 90) < 5


def test_critical_dose_fit_recovers_the_decay_and_its_interval_covers_the_truth():
    rng = np.random.default_rng(1)
    d = np.arange(40) * 2.0 + 1.0
    covered = 0
    for _ in range(40):
        y = 1000.0 * np.exp(-d / 15.0) + rng.normal(0, 15.0, d.size)
        fit = dose.fit_critical_dose(d, y)
        assert fit.dc == pytest.approx(15.0, rel=0.1)
        covered += fit.dc_low <= 15.0 <= fit.dc_high
    assert covered >= 34  # a 95 % interval: ~38 of 40, allow sampling spread


def test_fit_without_decay_gives_an_open_interval_not_nan():
    d = np.arange(10.0)
    fit = dose.fit_critical_dose(d, 100.0 + np.linspace(-1, 1, 10))
    assert fit.dc_high == np.inf and fit.dc > 50


@pytest.mark.parametrize("seed,lattice", [(21, "hexagonal"), (22, "square")])
def test_dose_series_recovers_the_critical_dose_of_each_spacing(seed, lattice):
    s = beam_damage_series((192, 192), 36, lattice=lattice, critical_dose=10.0, seed=seed)
    r = dose.dose_series(s.frames, pixel_size=s.pixel_size, dose_per_frame=s.dose_per_frame)
    assert r.dose_unit == "e/Å²" and not r.notes
    assert len(r.shells) == 2
    for shell, truth in zip(r.shells, s.shells[::-1] if r.shells[0].d_spacing < s.shells[0].d_spacing else s.shells):
        assert shell.d_spacing == pytest.approx(truth.d_spacing, rel=0.02)
        assert len(shell.g) == len(truth.g)
        assert shell.fit.dc == pytest.approx(truth.critical_dose, rel=0.2)
        assert shell.fit.dc_low < shell.fit.dc < shell.fit.dc_high


def test_resolution_worsens_with_dose_and_budget_is_where_it_is_lost():
    s = beam_damage_series((192, 192), 40, seed=4)
    r = dose.dose_series(s.frames, pixel_size=1.0, dose_per_frame=2.0, frames_per_point=8)
    res = r.resolution["FRC 0.143"]
    assert res[0] < res[-1]  # the fine structure fades: the resolution gets coarser
    budget = dose.dose_budget(r, float(res[0]) + 0.5)
    assert r.dose[0] < budget <= r.dose[-1] or budget == np.inf
    assert dose.dose_budget(r, 1000.0) == np.inf  # never lost
    assert dose.dose_budget(r, 0.1) == 0.0  # never reached


def test_unknown_dose_keeps_frames_and_says_so():
    s = beam_damage_series((96, 96), 12, seed=2)
    r = dose.dose_series(s.frames, pixel_size=1.0)
    assert r.dose_unit == "frame"
    assert np.allclose(r.frame_dose, np.arange(12) + 0.5)
    assert any("Dose per frame unknown" in n for n in r.notes)


def test_bad_input_is_named():
    s = beam_damage_series((64, 64), 8, seed=2)
    frames = s.frames.copy()
    frames[3, 5, 5] = np.nan
    with pytest.raises(ValueError, match="frames"):
        dose.dose_series(frames, pixel_size=1.0)
    with pytest.raises(ValueError, match="dose_per_frame"):
        dose.dose_series(s.frames, pixel_size=1.0, dose_per_frame=0.0)
    with pytest.raises(ValueError, match="frames_per_point"):
        dose.dose_series(s.frames, pixel_size=1.0, frames_per_point=1)
    with pytest.raises(ValueError, match="peaks"):
        dose.dose_series(s.frames, pixel_size=1.0, peaks=np.array([[0.1], [0.2]]))
