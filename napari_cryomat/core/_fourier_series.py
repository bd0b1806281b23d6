"""Bragg-peak intensity frame by frame (decay with dose, critical dose).

Conventions: :mod:`napari_cryomat.core.fourier`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy import optimize

from napari_cryomat.core._fourier_base import _check_pixel_size, hann_window, validate_image
from napari_cryomat.core._fourier_maps import _as_g_array, _check_peaks_in_nyquist, _freq_grids
from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import (
    check_memory,
    positive,
)


@dataclass
class BraggSeries:
    """Intensity of chosen spots frame by frame.

    Attributes
    ----------
    intensity : (T, n) float
        Background-subtracted integrated power of each spot in each frame (relative units).
    total : (T,) float
        Sum over spots, normalised to the fit's I0 when a fit was made, else to frame 0.
    dose : (T,) float or None
        Cumulative dose at the middle of each frame, e/Å²: ``(t + 0.5) * dose_per_frame``.
    critical_dose : float or None
        Dose in e/Å² at which the spots' summed intensity fell to 1/e, from a fit of
        ``I0 exp(-D / Dc)``.
    critical_dose_error : float or None
        One-sigma uncertainty of ``critical_dose`` from the fit.
    """

    intensity: np.ndarray
    total: np.ndarray
    dose: np.ndarray | None = None
    critical_dose: float | None = None
    critical_dose_error: float | None = None


def bragg_intensity_series(
    stack,
    peaks,
    *,
    pixel_size: float = 1.0,
    dose_per_frame: float | None = None,
    radius: float | None = None,
    progress: ProgressCallback = None,
) -> BraggSeries:
    """Integrated intensity of chosen Bragg spots in every frame, and the critical dose.

    Each frame is mean-subtracted and Hann-windowed; the power within ``radius`` of each spot
    (and its Friedel mate) is summed and the median power of a surrounding annulus (radius to
    2·radius) times the disk's pixel count is subtracted.

    Parameters
    ----------
    stack : (T, Y, X) array
    peaks : sequence of Peak or (n, 2) array
        Spots (gy, gx) in Å⁻¹.
    pixel_size : float
        Å per pixel.
    dose_per_frame : float, optional
        Electron dose per frame in e/Å². When given, ``I0 exp(-D/Dc)`` is fitted.
    radius : float, optional
        Integration radius in Å⁻¹; default 2 FFT pixels.

    Returns
    -------
    BraggSeries
    """
    p = _check_pixel_size(pixel_size)
    arr = np.asarray(stack) if not hasattr(stack, "compute") else stack
    if np.iscomplexobj(arr):
        raise ValueError("The stack holds complex numbers; take the real part, modulus or phase first.")
    if arr.ndim != 3:
        raise ValueError(f"Need a (T, Y, X) stack; got shape {arr.shape}.")
    if arr.shape[0] < 2:
        raise ValueError(f"Need at least two frames for an intensity series (stack has shape {arr.shape}).")
    dose_per_frame = positive(dose_per_frame, "dose_per_frame", unit="e/Å²", high=1e6, allow_none=True,
                              label="Dose per frame")
    g = _as_g_array(peaks)
    _check_peaks_in_nyquist(g, p)
    T, ny, nx = arr.shape
    check_memory(ny * nx * 4 * 8, "stack", f"a {ny}x{nx} px frame's spectrum")
    if radius is not None:
        positive(radius, "radius", unit="Å⁻¹", high=1.0 / p)
    win = hann_window((ny, nx))
    fy, fx = _freq_grids((ny, nx), p)
    rad = float(radius) if radius else 2.0 / (min(ny, nx) * p)
    disks, rings = [], []
    for gy, gx in g:
        d = np.zeros((ny, nx), bool)
        ring = np.zeros((ny, nx), bool)
        for s in (1, -1):
            dist = np.hypot(fy - s * gy, fx - s * gx)
            d |= dist <= rad
            ring |= (dist > rad) & (dist <= 2 * rad)
        disks.append(d)
        rings.append(ring & ~d)
    inten = np.zeros((T, len(g)))
    for t in range(T):
        frame = validate_image(np.asarray(arr[t]), what=f"stack frame {t}")
        w = (frame - np.float32(frame.mean())) * win
        f = sfft.fft2(w, workers=-1)
        pw = f.real**2 + f.imag**2
        for j, (d, ring) in enumerate(zip(disks, rings)):
            inten[t, j] = pw[d].sum() - np.median(pw[ring]) * d.sum()
        report(progress, (t + 1) / T)
    total = inten.sum(axis=1)
    res = BraggSeries(inten, total / total[0] if total[0] != 0 else total)
    if dose_per_frame is not None and np.any(total > 0):
        dpf = float(dose_per_frame)
        dose = (np.arange(T) + 0.5) * dpf
        res.dose = dose
        y = total
        # initial guess from a log-linear fit on positive values
        pos = y > 0
        if pos.sum() >= 2:
            slope, icpt = np.polyfit(dose[pos], np.log(y[pos]), 1)
            dc0 = -1.0 / slope if slope < 0 else dose[-1] * 10
            i00 = float(np.exp(icpt))
        else:
            dc0, i00 = dose[-1], float(y.max())
        try:
            popt, pcov = optimize.curve_fit(
                lambda D, i0, dc: i0 * np.exp(-D / dc), dose, y, p0=(i00, dc0), maxfev=5000
            )
            if np.all(np.isfinite(popt)) and popt[0] > 0 and popt[1] > 0:
                res.critical_dose = float(popt[1])
                res.critical_dose_error = float(np.sqrt(pcov[1, 1])) if np.isfinite(pcov[1, 1]) else None
                res.total = total / popt[0]
        except (RuntimeError, ValueError, np.linalg.LinAlgError, optimize.OptimizeWarning):
            res.critical_dose = None
    elif dose_per_frame is not None:
        res.dose = (np.arange(T) + 0.5) * float(dose_per_frame)
    return res
