"""Pick tables: particle/feature coordinates to and from CSV and RELION STAR files.

Coordinates are handled as arrays of shape (N, 3) in ``(z, y, x)`` order (the plugin's axis order)
and written as X, Y, Z columns in **voxel indices of the file** (0-based, voxel centre at the
integer), as RELION's ``rlnCoordinateX/Y/Z`` and IMOD point lists expect. Converting from the
displayed orientation to the file's own indices (MRC's Y flip) is the caller's job
(``napari_cryomat.io.mrc.display_to_file_zyx``).

CSV layout (comma separated, one header line)::

    x,y,z[,x_angstrom,y_angstrom,z_angstrom]

The Å columns are written when a voxel size is given, for spreadsheets; readers use x, y, z.
Headerless files with three numeric columns are read as ``x y z`` (IMOD ``model2point`` style).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "write_picks_csv",
    "read_picks_csv",
    "write_picks_star",
    "read_picks_star",
    "write_picks",
    "read_picks",
]

_STAR_XYZ = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
_MAX_PICKS_FILE = 1 << 30  # a pick list of 1 GiB is not a pick list


def _readable(path) -> Path:
    """An existing regular file of reasonable size (not a folder, FIFO or device)."""
    from napari_cryomat.core._validate import regular_file

    p = Path(regular_file(path, "path"))
    if p.stat().st_size > _MAX_PICKS_FILE:
        raise ValueError(f"path {str(p)!r} is {p.stat().st_size / 2**30:.1f} GiB: too large for a pick list.")
    return p


def _voxel_size(voxel_size) -> np.ndarray:
    from napari_cryomat.core._validate import vector

    if np.ndim(voxel_size) == 0:
        voxel_size = [voxel_size]
    vs = vector(voxel_size, "voxel_size", length=(1, 3), all_positive=True, high=1e9, unit="Å")
    return np.broadcast_to(vs, (3,)).copy()


def _as_points(points_zyx) -> np.ndarray:
    pts = np.asarray(points_zyx, dtype=float)
    if pts.size == 0:
        return np.zeros((0, 3))
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"Picks must be an (N, 3) array of z, y, x voxel indices; got shape {pts.shape}.")
    if not np.all(np.isfinite(pts)):
        raise ValueError("Picks contain NaN or inf coordinates.")
    return pts


def write_picks_csv(path, points_zyx, *, voxel_size: Sequence[float] | None = None) -> Path:
    """Write picks as CSV with columns x, y, z in voxel indices (and Å columns if ``voxel_size``).

    Parameters
    ----------
    path : str or Path
        Output file; overwritten.
    points_zyx : array-like, (N, 3)
        Voxel indices in (z, y, x) order.
    voxel_size : (z, y, x) Å per voxel, optional
        Adds ``x_angstrom, y_angstrom, z_angstrom`` columns (index * voxel size).

    Returns
    -------
    Path of the written file.
    """
    pts = _as_points(points_zyx)
    path = Path(path)
    header = ["x", "y", "z"]
    rows = pts[:, ::-1]
    if voxel_size is not None:
        vs = _voxel_size(voxel_size)
        header += ["x_angstrom", "y_angstrom", "z_angstrom"]
        rows = np.hstack([rows, pts[:, ::-1] * vs[::-1]])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([repr(float(v)) for v in r])
    return path


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_picks_csv(path) -> np.ndarray:
    """Read picks from CSV (or whitespace-separated text) into an (N, 3) array of (z, y, x).

    Accepts a header naming ``x, y, z`` (any case) or ``rlnCoordinateX/Y/Z``; without a header
    the first three numeric columns are taken as x, y, z.
    """
    path = _readable(path)
    text = path.read_text(errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return np.zeros((0, 3))
    delimiter = "," if "," in lines[0] else None

    def split(line: str) -> list[str]:
        return [c.strip() for c in (line.split(delimiter) if delimiter else line.split())]

    first = split(lines[0])
    if all(_is_number(c) for c in first if c):
        cols = (0, 1, 2)
        body = lines
    else:
        names = [c.lower() for c in first]
        cols = []
        for want in ("x", "y", "z"):
            alts = (want, f"rlncoordinate{want}", f"{want}_px", f"{want}_voxel")
            idx = next((names.index(a) for a in alts if a in names), None)
            if idx is None:
                raise ValueError(f"{path.name}: no '{want}' column in the header {first}; expected x, y, z.")
            cols.append(idx)
        body = lines[1:]
    out = []
    for n, line in enumerate(body, start=2 if body is not lines else 1):
        cells = split(line)
        try:
            out.append([float(cells[c]) for c in cols])
        except (IndexError, ValueError):
            raise ValueError(f"{path.name}, line {n}: cannot read x, y, z from {line!r}.") from None
    xyz = np.asarray(out, dtype=float).reshape(-1, 3)
    return _as_points(xyz[:, ::-1])


def write_picks_star(
    path,
    points_zyx,
    *,
    tomo_name: str | None = None,
    voxel_size: Sequence[float] | None = None,
) -> Path:
    """Write picks as a RELION STAR file (``data_particles`` block) with ``starfile``.

    Parameters
    ----------
    path : str or Path
        Output ``.star`` file; overwritten.
    points_zyx : array-like, (N, 3)
        Voxel indices of the tomogram file, (z, y, x) order.
    tomo_name : str, optional
        Written as ``rlnTomoName`` for every row (RELION 4/5 tomography needs it).
    voxel_size : (z, y, x) Å, optional
        The X voxel size is written as ``rlnTomoTiltSeriesPixelSize`` (Å) for reference.

    Notes
    -----
    ``rlnCoordinateX/Y/Z`` hold the file's voxel indices, as in RELION's tomography picks.
    """
    import pandas as pd
    import starfile

    pts = _as_points(points_zyx)
    path = Path(path)
    df = pd.DataFrame({_STAR_XYZ[0]: pts[:, 2], _STAR_XYZ[1]: pts[:, 1], _STAR_XYZ[2]: pts[:, 0]})
    if tomo_name is not None:
        df.insert(0, "rlnTomoName", [str(tomo_name)] * len(df))
    if voxel_size is not None:
        vs = _voxel_size(voxel_size)
        df["rlnTomoTiltSeriesPixelSize"] = float(vs[2])
    starfile.write({"particles": df}, path, float_format="%.4f")
    return path


def read_picks_star(path) -> np.ndarray:
    """Read ``rlnCoordinateX/Y/Z`` from a STAR file into an (N, 3) array of (z, y, x).

    The first data block holding those columns is used; a table with X and Y only (2D picks)
    gives z = 0.
    """
    import starfile

    path = _readable(path)
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises assorted parser errors
        raise ValueError(f"{path.name}: not a readable STAR file ({exc}).") from None
    for df in blocks.values():
        cols = getattr(df, "columns", ())
        if _STAR_XYZ[0] in cols and _STAR_XYZ[1] in cols:
            x = np.asarray(df[_STAR_XYZ[0]], dtype=float)
            y = np.asarray(df[_STAR_XYZ[1]], dtype=float)
            z = np.asarray(df[_STAR_XYZ[2]], dtype=float) if _STAR_XYZ[2] in cols else np.zeros_like(x)
            return _as_points(np.stack([z, y, x], axis=1))
    raise ValueError(f"{path.name}: no data block with rlnCoordinateX/Y/Z columns.")


def write_picks(path, points_zyx, **kwargs) -> Path:
    """Write picks as STAR (``.star``) or CSV (anything else), see the specific writers."""
    if os.fspath(path).lower().endswith(".star"):
        return write_picks_star(path, points_zyx, **kwargs)
    kwargs.pop("tomo_name", None)
    return write_picks_csv(path, points_zyx, **kwargs)


def read_picks(path) -> np.ndarray:
    """Read picks from ``.star`` or CSV/text, returning (N, 3) voxel indices (z, y, x)."""
    _readable(path)
    if os.fspath(path).lower().endswith(".star"):
        return read_picks_star(path)
    return read_picks_csv(path)
