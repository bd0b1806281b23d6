"""Big 2D images, and stacks of big frames (movies, tilt series, a (1, Y, X) file), open as overview
pyramids: level 0 is the file's own pixels (memory-mapped, never read at open), each lower level the
area means of its bins, frame by frame, computed lazily; volumes and small images stay one array;
saving a multiscale layer writes level 0; the overview's contrast limits come from a sample that agrees
with the whole level."""

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_cryomat.io._pyramid import (
    OVERVIEW_MIN_SIDE,
    full_resolution,
    overview_contrast_limits,
    overview_factors,
    overview_pyramid,
)
from napari_cryomat.io.mrc import napari_read_mrc, read_mrc
from napari_cryomat.io.tiff import napari_read_tiff, read_tiff


def _write_mrc(path, data, voxel=0.85, *, image_stack=False):
    """An MRC of ``data``; ``image_stack``: space group 0 (a movie's frames, as cameras write them),
    else mrcfile's default for 3D data, space group 1 (a volume)."""
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(data)
        if image_stack:
            m.set_image_stack()
        m.voxel_size = voxel
    return path


def _bin_means_by_loops(image, f, rows, cols):
    """The mean of bin (r, c) of factor f, summed pixel by pixel (an independent reference)."""
    out = []
    for r, c in zip(rows, cols):
        block = image[r * f:(r + 1) * f, c * f:(c + 1) * f].astype(np.float64)
        out.append(block.sum() / block.size)
    return np.array(out)


class CountingArray:
    """A 2D array that counts the pixels read through it (what a memory map would fault in)."""

    def __init__(self, array):
        self._array = array
        self.shape, self.dtype, self.ndim, self.size = array.shape, array.dtype, array.ndim, array.size
        self.pixels_read = 0

    def __getitem__(self, key):
        out = np.asarray(self._array[key])
        self.pixels_read += out.size
        return out


