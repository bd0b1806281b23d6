"""MRC / CCP4 maps, image stacks and tomograms: memory-mapped, calibrated, shown as 3dmod shows them.

What this reader guarantees (and the tests check):

- Opening is memory-mapped (``mrcfile.mmap``): the header is parsed, the data are *not* read.
  Only ``.gz``/``.bz2`` files, which cannot be mapped, are decompressed into memory.
- The voxel size of the header becomes the layer ``scale`` in Å, in the data's axis order
  (Z, Y, X), with napari ``units`` of angstrom.
- ``mapc/mapr/maps`` are honoured: the data are transposed (a view, no copy) to (Z, Y, X).
- Modes 0, 1, 2, 6, 12 are read as they are; mode 4 (complex64) gives lazy amplitude and phase
  layers. Extended headers (FEI, SERI, ...) are skipped by ``mrcfile`` using ``nsymbt``.
- Contrast limits come from percentiles of a strided subsample, never from a full pass.
- The picture appears as in IMOD's 3dmod: the MRC origin is bottom-left, so the rows are shown
  flipped in Y (a negative-stride view). Coordinates exported from the viewer are converted back
  to the file's own voxel indices with :func:`display_to_file_zyx`, so they load unchanged in
  IMOD or RELION.

A bad file (empty, truncated, corrupt header, unknown mode) raises :class:`MRCError` naming the
file and the problem; the napari reader turns it into a notification. The file is opened
read-only and is never written.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

MRC_SUFFIXES = (".mrc", ".mrcs", ".map", ".st", ".ali", ".rec", ".preali")
COMPRESSED_SUFFIXES = (".gz", ".bz2")

# Voxels looked at to set contrast limits: enough for stable percentiles, cheap on any file size.
_CONTRAST_SAMPLE_VOXELS = 1_000_000
_CONTRAST_SAMPLE_SLICES = 16


class MRCError(ValueError):
    """A file that cannot be opened as MRC; the message names the file and what is wrong."""


# -------------------------------------------------------------------------------------------------
# public API
# -------------------------------------------------------------------------------------------------
def is_mrc_path(path: str | os.PathLike) -> bool:
    name = str(path).lower()
    for comp in ("",) + COMPRESSED_SUFFIXES:
        if any(name.endswith(s + comp) for s in MRC_SUFFIXES):
            return True
    return False


def read_mrc(path: str | os.PathLike) -> list[tuple[Any, dict, str]]:
    """Open an MRC file as napari LayerData tuples, without reading its data.

    Parameters
    ----------
    path : str or PathLike
        ``.mrc .mrcs .map .st .ali .rec .preali``, optionally ``.gz`` or ``.bz2``.

    Returns
    -------
    list of (data, kwargs, layer_type)
        One image layer; two (amplitude, phase) for complex mode 4. ``data`` is a read-only
        memory-mapped view in (Z, Y, X) (or (Y, X)) order, flipped in Y as 3dmod shows it.
        ``kwargs["scale"]`` is Å per voxel in the same order, ``kwargs["units"]`` angstrom, and
        ``kwargs["metadata"]["mrc"]`` holds the path, voxel size, file shape and ``flip_y`` that
        :func:`display_to_file_zyx` needs.

    Raises
    ------
    MRCError
        For an empty, truncated or corrupt file, or an unsupported mode.

    Examples
    --------
    >>> [(data, kwargs, kind)] = read_mrc("tomo.rec")  # doctest: +SKIP
    >>> kwargs["scale"]                                 # doctest: +SKIP
    (13.6, 13.6, 13.6)
    """
    path = Path(path)
    volume, header_info = _open_volume(path)
    zyx = _to_zyx(volume, header_info["axis_order"])
    displayed = zyx[..., ::-1, :]  # 3dmod convention: row 0 of the file at the bottom

    ndim = displayed.ndim
    voxel_zyx = header_info["voxel_size_zyx"][-ndim:]
    mrc_meta = {
        "path": str(path),
        "voxel_size": tuple(float(v) for v in voxel_zyx),
        "voxel_size_in_header": header_info["voxel_size_in_header"],
        "file_shape": tuple(int(s) for s in zyx.shape),
        "flip_y": True,
        "mode": header_info["mode"],
        "origin_angstrom": header_info["origin"],
        "extended_header_bytes": header_info["nsymbt"],
        "exttyp": header_info["exttyp"],
    }
    base = {
        "scale": tuple(float(v) for v in voxel_zyx),
        "units": ("angstrom",) * ndim,
        "metadata": {"mrc": mrc_meta},
    }
    name = _layer_name(path)

    if np.iscomplexobj(displayed):
        import dask.array as da

        from napari_cryomat.core.tomo import lazy_dask  # da.from_array alone would copy the map

        lazy = lazy_dask(displayed, _chunks_for(displayed))
        amplitude = da.abs(lazy)
        phase = da.angle(lazy).astype(np.float32)
        return [
            (amplitude, {**base, "name": f"{name} amplitude",
                         "contrast_limits": strided_contrast_limits(amplitude)}, "image"),
            (phase, {**base, "name": f"{name} phase", "contrast_limits": (-np.pi, np.pi),
                     "colormap": "twilight", "metadata": {"mrc": dict(mrc_meta)}}, "image"),
        ]

    sample = header_info["row_sample"]
    if sample is None:  # compressed file, already in memory
        sample = strided_sample(displayed)
    kwargs = {**base, "name": name, "contrast_limits": _percentile_limits(sample)}
    return [(displayed, kwargs, "image")]


def display_to_file_zyx(points_zyx: np.ndarray, mrc_meta: dict | None) -> np.ndarray:
    """Convert displayed voxel indices (Z, Y, X) to the file's own voxel indices.

    The viewer shows MRC data flipped in Y (as 3dmod does), so ``y_file = ny - 1 - y_display``.
    Layers that did not come from an MRC file (``mrc_meta`` None) are returned unchanged.
    Works for (N, 3) and (N, 2) arrays (the last two columns are Y, X).
    """
    points = np.array(points_zyx, dtype=float, copy=True)
    if mrc_meta and mrc_meta.get("flip_y", False) and points.size:
        ny = mrc_meta["file_shape"][-2]
        points[..., -2] = (ny - 1) - points[..., -2]
    return points


def file_to_display_zyx(points_zyx: np.ndarray, mrc_meta: dict | None) -> np.ndarray:
    """Inverse of :func:`display_to_file_zyx` (the flip is its own inverse)."""
    return display_to_file_zyx(points_zyx, mrc_meta)


def strided_contrast_limits(
    data, *, low: float = 0.5, high: float = 99.5
) -> tuple[float, float]:
    """Percentile contrast limits from a strided subsample of ``data`` (numpy, memmap or dask).

    Reads at most ~16 evenly spaced sections and ~1 M voxels in all, so the cost does not grow
    with the file size.
    """
    return _percentile_limits(strided_sample(data), low=low, high=high)


def _percentile_limits(sample: np.ndarray, *, low: float = 0.5, high: float = 99.5):
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(sample, [low, high])
    if not hi > lo:
        lo, hi = float(sample.min()), float(sample.max())
        if not hi > lo:
            hi = lo + 1.0
    return (float(lo), float(hi))


def strided_sample(data) -> np.ndarray:
    """A float32 subsample of ``data``: a few evenly spaced sections, strided in Y and X."""
    if data.ndim >= 3:
        lead = int(np.prod(data.shape[:-2]))
        n_sections = min(_CONTRAST_SAMPLE_SLICES, lead)
        flat_idx = np.unique(np.linspace(0, lead - 1, n_sections).round().astype(int))
        idx = [np.unravel_index(i, data.shape[:-2]) for i in flat_idx]
    else:
        n_sections, idx = 1, [()]
    per_section = _CONTRAST_SAMPLE_VOXELS / max(1, len(idx))
    ny, nx = data.shape[-2:]
    step = max(1, int(np.ceil(np.sqrt(ny * nx / per_section))))
    parts = [np.asarray(data[i + (slice(None, None, step), slice(None, None, step))]) for i in idx]
    return np.concatenate([p.ravel() for p in parts]).astype(np.float32, copy=False)


# -------------------------------------------------------------------------------------------------
# napari reader hook
# -------------------------------------------------------------------------------------------------
def napari_get_reader(path):
    """npe2 reader contribution: return :func:`napari_read_mrc` for MRC paths."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return napari_read_mrc if is_mrc_path(path) else None


