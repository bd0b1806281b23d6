"""Hot and X-ray-hit pixels: found where they are, nowhere else, replaced by their neighbours."""

import numpy as np
import pytest

from napari_cryomat.core.defects import outlier_pixels, replace_outlier_pixels


def test_hits_are_found_and_replaced_by_their_neighbours():
    rng = np.random.default_rng(3)
    image = rng.normal(3500.0, 600.0, (256, 256)).astype(np.float32)
    hits = [(10, 20, 45804.0), (100, 200, 10000.0), (255, 0, 14000.0)]  # 70, 11, 17 noise deviations up; a corner
    for y, x, value in hits:
        image[y, x] = value
    image[50, 60] = -2500.0  # a dead pixel, 10 deviations low
    original = image.copy()
    mask = outlier_pixels(image)
    assert {tuple(p) for p in np.argwhere(mask)} == {(10, 20), (100, 200), (255, 0), (50, 60)}
    cleaned, count = replace_outlier_pixels(image)
    assert count == 4
    np.testing.assert_array_equal(image, original)  # the caller's image is untouched
    for y, x in [(10, 20), (100, 200), (255, 0), (50, 60)]:
        around = original[max(0, y - 1):y + 2, max(0, x - 1):x + 2]
        assert around.min() < cleaned[y, x] < 6000.0  # a neighbour's value
    keep = ~mask
    np.testing.assert_array_equal(cleaned[keep], original[keep])


def test_noise_edges_and_small_particles_are_left_alone():
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 1.0, (2000, 2000)).astype(np.float32)
    assert not outlier_pixels(noise).any()  # 4 million Gaussian pixels: the largest margin is ~4.3 deviations
    yy, xx = np.mgrid[:128, :128]
    disks = np.zeros((128, 128), np.float32)
    for cy, cx in [(30, 30), (80, 90)]:
        disks[(yy - cy) ** 2 + (xx - cx) ** 2 <= 2.5**2] = 1000.0  # Ø5 px particles, noise-free: a sharp edge
    disks[100:, :] += 500.0  # a step
    assert not outlier_pixels(disks + rng.normal(0, 1.0, disks.shape).astype(np.float32)).any()
    assert not outlier_pixels(disks).any()  # no noise at all: nothing is many noise deviations off
    assert replace_outlier_pixels(disks)[1] == 0


@pytest.mark.parametrize("bad, message", [
    (np.zeros(10), "2D"),
    (np.full((8, 8), np.nan), "NaN"),
])
def test_bad_images_are_refused_by_name(bad, message):
    with pytest.raises(ValueError, match="image") as err:
        outlier_pixels(bad)
    assert message in str(err.value)


def test_bad_margin_is_refused_by_name():
    with pytest.raises(ValueError, match="z"):
        replace_outlier_pixels(np.zeros((8, 8)), z=1.0)
