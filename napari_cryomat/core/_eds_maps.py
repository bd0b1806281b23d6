"""EDS net-count maps, band by band (private; public surface :mod:`napari_cryomat.core.eds`).

The background of a line is the width-weighted mean of its side windows (exSpy's
``get_lines_intensity``); a spectrum image (numpy, memory map, dask) is read in bands of rows and
only over the channels the windows use, so one larger than RAM can be mapped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from napari_cryomat.core._eds_lines import choose_line, clean_windows
from napari_cryomat.core._progress import ProgressCallback
from napari_cryomat.core._validate import positive
from napari_cryomat.core.spectral import (
    _MAX_FWHM,
    ElementMap,
    _check_si_memory,
    _parse_elements_arg,
    check_energy_axis,
    check_spectrum_image,
    map_si_blocks,
    window_slice,
)


def _net_counts(block: np.ndarray, slices: dict[str, slice]) -> np.ndarray:
    """Integration-window counts minus the width-weighted mean of the background windows times
    the integration width (exSpy's ``get_lines_intensity`` with ``background_windows``)."""
    isl = slices["integration"]
    peak = block[..., isl].sum(axis=-1, dtype=np.float64)
    bsl = [slices[k] for k in ("background_low", "background_high") if k in slices]
    if not bsl:
        return peak.astype(np.float32)
    bg_sum = sum(block[..., s].sum(axis=-1, dtype=np.float64) for s in bsl)
    n_bg = sum(s.stop - s.start for s in bsl)
    return (peak - bg_sum * ((isl.stop - isl.start) / n_bg)).astype(np.float32)


def _window_slices(energy, windows, element: str) -> dict[str, slice]:
    if not isinstance(windows, Mapping) or "integration" not in windows:
        raise ValueError(f"windows of {element} must be a dict with an 'integration' window (and optional "
                         "'background_low' / 'background_high'), as made by eds_windows or clean_windows.")
    out = {}
    for key in ("integration", "background_low", "background_high"):
        if windows.get(key) is not None:
            out[key] = window_slice(energy, windows[key], what=f"{element} {key.replace('_', ' ')} window")
    return out


class _ChannelBands:
    """Bands of rows of an SI restricted to the channels the windows use (``lo:hi``): a dask or h5py
    SI reads only those; a ``numpy.memmap`` touches only their pages and hands them back to the OS
    after each band (``madvise(MADV_DONTNEED)``), so resident memory stays about one band even for a
    file larger than RAM (touched pages of a mapping otherwise stay resident)."""

    def __init__(self, si, lo: int, hi: int):
        self.si, self.lo, self.hi = si, int(lo), int(hi)
        self.shape = tuple(int(n) for n in si.shape[:-1]) + (self.hi - self.lo,)
        self.ndim, self.dtype = 3, np.dtype(getattr(si, "dtype", np.float32))

    def __getitem__(self, rows):
        block = self.si[rows, :, self.lo:self.hi]
        if isinstance(self.si, np.memmap):
            block = np.array(block)
            _release_pages(self.si, rows)
        return block


def _release_pages(mm: np.memmap, rows: slice) -> None:
    """Drop the pages of rows ``rows`` of a C-ordered memmap from the process (they are re-read from the
    file if needed again); silently nothing where madvise is not available."""
    import mmap

    base = mm.base
    if not isinstance(base, mmap.mmap) or not mm.flags.c_contiguous or not hasattr(base, "madvise"):
        return
    start, stop, _ = rows.indices(mm.shape[0])
    row_bytes = mm.strides[0]
    in_map = int(mm.offset) % mmap.ALLOCATIONGRANULARITY  # where the array starts inside the mapping
    first = in_map + start * row_bytes
    aligned = first - first % mmap.PAGESIZE
    length = in_map + stop * row_bytes - aligned
    try:
        base.madvise(mmap.MADV_DONTNEED, aligned, min(length, len(base) - aligned))
    except (OSError, ValueError, AttributeError):
        pass


def eds_net_map(si, *, energy, windows: Mapping[str, Sequence[float]]) -> np.ndarray:
    """Net line counts of one line: counts in the integration window minus the background,
    the mean of both background windows together (each weighted by its width, as exSpy does)
    times the integration window's width. Either background window may be omitted.

    ``windows`` as returned by :func:`eds_windows` / :func:`clean_windows` (eV). Returns float32
    of the leading shape.
    """
    if np.iscomplexobj(si):
        raise ValueError("The spectra (si) hold complex numbers; counts must be real.")
    _check_si_memory(si)
    energy = check_energy_axis(energy, np.shape(si)[-1])
    slices = _window_slices(energy, windows, "the line's")
    return _net_counts(np.asarray(si, dtype=np.float32), slices)


def eds_maps(
    si,
    *,
    energy,
    elements: Sequence[str] | str,
    fwhm_mn_ka: float = 130.0,
    windows: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    progress: ProgressCallback = None,
) -> dict[str, ElementMap]:
    """Net-count EDS maps of several elements, read band by band (out of core).

    Parameters
    ----------
    si : array (Y, X, E)
        EDS spectrum image, counts: numpy array, ``numpy.memmap`` or dask array. Only one band
        of rows is in memory at a time (:func:`spectral.map_si_blocks`), so an SI larger than
        RAM can be mapped; the result equals the in-memory one.
    energy : array (E,)
        Channel energies, eV.
    elements : list of str or str
        "Fe, Pt, Cu"; "Pt_Ma" forces a line.
    fwhm_mn_ka : float
        Detector resolution at Mn Kα, eV (default 130 eV).
    windows : dict, optional
        ``{element: windows}`` overriding the defaults, which are :func:`clean_windows`
        (background windows clear of the other elements' lines).
    progress : callable, optional
        Fraction done; raising :class:`Cancelled` from it stops the run.
    """
    check_spectrum_image(si, lazy=True)
    energy = check_energy_axis(energy, si.shape[-1])
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    elements = _parse_elements_arg(elements)
    windows = dict(windows or {})
    plan = []
    for el in elements:
        ln = choose_line(el, energy=energy, fwhm_mn_ka=fwhm_mn_ka)
        w = windows.get(el) or windows.get(el.split("_")[0]) or clean_windows(
            el, energy=energy, elements=[e for e in elements if e != el], fwhm_mn_ka=fwhm_mn_ka)
        plan.append((el, ln, dict(w), _window_slices(energy, w, el)))
    # read only the channels the windows use; slices relative to that span
    lo = min(sl.start for *_r, sls in plan for sl in sls.values())
    hi = max(sl.stop for *_r, sls in plan for sl in sls.values())
    plan = [(el, ln, w, {k: slice(sl.start - lo, sl.stop - lo) for k, sl in sls.items()}) for el, ln, w, sls in plan]

    def block_maps(block):
        if not np.all(np.isfinite(block)):  # only the channels the windows use are read and checked
            raise ValueError("The spectrum image (si) contains NaN or inf values; replace them first.")
        if block.size and block.min() < 0:
            raise ValueError(f"The spectrum image (si) has negative counts (minimum {block.min():.3g}); it was "
                             "probably background-subtracted. Add a constant offset or clip at zero.")
        return {el: _net_counts(block, sl) for el, _ln, _w, sl in plan}

    # a memmap band touches whole rows of pages (all channels): keep bands small so that stays modest
    band = 2**24 if isinstance(si, np.memmap) else 2**26
    data = map_si_blocks(block_maps, _ChannelBands(si, lo, hi), max_bytes=band, progress=progress)
    return {el: ElementMap(element=el, kind="eds", feature=ln.label, energy=ln.energy, data=data[el], windows=w)
            for el, ln, w, _sl in plan}