def napari_read_mrc(path):
    """Read for napari; a bad file ends in a notification, not a traceback."""
    if isinstance(path, list):
        path = path[0]
    try:
        return read_mrc(path)
    except MRCError as err:
        from napari.utils.notifications import show_error

        show_error(str(err))
        return [(None,)]  # napari's "nothing to add" sentinel: viewer left as it was


# -------------------------------------------------------------------------------------------------
# internals
# -------------------------------------------------------------------------------------------------
def _layer_name(path: Path) -> str:
    name = path.name
    for comp in COMPRESSED_SUFFIXES:
        if name.lower().endswith(comp):
            name = name[: -len(comp)]
    return Path(name).stem


def _open_volume(path: Path):
    """Open ``path`` read-only; return (data view, header facts). Raises MRCError."""
    import mrcfile

    label = path.name
    if not path.exists():
        raise MRCError(f"{label}: file not found.")
    size = path.stat().st_size
    if size == 0:
        raise MRCError(f"{label}: the file is empty (0 bytes); it was probably not written completely.")
    compressed = str(path).lower().endswith(COMPRESSED_SUFFIXES)
    if not compressed and size < 1024:
        raise MRCError(
            f"{label}: only {size} bytes, shorter than the 1024-byte MRC header; the file is truncated."
        )

    # permissive=True: mrcfile then reports problems as warnings instead of refusing outright,
    # so we can phrase one clear message ourselves. Old files without the 'MAP ' stamp still open.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if compressed:
                mrc = mrcfile.open(str(path), mode="r", permissive=True)
            else:
                mrc = mrcfile.mmap(str(path), mode="r", permissive=True)
        except Exception as exc:  # mrcfile raises ValueError/OSError/EOFError for garbage
            raise MRCError(f"{label}: not a readable MRC file ({exc}).") from exc
    problems = [str(w.message) for w in caught]

    header = mrc.header
    if header is None:
        raise MRCError(f"{label}: corrupt MRC header ({'; '.join(problems) or 'unreadable'}).")
    mode = int(header.mode)
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    if mrc.data is None:
        detail = "; ".join(problems) or "no data"
        if mode not in (0, 1, 2, 3, 4, 6, 12, 101):
            raise MRCError(
                f"{label}: unknown MRC mode {mode}; readable modes are 0, 1, 2, 4, 6 and 12."
            )
        raise MRCError(f"{label}: cannot map the data: {detail}. The file may be truncated.")
    if min(nx, ny, nz) <= 0 or nx * ny * nz > 1 << 46:
        raise MRCError(f"{label}: corrupt header: dimensions nx={nx}, ny={ny}, nz={nz}.")
    if mode not in (0, 1, 2, 4, 6, 12):
        raise MRCError(f"{label}: MRC mode {mode} is not supported; use modes 0, 1, 2, 4, 6 or 12.")

    try:
        axis_order = (int(header.mapc), int(header.mapr), int(header.maps))
    except Exception:
        axis_order = (1, 2, 3)
    if sorted(axis_order) != [1, 2, 3]:
        axis_order = (1, 2, 3)  # unset or corrupt: the standard order, as IMOD assumes

    vs = mrc.voxel_size
    # float(str(float32)) gives the shortest decimal that the header's float32 stands for:
    # a voxel size written as 0.8 reads back as 0.8, not 0.800000011920929.
    voxel_xyz = np.array([float(str(np.float32(v))) for v in (vs.x, vs.y, vs.z)])
    in_header = bool(np.all(voxel_xyz > 0))
    voxel_xyz = np.where(voxel_xyz > 0, voxel_xyz, 1.0)  # unknown: fall back to pixels
    origin = (float(header.origin.z), float(header.origin.y), float(header.origin.x))

    data = mrc.data
    row_sample = None if compressed else _read_row_sample(path, data, int(header.nsymbt))
    # Keep the file handle alive exactly as long as the map is used: a memmap view keeps the
    # mmap alive by itself, so the mrcfile object can be dropped without closing the mapping.
    info = {
        "mode": mode,
        "axis_order": axis_order,
        "voxel_size_zyx": voxel_xyz[::-1].copy(),
        "voxel_size_in_header": in_header,
        "origin": origin,
        "nsymbt": int(header.nsymbt),
        "row_sample": row_sample,
        "exttyp": bytes(header.exttyp).decode("ascii", "replace").strip("\x00 ") if hasattr(header, "exttyp") else "",
    }
    return data, info


