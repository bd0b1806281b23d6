"""The synthetic particle field's coloured noise (a real detector's: its MTF, a motion-corrected sum's interpolation):
only when asked, with the spectrum asked; the default draws the images of earlier versions."""

import numpy as np
import pytest

from napari_cryomat.core.synthetic.particles import make_particle_field


def _fall(image, low=(0.05, 0.10), high=(0.45, 0.50)):
    """The radial power spectrum of ``image`` at ``low`` cycles/px over that at ``high``."""
    power = np.abs(np.fft.rfft2(image - image.mean())) ** 2
    freq = np.hypot(np.fft.fftfreq(image.shape[0])[:, None], np.fft.rfftfreq(image.shape[1])[None, :])
    return power[(freq >= low[0]) & (freq < low[1])].mean() / power[(freq >= high[0]) & (freq < high[1])].mean()


def test_the_synthetic_field_colours_its_noise_only_when_asked():
    white, truth, _ = make_particle_field(diameter=10.0, coverage=0.0, seed=5)
    same, _, _ = make_particle_field(diameter=10.0, coverage=0.0, seed=5, noise_falloff=1.0, noise_shape="lorentzian")
    np.testing.assert_array_equal(white, same)
    gaussian, truth2, info = make_particle_field(diameter=10.0, coverage=0.0, seed=5, noise_falloff=30.0)
    lorentzian, _, _ = make_particle_field(diameter=10.0, coverage=0.0, seed=5, noise_falloff=30.0,
                                           noise_shape="lorentzian")
    np.testing.assert_array_equal(truth, truth2)
    assert info["noise_falloff"] == 30.0 and info["noise_shape"] == "gaussian"
    assert 0.8 < _fall(white) < 1.25
    assert 15.0 < _fall(gaussian) < 40.0  # 30x from zero frequency to 0.5 cycles/px; ~28x from 0.05-0.1 to 0.45-0.5
    assert 8.0 < _fall(lorentzian) < 20.0  # most of a Lorentzian's fall is below 0.05 cycles/px
    assert abs(gaussian.mean() - white.mean()) < 0.01 * white.mean()  # the noise is coloured, the signal kept


def test_the_noise_options_are_checked():
    with pytest.raises(ValueError, match="noise_shape"):
        make_particle_field(diameter=10.0, noise_shape="pink")
    with pytest.raises(ValueError, match="noise_falloff"):
        make_particle_field(diameter=10.0, noise_falloff=0.5)


def _band_power(image, band):
    power = np.abs(np.fft.rfft2(image - image.mean())) ** 2
    freq = np.hypot(np.fft.fftfreq(image.shape[0])[:, None], np.fft.rfftfreq(image.shape[1])[None, :])
    return power[(freq >= band[0]) & (freq < band[1])].mean()


@pytest.mark.parametrize("shape", ["gaussian", "lorentzian"])
def test_signal_mtf_passes_the_particles_through_the_transfer_function_that_colours_the_noise(shape):
    """A detector's MTF blurs what it records: with ``signal_mtf`` the sharp edges of a dense, nearly noise-free field
    lose their high-frequency power as the noise does (power x ``1/falloff`` at 0.5 cycles/px); without it the signal
    keeps its edges, and the empty field's noise is coloured alike either way."""
    kw = dict(diameter=12.0, coverage=0.4, contrast=0.5, dose=1e6, blur=0.0, seed=3, noise_falloff=30.0,
              noise_shape=shape)
    sharp, truth, info = make_particle_field(**kw)
    blurred, truth2, info2 = make_particle_field(**kw, signal_mtf=True)
    np.testing.assert_array_equal(truth, truth2)
    assert info["signal_mtf"] is False and info2["signal_mtf"] is True
    expected = 30.0 ** -(0.475 / 0.5) ** 2 if shape == "gaussian" else 1 / (1 + 29.0 * (0.475 / 0.5) ** 2)
    ratio = _band_power(blurred, (0.45, 0.5)) / _band_power(sharp, (0.45, 0.5))
    assert 0.6 * expected < ratio < 1.6 * expected
    assert 0.9 < _band_power(blurred, (0.01, 0.03)) / _band_power(sharp, (0.01, 0.03)) < 1.1  # large scales kept
    assert abs(blurred.mean() - sharp.mean()) < 1e-3 * sharp.mean()
    empty = dict(kw, coverage=0.0, dose=200.0, blur=1.0)
    noise_only, _, _ = make_particle_field(**empty)
    whole, _, _ = make_particle_field(**empty, signal_mtf=True)
    assert 0.8 < _fall(whole) / _fall(noise_only) < 1.25
