"""Spectrum imaging: energy axes, EELS edge maps, PCA denoising, profiles (EDS lines and maps: :mod:`.eds`).

Pure numpy / scipy; element data (edge onsets, X-ray line energies, line weights, atomic
weights) come from :mod:`xraylib`, never from tables typed by hand.

Conventions
-----------
- A spectrum image (SI) has axes ``(Y, X, E)``; a single spectrum is ``(E,)``.
- Energies are in eV everywhere (xraylib works in keV: converted here).
- An energy axis is given as the array of channel energies ``energy`` (eV, strictly
  increasing, one per channel); :func:`energy_axis` builds it from offset / scale / size.
- Windows are ``(start, stop)`` in eV; a channel belongs to a window when its energy lies in
  ``[start, stop)``.
- Long functions take ``progress=None``: a callable given the fraction done in [0, 1].
- Out of core: maps, PCA and the sum spectrum read a spectrum image in bands of whole rows
  (:func:`iter_si_chunks`, :func:`map_si_blocks`), so a ``numpy.memmap``, dask array, h5py dataset
  or :class:`RawSpectrumImage` larger than RAM is never loaded whole; results equal the in-memory ones.
- EELS windows: :func:`plan_eels_windows` keeps background windows clear of the listed elements'
  edges and of onsets detected in the data (:func:`detect_edge_onsets`) and says when it cannot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core._validate import (
    check_memory,
    choice,
    fraction,
    integer,
    nonnegative,
    number,
    positive,
    real_array,
    regular_file,
    vector,
)
from napari_cryomat.core._validate import window as _window

#: Largest energy accepted anywhere, eV (10 MeV: far above any EELS or EDS line).
_MAX_EV = 1e7
#: Largest detector resolution at Mn Kα, eV.
_MAX_FWHM = 1e4

__all__ = [
    "Edge",
    "ElementMap",
    "PCAResult",
    "energy_axis",
    "check_energy_axis",
    "check_spectrum_image",
    "check_counts",
    "window_slice",
    "parse_elements",
    # out of core
    "RawSpectrumImage",
    "is_lazy",
    "rows_per_chunk",
    "iter_si_chunks",
    "map_si_blocks",
    # EELS
    "eels_edges",
    "choose_edge",
    "default_eels_windows",
    "detect_edge_onsets",
    "EdgeWindows",
    "plan_eels_windows",
    "is_multi_window",
    "background_channels",
    "fit_power_law",
    "power_law",
    "subtract_background",
    "eels_map",
    "eels_maps",
    "sum_spectrum",
    "ratio_map",
    "thickness_log_ratio",
    # PCA
    "pca",
    "pca_reconstruct",
    "suggest_components",
    # profiles
    "line_profile",
    "profile_with_errors",
    "composition_profile",
]

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


# --------------------------------------------------------------------------------------------
# EELS
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """An EELS ionisation edge: ``element``, ``name`` ("K", "L2,3", "M4,5"), ``onset`` in eV."""

    element: str
    name: str
    onset: float

    @property
    def label(self) -> str:
        return f"{self.element} {self.name}"


# edge name -> xraylib shell whose binding energy is the onset (the lower of the pair)
_EELS_SHELLS = (("K", "K_SHELL"), ("L2,3", "L3_SHELL"), ("M4,5", "M5_SHELL"))


def eels_edges(element: str, *, energy_range: tuple[float, float] | None = None) -> list[Edge]:
    """EELS edges (K, L2,3, M4,5) of ``element`` with onsets from ``xraylib.EdgeEnergy``.

    Parameters
    ----------
    element : str
        Chemical symbol, e.g. "Fe".
    energy_range : (float, float), optional
        Keep only edges with onset in this range, eV.

    Returns
    -------
    list of Edge, sorted by onset (eV).
    """
    import xraylib

    z = _z(element)
    energy_range = _energy_range(energy_range)
    sym = element.split("_")[0]
    edges = []
    for name, shell in _EELS_SHELLS:
        try:
            onset = 1000.0 * xraylib.EdgeEnergy(z, getattr(xraylib, shell))
        except ValueError:
            continue
        if onset < 10.0:  # below the plasmons: not an edge anyone maps
            continue
        if energy_range is None or energy_range[0] <= onset <= energy_range[1]:
            edges.append(Edge(sym, name, onset))
    return sorted(edges, key=lambda e: e.onset)


def _nearest_listing(items, energy: np.ndarray, key) -> str:
    items = sorted(items, key=lambda it: min(abs(key(it) - energy[0]), abs(key(it) - energy[-1])))[:4]
    return ", ".join(f"{it.label} at {key(it):.0f} eV" for it in items) or "none known"


def choose_edge(element: str, *, energy: np.ndarray, min_pre_edge: float = 5.0) -> Edge:
    """The edge of ``element`` to map within ``energy``: the lowest-onset one with room for a
    pre-edge window (``min_pre_edge`` eV) and a post-edge window.

    ``element`` may name the edge: "Fe_L" / "Fe_L2,3", "O_K", "Ce_M".
    Raises ValueError listing the element's nearest edges when none is in range.
    """
    _z(element)
    energy = check_energy_axis(energy)
    min_pre_edge = nonnegative(min_pre_edge, "min_pre_edge", unit="eV", high=_MAX_EV)
    sym, _, want = element.partition("_")
    edges = eels_edges(sym)
    if want:
        w = want.upper().replace(" ", "")
        edges = [e for e in edges if e.name.replace(",", "").startswith(w.replace(",", "")[:2]) or e.name[0] == w[0]]
    lo = energy[0] + min_pre_edge
    hi = energy[-1] - 2 * (energy[1] - energy[0])
    usable = [e for e in edges if lo < e.onset < hi]
    if not usable:
        raise ValueError(
            f"{sym} has no EELS edge in the recorded range {energy[0]:.0f}–{energy[-1]:.0f} eV "
            f"(with room for a background window). Nearest edges: "
            f"{_nearest_listing(eels_edges(sym), energy, lambda e: e.onset)}."
        )
    return usable[0]


def default_eels_windows(onset: float, *, energy: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Default (background, integration) windows in eV for an edge at ``onset`` eV.

    Background: width ``clip(0.2*onset, 10, 100)`` eV, ending ``clip(0.02*onset, 2, 10)`` eV
    before the onset. Integration: from the onset, width ``clip(0.2*onset, 10, 100)`` eV.
    Both are clipped to the recorded range.
    """
    onset = positive(onset, "onset", unit="eV", high=_MAX_EV)
    energy = check_energy_axis(energy)
    width = float(np.clip(0.2 * onset, 10.0, 100.0))
    gap = float(np.clip(0.02 * onset, 2.0, 10.0))
    step = energy[1] - energy[0]
    b1 = onset - gap
    b0 = max(energy[0], b1 - width)
    i1 = min(energy[-1] + step, onset + width)
    return (float(b0), float(b1)), (float(onset), float(i1))