def _read_row_sample(path: Path, data: np.ndarray, nsymbt: int, n_sections: int = 16,
                     rows_per_section: int = 32) -> np.ndarray:
    """Whole rows from evenly spaced sections, read with ``pread`` for the contrast limits.

    Reading through the memory map would fault in the kernel's read-ahead around every sampled
    row (hundreds of MB of a 4 GiB file); explicit reads touch only the bytes sampled.
    """
    shape = data.shape if data.ndim == 3 else (1,) + data.shape
    nz, ny, nx = shape
    row_bytes = nx * data.dtype.itemsize
    offset0 = 1024 + nsymbt
    zs = np.unique(np.linspace(0, nz - 1, min(n_sections, nz)).round().astype(int))
    ys = np.unique(np.linspace(0, ny - 1, min(rows_per_section, ny)).round().astype(int))
    rows = []
    with open(path, "rb") as f:
        for z in zs:
            for y in ys:
                raw = os.pread(f.fileno(), row_bytes, offset0 + (int(z) * ny + int(y)) * row_bytes)
                rows.append(np.frombuffer(raw, dtype=data.dtype))
    return np.concatenate(rows).astype(np.float32)


def _to_zyx(data: np.ndarray, axis_order: tuple[int, int, int]) -> np.ndarray:
    """Transpose file-order data (sections, rows, columns) into (Z, Y, X) as a view.

    ``axis_order`` is (mapc, mapr, maps): which of X=1, Y=2, Z=3 runs along the columns, rows
    and sections of the file.
    """
    if data.ndim == 2:
        # one section: rows are the mapr axis, columns the mapc axis
        return data.T if axis_order[0] == 2 and axis_order[1] == 1 else data
    mapc, mapr, maps = axis_order
    file_axis_of = {maps: 0, mapr: 1, mapc: 2}  # physical axis -> data axis
    return np.transpose(data, (file_axis_of[3], file_axis_of[2], file_axis_of[1]))


def _chunks_for(data) -> tuple[int, ...]:
    if data.ndim == 3:
        return (1,) + tuple(data.shape[1:])
    return tuple(data.shape)
