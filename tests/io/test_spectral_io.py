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
    with pytest.raises(ValueError, match="broken.dm4: this is a text file, not the Gatan DigitalMicrograph format"):
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


# -------------------------------------------------------------------------------------------------
# signal types, units, every signal (rosettasciio signal dictionaries, as its readers return them)
# -------------------------------------------------------------------------------------------------
from napari_cryomat.io._signals import set_complex_mode, signal_to_layers  # noqa: E402


def _sig(data, axes, title="t", signal_type="", post_process=None):
    s = _signal(data, axes, title, signal_type)
    if post_process is not None:
        s["post_process"] = post_process
    return s


def test_dm_eels_si_with_energy_as_navigation_axis():
    """DigitalMicrograph stores an EELS SI as (E, Y, X) with energy 'navigating' and asks for
    to_signal1D: the energy axis is the spectrum axis, not a 2048-slice image stack."""
    si = np.arange(50 * 3 * 4, dtype=np.float32).reshape(50, 3, 4)
    axes = [_ax("Energy loss", "eV", 50, 300.0, 1.0, True, 0), _ax("y", "µm", 3, 0, 0.002, False, 1),
            _ax("x", "µm", 4, 0, 0.002, False, 2)]
    pp = [lambda s: s.to_signal1D(optimize=True), lambda s: s.squeeze()]
    (data, kw, kind), = signal_to_layers(_sig(si, axes, "EELS_SI", "EELS", pp), name="EELS_SI")
    assert data.shape == (50, 3, 4)
    assert kw["units"] == ("eV", "angstrom", "angstrom")
    assert kw["scale"] == pytest.approx((1.0, 20.0, 20.0)) and kw["translate"][0] == pytest.approx(300.0)
    info = kw["metadata"]["spectrum_image"]
    assert info["signal_type"] == "EELS" and info["energy_axis"]["offset"] == pytest.approx(300.0)
    assert kw["metadata"]["source"]["kind"] == "spectrum image"


def test_cl_wavelength_stays_in_nm_and_single_spectrum_metadata():
    counts = np.linspace(1, 2, 30).astype(np.float32)
    axes = [_ax("Wavelength", "nm", 30, 400.0, 0.5, False, 0)]
    (data, kw, _), = signal_to_layers(_sig(counts, axes, "CL", "CL"), name="CL")
    # the inserted size-1 axes take Å, so napari keeps units when the spectrum joins images in Å
    assert data.shape == (30, 1, 1) and kw["units"] == ("nm", "angstrom", "angstrom")
    spec = kw["metadata"]["spectrum"]
    assert spec["unit"] == "nm" and spec["kind"] == "wavelength" and spec["signal_type"] == "CL"
    np.testing.assert_allclose(spec["axis"], 400 + 0.5 * np.arange(30))
    np.testing.assert_array_equal(spec["counts"], counts)


def test_eds_spectrum_in_kev_becomes_ev_with_spectrum_metadata():
    counts = np.arange(100, dtype=np.uint32)
    axes = [_ax("Energy", "keV", 100, -0.1, 0.01, False, 0)]
    (data, kw, _), = signal_to_layers(_sig(counts, axes, "EDS", "EDS_TEM"), name="EDS")
    assert kw["scale"][0] == pytest.approx(10.0) and kw["translate"][0] == pytest.approx(-100.0)
    spec = kw["metadata"]["spectrum"]
    assert spec["unit"] == "eV" and spec["signal_type"] == "EDS"
    np.testing.assert_allclose(spec["axis"][:3], [-100, -90, -80])
    assert kw["metadata"]["spectrum_image"]["energy_axis"]["units"] == "eV"  # the SI tools can use it too


