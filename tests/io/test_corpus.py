"""Every real microscope file of the corpus opens right through napari's File > Open, or is refused
with a message naming the file.

The corpus (``tests/io/corpus.py``) is fetched from PyPI on first use into ``.cache/corpus`` (or
``$CRYOMAT_CORPUS_DIR``); without network the tests skip, saying why. Each claimed file (a pattern
of a napari-cryomat reader in the manifest) is opened with
``ViewerModel().open(path, plugin="napari-cryomat")`` and compared with the format's own library
read directly:

- rosettasciio formats: one layer per signal (two for complex data); each layer's data equal the
  signal's data in the documented axis order; every calibrated axis has the file's scale and offset
  converted by *pint* (independently of ``core.units``) into the layer's unit; energy axes are in
  eV, wavelength axes in nm; an uncalibrated axis is "pixel", never "1 Å".
- TIFF: data equal tifffile's series; scale and units equal rosettasciio's TIFF reader (which knows
  the FEI, Zeiss, TVIPS, DM, ImageJ, JEOL SightX, Olympus and Hamamatsu tags) converted by pint.
- MRC: data equal mrcfile's (in Z, Y, X, shown flipped in Y as 3dmod does), scale is the voxel
  size in Å.

A refusal must come as an error notification that names the file; nothing may raise.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from corpus import corpus_files, ensure_corpus  # noqa: E402

ROOT, WHY = ensure_corpus()

# Files that may be refused (the reference library fails on them too, or they are parts of a
# set that opens from its first file); anything else must open.
EXPECTED_REFUSALS = {
    "Nope.bcf": "not a Bruker file",
    "future.hspy": "written by a future HyperSpy",
    "example_object_dtype_data.emd": "data of Python objects",
    "181019-BN.ASW": "refers to files not shipped",
    "Dummy-Data_0000007.pts": "invalid frames (rosettasciio fails)",
    "dummy2.ASW": "invalid frames (rosettasciio fails)",
    "test_tvips_2345_split_001.tvips": "second part of a split movie",
    "test_tvips_2345_split_002.tvips": "third part of a split movie",
}


def _patterns() -> list[str]:
    import yaml

    manifest = yaml.safe_load((Path(__file__).parents[2] / "napari_cryomat" / "napari.yaml").read_text())
    return [p.lower() for r in manifest["contributions"]["readers"] for p in r["filename_patterns"]]


def _claimed(root: Path) -> list[Path]:
    pats = _patterns()
    return [p for p in corpus_files(root) if any(fnmatch.fnmatch(p.name.lower(), pat) for pat in pats)]


FILES = _claimed(ROOT) if ROOT is not None else []
IDS = [str(p.relative_to(ROOT)) for p in FILES]


@pytest.fixture(scope="module")
def viewer():
    import npe2
    from napari.components import ViewerModel

    pm = npe2.PluginManager.instance()
    if "napari-cryomat" not in pm:
        pm.discover(include_npe1=False)
    return ViewerModel()


@pytest.fixture
def messages(monkeypatch):
    import napari.utils.notifications as notifications

    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(notifications, "show_error", lambda m, *a, **k: seen.append(("error", str(m))))
    monkeypatch.setattr(notifications, "show_warning", lambda m, *a, **k: seen.append(("warning", str(m))))
    monkeypatch.setattr(notifications, "show_info", lambda m, *a, **k: seen.append(("info", str(m))))
    return seen


def test_corpus_is_there():
    if ROOT is None:
        pytest.skip(WHY)
    exts = {p.suffix.lower() for p in FILES}
    # every format the project claims is covered by real files
    for ext in (".dm3", ".dm4", ".emd", ".bcf", ".spx", ".msa", ".hspy", ".emi", ".ser", ".pts", ".asw",
                ".img", ".map", ".eds", ".blo", ".tvips", ".elid", ".tif", ".mrc", ".gz", ".bz2"):
        assert ext in exts, ext
    assert len(FILES) > 250


@pytest.mark.parametrize("path", FILES or [None], ids=IDS or ["no-corpus"])
def test_real_file_opens_right_or_is_refused(path, viewer, messages):
    if path is None:
        pytest.skip(WHY)
    viewer.layers.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libraries' own warnings about odd files are not our result
        layers = viewer.open(str(path), plugin="napari-cryomat")
    errors = [m for kind, m in messages if kind == "error"]
    if not layers:
        assert errors, f"{path.name}: no layer and no message"
        assert all(path.name in m for m in errors), errors
        assert path.name in EXPECTED_REFUSALS, f"refused: {errors}"
        return
    assert not errors, errors
    assert path.name not in EXPECTED_REFUSALS, "opened a file expected to be refused: update the list"
    name = path.name.lower()
    if name.endswith((".tif", ".tiff")):
        _check_tiff(path, list(layers))
    elif "mrc" in layers[0].metadata:
        _check_mrc(path, list(layers))
    else:
        _check_rsciio(path, list(layers))
    for layer in layers:  # napari can draw it: the scale is finite and positive
        assert all(np.isfinite(s) and s > 0 for s in layer.scale), (layer.name, layer.scale)


# -------------------------------------------------------------------------------------------------
# references
# -------------------------------------------------------------------------------------------------
# unit names that count things (pint would read "points" as the typographic length)
_COUNTS = {"points", "point", "pts", "pt", "pixel", "pixels", "px", "pix", "counts", "frames", "a.u."}


def _ureg():
    import pint

    return pint.get_application_registry()


def _expect_in(value: float, units, target: str):
    """``value`` in ``units`` converted by pint to ``target``; None if pint does not know ``units``."""
    if units in (None, "", "<undefined>", "[]") or str(units).strip().lower() in _COUNTS:
        return None
    ureg = _ureg()
    try:
        q = ureg.Quantity(float(value), ureg.parse_units(str(units).replace("µ", "u").replace("μ", "u")))
        return q.to(target).magnitude
    except Exception:  # noqa: BLE001 - unknown unit or not convertible
        return None


def _is_physical(units) -> bool:
    return _expect_in(1.0, units, "1") is not None or any(
        _expect_in(1.0, units, t) is not None for t in ("m", "1/m", "eV", "s", "rad"))


def _unit_is(unit, name: str) -> bool:
    ureg = _ureg()
    try:
        return ureg.Unit(str(unit)) == ureg.Unit(name)
    except Exception:  # noqa: BLE001
        return str(unit) == name


def _check_axis(layer, k: int, ref_axis: dict, where: str):
    unit = str(layer.units[k])
    scale, translate = float(layer.scale[k]), float(layer.translate[k])
    ref_units, ref_scale = ref_axis.get("units"), ref_axis.get("scale", 1.0)
    ref_offset = ref_axis.get("offset", 0.0)
    if "axis" in ref_axis and ref_axis["axis"] is not None and len(ref_axis["axis"]) > 1:
        values = np.asarray(ref_axis["axis"], float)
        ref_scale, ref_offset = (values[-1] - values[0]) / (len(values) - 1), values[0]
    calibrated = _is_physical(ref_units) and ref_scale not in (None, 0) and np.isfinite(float(ref_scale))
    if unit == "pixel":
        implausible = bool(layer.metadata.get("calibration", [{}] * (k + 1))[k].get("implausible"))
        assert not calibrated or implausible, f"{where}: calibrated {ref_scale} {ref_units} shown as pixel"
        assert scale == 1.0
        return
    assert calibrated, f"{where}: uncalibrated axis ({ref_units!r}) shown in {unit}"
    want = abs(_expect_in(ref_scale, ref_units, unit))
    assert scale == pytest.approx(want, rel=1e-5), f"{where}: scale {scale} {unit}, file {ref_scale} {ref_units}"
    want_off = _expect_in(ref_offset or 0.0, ref_units, unit)
    assert translate == pytest.approx(want_off, rel=1e-5, abs=1e-9 * max(1.0, want)), f"{where}: offset"
    name = str(ref_axis.get("name") or "").lower()
    if _expect_in(1.0, ref_units, "eV") is not None:
        assert _unit_is(unit, "eV"), f"{where}: energy axis in {unit}"
    elif "wavelength" in name:
        assert _unit_is(unit, "nm"), f"{where}: wavelength axis in {unit}"
    elif _expect_in(1.0, ref_units, "m") is not None:
        assert _unit_is(unit, "angstrom") or _unit_is(unit, "nm"), where
    elif _expect_in(1.0, ref_units, "1/m") is not None:
        assert _unit_is(unit, "1/angstrom"), f"{where}: reciprocal axis in {unit}"


def _read_rsciio(path: Path):
    from napari_cryomat.io import spectral

    mod = spectral._rsciio_module(path.suffix.lower())
    return spectral._call_reader(mod, path, "reference", path.stat().st_size)


def _sample(a, n_max=2_000_000):
    """The whole array when small, else a few slabs along the first axis (same for layer and ref)."""
    if int(np.prod(a.shape)) <= n_max:
        return np.asarray(a)
    idx = sorted({0, a.shape[0] // 2, a.shape[0] - 1})
    return np.stack([np.asarray(a[i]) for i in idx])


def _expected_data(ref, calib, rgb_names):
    """The reference array put in the layer's axis order from ``metadata['calibration']``."""
    if rgb_names:
        ref = np.stack([np.asarray(ref[n]) for n in rgb_names], axis=-1)
    file_axes = [c["file_axis"] for c in calib]
    used = [a for a in file_axes if a is not None]
    n_file = ref.ndim - (1 if rgb_names else 0)
    drop = [i for i in range(n_file) if i not in used]
    assert all(ref.shape[i] == 1 for i in drop), "a file axis of size > 1 is missing from the layer"
    order = [a for a in file_axes if a is not None]
    squeezed = ref.reshape([s for i, s in enumerate(ref.shape) if i not in drop])
    remaining = [i for i in range(n_file) if i not in drop]
    perm = [remaining.index(a) for a in order] + ([len(remaining)] if rgb_names else [])
    out = squeezed.transpose(perm) if hasattr(squeezed, "transpose") else np.transpose(squeezed, perm)
    for k, a in enumerate(file_axes):
        if a is None:
            out = out[(slice(None),) * k + (None,)]
    return out


