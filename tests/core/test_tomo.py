"""Physics and bookkeeping checks for napari_cryomat.core.tomo."""

import dask.array as da
import numpy as np
import pytest

from napari_cryomat.core import tomo


@pytest.fixture
def ramp():
    """Volume whose value encodes the slice: v[z, y, x] = 100 z + 10 y + x (exact in float32)."""
    z, y, x = np.meshgrid(np.arange(12), np.arange(10), np.arange(16), indexing="ij")
    return (100.0 * z + 10.0 * y + x).astype(np.float32)


def test_slab_bounds_match_napari_convention():
    assert tomo.slab_bounds(5, 1, 10) == (5, 6)
    assert tomo.slab_bounds(5, 2, 10) == (5, 7)
    assert tomo.slab_bounds(5, 3, 10) == (4, 7)
    assert tomo.slab_bounds(5, 4, 10) == (4, 8)
    assert tomo.slab_bounds(0, 5, 10) == (0, 3)  # clipped at the edge
    assert tomo.slab_bounds(99, 3, 10) == (8, 10)
    with pytest.raises(ValueError):
        tomo.slab_bounds(1, 0, 10)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slab_mean_is_mean_of_slices(ramp, axis):
    got = tomo.slab_mean(ramp, 5, thickness=3, axis=axis)
    expected = np.take(ramp, [4, 5, 6], axis=axis).mean(axis=axis)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.dtype == np.float32


def test_slab_mean_reads_only_the_slab(tmp_path):
    shape = (64, 32, 32)
    path = tmp_path / "vol.raw"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=shape)
    mm[:] = np.arange(64, dtype=np.float32)[:, None, None]
    mm.flush()
    vol = np.memmap(path, dtype=np.float32, mode="r", shape=shape)

    class Spy:
        """Records which Z slices are read."""

        def __init__(self, a):
            self.a, self.ndim, self.shape, self.read = a, a.ndim, a.shape, []

        def __getitem__(self, key):
            z = key[0]
            self.read.append(z if isinstance(z, int) else (z.start, z.stop))
            return self.a[key]

    spy = Spy(vol)
    out = tomo.slab_mean(spy, 30, thickness=5)
    assert sorted(spy.read) == [28, 29, 30, 31, 32]
    np.testing.assert_allclose(out, 30.0)


def test_slab_mean_on_dask_and_progress(ramp):
    seen = []
    got = tomo.slab_mean(da.from_array(ramp, chunks=(2, 5, 8)), 7, thickness=2, progress=seen.append)
    np.testing.assert_allclose(got, ramp[7:9].mean(0))
    assert seen[-1] == 1.0 and len(seen) == 2


def test_slices_from_angstrom():
    assert tomo.slices_from_angstrom(100.0, 10.0) == 10
    assert tomo.slices_from_angstrom(104.0, 10.0) == 10
    assert tomo.slices_from_angstrom(1.0, 10.0) == 1
    with pytest.raises(ValueError):
        tomo.slices_from_angstrom(10.0, 0.0)