def test_unnamed_energy_axis_is_labelled_energy():
    """exSpy's EDS_SEM_TM002.hspy names no axis: its slider read "axis 0", an SI's reads "Energy"."""
    counts = np.arange(100, dtype=np.uint32)
    axes = [_ax("", "keV", 100, -0.1, 0.01, False, 0)]
    (_, kw, _), = signal_to_layers(_sig(counts, axes, "EDS SEM Spectrum", "EDS_SEM"), name="EDS")
    assert kw["axis_labels"] == ("Energy", "y", "x")
    axes = [_ax("", "nm", 30, 400.0, 0.5, False, 0)]  # cathodoluminescence
    (_, kw, _), = signal_to_layers(_sig(np.ones(30, np.float32), axes, "CL", "CL"), name="CL")
    assert kw["axis_labels"][0] == "Wavelength"
    axes = [_ax("", "s", 30, 0.0, 0.5, False, 0)]  # not a spectrum axis: left to the generic name
    (_, kw, _), = signal_to_layers(_sig(np.ones(30, np.float32), axes, "trace"), name="trace")
    assert kw["axis_labels"][0] != "Energy"


def test_line_scan_is_e_1_x():
    ls = np.arange(5 * 20, dtype=np.float32).reshape(5, 20)
    axes = [_ax("x", "nm", 5, 0, 0.5, True, 0), _ax("Energy", "eV", 20, 0, 1.0, False, 1)]
    (data, kw, _), = signal_to_layers(_sig(ls, axes, "LS", "EELS"), name="LS")
    assert data.shape == (20, 1, 5) and kw["units"] == ("eV", "angstrom", "angstrom")
    assert kw["scale"] == pytest.approx((1.0, 5.0, 5.0))
    np.testing.assert_array_equal(np.asarray(data)[:, 0, 2], ls[2])
    assert kw["metadata"]["spectrum"]["counts"].shape == (5, 20)


def test_diffraction_in_inverse_angstrom_and_time_stack_in_seconds():
    dp = np.zeros((8, 8), np.int32)
    axes = [_ax("y", "1/nm", 8, -0.4, 0.1, False, 0), _ax("x", "1 / nm", 8, -0.4, 0.1, False, 1)]
    (_, kw, _), = signal_to_layers(_sig(dp, axes), name="dp")
    assert kw["units"] == ("1/angstrom", "1/angstrom") and kw["scale"] == pytest.approx((0.01, 0.01))
    assert kw["translate"] == pytest.approx((-0.04, -0.04))
    stack = np.zeros((3, 4, 4), np.int16)
    axes = [_ax("Time", "ms", 3, 0, 800.0, True, 0), _ax("y", "pm", 4, 0, 8.0, False, 1),
            _ax("x", "pm", 4, 0, 8.0, False, 2)]
    (_, kw, _), = signal_to_layers(_sig(stack, axes), name="movie")
    assert kw["units"] == ("s", "angstrom", "angstrom") and kw["scale"] == pytest.approx((0.8, 0.08, 0.08))


def test_uncalibrated_axes_are_pixels():
    img = np.zeros((4, 5), np.uint8)
    axes = [_ax("y", "", 4, 0, 1.0, False, 0), _ax("x", None, 5, 0, 1.0, False, 1)]
    (_, kw, _), = signal_to_layers(_sig(img, axes), name="raw")
    assert kw["units"] == ("pixel", "pixel") and kw["scale"] == (1.0, 1.0)


def test_four_d_stem_scan_axes_first_then_pattern():
    d = np.zeros((2, 3, 5, 6), np.float32)
    axes = [_ax("y", "nm", 2, 0, 1.0, True, 0), _ax("x", "nm", 3, 0, 1.0, True, 1),
            _ax("ky", "1/nm", 5, 0, 0.2, False, 2), _ax("kx", "1/nm", 6, 0, 0.2, False, 3)]
    (_, kw, _), = signal_to_layers(_sig(d, axes, signal_type="electron_diffraction"), name="4d")
    assert kw["units"] == ("angstrom", "angstrom", "1/angstrom", "1/angstrom")
    assert kw["metadata"]["source"]["kind"] == "4D-STEM"