def _check_rsciio(path: Path, layers):
    from napari_cryomat.io._signals import _axes_of, _rgb_fields, complex_mode

    signals = _read_rsciio(path)
    by_index: dict[int, list] = {}
    for layer in layers:
        by_index.setdefault(layer.metadata["source"]["index"], []).append(layer)
    assert set(by_index) == set(range(len(signals))), f"signals {sorted(by_index)} of {len(signals)} offered"
    for i, sig in enumerate(signals):
        ref = sig["data"]
        got = by_index[i]
        is_complex = np.iscomplexobj(np.empty(0, dtype=ref.dtype))
        assert len(got) == (2 if is_complex else 1), [g.name for g in got]
        rgb_names = _rgb_fields(ref.dtype)
        ref_axes_aligned = _axes_of(sig, tuple(ref.shape))
        raw_axes = list(sig.get("axes") or [])
        for layer in got:
            calib = layer.metadata["calibration"]
            assert len(calib) == layer.ndim
            where = f"{path.name} / {layer.name}"
            expected = _expected_data(ref, calib, rgb_names)
            part = layer.metadata.get("complex_part")
            if part == "amplitude":
                expected = np.abs(np.asarray(expected))
            elif part == "phase":
                expected = np.angle(np.asarray(expected))
            elif part == "real":
                expected = np.asarray(expected).real
            elif part == "imaginary":
                expected = np.asarray(expected).imag
            if part:
                assert complex_mode() in ("amplitude-phase", "real-imaginary")
            data = layer.data
            assert tuple(data.shape) == tuple(expected.shape), where
            got_a, want_a = _sample(data), _sample(expected)
            if got_a.dtype == bool or want_a.dtype == bool:
                got_a, want_a = got_a.astype(np.uint8), want_a.astype(np.uint8)
            np.testing.assert_allclose(got_a, want_a, rtol=1e-6, err_msg=where)
            for k, c in enumerate(calib):
                if c["file_axis"] is None:
                    assert str(layer.units[k]) == "pixel" and layer.scale[k] == 1.0
                    continue
                ref_axis = ref_axes_aligned[c["file_axis"]].raw
                if ref_axis is None:  # a dimension the file did not describe
                    assert str(layer.units[k]) == "pixel", where
                    continue
                _check_axis(layer, k, ref_axis, f"{where} axis {k} ({c['name']})")
        if any(str(a.get("units") or "") and _expect_in(1.0, a.get("units"), "eV") is not None for a in raw_axes):
            assert _unit_is(got[0].units[0], "eV") or got[0].ndim > 3, f"{path.name}: the energy axis is not the slider"