@pytest.mark.parametrize("seed", range(4))
def test_mrc_levels_are_area_means_and_level0_is_the_file(tmp_path, seed):
    rng = np.random.default_rng(1000 + seed)
    ny, nx = int(rng.integers(OVERVIEW_MIN_SIDE - 300, 3100)), int(rng.integers(1500, 3100))
    if max(ny, nx) < OVERVIEW_MIN_SIDE:
        ny = OVERVIEW_MIN_SIDE + int(rng.integers(0, 50))
    dtype = [np.uint16, np.float32, np.int16, np.int8][seed]
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        image = rng.integers(max(info.min, -500), min(info.max, 9000), size=(ny, nx)).astype(dtype)
    else:
        image = rng.gamma(2.0, 50.0, size=(ny, nx)).astype(dtype)
    path = _write_mrc(tmp_path / f"m{seed}.mrc", image)

    [(levels, kwargs, kind)] = napari_read_mrc(str(path))
    assert kind == "image" and kwargs["multiscale"] is True
    level0 = levels[0]
    assert isinstance(level0, np.memmap) or isinstance(level0.base, np.memmap)  # the map, no copy
    shown = mrcfile.read(str(path))[::-1]  # 3dmod: row 0 of the file at the bottom
    np.testing.assert_array_equal(np.asarray(level0), shown)

    factors = overview_factors((ny, nx))
    assert len(levels) == 1 + len(factors) and factors[:3] == [2, 3, 4]
    for f, level in zip(factors, levels[1:]):
        assert level.shape == (-(-ny // f), -(-nx // f)) and level.dtype == np.float32
        # random bins, the last (partial) row and column of bins included
        rows = np.append(rng.integers(0, level.shape[0], 20), level.shape[0] - 1)
        cols = np.append(rng.integers(0, level.shape[1], 20), level.shape[1] - 1)
        got = np.asarray(level)[rows, cols]
        np.testing.assert_allclose(got, _bin_means_by_loops(shown, f, rows, cols), rtol=2e-6, atol=1e-4)
    assert kwargs["scale"] == pytest.approx((0.85, 0.85), rel=1e-6)  # level 0's scale is the layer's


def test_levels_read_nothing_until_computed_and_then_only_their_region():
    rng = np.random.default_rng(7)
    source = CountingArray(rng.normal(size=(3000, 2500)).astype(np.float32))
    levels = overview_pyramid(source)
    assert source.pixels_read == 0  # building the pyramid reads no pixel
    level4 = levels[overview_factors(source.shape).index(4) + 1]
    tile = np.asarray(level4[:64, :64])  # one screenful of a zoomed overview
    assert tile.shape == (64, 64)
    # one chunk (at most 1536 x 1536 pixels) read, not the whole image
    assert 0 < source.pixels_read <= 1536 * 1536 < source.shape[0] * source.shape[1]


@pytest.mark.parametrize("shape", [(2047, 2047), (1024, 1500), (3, 2048, 2048), (4, 1000, 2047)])
def test_small_images_and_volumes_stay_one_array(tmp_path, shape):
    """(3, 2048, 2048) in space group 1 is a volume: the tomogram browser takes it as one array."""
    data = np.zeros(shape, np.int8)
    data[..., ::7, ::5] = 1
    [(out, kwargs, _)] = napari_read_mrc(str(_write_mrc(tmp_path / "s.mrc", data)))
    assert "multiscale" not in kwargs and isinstance(out, np.ndarray) and out.shape == shape


@pytest.mark.parametrize("seed", range(3))
def test_stack_levels_are_per_frame_area_means(tmp_path, seed):
    """A movie (space group 0), a tilt series (.st) and a single-section volume (1, Y, X): each level is
    (frames, Y/f, X/f), each frame the bin means of that frame alone; level 0 is the memory map."""
    rng = np.random.default_rng(2000 + seed)
    n = [3, 5, 1][seed]
    ny, nx = int(rng.integers(1200, 2600)), int(rng.integers(OVERVIEW_MIN_SIDE, 2700))
    dtype = [np.float32, np.int16, np.uint16][seed]
    frames = (rng.gamma(2.0, 40.0, size=(n, ny, nx)) * (1 + np.arange(n))[:, None, None]).astype(dtype)
    name = ["movie.mrc", "tilts.st", "section.mrc"][seed]
    path = _write_mrc(tmp_path / name, frames, 1.5, image_stack=seed == 0)

    [(levels, kwargs, kind)] = napari_read_mrc(str(path))
    assert kind == "image" and kwargs["multiscale"] is True
    assert kwargs["axis_labels"][0] == ["image", "tilt", "z"][seed]
    assert isinstance(levels[0], np.memmap) or isinstance(levels[0].base, np.memmap)
    shown = mrcfile.read(str(path)).reshape(n, ny, nx)[:, ::-1]
    np.testing.assert_array_equal(np.asarray(levels[0]), shown)
    factors = overview_factors((n, ny, nx))
    assert factors == overview_factors((ny, nx)) and len(levels) == 1 + len(factors)
    for f, level in zip(factors, levels[1:]):
        assert level.shape == (n, -(-ny // f), -(-nx // f)) and level.dtype == np.float32
        k = int(rng.integers(0, n))  # one frame, as napari slices it when the frame slider moves
        frame = np.asarray(level[k])
        rows = np.append(rng.integers(0, frame.shape[0], 15), frame.shape[0] - 1)
        cols = np.append(rng.integers(0, frame.shape[1], 15), frame.shape[1] - 1)
        np.testing.assert_allclose(frame[rows, cols], _bin_means_by_loops(shown[k], f, rows, cols),
                                   rtol=2e-6, atol=1e-4)
    # the limits are the overview's, from frames across the stack
    lo, hi = kwargs["contrast_limits"]
    f = factors[min(range(len(factors)), key=lambda i: abs(max(ny, nx) / factors[i] - 800))]
    whole = np.asarray(levels[1 + factors.index(f)])
    ref_lo, ref_hi = np.percentile(whole, [0.5, 99.5])
    assert abs(lo - ref_lo) < 0.15 * (ref_hi - ref_lo) and abs(hi - ref_hi) < 0.15 * (ref_hi - ref_lo)


def test_a_frame_of_a_stack_level_reads_only_that_frame():
    rng = np.random.default_rng(8)
    source = CountingArray(rng.normal(size=(4, 2100, 1900)).astype(np.float32))
    levels = overview_pyramid(source)
    assert source.pixels_read == 0
    frame = np.asarray(levels[3][2])  # the frame on screen, at the 4x level
    assert frame.shape == (-(-2100 // 4), -(-1900 // 4))
    assert source.pixels_read == 2100 * 1900  # that frame's pixels, once; no other frame
    np.testing.assert_allclose(frame[:5, :5], source._array[2, :20, :20].reshape(5, 4, 5, 4).mean(axis=(1, 3)),
                               rtol=1e-5, atol=1e-6)


def test_a_frame_shown_again_is_not_read_again():
    """napari slices a frame again when the user steps back to it (or toggles the layer): the level's
    pixels it computed are kept (up to RECENT_BYTES per image), the same values, no pixel read."""
    from napari.components import ViewerModel

    rng = np.random.default_rng(2612)  # a fixed draw: a failure can be replayed
    n, ny, nx = int(rng.integers(3, 7)), int(rng.integers(2048, 2600)), int(rng.integers(2048, 2600))
    source = CountingArray(rng.normal(size=(n, ny, nx)).astype(np.float32))
    viewer = ViewerModel()
    layer = viewer.add_image(overview_pyramid(source), multiscale=True)
    first, other = (int(k) for k in rng.choice(n, 2, replace=False))
    viewer.dims.set_current_step(0, first)
    shown = np.array(layer._slice.image.raw)
    assert shown.shape == layer.data[layer.data_level].shape[-2:]
    viewer.dims.set_current_step(0, other)
    read = source.pixels_read
    viewer.dims.set_current_step(0, first)  # back to the first frame
    assert source.pixels_read == read
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw), shown)
    f = overview_factors(source.shape)[layer.data_level - 1]
    np.testing.assert_allclose(shown[:3, :3], source._array[first, :3 * f, :3 * f].reshape(3, f, 3, f).mean(axis=(1, 3)),
                               rtol=1e-5, atol=1e-5)


def test_kept_pieces_stay_under_their_budget_and_the_latest_are_kept():
    from napari_cryomat.io._pyramid import _Recent

    rng = np.random.default_rng(2612)  # a fixed draw: a failure can be replayed
    limit = int(rng.integers(1000, 5000))
    recent = _Recent(limit)
    for i in range(200):
        piece = np.zeros(int(rng.integers(1, limit // 2)), np.uint8)
        recent.put(str(i), piece)
        assert recent.nbytes == sum(p.nbytes for p in recent.pieces.values()) <= limit
        assert recent.get(str(i)) is piece  # the newest is always kept
    recent.put("too big", np.zeros(limit + 1, np.uint8))
    assert recent.get("too big") is None


def test_showing_an_overview_does_not_import_distributed(tmp_path):
    """dask's default scheduler looks for a distributed client first, importing ``distributed`` (0.7 s on
    the first overview of a session); the levels are computed on this process's threads."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from napari_cryomat.io._pyramid import overview_pyramid\n"
        "levels = overview_pyramid(np.ones((2, 2048, 2100), np.float32))\n"
        "assert np.asarray(levels[-1][1]).mean() == 1.0\n"
        "print('distributed' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_read_functions_give_scripts_and_batch_one_array(tmp_path):
    image = np.arange(2048 * 2050, dtype=np.float32).reshape(2048, 2050)
    [(out, kwargs, _)] = read_mrc(_write_mrc(tmp_path / "big.mrc", image))
    assert "multiscale" not in kwargs and isinstance(out, np.ndarray) and out.shape == image.shape
    tifffile.imwrite(tmp_path / "big.tif", image)
    [(out, kwargs, _)] = read_tiff(tmp_path / "big.tif")
    assert "multiscale" not in kwargs and out.shape == image.shape


def test_tiff_stacks_open_as_overview_and_z_stacks_as_one_array(tmp_path):
    """A multi-page TIFF (tifffile axis "I": images, as a camera's movie) gets per-frame levels; an ImageJ
    z-stack (axis "Z", a FIB-SEM volume) stays one array for the tomogram browser."""
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 60, size=(3, 2050, 1100)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "movie.tif", frames)
    [(levels, kwargs, _)] = napari_read_tiff(str(tmp_path / "movie.tif"))
    assert kwargs["multiscale"] is True and kwargs["axis_labels"][0] != "z"
    np.testing.assert_array_equal(np.asarray(levels[0]), frames)
    np.testing.assert_allclose(np.asarray(levels[1][2, :4, :4]),
                               frames[2, :8, :8].reshape(4, 2, 4, 2).mean(axis=(1, 3)), rtol=1e-6)
    tifffile.imwrite(tmp_path / "zstack.tif", frames, imagej=True, metadata={"axes": "ZYX"})
    [(out, kwargs, _)] = napari_read_tiff(str(tmp_path / "zstack.tif"))
    assert kwargs["axis_labels"][0] == "z" and "multiscale" not in kwargs and out.shape == frames.shape


def test_big_tiff_opens_as_overview(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 4000, size=(2100, 2300)).astype(np.uint16)
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, image)
    [(levels, kwargs, kind)] = napari_read_tiff(str(path))
    assert kind == "image" and kwargs["multiscale"] is True
    np.testing.assert_array_equal(np.asarray(levels[0]), image)
    np.testing.assert_allclose(np.asarray(levels[1])[:3, :3],
                               image[:6, :6].reshape(3, 2, 3, 2).mean(axis=(1, 3)), rtol=1e-6)


def test_saving_a_multiscale_layer_writes_full_resolution(tmp_path, make_napari_viewer):
    rng = np.random.default_rng(11)
    image = rng.normal(100, 10, size=(2048, 2100)).astype(np.float32)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(_write_mrc(tmp_path / "in.mrc", image)), plugin="napari-cryomat")
    assert layer.multiscale
    out = tmp_path / "out.mrc"
    layer.save(str(out), plugin="napari-cryomat")
    np.testing.assert_array_equal(mrcfile.read(str(out)), image)  # the file's own rows, all of them
    assert np.asarray(full_resolution(layer.data)).shape == image.shape


def test_overview_contrast_from_a_sample_matches_the_whole_level():
    """Particles darker than a noisy support: the sampled limits agree with the whole level's percentiles."""
    rng = np.random.default_rng(5)
    ny, nx = 2600, 2400
    yy, xx = np.mgrid[:ny, :nx]
    image = rng.poisson(40.0, size=(ny, nx)).astype(np.float32)
    for cy, cx in rng.uniform(100, 2300, size=(60, 2)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 50 ** 2] *= 0.8
    lo, hi = overview_contrast_limits(image)
    longest = max(ny, nx)
    f = min(overview_factors((ny, nx)), key=lambda k: abs(longest / k - 800))
    level = np.asarray(overview_pyramid(image)[overview_factors((ny, nx)).index(f) + 1])
    whole_lo, whole_hi = np.percentile(level, [0.5, 99.5])
    span = whole_hi - whole_lo
    assert abs(lo - whole_lo) < 0.1 * span and abs(hi - whole_hi) < 0.1 * span
    # and they are the overview's, far narrower than the pixels' own spread
    pixel_lo, pixel_hi = np.percentile(image, [0.5, 99.5])
    assert hi - lo < 0.5 * (pixel_hi - pixel_lo)


def test_vendor_images_and_series_open_as_overview_but_spectrum_images_do_not(tmp_path):
    """The rosettasciio reader (DM, Velox EMD, TIA, TVIPS, HyperSpy files): a 4k image and a series of 4k
    frames get overview levels; a spectrum image stays one array for the Spectrum imaging dock, even one
    whose scan is 2048 pixels long (its first axis is energy, not frames)."""
    pytest.importorskip("rsciio")
    pytest.importorskip("h5py")
    from rsciio.hspy import file_writer

    from napari_cryomat.io.spectral import napari_read_spectral

    def signal(data, axes, title, signal_type=""):
        return {"data": data, "axes": axes, "metadata": {"General": {"title": title},
                                                         "Signal": {"signal_type": signal_type}},
                "original_metadata": {}, "attributes": {"_lazy": False}, "tmp_parameters": {},
                "learning_results": {}, "models": {}, "package_info": {"name": "napari-cryomat", "version": "test"}}

    def axis(name, units, size, navigate, i, scale=0.1):
        return {"name": name, "units": units, "size": size, "offset": 0.0, "scale": scale, "navigate": navigate,
                "index_in_array": i}

    rng = np.random.default_rng(9)
    image = rng.gamma(3.0, 30.0, size=(2100, 2050)).astype(np.float32)
    file_writer(str(tmp_path / "haadf.hspy"), signal(image, [axis("y", "nm", 2100, False, 0),
                                                             axis("x", "nm", 2050, False, 1)], "HAADF"),
                show_progressbar=False)
    [(levels, kwargs, _)] = napari_read_spectral(str(tmp_path / "haadf.hspy"))
    assert kwargs["multiscale"] is True
    np.testing.assert_array_equal(np.asarray(levels[0]), image)
    np.testing.assert_allclose(np.asarray(levels[2][:2, :2]), image[:6, :6].reshape(2, 3, 2, 3).mean(axis=(1, 3)),
                               rtol=1e-5)

    series = rng.poisson(20.0, size=(3, 2048, 1500)).astype(np.float32)
    file_writer(str(tmp_path / "series.hspy"),
                signal(series, [axis("Time", "s", 3, True, 0, 1.0), axis("y", "nm", 2048, False, 1),
                                axis("x", "nm", 1500, False, 2)], "frames"), show_progressbar=False)
    [(levels, kwargs, _)] = napari_read_spectral(str(tmp_path / "series.hspy"))
    assert kwargs["multiscale"] is True and levels[1].shape == (3, 1024, 750)
    np.testing.assert_allclose(np.asarray(levels[1][2, :2, :2]),
                               series[2, :4, :4].reshape(2, 2, 2, 2).mean(axis=(1, 3)), rtol=1e-6)

    si = rng.poisson(5.0, size=(2048, 3, 16)).astype(np.float32)
    file_writer(str(tmp_path / "si.hspy"),
                signal(si, [axis("y", "nm", 2048, True, 0), axis("x", "nm", 3, True, 1),
                            axis("Energy", "keV", 16, False, 2, 0.02)], "SI", "EDS_TEM"), show_progressbar=False)
    [(data, kwargs, _)] = napari_read_spectral(str(tmp_path / "si.hspy"))
    assert "spectrum_image" in kwargs["metadata"] and "multiscale" not in kwargs and data.shape == (16, 2048, 3)


@pytest.mark.parametrize("frames", [1, 3])
def test_compressed_tiff_pages_are_decoded_once_for_the_contrast(tmp_path, monkeypatch, frames):
    """A compressed TIFF is read page by page (dask): the contrast sample's strips are read in one pass, so
    each page is decoded once; strip by strip, a 2048² zlib image was decoded 64 times (5.4 s to open)."""
    from napari_cryomat.io import tiff
    from napari_cryomat.io._pyramid import with_overview

    decoded = []
    read = tiff._PageReader.read
    monkeypatch.setattr(tiff._PageReader, "read", lambda self, i: decoded.append(i) or read(self, i))
    rng = np.random.default_rng(frames)
    data = rng.integers(0, 50, size=(frames, 2100, 2048)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "z.tif", data[0] if frames == 1 else data, compression="zlib",
                     photometric="minisblack")
    layers = read_tiff(tmp_path / "z.tif")
    before = len(decoded)
    [(levels, kwargs, _)] = with_overview(layers)
    assert kwargs["multiscale"] is True
    assert len(decoded) - before <= frames
    lo, hi = kwargs["contrast_limits"]
    whole = np.asarray(levels[-1])  # the overview's limits: within the coarsest level's range
    assert whole.min() - 1 <= lo < hi <= whole.max() + 1
