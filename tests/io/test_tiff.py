"""TIFF reader: vendor calibration, RGB, series, laziness, and damaged or odd files."""

import os
import threading

import numpy as np
import pytest
import tifffile

from napari_cryomat.io import tiff as tiff_io
from napari_cryomat.io.tiff import TIFFError, napari_read_tiff, read_tiff


@pytest.fixture
def notes(monkeypatch):
    import napari.utils.notifications as notifications

    seen = []
    monkeypatch.setattr(notifications, "show_error", lambda m, *a, **k: seen.append(("error", str(m))))
    monkeypatch.setattr(notifications, "show_warning", lambda m, *a, **k: seen.append(("warning", str(m))))
    return seen


def _one(path):
    [(data, kwargs, kind)] = read_tiff(path)
    return data, kwargs, kind


def test_fei_pixel_size_in_angstrom(tmp_path):
    a = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80)
    fei = "[User]\nDate=01/01/2020\n[Scan]\nPixelWidth=2.5e-09\nPixelHeight=2.5e-09\n"
    path = tmp_path / "helios.tif"
    tifffile.imwrite(path, a, extratags=[(34682, "s", 0, fei, True)])
    data, kwargs, kind = _one(path)
    assert kind == "image" and isinstance(data, np.memmap)  # uncompressed: mapped, not read
    assert kwargs["scale"] == pytest.approx((25.0, 25.0))
    assert kwargs["units"] == ("angstrom", "angstrom")
    assert kwargs["metadata"]["tiff"]["calibration_source"] == "FEI"


def test_fei_without_scan_uses_field_width(tmp_path):
    fei = "[IRBeam]\nHFW=0.0002\nVFW=0.0001\n[Image]\nResolutionX=100\nResolutionY=50\n"
    path = tmp_path / "navcam.tif"
    tifffile.imwrite(path, np.zeros((50, 100), np.uint8), extratags=[(34682, "s", 0, fei, True)])
    _, kwargs, _ = _one(path)
    assert kwargs["scale"] == pytest.approx((2e-6 * 1e10, 2e-6 * 1e10))


def test_fei_data_bar_is_not_part_of_the_image(tmp_path):
    # a Helios SEM image saved with its data bar: 442 scanned rows (Image.ResolutionY) and 29 rows of text and
    # scale bar under them, as hyperspy's FEI-Helios-Ebeam-16bits.tif; segmented, the bar became 512 objects
    scan = np.random.default_rng(0).integers(100, 200, (442, 512)).astype(np.uint16)
    bar = np.zeros((29, 512), np.uint16)
    bar[5:20:2, 10:500] = 65535  # text and lines
    fei = ("[Scan]\nPixelWidth=3.3724e-06\nPixelHeight=3.3724e-06\n"
           "[Image]\nResolutionX=512\nResolutionY=442\n")
    path = tmp_path / "helios_bar.tif"
    tifffile.imwrite(path, np.vstack([scan, bar]), extratags=[(34682, "s", 0, fei, True)])
    data, kwargs, _ = _one(path)
    assert data.shape == (442, 512) and np.array_equal(np.asarray(data), scan)
    assert kwargs["metadata"]["tiff"]["databar_rows"] == 29
    assert kwargs["contrast_limits"][1] < 65535  # the bar's white text no longer sets the contrast
    # a scan as tall as the file (no bar), and a file whose ResolutionX differs from its width, keep every row
    for shape, res in (((442, 512), (512, 442)), ((471, 512), (1024, 884))):
        fei = f"[Image]\nResolutionX={res[0]}\nResolutionY={res[1]}\n"
        tifffile.imwrite(path, np.ones(shape, np.uint8), extratags=[(34682, "s", 0, fei, True)])
        data, kwargs, _ = _one(path)
        assert data.shape == shape and kwargs["metadata"]["tiff"]["databar_rows"] == 0


def test_dm_export_tags_with_offsets(tmp_path):
    path = tmp_path / "dm.tif"
    tags = [(65003, "s", 0, "nm", True), (65004, "s", 0, "nm", True), (65009, "d", 1, 0.25, True),
            (65010, "d", 1, 0.5, True), (65006, "d", 1, 3.0, True)]
    tifffile.imwrite(path, np.zeros((8, 10), np.float32), extratags=tags)
    _, kwargs, _ = _one(path)
    assert kwargs["scale"] == pytest.approx((5.0, 2.5))  # (y, x): DM's x is the columns
    assert kwargs["translate"] == pytest.approx((0.0, 30.0))


