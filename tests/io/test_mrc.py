"""MRC reader: memory-mapping, calibration, axis order, modes, 3dmod orientation, bad input."""

import bz2
import gzip
import hashlib
import os

import mrcfile
import numpy as np
import pytest

from napari_cryomat.io import mrc as mrc_io
from napari_cryomat.io.mrc import (
    MRCError,
    display_to_file_zyx,
    file_to_display_zyx,
    read_mrc,
    strided_sample,
)


def _write(path, data, voxel_size=(1.0, 1.0, 1.0), **kw):
    with mrcfile.new(str(path), overwrite=True, **kw) as m:
        m.set_data(data)
        m.voxel_size = voxel_size
    return path


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest(), os.stat(path).st_mtime_ns


def test_read_is_memory_mapped_and_calibrated(tmp_path, rng):
    vol = rng.normal(size=(6, 10, 12)).astype(np.float32)
    path = _write(tmp_path / "tomo.rec", vol, voxel_size=(2.5, 2.0, 1.5))  # (x, y, z) in Å
    [(data, kwargs, kind)] = read_mrc(path)
    assert kind == "image"
    # a view on a numpy memmap: nothing was read into RAM
    assert isinstance(data, np.memmap) or isinstance(data.base, np.memmap)
    assert kwargs["scale"] == (1.5, 2.0, 2.5)  # (z, y, x)
    assert kwargs["units"] == ("angstrom",) * 3
    assert kwargs["metadata"]["mrc"]["file_shape"] == (6, 10, 12)
    lo, hi = kwargs["contrast_limits"]
    assert lo < np.median(vol) < hi


def test_displayed_like_3dmod_and_exported_coordinates_are_file_indices(tmp_path):
    vol = np.zeros((3, 8, 9), np.float32)
    vol[1, 2, 5] = 7.0  # a feature at file voxel (z=1, y=2, x=5): row 2 counted from the bottom
    path = _write(tmp_path / "v.mrc", vol)
    [(data, kwargs, _)] = read_mrc(path)
    meta = kwargs["metadata"]["mrc"]
    # 3dmod puts file row 0 at the bottom of the screen: napari's last row
    assert np.array_equal(np.asarray(data[:, -1, :]), vol[:, 0, :])
    (zd, yd, xd) = np.argwhere(np.asarray(data) == 7.0)[0]
    assert (zd, yd, xd) == (1, 8 - 1 - 2, 5)
    # a point picked on screen exports as the file's own voxel index, and back
    picked = np.array([[zd, yd, xd]], float)
    np.testing.assert_array_equal(display_to_file_zyx(picked, meta), [[1, 2, 5]])
    np.testing.assert_array_equal(file_to_display_zyx([[1, 2, 5]], meta), picked)
    # without MRC metadata, coordinates pass through unchanged
    np.testing.assert_array_equal(display_to_file_zyx(picked, None), picked)


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 1, 2), (2, 3, 1), (1, 3, 2)])
def test_axis_order_mapc_mapr_maps_is_honoured(tmp_path, order):
    # Physical volume V[z, y, x] with distinct sizes; store it in the file in `order`.
    nz, ny, nx = 4, 5, 6
    V = np.arange(nz * ny * nx, dtype=np.float32).reshape(nz, ny, nx)
    mapc, mapr, maps = order
    phys_axis = {3: 0, 2: 1, 1: 2}  # Z, Y, X -> axis of V
    stored = np.transpose(V, (phys_axis[maps], phys_axis[mapr], phys_axis[mapc])).copy()
    path = tmp_path / "ordered.map"
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(stored)
        m.header.mapc, m.header.mapr, m.header.maps = mapc, mapr, maps
    [(data, kwargs, _)] = read_mrc(path)
    assert np.array_equal(np.asarray(data)[:, ::-1, :], V)


@pytest.mark.parametrize(
    "dtype, mode",
    [(np.int8, 0), (np.int16, 1), (np.float32, 2), (np.uint16, 6), (np.float16, 12)],
)
def test_modes(tmp_path, dtype, mode):
    vol = (np.arange(2 * 4 * 5) % 100).reshape(2, 4, 5).astype(dtype)
    path = _write(tmp_path / f"m{mode}.mrc", vol)
    [(data, kwargs, _)] = read_mrc(path)
    assert kwargs["metadata"]["mrc"]["mode"] == mode
    assert data.dtype == dtype
    assert np.array_equal(np.asarray(data)[:, ::-1], vol)


