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