def test_imagej_stack_spacing_and_unit(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, np.zeros((4, 16, 20), np.float32), imagej=True, resolution=(1 / 0.2, 1 / 0.2),
                     metadata={"unit": "um", "spacing": 0.05, "axes": "ZYX"})
    data, kwargs, _ = _one(path)
    assert data.shape == (4, 16, 20)
    assert kwargs["scale"] == pytest.approx((500.0, 2000.0, 2000.0))
    assert kwargs["units"] == ("angstrom",) * 3


def test_ome_physical_sizes_and_time(tmp_path):
    path = tmp_path / "movie.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 16, 20), np.uint8), ome=True,
                     metadata={"axes": "TYX", "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 0.5,
                               "PhysicalSizeYUnit": "nm", "TimeIncrement": 20, "TimeIncrementUnit": "ms"})
    _, kwargs, _ = _one(path)
    assert kwargs["units"] == ("s", "angstrom", "angstrom")
    assert kwargs["scale"] == pytest.approx((0.02, 5.0, 5.0))


def test_uncalibrated_is_pixel_never_one_angstrom(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 8), np.uint16))
    _, kwargs, _ = _one(path)
    assert kwargs["units"] == ("pixel",) * 3 and kwargs["scale"] == (1.0, 1.0, 1.0)


def test_rgb_is_an_rgb_layer(tmp_path):
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 200
    path = tmp_path / "photo.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    data, kwargs, kind = _one(path)
    assert kwargs["rgb"] is True and data.shape == (10, 12, 3)
    assert len(kwargs["scale"]) == 2


def test_every_series_is_a_layer(tmp_path):
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as w:
        w.write(np.ones((8, 9), np.uint8))
        w.write(np.full((5, 6), 7, np.uint16))
    layers = read_tiff(path)
    assert [d.shape for d, _, _ in layers] == [(8, 9), (5, 6)]
    assert [k["name"] for _, k, _ in layers] == ["two [0]", "two [1]"]


def test_jpeg_compressed_opens_lazily(tmp_path):
    pytest.importorskip("imagecodecs")
    rng = np.random.default_rng(0)
    stack = (rng.random((3, 32, 32)) * 255).astype(np.uint8)
    path = tmp_path / "jpeg.tif"
    tifffile.imwrite(path, stack, compression="jpeg")
    data, _, _ = _one(path)
    assert "dask" in type(data).__module__
    np.testing.assert_allclose(np.asarray(data[1]).astype(float), tifffile.imread(path)[1], atol=0)


def test_missing_codec_names_imagecodecs(tmp_path, monkeypatch):
    path = tmp_path / "lzw.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), compression="lzw")

    class NoCodecs(dict):
        def __getitem__(self, key):
            raise KeyError(key)

    monkeypatch.setattr(tifffile.TIFF, "DECOMPRESSORS", NoCodecs())
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "imagecodecs" else real(n, *a))
    with pytest.raises(TIFFError, match=r"lzw.tif: .*LZW.*pip install imagecodecs"):
        read_tiff(path)


def test_truncated_stack_opens_complete_pages_and_says_so(tmp_path, notes):
    path = tmp_path / "cut.tif"
    stack = np.arange(6 * 32 * 32, dtype=np.uint16).reshape(6, 32, 32)
    tifffile.imwrite(path, stack)
    blob = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        end_of_page_3 = tif.pages[3].dataoffsets[0] + 100
    path.write_bytes(blob[:end_of_page_3])
    layers = napari_read_tiff(str(path))
    (data, kwargs, kind), = layers
    assert data.shape[0] < 6 and data.shape[1:] == (32, 32)
    np.testing.assert_array_equal(np.asarray(data), stack[: data.shape[0]])
    assert any(k == "warning" and "cut.tif" in m and "truncated" in m for k, m in notes)


def test_truncated_first_page_is_refused(tmp_path, notes):
    path = tmp_path / "tiny.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.uint16))
    blob = path.read_bytes()
    path.write_bytes(blob[:1000])
    assert napari_read_tiff(str(path)) == [(None,)]
    assert any(k == "error" and "tiny.tif" in m for k, m in notes)


def test_corrupt_compressed_page_shows_zeros_with_a_warning(tmp_path, notes):
    path = tmp_path / "zip.tif"
    stack = np.arange(6 * 64 * 64, dtype=np.uint16).reshape(6, 64, 64)
    tifffile.imwrite(path, stack, compression="zlib", photometric="minisblack")
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        off, n = tif.pages[3].dataoffsets[0], tif.pages[3].databytecounts[0]
    raw[off:off + n] = b"\xff" * n  # page 4's deflate stream destroyed, sizes intact
    path.write_bytes(bytes(raw))
    layers = napari_read_tiff(str(path))
    data = layers[0][0]
    np.testing.assert_array_equal(np.asarray(data[0]), stack[0])
    assert np.asarray(data[3]).max() == 0  # no exception inside napari's drawing
    assert any(k == "warning" and "zip.tif" in m and "page 4" in m for k, m in notes)