def _check_tiff(path: Path, layers):
    import tifffile

    from napari_cryomat.io.spectral import _call_reader

    with tifffile.TiffFile(path) as tif:
        series = [s.asarray() for s in tif.series]
    assert len(layers) == len(series), [la.name for la in layers]
    import rsciio.tiff as rtiff

    try:
        ref = _call_reader(rtiff, path, "TIFF", path.stat().st_size)
    except Exception:  # noqa: BLE001 - rsciio may not read every TIFF; then only data are compared
        ref = None
    for i, (layer, want) in enumerate(zip(layers, series)):
        where = f"{path.name} / {layer.name}"
        np.testing.assert_array_equal(np.asarray(layer.data), want.reshape(layer.data.shape), err_msg=where)
        if ref is None or i >= len(ref):
            continue
        ref_axes = ref[i]["axes"]
        n = layer.ndim - (1 if layer.rgb else 0)
        ref_axes = ref_axes[-n:] if len(ref_axes) >= n else [{}] * (n - len(ref_axes)) + list(ref_axes)
        for k in range(n):
            ref_axis = dict(ref_axes[k])
            if ref_axis.get("units") is None and k < n - 2 and str(layer.units[k]) != "pixel":
                # rosettasciio keeps ImageJ's z spacing without a unit; ImageJ's unit is the image's
                ref_axis["units"] = ref_axes[-1].get("units")
            _check_axis(layer, k, ref_axis, f"{where} axis {k}")