def test_complex_as_amplitude_and_phase_or_real_and_imaginary():
    z = (np.arange(12) + 1j * np.arange(12)[::-1]).astype(np.complex64).reshape(3, 4)
    axes = [_ax("y", "nm", 3, 0, 1.0, False, 0), _ax("x", "nm", 4, 0, 1.0, False, 1)]
    amp, phase = signal_to_layers(_sig(z, axes), name="FFT")
    assert (amp[1]["name"], phase[1]["name"]) == ("FFT amplitude", "FFT phase")
    np.testing.assert_allclose(np.asarray(amp[0]), np.abs(z))
    assert phase[1]["contrast_limits"] == pytest.approx((-np.pi, np.pi))
    set_complex_mode("real-imaginary")
    try:
        re, im = signal_to_layers(_sig(z, axes), name="FFT")
        assert re[1]["name"] == "FFT real" and np.allclose(np.asarray(im[0]), z.imag)
    finally:
        set_complex_mode("amplitude-phase")


def test_rgb_structured_data_is_an_rgb_layer():
    rgb = np.zeros((4, 5), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["G"] = 200
    axes = [_ax("y", "nm", 4, 0, 1.0, False, 0), _ax("x", "nm", 5, 0, 1.0, False, 1)]
    (data, kw, _), = signal_to_layers(_sig(rgb, axes), name="colour")
    assert kw["rgb"] is True and data.shape == (4, 5, 3) and np.asarray(data)[0, 0, 1] == 200


def test_every_signal_of_a_file_named_after_its_title(monkeypatch, tmp_path):
    """A multi-signal file gives one layer per signal; a signal that cannot be shown is named in a
    warning and does not hide the others."""
    warnings_seen = []
    monkeypatch.setattr(io, "_notify", lambda kind, m: warnings_seen.append((kind, m)))
    img = _sig(np.zeros((4, 4), np.uint16), [_ax("y", "nm", 4, 0, 1, False, 0), _ax("x", "nm", 4, 0, 1, False, 1)], "HAADF")
    si = _sig(np.zeros((4, 4, 10), np.uint16), [_ax("y", "nm", 4, 0, 1, True, 0), _ax("x", "nm", 4, 0, 1, True, 1),
                                                _ax("Energy", "keV", 10, 0, 0.01, False, 2)], "EDS", "EDS_TEM")
    spectrum = _sig(np.ones(10, np.uint32), [_ax("Energy", "keV", 10, 0, 0.01, False, 0)], "EDS", "EDS_TEM")
    bad = _sig(np.array([object()] * 3), [_ax("x", "", 3, 0, 1, False, 0)], "broken")
    layers = io._layers_of([img, si, spectrum, bad], tmp_path / "velox.emd", "EMD")
    assert [kw["name"] for _, kw, _ in layers] == ["HAADF", "EDS 1", "EDS 2"]
    assert warnings_seen and "velox.emd" in warnings_seen[0][1] and "broken" in warnings_seen[0][1]


# -------------------------------------------------------------------------------------------------
# files: content over extension, damage, special files, missing packages
# -------------------------------------------------------------------------------------------------
@pytest.fixture
def notes(monkeypatch):
    seen = []
    monkeypatch.setattr(io, "_notify", lambda kind, m: seen.append((kind, m)))
    return seen


def test_map_goes_to_mrc_or_jeol_by_content(tmp_path, notes):
    import mrcfile

    from napari_cryomat.io import mrc

    path = tmp_path / "emd_1234.map"
    with mrcfile.new(str(path)) as m:
        m.set_data(np.zeros((2, 4, 4), np.float32))
        m.voxel_size = 1.5
    assert io.napari_get_map_reader(str(path)) is mrc.napari_read_mrc
    jeol = tmp_path / "View000_0000001.map"
    jeol.write_bytes(b"4\x00\x00\x00JED-2200:LibJxImageForm" + b"\x00" * 200)
    assert io.napari_get_map_reader(str(jeol)) is io.napari_read_spectral
    assert io.napari_read_spectral(str(jeol)) == [(None,)]  # damaged JEOL map: refused, named
    assert "View000_0000001.map" in notes[-1][1]
    other = tmp_path / "notes.map"
    other.write_text("just some text, long enough to look at " * 10)
    assert io.napari_read_spectral(str(other)) == [(None,)]
    assert "neither an MRC/CCP4 map nor a JEOL" in notes[-1][1]


def test_wrong_type_for_extension_is_named(tmp_path, notes):
    tif = tmp_path / "image.dm3"
    import tifffile

    tifffile.imwrite(tif, np.zeros((4, 4), np.uint8))
    assert io.napari_read_spectral(str(tif)) == [(None,)]
    assert notes[-1][1].startswith("image.dm3: this is a TIFF image, not the Gatan DigitalMicrograph format")


def test_fifo_named_msa_is_refused_at_once(tmp_path, notes):
    import os
    import threading

    fifo = tmp_path / "spectrum.msa"
    os.mkfifo(fifo)
    out = []
    t = threading.Thread(target=lambda: out.append(io.napari_read_spectral(str(fifo))), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "the reader blocked on a FIFO"
    assert out == [[(None,)]] and "spectrum.msa" in notes[-1][1] and "FIFO" in notes[-1][1]


def test_truncated_hspy_is_refused_before_hdf5_reads_it(tmp_path, notes):
    from rsciio.hspy import file_writer

    path = tmp_path / "si.hspy"
    axes = [_ax("y", "nm", 6, 0, 1, True, 0), _ax("x", "nm", 7, 0, 1, True, 1), _ax("E", "eV", 40, 0, 1, False, 2)]
    file_writer(str(path), _signal(np.ones((6, 7, 40), np.float32), axes, "SI", "EELS"), show_progressbar=False)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) * 2 // 3])
    assert io.napari_read_spectral(str(path)) == [(None,)]
    assert "si.hspy" in notes[-1][1] and "truncated" in notes[-1][1]


def test_eager_only_files_are_refused_above_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "s.msa"
    io.write_msa(path, np.ones(50), energy=np.arange(50.0))
    monkeypatch.setattr(io, "EAGER_LIMIT_BYTES", 100)
    with pytest.raises(io.SpectralError, match=r"s.msa: rosettasciio reads this kind of EMSA/MSA file only whole"):
        io.read_spectral(path)


def test_missing_reader_package_names_the_pip_install(tmp_path, monkeypatch):
    path = tmp_path / "x.bcf"
    path.write_bytes(b"AAMVHFSS" + b"\0" * 400)
    monkeypatch.setitem(io._FORMATS, ".bcf", ("rsciio.not_installed_reader", "Bruker BCF", ("bcf",)))
    monkeypatch.setattr("napari_cryomat.io._sniff.check_structure", lambda *a: None)
    with pytest.raises(ImportError, match=r"x.bcf \(Bruker BCF\) needs the package .*pip install"):
        io.read_spectral(path)


def test_spectrum_opens_through_napari(tmp_path):
    """File > Open of an .msa: one small layer with the spectrum and its energy axis in metadata."""
    import npe2
    from napari.components import ViewerModel

    pm = npe2.PluginManager.instance()
    if "napari-cryomat" not in pm:
        pm.discover(include_npe1=False)
    path = tmp_path / "sum.msa"
    io.write_msa(path, np.linspace(5, 1, 64), energy=100 + 0.5 * np.arange(64), title="sum", signal_type="EELS")
    (layer,) = ViewerModel().open(str(path), plugin="napari-cryomat")
    spec = layer.metadata["spectrum"]
    assert spec["unit"] == "eV" and spec["axis"][0] == pytest.approx(100.0) and spec["counts"].shape == (64,)
    assert str(layer.units[0]) in ("eV", "electron_volt")


@pytest.mark.parametrize(("script", "message"), [
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "the HDF5 library crashed reading its structure"),
    ("import time; time.sleep(30)", "did not finish reading its structure"),
])
def test_hdf5_that_crashes_or_hangs_the_library_is_refused(tmp_path, notes, monkeypatch, script, message):
    """libhdf5 can segfault or loop on a damaged file: the structure is walked in a child process
    first, so napari gets a message instead of dying or freezing."""
    from rsciio.hspy import file_writer

    path = tmp_path / "bad.hspy"
    file_writer(str(path), _signal(np.zeros((3, 4), np.float32), [_ax("y", "nm", 3, 0, 1, False, 0),
                                                                   _ax("x", "nm", 4, 0, 1, False, 1)], "t"))
    monkeypatch.setattr("napari_cryomat.io._sniff._PROBE", script)
    monkeypatch.setenv("CRYOMAT_HDF5_PROBE_TIMEOUT", "2")
    assert io.napari_read_spectral(str(path)) == [(None,)]
    assert "bad.hspy" in notes[-1][1] and message in notes[-1][1]