def test_not_a_tiff_and_empty(tmp_path, notes):
    png = tmp_path / "shot.tif"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(TIFFError, match="shot.tif: this is a PNG image, not a TIFF"):
        read_tiff(png)
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    assert napari_read_tiff(str(empty)) == [(None,)]
    assert "empty.tif" in notes[-1][1]


def test_fifo_is_refused_at_once(tmp_path, notes):
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    result = []
    t = threading.Thread(target=lambda: result.append(napari_read_tiff(str(fifo))), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "the reader blocked on a FIFO"
    assert result == [[(None,)]]
    assert "pipe.tif" in notes[-1][1] and "FIFO" in notes[-1][1]


def test_late_errors_are_caught_and_named(tmp_path, notes, monkeypatch):
    path = tmp_path / "fine.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))

    def boom(*a, **k):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("napari_cryomat.io.mrc.strided_contrast_limits", boom)
    assert napari_read_tiff(str(path)) == [(None,)]
    assert "fine.tif" in notes[-1][1] and "ZeroDivisionError" in notes[-1][1]


def test_get_reader_claims_tif_only():
    assert tiff_io.napari_get_reader("a.TIF") is napari_read_tiff
    assert tiff_io.napari_get_reader("a.png") is None
    assert tiff_io.napari_get_reader(["a.tif", "b.tif"]) is None


def test_page_bigger_than_memory_or_than_its_data_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((2048, 2048), np.uint8), compression="zlib")  # 4 MiB from a few kB
    monkeypatch.setattr("napari_cryomat.core._validate.memory_budget", lambda: 2 << 20)
    with pytest.raises(TIFFError, match=r"bomb.tif: one image of it \(2048 × 2048 pixels\) needs"):
        read_tiff(path)
    monkeypatch.undo()
    raw = tmp_path / "wide.tif"
    tifffile.imwrite(raw, np.zeros((16, 16), np.uint8))
    blob = bytearray(raw.read_bytes())
    with tifffile.TiffFile(raw) as tif:
        width_tag = tif.pages[0].tags["ImageWidth"]
        off = width_tag.valueoffset
    blob[off:off + 2] = (60000).to_bytes(2, "little")  # a garbage width: the page holds 256 bytes
    raw.write_bytes(bytes(blob))
    with pytest.raises(TIFFError, match="wide.tif: its header says an image has"):
        read_tiff(raw)


class _Page:
    def __init__(self, image):
        self.image, self.shape, self.dtype = image, image.shape, image.dtype

    def asarray(self):
        return self.image


class _ZeissTif:
    sem_metadata = {"ap_pixel_size": ("Pixel Size", 2.615, "µm")}


def test_zeiss_data_zone_is_not_part_of_the_image():
    # SmartSEM draws its data zone over the last rows of the scan: a black frame around white with text, as in
    # hyperspy's test_tiff_Zeiss_SEM_1k.tif (frame rows 691-766 of 768, columns 2-1022, image pixels outside it)
    rng = np.random.default_rng(1)
    scan = rng.integers(40, 200, (768, 1024)).astype(np.uint8)
    framed = scan.copy()
    framed[691:767, 2:1023] = 255
    framed[[691, 766], 2:1023] = 0
    framed[691:767, [2, 1022]] = 0
    framed[700:760:3, 20:400] = 0  # text
    assert tiff_io._zeiss_datazone_rows(_ZeissTif(), _Page(framed), "YX", 1) == 768 - 691
    # no frame: a scan alone, a black band along the bottom (no inside), borders of two different values
    assert tiff_io._zeiss_datazone_rows(_ZeissTif(), _Page(scan), "YX", 1) == 0
    band = scan.copy()
    band[700:] = 0
    assert tiff_io._zeiss_datazone_rows(_ZeissTif(), _Page(band), "YX", 1) == 0
    two = framed.copy()
    two[766, 2:1023] = 128
    assert tiff_io._zeiss_datazone_rows(_ZeissTif(), _Page(two), "YX", 1) == 0
    # only Zeiss SEM files, single images
    class Other:
        sem_metadata = None
    assert tiff_io._zeiss_datazone_rows(Other(), _Page(framed), "YX", 1) == 0
    assert tiff_io._zeiss_datazone_rows(_ZeissTif(), _Page(framed), "YX", 2) == 0
