"""Particles on a real cryo-EM micrograph the defaults were never tuned on: mrcfile's ``fei-extended.mrc`` (a Falcon
image from EPU, 3838x3710 at 0.85 Å/px) holds 150-250 dark protein particles of ~110 Å (130 px) at a quarter of the
pixel noise, a brightness gradient and ~120 hot or X-ray-hit pixels (one at 13x the mean). Before session 22 the
defaults read bright particles of Ø 2-18 Å and segmented 6,809 noise specks."""

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_cryomat.core import segment as seg

sys.path.insert(0, str(Path(__file__).parents[1] / "io"))
from corpus import ensure_corpus  # noqa: E402


@pytest.fixture(scope="module")
def micrograph():
    import mrcfile

    root, why = ensure_corpus()
    if root is None:
        pytest.skip(why)
    path = next(root.rglob("fei-extended.mrc"), None)
    if path is None:
        pytest.skip("fei-extended.mrc is not in the corpus")
    with mrcfile.open(path, permissive=True) as mrc:
        return np.asarray(mrc.data, np.float32).squeeze(), float(mrc.voxel_size.x)


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