def _falling_eels_si():
    """(Y, X, E) counts on a power-law background: ~100x fewer in the middle channel than the first."""
    rng = np.random.default_rng(7)
    energy = np.linspace(300.0, 2300.0, 200)
    background = 1e5 * (energy / energy[0]) ** -3.0
    scale = rng.uniform(0.5, 1.5, (12, 16, 1))
    return rng.poisson(np.broadcast_to(background, (12, 16, 200)) * scale).astype(np.float32)


def _assert_shown_plane_fills_grey_scale(data, kwargs):
    import napari.components

    viewer = napari.components.ViewerModel()
    viewer.add_image(data, **kwargs)
    shown = np.asarray(data[viewer.dims.current_step[0]])
    lo, hi = kwargs["contrast_limits"]
    assert ((shown > lo) & (shown < hi)).mean() > 0.9, (lo, hi, shown.min(), shown.max())
    spread = np.percentile(shown, 99) - np.percentile(shown, 1)
    assert spread > 0.5 * (hi - lo), (lo, hi, spread)  # the plane fills the grey scale, not a sliver of it


def test_spectrum_image_opens_with_the_contrast_of_the_plane_shown():
    """Limits over the whole SI are set by its brightest (first) planes and draw the middle plane, the one
    napari shows first, black; the limits span that plane. Both paths: a file's SI and one we make."""
    si = _falling_eels_si()
    data, kwargs, _ = io.spectrum_image_layer(si, energy_offset=300.0, energy_scale=10.05, signal_type="EELS")
    _assert_shown_plane_fills_grey_scale(data, kwargs)

    axes = [_ax("y", "nm", 12, 0, 2.0, True, 0), _ax("x", "nm", 16, 0, 2.0, True, 1),
            _ax("Energy loss", "eV", 200, 300.0, 10.05, False, 2)]
    [(data, kwargs, kind)] = signal_to_layers(_sig(si, axes, signal_type="EELS"), name="SI")
    assert kind == "image" and kwargs["metadata"]["spectrum_image"]["axes"] == "EYX"
    _assert_shown_plane_fills_grey_scale(data, kwargs)


