"""What a file is, by its first bytes, and cheap structural checks before a library opens it.

Readers call :func:`sniff` to tell a file's real format from its extension (a TIFF renamed
``.dm4``, a JEOL ``.map`` that is not an MRC map) and :func:`check_structure` to refuse a
truncated DigitalMicrograph or HDF5 file with a message instead of letting a C library read past
its end. Nothing here reads more than the first few kilobytes of a file.

Examples
--------
>>> sniff("tomo.mrc")            # doctest: +SKIP
'mrc'
>>> describe("tiff")
'a TIFF image'
"""

from __future__ import annotations

import os
import struct

from napari_cryomat.io._guard import refuse_special_file

__all__ = ["sniff", "describe", "check_structure", "probe_hdf5", "read_head", "is_mrc_header"]

_HDF5_SIG = b"\x89HDF\r\n\x1a\n"

_DESCRIPTIONS = {
    "tiff": "a TIFF image",
    "hdf5": "an HDF5 file (.hspy, .emd, .h5)",
    "dm3": "a Gatan DigitalMicrograph 3 file (.dm3)",
    "dm4": "a Gatan DigitalMicrograph 4 file (.dm4)",
    "mrc": "an MRC/CCP4 map",
    "msa": "an EMSA/MSA spectrum (.msa)",
    "bcf": "a Bruker composite file (.bcf)",
    "ser": "an FEI TIA series file (.ser)",
    "jeol": "a JEOL Analysis Station file",
    "blockfile": "a NanoMegas blockfile (.blo)",
    "xml": "an XML text file",
    "zip": "a ZIP archive",
    "gzip": "a gzip-compressed file",
    "bzip2": "a bzip2-compressed file",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "text": "a text file",
    "empty": "an empty file",
}


def read_head(path, n: int = 4096) -> bytes:
    """The first ``n`` bytes of a regular file (special files are refused first)."""
    refuse_special_file(path)
    with open(path, "rb") as f:
        return f.read(n)


def is_mrc_header(head: bytes, file_size: int) -> bool:
    """True for an MRC/CCP4 header: ``MAP `` at byte 208, or (old files) dimensions and mode that
    are plausible and fit the file."""
    if len(head) < 224:
        return False
    if head[208:212] == b"MAP ":
        return True
    for order in "<>":
        nx, ny, nz, mode = struct.unpack(order + "4i", head[:16])
        nsymbt = struct.unpack(order + "i", head[92:96])[0]
        bytes_per = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2}.get(mode)
        if bytes_per and 0 < nx < 1 << 20 and 0 < ny < 1 << 20 and 0 < nz < 1 << 24 and 0 <= nsymbt < 1 << 30:
            if 1024 + nsymbt + nx * ny * nz * bytes_per == file_size:
                return True
    return False


def sniff(path) -> str:
    """The format of ``path`` by content: a key of :data:`_DESCRIPTIONS`, or ``"unknown"``.

    Special files (FIFO, device, folder) are refused with ``ValueError`` before anything is read.
    """
    head = read_head(path)
    size = os.stat(path).st_size
    return sniff_bytes(head, size)


def sniff_bytes(head: bytes, size: int) -> str:
    if not head:
        return "empty"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:8] == _HDF5_SIG or any(head[o:o + 8] == _HDF5_SIG for o in (512, 1024, 2048)):
        return "hdf5"
    if head[:4] == b"\x00\x00\x00\x03":
        return "dm3"
    if head[:4] == b"\x00\x00\x00\x04":
        return "dm4"
    if head[:8] == b"AAMVHFSS":
        return "bcf"
    if head[:4] == b"II\x97\x01":
        return "ser"
    if head[:6] == b"IMGBLO":
        return "blockfile"
    if head[4:12] in (b"JED-2200", b"PTTDFILE"):
        return "jeol"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if is_mrc_header(head, size):
        return "mrc"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:7].upper() == b"#FORMAT":
        return "msa"
    if text[:5] == b"<?xml":
        return "xml"
    if head[:512].isascii() and b"\x00" not in head[:512]:
        return "text"
    return "unknown"


def describe(kind: str) -> str:
    """A few words for a :func:`sniff` result, for messages."""
    return _DESCRIPTIONS.get(kind, "a file of another type")


def check_structure(path, kind: str) -> None:
    """Raise ``ValueError`` (naming the file) if the header of a DM or HDF5 file says the file is
    longer than it is (a truncated transfer), or if its HDF5 superblock is damaged."""
    name = os.path.basename(os.fspath(path))
    size = os.stat(path).st_size
    head = read_head(path, 4096)
    if kind in ("dm3", "dm4"):
        _check_dm(name, head, size, kind)
    elif kind == "hdf5":
        _check_hdf5(name, head, size)
    elif kind == "bcf":
        _check_bcf(name, head, size)
    elif kind == "ser":
        _check_ser(name, path, head, size)


