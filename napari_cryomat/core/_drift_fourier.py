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
def _cc_map(xspec: np.ndarray, shape, workers: int = -1) -> np.ndarray:
    return sfft.irfft2(xspec, s=shape, workers=workers)


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


def _grid_peak(xspec, shape, pos, half, step):
    """Maximum of the correlation on a grid of ±half px at ``step`` around ``pos``, polished by parabolas."""
    cy, cx = shape
    n = 2 * int(np.ceil(half / step)) + 1
    ey, ex, ys, xs = _dft_kernels(cy, cx, pos[0], pos[1], n, step)
    cc = ((ey @ xspec) @ ex).real
    k = int(np.argmax(cc))
    a, b = divmod(k, n)
    fy = _parabolic(cc[a - 1, b], cc[a, b], cc[a + 1, b]) if 0 < a < n - 1 else 0.0
    fx = _parabolic(cc[a, b - 1], cc[a, b], cc[a, b + 1]) if 0 < b < n - 1 else 0.0
    return np.array([ys[a] + fy * step, xs[b] + fx * step]), float(cc[a, b])


def _newton_peak(xspec, shape, pos, half, tol, max_steps=6):
    """Maximum of the continuous correlation near ``pos`` by Newton's method; None if it leaves ±half px.

    The value, gradient and Hessian of ``c(d) = Re Σ_k α_k X(k) e^{2πik·d}`` need one product of the
    spectrum with three columns (far fewer than the rows of a fine grid). Stops once a step is below ``tol`` px.
    """
    cy, cx = shape
    ky = (2j * np.pi * sfft.fftfreq(cy)).astype(np.complex64)
    kx = 2j * np.pi * np.arange(cx // 2 + 1) / cx
    alpha = np.full(cx // 2 + 1, 2.0)
    alpha[0] = 1.0
    if cx % 2 == 0:
        alpha[-1] = 1.0
    start = np.asarray(pos, float)
    d = start.copy()
    for _ in range(max_steps):
        ex = alpha * np.exp(kx * d[1])
        u = xspec @ np.stack([ex, kx * ex, kx * kx * ex], axis=1).astype(np.complex64)  # (cy, 3)
        ey = np.exp(ky.astype(np.complex128) * d[0])
        u0, u1, u2 = u[:, 0] * ey, u[:, 1] * ey, u[:, 2] * ey
        val = float(np.sum(u0).real)
        grad = np.array([np.sum(ky * u0).real, np.sum(u1).real])
        hyy, hxy, hxx = np.sum(ky * ky * u0).real, np.sum(ky * u1).real, np.sum(u2).real
        det = hyy * hxx - hxy * hxy
        if not (hyy < 0 and det > 0):
            return None  # not in the concave basin of a maximum
        step = -np.array([hxx * grad[0] - hxy * grad[1], hyy * grad[1] - hxy * grad[0]]) / det
        d = d + step
        if np.abs(d - start).max() > half:
            return None
        if np.abs(step).max() < tol:
            return d, val
    return None


def _local_peak(xspec: np.ndarray, shape, start, *, radius: float, upsample: int) -> tuple[np.ndarray, float]:
    """Sub-pixel peak of the correlation given by ``xspec`` near ``start`` (px).

    A matrix DFT on a grid of ±radius px at 1/4 px, then the maximum of the continuous correlation
    within ±1/4 px of the grid's (the peak of a smooth correlation lies within 1/8 px of it): by
    Newton's method to 1/(10 upsample) px, or where Newton leaves that box (not concave there), a grid of
    ±0.25 px at 1/upsample px with a parabolic polish.
    Returns the peak position and the correlation value there.
    """
    pos, val = _grid_peak(xspec, shape, np.asarray(start, float), radius, 0.25)
    if upsample > 4:
        got = _newton_peak(xspec, shape, pos, 0.25, 0.1 / upsample)
        if got is not None:
            return got
    return _grid_peak(xspec, shape, pos, 0.25, 1.0 / upsample)


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