def detect_edge_onsets(
    spectrum,
    *,
    energy,
    min_snr: float = 8.0,
    min_jump: float = 0.02,
    width: float | None = None,
    min_energy: float = 30.0,
) -> np.ndarray:
    """Onsets (eV) of ionisation edges seen in a spectrum, listed or not.

    At every channel the counts of the next ``width`` eV (default 5 eV) are compared with the
    local power law extrapolated from the two preceding ``width`` windows. An onset is where the excess is more than ``min_snr`` standard deviations
    of the counting noise and more than ``min_jump`` (fraction) of the extrapolated background,
    taken at the strongest channel of each run; runs closer than ``2 width`` are one onset.
    Energies below ``min_energy`` (the plasmon region) are not searched.
    """
    energy = check_energy_axis(energy)
    spec = real_array(spectrum, "spectrum", ndim=1, dtype=np.float64, min_size=2)
    if spec.size != energy.size:
        raise ValueError(f"The spectrum has {spec.size} channels but the energy axis has {energy.size}.")
    min_snr = positive(min_snr, "min_snr", high=1e6)
    min_jump = nonnegative(min_jump, "min_jump", high=1e3)
    min_energy = number(min_energy, "min_energy", low=-_MAX_EV, high=_MAX_EV, unit="eV")
    step = float(energy[1] - energy[0])
    width = positive(width if width is not None else max(5.0, 4 * step), "width", unit="eV", high=_MAX_EV)
    n = max(2, int(round(width / step)))
    if spec.size < 3 * n + 1:
        return np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(np.maximum(spec, 0.0))])
    i = np.arange(2 * n, spec.size - n + 1)
    a0, a1, a2 = c[i - n] - c[i - 2 * n], c[i] - c[i - n], c[i + n] - c[i]
    # window centres E0 < E1 < E2; a power law gives a2 = a1 (a1/a0)^p with p = ln(E2/E1) / ln(E1/E0)
    e_mid = energy[0] + step * (np.arange(spec.size + 1) - 0.5 * n)
    e0, e1, e2 = e_mid[i - n], e_mid[i], e_mid[i + n]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where((e0 > 0), np.log(e2 / e1) / np.log(e1 / e0), 1.0)
        pred = np.where((a0 > 0) & (e0 > 0), a1 * np.power(a1 / a0, p), np.inf)
        var = a2 + pred**2 * ((1 + p) ** 2 / np.maximum(a1, 1.0) + p**2 / np.maximum(a0, 1.0))
        z = (a2 - pred) / np.sqrt(np.maximum(var, 1.0))
        jump = a2 / pred - 1.0
    hit = (z > min_snr) & (jump > min_jump) & np.isfinite(z) & (energy[np.minimum(i, energy.size - 1)] >= min_energy)
    onsets, run = [], []
    for k in np.flatnonzero(hit):
        if run and k - run[-1] > 2 * n:
            onsets.append(run[int(np.argmax(z[run]))])
            run = []
        run.append(k)
    if run:
        onsets.append(run[int(np.argmax(z[run]))])
    return np.array([energy[i[k]] for k in onsets], dtype=np.float64)


@dataclass(frozen=True)
class EdgeWindows:
    """The windows of one element's edge: ``background`` (one (start, stop) or a list of them for a
    multi-window fit) and ``integration`` in eV; ``clean`` is False when no window of the minimum
    width fits between a preceding edge and the onset (or the next edge cuts the integration),
    and ``message`` then says so and what to do."""

    element: str
    edge: Edge
    background: tuple
    integration: tuple[float, float]
    clean: bool = True
    message: str = ""


def _after_edge_margin(onset: float) -> float:
    """Energy above an edge onset taken by its near-edge structure (no power law there), eV."""
    return max(30.0, 0.06 * onset)


def _near_edge_end(onset: float, energy: np.ndarray, spectrum) -> float:
    """Where the near-edge structure of the edge at ``onset`` ends, eV: :func:`_after_edge_margin` above the
    onset, or later where ``spectrum`` still rises significantly beyond that (a near-edge peak).

    A rise counts when the mean of the next 2 eV exceeds that of the last 2 eV by 3 standard errors (the noise
    measured from channel-to-channel differences). Why: on exSpy's real MnO spectrum the O K near-edge peaks run to 570 eV, 38 eV above the onset; a Mn L2,3
    background window from 564 eV (the fixed margin) put the Mn integral 5 % below exSpy's fit over the clean
    575-632 eV window. Idealised edges (no near-edge peaks) keep the fixed margin and its wider window.
    """
    end = onset + _after_edge_margin(onset)
    if spectrum is None:
        return end
    step = float(energy[1] - energy[0])
    half = max(2, int(round(2.0 / step)))  # compare the means of two 2 eV blocks
    lo, hi = np.searchsorted(energy, [end - 5.0, onset + 2 * _after_edge_margin(onset)])
    lo, hi = max(int(lo), half), min(int(hi), spectrum.size - half)
    if hi <= lo:
        return end
    noise = 1.4826 * np.median(np.abs(np.diff(spectrum[lo - half:hi + half]))) / np.sqrt(2.0)  # per channel
    sums = np.concatenate([[0.0], np.cumsum(spectrum)])
    centres = np.arange(lo, hi)
    rise = (sums[centres + half] - sums[centres]) / half - (sums[centres] - sums[centres - half]) / half
    rising = centres[rise > 3.0 * noise * np.sqrt(2.0 / half)]
    return max(end, float(energy[rising[-1]]) + 3 * half * step) if rising.size else end  # past the peak's fall


def _obstacles(elements: list[str], energy: np.ndarray, spectrum) -> list[tuple[float, str]]:
    """(onset, label) of every edge of the listed elements in range and of the onsets detected in
    ``spectrum`` that no listed edge explains."""
    known = []
    for el in elements:
        known += [(e.onset, e.label) for e in eels_edges(el.split("_")[0]) if energy[0] < e.onset < energy[-1]]
    out = list(known)
    if spectrum is not None:
        for o in detect_edge_onsets(spectrum, energy=energy):
            # within a listed edge's near-edge region (and 10 eV past its last peak) a detection is that peak
            if not any(k - 5.0 <= o <= _near_edge_end(k, energy, spectrum) + 10.0 for k, _ in known):
                out.append((float(o), f"an unlisted edge at {o:.0f} eV"))
    return sorted(out)