_PROBE = r"""
import resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
cap = int(sys.argv[2]) if hard == resource.RLIM_INFINITY else min(int(sys.argv[2]), hard)
try:
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
except (ValueError, OSError):
    pass
import h5py

def visit(name, obj):
    for key in obj.attrs.keys():
        obj.attrs[key]
    if isinstance(obj, h5py.Dataset):
        obj.shape, obj.dtype, obj.chunks

with h5py.File(sys.argv[1], "r") as f:
    for key in f.attrs.keys():
        f.attrs[key]
    f.visititems(visit)
print("ok")
"""


def probe_hdf5(path, *, timeout: float | None = None) -> None:
    """Walk an HDF5 file's structure (groups, datasets, attributes; no data) in a separate
    process, so that a damaged file that makes the HDF5 C library crash or loop forever is
    refused with a message instead of taking napari down. Raises ``ValueError`` naming the file.

    ``CRYOMAT_HDF5_PROBE=0`` turns the probe off; ``CRYOMAT_HDF5_PROBE_TIMEOUT`` (s, default 10)
    sets its patience.
    """
    import subprocess
    import sys

    if os.environ.get("CRYOMAT_HDF5_PROBE", "1") == "0" or getattr(sys, "frozen", False):
        return  # turned off, or a frozen app whose executable is not a Python interpreter
    name = os.path.basename(os.fspath(path))
    timeout = float(os.environ.get("CRYOMAT_HDF5_PROBE_TIMEOUT", timeout or 10.0))
    cap = str(4 << 30)
    try:
        run = subprocess.run([sys.executable, "-c", _PROBE, os.fspath(path), cap], capture_output=True,
                             timeout=timeout, text=True)
    except subprocess.TimeoutExpired:
        raise ValueError(f"{name}: the HDF5 library did not finish reading its structure in {timeout:.0f} s "
                         "(a damaged file makes it loop). The file is damaged; copy it again.") from None
    except OSError:  # cannot start a process here: the superblock check has to do
        return
    if run.returncode == 0:
        return
    if run.returncode < 0:
        raise ValueError(f"{name}: the HDF5 library crashed reading its structure (signal {-run.returncode}); "
                         "the file is damaged. Copy it again.")
    last = (run.stderr.strip().splitlines() or ["unknown error"])[-1]
    if "No module named" in last:
        return  # no h5py in this interpreter: the reader will say what to install
    raise ValueError(f"{name}: its HDF5 structure cannot be read ({last[:200]}); the file is damaged.")


def _truncated(name: str, expected: int, size: int, what: str = "header") -> ValueError:
    return ValueError(
        f"{name}: the file is truncated: its {what} says {expected:,} bytes, the file has {size:,} "
        f"({100 * size / max(expected, 1):.0f} %). Copy it again from the microscope PC."
    )


def _check_bcf(name: str, head: bytes, size: int) -> None:
    """Bruker SFS container: ``n_chunks * chunk_size`` bytes after a 0x118-byte header."""
    if len(head) < 0x14C:
        raise ValueError(f"{name}: too short for a Bruker BCF file ({size} bytes).")
    (chunk,) = struct.unpack("<I", head[0x128:0x12C])
    (n_chunks,) = struct.unpack("<I", head[0x148:0x14C])
    expected = n_chunks * chunk + 0x118
    if chunk == 0 or size < n_chunks * chunk:
        raise _truncated(name, expected, size, "Bruker container header")


def _check_ser(name: str, path, head: bytes, size: int) -> None:
    """FEI TIA series: every element offset in the offset table lies inside the file."""
    if len(head) < 30:
        raise ValueError(f"{name}: too short for a TIA .ser file ({size} bytes).")
    (version,) = struct.unpack("<H", head[4:6])
    wide = version >= 0x220
    valid = struct.unpack("<I", head[18:22])[0]
    table = struct.unpack("<Q" if wide else "<I", head[22:30] if wide else head[22:26])[0]
    width = 8 if wide else 4
    if table + valid * width > size:
        raise _truncated(name, table + valid * width, size, "offset table")
    with open(path, "rb") as f:
        f.seek(table)
        raw = f.read(valid * width)
    import numpy as np

    offsets = np.frombuffer(raw, dtype="<u8" if wide else "<u4")
    if offsets.size and int(offsets.max()) >= size:
        raise _truncated(name, int(offsets.max()), size, "offset table")


