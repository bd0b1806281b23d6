"""Fuzz the napari readers with damaged files: every case must end in a clean refusal or a layer.

Seed files are written with the project's own writers, ``mrcfile``, ``tifffile`` and rosettasciio
(MRC with every mode, FEI extended header, volume stack, permuted axes, gzip/bz2; TIFF plain,
zlib/LZMA, tiled, ImageJ, labels; EMSA ``.msa``; HyperSpy ``.hspy``). Each case mutates one
seed (seeded, so a run can be repeated case by case):

- ``truncate``   cut the file at a random length (or just after the header);
- ``flip``       XOR 1-32 random bytes, mostly in the first kilobytes;
- ``field``      garbage in one header field (MRC words, TIFF IFD entries, MSA keywords, HDF5
                 superblock bytes): 0, -1, huge, NaN/inf, random;
- ``size``       bytes appended, inserted or cut out of the middle;
- ``special``    a FIFO, folder, device link or broken link carrying the reader's extension;
- ``bomb``       compressed data that expands far beyond its file (a 2 MB .mrc.gz holding
                 2 GiB, a 1 GiB zlib TIFF page, headers promising terabytes).

Each case runs in a forked child with an address-space cap (``RLIMIT_AS``) and a timeout. The
child opens the file through the napari entry point, ``napari_cryomat.io.<fmt>.napari_get_reader
(path)(path)``, as napari does, then touches what came back as napari would: checks the layer
calibration, builds the napari layer and computes the middle slice. Outcomes:

- ``refused``   the entry returned napari's "nothing to add" and notified an error naming the file;
- ``unnamed``   refused, but the message does not name the file;
- ``opened``    layers came back and survived the first look;
- ``escaped``   an exception left the napari entry point (napari shows a traceback);
- ``hang``      no answer within the timeout (8 times longer for the real multi-GiB bombs);
- ``memory``    MemoryError, or the child's resident memory grew by more than ``--mem-mb``;
- ``crash``     the child died by a signal (segfault inside C code); its Python stack is kept;
- ``late``      the layers came back but failed at first look (bad scale, slice raised);
- ``changed``   the source file's bytes, size or mtime changed (checked in the parent).

    python benchmarks/fuzz.py                      # 10,000 cases, seed 0
    python benchmarks/fuzz.py -n 500 --seed 3 --readers mrc --verbose
    python benchmarks/fuzz.py --case 1234          # rerun one case and print its details

Issue #11 targets: zero escaped, hang, memory, late and changed; crashes only inside third-party
C code (each listed at the end of the run).
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import json
import os
import random
import resource
import select
import shutil
import signal
import stat
import struct
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OUTCOMES = ("refused", "unnamed", "opened", "escaped", "hang", "memory", "crash", "late", "changed")
BAD = ("escaped", "hang", "memory", "late", "changed")
ROWS = ("mrc", "tiff", "msa", "hspy")
MODULE_OF = {"mrc": "mrc", "tiff": "tiff", "msa": "spectral", "hspy": "spectral"}
MUTATIONS = ("truncate", "flip", "field", "size", "special", "bomb")
_WEIGHTS = {"truncate": 20, "flip": 28, "field": 30, "size": 14, "special": 4, "bomb": 4}
_ROW_WEIGHTS = {"mrc": 40, "tiff": 30, "msa": 15, "hspy": 15}


# -------------------------------------------------------------------------------------------------
# seed files
# -------------------------------------------------------------------------------------------------
def make_seeds(folder: Path) -> dict[str, list[Path]]:
    """Valid files of every kind the readers claim, made with the project's writers and the
    formats' own libraries."""
    import mrcfile
    import tifffile

    from napari_cryomat.io.spectral import _rsciio_module, write_msa
    from napari_cryomat.io.writers import write_labels_mrc, write_labels_tiff, write_mrc

    rng = np.random.default_rng(12345)
    folder.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, list[Path]] = defaultdict(list)

    def p(name):
        return folder / name

    # ---- MRC
    vol = rng.normal(size=(4, 24, 20)).astype(np.float32)
    seeds["mrc"].append(Path(write_mrc(str(p("vol.mrc")), vol, (2.0, 2.5, 2.5))))
    seeds["mrc"] += write_labels_mrc(str(p("labels.mrc")), (vol > 0).astype(np.uint8), {"scale": (1, 1, 1)})
    for dtype, name in ((np.int16, "m1.mrc"), (np.uint16, "m6.st"), (np.int8, "m0.rec"), (np.float16, "m12.ali"),
                        (np.complex64, "m4.map")):
        data = (rng.normal(size=(3, 16, 18)) * 20).astype(dtype)
        with mrcfile.new(str(p(name)), overwrite=True) as m:
            m.set_data(data)
            m.voxel_size = 1.5
        seeds["mrc"].append(p(name))
    with mrcfile.new(str(p("img2d.mrc")), overwrite=True) as m:
        m.set_data(rng.normal(size=(32, 30)).astype(np.float32))
        m.voxel_size = 0.8
    seeds["mrc"].append(p("img2d.mrc"))
    with mrcfile.new(str(p("fei.mrc")), overwrite=True) as m:
        m.set_data(rng.normal(size=(3, 16, 16)).astype(np.float32))
        m.set_extended_header(np.frombuffer(rng.bytes(768 * 3), dtype=np.uint8).copy())
        m.header.exttyp = b"FEI1"
        m.voxel_size = 3.0
    seeds["mrc"].append(p("fei.mrc"))
    with mrcfile.new(str(p("vstack.mrc")), overwrite=True) as m:
        m.set_data(rng.normal(size=(2, 3, 12, 14)).astype(np.float32))  # volume stack, ispg 401
        m.voxel_size = 2.0
    seeds["mrc"].append(p("vstack.mrc"))
    with mrcfile.new(str(p("axes.map")), overwrite=True) as m:
        m.set_data(rng.normal(size=(5, 6, 7)).astype(np.float32))
        m.header.mapc, m.header.mapr, m.header.maps = 3, 1, 2
        m.voxel_size = 1.2
    seeds["mrc"].append(p("axes.map"))
    for comp, suffix in (("gzip", ".gz"), ("bzip2", ".bz2")):
        name = f"tomo.rec{suffix}"
        with mrcfile.new(str(p(name)), overwrite=True, compression=comp) as m:
            m.set_data(rng.normal(size=(3, 16, 16)).astype(np.float32))
            m.voxel_size = 4.0
        seeds["mrc"].append(p(name))

    # ---- TIFF
    stack = (rng.normal(size=(4, 32, 24)) * 100).astype(np.float32)
    tifffile.imwrite(p("plain.tif"), stack, photometric="minisblack")
    tifffile.imwrite(p("zlib.tif"), stack, photometric="minisblack", compression="zlib")
    tifffile.imwrite(p("lzma.tiff"), stack.astype(np.uint16), photometric="minisblack", compression="lzma")
    tifffile.imwrite(p("tiled.tif"), (rng.normal(size=(64, 64)) * 100).astype(np.int16), tile=(32, 32),
                     compression="zlib", photometric="minisblack")
    tifffile.imwrite(p("imagej.tif"), stack, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"spacing": 0.5, "unit": "nm", "axes": "ZYX"})
    tifffile.imwrite(p("big.tif"), stack[:2], bigtiff=True, photometric="minisblack")
    write_labels_tiff(str(p("labels.tif")), (stack > 0).astype(np.uint16), {"scale": (1, 1, 1)})
    seeds["tiff"] += [p(n) for n in ("plain.tif", "zlib.tif", "lzma.tiff", "tiled.tif", "imagej.tif", "big.tif",
                                     "labels.tif")]

    # ---- MSA
    energy = np.arange(64) * 10.0 + 100.0
    write_msa(p("spec.msa"), rng.poisson(50, 64).astype(float), energy=energy, title="eds", signal_type="EDS")
    write_msa(p("eels.msa"), rng.poisson(500, 48).astype(float), energy=np.arange(48) * 0.5 + 280, title="eels",
              signal_type="EELS")
    seeds["msa"] += [p("spec.msa"), p("eels.msa")]

    # ---- HSPY
    hspy = _rsciio_module(".hspy")
    e_ax = {"name": "Energy", "units": "eV", "size": 32, "offset": 200.0, "scale": 5.0, "navigate": False,
            "index_in_array": 2}
    si = {
        "data": rng.poisson(20, (6, 7, 32)).astype(np.float32),
        "axes": [{"name": "y", "units": "nm", "size": 6, "offset": 0.0, "scale": 0.5, "navigate": True,
                  "index_in_array": 0},
                 {"name": "x", "units": "nm", "size": 7, "offset": 0.0, "scale": 0.5, "navigate": True,
                  "index_in_array": 1},
                 e_ax],
        "metadata": {"General": {"title": "si"}, "Signal": {"signal_type": "EDS_TEM"}},
        "original_metadata": {},
        "tmp_parameters": {},
        "attributes": {"_lazy": False},
        "learning_results": {},
        "models": {},
        "package_info": {"name": "napari-cryomat", "version": "fuzz"},
    }
    img = {
        "data": rng.normal(size=(20, 24)).astype(np.float32),
        "axes": [{"name": "y", "units": "nm", "size": 20, "offset": 0.0, "scale": 0.1, "navigate": False,
                  "index_in_array": 0},
                 {"name": "x", "units": "nm", "size": 24, "offset": 0.0, "scale": 0.1, "navigate": False,
                  "index_in_array": 1}],
        "metadata": {"General": {"title": "haadf"}, "Signal": {"signal_type": ""}},
        "original_metadata": {},
        "tmp_parameters": {},
        "attributes": {"_lazy": False},
        "learning_results": {},
        "models": {},
        "package_info": {"name": "napari-cryomat", "version": "fuzz"},
    }
    for name, sig, comp in (("si.hspy", si, "gzip"), ("img.hspy", img, None)):
        hspy.file_writer(str(p(name)), sig, compression=comp, show_progressbar=False)
        seeds["hspy"].append(p(name))
    return {k: [Path(x) for x in v] for k, v in seeds.items()}


