"""Tilt angles and tilt-series stacks from the files acquisition software writes.

- IMOD ``.tlt`` / ``.rawtlt``: one angle (degrees) per line;
- SerialEM ``.mdoc``: ``TiltAngle = ...`` in each ``[ZValue = n]`` section (ordered by ZValue);
- MRC extended headers: FEI ``FEI1``/``FEI2`` (``Alpha tilt``), SerialEM/IMOD ``SERI``/``AGAR``
  (tilt angle x 100 as the first int16 of each section when ``nreal & 1``) and the old FEI
  layout of 128-byte float32 records (alpha tilt first).

The stack itself is opened by :func:`napari_cryomat.io.mrc.read_mrc` (memory-mapped, shown as 3dmod
shows it); this module adds the angles next to it. File reading lives here, in ``io``, so that
``core.tilt`` (alignment, reconstruction) stays free of file formats.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from napari_cryomat.core._validate import regular_file
from napari_cryomat.io.mrc import MRCError, read_mrc

__all__ = ["read_tilt_angles", "read_tilt_series", "sidecar_angles"]

_MRC_SUFFIXES = (".mrc", ".mrcs", ".st", ".ali", ".preali", ".map")


def _numbers_file(path: Path) -> np.ndarray:
    values = []
    for k, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.split("#")[0].strip()
        if not line:
            continue
        try:
            values.append(float(line.split()[0]))
        except ValueError:
            raise ValueError(f"path {path.name!r}, line {k}: {line[:40]!r} is not a tilt angle in degrees.") from None
    return np.array(values, float)


def _mdoc(path: Path) -> np.ndarray:
    text = path.read_text(errors="replace")
    sections = re.split(r"^\s*\[\s*ZValue\s*=\s*(\d+)\s*\]", text, flags=re.M)
    found = {}
    for z, body in zip(sections[1::2], sections[2::2]):
        m = re.search(r"^\s*TiltAngle\s*=\s*([-+0-9.eE]+)", body, flags=re.M)
        if m:
            found[int(z)] = float(m.group(1))
    if not found:
        raise ValueError(f"path {path.name!r} holds no [ZValue = n] section with a TiltAngle.")
    return np.array([found[z] for z in sorted(found)], float)


def _mrc_extended(path: Path) -> np.ndarray:
    import mrcfile

    try:
        with mrcfile.open(str(path), mode="r", permissive=True, header_only=True) as mrc:
            h = mrc.header
            nz = int(h.nz)
            exttyp = bytes(h.exttyp).strip(b"\x00 ")
            ext = mrc.extended_header
            if exttyp in (b"FEI1", b"FEI2"):
                idx = mrc.indexed_extended_header
                if idx is not None and len(idx) == nz:
                    return np.asarray(idx["Alpha tilt"], float)
            raw = np.asarray(ext).tobytes() if ext is not None else b""
            # IMOD's nint / nreal: two int16 at bytes 128-131, inside mrcfile's "extra2"
            words = np.frombuffer(h.tobytes()[128:132], dtype=h.mode.dtype.byteorder + "i2")
            nint, nreal = int(words[0]), int(words[1])
            if exttyp in (b"SERI", b"AGAR") and nreal & 1 and nint >= 2 and len(raw) >= nz * nint:
                recs = np.frombuffer(raw[:nz * nint], dtype=h.mode.dtype.byteorder + "i2").reshape(nz, -1)
                return recs[:, 0].astype(float) / 100
            if not exttyp and len(raw) >= nz * 128 and len(raw) % 128 == 0:
                recs = np.frombuffer(raw[:nz * 128], dtype=h.mode.dtype.byteorder + "f4").reshape(nz, 32)
                a = recs[:, 0].astype(float)
                if np.all(np.isfinite(a)) and np.all(np.abs(a) <= 90) and np.ptp(a) > 0:
                    return a
    except (OSError, ValueError) as exc:
        raise ValueError(f"path {path.name!r}: cannot read its header ({exc}).") from None
    raise ValueError(f"path {path.name!r}: its extended header holds no tilt angles; give the .tlt, .rawtlt "
                     "or .mdoc file instead.")


def read_tilt_angles(path) -> np.ndarray:
    """Tilt angles (degrees, float64, in stack order) from a ``.tlt``/``.rawtlt`` file, a SerialEM
    ``.mdoc``, or the extended header of an MRC stack (FEI, SerialEM).

    Raises ValueError naming ``path`` for a missing or special file, an unreadable line, or a file
    without angles.
    """
    p = Path(regular_file(path, "path"))
    name = p.name.lower()
    if name.endswith(".mdoc"):
        angles = _mdoc(p)
    elif name.endswith(_MRC_SUFFIXES):
        angles = _mrc_extended(p)
    else:
        angles = _numbers_file(p)
    if angles.size == 0:
        raise ValueError(f"path {p.name!r} holds no tilt angles.")
    if not np.all(np.isfinite(angles)) or np.max(np.abs(angles)) > 90:
        raise ValueError(f"path {p.name!r}: tilt angles must be finite and within ±90 degrees.")
    return angles


def sidecar_angles(stack_path) -> Path | None:
    """The angle file written next to a stack: ``stem.tlt``, ``stem.rawtlt``, ``name.mdoc`` or
    ``stem.mdoc`` (first that exists), else None."""
    p = Path(stack_path)
    stem = p.with_suffix("")
    for cand in (stem.with_suffix(".tlt"), stem.with_suffix(".rawtlt"), Path(str(p) + ".mdoc"),
                 stem.with_suffix(".mdoc")):
        if cand.is_file():
            return cand
    return None


def read_tilt_series(path, angles_path=None):
    """Open an MRC tilt stack (``.st .mrc .mrcs .ali``) and its angles.

    Returns ``(tilts, angles, pixel_size)``: the (N, Y, X) memory-mapped stack as
    :func:`napari_cryomat.io.mrc.read_mrc` shows it (rows flipped as in 3dmod), the angles in
    degrees and the pixel size in Å (None when the header has none). Angles come from
    ``angles_path`` when given, else from a ``.tlt``/``.rawtlt``/``.mdoc`` next to the stack, else
    from the stack's extended header.
    """
    p = Path(regular_file(path, "path"))
    try:
        [(data, kwargs, _kind)] = read_mrc(p)[:1]
    except MRCError as exc:
        raise ValueError(f"path: {exc}") from None
    if data.ndim != 3:
        raise ValueError(f"path {p.name!r} holds a {data.ndim}D array; a tilt series is a stack of images.")
    src = angles_path if angles_path is not None else (sidecar_angles(p) or p)
    angles = read_tilt_angles(os.fspath(src)) if angles_path is None else read_tilt_angles(angles_path)
    if angles.size != data.shape[0]:
        raise ValueError(f"angles_path: {angles.size} tilt angles for the {data.shape[0]} images of {p.name!r}.")
    units = kwargs.get("units", ("pixel",) * 3)
    pixel = float(kwargs["scale"][-1]) if units[-1] == "angstrom" else None
    return data, angles, pixel
