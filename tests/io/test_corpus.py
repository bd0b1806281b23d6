"""Every real microscope file of the corpus opens right through napari's File > Open, or is refused
with a message naming the file.

The corpus (``tests/io/corpus.py``) is fetched from PyPI on first use into ``.cache/corpus`` (or
``$CRYOMAT_CORPUS_DIR``); without network the tests skip, saying why. Each claimed file (a pattern
of a napari-cryomat reader in the manifest) is opened with
``ViewerModel().open(path, plugin="napari-cryomat")`` and compared with the format's own library
read directly (``tests/io/_reference.py``, which uses none of napari-cryomat's code):

- rosettasciio formats: one layer per signal (two for complex data); each layer's data equal the
  signal's data in some axis order; the matched axes carry the file's scale and offset converted by
  *pint* into the layer's unit; energy axes are in eV, wavelength axes in nm, lengths in Å,
  reciprocal lengths in 1/Å; an uncalibrated axis is "pixel", never "1 Å".
- TIFF: data equal tifffile's series; scale and units equal rosettasciio's TIFF reader (which knows
  the FEI, Zeiss, TVIPS, DM, ImageJ, JEOL SightX, Olympus and Hamamatsu tags) converted by pint.
- MRC: data equal mrcfile's (in Z, Y, X, shown flipped in Y as 3dmod does), scale is the voxel
  size in Å.

A refusal must come as an error notification that names the file; nothing may raise.
"""

from __future__ import annotations

import fnmatch
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _reference import check_layers  # noqa: E402
from corpus import corpus_files, ensure_corpus  # noqa: E402

ROOT, WHY = ensure_corpus()

# Files that may be refused (the reference library fails on them too, or they are parts of a
# set that opens from its first file); anything else must open.
EXPECTED_REFUSALS = {
    "Nope.bcf": "not a Bruker file",
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
    assert check_layers(path, list(layers)) == []


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