def test_acquisition_parameters_from_what_the_file_records():
    from napari_cryomat.io._acquisition import acquisition_parameters

    # HyperSpy / Bruker / Gatan metadata (exSpy's TM002 and FePt record these)
    sem = {"metadata": {"Acquisition_instrument": {"SEM": {
        "beam_energy": 10.0, "Stage": {"tilt_alpha": 0.0},
        "Detector": {"EDS": {"energy_resolution_MnKa": 130.0, "elevation_angle": 37.0}}}}}}
    assert acquisition_parameters(sem) == {"beam_energy_kev": 10.0, "eds_fwhm_mn_ka_ev": 130.0,
                                           "eds_take_off_deg": 37.0}
    tem = {"metadata": {"Acquisition_instrument": {"TEM": {
        "beam_energy": 300, "convergence_angle": 21.5, "Detector": {"EELS": {"collection_angle": 38.0}}}}}}
    assert acquisition_parameters(tem) == {"beam_energy_kev": 300.0, "eels_convergence_mrad": 21.5,
                                           "eels_collection_mrad": 38.0}
    # a tilted stage: the elevation is not the take-off angle (that depends on the azimuth too): left out
    tilted = {"metadata": {"Acquisition_instrument": {"TEM": {
        "beam_energy": 200, "Stage": {"tilt_alpha": 15.0}, "Detector": {"EDS": {"elevation_angle": 18.0}}}}}}
    assert acquisition_parameters(tilted) == {"beam_energy_kev": 200.0}
    # Velox: the optics and detectors are in the original metadata only (volts, radians, strings)
    velox = {"metadata": {"General": {"title": "EDS"}}, "original_metadata": {
        "Optics": {"AccelerationVoltage": "300000"}, "Stage": {"AlphaTilt": "0.0001"},
        "Detectors": {"Detector-0": {"DetectorType": "ImagingDetector", "ElevationAngle": "1.0"},
                      "Detector-4": {"DetectorType": "AnalyticalDetector", "Enabled": "true",
                                     "ElevationAngle": "0.38397244"}}}}
    got = acquisition_parameters(velox)
    assert got["beam_energy_kev"] == 300.0 and got["eds_take_off_deg"] == pytest.approx(22.0, abs=1e-6)
    # what no microscope records (0 kV, NaN, text) is left out rather than passed on
    odd = {"metadata": {"Acquisition_instrument": {"SEM": {
        "beam_energy": 0.0, "Detector": {"EDS": {"energy_resolution_MnKa": float("nan"), "elevation_angle": "n/a"}}}}}}
    assert acquisition_parameters(odd) == {} and acquisition_parameters({}) == {}
    # a value missing (or implausible) under one microscope key is taken from the other, never left as None
    both = {"metadata": {"Acquisition_instrument": {"TEM": {"beam_energy": 0.0}, "SEM": {"beam_energy": 5.0}}}}
    assert acquisition_parameters(both) == {"beam_energy_kev": 5.0}


