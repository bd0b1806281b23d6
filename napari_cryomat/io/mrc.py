"""MRC / CCP4 maps, image stacks, volume stacks and tomograms: memory-mapped, calibrated, shown as
3dmod shows them.

What this reader guarantees (and the tests check):

- Opening is memory-mapped (``mrcfile.mmap``): the header is parsed, the data are *not* read.
  ``.gz``/``.bz2`` files, which cannot be mapped, are decompressed into memory when they expand to
  at most 256 MiB (and half the free memory); larger ones are streamed into an anonymous temporary
  file and mapped from there (never held in memory), or refused when the temporary folder has no
  room for them.
- The header is checked against the file size *before* anything is allocated: a garbage
  ``nsymbt`` or dimensions that promise more (or fewer) bytes than the file holds are refused
  with mrcfile's own words ("Expected N bytes in data block but could only read M", "MRC file is
  N bytes larger than expected"); special files (FIFO, folder, device) are refused at once.
- The voxel size of the header becomes the layer ``scale`` in Å, in the data's axis order
  (Z, Y, X), with napari ``units`` of angstrom. A cell size of 0, NaN, inf or an absurd one
  opens the axis in pixels (napari unit ``"pixel"``) with a warning.
- ``mapc/mapr/maps`` are honoured: the data are transposed (a view, no copy) to (Z, Y, X).
- Modes 0, 1, 2, 6, 12 are read as they are; mode 4 (complex64) gives lazy amplitude and phase
  layers; modes 3 (complex int16) and 101 (4-bit) are refused by name. Extended headers (FEI,
  SERI, ...) are skipped using ``nsymbt``. Volume stacks (``ispg`` 401-630) open as 4D
  (volume, Z, Y, X) arrays, or are refused when ``nz`` is not a multiple of ``mz``.
- Contrast limits come from percentiles of a strided subsample, never from a full pass.
- In napari (:func:`napari_read_mrc`), a 2D image with a side of 2048 pixels or more (a 4k
  micrograph) opens as a multiscale layer: the memory map as level 0 and lazy area means (2x, 3x,
  4x, ... bins) as overview levels, so that napari shows it whole as a binned overview (its
  particles, not its aliased pixel noise) and at full resolution when zoomed in (io/_pyramid.py);
  its contrast limits are those of the overview a laptop shows. Stacks of such frames (space group
  0, a tilt series, a single section (1, Y, X)) get the same levels frame by frame; volumes (first
  axis "z" with more than one section) stay one array for the tomogram browser. :func:`read_mrc`
  itself returns the one array (batch, scripts).
- The picture appears as in IMOD's 3dmod: the MRC origin is bottom-left, so the rows are shown
  flipped in Y (a negative-stride view). Coordinates exported from the viewer are converted back
  to the file's own voxel indices with :func:`display_to_file_zyx`, so they load unchanged in
  IMOD or RELION.

Every failure at open raises :class:`MRCError` naming the file and the problem; the napari reader
turns it into a notification (and warnings, e.g. an uncalibrated axis, into a warning
notification). The file is opened read-only and is never written.
"""

from __future__ import annotations

import bz2
import gzip
import os
import shutil
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from napari_cryomat.io._pyramid import with_overview

MRC_SUFFIXES = (".mrc", ".mrcs", ".map", ".st", ".ali", ".rec", ".preali")
COMPRESSED_SUFFIXES = (".gz", ".bz2")

# Voxels looked at to set contrast limits: enough for stable percentiles, cheap on any file size.
_CONTRAST_SAMPLE_VOXELS = 1_000_000
_CONTRAST_SAMPLE_SLICES = 16

#: A compressed MRC expanding to more than this (or to more than half the free memory) is streamed
#: to a temporary file instead of being held in memory. ``CRYOMAT_MRC_MAX_INMEMORY`` (bytes) overrides.
MAX_IN_MEMORY_BYTES = 256 << 20
_CHUNK = 16 << 20
#: Voxel sizes outside this range (Å) are not a calibration but garbage: the axis opens in pixels.
_VOXEL_RANGE = (1e-6, 1e9)
_MODE_NAMES = {
    0: "int8", 1: "int16", 2: "float32", 3: "complex int16", 4: "complex64", 6: "uint16", 12: "float16",
    101: "packed 4-bit",
}


