"""Real-file test corpus: public EM test files fetched from PyPI when missing, never committed.

The files come from source distributions and wheels on PyPI whose projects ship their readers'
test data:

- ``hyperspy==1.7.6`` sdist: ``hyperspy/tests/io/**`` (Gatan DM3/DM4 1D/2D/3D, Velox and other
  EMD, Bruker BCF/SPX, EMSA, HyperSpy HDF5, FEI/Thermo, Zeiss, TVIPS, ImageJ and DM-exported TIFF,
  JEOL, FEI TIA, ...). These are older copies of rosettasciio's test data (GPL-3.0; fetched here,
  used under their terms, not redistributed).
- ``mrcfile==1.5.4`` sdist: ``tests/test_data`` (EMDB maps, FEI extended headers, gz/bz2; BSD).
- ``exspy==0.3.2`` wheel: its example EDS/EELS ``.hspy`` and ``.msa`` files (GPL-3.0).

Where: ``$CRYOMAT_CORPUS_DIR`` if set, else ``<repo>/.cache/corpus`` (a ``.gitignore`` of ``*``
is written inside, so git never sees it; never the user's home). Each archive is checked against
its pinned SHA-256 and unpacked once (then the archive is deleted); zip/gz members holding test
files are unpacked too.

How: the file URL is looked up in PyPI's JSON API (``https://pypi.org/pypi/<name>/json``)
and downloaded over HTTPS; if that fails (proxy, mirror), ``pip download`` is tried, which honours
the pip configuration (``PIP_INDEX_URL`` ...). Without network both fail and :func:`ensure_corpus`
returns ``None`` with the reason, and the corpus tests skip saying so.

Run ``python tests/io/corpus.py`` to fetch by hand and print what is there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Source:
    name: str  # PyPI project
    version: str
    filename: str  # the distribution file on PyPI
    sha256: str  # pinned: the test data never change under us
    members: tuple[str, ...]  # path prefixes inside the archive that hold test files
    folder: str  # where the members go in the corpus


SOURCES = (
    Source("hyperspy", "1.7.6", "hyperspy-1.7.6.tar.gz",
           "6910897f055aa31f5c29f045d879c4310b783ab0377e3cd3fa2f6ebb93a0ed87",
           ("hyperspy-1.7.6/hyperspy/tests/io/",), "hyperspy"),
    Source("mrcfile", "1.5.4", "mrcfile-1.5.4.tar.gz",
           "8fa9eb2e237d87d99b301c61bf02854dd85a451db25eefcbe142c09b36d8d601",
           ("mrcfile-1.5.4/tests/test_data/",), "mrcfile"),
    Source("exspy", "0.3.2", "exspy-0.3.2-py3-none-any.whl",
           "3596ea40eb754055d6ef343a56f6c7f63ea2433951146f8a8df2e91595928660",
           ("exspy/data/", "exspy/tests/"), "exspy"),
)

# Test data inside these archives: any file that is not Python source or packaging.
_SKIP_SUFFIXES = (".py", ".pyc", ".txt", ".rst", ".cfg", ".toml", ".yaml", ".json", ".md", ".gitignore",
                  ".in", ".png", ".npy", ".log")


def corpus_dir() -> Path:
    """The cache folder: ``$CRYOMAT_CORPUS_DIR`` or ``<repo>/.cache/corpus``."""
    env = os.environ.get("CRYOMAT_CORPUS_DIR")
    return Path(env).expanduser() if env else REPO / ".cache" / "corpus"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download_json_api(src: Source, dest: Path) -> None:
    index = os.environ.get("CRYOMAT_PYPI_URL", "https://pypi.org").rstrip("/")
    url = f"{index}/pypi/{src.name}/json"
    with urllib.request.urlopen(url, timeout=30) as r:
        info = json.load(r)
    (file_url,) = [urllib.parse.urljoin(url, u["url"]) for u in info["releases"][src.version]
                   if u["filename"] == src.filename]
    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(file_url, timeout=60) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f, 1 << 20)
    tmp.replace(dest)


def _download_pip(src: Source, dest: Path) -> None:
    binary = ["--no-binary", ":all:"] if src.filename.endswith(".tar.gz") else ["--only-binary", ":all:"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", *binary,
             "--disable-pip-version-check", "-q", "-d", tmp, f"{src.name}=={src.version}"],
            check=True, capture_output=True, timeout=900,
        )
        shutil.move(os.path.join(tmp, src.filename), dest)


def _fetch(src: Source, downloads: Path) -> Path:
    dest = downloads / src.filename
    want = src.sha256
    if dest.exists() and _sha256(dest) == want:
        return dest
    errors = []
    for how in (_download_json_api, _download_pip):
        try:
            how(src, dest)
        except Exception as exc:  # network, proxy, pip missing ...
            errors.append(f"{how.__name__}: {type(exc).__name__}: {exc}")
            continue
        got = _sha256(dest)
        if got == want:
            return dest
        errors.append(f"{how.__name__}: SHA-256 {got} is not the pinned {want}")
        dest.unlink()
    raise OSError(f"could not fetch {src.filename} from PyPI ({'; '.join(errors)})")


def _members(src: Source, archive: Path):
    """(relative path, bytes reader) of the test files inside ``archive``."""
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.startswith(src.members):
                    prefix = next(p for p in src.members if m.name.startswith(p))
                    yield m.name[len(prefix):], tar.extractfile(m).read()
    else:
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if name.startswith(src.members) and not name.endswith("/"):
                    yield name, z.read(name)


def _unpack(src: Source, archive: Path, out: Path) -> None:
    for rel, blob in _members(src, archive):
        if rel.lower().endswith(_SKIP_SUFFIXES) or "/." in "/" + rel:
            continue
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        low = rel.lower()
        if low.endswith(".zip"):  # zipped test files (FEI EMD, TIFF): unpack next to the zip
            import io

            with zipfile.ZipFile(io.BytesIO(blob)) as z:
                for name in z.namelist():
                    if name.endswith("/") or name.lower().endswith(_SKIP_SUFFIXES):
                        continue
                    dest = target.parent / Path(name).name
                    dest.write_bytes(z.read(name))
        elif low.endswith((".tif.gz", ".tiff.gz")):  # gzipped TIFF test files
            target.with_suffix("").write_bytes(gzip.decompress(blob))
        elif low.endswith(".tar.gz"):
            continue
        else:
            target.write_bytes(blob)


def ensure_corpus() -> tuple[Path | None, str]:
    """Fetch and unpack the corpus when missing. Returns (folder, "") or (None, reason).

    Several processes may call it at once (a lock file serialises them); the downloaded archives
    are deleted once unpacked (the ``.complete`` stamp records what was unpacked).
    """
    root = corpus_dir()
    done = root / ".complete"
    stamp = ",".join(f"{s.filename}:{s.sha256}" for s in SOURCES)
    if done.exists() and done.read_text() == stamp:
        return root, ""
    try:
        import fcntl

        root.mkdir(parents=True, exist_ok=True)
        (root / ".gitignore").write_text("*\n")
        with open(root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if done.exists() and done.read_text() == stamp:
                return root, ""
            downloads = root / "_downloads"
            downloads.mkdir(exist_ok=True)
            for src in SOURCES:
                archive = _fetch(src, downloads)
                out = root / src.folder
                if out.exists():
                    shutil.rmtree(out)
                _unpack(src, archive, out)
            done.write_text(stamp)
            shutil.rmtree(downloads, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001 - no network, no disk: the tests skip with the reason
        return None, f"real-file corpus not available: {exc}"
    return root, ""


def corpus_file(name: str, *, rosettasciio: bool = True) -> Path:
    """The corpus file called ``name``; the test skips, saying why, when the corpus or the file is missing, or
    rosettasciio where the test opens the file through it (``rosettasciio=False``: mrcfile or tifffile opens it)."""
    import pytest

    if rosettasciio:
        pytest.importorskip("rsciio")
    root, why = ensure_corpus()
    if root is None:
        pytest.skip(f"corpus not available: {why}")
    found = sorted(root.rglob(name))
    if not found:
        pytest.skip(f"{name} is not in the corpus")
    return found[0]


def corpus_files(root: Path) -> list[Path]:
    """Every test file of the corpus, sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and "_downloads" not in p.parts and p.suffix.lower() != ".part")