def plan_eels_windows(
    elements,
    *,
    energy,
    spectrum=None,
    min_width: float | None = None,
) -> dict[str, EdgeWindows]:
    """Background and integration windows for each element that never straddle another edge.

    The background window ends ``clip(0.02 onset, 2, 10)`` eV before the onset and is
    ``clip(0.2 onset, 10, 100)`` eV wide, but starts no earlier than
    ``max(30, 0.06 onset')`` eV above any preceding onset', later where the spectrum still rises there
    (near-edge peaks, :func:`_near_edge_end`): the edges of
    all ``elements`` and, when ``spectrum`` (e.g. the sum spectrum) is given, the onsets
    detected in it (:func:`detect_edge_onsets`). The integration window stops before the next
    such edge. When the clean background window is narrower than ``min_width`` (default
    ``max(10, 0.05 onset)`` eV) the plan is marked not ``clean`` with a message offering a
    multi-window fit or the linear model fit of :func:`napari_cryomat.core.eels_quant.fit_edges`.
    """
    energy = check_energy_axis(energy)
    els = _parse_elements_arg(elements)
    if spectrum is not None:
        spectrum = real_array(spectrum, "spectrum", ndim=1, dtype=np.float64, min_size=2)
        if spectrum.size != energy.size:
            raise ValueError(f"The spectrum has {spectrum.size} channels but the energy axis has {energy.size}.")
    min_width = positive(min_width, "min_width", unit="eV", high=_MAX_EV) if min_width is not None else None
    obstacles = _obstacles(els, energy, spectrum)
    step = float(energy[1] - energy[0])
    e_end = float(energy[-1] + step)
    out = {}
    for el in els:
        edge = choose_edge(el, energy=energy)
        onset = edge.onset
        width = float(np.clip(0.2 * onset, 10.0, 100.0))
        gap = float(np.clip(0.02 * onset, 2.0, 10.0))
        need = min_width if min_width is not None else max(10.0, 0.05 * onset)
        end = onset - gap
        before = [(o, lab) for o, lab in obstacles if o < onset - 2.0]
        start, limit = max(float(energy[0]), end - width), None
        for o, lab in before:
            # near-edge peaks are looked for after the listed edges only: an unlisted onset is weak, and the
            # ripple after it in a real spectrum (exSpy's MnO near 500 eV) would pass for them
            listed = not lab.startswith("an unlisted edge")
            near_edge_end = _near_edge_end(o, energy, spectrum if listed else None)
            if near_edge_end > start:
                start, limit = near_edge_end, (o, lab)
        after = [o for o, _ in obstacles if o > onset + max(10.0, 0.02 * onset)]
        stop = min([onset + width, e_end] + [o - 2.0 for o in after])
        clean, msg = True, ""
        if end - start < need:
            clean = False
            what = f"{limit[1]} ({limit[0]:.0f} eV)" if limit else f"the start of the spectrum ({energy[0]:.0f} eV)"
            msg = (f"{edge.label}: no clean background window of at least {need:.0f} eV between {what} and the onset "
                   f"({onset:.0f} eV). Fit the background over several windows (windows={{'{el}': {{'background': "
                   f"[(lo1, hi1), (lo2, hi2)]}}}}) or fit all edges with the linear model (eels_quant.fit_edges).")
            if end - start < 2 * step:  # nothing clean at all: the plain default, flagged
                start = max(float(energy[0]), end - width)
        if stop - onset < 10.0:
            clean = False
            msg += (f" {edge.label}: the next edge starts {stop + 2 - onset:.0f} eV after the onset; the integration "
                    "window is too short: fit the overlapping edges with the linear model (eels_quant.fit_edges).")
        out[el] = EdgeWindows(el, edge, (float(start), float(end)), (float(onset), float(stop)), clean, msg.strip())
    return out


def is_multi_window(window) -> bool:
    """True for a list of (start, stop) windows rather than one window."""
    try:
        arr = np.asarray(window, dtype=object)
    except Exception:  # noqa: BLE001
        return False
    return arr.ndim == 2 and arr.shape[1] == 2 or (arr.ndim == 1 and len(arr) > 0 and all(
        isinstance(w, (tuple, list, np.ndarray)) for w in window))


def background_channels(energy, window, *, what: str = "background window"):
    """Channels of one window (a slice) or of several windows (sorted unique indices) of ``energy``."""
    if not is_multi_window(window):
        return window_slice(energy, window, what=what)
    parts = list(window)
    if not 1 <= len(parts) <= 16:
        raise ValueError(f"The {what} must be one (start, stop) or 1 to 16 of them; got {len(parts)}.")
    idx = [np.arange(sl.start, sl.stop) for sl in
           (window_slice(energy, w, what=f"{what} {k + 1}") for k, w in enumerate(parts))]
    return np.unique(np.concatenate(idx))


def _window_stop(energy, window) -> int:
    ch = background_channels(energy, window)
    return int(ch.stop if isinstance(ch, slice) else ch[-1] + 1)


def _as_float32_view(si):
    a = np.asarray(si)
    return a if a.dtype == np.float32 else a.astype(np.float32)


