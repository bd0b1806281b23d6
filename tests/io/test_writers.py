"""Writers: exact round trips of data, dtype and voxel size."""

import numpy as np
import pytest

from napari_cryomat.io.mrc import read_mrc
from napari_cryomat.io.tiff import read_tiff
from napari_cryomat.io.writers import write_image_mrc, write_labels_mrc, write_labels_tiff


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint16, np.int8, np.float16])
def test_image_mrc_round_trip(tmp_path, rng, dtype):
    data = (rng.normal(size=(5, 12, 9)) * 20).astype(dtype)
    path = str(tmp_path / "img.mrc")
    write_image_mrc(path, data, {"scale": (3.0, 1.25, 1.25), "units": ("angstrom",) * 3})
    [(back, kwargs, _)] = read_mrc(path)
    assert back.dtype == data.dtype
    assert np.array_equal(np.asarray(back), data)  # looks the same on screen again
    assert kwargs["scale"] == pytest.approx((3.0, 1.25, 1.25))


def test_image_from_mrc_written_back_in_original_row_order(tmp_path, rng):
    import mrcfile

    vol = rng.normal(size=(3, 7, 8)).astype(np.float32)
    src = tmp_path / "src.mrc"
    with mrcfile.new(str(src), overwrite=True) as m:
        m.set_data(vol)
        m.voxel_size = 2.0
    [(data, kwargs, _)] = read_mrc(src)
    out = str(tmp_path / "out.mrc")
    write_image_mrc(out, data, kwargs)
    with mrcfile.open(out) as m:
        assert np.array_equal(m.data, vol)  # IMOD sees the same volume as the source
        assert float(m.voxel_size.x) == pytest.approx(2.0)


def test_units_in_nm_are_converted(tmp_path, rng):
    data = rng.normal(size=(4, 4)).astype(np.float32)
    path = str(tmp_path / "nm.mrc")
    write_image_mrc(path, data, {"scale": (0.5, 0.5), "units": ("nm", "nm")})
    [(_, kwargs, _)] = read_mrc(path)
    assert kwargs["scale"] == pytest.approx((5.0, 5.0))


def test_labels_mrc_round_trip(tmp_path, rng):
    labels = rng.integers(0, 300, size=(4, 10, 11)).astype(np.int32)
    path = str(tmp_path / "labels.mrc")
    write_labels_mrc(path, labels, {"scale": (2.0, 2.0, 2.0)})
    [(back, kwargs, _)] = read_mrc(path)
    assert np.array_equal(np.asarray(back), labels)
    assert back.dtype == np.int16  # smallest MRC mode that holds 0..299 exactly
    assert kwargs["scale"] == (2.0, 2.0, 2.0)


def test_labels_too_large_for_mrc_are_refused(tmp_path):
    labels = np.array([[0, 2**25]], dtype=np.int64)
    with pytest.raises(ValueError, match="TIFF"):
        write_labels_mrc(str(tmp_path / "x.mrc"), labels, {})


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64, np.uint32])
def test_labels_tiff_round_trip(tmp_path, rng, dtype):
    labels = rng.integers(0, 120, size=(3, 9, 10)).astype(dtype)
    path = str(tmp_path / "labels.tif")
    write_labels_tiff(path, labels, {"scale": (4.0, 1.5, 1.5)})
    [(back, kwargs, kind)] = read_tiff(path)
    assert kind == "labels"
    assert back.dtype == dtype
    assert np.array_equal(np.asarray(back), labels)
    assert kwargs["scale"] == pytest.approx((4.0, 1.5, 1.5))


def test_tiff_stack_opens_lazily(tmp_path, rng):
    import tifffile

    stack = rng.integers(0, 1000, size=(6, 32, 32)).astype(np.uint16)
    compressed = tmp_path / "c.tif"
    tifffile.imwrite(compressed, stack, compression="zlib")
    [(data, _, kind)] = read_tiff(compressed)
    assert kind == "image"
    assert type(data).__module__.startswith("dask")
    assert np.array_equal(np.asarray(data[3]), stack[3])
