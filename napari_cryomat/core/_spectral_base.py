"""Energy axes, input checks, element lists, and spectrum images read in bands of whole rows (out of core).

Conventions: :mod:`napari_cryomat.core.spectral`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import (
    check_memory,
    integer,
    nonnegative,
    number,
    positive,
    regular_file,
)
from napari_cryomat.core._validate import window as _window

#: Largest energy accepted anywhere, eV (10 MeV: far above any EELS or EDS line).
_MAX_EV = 1e7
#: Largest detector resolution at Mn Kα, eV.
_MAX_FWHM = 1e4


# --------------------------------------------------------------------------------------------
# Energy axis and input checks
# --------------------------------------------------------------------------------------------


def energy_axis(*, offset: float, scale: float, size: int) -> np.ndarray:
    """Channel energies in eV: ``offset + scale * arange(size)``.

    Parameters
    ----------
    offset : float
        Energy of the first channel, eV.
    scale : float
        Channel width (dispersion), eV per channel; must be > 0.
    size : int
        Number of channels.
    """
    if scale is None or offset is None:
        raise ValueError("The energy axis is missing: give its offset and scale (eV).")
    offset = number(offset, "offset", low=-_MAX_EV, high=_MAX_EV, unit="eV")
    if isinstance(scale, (int, float, np.integer, np.floating)) and scale <= 0:
        raise ValueError(
            f"The energy axis has dispersion {scale} eV/channel (scale); it must be positive "
            "(an energy axis that decreases is not supported: reverse the channels first)."
        )
    scale = positive(scale, "scale", unit="eV per channel", high=1e6)
    size = integer(size, "size", low=1, high=100_000_000)
    return (offset + scale * np.arange(size)).astype(np.float64)


def check_energy_axis(energy, n_channels: int | None = None) -> np.ndarray:
    """Validate an energy axis and return it as float64.

    Raises ValueError with a message for a missing, non-1D, wrongly sized, non-finite or
    non-increasing axis.
    """
    if energy is None:
        raise ValueError(
            "The spectrum has no energy axis. Open it with the napari-cryomat reader, or set "
            "layer.metadata['energy_axis'] = {'offset': ..., 'scale': ..., 'units': 'eV'}."
        )
    e = np.asarray(energy)
    if np.iscomplexobj(e) or e.dtype == object or not np.issubdtype(e.dtype, np.number):
        raise ValueError(f"The energy axis must hold real energies in eV; got dtype {e.dtype}.")
    e = e.astype(np.float64)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(f"The energy axis must be a 1D array with at least two channels; got shape {e.shape}.")
    if n_channels is not None:
        n_channels = integer(n_channels, "n_channels", low=1)
    if n_channels is not None and e.size != n_channels:
        raise ValueError(
            f"The energy axis has {e.size} channels but the spectra (si, n_channels) have {n_channels}; "
            "check that the energy axis belongs to this spectrum image."
        )
    if not np.all(np.isfinite(e)) or np.abs(e).max() > _MAX_EV:
        raise ValueError(f"The energy axis contains NaN, inf or absurd values (beyond {_MAX_EV:g} eV).")
    d = np.diff(e)
    if np.any(d <= 0):
        raise ValueError(
            "The energy axis is not increasing (decreasing or repeated channels); reverse the "
            "spectra and the axis so that energy grows with the channel index."
        )
    return e


def check_spectrum_image(si, *, name: str = "spectrum image (si)", lazy: bool = False) -> None:
    """Raise ValueError unless ``si`` has axes (Y, X, E) with at least 2 channels, real values,
    and a size that fits in memory (with ``lazy``: one row of it, for band-by-band work)."""
    ndim = getattr(si, "ndim", np.ndim(si))
    if ndim == 2:
        raise ValueError(
            f"The chosen {name} is a 2D image, not a spectrum image (Y, X, E): pick a layer with "
            "an energy axis (e.g. one opened from .dm4/.emd/.bcf/.hspy)."
        )
    if ndim != 3:
        raise ValueError(f"A {name} must have 3 axes (Y, X, E); this one has {ndim}.")
    if si.shape[-1] < 2:
        raise ValueError(f"The {name} has a single energy channel.")
    if 0 in si.shape:
        raise ValueError(f"The {name} is empty (shape {tuple(si.shape)}).")
    if np.iscomplexobj(si):
        raise ValueError(f"The {name} holds complex numbers; spectra must be real counts.")
    _check_si_memory(si[:1] if lazy else si, name)


def _check_si_memory(si, name: str = "spectrum image (si)") -> None:
    check_memory(float(np.prod(np.shape(si))) * 4 * 3, name, f"working on {tuple(np.shape(si))} in float32")


def check_counts(data, *, what: str = "spectrum image data", tolerance: float = 0.0) -> None:
    """Raise ValueError if ``data`` holds negative counts (below ``-tolerance``) or NaN/inf."""
    if np.iscomplexobj(data):
        raise ValueError(f"The {what} holds complex numbers; counts must be real.")
    tolerance = nonnegative(tolerance, "tolerance", high=None)
    _check_si_memory(data, what)
    arr = np.asarray(data)
    # float32 counts: one float64 sum is finite exactly when every value is (no overflow possible)
    finite = (np.isfinite(arr.sum(dtype=np.float64)) if arr.dtype in (np.float32, np.float16)
              else np.all(np.isfinite(arr)))
    if arr.size and not finite:
        raise ValueError(f"The {what} contains NaN or inf values; replace them first.")
    mn = float(np.min(arr)) if arr.size else 0.0
    if mn < -tolerance:
        raise ValueError(
            f"The {what} has negative counts (minimum {mn:.3g}); it was probably dark- or "
            "background-subtracted. Add a constant offset or clip at zero "
            "(numpy.clip(data, 0, None)) before fitting."
        )


def window_slice(energy: np.ndarray, window: Sequence[float], *, what: str = "window") -> slice:
    """Channels of ``energy`` inside ``window = (start, stop)`` (eV) as a slice.

    Raises ValueError when the window is reversed, lies (partly) outside the recorded range
    or holds fewer than two channels.
    """
    try:
        lo, hi = (float(v) for v in np.asarray(window, dtype=np.float64).reshape(2))
    except (TypeError, ValueError):
        raise ValueError(f"The {what} must be (start, stop) in eV; got {window!r}.") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"The {what} must be finite (start, stop) in eV; got {window!r}.")
    if not hi > lo:
        raise ValueError(f"The {what} ({lo:g}–{hi:g} eV) is empty or reversed: give (start, stop) with start < stop.")
    energy = check_energy_axis(energy)
    step = energy[1] - energy[0]
    e_min, e_max = energy[0], energy[-1] + step
    if lo < e_min - 1e-9 * abs(e_min) - 1e-9 or hi > e_max + 1e-9:
        raise ValueError(
            f"The {what} {lo:g}–{hi:g} eV lies outside the recorded range "
            f"{energy[0]:g}–{energy[-1]:g} eV; move it inside the spectrum."
        )
    i0 = int(np.searchsorted(energy, lo - 1e-9, side="left"))
    i1 = int(np.searchsorted(energy, hi - 1e-9, side="left"))
    if i1 - i0 < 2:
        raise ValueError(f"The {what} {lo:g}–{hi:g} eV holds fewer than two channels; widen it.")
    return slice(i0, i1)


_SPLIT = re.compile(r"[,;\s]+")


def parse_elements(text: str | Iterable[str]) -> list[str]:
    """Parse "Fe, Pt" (or an iterable of symbols) into validated element symbols.

    A symbol may carry a line or edge after an underscore or colon ("Pt_La", "Fe:L").
    Returns the list with the suffix kept ("Pt_La"); raises ValueError for unknown symbols.
    """
    import xraylib

    if isinstance(text, str):
        items = _SPLIT.split(text.strip())
    elif isinstance(text, Iterable) and not isinstance(text, (bytes, Mapping)):
        items = list(text)
        if not all(isinstance(t, str) for t in items):
            raise ValueError(f"The elements (text) must be symbols such as 'Fe, Pt'; got {text!r}.")
    else:
        raise ValueError(f"The elements (text) must be symbols such as 'Fe, Pt'; got {text!r}.")
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        m = re.fullmatch(r"([A-Za-z]{1,2})(?:[_:](\S+))?", item)
        if m is None:
            raise ValueError(f"'{item}' is not a chemical element symbol (e.g. Fe, Pt, O).")
        sym, suffix = m.group(1), m.group(2) or ""
        sym = sym[:1].upper() + sym[1:].lower()
        try:
            z = xraylib.SymbolToAtomicNumber(sym)
        except ValueError:
            z = 0
        if not z:
            raise ValueError(f"'{item}' is not a chemical element symbol (e.g. Fe, Pt, O).")
        out.append(sym + (("_" + suffix) if suffix else ""))
    if not out:
        raise ValueError("No elements given (text is empty): type at least one element, e.g. 'Fe, Pt'.")
    return out


def _z(symbol: str) -> int:
    import xraylib

    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError(f"element must be a chemical element symbol such as 'Fe'; got {symbol!r}.")
    try:
        z = xraylib.SymbolToAtomicNumber(symbol.split("_")[0])
    except ValueError:
        z = 0
    if not z:
        raise ValueError(f"element '{symbol}' is not a chemical element symbol.")
    return int(z)


def _energy_range(energy_range):
    if energy_range is None:
        return None
    return _window(energy_range, "energy_range", unit="eV")


# --------------------------------------------------------------------------------------------
# Out of core: a spectrum image read in bands of whole rows
# --------------------------------------------------------------------------------------------

#: Default size of one band of an SI read at a time, bytes (as float32).
CHUNK_BYTES = 2**26


class RawSpectrumImage:
    """A spectrum image (Y, X, E) stored in a raw binary file (C order, no header beyond
    ``offset`` bytes), read through a memory map of only the rows asked for.

    Unlike ``numpy.memmap`` of the whole file, it never maps more than one band, so a file
    larger than the address space allowed to the process (``ulimit -v``) or than RAM can be
    mapped band by band (:func:`iter_si_chunks`), or wrapped by ``dask.array.from_array``.
    Indexing returns numpy arrays: ``raw[i:j]`` reads rows i..j-1.
    """

    def __init__(self, path, shape: Sequence[int], dtype="float32", offset: int = 0):
        import os

        self.path = regular_file(path, "path")
        dims = tuple(integer(v, "shape", low=1, high=2**31) for v in np.asarray(shape, dtype=object).reshape(-1))
        if len(dims) != 3:
            raise ValueError(f"shape must be (Y, X, E); got {shape!r}.")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype {dtype!r} is not a numpy data type (e.g. 'float32', '<u2').") from None
        if self.dtype.kind not in "iuf":
            raise ValueError(f"dtype {dtype!r} must be an integer or float type of counts.")
        self.offset = integer(offset, "offset", low=0, high=2**62)
        self.shape = dims
        self.ndim = 3
        need = self.offset + int(np.prod(dims)) * self.dtype.itemsize
        size = os.path.getsize(self.path)
        if size < need:
            raise ValueError(f"path {self.path!r} holds {size} bytes; shape {dims} of {self.dtype} at offset "
                             f"{self.offset} needs {need}. Check the shape, dtype and offset.")

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, start: int, stop: int) -> np.ndarray:
        row = self.shape[1] * self.shape[2]
        if stop <= start:
            return np.zeros((0,) + self.shape[1:], self.dtype)
        mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset + start * row * self.dtype.itemsize,
                       shape=(stop - start,) + self.shape[1:])
        try:
            return np.array(mm)
        finally:
            del mm

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)):
            i = int(first) + (self.shape[0] if first < 0 else 0)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"row {first} is outside 0..{self.shape[0] - 1}")
            return self._rows(i, i + 1)[(0,) + rest]
        if first is Ellipsis:
            first, rest = slice(None), key[1:] if len(key) > 1 and len(key) <= 3 else ()
        if not isinstance(first, slice):
            raise IndexError("RawSpectrumImage takes a row index or a slice of rows first")
        start, stop, step = first.indices(self.shape[0])
        lo, hi = (start, stop) if step > 0 else (stop + 1, start + 1)
        block = self._rows(lo, max(lo, hi))
        return block[(slice(None, None, step) if step > 0 else slice(start - lo, None if stop < 0 else stop - lo,
                                                                      step),) + rest]

    def __array__(self, dtype=None, copy=None):
        check_memory(float(np.prod(self.shape)) * self.dtype.itemsize, "path", "reading the whole SI")
        out = self._rows(0, self.shape[0])
        return out if dtype is None else out.astype(dtype)


def is_lazy(si) -> bool:
    """True for a spectrum image that is not a plain in-memory numpy array: a memory map, a dask
    array, an h5py/zarr dataset. Such an SI is processed band by band, never loaded whole."""
    return isinstance(si, np.memmap) or not isinstance(si, np.ndarray)


def rows_per_chunk(si, *, max_bytes: int = CHUNK_BYTES) -> int:
    """Rows (Y) per band so that one band of ``si`` (Y, X, E) as float32 holds at most ``max_bytes``
    (at least one row); a dask array's bands are whole multiples of its row chunks when they fit."""
    max_bytes = integer(max_bytes, "max_bytes", low=1, high=2**50)
    shape = tuple(int(s) for s in np.shape(si))
    if len(shape) != 3:
        raise ValueError(f"A spectrum image (si) must have 3 axes (Y, X, E); this one has shape {shape}.")
    row_bytes = max(1, shape[1] * shape[2] * 4)
    rows = max(1, min(shape[0], max_bytes // row_bytes))
    chunks = getattr(si, "chunks", None)
    if chunks and isinstance(chunks, tuple) and chunks and isinstance(chunks[0], tuple):  # dask
        step = int(chunks[0][0])
        if 0 < step <= rows:
            rows = rows // step * step
    return int(rows)


def _read_band(si, rows: slice) -> np.ndarray:
    block = si[rows]
    if hasattr(block, "compute"):  # dask
        block = block.compute()
    return np.asarray(block, dtype=np.float32)


def iter_si_chunks(si, *, max_bytes: int = CHUNK_BYTES, progress: ProgressCallback = None):
    """Yield ``(rows, block)`` over a spectrum image ``si`` (Y, X, E) in bands of whole rows.

    ``rows`` is the ``slice`` of Y the band covers and ``block`` a float32 numpy array
    (rows, X, E) read from ``si`` (numpy array, ``numpy.memmap``, dask array, h5py dataset):
    only one band is in memory at a time. ``progress`` gets the fraction of rows done after each
    band has been handled by the caller; a :class:`~napari_cryomat.core._progress.Cancelled`
    raised by it stops the iteration.
    """
    check_spectrum_image(si, lazy=True)
    ny = int(np.shape(si)[0])
    step = rows_per_chunk(si, max_bytes=max_bytes)
    report(progress, 0.0)
    for i in range(0, ny, step):
        rows = slice(i, min(ny, i + step))
        yield rows, _read_band(si, rows)
        report(progress, rows.stop / ny)


def map_si_blocks(fn, si, *, max_bytes: int = CHUNK_BYTES, progress: ProgressCallback = None):
    """Apply ``fn(block)`` to each band of ``si`` (Y, X, E) and assemble the per-pixel results.

    ``fn`` takes a float32 block (rows, X, E) and returns an array whose leading axes are
    (rows, X), or a tuple / dict of such arrays (trailing axes are kept, e.g. an aligned
    spectrum per pixel). The outputs are allocated once the first band is known; the result
    has the same structure as ``fn``'s, with Y in place of rows. Only one band of the input is
    read at a time, so a memory-mapped or dask SI larger than RAM can be mapped when the
    outputs fit. Identical to ``fn(si)`` for any per-pixel ``fn``.
    """
    if not callable(fn):
        raise ValueError(f"fn must be a function of one block (rows, X, E); got {type(fn).__name__}.")
    ny, nx = (int(s) for s in np.shape(si)[:2])
    out = None
    for rows, block in iter_si_chunks(si, max_bytes=max_bytes, progress=progress):
        res = fn(block)
        items = res.items() if isinstance(res, Mapping) else enumerate(res if isinstance(res, tuple) else (res,))
        items = [(k, np.asarray(v)) for k, v in items]
        if out is None:
            for k, v in items:
                if v.shape[:2] != block.shape[:2]:
                    raise ValueError(f"fn must return per-pixel results of shape {block.shape[:2]} + (...); "
                                     f"output {k!r} has shape {v.shape}.")
                check_memory(float(ny * nx) * max(1, int(np.prod(v.shape[2:]))) * v.dtype.itemsize,
                             "si", "the per-pixel results")
            out = {k: np.empty((ny, nx) + v.shape[2:], v.dtype) for k, v in items}
        for k, v in items:
            out[k][rows] = v
    if isinstance(res, Mapping):
        return out
    if isinstance(res, tuple):
        return tuple(out[i] for i in range(len(out)))
    return out[0]




def _parse_elements_arg(elements) -> list[str]:
    try:
        return parse_elements(elements)
    except ValueError as exc:
        raise ValueError(f"elements: {exc}") from None
