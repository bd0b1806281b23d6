"""Fourier helpers of :mod:`napari_cryomat.core.drift`: windows, Fourier cropping, correlation peaks, phase ramps.

Private: spectra are rfft2 half-planes of the estimator's own (cropped, windowed) frames.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.fft as sfft


def tukey(ny: int, nx: int, taper: float = 0.1) -> np.ndarray:
    """Separable Tukey window, cosine taper over ``taper`` of each edge. float32 (Y, X)."""

    def one(n):
        w = np.ones(n, np.float32)
        m = max(1, int(round(taper * n)))
        ramp = 0.5 * (1 - np.cos(np.pi * (np.arange(m) + 0.5) / m))
        w[:m] = ramp
        w[n - m :] = ramp[::-1]
        return w

    return one(ny)[:, None] * one(nx)[None, :]


def _crop_shape(ny: int, nx: int, max_size: Optional[int]) -> tuple[int, int]:
    if max_size is None or max(ny, nx) <= max_size:
        return ny, nx
    f = max_size / max(ny, nx)
    cy, cx = int(round(ny * f)) // 2 * 2, int(round(nx * f)) // 2 * 2
    return max(cy, 16), max(cx, 16)


def _fourier_crop(spec: np.ndarray, full: tuple[int, int], crop: tuple[int, int]) -> np.ndarray:
    """Crop an rfft2 spectrum of a ``full`` image to the spectrum of a ``crop`` image (binning)."""
    ny, nx = full
    cy, cx = crop
    if (cy, cx) == (ny, nx):
        return spec
    h = cy // 2
    rows = np.concatenate([spec[..., :h, :], spec[..., ny - (cy - h) :, :]], axis=-2)
    return np.ascontiguousarray(rows[..., : cx // 2 + 1])


def _freq_grid(cy: int, cx: int):
    ky = sfft.fftfreq(cy).astype(np.float32)[:, None]
    kx = sfft.rfftfreq(cx).astype(np.float32)[None, :]
    return ky, kx


def _bfilter(cy, cx, bfactor_px2: float) -> np.ndarray:
    ky, kx = _freq_grid(cy, cx)
    return np.exp(-bfactor_px2 * (ky**2 + kx**2) / 4.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# correlation helpers
# ---------------------------------------------------------------------------------------------
def _cc_map(xspec: np.ndarray, shape) -> np.ndarray:
    return sfft.irfft2(xspec, s=shape, workers=-1)


def _parabolic(c_m, c_0, c_p) -> float:
    den = c_m - 2 * c_0 + c_p
    if den >= 0:
        return 0.0
    return float(np.clip(0.5 * (c_m - c_p) / den, -0.5, 0.5))


def _peak_search(cc: np.ndarray, norm: np.ndarray, radius_px: tuple[float, float]):
    """Peak of cc/norm within |d| <= radius. Return (dy, dx) sub-pixel and significance."""
    cy, cx = cc.shape
    ry = int(min(np.floor(radius_px[0]), cy // 2 - 1))
    rx = int(min(np.floor(radius_px[1]), cx // 2 - 1))
    iy = np.r_[0 : ry + 1, cy - ry : cy] if ry > 0 else np.array([0])
    ix = np.r_[0 : rx + 1, cx - rx : cx] if rx > 0 else np.array([0])
    sub = cc[np.ix_(iy, ix)] / norm[np.ix_(iy, ix)]
    k = int(np.argmax(sub))
    a, b = divmod(k, sub.shape[1])
    py, px = int(iy[a]), int(ix[b])
    # sub-pixel by a parabola through the normalised neighbours (coarse stage only)
    def val(y, x):
        return cc[y % cy, x % cx] / norm[y % cy, x % cx]

    fy = _parabolic(val(py - 1, px), val(py, px), val(py + 1, px))
    fx = _parabolic(val(py, px - 1), val(py, px), val(py, px + 1))
    dy = (py if py <= cy // 2 else py - cy) + fy
    dx = (px if px <= cx // 2 else px - cx) + fx
    s = sub.std()
    sig = float((sub.max() - sub.mean()) / s) if s > 0 else 0.0
    return np.array([dy, dx]), sig


def _dft_kernels(cy, cx, y0, x0, n, step):
    """Matrices for the local upsampled DFT of an rfft2 spectrum around (y0, x0)."""
    ky = sfft.fftfreq(cy) * 1.0
    kx = np.arange(cx // 2 + 1, dtype=float) / cx
    ys = y0 + step * (np.arange(n) - n // 2)
    xs = x0 + step * (np.arange(n) - n // 2)
    ey = np.exp(2j * np.pi * ys[:, None] * ky[None, :]).astype(np.complex64)  # (n, cy)
    alpha = np.full(cx // 2 + 1, 2.0)
    alpha[0] = 1.0
    if cx % 2 == 0:
        alpha[-1] = 1.0
    ex = (alpha[:, None] * np.exp(2j * np.pi * kx[:, None] * xs[None, :])).astype(np.complex64)  # (cxh, n)
    return ey, ex, ys, xs


def _local_peak(xspec: np.ndarray, shape, start, *, radius: float, upsample: int) -> tuple[np.ndarray, float]:
    """Sub-pixel peak of the correlation given by ``xspec`` near ``start`` (px).

    Two passes of a matrix DFT: a grid of ±radius px at 1/4 px, then ±0.25 px at 1/upsample px (the
    peak of a smooth correlation lies within 1/8 px of the coarse grid's maximum; the fine grid's
    rows are the cost).
    Returns the peak position and the correlation value there.
    """
    cy, cx = shape
    pos = np.asarray(start, float)
    val = 0.0
    for half, step in ((radius, 0.25), (0.25, 1.0 / upsample)):
        n = 2 * int(np.ceil(half / step)) + 1
        ey, ex, ys, xs = _dft_kernels(cy, cx, pos[0], pos[1], n, step)
        cc = ((ey @ xspec) @ ex).real
        k = int(np.argmax(cc))
        a, b = divmod(k, n)
        # parabolic polish on the fine grid
        fy = _parabolic(cc[a - 1, b], cc[a, b], cc[a + 1, b]) if 0 < a < n - 1 else 0.0
        fx = _parabolic(cc[a, b - 1], cc[a, b], cc[a, b + 1]) if 0 < b < n - 1 else 0.0
        pos = np.array([ys[a] + fy * step, xs[b] + fx * step])
        val = float(cc[a, b])
    return pos, val


def _phase_ramp(shape, shift, ky=None, kx=None) -> np.ndarray:
    """exp(+2πi k·s): multiplying a spectrum by it moves content by -s (undoes a shift s)."""
    if ky is None:
        ky, kx = _freq_grid(*shape)
    ey, ex = _phase_ramp_factors(shift, ky, kx)
    return ey * ex


def _phase_ramp_factors(shift, ky, kx):
    """The column and row factors of :func:`_phase_ramp` (separable: far cheaper than exp() over the grid)."""
    ey = np.exp(2j * np.pi * ky.astype(np.float64) * float(shift[0])).astype(np.complex64)
    ex = np.exp(2j * np.pi * kx.astype(np.float64) * float(shift[1])).astype(np.complex64)
    return ey, ex


# ---------------------------------------------------------------------------------------------
# robust least squares
# ---------------------------------------------------------------------------------------------
def _solve_trajectory(n: int, pairs: np.ndarray, d: np.ndarray, w: np.ndarray, *, floor: float = 2.0,
                      n_iter: int = 20):
    """Solve s_j - s_i = d_ij (s_0 = 0) robustly. Returns s (n, 2) and the inlier mask of the pairs.

    Start: each position is the median of the positions implied by its pairs with earlier frames
    (robust to a minority of wrong pairs, e.g. unit-cell jumps). Then iteratively re-weighted
    least squares with Tukey's biweight at scale ``max(4.685 * 1.4826 * MAD, floor)``; pairs with
    zero weight are outliers.
    """
    p = len(pairs)
    s = np.zeros((n, 2))
    for j in range(1, n):
        sel = pairs[:, 1] == j
        cand = s[pairs[sel, 0]] + d[sel]
        s[j] = np.median(cand, axis=0) if len(cand) else s[j - 1]
    a = np.zeros((p, n))
    a[np.arange(p), pairs[:, 1]] += 1.0
    a[np.arange(p), pairs[:, 0]] -= 1.0
    a = a[:, 1:]  # gauge: s_0 = 0
    robust = np.ones(p)
    for it in range(n_iter):
        r = np.hypot(*(d - (s[pairs[:, 1]] - s[pairs[:, 0]])).T)
        mad = 1.4826 * np.median(r)
        scale = max(4.685 * mad, floor)
        new = np.where(r < scale, (1 - (r / scale) ** 2) ** 2, 0.0)
        if it > 0 and np.allclose(new, robust, atol=1e-4):
            break
        robust = new
        ww = np.sqrt(w * robust)[:, None]
        sol, *_ = np.linalg.lstsq(a * ww, d * ww, rcond=None)
        s = np.vstack([np.zeros((1, 2)), sol])
    return s, robust > 0
