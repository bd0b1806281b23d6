"""Local (non-uniform) motion of :func:`~napari_cryomat.core.drift.estimate_drift`: patch trajectories after the global
alignment, smoothed in time, and a polynomial surface through the patches per frame.

Private: ``drift.py`` hands in the globally aligned frames (moved out of ``drift.py``, unchanged).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from napari_cryomat.core._drift_refine import _refine
from napari_cryomat.core._progress import report


def _poly_basis(y, x, degree):
    cols = [np.ones_like(y)]
    if degree >= 1:
        cols += [y, x]
    if degree >= 2:
        cols += [y * y, x * x, x * y]
    return np.stack(cols, axis=1)


def _local_motion(aligned_frame, n, shape, *, patches, pixel_size, bfactor, group, upsample, window_taper, progress):
    """The local motion model of ``n`` frames of ``shape`` (Y, X): ``aligned_frame(i)`` returns frame i prepared and
    globally aligned. Returns (centers (P, 2), patch_shifts (P, N, 2), coeffs (N, 2, M), degree) of
    :class:`~napari_cryomat.core.drift.LocalMotion`."""
    n_py, n_px = int(patches[0]), int(patches[1])
    if n_py < 1 or n_px < 1:
        raise ValueError("The patch grid must have at least 1×1 patches.")
    ny, nx = shape
    ph, pw = ny // n_py, nx // n_px
    if ph < 32 or pw < 32:
        raise ValueError(f"Patches of {ph}×{pw} px are too small; use fewer patches (at least 32 px each).")
    npatch = n_py * n_px
    spectra = np.empty((npatch, n, ph, pw // 2 + 1), np.complex64)
    for i in range(n):
        f = aligned_frame(i)
        for p in range(npatch):
            a, b = divmod(p, n_px)
            tile = f[a * ph : (a + 1) * ph, b * pw : (b + 1) * pw]
            spectra[p, i] = sfft.rfft2(tile - tile.mean(), workers=-1)
        report(progress, 0.9 + 0.05 * (i + 1) / n)
    raw = np.zeros((npatch, n, 2))
    for p in range(npatch):
        # run to convergence (stops once no shift changes by 0.02 px): a sliding group spreads
        # its shift over its frames with the drift rate of the previous pass, which starts at
        # zero; stopping after 2 passes shrank a local motion growing in time by 10-20%
        raw[p] = _refine(spectra[p], (ph, pw), np.zeros((n, 2)), bfactor_px2=bfactor / pixel_size**2,
                         group=group, iterations=10, radius=2.0, upsample=upsample,
                         progress=None, span=(0, 0), window_taper=window_taper)
        raw[p] -= raw[p].mean(0)
        report(progress, 0.95 + 0.05 * (p + 1) / npatch)
    # smooth each patch trajectory in time (cubic polynomial), then fit a surface per frame
    t = np.linspace(-1, 1, n)
    tdeg = min(3, n - 1)
    smooth = np.empty_like(raw)
    for p in range(npatch):
        for a in range(2):
            smooth[p, :, a] = np.polyval(np.polyfit(t, raw[p, :, a], tdeg), t)
    smooth -= smooth[:, :1]  # local residual 0 at frame 0 too (convention)
    cy = (np.arange(n_py) + 0.5) * ph
    cx = (np.arange(n_px) + 0.5) * pw
    centers = np.array([(y, x) for y in cy for x in cx])
    degree = 2 if npatch >= 9 else (1 if npatch >= 3 else 0)
    basis = _poly_basis(centers[:, 0] / ny, centers[:, 1] / nx, degree)
    coeffs = np.empty((n, 2, basis.shape[1]))
    for i in range(n):
        sol, *_ = np.linalg.lstsq(basis, smooth[:, i, :], rcond=None)
        coeffs[i] = sol.T
    return centers, smooth, coeffs, degree