def test_complex_mode_4_gives_amplitude_and_phase(tmp_path):
    amp = np.full((2, 4, 4), 3.0, np.float32)
    phase = np.linspace(-3, 3, 32, dtype=np.float32).reshape(2, 4, 4)
    path = _write(tmp_path / "c.mrc", (amp * np.exp(1j * phase)).astype(np.complex64))
    layers = read_mrc(path)
    assert [kw["name"] for _, kw, _ in layers] == ["c amplitude", "c phase"]
    assert type(layers[0][0]).__module__.startswith("dask")  # lazy: computed per section
    np.testing.assert_allclose(np.asarray(layers[0][0])[:, ::-1], amp, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(layers[1][0])[:, ::-1], phase, atol=1e-5)


def test_fei_extended_header_is_skipped(tmp_path, rng):
    vol = rng.normal(size=(3, 6, 7)).astype(np.float32)
    path = tmp_path / "fei.mrc"
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(vol)
        m.set_extended_header(np.frombuffer(rng.bytes(768 * 3), dtype=np.uint8).copy())
        m.header.exttyp = b"FEI1"
    [(data, kwargs, _)] = read_mrc(path)
    assert kwargs["metadata"]["mrc"]["extended_header_bytes"] == 768 * 3
    assert np.array_equal(np.asarray(data)[:, ::-1], vol)


@pytest.mark.parametrize("compression, opener", [("gzip", gzip.open), ("bzip2", bz2.open)])
def test_compressed_files(tmp_path, rng, compression, opener):
    vol = rng.normal(size=(3, 6, 7)).astype(np.float32)
    suffix = ".gz" if compression == "gzip" else ".bz2"
    path = tmp_path / f"tomo.rec{suffix}"
    with mrcfile.new(str(path), overwrite=True, compression=compression) as m:
        m.set_data(vol)
        m.voxel_size = 4.0
    [(data, kwargs, _)] = read_mrc(path)
    assert kwargs["name"] == "tomo"
    assert kwargs["scale"] == (4.0, 4.0, 4.0)
    assert np.array_equal(np.asarray(data)[:, ::-1], vol)


def test_contrast_sample_is_bounded():
    big = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(2000, 4000, 4000),
                                          strides=(0, 0, 0))
    assert strided_sample(big).size <= 1_100_000


def test_single_image_2d(tmp_path, rng):
    img = rng.normal(size=(16, 20)).astype(np.float32)
    path = _write(tmp_path / "one.mrc", img, voxel_size=0.8)
    [(data, kwargs, _)] = read_mrc(path)
    assert data.shape == (16, 20)
    assert kwargs["scale"] == (0.8, 0.8)


# ---------------------------------------------------------------------------- bad input
def _good_file(tmp_path, rng):
    return _write(tmp_path / "good.mrc", rng.normal(size=(4, 16, 16)).astype(np.float32))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mrc"
    path.write_bytes(b"")
    with pytest.raises(MRCError, match="empty.mrc.*empty"):
        read_mrc(path)


def test_truncated_file(tmp_path, rng):
    path = _good_file(tmp_path, rng)
    raw = path.read_bytes()
    bad = tmp_path / "trunc.mrc"
    bad.write_bytes(raw[: 1024 + 100])
    with pytest.raises(MRCError, match="trunc.mrc"):
        read_mrc(bad)
    short = tmp_path / "short.mrc"
    short.write_bytes(raw[:500])
    with pytest.raises(MRCError, match="short.mrc.*truncated"):
        read_mrc(short)


def test_unknown_mode(tmp_path, rng):
    path = _good_file(tmp_path, rng)
    raw = bytearray(path.read_bytes())
    raw[12:16] = np.int32(9).tobytes()  # mode word
    bad = tmp_path / "mode9.mrc"
    bad.write_bytes(bytes(raw))
    with pytest.raises(MRCError, match="mode9.mrc.*mode 9"):
        read_mrc(bad)


def test_corrupt_header(tmp_path):
    bad = tmp_path / "garbage.mrc"
    bad.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(MRCError, match="garbage.mrc"):
        read_mrc(bad)


def test_napari_reader_notifies_and_never_writes(tmp_path, rng, monkeypatch):
    path = _good_file(tmp_path, rng)
    raw = bytearray(path.read_bytes())
    raw[12:16] = np.int32(9).tobytes()
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(bytes(raw))
    before = _digest(bad)
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    reader = mrc_io.napari_get_reader(str(bad))
    assert reader is not None
    assert reader(str(bad)) == [(None,)]  # napari's "nothing to add" sentinel
    assert shown and "bad.mrc" in shown[0] and "mode 9" in shown[0]
    assert _digest(bad) == before