def fit_power_law(
    si,
    *,
    energy,
    window: Sequence[float],
    method: str = "lsq",
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``I(E) = A * E**(-r)`` over ``window`` for every spectrum at once.

    Parameters
    ----------
    si : array (..., E)
        Spectra in counts per channel (any leading shape, e.g. (Y, X)).
    energy : array (E,)
        Channel energies, eV (increasing, > 0 over the window).
    window : (float, float) or list of them
        Pre-edge fitting window (start, stop), eV; several windows (lsq only) are fitted together,
        e.g. both sides of a weak preceding edge's near-edge region.
    method : {"lsq", "two_area"}
        ``"lsq"``: linear least squares of log I on log E over all window channels.
        ``"two_area"``: Egerton's two-area estimate, closed form: the window is split into two
        halves with counts I1, I2 and ``r = 2 ln(I1/I2) / ln(E3/E1)``.

    Returns
    -------
    A, r : arrays of the leading shape (float32). The model gives counts per channel.
    """
    if np.iscomplexobj(si):
        raise ValueError("The spectra (si) hold complex numbers; counts must be real.")
    _check_si_memory(si)
    choice(method, "method", ("lsq", "two_area", "two-area", "egerton"))
    energy = check_energy_axis(energy, np.shape(si)[-1])
    sl = background_channels(energy, window)
    e = energy[sl]
    if e[0] <= 0:
        raise ValueError("The background window must lie at positive energies (the power law diverges at 0 eV).")
    if not isinstance(sl, slice) and method != "lsq":
        raise ValueError("A background fitted over several windows needs method='lsq' (two_area takes one window).")
    block = np.asarray(si[..., sl], dtype=np.float32)
    if method == "lsq":
        x = np.log(e)
        xc = (x - x.mean()).astype(np.float32)
        sxx = float(np.sum(xc.astype(np.float64) ** 2))
        y = np.log(np.maximum(block, np.float32(0.5)))  # empty channels: half a count
        slope = (y @ xc) / np.float32(sxx)
        ymean = y.mean(axis=-1)
        r = -slope
        log_a = ymean - slope * np.float32(x.mean())
        a = np.exp(log_a)
        return a.astype(np.float32), r.astype(np.float32)
    if method in ("two_area", "two-area", "egerton"):
        n = e.size // 2
        if n < 1:
            raise ValueError("The background window is too narrow for the two-area method; widen it.")
        de = float(energy[1] - energy[0])
        e1 = e[0] - 0.5 * de
        e3 = e[2 * n - 1] + 0.5 * de
        i1 = np.maximum(block[..., :n].sum(axis=-1, dtype=np.float32), np.float32(0.5))
        i2 = np.maximum(block[..., n : 2 * n].sum(axis=-1, dtype=np.float32), np.float32(0.5))
        r = (2.0 * np.log(i1 / i2) / np.log(e3 / e1)).astype(np.float32)
        # sanity: equal-width halves only; guard r == 1 for the closed-form amplitude
        # amplitude from the total counts: S = (A / de) * (E3^(1-r) - E1^(1-r)) / (1 - r)
        omr = 1.0 - r.astype(np.float64)
        omr = np.where(np.abs(omr) < 1e-6, 1e-6, omr)
        total = (i1.astype(np.float64) + i2) * de
        a = omr * total / (np.power(e3, omr) - np.power(e1, omr))
        return a.astype(np.float32), r
    raise ValueError(f"Unknown background method '{method}': use 'lsq' or 'two_area'.")


def power_law(energy, a, r) -> np.ndarray:
    """Evaluate ``a * energy**(-r)`` with a, r of shape (...) and energy (E,): result (..., E)."""
    e = real_array(energy, "energy", dtype=np.float64, copies=2)
    if np.any(e <= 0):
        raise ValueError("The energy axis (energy) must be positive for a power law (it diverges at 0 eV).")
    a = real_array(np.asarray(a), "a", min_size=0, dtype=np.float64, copies=2) if np.ndim(a) else \
        np.float64(number(a, "a"))
    r = real_array(np.asarray(r), "r", min_size=0, dtype=np.float64, copies=2) if np.ndim(r) else \
        np.float64(number(r, "r", low=-100, high=100))
    if np.any(np.abs(r) > 100):
        raise ValueError("r (the power-law exponent) must lie within ±100.")
    check_memory(float(np.size(a)) * e.size * 4 * 2, "a", "the background model")
    with np.errstate(over="ignore"):
        out = (np.asarray(a, np.float32)[..., None] * np.exp(-np.asarray(r, np.float32)[..., None]
                                                                 * np.log(e.astype(np.float32))))
    if not np.all(np.isfinite(out)):
        raise ValueError("The power law a * energy**(-r) overflows for these a and r; check the fit parameters.")
    return out


def subtract_background(
    si,
    *,
    energy,
    window: Sequence[float],
    method: str = "lsq",
    progress: ProgressCallback = None,
) -> np.ndarray:
    """Spectra minus their power-law background fitted over ``window`` (eV).

    The background is subtracted from the start of the window onwards; channels below it are
    set to 0 (the power law does not describe them). Returns float32 with the shape of ``si``.
    """
    energy = check_energy_axis(energy, np.shape(si)[-1])
    check_counts(si, what="spectrum image (si)")
    a, r = fit_power_law(si, energy=energy, window=window, method=method)
    report(progress, 0.3)
    ch = background_channels(energy, window)
    start = int(ch.start if isinstance(ch, slice) else ch[0])
    out = np.zeros(np.shape(si), dtype=np.float32)
    rows = out.reshape(-1, out.shape[-1]) if out.ndim > 1 else out[None]
    src = np.asarray(si).reshape(rows.shape)
    a_r, r_r = a.reshape(-1), r.reshape(-1)
    chunk = max(1, 2**22 // max(1, rows.shape[-1]))
    for i in range(0, rows.shape[0], chunk):
        j = min(rows.shape[0], i + chunk)
        rows[i:j, start:] = src[i:j, start:] - power_law(energy[start:], a_r[i:j], r_r[i:j])
        report(progress, 0.3 + 0.7 * j / rows.shape[0])
    return out


@dataclass
class ElementMap:
    """A map of one element: ``data`` (Y, X), with what produced it.

    ``kind`` is "eels" (background-subtracted edge counts) or "eds" (net line counts);
    ``feature`` the edge or line label ("O K", "Fe Ka"); ``energy`` its onset / line energy (eV);
    ``windows`` a dict of named (start, stop) windows in eV; ``extra`` other per-pixel results
    (e.g. power-law ``A`` and ``r``).
    """

    element: str
    kind: str
    feature: str
    energy: float
    data: np.ndarray
    windows: dict
    extra: dict = field(default_factory=dict)


def _eels_block(block, energy, background_window, integration_window, method):
    """(map, A, r) of one in-memory block (..., E): the per-pixel arithmetic of :func:`eels_map`."""
    a, r = fit_power_law(block, energy=energy, window=background_window, method=method)
    sl = window_slice(energy, integration_window, what="integration window")
    signal = block[..., sl].sum(axis=-1, dtype=np.float32)
    loge = np.log(energy[sl]).astype(np.float32)
    bg = np.exp(-r[..., None] * loge).sum(axis=-1, dtype=np.float32) * a
    return (signal - bg).astype(np.float32), a, r


def _net_variance(block, energy, background_window, integration_window, net) -> np.ndarray:
    """Counting variance of net edge counts: the counts in the integration window plus the
    background's, scaled by (integration / background channels), as the background is known
    only as well as the counts it was fitted to (a lower bound: the extrapolation of the slope
    adds more, Egerton's h-factor)."""
    sl = window_slice(energy, integration_window)
    ch = background_channels(energy, background_window)
    n_bg = (ch.stop - ch.start) if isinstance(ch, slice) else ch.size
    total = block[..., sl].sum(axis=-1, dtype=np.float32)
    bg = np.maximum(total - net, 0)
    return (np.maximum(total, 0) + bg * np.float32((sl.stop - sl.start) / max(n_bg, 1))).astype(np.float32)


def eels_map(
    si,
    *,
    energy,
    background_window: Sequence[float],
    integration_window: Sequence[float],
    method: str = "lsq",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background-subtracted edge counts summed over ``integration_window`` (eV).

    ``background_window`` is one (start, stop) or a list of them (multi-window fit, lsq).
    Returns ``(map, A, r)``: the integrated edge signal (counts, float32, shape of the SI's
    leading axes) and the fitted power-law parameters.
    """
    energy = check_energy_axis(energy, np.shape(si)[-1])
    check_counts(si, what="spectrum image (si)")
    sl = window_slice(energy, integration_window, what="integration window")
    if sl.start < _window_stop(energy, background_window) - 1:
        raise ValueError("The integration window must start after the background window ends.")
    return _eels_block(np.asarray(si, dtype=np.float32), energy, background_window, integration_window, method)


def sum_spectrum(si, *, max_bytes: int = CHUNK_BYTES, progress: ProgressCallback = None) -> np.ndarray:
    """Sum spectrum (E,) float64 of an SI (Y, X, E), read band by band (memory map, dask)."""
    total = np.zeros(np.shape(si)[-1], np.float64)
    for _rows, block in iter_si_chunks(si, max_bytes=max_bytes, progress=progress):
        band_sum = block.sum(axis=(0, 1), dtype=np.float64)
        if not np.all(np.isfinite(band_sum)):
            raise ValueError("The spectrum image (si) contains NaN or inf values; replace them first.")
        total += band_sum
    return total


def eels_maps(
    si,
    *,
    energy,
    elements: Sequence[str] | str,
    windows: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    method: str = "lsq",
    detect_onsets: bool = True,
    max_bytes: int = CHUNK_BYTES,
    progress: ProgressCallback = None,
) -> dict[str, ElementMap]:
    """EELS maps of several elements at once, band by band (a memory-mapped or dask SI larger
    than RAM is never loaded whole; the result is the same as for the SI in memory).

    Parameters
    ----------
    si : array (Y, X, E)
        Core-loss spectrum image, counts (numpy, numpy.memmap, dask, h5py).
    energy : array (E,)
        Channel energies, eV.
    elements : list of str or str
        Symbols ("Li, C, N, O"); "Fe_L" picks a given edge.
    windows : dict, optional
        ``{element: (background_window, integration_window)}`` or
        ``{element: {"background": (lo, hi), "integration": (lo, hi)}}`` in eV, overriding the
        plan of :func:`plan_eels_windows` for the given elements; a background may be a list of
        windows (multi-window fit).
    method : {"lsq", "two_area"}
        Power-law fit, see :func:`fit_power_law`.
    detect_onsets : bool
        Keep default background windows clear of edges detected in the sum spectrum too.
    max_bytes : int
        Size of one band read at a time.

    Returns
    -------
    dict element -> ElementMap; ``extra`` holds ``A``, ``r``, ``clean`` and ``message`` (why a
    default window could not be placed clear of other edges).
    """
    check_spectrum_image(si, lazy=True)
    energy = check_energy_axis(energy, si.shape[-1])
    choice(method, "method", ("lsq", "two_area", "two-area", "egerton"))
    elements = _parse_elements_arg(elements)
    windows = dict(windows or {})
    # the sum-spectrum pass reports progress too, so Cancel works from the start on a big lazy SI
    first = 0.3 if detect_onsets and is_lazy(si) else 0.05
    total = sum_spectrum(si, max_bytes=max_bytes, progress=sub_progress(progress, 0.0, first)) if detect_onsets else None
    plan = plan_eels_windows(elements, energy=energy, spectrum=total)
    steps = []
    for el in elements:
        p = plan[el]
        given = windows.get(el) or windows.get(el.split("_")[0])
        bgw, intw = p.background, p.integration
        if isinstance(given, Mapping):
            bgw, intw = given.get("background", bgw), given.get("integration", intw)
        elif given is not None:
            bgw, intw = given
        own_background = bgw is not p.background
        background_channels(energy, bgw, what=f"{el} background window")
        isl = window_slice(energy, intw, what=f"{el} integration window")
        if isl.start < _window_stop(energy, bgw) - 1:
            raise ValueError(f"The {el} integration window must start after its background window ends.")
        clean, message = (True, "") if own_background else (p.clean, p.message)
        steps.append((el, p.edge, bgw, intw, clean, message))

    def block_maps(block):
        check_counts(block, what="spectrum image (si)")
        out = {}
        for el, _edge, bgw, intw, _c, _m in steps:
            m, a, r = _eels_block(block, energy, bgw, intw, method)
            out[(el, "map")], out[(el, "A")], out[(el, "r")] = m, a, r
            out[(el, "variance")] = _net_variance(block, energy, bgw, intw, m)
        return out

    res = map_si_blocks(block_maps, si, max_bytes=max_bytes, progress=sub_progress(progress, first, 1.0))
    out = {}
    for el, edge, bgw, intw, clean, message in steps:
        bg = [tuple(map(float, w)) for w in bgw] if is_multi_window(bgw) else tuple(map(float, bgw))
        out[el] = ElementMap(
            element=el,
            kind="eels",
            feature=edge.label,
            energy=edge.onset,
            data=res[(el, "map")],
            windows={"background": bg, "integration": tuple(map(float, intw))},
            extra={"A": res[(el, "A")], "r": res[(el, "r")], "variance": res[(el, "variance")], "clean": clean,
                   "message": message},
        )
    return out


def _parse_elements_arg(elements) -> list[str]:
    try:
        return parse_elements(elements)
    except ValueError as exc:
        raise ValueError(f"elements: {exc}") from None


def ratio_map(numerator, denominator, *, min_denominator: float | None = None) -> np.ndarray:
    """Pixel-wise ``numerator / denominator`` (float32), NaN where the denominator is below
    ``min_denominator`` (default: 5 % of the denominator's 99th percentile) or not positive."""
    num = real_array(numerator, "numerator", finite=False, min_size=1)
    den = real_array(denominator, "denominator", finite=False, min_size=1)
    min_denominator = number(min_denominator, "min_denominator", allow_none=True)
    if num.shape != den.shape:
        raise ValueError(
            f"Ratio maps need two maps of the same shape: numerator is {num.shape}, denominator is {den.shape}."
        )
    if min_denominator is None:
        min_denominator = 0.05 * float(np.nanpercentile(den, 99)) if den.size else 0.0
    ok = (den > max(min_denominator, 0.0)) & np.isfinite(den)
    out = np.full(num.shape, np.nan, dtype=np.float32)
    np.divide(num, den, out=out, where=ok)
    return out


def thickness_log_ratio(
    si,
    *,
    energy,
    zlp_threshold: float | None = None,
) -> tuple[np.ndarray, float]:
    """Relative thickness t/λ = ln(I_t / I_0) from a low-loss SI (log-ratio method).

    Parameters
    ----------
    si : array (..., E)
        Low-loss spectra including the zero-loss peak (ZLP), counts.
    energy : array (E,)
        Channel energies, eV; must include 0 eV.
    zlp_threshold : float, optional
        Upper end of the zero-loss integral, eV. Default: the first minimum of the summed
        spectrum after the ZLP maximum (the ZLP/plasmon valley).

    Returns
    -------
    t_over_lambda : array (...), float32
    zlp_threshold : float, eV (the one used)
    """
    energy = check_energy_axis(energy, np.shape(si)[-1])
    check_counts(si, what="low-loss spectrum image (si)")
    zlp_threshold = number(zlp_threshold, "zlp_threshold", low=-_MAX_EV, high=_MAX_EV, unit="eV", allow_none=True)
    if not (energy[0] <= 0.0 <= energy[-1]):
        raise ValueError(
            f"The low-loss spectrum ({energy[0]:g}–{energy[-1]:g} eV) does not contain the zero-loss "
            "peak at 0 eV; pick the low-loss SI (or fix its energy offset)."
        )
    data = np.asarray(si, dtype=np.float32)
    if zlp_threshold is None:
        total = data.reshape(-1, data.shape[-1]).sum(axis=0, dtype=np.float64)
        zone = (energy > -20) & (energy < 20)
        idx = np.flatnonzero(zone)
        i_max = int(idx[np.argmax(total[idx])])
        from scipy.ndimage import uniform_filter1d

        sm = uniform_filter1d(total, 3)
        i = i_max + 1
        while i < sm.size - 1 and sm[i + 1] < sm[i]:
            i += 1
        zlp_threshold = float(energy[i])
    i_end = int(np.searchsorted(energy, zlp_threshold))
    if i_end <= 0 or i_end >= energy.size:
        raise ValueError(f"The zero-loss threshold (zlp_threshold) {zlp_threshold:g} eV lies outside the spectrum.")
    i0 = data[..., :i_end].sum(axis=-1, dtype=np.float32)
    it = data.sum(axis=-1, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(i0 > 0, np.log(it / np.maximum(i0, 1e-12)), np.nan).astype(np.float32)
    return t, float(zlp_threshold)


# --------------------------------------------------------------------------------------------
# PCA
# --------------------------------------------------------------------------------------------


@dataclass
class PCAResult:
    """A truncated PCA of a spectrum image (in the Poisson-normalised space when ``poisson``).

    ``scores`` (Y*X, k) and ``factors`` (k, E) with singular values folded into the scores;
    ``explained_variance`` the leading eigenvalues (variance per component) for the scree
    plot; ``total_variance`` the variance summed over all components; ``mean`` (E,) subtracted before the decomposition; ``g`` (Y*X,) and ``h`` (E,)
    the Poisson weights (ones when not ``poisson``); ``shape`` the SI shape.
    """

    scores: np.ndarray
    factors: np.ndarray
    explained_variance: np.ndarray
    mean: np.ndarray
    g: np.ndarray
    h: np.ndarray
    shape: tuple
    poisson: bool
    total_variance: float = 0.0

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        total = self.total_variance or float(self.explained_variance.sum())
        return self.explained_variance / max(total, 1e-30)


def _orthonormal(y: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the columns of a tall matrix: CholeskyQR2 (two passes of
    ``Y (chol(YᵀY))⁻ᵀ``), matmul-only and much faster than Householder QR on tall float32
    blocks; falls back to numpy's QR when the Gram matrix is singular."""
    q = y
    try:
        for _ in range(2):
            gram = (q.T @ q).astype(np.float64)
            gram[np.diag_indices_from(gram)] += 1e-10 * max(np.trace(gram), 1e-30)
            low = np.linalg.cholesky(gram)
            q = q @ np.linalg.inv(low).T.astype(q.dtype)
        if not np.all(np.isfinite(q)):
            raise np.linalg.LinAlgError
        return q
    except np.linalg.LinAlgError:
        return np.linalg.qr(y)[0]


def pca(
    si,
    *,
    poisson: bool = True,
    max_components: int = 32,
    oversample: int = 16,
    n_iter: int = 2,
    seed: int = 0,
    max_bytes: int = CHUNK_BYTES,
    progress: ProgressCallback = None,
) -> PCAResult:
    """PCA of a spectrum image by (randomised) SVD, with Poisson normalisation.

    The data matrix ``D`` (pixels × channels) is scaled to ``D / sqrt(g ⊗ h)`` with ``g`` the
    total counts per pixel and ``h`` the mean spectrum (Keenan & Kotula 2004), which makes
    Poisson noise uniform so that the scree plot separates signal from a flat noise floor.
    The mean spectrum is removed and the leading ``max_components + oversample`` singular
    vectors are found by a randomised range finder with ``n_iter`` power iterations (Halko,
    Martinsson & Tropp 2011), in float32 bands of whole rows (``max_bytes`` each): the
    normalised matrix is never stored whole, and a memory-mapped or dask SI larger than RAM is
    read band by band (the scores, pixels × components, stay in memory).

    Parameters
    ----------
    si : array (Y, X, E)
        Counts (must not be negative when ``poisson``).
    poisson : bool
        Apply the Poisson normalisation (default True).
    max_components : int
        Number of components kept for reconstruction.
    oversample, n_iter : int
        Extra random vectors and power iterations of the range finder.
    seed : int
        Seed of the random test matrix (results are deterministic).

    Returns
    -------
    PCAResult
        ``explained_variance`` holds the ``max_components + oversample`` leading eigenvalues
        (for the scree plot), ``total_variance`` the variance of all components.
    """
    check_spectrum_image(si, lazy=True)
    max_components = integer(max_components, "max_components", low=1, high=4096)
    oversample = integer(oversample, "oversample", low=0, high=4096)
    n_iter = integer(n_iter, "n_iter", low=0, high=50)
    seed = integer(seed, "seed", low=0, high=2**32 - 1)
    ny, nx, ne = (int(v) for v in si.shape)
    npx = ny * nx
    # bands of whole rows, read one at a time (a memory map or dask SI is never loaded whole;
    # an in-memory float32 SI is only viewed)
    step = rows_per_chunk(si, max_bytes=max_bytes)
    bands = [(y * nx, min(ny, y + step) * nx, slice(y, min(ny, y + step))) for y in range(0, ny, step)]
    in_memory = not is_lazy(si)

    def band(rows: slice) -> np.ndarray:
        blk = np.asarray(si[rows], dtype=np.float32) if in_memory else _read_band(si, rows)
        return blk.reshape(-1, ne)

    n_passes = 3 + 2 * n_iter + 2
    done = [0]

    def tick():
        done[0] += 1
        report(progress, done[0] / n_passes)

    g = np.zeros(npx, np.float64)
    h = np.zeros(ne, np.float64)
    for i, j, rows in bands:  # first pass: checks and the Poisson weights
        blk = band(rows)
        if poisson:
            check_counts(blk, what="spectrum image (si)")
        elif not np.all(np.isfinite(blk)):
            raise ValueError("The spectrum image (si) contains NaN or inf values; replace them first.")
        g[i:j] = blk.sum(axis=1, dtype=np.float64)
        h += blk.sum(axis=0, dtype=np.float64)
    tick()
    if poisson:
        if g.sum() <= 0:
            raise ValueError("The spectrum image (si) is empty (all counts zero).")
        g = np.sqrt(g / g.mean()).astype(np.float32)
        h = np.sqrt(h / h.mean()).astype(np.float32)
        g[g == 0] = 1.0
        h[h == 0] = 1.0
    else:
        g = np.ones(npx, np.float32)
        h = np.ones(ne, np.float32)
    inv_g, inv_h = (1.0 / g).astype(np.float32), (1.0 / h).astype(np.float32)
    # The normalised, centred matrix X = G⁻¹ D H⁻¹ − 1 μᵀ is never formed: its products with
    # thin matrices are diagonal scalings of products with D, which BLAS does at full speed.
    col = np.zeros(ne, np.float64)
    sq = np.zeros(ne, np.float64)
    for i, j, rows in bands:
        blk = band(rows)
        col += inv_g[i:j].astype(np.float64) @ blk
        sq += (inv_g[i:j] ** 2).astype(np.float64) @ (blk * blk)
    mean = inv_h * col / npx  # mean normalised spectrum
    sumsq = float(sq @ (inv_h.astype(np.float64) ** 2))
    total_variance = max(sumsq - npx * float(mean @ mean), 0.0) / max(npx - 1, 1)
    mean32 = mean.astype(np.float32)
    tick()

    def x_times(m):  # X @ m, m (E, l)
        out = np.empty((npx, m.shape[1]), np.float32)
        mh = (inv_h[:, None] * m).astype(np.float32)
        mm = (mean32 @ m).astype(np.float32)
        for i, j, rows in bands:
            out[i:j] = inv_g[i:j, None] * (band(rows) @ mh) - mm
        tick()
        return out

    def xt_times(q):  # X.T @ q, q (P, l)
        out = np.zeros((ne, q.shape[1]), np.float32)
        for i, j, rows in bands:
            out += band(rows).T @ (inv_g[i:j, None] * q[i:j])
        out = inv_h[:, None].astype(np.float64) * out - np.outer(mean, q.sum(axis=0, dtype=np.float64))
        tick()
        return out.astype(np.float32)

    k = int(min(max_components, ne, npx))
    ell = int(min(k + oversample, ne, npx))
    rng = np.random.default_rng(seed)
    y = x_times(rng.standard_normal((ne, ell)).astype(np.float32))
    for _ in range(n_iter):
        q = _orthonormal(y)
        z = _orthonormal(xt_times(q))
        y = x_times(z)
    q = _orthonormal(y)
    b = xt_times(q).T  # (l, E) = Q.T (X - mean)
    ub, s, vt = np.linalg.svd(b.astype(np.float64), full_matrices=False)
    factors = vt[:k].astype(np.float32)
    scores = (q @ (ub[:, :k] * s[:k]).astype(np.float32)).astype(np.float32)
    evals = s**2 / max(npx - 1, 1)
    report(progress, 1.0)
    return PCAResult(
        scores=scores,
        factors=factors,
        explained_variance=evals.astype(np.float64),
        mean=mean32,
        g=g,
        h=h,
        shape=(ny, nx, ne),
        poisson=poisson,
        total_variance=float(total_variance),
    )


def pca_reconstruct(result: PCAResult, *, n_components: int, out=None, progress: ProgressCallback = None) -> np.ndarray:
    """Denoised SI (Y, X, E) float32 from the first ``n_components`` components of ``result``.

    ``out`` (Y, X, E), e.g. a ``numpy.lib.format.open_memmap``, receives the result band by band
    when it would not fit in memory; default a new array."""
    if not isinstance(result, PCAResult):
        raise ValueError(f"result must be a PCAResult from pca(); got {type(result).__name__}.")
    k = integer(n_components, "n_components", low=1, high=result.factors.shape[0])
    ny, nx, ne = result.shape
    if out is None:
        check_memory(float(ny * nx * ne) * 4, "result", "the denoised SI (give out= a memory map)")
        out = np.empty((ny, nx, ne), np.float32)
    elif tuple(np.shape(out)) != (ny, nx, ne):
        raise ValueError(f"out must have the SI's shape {(ny, nx, ne)}; got {tuple(np.shape(out))}.")
    rows = max(1, 2**24 // max(1, nx * ne))
    # undo the Poisson scaling inside the product: (S F + μ) ⊙ (g hᵀ) = g ⊙ (S (F ⊙ h) + μ ⊙ h)
    fh = (result.factors[:k] * result.h[None, :]).astype(np.float32)
    mh = (result.mean * result.h).astype(np.float32)
    for y in range(0, ny, rows):
        y1 = min(ny, y + rows)
        i, j = y * nx, y1 * nx
        blk = result.scores[i:j, :k] @ fh
        blk += mh
        blk *= result.g[i:j, None]
        out[y:y1] = blk.reshape(y1 - y, nx, ne)
        report(progress, y1 / ny)
    return out


def suggest_components(explained_variance, *, noise_tail: float = 0.5) -> int:
    """Number of components above the noise floor of a scree plot.

    After Poisson normalisation the noise eigenvalues form a flat tail; the floor is the
    median of the last ``noise_tail`` fraction of the eigenvalues, and components more than
    ``5 × MAD`` above it count as signal (at least 1).
    """
    ev = real_array(explained_variance, "explained_variance", ndim=1, dtype=np.float64)
    noise_tail = fraction(noise_tail, "noise_tail", low_open=True)
    if ev.size < 4:
        return max(1, ev.size)
    tail = ev[int(ev.size * (1 - noise_tail)) :]
    med = np.median(tail)
    mad = np.median(np.abs(tail - med)) + 1e-12 * max(med, 1e-30)
    n = int(np.sum(ev > med + 20 * mad * 1.4826 + 0.5 * med))
    return max(1, n)


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


def line_profile(
    image,
    *,
    start: Sequence[float],
    end: Sequence[float],
    pixel_size: float = 1.0,
    width: int = 1,
    order: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``image`` (Y, X) along the line ``start`` → ``end`` (pixel coordinates (y, x)).

    Parameters
    ----------
    image : array (Y, X)
        A map.
    start, end : (float, float)
        End points in pixels (row, column), both included.
    pixel_size : float
        Pixel size in Å; the returned distance is in Å.
    width : int
        Averaging width perpendicular to the line, pixels.
    order : int
        Spline interpolation order (1 = linear).

    Returns
    -------
    distance : array (N,), Å from ``start``
    values : array (N,)
    """
    from skimage.measure import profile_line

    raw = np.asarray(image)
    if raw.ndim != 2:
        raise ValueError(f"A line profile needs a 2D map (Y, X) as image; got shape {raw.shape}.")
    img = real_array(raw, "image", ndim=2, finite=False, copies=3)
    start = vector(start, "start", length=2, unit="px")
    end = vector(end, "end", length=2, unit="px")
    for name, pt in (("start", start), ("end", end)):
        if np.any(pt < -1) or np.any(pt > np.asarray(img.shape)):
            raise ValueError(f"{name} = ({pt[0]:g}, {pt[1]:g}) px lies outside the image {img.shape}.")
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    width = integer(width, "width", low=1, high=max(img.shape))
    order = integer(order, "order", low=0, high=5)
    length = float(np.hypot(*(end - start)))
    if length < 1:
        raise ValueError("The profile line is shorter than one pixel; draw a longer line.")
    vals = profile_line(img, start, end, linewidth=max(1, int(width)), order=order, mode="reflect", reduce_func=np.mean)
    dist = np.linspace(0, length * pixel_size, vals.size)
    return dist, vals.astype(np.float32)


def profile_with_errors(
    image,
    *,
    start: Sequence[float],
    end: Sequence[float],
    pixel_size: float = 1.0,
    width_angstrom: float | None = None,
    variance=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A map's mean along the line ``start`` → ``end`` (pixels (y, x)) over a band
    ``width_angstrom`` Å wide (default one pixel), with the standard error of each point.

    ``variance`` (Y, X) is each pixel's variance; default ``image`` itself (Poisson counts).
    The error of a point is ``sqrt(mean variance / n)`` with ``n`` the pixels averaged across the
    band. Returns (distance Å, mean, standard error).
    """
    from skimage.measure import profile_line

    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    width_px = 1 if width_angstrom is None else positive(width_angstrom, "width_angstrom", unit="Å") / pixel_size
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"A line profile needs a 2D map (Y, X) as image; got shape {img.shape}.")
    linewidth = int(max(1, round(width_px)))
    if linewidth > max(img.shape):
        raise ValueError(f"width_angstrom {width_angstrom:g} Å is wider than the image; give a narrower band.")
    dist, vals = line_profile(img, start=start, end=end, pixel_size=pixel_size, width=linewidth)
    var = np.maximum(np.asarray(img, np.float64), 0.0) if variance is None else \
        real_array(variance, "variance", ndim=2, dtype=np.float64, finite=False)
    if var.shape != img.shape:
        raise ValueError(f"variance {var.shape} must have the shape of image {img.shape}.")
    mvar = profile_line(np.nan_to_num(var), np.asarray(start, float), np.asarray(end, float), linewidth=linewidth,
                        order=1, mode="reflect", reduce_func=np.mean)
    return dist, vals, np.sqrt(np.maximum(mvar, 0.0) / linewidth).astype(np.float32)


def composition_profile(
    maps: Mapping[str, ElementMap],
    *,
    start: Sequence[float],
    end: Sequence[float],
    pixel_size: float,
    width_angstrom: float | None = None,
    cross_sections: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Element profiles across an interface (e.g. the C, O, N composition of an SEI along depth).

    For each map (from :func:`eels_maps`; its ``extra["variance"]`` gives the counting variance
    of the net counts, else the counts themselves are taken as Poisson) the mean along the line
    over a band ``width_angstrom`` wide and its standard error; with ``cross_sections``
    {element: σ in barn} (:func:`napari_cryomat.core.eels_quant.quantify_maps`) also the atomic
    percent and its propagated error. Returns a dict of columns: ``distance`` (Å), ``<el>``,
    ``<el>_err``, and with cross-sections ``<el>_at%`` and ``<el>_at%_err``.
    """
    if not isinstance(maps, Mapping) or not maps:
        raise ValueError("maps must hold at least one element map (from eels_maps).")
    out: dict[str, np.ndarray] = {}
    for el, m in maps.items():
        if not isinstance(m, ElementMap):
            raise ValueError(f"maps[{el!r}] is not an ElementMap from eels_maps().")
        d, v, err = profile_with_errors(m.data, start=start, end=end, pixel_size=pixel_size,
                                        width_angstrom=width_angstrom, variance=m.extra.get("variance"))
        out["distance"], out[el], out[f"{el}_err"] = d, v, err
    if cross_sections is not None:
        missing = [el for el in maps if el not in cross_sections]
        if missing:
            raise ValueError(f"cross_sections has no value for {missing}: compute them with eels_quant.quantify_maps.")
        n = {el: out[el].astype(np.float64) / positive(cross_sections[el], f"cross_sections[{el!r}]", unit="barn",
                                                        high=1e12) for el in maps}
        dn = {el: out[f"{el}_err"].astype(np.float64) / cross_sections[el] for el in maps}
        total = sum(n.values())
        with np.errstate(divide="ignore", invalid="ignore"):
            for el in maps:
                var = sum(((float(k == el) * total - n[el]) / total**2) ** 2 * dn[k] ** 2 for k in maps)
                out[f"{el}_at%"] = np.where(total > 0, 100 * n[el] / total, np.nan).astype(np.float32)
                out[f"{el}_at%_err"] = np.where(total > 0, 100 * np.sqrt(var), np.nan).astype(np.float32)
    return out
