"""EELS power-law backgrounds, edge maps with counting errors, sum spectra, ratio and log-ratio thickness maps.

Conventions: :mod:`napari_cryomat.core.spectral`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_cryomat.core._eels_windows import _window_stop, background_channels, is_multi_window, plan_eels_windows
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core._spectral_base import (
    _MAX_EV,
    CHUNK_BYTES,
    _check_si_memory,
    _parse_elements_arg,
    check_counts,
    check_energy_axis,
    check_spectrum_image,
    is_lazy,
    iter_si_chunks,
    map_si_blocks,
    window_slice,
)
from napari_cryomat.core._validate import (
    check_memory,
    choice,
    number,
    real_array,
)


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
