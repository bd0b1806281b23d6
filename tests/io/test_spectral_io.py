"""Round trips through rosettasciio's own writers: .hspy spectrum images and images, .msa spectra."""

import sys

import numpy as np
import pytest

from napari_cryomat.io import spectral as io

pytest.importorskip("rsciio")
pytest.importorskip("h5py")


def _signal(data, axes, title, signal_type=""):
    return {
        "data": data,
        "axes": axes,
        "metadata": {"General": {"title": title}, "Signal": {"signal_type": signal_type}},
        "original_metadata": {},
        "attributes": {"_lazy": False},
        "tmp_parameters": {},
        "learning_results": {},
        "models": {},
        "package_info": {"name": "napari-cryomat", "version": "test"},
    }


def _ax(name, units, size, offset, scale, navigate, i):
    return {"name": name, "units": units, "size": size, "offset": offset, "scale": scale, "navigate": navigate, "index_in_array": i}


def test_hspy_spectrum_image_roundtrip(tmp_path):
    from rsciio.hspy import file_writer

    rng = np.random.default_rng(0)
    si = rng.poisson(50, size=(6, 7, 40)).astype(np.float32)
    axes = [
        _ax("y", "nm", 6, 0.0, 0.25, True, 0),
        _ax("x", "nm", 7, 0.0, 0.25, True, 1),
        _ax("Energy", "keV", 40, 0.1, 0.02, False, 2),
    ]
    path = tmp_path / "si.hspy"
    file_writer(str(path), _signal(si, axes, "my SI", "EDS_TEM"), show_progressbar=False)
    reader = io.napari_get_reader(str(path))
    assert reader is not None
    (layer,) = reader(str(path))
    data, kwargs, kind = layer
    assert kind == "image"
    assert data.shape == (40, 6, 7)  # energy is the napari slider axis
    assert kwargs["scale"] == pytest.approx((20.0, 2.5, 2.5))  # eV, Å, Å
    assert kwargs["translate"][0] == pytest.approx(100.0)
    info = kwargs["metadata"]["spectrum_image"]
    assert info["signal_type"] == "EDS"
    assert info["energy_axis"] == {"offset": pytest.approx(100.0), "scale": pytest.approx(20.0), "units": "eV", "size": 40}
    assert info["pixel_size"] == pytest.approx(2.5)
    assert "dask" in type(data).__module__  # lazy

    class L:  # what napari hands the widget
        pass

    lay = L()
    lay.data, lay.metadata, lay.name, lay.multiscale = data, kwargs["metadata"], "x", False
    back, energy, px, st = io.si_from_layer(lay)
    np.testing.assert_array_equal(np.asarray(back), si)
    np.testing.assert_allclose(energy, 100 + 20 * np.arange(40))
    assert px == pytest.approx(2.5) and st == "EDS"


def test_hspy_image_opens_with_angstrom_scale(tmp_path):
    from rsciio.hspy import file_writer

    img = np.arange(30, dtype=np.float32).reshape(5, 6)
    axes = [_ax("y", "nm", 5, 0.0, 0.1, False, 0), _ax("x", "nm", 6, 0.0, 0.1, False, 1)]
    path = tmp_path / "haadf.hspy"
    file_writer(str(path), _signal(img, axes, "HAADF"), show_progressbar=False)
    ((data, kwargs, kind),) = io.read_spectral(str(path))
    assert kind == "image" and data.shape == (5, 6)
    assert kwargs["scale"] == pytest.approx((1.0, 1.0))
    assert kwargs["units"] == ("angstrom", "angstrom")
    assert kwargs["name"] == "HAADF"


def test_msa_spectrum_roundtrip(tmp_path):
    e = 200.0 + 0.5 * np.arange(100)
    spec = np.linspace(1000, 10, 100)
    path = tmp_path / "s.msa"
    io.write_msa(path, spec, energy=e, title="sum", signal_type="EELS")
    ((data, kwargs, kind),) = io.read_spectral(str(path))
    assert data.shape == (100, 1, 1)
    info = kwargs["metadata"]["spectrum_image"]
    assert info["energy_axis"]["offset"] == pytest.approx(200.0)
    assert info["energy_axis"]["scale"] == pytest.approx(0.5)
    assert info["signal_type"] == "EELS"
    np.testing.assert_allclose(np.asarray(data)[:, 0, 0], spec, rtol=1e-5)


def test_csv_export(tmp_path):
    p = io.write_csv(tmp_path / "p.csv", {"distance_A": np.arange(3.0), "Fe": np.ones(3)})
    text = open(p).read().splitlines()
    assert text[0] == "distance_A,Fe" and len(text) == 4


def test_reader_rejects_other_files_and_bad_files(tmp_path):
    assert io.napari_get_reader("image.png") is None
    bad = tmp_path / "broken.dm4"
    bad.write_bytes(b"not a dm4 file at all")
    with pytest.raises(ValueError, match="broken.dm4: this is a text file, not a Gatan DigitalMicrograph"):
        io.read_spectral(str(bad))


def test_missing_rosettasciio_message(monkeypatch, tmp_path):
    from rsciio.hspy import file_writer

    path = tmp_path / "whatever.hspy"
    file_writer(str(path), _signal(np.zeros((3, 4), np.float32), [_ax("y", "nm", 3, 0, 1, False, 0),
                                                                   _ax("x", "nm", 4, 0, 1, False, 1)], "t"))
    monkeypatch.setitem(sys.modules, "rsciio", None)  # import fails
    with pytest.raises(ImportError, match=r'whatever.hspy .*pip install "napari-cryomat\[formats\]"'):
        io.read_spectral(str(path))


def test_2d_layer_as_si_and_missing_axis():
    class L:
        pass

    lay = L()
    lay.data, lay.metadata, lay.name, lay.multiscale = np.zeros((4, 4)), {}, "HAADF", False
    with pytest.raises(ValueError, match="2D image"):
        io.si_from_layer(lay)
    lay.data = np.zeros((4, 4, 8))
    with pytest.raises(ValueError, match="no energy axis"):
        io.si_from_layer(lay)