class MRCError(ValueError):
    """A file that cannot be opened as MRC; the message names the file and what is wrong."""


class MRCWarning(UserWarning):
    """Something about an MRC file the user should know (e.g. an uncalibrated axis)."""


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
        memory-mapped view in (Z, Y, X) (or (Y, X), or (volume, Z, Y, X) for volume stacks)
        order, flipped in Y as 3dmod shows it. ``kwargs["scale"]`` is Å per voxel in the same
        order and ``kwargs["units"]`` angstrom (``"pixel"`` for an axis without a usable
        calibration, and for the volume index), and ``kwargs["metadata"]["mrc"]`` holds the path,
        voxel size, file shape and ``flip_y`` that :func:`display_to_file_zyx` needs, plus the
        ``warnings`` issued.

    Raises
    ------
    MRCError
        For a missing, special (FIFO, folder, device), empty, truncated or corrupt file, a header
        that does not match the file size, an unsupported mode, or a compressed file too large to
        expand. Always names the file.

    Warns
    -----
    MRCWarning
        When an axis has no usable voxel size (cell size 0, NaN, inf or absurd) and opens in pixels.

    Examples
    --------
    >>> [(data, kwargs, kind)] = read_mrc("tomo.rec")  # doctest: +SKIP
    >>> kwargs["scale"]                                 # doctest: +SKIP
    (13.6, 13.6, 13.6)
    """
    path = Path(path)
    try:
        return _read_mrc(path)
    except MRCError:
        raise
    except MemoryError as exc:
        raise MRCError(f"{path.name}: not enough memory to open it ({exc}).") from exc
    except Exception as exc:  # noqa: BLE001 - whatever goes wrong, the user hears which file and why
        raise MRCError(f"{path.name}: could not be read ({type(exc).__name__}: {exc}).") from exc


def _read_mrc(path: Path) -> list[tuple[Any, dict, str]]:
    volume, header_info = _open_volume(path)
    zyx = _to_zyx(volume, header_info["axis_order"])
    displayed = zyx[..., ::-1, :]  # 3dmod convention: row 0 of the file at the bottom

    ndim = displayed.ndim
    spatial = min(ndim, 3)
    scale = [1.0] * (ndim - spatial) + list(header_info["voxel_size_zyx"][-spatial:])
    units = ["pixel"] * (ndim - spatial) + list(header_info["units_zyx"][-spatial:])
    notes = list(header_info["warnings"])
    for note in notes:
        warnings.warn(note, MRCWarning, stacklevel=3)
    mrc_meta = {
        "path": str(path),
        "voxel_size": tuple(float(v) for v in scale),
        "voxel_size_in_header": header_info["voxel_size_in_header"],
        "file_shape": tuple(int(s) for s in zyx.shape),
        "flip_y": True,
        "mode": header_info["mode"],
        "origin_angstrom": header_info["origin"],
        "extended_header_bytes": header_info["nsymbt"],
        "exttyp": header_info["exttyp"],
        "volume_stack": header_info["volume_stack"],
        "warnings": notes,
    }
    base = {
        "scale": tuple(float(v) for v in scale),
        "units": tuple(units),
        "axis_labels": _axis_labels(path, ndim, header_info),
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
    if sample is None:  # compressed file, already in memory (or in a temporary file)
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
    """Read for napari; a bad file ends in a notification, not a traceback.

    Errors become an error notification naming the file and napari's "nothing to add" sentinel,
    so the viewer stays as it was; :class:`MRCWarning` (e.g. an axis opened in pixels) becomes a
    warning notification.
    """
    if isinstance(path, list):
        path = path[0]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MRCWarning)
            layers = with_overview(read_mrc(path))  # a big micrograph or movie: binned overview levels
    except Exception as err:  # noqa: BLE001 - read_mrc raises MRCError; anything else is a bug, still no traceback
        from napari.utils.notifications import show_error

        text = str(err) if isinstance(err, MRCError) else f"{Path(path).name}: could not be read ({err})."
        show_error(text)
        return [(None,)]  # napari's "nothing to add" sentinel: viewer left as it was
    notes = [str(w.message) for w in caught if issubclass(w.category, MRCWarning)]
    for w in caught:  # other libraries' warnings go on as they came
        if not issubclass(w.category, MRCWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if notes:
        from napari.utils.notifications import show_warning

        for note in notes:
            show_warning(note)
    return layers


# -------------------------------------------------------------------------------------------------
# internals
# -------------------------------------------------------------------------------------------------
#: IMOD's tilt-series files: raw (.st), aligned (.ali) and prealigned (.preali) stacks of tilted views
TILT_SERIES_SUFFIXES = (".st", ".ali", ".preali")
#: volumes by name whatever their space group: IMOD reconstructions (older IMOD wrote space group 0) and maps
VOLUME_SUFFIXES = (".rec", ".map")


def _axis_labels(path: Path, ndim: int, header_info: dict) -> tuple[str, ...]:
    """What napari's sliders say they move through (napari's default is "-3"): a volume's sections are
    "z" (.rec and .map always), an IMOD tilt series' views "tilt", another image stack's (space group 0:
    movie frames, particles) "image", a volume stack's volumes "volume"."""
    if ndim == 2:
        return ("y", "x")
    if ndim == 4:
        return ("volume", "z", "y", "x")
    suffixes = [s.lower() for s in path.suffixes][-2:]  # "tomo.rec.gz" as "tomo.rec"
    if any(s in TILT_SERIES_SUFFIXES for s in suffixes):
        return ("tilt", "y", "x")
    if any(s in VOLUME_SUFFIXES for s in suffixes):
        return ("z", "y", "x")
    return ("image" if header_info.get("image_stack") else "z", "y", "x")