def claimed_files(root: Path, manifest: Path | None = None) -> list[Path]:
    """Corpus files that a napari-cryomat reader pattern (in ``manifest``) claims."""
    import fnmatch

    import yaml

    manifest = manifest or REPO / "napari_cryomat" / "napari.yaml"
    readers = yaml.safe_load(manifest.read_text())["contributions"]["readers"]
    pats = [p.lower() for r in readers for p in r["filename_patterns"]]
    return [p for p in corpus_files(root) if any(fnmatch.fnmatch(p.name.lower(), pat) for pat in pats)]


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for comp in (".gz", ".bz2"):
        if name.endswith(comp):
            return Path(name[: -len(comp)]).suffix + comp
    return path.suffix.lower()


def survey(files: list[Path], root: Path) -> dict:
    """Open every file as napari's File > Open does and sort the outcomes:
    ``right`` (matches the reference), ``refused`` (no layer, an error naming the file), ``wrong``
    (opened, but data/axes/calibration/units/layer count differ), ``traceback`` (an exception reached
    napari), ``silent`` (no layer and no message naming the file), ``no reader``."""
    import warnings

    import napari.utils.notifications as notifications
    import npe2
    from napari.components import ViewerModel

    sys.path.insert(0, str(Path(__file__).parent))
    from _reference import check_layers

    pm = npe2.PluginManager.instance()
    if "napari-cryomat" not in pm:
        pm.discover(include_npe1=False)
    seen: list[tuple[str, str]] = []
    notifications.show_error = lambda m, *a, **k: seen.append(("error", str(m)))
    notifications.show_warning = lambda m, *a, **k: seen.append(("warning", str(m)))
    viewer = ViewerModel()
    rows = []
    for path in files:
        seen.clear()
        viewer.layers.clear()
        detail = ""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                layers = list(viewer.open(str(path), plugin="napari-cryomat"))
        except Exception as exc:  # noqa: BLE001
            text = f"{type(exc).__name__}: {exc}"
            outcome = "no reader" if "reader" in text and ("compatible" in text or "does not exist" in text) else "traceback"
            rows.append((path, outcome, text[:200]))
            continue
        errors = [m for kind, m in seen if kind == "error"]
        if not layers:
            ok = errors and all(path.name in m for m in errors)
            rows.append((path, "refused" if ok else "silent", " | ".join(errors)[:200]))
            continue
        try:
            problems = check_layers(path, layers)
        except Exception as exc:  # noqa: BLE001 - the reference library cannot read it
            problems = [f"reference fails: {type(exc).__name__}: {exc}"]
        rows.append((path, "right" if not problems else "wrong", "; ".join(problems)[:200] or detail))
    return {"rows": rows, "root": root}