def test_reader_declines_other_files():
    assert mrc_io.napari_get_reader("image.png") is None
    assert mrc_io.napari_get_reader("stack.st.gz") is not None


# ---------------------------------------------------------------------------- robustness (issue #11)
def _patched(tmp_path, name, src, offset, fmt, value):
    import struct

    raw = bytearray(src.read_bytes())
    raw[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    out = tmp_path / name
    out.write_bytes(bytes(raw))
    return out


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_special_files_refused_at_once(tmp_path, kind):
    path = tmp_path / f"{kind}.mrc"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block forever
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(MRCError, match=f"{kind}.mrc: is a"):
        read_mrc(path)


def test_garbage_nsymbt_refused_before_allocating(tmp_path, rng):
    bad = _patched(tmp_path, "ext.mrc", _good_file(tmp_path, rng), 92, "<i", 2**31 - 1)
    with pytest.raises(MRCError, match="ext.mrc.*nsymbt=2147483647.*runs past the end"):
        read_mrc(bad)


@pytest.mark.parametrize("how", ["larger", "smaller"])
def test_header_not_matching_file_size_refused_with_mrcfile_words(tmp_path, rng, how):
    good = _good_file(tmp_path, rng)  # 16 x 16 x 4 float32
    nx = 15 if how == "larger" else 17
    bad = _patched(tmp_path, f"{how}.mrc", good, 0, "<i", nx)
    words = "MRC file is .* bytes larger than expected" if how == "larger" else "Expected .* bytes in data block"
    with pytest.raises(MRCError, match=f"{how}.mrc: .*mrcfile: \"{words}"):
        read_mrc(bad)
    padded = tmp_path / "padded.mrc"
    padded.write_bytes(good.read_bytes() + b"\0" * 10)
    with pytest.raises(MRCError, match="padded.mrc.*10 bytes larger than expected"):
        read_mrc(padded)


@pytest.mark.parametrize("mode, words", [(3, "mode 3 \\(complex numbers stored as two 16-bit integers\\)"),
                                         (101, "mode 101 \\(4-bit packed integers\\)")])
def test_unsupported_modes_named(tmp_path, rng, mode, words):
    bad = _patched(tmp_path, f"m{mode}.mrc", _good_file(tmp_path, rng), 12, "<i", mode)
    with pytest.raises(MRCError, match=f"m{mode}.mrc: MRC {words} is not supported"):
        read_mrc(bad)


def test_volume_stack_opens_as_4d(tmp_path):
    vols = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    path = _write(tmp_path / "vstack.mrc", vols, voxel_size=(1.0, 2.0, 3.0))
    with mrcfile.open(str(path)) as m:
        assert 401 <= int(m.header.ispg) <= 630
    [(data, kwargs, _)] = read_mrc(path)
    assert data.shape == (2, 3, 4, 5)
    assert np.array_equal(np.asarray(data)[..., ::-1, :], vols)
    assert kwargs["scale"] == (1.0, 3.0, 2.0, 1.0)
    assert kwargs["units"] == ("pixel", "angstrom", "angstrom", "angstrom")
    assert kwargs["metadata"]["mrc"]["volume_stack"]
    bad = _patched(tmp_path, "vs_bad.mrc", path, 36, "<i", 4)
    with pytest.raises(MRCError, match="vs_bad.mrc: volume stack .* nz=6 .* mz=4"):
        read_mrc(bad)


def test_sliders_say_what_they_move_through(tmp_path, rng):
    """napari labels an unlabelled axis "-3": a tomogram's sections are z (3dmod's Z), an IMOD tilt series'
    views "tilt", a stack of separate images (space group 0: movie frames, particles) "image"."""
    vol = rng.random((4, 5, 6)).astype(np.float32)
    volume = _write(tmp_path / "tomo.rec", vol)
    with mrcfile.new(str(tmp_path / "frames.mrcs"), overwrite=True) as m:
        m.set_data(vol)
        m.set_image_stack()
    with mrcfile.new(str(tmp_path / "old_imod.rec"), overwrite=True) as m:  # older IMOD: space group 0
        m.set_data(vol)
        m.set_image_stack()
    cases = {volume: ("z", "y", "x"), tmp_path / "frames.mrcs": ("image", "y", "x"),
             tmp_path / "old_imod.rec": ("z", "y", "x"),
             _write(tmp_path / "series.st", vol): ("tilt", "y", "x"),
             _write(tmp_path / "series.ali", vol): ("tilt", "y", "x"),
             _write(tmp_path / "one.mrc", vol[0]): ("y", "x"),
             _write(tmp_path / "vstack.mrc", rng.random((2, 3, 4, 5)).astype(np.float32)): ("volume", "z", "y", "x")}
    for path, labels in cases.items():
        [(_, kwargs, _)] = read_mrc(path)
        assert kwargs["axis_labels"] == labels, path.name


@pytest.mark.parametrize("value", [0.0, float("nan"), float("inf"), 1e30])
def test_unusable_cell_size_opens_in_pixels_with_a_warning(tmp_path, rng, value, monkeypatch):
    bad = _patched(tmp_path, "cell.mrc", _write(tmp_path / "c.mrc", rng.normal(size=(3, 8, 9)).astype(np.float32),
                                                 voxel_size=2.0), 40, "<f", value)
    with pytest.warns(mrc_io.MRCWarning, match="cell.mrc: no usable voxel size"):
        [(data, kwargs, _)] = read_mrc(bad)
    assert kwargs["scale"] == (1.0, 1.0, 1.0)
    assert kwargs["units"] == ("pixel", "pixel", "pixel")
    # through napari's entry point the warning is a notification, and the layer opens
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_warning", shown.append)
    layers = mrc_io.napari_get_reader(str(bad))(str(bad))
    assert layers[0][0] is not None and shown and "cell.mrc" in shown[0]
    from napari.layers import Layer

    Layer.create(*layers[0][:2], layers[0][2])  # napari accepts the calibration


def test_only_z_uncalibrated_keeps_angstrom_in_plane(tmp_path, rng):
    src = _write(tmp_path / "c.mrc", rng.normal(size=(3, 8, 9)).astype(np.float32), voxel_size=2.0)
    bad = _patched(tmp_path, "z0.mrc", src, 48, "<f", 0.0)
    with pytest.warns(mrc_io.MRCWarning, match="axis Z"):
        [(_, kwargs, _)] = read_mrc(bad)
    assert kwargs["scale"] == (1.0, 2.0, 2.0)
    assert kwargs["units"] == ("pixel", "angstrom", "angstrom")


def test_compressed_bomb_is_streamed_not_held_in_memory(tmp_path, monkeypatch):
    """A small .mrc.gz expanding beyond the in-memory limit goes to an unlinked temporary file and is
    memory-mapped from there; a header promising more than the disk can take is refused at once;
    one promising more than the stream holds is refused as truncated."""
    monkeypatch.setenv("CRYOMAT_MRC_MAX_INMEMORY", str(1 << 20))
    vol = np.zeros((8, 256, 256), np.float32)  # 2 MiB of zeros: a few KB compressed
    vol[3, 10, 20] = 5.0
    path = tmp_path / "bomb.rec.gz"
    with mrcfile.new(str(path), overwrite=True, compression="gzip") as m:
        m.set_data(vol)
        m.voxel_size = 1.0
    assert path.stat().st_size < 100_000
    [(data, _, _)] = read_mrc(path)
    assert isinstance(data, np.memmap) or isinstance(getattr(data, "base", None), np.memmap)
    assert np.array_equal(np.asarray(data)[:, ::-1], vol)
    assert not list(tmp_path.glob("cryomat-mrc-*"))  # the temporary file has no name

    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8:12] = np.int32(1 << 24).tobytes()  # nz: 16 M sections = 4 TiB
    huge = tmp_path / "huge.mrc.gz"
    huge.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MRCError, match="huge.mrc.gz: a .* KB compressed file that expands to"):
        read_mrc(huge)
    raw[8:12] = np.int32(64).tobytes()  # 16 MiB promised, 2 MiB there
    short = tmp_path / "short.mrc.gz"
    short.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MRCError, match="short.mrc.gz: the file is truncated .* only .* bytes decompress"):
        read_mrc(short)


def test_corrupt_compressed_stream_refused(tmp_path, rng):
    vol = rng.normal(size=(3, 16, 16)).astype(np.float32)
    path = tmp_path / "c.mrc.gz"
    with mrcfile.new(str(path), overwrite=True, compression="gzip") as m:
        m.set_data(vol)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "flipped.mrc.gz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(MRCError, match="flipped.mrc.gz"):
        read_mrc(bad)


def test_unexpected_failures_still_name_the_file(tmp_path, rng, monkeypatch):
    path = _good_file(tmp_path, rng)

    def boom(*a, **k):
        raise RuntimeError("something deep inside")

    monkeypatch.setattr(mrc_io, "_read_row_sample", boom)
    with pytest.raises(MRCError, match="good.mrc: could not be read .*something deep inside"):
        read_mrc(path)
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    assert mrc_io.napari_get_reader(str(path))(str(path)) == [(None,)]
    assert "good.mrc" in shown[0]