def _check_mrc(path: Path, layers):
    import mrcfile

    with mrcfile.open(str(path), permissive=True, header_only=False) as m:
        data = np.asarray(m.data)
        h = m.header
        order = [int(h.maps), int(h.mapr), int(h.mapc)]  # file dims (sections, rows, cols) -> axis 1..3
        voxel = m.voxel_size
    if data.ndim == 3 and sorted(order) == [1, 2, 3]:
        zyx = data.transpose([order.index(3), order.index(2), order.index(1)])
    else:
        zyx = data
    (layer,) = layers
    np.testing.assert_array_equal(np.asarray(layer.data)[..., ::-1, :], zyx)
    want = [float(voxel.z), float(voxel.y), float(voxel.x)][-layer.ndim:]
    if all(w > 0 for w in want):
        assert tuple(layer.scale) == pytest.approx(tuple(want), rel=1e-6)
        assert all(_unit_is(u, "angstrom") for u in layer.units)


def test_bad_real_files_are_named(tmp_path, viewer, messages):
    """Truncated and renamed real files: refused with a message naming the file, no traceback."""
    if ROOT is None:
        pytest.skip(WHY)
    src = {p.name: p for p in FILES}
    cases = []
    for name in ("EELS_SI.dm4", "fei_emd_si.emd", "test_TEM.bcf", "EDS_TEM_FePt_nanoparticles.hspy"):
        blob = src[name].read_bytes()
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(blob[: len(blob) // 2])
        cases.append(cut)
    renamed = tmp_path / "really_a_tiff.dm4"
    renamed.write_bytes(src["test_loading_image_saved_with_DM.tif"].read_bytes())
    cases.append(renamed)
    for path in cases:
        messages.clear()
        viewer.layers.clear()
        layers = viewer.open(str(path), plugin="napari-cryomat")
        errors = [m for kind, m in messages if kind == "error"]
        assert not layers, path.name
        assert errors and all(path.name in m for m in errors), (path.name, messages)
    assert "TIFF" in errors[0]