def print_table(result: dict, *, verbose: bool = False) -> None:
    from collections import Counter, defaultdict

    outcomes = ("right", "refused", "wrong", "traceback", "silent", "no reader")
    by_fmt: dict[str, Counter] = defaultdict(Counter)
    for path, outcome, _ in result["rows"]:
        by_fmt[_format_of(path)][outcome] += 1
    head = f"{'format':<10}" + "".join(f"{o:>11}" for o in outcomes) + f"{'files':>8}"
    print(head)
    print("-" * len(head))
    total = Counter()
    for fmt in sorted(by_fmt):
        c = by_fmt[fmt]
        total.update(c)
        print(f"{fmt:<10}" + "".join(f"{c[o]:>11}" for o in outcomes) + f"{sum(c.values()):>8}")
    print("-" * len(head))
    print(f"{'all':<10}" + "".join(f"{total[o]:>11}" for o in outcomes) + f"{sum(total.values()):>8}")
    if verbose:
        for path, outcome, detail in result["rows"]:
            if outcome not in ("right",):
                print(f"{outcome:>10}  {path.relative_to(result['root'])}: {detail}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true", help="open every claimed file and print outcomes by format")
    ap.add_argument("--manifest", type=Path, help="napari.yaml whose reader patterns define the claimed files")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every file that did not open right")
    args = ap.parse_args()
    folder, why = ensure_corpus()
    if folder is None:
        sys.exit(why)
    files = corpus_files(folder)
    print(f"{len(files)} files in {folder}")
    if args.table:
        claimed = claimed_files(folder, args.manifest)
        print(f"{len(claimed)} claimed by napari-cryomat's readers")
        print_table(survey(claimed, folder), verbose=args.verbose)