def test_bin_volume_is_lazy_mean_binning(ramp):
    b = tomo.bin_volume(ramp, 2)
    assert isinstance(b, da.Array)
    assert b.shape == (6, 5, 8)
    expected = ramp.reshape(6, 2, 5, 2, 8, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(b.compute(), expected, rtol=1e-6)
    # odd sizes: trailing voxels dropped; mean of ramp over a bin is the ramp at the bin centre
    b4 = np.asarray(tomo.bin_volume(ramp, 4)[1])
    assert b4.shape == (2, 4)
    assert b4[0, 0] == pytest.approx(100 * 5.5 + 10 * 1.5 + 1.5)
    assert tomo.bin_volume(ramp, 1) is ramp
    with pytest.raises(ValueError):
        tomo.bin_volume(ramp, 16)


def test_bin_volume_of_dask_input(ramp):
    b = tomo.bin_volume(da.from_array(ramp, chunks=(3, 5, 5)), 2)
    np.testing.assert_allclose(b.compute(), ramp.reshape(6, 2, 5, 2, 8, 2).mean(axis=(1, 3, 5)), rtol=1e-6)


def test_pyramid_levels_and_world_alignment(ramp):
    levels = tomo.binned_pyramid(ramp, factors=(1, 2, 4, 8, 16))
    assert [f for f, _ in levels] == [1, 2, 4, 8]  # 16 would empty the Y axis (10 voxels)
    assert levels[0][1] is ramp
    # A binned voxel's world position (Å) equals the mean world position of the voxels it averages
    scale, translate = (5.0, 3.0, 3.0), (10.0, 0.0, -4.0)
    s4, t4 = tomo.binned_scale_translate(scale, translate, 4)
    assert s4 == (20.0, 12.0, 12.0)
    centre_unbinned = np.asarray(translate) + np.asarray(scale) * 1.5  # mean of indices 0..3
    np.testing.assert_allclose(t4, centre_unbinned)


def test_orthoslice_matches_binned_volume(ramp):
    b2 = np.asarray(tomo.bin_volume(ramp, 2))
    # XZ view at unbinned y = 7 with 2x binning = binned slice y // 2 = 3
    np.testing.assert_allclose(tomo.orthoslice(ramp, 7, axis=1, binning=2), b2[:, 3, :], rtol=1e-6)
    np.testing.assert_allclose(tomo.orthoslice(ramp, 4, axis=2, binning=2), b2[:, :, 2], rtol=1e-6)
    np.testing.assert_allclose(tomo.orthoslice(ramp, 3, axis=0, thickness=3), ramp[2:5].mean(0), rtol=1e-6)
    # a thick slab at 2x: 4 unbinned slices = 2 binned slices
    np.testing.assert_allclose(
        tomo.orthoslice(ramp, 7, axis=1, binning=2, thickness=4), b2[:, 3:5, :].mean(1), rtol=1e-6
    )


def test_percentile_contrast_on_subsample():
    rng = np.random.default_rng(1)
    img = rng.normal(0.0, 1.0, size=(1024, 1024)).astype(np.float32)
    lo, hi = tomo.percentile_contrast(img, percentiles=(1, 99), max_samples=20000)
    # N(0,1): 1st and 99th percentiles are -/+2.326
    assert lo == pytest.approx(-2.326, abs=0.12)
    assert hi == pytest.approx(2.326, abs=0.12)
    # flat and NaN-containing images stay well defined
    assert tomo.percentile_contrast(np.full((8, 8), 3.0)) == (2.5, 3.5)
    img[0, 0] = np.nan
    lo2, hi2 = tomo.percentile_contrast(img, percentiles=(5, 95))
    assert np.isfinite(lo2) and hi2 > lo2
    with pytest.raises(ValueError):
        tomo.percentile_contrast(img, percentiles=(90, 10))


def test_slab_contrast_uses_only_the_visible_slab():
    vol = np.zeros((20, 64, 64), np.float32)
    vol[:10] = 1000.0  # bright half, not visible at z = 15
    rng = np.random.default_rng(2)
    vol[15] = rng.uniform(0, 10, size=(64, 64))
    lo, hi = tomo.slab_contrast(vol, 15, thickness=1, percentiles=(0, 100))
    assert 0 <= lo < hi <= 10
    lo3, hi3 = tomo.slab_contrast(vol, 15, thickness=3, percentiles=(0, 100))
    assert hi3 <= 10 / 3 + 1e-5  # mean with two empty slices


def test_gaussian_lowpass_sigma_in_angstrom():
    img = np.zeros((101, 101), np.float32)
    img[50, 50] = 1.0
    out = tomo.gaussian_lowpass(img, sigma_A=12.0, pixel_size_A=4.0)  # 3 px
    prof = out[50]
    x = np.arange(101) - 50.0
    sigma_px = np.sqrt(np.sum(prof * x**2) / np.sum(prof))
    assert sigma_px == pytest.approx(3.0, rel=0.03)
    assert out.sum() == pytest.approx(1.0, rel=1e-4)
    # anisotropic pixels: same sigma in Å gives fewer pixels along the coarse axis
    out2 = tomo.gaussian_lowpass(img, sigma_A=12.0, pixel_size_A=(12.0, 4.0))
    # the Y neighbour is 12 Å away, the X neighbour 4 Å: exp(-1/2) vs exp(-1/18) of the peak
    assert out2[49, 50] / out2[50, 50] == pytest.approx(np.exp(-0.5), rel=0.05)
    assert out2[50, 49] / out2[50, 50] == pytest.approx(np.exp(-1 / 18), rel=0.05)
    np.testing.assert_array_equal(tomo.gaussian_lowpass(img, sigma_A=0, pixel_size_A=1.0), img)


def test_lowpass_slices_is_lazy_and_per_slice(ramp):
    rng = np.random.default_rng(3)
    vol = rng.normal(size=(6, 32, 32)).astype(np.float32)
    lp = tomo.lowpass_slices(vol, sigma_A=6.0, pixel_size_A=(2.0, 2.0))
    assert isinstance(lp, da.Array) and lp.chunks[0] == (1,) * 6
    np.testing.assert_allclose(np.asarray(lp[4]), tomo.gaussian_lowpass(vol[4], sigma_A=6.0, pixel_size_A=2.0), rtol=1e-5, atol=1e-6)
    assert np.asarray(lp[4]).std() < vol[4].std() / 2


def test_distance_in_angstrom_with_anisotropic_voxels():
    assert tomo.distance_angstrom((0, 0, 0), (0, 3, 4), voxel_size=2.0) == pytest.approx(10.0)
    assert tomo.distance_angstrom((1, 0, 0), (3, 0, 0), voxel_size=(10.0, 1.0, 1.0)) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        tomo.distance_angstrom((0, 0), (0, 0, 1), voxel_size=1.0)


def test_2d_input_gives_clear_message():
    with pytest.raises(ValueError, match="3D volume"):
        tomo.slab_mean(np.zeros((4, 4)), 0)


def test_lazy_views_never_copy_the_volume():
    """A 16 GiB (virtual) volume: binning, low-pass and slabs touch only what they show."""
    base = np.arange(256 * 256, dtype=np.float32).reshape(1, 256, 256)
    huge = np.broadcast_to(base, (1 << 16, 256, 256))  # 16 GiB if anything copied it
    b8 = tomo.bin_volume(huge, 8)
    assert b8.shape == (8192, 32, 32)
    np.testing.assert_allclose(np.asarray(b8[4000]), base[0].reshape(32, 8, 32, 8).mean(axis=(1, 3)), rtol=1e-6)
    lp = tomo.lowpass_slices(huge, sigma_A=4.0, pixel_size_A=(2.0, 2.0))
    assert np.asarray(lp[12345]).shape == (256, 256)
    np.testing.assert_allclose(tomo.slab_mean(huge, 30000, thickness=7), base[0])
    levels = tomo.binned_pyramid(huge)
    assert [lv.shape[0] for _, lv in levels] == [1 << 16, 1 << 15, 1 << 14, 1 << 13]


def test_orthoslice_preview_stride(ramp):
    # step 2: every other voxel in-plane (Z and X for XZ), the slab along Y intact
    np.testing.assert_allclose(tomo.orthoslice(ramp, 7, axis=1, step=2), ramp[::2, 7, ::2], rtol=1e-6)
    np.testing.assert_allclose(
        tomo.orthoslice(ramp, 3, axis=2, thickness=3, step=2), ramp[::2, ::2, 2:5].mean(2), rtol=1e-6
    )
    # binning 4 from a stride-2 preview: 2x2 bins of the strided samples. On a ramp the mean of the
    # samples sits at the pixel centre the docstring gives: (f - s) / 2 + k f = 1 + 4 k
    img = tomo.orthoslice(ramp, 5, axis=1, binning=4, step=2)  # slab rows 4..7 (bin 1)
    assert img.shape == (3, 4)
    assert img[1, 2] == pytest.approx(100 * (1 + 4) + 10 * 5.5 + (1 + 8), rel=1e-6)


def test_orthoslice_reads_in_blocks_and_can_be_stopped():
    from napari_cryomat.core._progress import Cancelled

    vol = np.zeros((64, 8, 8), np.float32)
    seen = []

    def stop_after_first(fraction):
        seen.append(fraction)
        raise Cancelled()

    with pytest.raises(Cancelled):
        tomo.orthoslice(vol, 3, axis=2, progress=stop_after_first)
    assert seen == [16 / 64]  # stopped after the first block of 16 Z sections


def test_release_pages_of_a_memmap(tmp_path):
    path = tmp_path / "v.raw"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(8, 64, 64))
    mm[:] = 3.0
    mm.flush()
    ro = np.memmap(path, dtype=np.float32, mode="r", shape=(8, 64, 64))
    flipped = ro[:, ::-1, :]
    assert float(tomo.slab_mean(flipped, 4, thickness=3, axis=2).mean()) == 3.0
    assert tomo.release_pages(flipped) is True
    assert float(flipped[5, 10, 10]) == 3.0  # still readable: pages fault back in
    assert tomo.release_pages(np.zeros((2, 2, 2))) is False


def test_compute_slices_evaluates_lazy_binned_volume_with_progress(ramp):
    from napari_cryomat.core._progress import Cancelled

    seen = []
    out = tomo.compute_slices(tomo.bin_volume(ramp, 2), progress=seen.append)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, ramp.reshape(6, 2, 5, 2, 8, 2).mean(axis=(1, 3, 5)), rtol=1e-6)
    assert seen == [pytest.approx((k + 1) / 6) for k in range(6)]

    def cancel(_):
        raise Cancelled()

    with pytest.raises(Cancelled):
        tomo.compute_slices(tomo.bin_volume(ramp, 2), progress=cancel)
