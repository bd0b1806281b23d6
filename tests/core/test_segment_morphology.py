"""The segmentation's fast morphology is the textbook operation it replaces, pixel for pixel: the opening by a disk
(ball) from two distance transforms, the support's grown mask from one, the objects' second moments from the objects'
pixels only."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import ball, disk

from napari_cryomat.core import _particle_background as pbg
from napari_cryomat.core._segment_particles import _open_with_ball, _second_moments


def _random_mask(rng, shape, smooth):
    noise = ndi.gaussian_filter(rng.standard_normal(shape), smooth)
    return noise > rng.uniform(-0.5, 1.0) * noise.std()


@pytest.mark.parametrize("seed", range(12))
def test_opening_by_a_disk_is_scipys(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(20, 160, 2))
    mask = _random_mask(rng, shape, rng.uniform(1, 6))  # blobs, bridges and specks, touching the border
    radius = int(rng.integers(1, 12))
    expected = ndi.binary_opening(mask, structure=disk(radius))
    assert np.array_equal(_open_with_ball(mask, radius), expected)


def test_opening_by_a_ball_is_scipys_and_edge_cases_hold():
    rng = np.random.default_rng(40)
    volume = _random_mask(rng, (30, 40, 36), 2.5)
    for radius in (1, 2, 4):
        assert np.array_equal(_open_with_ball(volume, radius), ndi.binary_opening(volume, structure=ball(radius)))
    full = np.ones((25, 31), bool)  # every pixel foreground: only the border erodes it
    assert np.array_equal(_open_with_ball(full, 3), ndi.binary_opening(full, structure=disk(3)))
    assert not _open_with_ball(np.zeros((25, 31), bool), 3).any()
    speck = np.zeros((25, 31), bool)
    speck[10:13, 10:13] = True  # smaller than the disk: opened away
    assert not _open_with_ball(speck, 3).any()


@pytest.mark.parametrize("seed", range(8))
def test_support_mask_grown_in_one_pass_is_iterated_dilation(seed):
    rng = np.random.default_rng(100 + seed)
    mask = _random_mask(rng, tuple(int(v) for v in rng.integers(20, 140, 2)), rng.uniform(0.5, 4))
    steps = int(rng.integers(0, 17))
    expected = ndi.binary_dilation(mask, iterations=steps) if steps else mask
    assert np.array_equal(pbg.grown(mask, steps), expected)
    assert not pbg.grown(np.zeros((9, 9), bool), 3).any()


def test_second_moments_match_per_object_sums():
    rng = np.random.default_rng(7)
    labels, n = ndi.label(_random_mask(rng, (120, 140), 3.0))
    ids = np.arange(1, n + 1)
    area = np.bincount(labels.ravel())
    (my, mx), (cyy, cxx, cxy), elongation = _second_moments(labels, ids, area)
    for k in rng.choice(ids, 10, replace=False):
        yy, xx = np.nonzero(labels == k)
        assert np.isclose(my[k - 1], yy.mean()) and np.isclose(mx[k - 1], xx.mean())
        cov = np.cov(np.vstack([yy, xx]), bias=True)
        assert np.allclose([cyy[k - 1], cxx[k - 1], cxy[k - 1]], [cov[0, 0], cov[1, 1], cov[0, 1]], atol=1e-9)
        eig = np.linalg.eigvalsh(cov)
        assert np.isclose(elongation[k - 1], np.sqrt(eig[1] / max(eig[0], 1e-3)))


def test_one_gaussian_per_image_and_width_within_a_segmentation(monkeypatch):
    from napari_cryomat.core import _particle_settings as ps
    from napari_cryomat.core import segment as seg
    from napari_cryomat.core.synthetic.particles import make_particle_field

    rng = np.random.default_rng(3)
    image = rng.normal(size=(64, 80)).astype(np.float32)
    assert ps.smoothed(image, 2.0) is not ps.smoothed(image, 2.0)  # outside a segmentation: nothing kept
    with ps.shared_smoothing():
        first = ps.smoothed(image, 2.0)
        assert ps.smoothed(image, 2.0) is first and not first.flags.writeable
        assert np.array_equal(first, ndi.gaussian_filter(image, 2.0))
        assert ps.smoothed(image, 3.0) is not first and ps.smoothed(image.copy(), 2.0) is not first
    assert getattr(ps._SHARED, "cache", None) is None  # nothing held after the block

    field, _, _ = make_particle_field(diameter=30.0, dose=100.0, contrast=0.3, seed=5)
    widths = []
    real = ndi.gaussian_filter

    def counting(img, sigma, *args, **kwargs):
        if np.shape(img) == field.shape:
            widths.append(round(float(np.max(sigma)), 6))
        return real(img, sigma, *args, **kwargs)

    monkeypatch.setattr(ps.ndi, "gaussian_filter", counting)
    seg.segment_particles(field, pixel_size=1.0)
    smoothing = [w for w in widths if w > 1.5]  # the particles' smoothing (the blob search's own scales are below)
    assert smoothing and len(smoothing) == len(set(smoothing))  # each width once
    assert getattr(ps._SHARED, "cache", None) is None