def _check_dm(name: str, head: bytes, size: int, kind: str) -> None:
    if kind == "dm3":
        if len(head) < 16:
            raise ValueError(f"{name}: too short for a DigitalMicrograph file ({size} bytes).")
        (declared,) = struct.unpack(">I", head[4:8])
        expected = declared + 12  # header; the 8-byte end marker is not always there
    else:
        if len(head) < 24:
            raise ValueError(f"{name}: too short for a DigitalMicrograph file ({size} bytes).")
        (declared,) = struct.unpack(">Q", head[4:12])
        expected = declared + 16
    if size < expected:
        raise _truncated(name, expected, size)


def _check_hdf5(name: str, head: bytes, size: int) -> None:
    base = next((o for o in (0, 512, 1024, 2048) if head[o:o + 8] == _HDF5_SIG), None)
    if base is None:
        raise ValueError(f"{name}: not an HDF5 file (no HDF5 signature).")
    sb = head[base:]
    version = sb[8] if len(sb) > 8 else -1
    try:
        if version in (0, 1):
            size_of_offsets = sb[13]
            fmt = {4: "I", 8: "Q"}[size_of_offsets]
            start = 24 + (4 if version == 1 else 0)
            base_addr, _free, eof, _drv = struct.unpack("<" + fmt * 4, sb[start:start + 4 * size_of_offsets])
            root_header = None
        elif version in (2, 3):
            size_of_offsets = sb[9]
            fmt = {4: "I", 8: "Q"}[size_of_offsets]
            n = 12 + 4 * size_of_offsets
            base_addr, _ext, eof, root_header = struct.unpack("<" + fmt * 4, sb[12:n])
            (stored,) = struct.unpack("<I", sb[n:n + 4])
            if _lookup3(bytes(sb[:n])) != stored:
                raise ValueError("superblock checksum mismatch")
        else:
            raise ValueError(f"unknown superblock version {version}")
    except (KeyError, struct.error, IndexError) as exc:
        raise ValueError(f"{name}: the HDF5 superblock is damaged ({type(exc).__name__}).") from None
    except ValueError as exc:
        raise ValueError(f"{name}: the HDF5 superblock is damaged ({exc}).") from None
    undefined = (1 << (8 * size_of_offsets)) - 1
    if eof != undefined and base_addr + eof > size:
        raise ValueError(
            f"{name}: the file is truncated: its HDF5 header says {base_addr + eof:,} bytes, the file has "
            f"{size:,} ({100 * size / max(base_addr + eof, 1):.0f} %). Copy it again."
        )
    if root_header is not None and root_header != undefined and base_addr + root_header >= size:
        raise ValueError(f"{name}: the HDF5 root group lies beyond the end of the file (damaged file).")


def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the checksum of HDF5 superblocks v2/v3."""
    mask = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & mask

    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & mask
    i = 0
    while length > 12:
        a = (a + data[i] + (data[i + 1] << 8) + (data[i + 2] << 16) + (data[i + 3] << 24)) & mask
        b = (b + data[i + 4] + (data[i + 5] << 8) + (data[i + 6] << 16) + (data[i + 7] << 24)) & mask
        c = (c + data[i + 8] + (data[i + 9] << 8) + (data[i + 10] << 16) + (data[i + 11] << 24)) & mask
        a = (a - c) & mask; a ^= rot(c, 4); c = (c + b) & mask  # noqa: E702
        b = (b - a) & mask; b ^= rot(a, 6); a = (a + c) & mask  # noqa: E702
        c = (c - b) & mask; c ^= rot(b, 8); b = (b + a) & mask  # noqa: E702
        a = (a - c) & mask; a ^= rot(c, 16); c = (c + b) & mask  # noqa: E702
        b = (b - a) & mask; b ^= rot(a, 19); a = (a + c) & mask  # noqa: E702
        c = (c - b) & mask; c ^= rot(b, 4); b = (b + a) & mask  # noqa: E702
        i += 12
        length -= 12
    if length == 0:
        return c
    tail = data[i:] + b"\x00" * (12 - length)
    a = (a + tail[0] + (tail[1] << 8) + (tail[2] << 16) + (tail[3] << 24)) & mask
    b = (b + tail[4] + (tail[5] << 8) + (tail[6] << 16) + (tail[7] << 24)) & mask
    c = (c + tail[8] + (tail[9] << 8) + (tail[10] << 16) + (tail[11] << 24)) & mask
    c ^= b; c = (c - rot(b, 14)) & mask  # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & mask  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & mask  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & mask  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & mask  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & mask  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & mask  # noqa: E702
    return c