def _layer_name(path: Path) -> str:
    name = path.name
    for comp in COMPRESSED_SUFFIXES:
        if name.lower().endswith(comp):
            name = name[: -len(comp)]
    return Path(name).stem


def _open_volume(path: Path):
    """Open ``path`` read-only; return (data view, header facts). Raises MRCError."""
    from napari_cryomat.io._guard import refuse_special_file

    label = path.name
    st = refuse_special_file(path, error=MRCError)  # FIFO, folder, device: refused before any open
    size = st.st_size
    if size == 0:
        raise MRCError(f"{label}: the file is empty (0 bytes); it was probably not written completely.")
    compressed = str(path).lower().endswith(COMPRESSED_SUFFIXES)
    if compressed:
        return _open_compressed(path, label)
    if size < 1024:
        raise MRCError(
            f"{label}: only {size} bytes, shorter than the 1024-byte MRC header; the file is truncated."
        )
    with open(path, "rb") as f:
        raw = f.read(1024)
    h = _parse_header(raw, label)
    _check_size(h, size, label, path)

    import mrcfile

    # the header now matches the file: mrcfile maps exactly what we checked, allocating nothing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mrc = mrcfile.mmap(str(path), mode="r", permissive=True)
        except Exception as exc:  # mrcfile raises ValueError/OSError/EOFError for garbage
            raise MRCError(f"{label}: not a readable MRC file ({exc}).") from exc
    said = [str(w.message) for w in caught]
    data = mrc.data
    if data is None or tuple(data.shape) != h["shape"] or data.dtype.newbyteorder("=") != h["dtype"].newbyteorder("="):
        detail = "; ".join(said) or "no data"
        raise MRCError(f"{label}: cannot map the data ({detail}).")
    # Keep the file handle alive exactly as long as the map is used: a memmap view keeps the
    # mmap alive by itself, so the mrcfile object can be dropped without closing the mapping.
    # complex maps get their contrast from the amplitude: no row sample to read
    row_sample = None if np.iscomplexobj(data) else _read_row_sample(path, data, h["nsymbt"])
    return data, _info(h, row_sample, label)