def test_bruker_detector_resolution_and_micro_xrf_from_the_spectrum_header():
    from napari_cryomat.io._acquisition import acquisition_parameters

    # Bruker's header as rosettasciio keeps it (hyperspy's bruker_nano.spx): the line width sigma² = SigmaAbs +
    # SigmaLin·E (keV², E in keV); at Mn Kα 5.8988 keV: sigma² = 0.00024738 + 0.00043499 x 5.8988 = 0.00281331,
    # sigma 53.04 eV, FWHM 2.3548 x 53.04 = 124.9 eV (an XFlash 5010, sold as 125 eV)
    header = {"XmlClassType": "TRTSpectrumHeader", "SigmaAbs": "0.0002473828662", "SigmaLin": "0.0004349876499"}
    sem = {"metadata": {"Acquisition_instrument": {"SEM": {"beam_energy": 15.0, "Detector": {"EDS": {
        "elevation_angle": 35.0}}}}},
        "original_metadata": {"Spectrum": header, "Analysis": {"XmlClassType": "TRTESMAHeader", "PrimaryEnergy": "15.0"}}}
    got = acquisition_parameters(sem)
    assert got["beam_energy_kev"] == 15.0 and got["eds_take_off_deg"] == 35.0
    assert got["eds_fwhm_mn_ka_ev"] == pytest.approx(124.90, abs=0.02)
    # a resolution HyperSpy's metadata states comes first
    sem["metadata"]["Acquisition_instrument"]["SEM"]["Detector"]["EDS"]["energy_resolution_MnKa"] = 133.0
    assert acquisition_parameters(sem)["eds_fwhm_mn_ka_ev"] == 133.0
    # a micro-XRF spectrum (an M6 Jetstream): rosettasciio replaces the tube header by {PrimaryEnergy: tube kV,
    # ElevationAngle: excitation angle} and calls the tube's voltage the beam energy: neither is an electron beam's
    xrf = {"metadata": {"Acquisition_instrument": {"TEM": {"beam_energy": 50, "Detector": {"EDS": {
        "elevation_angle": 90.0}}}}},
        "original_metadata": {"Spectrum": dict(header, SigmaAbs="0.0009892997828", SigmaLin="0.0004466391048"),
                              "Analysis": {"PrimaryEnergy": "50", "ElevationAngle": "90.0"}}}
    got = acquisition_parameters(xrf)
    assert set(got) == {"xray_tube_kv", "eds_fwhm_mn_ka_ev"} and got["xray_tube_kv"] == 50.0
    assert got["eds_fwhm_mn_ka_ev"] == pytest.approx(141.8, abs=0.05)
    # an Analysis header of a kind not known here, or a non-Bruker file with a "Spectrum" entry: no XRF guess
    odd = {"original_metadata": {"Spectrum": header, "Analysis": {"XmlClassType": "TRTSomethingElse",
                                                                   "PrimaryEnergy": "30"}}}
    assert "xray_tube_kv" not in acquisition_parameters(odd)
    assert acquisition_parameters({"original_metadata": {"Spectrum": {"SigmaAbs": "x"},
                                                         "Analysis": {"PrimaryEnergy": "30"}}}) == {}