_BOMB_SECTION = (512, 512)  # float32 section of the MRC bombs (1 MiB)


def make_bombs(folder: Path, *, full_gib: float = 2.0, quick: bool = False) -> dict[str, list[tuple[Path, bool]]]:
    """Compressed files that expand far beyond their size. ``(path, slow)`` pairs; ``slow`` ones
    really hold ``full_gib`` GiB (a reader that streams them takes seconds)."""
    import zlib

    import mrcfile.utils  # noqa: F401  (header layout comes from mrcfile)

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[tuple[Path, bool]]] = defaultdict(list)
    ny, nx = _BOMB_SECTION
    section = ny * nx * 4

    def header(nz, *, nsymbt=0):
        import mrcfile

        with mrcfile.new(str(folder / "_hdr.mrc"), overwrite=True) as m:
            m.set_data(np.zeros((1, 4, 4), np.float32))
            m.voxel_size = 1.0
        raw = bytearray((folder / "_hdr.mrc").read_bytes()[:1024])
        raw[0:12] = struct.pack("<3i", nx, ny, nz)
        raw[28:40] = struct.pack("<3i", nx, ny, nz)  # mx, my, mz
        raw[40:52] = struct.pack("<3f", float(nx), float(ny), float(nz))  # cella: 1 Å voxels
        raw[92:96] = struct.pack("<i", nsymbt)
        return bytes(raw)

    def write(name, nz_claimed, nz_real, comp="gzip"):
        path = folder / name
        opener = gzip.open if comp == "gzip" else bz2.open
        zeros = bytes(section)
        with opener(path, "wb", compresslevel=6 if comp == "gzip" else 9) as f:
            f.write(header(nz_claimed))
            for _ in range(nz_real):
                f.write(zeros)
        return path

    full_nz = int(full_gib * 2**30 // section)
    if not quick:
        out["mrc"].append((write("bomb_full.mrc.gz", full_nz, full_nz), True))
    out["mrc"].append((write("bomb_small_true.rec.gz", 8, 8), False))           # honest, small
    out["mrc"].append((write("bomb_claims_tib.mrc.gz", 1 << 20, 4), False))     # claims 1 TiB, holds 4 MiB
    out["mrc"].append((write("bomb_claims_2g.mrc.gz", full_nz, 16), False))     # claims 2 GiB, holds 16 MiB
    out["mrc"].append((write("bomb_trailing.mrc.gz", 2, 64), False))            # claims 2 MiB, holds 64 MiB
    out["mrc"].append((write("bomb_claims_tib.st.bz2", 1 << 20, 8, "bzip2"), False))
    # ---- TIFF: one zlib page of 1 GiB (or 64 MiB when quick) zeros, written tile by tile
    import tifffile

    side = 4096 if quick else 32768
    tile = (1024, 1024)
    n_tiles = (side // tile[0]) * (side // tile[1])
    tiles = (np.zeros(tile, np.uint8) for _ in range(n_tiles))
    tpath = folder / "bomb_page.tif"
    tifffile.imwrite(tpath, tiles, shape=(side, side), dtype=np.uint8, tile=tile, compression="zlib",
                     photometric="minisblack")
    out["tiff"].append((tpath, not quick))
    # ---- MSA: a header promising a billion channels
    text = (folder.parent / "seeds" / "spec.msa").read_text()
    mpath = folder / "bomb_npoints.msa"
    mpath.write_text(text.replace("#NPOINTS     : 64", "#NPOINTS     : 1000000000"))
    out["msa"].append((mpath, False))
    del zlib
    return out


# -------------------------------------------------------------------------------------------------
# mutations
# -------------------------------------------------------------------------------------------------
_MRC_INT_FIELDS = {"nx": 0, "ny": 4, "nz": 8, "mode": 12, "nxstart": 16, "mx": 28, "my": 32, "mz": 36,
                   "mapc": 64, "mapr": 68, "maps": 72, "ispg": 88, "nsymbt": 92, "nversion": 108,
                   "nlabl": 220}
_MRC_FLOAT_FIELDS = {"cella.x": 40, "cella.y": 44, "cella.z": 48, "cellb.alpha": 52, "dmin": 76, "dmax": 80,
                     "dmean": 84, "origin.x": 196, "origin.y": 200, "origin.z": 204, "rms": 216}
_MRC_BYTE_FIELDS = {"exttyp": 104, "map": 208, "machst": 212}
_INT_GARBAGE = (0, -1, 1, 2, 3, 101, 401, 630, 2**31 - 1, -(2**31), 2**20, 2**24, 65536, 1000)
_FLOAT_GARBAGE = (0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e38, 1e-38, 1e-30, 1e30)
_MSA_KEYS = ("#NPOINTS", "#NCOLUMNS", "#XPERCHAN", "#OFFSET", "#DATATYPE", "#XUNITS", "#SIGNALTYPE",
             "#FORMAT", "#VERSION", "#SPECTRUM")
_MSA_GARBAGE = ("0", "-1", "nan", "inf", "1e300", "abc", "", "99999999999", "3.5", "XY", "Y", "\x00\xff")


def _mutate_field(raw: bytearray, row: str, rng: random.Random) -> str:
    if row == "mrc":
        kind = rng.choice(("int", "int", "float", "bytes"))
        if kind == "int":
            name = rng.choice(sorted(_MRC_INT_FIELDS))
            value = rng.choice(_INT_GARBAGE + (rng.randint(-(2**31), 2**31 - 1),))
            struct.pack_into("<i", raw, _MRC_INT_FIELDS[name], value)
        elif kind == "float":
            name = rng.choice(sorted(_MRC_FLOAT_FIELDS))
            value = rng.choice(_FLOAT_GARBAGE)
            struct.pack_into("<f", raw, _MRC_FLOAT_FIELDS[name], value)
        else:
            name = rng.choice(sorted(_MRC_BYTE_FIELDS))
            value = bytes(rng.getrandbits(8) for _ in range(4))
            raw[_MRC_BYTE_FIELDS[name]:_MRC_BYTE_FIELDS[name] + 4] = value
        return f"{name}={value!r}"
    if row == "tiff":
        return _mutate_tiff_ifd(raw, rng)
    if row == "msa":
        text = raw.decode("latin-1")
        key = rng.choice(_MSA_KEYS)
        lines = text.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.startswith(key):
                value = rng.choice(_MSA_GARBAGE)
                lines[i] = f"{key.ljust(12)}: {value}\n"
                raw[:] = "".join(lines).encode("latin-1")
                return f"{key}={value!r}"
        return "no-field"
    # hspy: the HDF5 superblock and first object headers live in the first 2 KB
    off = rng.randrange(0, min(len(raw), 2048))
    value = rng.choice((b"\x00", b"\xff", bytes([rng.getrandbits(8)])))
    raw[off:off + 1] = value
    return f"byte@{off}={value!r}"


def _mutate_tiff_ifd(raw: bytearray, rng: random.Random) -> str:
    """Garbage in one entry of the first IFD (classic or BigTIFF, either byte order)."""
    order = "<" if raw[:2] == b"II" else ">"
    try:
        magic = struct.unpack_from(order + "H", raw, 2)[0]
        if magic == 43:  # BigTIFF
            ifd = struct.unpack_from(order + "Q", raw, 8)[0]
            n = struct.unpack_from(order + "Q", raw, ifd)[0]
            entry0, esize, vfmt, voff = ifd + 8, 20, "Q", 12
        else:
            ifd = struct.unpack_from(order + "I", raw, 4)[0]
            n = struct.unpack_from(order + "H", raw, ifd)[0]
            entry0, esize, vfmt, voff = ifd + 2, 12, "I", 8
        k = rng.randrange(n)
        e = entry0 + k * esize
        tag = struct.unpack_from(order + "H", raw, e)[0]
        what = rng.choice(("value", "value", "count", "type"))
        if what == "value":
            value = rng.choice((0, 1, 2**32 - 1, 2**31, 65535, 100000, rng.getrandbits(32)))
            if vfmt == "Q":
                struct.pack_into(order + "Q", raw, e + voff, value)
            else:
                struct.pack_into(order + "I", raw, e + voff, value)
        elif what == "count":
            value = rng.choice((0, 2**31, 2**32 - 1, 1000000))
            struct.pack_into(order + ("Q" if vfmt == "Q" else "I"), raw, e + 4, value)
        else:
            value = rng.choice((0, 13, 255, 65535))
            struct.pack_into(order + "H", raw, e + 2, value)
        return f"tag{tag}.{what}={value}"
    except (struct.error, ValueError):
        off = rng.randrange(0, min(len(raw), 512))
        raw[off] = rng.getrandbits(8)
        return f"byte@{off}"


def _header_end(row: str, raw: bytes) -> int:
    if row == "mrc":
        return 1024
    if row == "msa":
        i = raw.find(b"#SPECTRUM")
        return max(i, 1)
    return min(len(raw) // 4, 4096)


@dataclass
class Case:
    index: int
    row: str
    mutation: str
    seed_file: str
    detail: str = ""
    path: str = ""
    slow: bool = False
    expected_special: str = ""


def build_case(index: int, row: str, mutation: str, seeds: dict, bombs: dict, folder: Path, rng: random.Random) -> Case:
    seed = rng.choice(seeds[row])
    case = Case(index, row, mutation, seed.name)
    name = f"c{index:05d}_{seed.name}"
    out = folder / name
    if mutation == "special":
        kind = rng.choice(("fifo", "dir", "zero", "null", "broken", "fifo"))
        case.detail = kind
        if kind == "fifo":
            os.mkfifo(out)
        elif kind == "dir":
            out.mkdir()
            (out / "inside.txt").write_text("x")
        elif kind == "zero":
            os.symlink("/dev/zero", out)
        elif kind == "null":
            os.symlink("/dev/null", out)
        else:
            os.symlink(folder / "does-not-exist", out)
        case.path = str(out)
        case.expected_special = kind
        return case
    if mutation == "bomb":
        choices = bombs.get(row) or []
        if not choices:
            mutation = case.mutation = "size"
        else:
            path, slow = rng.choice(choices)
            case.path, case.slow, case.seed_file = str(path), slow, path.name
            case.detail = path.name
            return case
    raw = bytearray(seed.read_bytes())
    if seed.name.endswith((".gz", ".bz2")) and mutation in ("field", "truncate") and rng.random() < 0.7:
        # damage the decompressed MRC inside, then compress again (the reader sees a valid stream)
        opener = gzip if seed.name.endswith(".gz") else bz2
        inner = bytearray(opener.decompress(bytes(raw)))
        case.detail = "inner:" + _apply(inner, "mrc", mutation, rng)
        raw = bytearray(opener.compress(bytes(inner)))
    else:
        case.detail = _apply(raw, row, mutation, rng)
    out.write_bytes(bytes(raw))
    case.path = str(out)
    return case


def _apply(raw: bytearray, row: str, mutation: str, rng: random.Random) -> str:
    n = len(raw)
    if mutation == "truncate":
        hdr = _header_end(row, bytes(raw))
        cut = rng.choice((rng.randrange(0, n), rng.randrange(0, n), min(n - 1, hdr), min(n - 1, hdr + rng.randrange(1, 64)),
                          n - rng.randrange(1, 16) if n > 16 else 0))
        del raw[cut:]
        return f"cut@{cut}/{n}"
    if mutation == "flip":
        k = rng.randint(1, 32)
        span = min(n, rng.choice((512, 1024, 4096, n)))
        offs = sorted(rng.randrange(0, span) for _ in range(k))
        for o in offs:
            raw[o] ^= rng.randrange(1, 256)
        return f"{k} bytes<{span}"
    if mutation == "field":
        return _mutate_field(raw, row, rng)
    if mutation == "size":
        how = rng.choice(("append", "insert", "cut"))
        k = rng.choice((1, 3, 4, 100, 1000, 4096, rng.randrange(1, 20000)))
        where = rng.randrange(min(_header_end(row, bytes(raw)), n - 1), n)
        if how == "append":
            raw.extend(bytes(rng.getrandbits(8) for _ in range(min(k, 4096))) + bytes(max(0, k - 4096)))
        elif how == "insert":
            raw[where:where] = bytes(k)
        else:
            del raw[where:where + k]
        return f"{how} {k}@{where}"
    raise ValueError(mutation)


# -------------------------------------------------------------------------------------------------
# running one case in a forked child
# -------------------------------------------------------------------------------------------------
def _fingerprint(path: str):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return ("file", h.hexdigest(), st.st_size, st.st_mtime_ns)
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return ("dir", tuple(sorted(os.listdir(path))), st.st_mtime_ns)
    return ("special", stat.S_IFMT(st.st_mode), st.st_mtime_ns)


def _rss_kb(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _vm_size() -> int:
    return _rss_kb("VmSize") * 1024


def _mentions_memory(text: str) -> bool:
    t = text.lower()
    return "memoryerror" in t or "unable to allocate" in t or "cannot allocate memory" in t


def _touch(layers, name: str) -> str | None:
    """What napari does first with a reader's layers; returns a problem or None."""
    import napari.layers

    for item in layers:
        data, kwargs, kind = (tuple(item) + ({}, "image"))[:3]
        kwargs = dict(kwargs or {})
        scale = kwargs.get("scale")
        if scale is not None and not all(np.isfinite(s) and s > 0 for s in scale):
            return f"{name}: non-finite or non-positive scale {scale}"
        cl = kwargs.get("contrast_limits")
        if cl is not None and not (np.all(np.isfinite(cl)) and cl[1] > cl[0]):
            return f"{name}: bad contrast limits {cl}"
        layer = napari.layers.Layer.create(data, kwargs, kind)
        # a multiscale image (a big micrograph's overview pyramid) is a list of levels: napari shows the coarsest
        # first and the tools read the finest, so both are looked at
        levels = [data[0], data[-1]] if isinstance(data, list) else [data]
        for level in levels:
            lead = tuple(s // 2 for s in np.shape(level)[:-2])
            section = np.asarray(level[lead] if lead else level[...])
            if section.size and np.issubdtype(section.dtype, np.number):
                float(np.asarray(section, dtype=np.float64).ravel()[:: max(1, section.size // 1000)].sum())
        del layer
    return None


def _child(case: Case, result_fd: int, crash_log: str, mem_cap_bytes: int, mem_mb: int) -> None:
    import faulthandler
    import logging
    import warnings

    os.setpgid(0, 0)
    log = open(crash_log, "w")
    faulthandler.enable(file=log, all_threads=False)
    cap = _vm_size() + mem_cap_bytes
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS counter inherited from the parent
    except OSError:
        pass
    rss0 = _rss_kb("VmRSS")
    vm0, vmpeak0 = _rss_kb("VmSize"), _rss_kb("VmPeak")
    messages: list[str] = []
    import napari.utils.notifications as notif

    notif.show_error = lambda m, *a, **k: messages.append(("error", str(m)))  # type: ignore[assignment]
    notif.show_warning = lambda m, *a, **k: messages.append(("warning", str(m)))  # type: ignore[assignment]
    notif.show_info = lambda m, *a, **k: messages.append(("info", str(m)))  # type: ignore[assignment]
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # tifffile and rsciio log every oddity to stderr
    out = {"outcome": None, "detail": ""}
    name = os.path.basename(case.path)
    try:
        import importlib

        mod = importlib.import_module(f"napari_cryomat.io.{MODULE_OF[case.row]}")
        try:
            reader = mod.napari_get_reader(case.path)
            if reader is None:
                out.update(outcome="escaped", detail="napari_get_reader declined the path")
                raise SystemExit
            layers = reader(case.path)
        except MemoryError as exc:
            out.update(outcome="memory", detail=f"MemoryError at open: {exc}")
        except SystemExit:
            pass
        except BaseException as exc:  # noqa: BLE001 - everything that reaches napari counts
            out.update(outcome="memory" if _mentions_memory(f"{type(exc).__name__} {exc}") else "escaped",
                       detail=f"{type(exc).__name__}: {str(exc)[:300]}")
        else:
            errors = [m for kind, m in messages if kind == "error"]
            if not layers or any(len(t) == 0 or t[0] is None for t in layers):
                msg = " | ".join(errors)
                if _mentions_memory(msg):
                    out.update(outcome="memory", detail=msg[:300])
                elif errors and all(name in m or os.path.basename(os.path.realpath(case.path)) in m for m in errors):
                    out.update(outcome="refused", detail=msg[:300])
                else:
                    out.update(outcome="unnamed", detail=(msg or "no message")[:300])
            else:
                try:
                    problem = _touch(layers, name)
                except MemoryError as exc:
                    out.update(outcome="memory", detail=f"MemoryError at first look: {exc}")
                except BaseException as exc:  # noqa: BLE001
                    out.update(outcome="memory" if _mentions_memory(str(exc)) else "late",
                               detail=f"{type(exc).__name__}: {str(exc)[:300]}")
                else:
                    if problem:
                        out.update(outcome="late", detail=problem[:300])
                    else:
                        warn = [m for kind, m in messages if kind == "warning"]
                        out.update(outcome="opened", detail=" | ".join(warn)[:200])
    except BaseException as exc:  # noqa: BLE001 - the harness itself
        out.update(outcome="escaped", detail=f"harness: {type(exc).__name__}: {exc}"[:300])
    grown_mb = (_rss_kb("VmHWM") - rss0) / 1024
    vmpeak = _rss_kb("VmPeak")
    # address space reserved at once (e.g. a 2 GB bytearray for a 2 KB file): calloc'ed pages do
    # not count as resident until touched, so RSS alone would miss it
    vm_mb = (vmpeak - vm0) / 1024 if vmpeak > vmpeak0 else 0.0
    out["rss_mb"] = round(grown_mb, 1)
    out["vm_mb"] = round(vm_mb, 1)
    if out["outcome"] != "escaped":
        if grown_mb > mem_mb:
            out["detail"] = f"resident memory grew {grown_mb:.0f} MB ({out['outcome']}: {out['detail']})"[:300]
            out["outcome"] = "memory"
        elif vm_mb > 2 * mem_mb and not case.slow:
            out["detail"] = f"reserved {vm_mb:.0f} MB of address space ({out['outcome']}: {out['detail']})"[:300]
            out["outcome"] = "memory"
    os.write(result_fd, (json.dumps(out) + "\n").encode())
    os._exit(0)


def run_case(case: Case, *, timeout: float, mem_cap_gb: float = 4.0, mem_mb: int = 512,
             workdir: Path) -> dict:
    before = _fingerprint(case.path)
    r, w = os.pipe()
    crash_log = str(workdir / f"crash_{case.index}.txt")
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            _child(case, w, crash_log, int(mem_cap_gb * 2**30), mem_mb)
        finally:
            os._exit(70)
    os.close(w)
    t0 = time.monotonic()
    buf = b""
    res = None
    limit = timeout * (8 if case.slow else 1)  # a real multi-GiB bomb takes a while to stream
    while True:
        left = limit - (time.monotonic() - t0)
        if left <= 0:
            break
        ready, _, _ = select.select([r], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            buf += chunk
            if buf.endswith(b"\n"):
                res = json.loads(buf.decode())
                break
    elapsed = time.monotonic() - t0
    if res is None:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:  # still running: a hang
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            res = {"outcome": "hang", "detail": f"no answer in {limit:.0f} s"}
        else:
            if os.WIFSIGNALED(status):
                sig = signal.Signals(os.WTERMSIG(status)).name
                stack = Path(crash_log).read_text() if os.path.exists(crash_log) else ""
                res = {"outcome": "crash", "detail": f"{sig}: " + _crash_site(stack)}
            else:
                res = {"outcome": "crash", "detail": f"exit {os.WEXITSTATUS(status)} without a result"}
    else:
        os.waitpid(pid, 0)
    os.close(r)
    try:
        os.remove(crash_log)
    except OSError:
        pass
    after = _fingerprint(case.path)
    if before != after:
        res = {"outcome": "changed", "detail": f"{before} -> {after}"[:300]}
    res["seconds"] = round(elapsed, 3)
    return res


def _crash_site(stack: str) -> str:
    """The innermost Python frame of a faulthandler dump: where C code was entered."""
    frames = [ln.strip() for ln in stack.splitlines() if ln.strip().startswith("File ")]
    return frames[0][:240] if frames else "(no Python stack)"


# -------------------------------------------------------------------------------------------------
# driver
# -------------------------------------------------------------------------------------------------
def plan(n: int, seed: int, readers: tuple[str, ...], per_reader: dict | None = None) -> list[tuple[int, str, str]]:
    """(case index, reader row, mutation) for every case; ``per_reader`` fixes the count per row."""
    rng = random.Random(seed)
    rows = [r for r in ROWS if r in readers]
    rw = [_ROW_WEIGHTS[r] for r in rows]
    muts = list(_WEIGHTS)
    mw = [_WEIGHTS[m] for m in muts]
    if per_reader:
        chosen = [r for r in rows for _ in range(per_reader.get(r, 0))]
        rng.shuffle(chosen)
        return [(i, row, rng.choices(muts, mw)[0]) for i, row in enumerate(chosen)]
    return [(i, rng.choices(rows, rw)[0], rng.choices(muts, mw)[0]) for i in range(n)]


def prewarm() -> None:
    """Import what the children need once, in the parent (fork then shares it)."""
    import warnings

    import napari.layers  # noqa: F401
    import napari.utils.notifications  # noqa: F401

    import napari_cryomat.io.mrc  # noqa: F401
    import napari_cryomat.io.spectral as sp
    import napari_cryomat.io.tiff  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # napari builds its pint registry on the first layer with units: pay it once here
        napari.layers.Image(np.zeros((2, 2), np.float32), units=("angstrom", "angstrom"))
    for ext in (".msa", ".hspy"):
        try:
            sp._rsciio_module(ext)
        except Exception:  # noqa: BLE001
            pass


def run(n: int = 10_000, *, seed: int = 0, readers=ROWS, timeout: float = 20.0, quick_bombs: bool = False,
        mem_mb: int = 512, mem_cap_gb: float = 4.0, verbose: bool = False, only: int | None = None,
        keep: bool = False, progress: bool = True, per_reader: dict | None = None) -> dict:
    """Run the fuzz; returns ``{"counts": {row: Counter}, "cases": [...], "crashes": [...]}``."""
    prewarm()
    work = Path(tempfile.mkdtemp(prefix="cryomat-fuzz-"))
    try:
        seeds = make_seeds(work / "seeds")
        items = plan(n if only is None else only + 1, seed, tuple(readers), per_reader)
        if only is not None:
            items = [items[only]]
        need_bombs = any(m == "bomb" for _, _, m in items)
        bombs = make_bombs(work / "bombs", quick=quick_bombs) if need_bombs else {}
        seed_prints = {p: _fingerprint(str(p)) for ps in seeds.values() for p in ps}
        cases_dir = work / "cases"
        cases_dir.mkdir()
        counts: dict[str, Counter] = {r: Counter() for r in ROWS if r in readers}
        records, crashes = [], []
        t0 = time.monotonic()
        for k, (i, row, mutation) in enumerate(items):
            rng = random.Random(seed * 1_000_003 + i)
            case = build_case(i, row, mutation, seeds, bombs, cases_dir, rng)
            res = run_case(case, timeout=timeout, workdir=work, mem_mb=mem_mb, mem_cap_gb=mem_cap_gb)
            counts[row][res["outcome"]] += 1
            rec = {"case": i, "row": row, "mutation": case.mutation, "seed_file": case.seed_file,
                   "detail": case.detail, **res}
            records.append(rec)
            if res["outcome"] == "crash":
                crashes.append(rec)
            if verbose or (only is not None):
                print(json.dumps(rec))
            elif res["outcome"] in BAD + ("crash", "unnamed") and progress:
                print(f"  case {i} {row}/{case.mutation} {case.detail[:60]}: {res['outcome']}: {res['detail'][:200]}",
                      flush=True)
            if not keep and case.path.startswith(str(cases_dir)):
                p = Path(case.path)
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
            if progress and (k + 1) % 500 == 0:
                print(f"  ... {k + 1}/{len(items)} cases, {time.monotonic() - t0:.0f} s", flush=True)
        # the seeds themselves must be untouched too
        for p, fp in seed_prints.items():
            if _fingerprint(str(p)) != fp:
                records.append({"row": "seed", "outcome": "changed", "detail": str(p)})
        return {"counts": counts, "cases": records, "crashes": crashes,
                "seconds": time.monotonic() - t0}
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"(files kept in {work})")


def table(result: dict, title: str = "") -> str:
    counts = result["counts"]
    lines = []
    if title:
        lines.append(title)
    head = f"{'reader':<8}" + "".join(f"{o:>9}" for o in OUTCOMES) + f"{'total':>8}"
    lines.append(head)
    total = Counter()
    for row, c in counts.items():
        total.update(c)
        lines.append(f"{row:<8}" + "".join(f"{c.get(o, 0):>9}" for o in OUTCOMES) + f"{sum(c.values()):>8}")
    lines.append(f"{'all':<8}" + "".join(f"{total.get(o, 0):>9}" for o in OUTCOMES) + f"{sum(total.values()):>8}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=10_000, help="number of cases (default 10,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--readers", default=",".join(ROWS), help="comma list of mrc,tiff,msa,hspy")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case (x4 for real bombs)")
    ap.add_argument("--mem-mb", type=int, default=512, help="resident-memory growth counted as a blow-up")
    ap.add_argument("--quick-bombs", action="store_true", help="no multi-GiB bombs (faster)")
    ap.add_argument("--case", type=int, default=None, help="run only this case index, verbosely")
    ap.add_argument("--json", default=None, help="write every case record to this file")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--per-reader", default=None, help="exact case counts, e.g. mrc=150,tiff=40 (overrides -n)")
    ap.add_argument("--quiet", action="store_true", help="no per-problem lines while running")
    args = ap.parse_args(argv)
    readers = tuple(r.strip() for r in args.readers.split(",") if r.strip())
    per_reader = None
    if args.per_reader:
        per_reader = {k.strip(): int(v) for k, v in (item.split("=") for item in args.per_reader.split(","))}
        readers = tuple(per_reader)
    res = run(args.n, seed=args.seed, readers=readers, timeout=args.timeout, quick_bombs=args.quick_bombs,
              mem_mb=args.mem_mb, verbose=args.verbose, only=args.case, keep=args.keep, per_reader=per_reader,
              progress=not args.quiet)
    print()
    print(table(res, f"Fuzz of the napari readers: {sum(sum(c.values()) for c in res['counts'].values())} cases, "
                     f"seed {args.seed}, {res['seconds']:.0f} s"))
    bad = Counter()
    for rec in res["cases"]:
        if rec["outcome"] in BAD + ("unnamed",):
            bad[(rec["row"], rec["outcome"], rec["detail"].split(":")[0][:60])] += 1
    if bad:
        print("\nMost frequent problems (reader, outcome, kind):")
        for (row, outcome, kind), k in bad.most_common(25):
            print(f"  {k:>5}  {row:<5} {outcome:<8} {kind}")
    if res["crashes"]:
        print("\nCrashes (signal, innermost Python frame = where C code was entered):")
        sites = Counter((c["row"], c["detail"]) for c in res["crashes"])
        for (row, site), k in sites.most_common():
            print(f"  {k:>5}  {row:<5} {site}")
    if args.json:
        Path(args.json).write_text(json.dumps(res["cases"], indent=0, default=str))
    worst = sum(c.get(o, 0) for c in res["counts"].values() for o in BAD)
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
