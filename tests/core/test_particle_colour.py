"""Coloured and striped noise (a real detector's): read off the image, whitened before the particles are looked for,
and said in the settings' caution; white noise and noise-free images are left as they are."""

import numpy as np

from napari_cryomat.core import segment as seg
from napari_cryomat.core._particle_blobs import _radial, _tile_power, noise_colour, whiten
from napari_cryomat.core.measure import match_labels
from napari_cryomat.core.synthetic.particles import make_particle_field


def _fall(image, low=(0.05, 0.10), high=(0.45, 0.50)):
    """The radial power at ``low`` cycles/px over that at ``high``."""
    freq, power = _radial(_tile_power(image))
    return power[(freq >= low[0]) & (freq < low[1])].mean() / power[(freq >= high[0]) & (freq < high[1])].mean()


def test_white_noise_and_noise_free_images_are_used_as_they_are():
    field, _, _ = make_particle_field(diameter=8.0, dose=2000.0, contrast=0.5, seed=3)  # sharp small particles
    assert noise_colour(field) == (0.0, False, False)
    assert whiten(field) is field
    yy, xx = np.mgrid[:128, :200]
    disks = np.where((np.hypot(yy - 64, xx - 70) < 30) | (np.hypot(yy - 64, xx - 126) < 30), 0.2, 1.0)
    assert noise_colour(disks.astype(np.float32)) == (0.0, False, False)  # hard edges fall with frequency too
    assert seg.estimate_particle_settings(field, pixel_size=1.0).noise_colour == ""


def test_coloured_noise_is_read_and_whitened():
    image, _, _ = make_particle_field(diameter=10.0, coverage=0.0, seed=7, noise_falloff=30.0)
    fall, rows, columns = noise_colour(image)
    assert 0.8 * np.log(30.0) / 0.25 < fall < 1.25 * np.log(30.0) / 0.25 and not rows and not columns
    assert 0.8 < _fall(whiten(image)) < 1.25


def test_row_stripes_are_read_and_flattened():
    rng = np.random.default_rng(8)
    image = rng.normal(100.0, 10.0, (512, 512)).astype(np.float32)
    image += 6.0 * rng.standard_normal((512, 1)).astype(np.float32)  # every row its own offset
    assert noise_colour(image) == (0.0, True, False)
    assert noise_colour(image.T) == (0.0, False, True)
    flat = whiten(image)
    assert np.std(flat.mean(axis=1)) < 0.25 * np.std(image.mean(axis=1))


def test_pure_coloured_noise_makes_few_objects_and_a_caution():
    # an empty field whose noise falls 31x to Nyquist: the defaults made 1251 objects of it before session 23
    image, truth, _ = make_particle_field(diameter=9.9, coverage=0.0, dose=206.0, contrast=0.25, gradient=0.13,
                                          undulation=0.05, noise_falloff=30.6, seed=11)
    labels, settings = seg.segment_particles(image, pixel_size=1.0, return_settings=True)
    assert labels.max() <= 20
    if labels.max():
        assert "noise is not white" in settings.caution()


def test_faint_particles_under_coloured_noise_are_found():
    # Ø21 px at 17 % contrast and 25 counts/px, noise falling 17x (Lorentzian): F1 0.001 before session 23 (1362
    # noise specks), the particles themselves after
    kw = dict(diameter=21.1, shape_kind="round", polarity="dark", contrast=0.17, dose=25.0, gradient=0.1,
              undulation=0.05, noise_falloff=16.6, noise_shape="lorentzian", seed=21)
    image, truth, _ = make_particle_field(**kw)
    labels, settings = seg.segment_particles(image, pixel_size=1.0, return_settings=True)
    assert match_labels(labels, truth)["f1"] > 0.8, settings.describe()
    assert "its power falls" in settings.caution()


def test_a_given_diameter_still_says_the_image_was_whitened():
    # with Diameter given there is no caution (the size was not read off the noise), yet the image is whitened before
    # the particles are looked for: the one-line description says so
    image, _, _ = make_particle_field(diameter=10.0, coverage=0.0, seed=7, noise_falloff=30.0)
    estimated = seg.estimate_particle_settings(image, pixel_size=1.0)
    given = seg.estimate_particle_settings(image, pixel_size=1.0, diameter=10.0)
    assert "whitened" not in estimated.describe() and "not white" in estimated.caution()
    assert given.caution() == "" and "noise not white (its power falls" in given.describe()
    white, _, _ = make_particle_field(diameter=10.0, seed=7)
    assert "not white" not in seg.estimate_particle_settings(white, pixel_size=1.0, diameter=10.0).describe()