def test_unlabelled_energy_axis_is_taken_as_eds_or_eels_by_its_channels_and_range():
    """FEI TIA files (.emi/.ser) do not say whether a spectrum is EDS or EELS: 10 eV channels to 40 keV are X-ray
    lines, 0.2 eV channels over 200 eV are energy losses; a CL spectrum (a few eV) or 2.5 eV channels to 10 keV could
    be either or neither and stay unlabelled; a file's own label always wins."""
    from napari_cryomat.io._signals import signal_type_from_energy_axis

    assert signal_type_from_energy_axis(9.9753, 11.98, 3993) == "EDS"  # hyperspy's TIA EDS spectrum
    assert signal_type_from_energy_axis(0.2, -20.0, 1024) == "EELS"  # its TIA low-loss spectra
    assert signal_type_from_energy_axis(1.0, 200.0, 2048) == "EELS"  # a core-loss range
    assert signal_type_from_energy_axis(0.002, 1.5, 1340) == ""  # CL photons, 1.5-4.2 eV
    assert signal_type_from_energy_axis(2.5, 0.0, 4000) == ""  # 2.5 eV channels to 10 keV: either
    assert signal_type_from_energy_axis(10.0, 0.0, 500) == ""  # ends at 5 keV: no X-ray range

    def layer_md(signal_type, scale):
        axes = [_ax("Energy", "eV", 3993, 11.98, scale, False, 0)]
        data = np.random.default_rng(0).poisson(3.0, 3993).astype(np.float32)
        [(_data, kwargs, _kind)] = signal_to_layers(_sig(data, axes, signal_type=signal_type), name="s")
        return kwargs["metadata"]["spectrum_image"]

    md = layer_md("", 9.9753)
    assert md["signal_type"] == "EDS" and md["signal_type_from"] == "energy axis"
    md = layer_md("EELS", 9.9753)  # labelled by the file: kept, and nothing said to be inferred
    assert md["signal_type"] == "EELS" and "signal_type_from" not in md
    assert layer_md("", 0.003)["signal_type"] == ""


def test_tia_beam_energy_from_the_object_info():
    from napari_cryomat.io._acquisition import acquisition_parameters

    tia = {"original_metadata": {"ObjectInfo": {"ExperimentalConditions": {"MicroscopeConditions": {
        "AcceleratingVoltage": "300000"}}, "ExperimentalDescription": {"High tension_kV": "300.0"}}}}
    assert acquisition_parameters(tia) == {"beam_energy_kev": 300.0}
    only_description = {"original_metadata": {"ObjectInfo": {"ExperimentalDescription": {"High tension_kV": 200}}}}
    assert acquisition_parameters(only_description) == {"beam_energy_kev": 200.0}
