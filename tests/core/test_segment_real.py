"""Particles on a real cryo-EM micrograph the defaults were never tuned on: mrcfile's ``fei-extended.mrc`` (a Falcon
image from EPU, 3838x3710 at 0.85 Å/px) holds 150-250 dark protein particles of ~110 Å (130 px) at a quarter of the
pixel noise, a brightness gradient and ~120 hot or X-ray-hit pixels (one at 13x the mean). Before session 22 the
defaults read bright particles of Ø 2-18 Å and segmented 6,809 noise specks.

Real detectors' noise is not always white: mrcfile's ``epu2.9_example.mrc`` (4096² at 0.67 Å/px) has noise whose
power falls 47x to 0.5 cycles/px (the defaults read it as ~331,000 particles of Ø 2.7 Å before session 23), hyperspy's
``TVIPS_bin4.tif`` row stripes and no particles (343 objects)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_cryomat.core import segment as seg

sys.path.insert(0, str(Path(__file__).parents[1] / "io"))
from corpus import corpus_file  # noqa: E402


def _mrc(name: str):
    import mrcfile

    with mrcfile.open(corpus_file(name, rosettasciio=False), permissive=True) as mrc:
        return np.asarray(mrc.data, np.float32).squeeze(), float(mrc.voxel_size.x)


@pytest.fixture(scope="module")
def micrograph():
    return _mrc("fei-extended.mrc")


@pytest.mark.parametrize("corner", ["top left", "bottom right"])
def test_dark_particles_of_about_110_angstrom_are_read_off_a_real_micrograph(micrograph, corner):
    image, pixel_size = micrograph
    crop = image[:2048, :2048] if corner == "top left" else image[-2048:, -2048:]  # half the time of the whole
    settings = seg.estimate_particle_settings(crop, pixel_size=pixel_size)
    assert settings.polarity == "dark"
    assert 60.0 < settings.diameter < 160.0, settings.describe()
    assert settings.n_blobs < 500  # particles, not thousands of noise detections


def test_a_size_read_at_the_pixel_scale_comes_with_a_caution():
    from napari_cryomat.core._particle_settings import ParticleSettings

    common = dict(polarity="bright", smoothing=0.3, threshold="otsu", local_block=8.0, min_size=1.0,
                  split_distance=0.5, pixel_size=0.85)
    speck = ParticleSettings(diameter=1.7, estimated=("diameter",), **common)
    assert "Ø 1.7 Å (2.0 px)" in speck.caution() and "diameter=" in speck.caution()
    assert ParticleSettings(diameter=1.7, estimated=(), **common).caution() == ""  # the user said so
    assert ParticleSettings(diameter=97.0, estimated=("diameter",), **common).caution() == ""


def test_a_micrograph_with_coloured_noise_is_not_read_as_pixel_sized_particles():
    image, pixel_size = _mrc("epu2.9_example.mrc")
    settings = seg.estimate_particle_settings(image[:2048, :2048], pixel_size=pixel_size)  # half the time of the whole
    assert settings.diameter > 10.0, settings.describe()  # 2.7 Å (4 px) of noise before session 23
    assert settings.n_blobs < 2000, settings.describe()
    assert "its power falls" in settings.caution()


def test_a_striped_image_without_particles_comes_with_a_caution():
    import tifffile

    image = tifffile.imread(corpus_file("TVIPS_bin4.tif", rosettasciio=False)).astype(np.float32)
    settings = seg.estimate_particle_settings(image, pixel_size=1.0)
    assert "row stripes" in settings.caution()  # 343 objects without a word before session 23
    assert seg.estimate_particle_settings(_mrc("fei-extended.mrc")[0][:1024, :1024], pixel_size=0.85).noise_colour == ""
