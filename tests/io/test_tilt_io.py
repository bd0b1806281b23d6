"""Tilt-series files: angles from .tlt/.rawtlt/.mdoc and MRC extended headers, stacks with their angles,
and bad input (every reader names ``path`` or ``angles_path`` in its ValueError)."""

import os

import mrcfile
import numpy as np
import pytest

from napari_cryomat.io.tilt import read_tilt_angles, read_tilt_series, sidecar_angles


# -------------------------------------------------------------------------------------------------
# angle readers
# -------------------------------------------------------------------------------------------------
def test_read_tlt_and_mdoc(tmp_path):
    angles = np.round(np.linspace(-60, 60, 7), 2)
    p = tmp_path / "s.tlt"
    p.write_text("\n".join(f"  {a:.2f}" for a in angles) + "\n\n")
    assert np.allclose(read_tilt_angles(p), angles)
    order = np.random.default_rng(0).permutation(7)  # SerialEM writes sections in acquisition order
    text = "PixelSpacing = 5.4\n\n" + "".join(
        f"[ZValue = {z}]\nTiltAngle = {angles[z]:.2f}\nExposureTime = 1\n\n" for z in order)
    m = tmp_path / "s.mrc.mdoc"
    m.write_text(text)
    assert np.allclose(read_tilt_angles(m), angles)
    bad = tmp_path / "bad.tlt"
    bad.write_text("10\nabc\n")
    with pytest.raises(ValueError, match="line 2"):
        read_tilt_angles(bad)


def test_read_angles_from_fei_and_serialem_headers(tmp_path):
    from mrcfile.dtypes import get_ext_header_dtype

    angles = np.linspace(-45, 45, 4)
    data = np.zeros((4, 8, 8), np.float32)
    fei = tmp_path / "fei.mrc"
    with mrcfile.new(fei) as m:
        m.set_data(data)
        dt = get_ext_header_dtype(b"FEI1")
        ext = np.zeros(4, dtype=dt)
        ext["Metadata size"] = dt.itemsize
        ext["Alpha tilt"] = angles
        m.set_extended_header(ext)
        m.header.exttyp = b"FEI1"
    assert np.allclose(read_tilt_angles(fei), angles)
    seri = tmp_path / "seri.st"
    with mrcfile.new(seri) as m:
        m.set_data(data)
        rec = np.zeros((4, 16), np.int16)
        rec[:, 0] = np.round(angles * 100)
        m.set_extended_header(rec.view(np.dtype("V32")).ravel())
        m.header.exttyp = b"SERI"
    with open(seri, "r+b") as f:  # IMOD's nint, nreal (int16 at bytes 128-131): 32 bytes a section, tilt angles
        f.seek(128)
        f.write(np.array([32, 1], "<i2").tobytes())
    assert np.allclose(read_tilt_angles(seri), angles)


def test_read_tilt_series_with_sidecar(tmp_path):
    angles = np.linspace(-30, 30, 5)
    with mrcfile.new(tmp_path / "ts.st") as m:
        m.set_data(np.random.default_rng(0).random((5, 12, 10)).astype(np.float32))
        m.voxel_size = 3.5
    np.savetxt(tmp_path / "ts.rawtlt", angles)
    stack, got, px = read_tilt_series(tmp_path / "ts.st")
    assert stack.shape == (5, 12, 10) and np.allclose(got, angles) and px == pytest.approx(3.5)
    np.savetxt(tmp_path / "ts.rawtlt", angles[:4])
    with pytest.raises(ValueError, match="4 tilt angles for the 5 images"):
        read_tilt_series(tmp_path / "ts.st")


def _stack(path, n=5):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.random.default_rng(n).random((n, 12, 10)).astype(np.float32))
    return path


@pytest.mark.parametrize("reader", [read_tilt_angles, read_tilt_series])
def test_readers_refuse_missing_folders_and_special_files(tmp_path, reader):
    fifo = tmp_path / "pipe.tlt"
    os.mkfifo(fifo)
    for bad in (tmp_path / "missing.tlt", tmp_path, fifo, "/dev/zero"):
        with pytest.raises(ValueError, match="path"):
            reader(bad)


@pytest.mark.parametrize("text, match", [
    ("", "no tilt angles"),
    ("# only a comment\n", "no tilt angles"),
    ("10\nnan\n", "finite"),
    ("10\n95\n", "within ±90"),
    ("10\n1e999\n", "finite"),
])
def test_bad_angle_files(tmp_path, text, match):
    p = tmp_path / "s.rawtlt"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_tilt_angles(p)


def test_mdoc_without_tilt_angles_and_header_without_angles(tmp_path):
    m = tmp_path / "s.mdoc"
    m.write_text("PixelSpacing = 5.4\n[ZValue = 0]\nExposureTime = 1\n")
    with pytest.raises(ValueError, match="TiltAngle"):
        read_tilt_angles(m)
    plain = _stack(tmp_path / "plain.mrc")
    with pytest.raises(ValueError, match="extended header holds no tilt angles"):
        read_tilt_angles(plain)
    garbage = tmp_path / "garbage.st"
    garbage.write_bytes(b"not an MRC file" * 10)
    with pytest.raises(ValueError, match="path"):
        read_tilt_angles(garbage)


def test_read_tilt_series_bad_input(tmp_path):
    stack = _stack(tmp_path / "ts.st")
    with pytest.raises(ValueError, match="extended header"):  # no sidecar, no angles in the header
        read_tilt_series(stack)
    with pytest.raises(ValueError, match="path"):
        read_tilt_series(tmp_path / "missing.st", angles_path=tmp_path / "missing.tlt")
    np.savetxt(tmp_path / "six.tlt", np.linspace(-30, 30, 6))
    with pytest.raises(ValueError, match="angles_path: 6 tilt angles for the 5 images"):
        read_tilt_series(stack, angles_path=tmp_path / "six.tlt")
    with mrcfile.new(tmp_path / "image.mrc") as m:
        m.set_data(np.zeros((12, 10), np.float32))
    np.savetxt(tmp_path / "image.tlt", [0.0])
    with pytest.raises(ValueError, match="2D array"):
        read_tilt_series(tmp_path / "image.mrc")
    not_mrc = tmp_path / "text.mrc"
    not_mrc.write_text("hello")
    with pytest.raises(ValueError, match="path"):
        read_tilt_series(not_mrc, angles_path=tmp_path / "six.tlt")


def test_sidecar_order(tmp_path):
    stack = _stack(tmp_path / "ts.st")
    assert sidecar_angles(stack) is None
    (tmp_path / "ts.st.mdoc").write_text("[ZValue = 0]\nTiltAngle = 1\n")
    assert sidecar_angles(stack).name == "ts.st.mdoc"
    np.savetxt(tmp_path / "ts.rawtlt", np.zeros(5))
    assert sidecar_angles(stack).name == "ts.rawtlt"
    np.savetxt(tmp_path / "ts.tlt", np.zeros(5))
    assert sidecar_angles(stack).name == "ts.tlt"