def _parse_header(raw: bytes, label: str) -> dict:
    """The 1024-byte header interpreted as mrcfile does in permissive mode, and checked.

    Returns the facts needed to open the data (dtype, file-order shape, offsets, calibration).
    Nothing here depends on the rest of the file, and nothing large is allocated.
    """
    from mrcfile import utils as mu
    from mrcfile.dtypes import HEADER_DTYPE

    header = np.frombuffer(raw, dtype=HEADER_DTYPE).reshape(()).copy().view(np.recarray)
    problems = []
    if bytes(header.map)[:3] != b"MAP":
        problems.append("Map ID string not found - not an MRC file, or file is corrupt")
    try:
        order = mu.byte_order_from_machine_stamp(header.machst)
    except ValueError as err:
        order = "<"
        problems.append(str(err))
    header.dtype = header.dtype.newbyteorder(order)
    mode = int(header.mode)
    if mode not in _MODE_NAMES:  # as mrcfile: a wrong machine stamp is tolerated when swapping fixes the mode
        swapped = int(header.mode.view(header.mode.dtype.newbyteorder()))
        if swapped in _MODE_NAMES:
            header.dtype = header.dtype.newbyteorder()
            mode = swapped
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    if mode not in _MODE_NAMES:
        hint = f" ({'; '.join(problems)})" if problems else ""
        raise MRCError(
            f"{label}: unknown MRC mode {mode}; readable modes are 0, 1, 2, 4, 6 and 12{hint}."
        )
    if mode == 3:
        raise MRCError(
            f"{label}: MRC mode 3 (complex numbers stored as two 16-bit integers) is not supported; "
            "convert the file to mode 4 (complex float32) first."
        )
    if mode == 101:
        raise MRCError(
            f"{label}: MRC mode 101 (4-bit packed integers) is not supported; convert the file to "
            "mode 0 or 6 first (e.g. IMOD: newstack -mode 6)."
        )
    if min(nx, ny, nz) <= 0:
        raise MRCError(f"{label}: corrupt header: dimensions nx={nx}, ny={ny}, nz={nz} must be positive.")
    nsymbt = int(header.nsymbt)
    if nsymbt < 0:
        raise MRCError(f"{label}: corrupt header: extended header size nsymbt={nsymbt} is negative.")
    ispg = int(header.ispg)
    volume_stack = bool(mu.spacegroup_is_volume_stack(ispg))
    if volume_stack:
        mz = int(header.mz)
        if mz <= 0 or nz % mz:
            raise MRCError(
                f"{label}: volume stack (space group {ispg}) with nz={nz} sections that are not a whole number "
                f"of volumes of mz={mz}; the header is corrupt (mrcfile: \"nz should be divisible by mz\")."
            )
        shape = (nz // mz, mz, ny, nx)
    elif ispg == mu.IMAGE_STACK_SPACEGROUP and nz == 1:
        shape = (ny, nx)
    else:
        shape = (nz, ny, nx)
    dtype = mu.data_dtype_from_header(header)
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    try:
        axis_order = (int(header.mapc), int(header.mapr), int(header.maps))
    except Exception:  # noqa: BLE001
        axis_order = (1, 2, 3)
    if sorted(axis_order) != [1, 2, 3]:
        axis_order = (1, 2, 3)  # unset or corrupt: the standard order, as IMOD assumes
    return {
        "header": header,
        "mode": mode,
        "dtype": dtype,
        "shape": shape,
        "nbytes": nbytes,
        "nsymbt": nsymbt,
        "offset": 1024 + nsymbt,
        "volume_stack": volume_stack,
        "axis_order": axis_order,
        "problems": problems,
    }


def _check_size(h: dict, size: int, label: str, path: Path) -> None:
    """Refuse a header that does not describe this file, with mrcfile's own words."""
    offset, nbytes = h["offset"], h["nbytes"]
    desc = (f"{' x '.join(str(s) for s in reversed(h['shape']))} {_MODE_NAMES[h['mode']]} "
            f"(mode {h['mode']}) after a {offset}-byte header")
    if offset > size:
        raise MRCError(
            f"{label}: corrupt header: the extended header (nsymbt={h['nsymbt']} bytes) runs past the end of "
            f"the {size}-byte file (mrcfile: \"Expected {h['nsymbt']} bytes in extended header but could only "
            f"read {size - 1024}\")."
        )
    if size == offset + nbytes:
        return
    said = _mrcfile_says(path, larger=size > offset + nbytes)
    if size < offset + nbytes:
        quote = said or f"Expected {nbytes} bytes in data block but could only read {size - offset}"
        raise MRCError(
            f"{label}: the file is truncated or its header is corrupt: the header describes {desc}, "
            f"{offset + nbytes} bytes in all, but the file has {size} bytes (mrcfile: \"{quote}\")."
        )
    quote = said or f"MRC file is {size - offset - nbytes} bytes larger than expected"
    raise MRCError(
        f"{label}: the header does not match the file size: it describes {desc}, {offset + nbytes} bytes "
        f"in all, but the file has {size} bytes (mrcfile: \"{quote}\"). The header or the file is damaged; "
        "opening it would show garbage."
    )


def _mrcfile_says(path: Path, *, larger: bool) -> str:
    """mrcfile's own warning about the file size (permissive mode; safe once the header is checked:
    for a short file mrcfile refuses before allocating, a long one it only maps)."""
    import mrcfile

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            opener = mrcfile.mmap if larger else mrcfile.open
            with opener(str(path), mode="r", permissive=True):
                pass
        except Exception:  # noqa: BLE001 - only the warnings matter here
            pass
    texts = [str(w.message) for w in caught if "bytes" in str(w.message) or "larger" in str(w.message)]
    return "; ".join(texts)


def _max_in_memory() -> int:
    from napari_cryomat.core._validate import memory_budget

    limit = MAX_IN_MEMORY_BYTES
    env = os.environ.get("CRYOMAT_MRC_MAX_INMEMORY")
    if env:
        try:
            limit = int(float(env))
        except ValueError:
            pass
    return int(min(limit, memory_budget()))


def _open_compressed(path: Path, label: str):
    """A .gz/.bz2 MRC: header checked first, then the data decompressed into memory (small) or
    streamed into an anonymous temporary file and mapped (large); never more than the header
    promises, never a whole bomb in memory."""
    kind = "gzip" if str(path).lower().endswith(".gz") else "bzip2"
    opener = gzip.open if kind == "gzip" else bz2.open
    errors = (OSError, EOFError, zlib.error, ValueError)
    try:
        stream = opener(path, "rb")
    except errors as exc:
        raise MRCError(f"{label}: not a readable {kind} file ({exc}).") from exc
    try:
        try:
            raw = _read_exact(stream, 1024)
        except MRCError:
            raise
        except errors as exc:
            raise MRCError(f"{label}: the {kind} data are corrupt ({exc}).") from exc
        if len(raw) < 1024:
            raise MRCError(
                f"{label}: only {len(raw)} bytes after decompression, shorter than the 1024-byte MRC header; "
                "the file is truncated."
            )
        h = _parse_header(raw, label)
        total = h["offset"] + h["nbytes"]
        in_memory = _max_in_memory()
        try:
            if total <= in_memory:
                data = _decompress_to_memory(stream, h, total, label)
            else:
                data = _decompress_to_file(stream, h, total, label, path)
        except MRCError:
            raise
        except errors as exc:
            raise MRCError(f"{label}: the {kind} data are corrupt ({exc}).") from exc
    finally:
        stream.close()
    return data, _info(h, None, label)


def _read_exact(stream, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = stream.read(min(_CHUNK, n - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _size_problem(h: dict, got: int, total: int, label: str, *, more: bool) -> MRCError:
    desc = f"{' x '.join(str(s) for s in reversed(h['shape']))} {_MODE_NAMES[h['mode']]} (mode {h['mode']})"
    if more:
        return MRCError(
            f"{label}: the header does not match the decompressed size: it describes {desc}, {total} bytes in "
            f"all, but the file holds more (mrcfile: \"MRC file is larger than expected\"). The header or the "
            "file is damaged."
        )
    data_got = max(0, got - h["offset"])
    return MRCError(
        f"{label}: the file is truncated or its header is corrupt: the header describes {desc}, {total} bytes "
        f"in all, but only {got} bytes decompress (mrcfile: \"Expected {h['nbytes']} bytes in data block but "
        f"could only read {data_got}\")."
    )


def _decompress_to_memory(stream, h: dict, total: int, label: str) -> np.ndarray:
    rest = total - 1024
    buf = bytearray(rest)
    view = memoryview(buf)
    got = 0
    while got < rest:
        n = stream.readinto(view[got:got + _CHUNK])
        if not n:
            break
        got += n
    if got < rest:
        raise _size_problem(h, 1024 + got, total, label, more=False)
    if stream.read(1):
        raise _size_problem(h, total + 1, total, label, more=True)
    body = np.frombuffer(buf, dtype=h["dtype"], offset=h["nsymbt"], count=int(np.prod(h["shape"])))
    arr = body.reshape(h["shape"])
    arr.flags.writeable = False
    return arr


def _decompress_to_file(stream, h: dict, total: int, label: str, path: Path) -> np.ndarray:
    """Stream the data into an unlinked temporary file and map it (constant memory)."""
    tmpdir = tempfile.gettempdir()
    try:
        free_disk = shutil.disk_usage(tmpdir).free
    except OSError:
        free_disk = 0
    if total > free_disk // 2:
        from napari_cryomat.core._validate import memory_budget

        raise MRCError(
            f"{label}: a {path.stat().st_size / 2**10:,.0f} KB compressed file that expands to "
            f"{total / 2**30:.2f} GiB: more than half the free memory ({2 * memory_budget() / 2**30:.1f} GiB free) "
            f"and more than half the free disk space in {tmpdir} ({free_disk / 2**30:.1f} GiB free). "
            "Decompress it yourself (gunzip / bunzip2) onto a disk with room, then open the .mrc."
        )
    tmp = tempfile.TemporaryFile(prefix="cryomat-mrc-", dir=tmpdir)  # unlinked: gone when unmapped
    try:
        tmp.write(bytes(1024))  # the header stays where mrcfile expects it (offsets unchanged)
        got = 1024
        while got < total:
            chunk = stream.read(min(_CHUNK, total - got))
            if not chunk:
                break
            tmp.write(chunk)
            got += len(chunk)
        if got < total:
            raise _size_problem(h, got, total, label, more=False)
        if stream.read(1):
            raise _size_problem(h, total + 1, total, label, more=True)
        tmp.flush()
        return np.memmap(tmp, dtype=h["dtype"], mode="r", offset=h["offset"], shape=h["shape"])
    finally:
        tmp.close()  # the map keeps its own reference to the file


def _voxel_size(h: dict, label: str) -> tuple[np.ndarray, list[str], bool, list[str]]:
    """Voxel size (Z, Y, X) in Å and napari units; axes without a usable calibration in pixels."""
    from napari_cryomat.core.units import ANGSTROM, PIXEL

    header = h["header"]
    cella = np.array([float(header.cella.x), float(header.cella.y), float(header.cella.z)])
    m = np.array([float(header.mx), float(header.my), float(header.mz)])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw = np.where(m > 0, cella / np.where(m > 0, m, 1), np.nan)
    # float(str(float32)) gives the shortest decimal that the header's float32 stands for:
    # a voxel size written as 0.8 reads back as 0.8, not 0.800000011920929.
    vs = np.array([float(str(np.float32(v))) if np.isfinite(v) else float("nan") for v in raw])
    lo, hi = _VOXEL_RANGE
    ok = np.isfinite(vs) & (vs >= lo) & (vs <= hi)
    spatial = 2 if len(h["shape"]) == 2 else 3
    notes = []
    if not (ok[0] and ok[1]):
        ok[:] = False  # X and Y go together: a half-calibrated plane would look stretched
    if spatial == 3 and not ok[2] and ok[0]:
        bad_axes = ["Z"]
    else:
        bad_axes = [a for a, good in zip("XYZ"[:spatial], ok[:spatial]) if not good]
    if bad_axes:
        what = ", ".join(f"cella.{a.lower()}={cella[i]:g} over m{a.lower()}={m[i]:g}"
                         for i, a in enumerate("XYZ"[:spatial]) if a in bad_axes)
        notes.append(
            f"{label}: no usable voxel size for axis {'/'.join(bad_axes)} in the header ({what}); "
            f"{'that axis opens' if len(bad_axes) == 1 else 'those axes open'} in pixels. Set the pixel size in Å "
            "in the layer's scale if you know it."
        )
    vs_xyz = np.where(ok, vs, 1.0)
    units_xyz = [ANGSTROM if good else PIXEL for good in ok]
    return vs_xyz[::-1].copy(), units_xyz[::-1], bool(np.all(ok[:spatial])), notes


def _info(h: dict, row_sample, label: str) -> dict:
    header = h["header"]
    voxel_zyx, units_zyx, in_header, notes = _voxel_size(h, label)
    origin = tuple(float(v) if np.isfinite(v) else 0.0
                   for v in (header.origin.z, header.origin.y, header.origin.x))
    try:
        exttyp = bytes(header.exttyp).decode("ascii", "replace").strip("\x00 ")
    except Exception:  # noqa: BLE001
        exttyp = ""
    return {
        "mode": h["mode"],
        "axis_order": h["axis_order"],
        "voxel_size_zyx": voxel_zyx,
        "units_zyx": units_zyx,
        "voxel_size_in_header": in_header,
        "origin": origin,
        "nsymbt": h["nsymbt"],
        "row_sample": row_sample,
        "exttyp": exttyp,
        "volume_stack": h["volume_stack"],
        "image_stack": int(header.ispg) == 0,  # space group 0: sections are separate images (movie, particles)
        "warnings": notes,
    }


def _read_row_sample(path: Path, data: np.ndarray, nsymbt: int, n_sections: int = 16,
                     rows_per_section: int = 32) -> np.ndarray:
    """Whole rows from evenly spaced sections, read with ``pread`` for the contrast limits.

    Reading through the memory map would fault in the kernel's read-ahead around every sampled
    row (hundreds of MB of a 4 GiB file); explicit reads touch only the bytes sampled.
    """
    ny, nx = data.shape[-2:]
    nz = int(np.prod(data.shape[:-2])) if data.ndim > 2 else 1  # volume stacks: all their sections
    row_bytes = nx * data.dtype.itemsize
    offset0 = 1024 + nsymbt
    zs = np.unique(np.linspace(0, nz - 1, min(n_sections, nz)).round().astype(int))
    ys = np.unique(np.linspace(0, ny - 1, min(rows_per_section, ny)).round().astype(int))
    rows = []
    with open(path, "rb") as f:
        for z in zs:
            for y in ys:
                raw = os.pread(f.fileno(), row_bytes, offset0 + (int(z) * ny + int(y)) * row_bytes)
                if len(raw) < row_bytes:
                    raise MRCError(f"{path.name}: the file became shorter while it was read.")
                rows.append(np.frombuffer(raw, dtype=data.dtype))
    return np.concatenate(rows).astype(np.float32)


def _to_zyx(data: np.ndarray, axis_order: tuple[int, int, int]) -> np.ndarray:
    """Transpose file-order data (sections, rows, columns) into (Z, Y, X) as a view.

    ``axis_order`` is (mapc, mapr, maps): which of X=1, Y=2, Z=3 runs along the columns, rows
    and sections of the file. Volume stacks (V, sections, rows, columns) keep their first axis.
    """
    if data.ndim == 2:
        # one section: rows are the mapr axis, columns the mapc axis
        return data.T if axis_order[0] == 2 and axis_order[1] == 1 else data
    mapc, mapr, maps = axis_order
    lead = data.ndim - 3
    file_axis_of = {maps: lead, mapr: lead + 1, mapc: lead + 2}  # physical axis -> data axis
    return np.transpose(data, tuple(range(lead)) + (file_axis_of[3], file_axis_of[2], file_axis_of[1]))


def _chunks_for(data) -> tuple[int, ...]:
    if data.ndim >= 3:
        return (1,) * (data.ndim - 2) + tuple(data.shape[-2:])
    return tuple(data.shape)
