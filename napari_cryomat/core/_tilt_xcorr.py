"""Correlation primitives of fiducial-free tilt alignment (:mod:`._tilt_align`, :mod:`._tilt_pairs`):
windows, a Gaussian band-pass, and the sub-pixel cross-correlation shift of two images."""

from __future__ import annotations

import numpy as np
import scipy.fft


def _soft_ellipse(shape, half_axes, frac: float) -> np.ndarray:
    """1 inside 0.95 of the centred ellipse with ``half_axes`` (y, x), falling to 0 over ``frac``."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - (h - 1) / 2) / half_axes[0], (xx - (w - 1) / 2) / half_axes[1])
    return np.clip((0.95 - r) / frac, 0, 1).astype(np.float32) ** 2


def disc(shape, frac: float = 0.15) -> np.ndarray:
    """Soft disc inscribed in the frame: what every rotation of a raw tilt covers, so correlations
    compared across axis angles see the same area."""
    return _soft_ellipse(shape, (shape[0] / 2, shape[1] / 2), frac)


def round_mask(shape, frac: float = 0.15) -> np.ndarray:
    """Soft disc of the frame's shorter side, centred: the part of a raw frame that every in-plane
    rotation keeps, what the blind axis scan compares (:func:`disc` is the ellipse inscribed in a frame)."""
    r = min(shape) / 2
    return _soft_ellipse(shape, (r, r), frac)


def taper(shape, frac=0.1) -> np.ndarray:
    """Separable cosine taper; ``frac`` per axis (or one for both) is the tapered fraction at each end."""
    win = []
    fracs = np.broadcast_to(np.asarray(frac, float), (2,))
    for n, frac in zip(shape, fracs):
        w = np.ones(n)
        k = max(1, int(n * frac))
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, k))
        w[:k], w[-k:] = ramp, ramp[::-1]
        win.append(w)
    return np.outer(*win).astype(np.float32)


def bandpass(shape, low: float, high: float) -> np.ndarray:
    """Gaussian band-pass (cycles/px) on the rfft2 grid: keeps what shot noise has not drowned."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f2 = fy ** 2 + fx ** 2
    return (np.exp(-f2 / (2 * high ** 2)) * (1 - np.exp(-f2 / (2 * low ** 2)))).astype(np.float32)


def xcorr_shift(a: np.ndarray, b: np.ndarray, *, max_shift: float, band: np.ndarray, win: np.ndarray,
                upsample: int = 10, significance: bool = False):
    """Shift ``d`` (dy, dx) with ``a(q) ≈ b(q - d)`` and the peak's normalised height; ``|d|`` at most
    ``max_shift`` per axis. The integer peak is refined on an ``upsample``-times finer grid by a
    matrix DFT of the band-passed cross-power spectrum (no bias towards whole pixels, which would
    add up along a chain of neighbours)."""
    ny, nx = a.shape
    fa = scipy.fft.rfft2((a - a.mean()) * win)
    fb = scipy.fft.rfft2(b - b.mean())  # one window only: two would pull the peak towards zero
    spec = fa * np.conj(fb) * band
    twice = np.full(band.shape[1], 2.0)  # rfft keeps half the plane: inner columns count twice
    twice[0] = 1.0
    if nx % 2 == 0:
        twice[-1] = 1.0
    norm = np.sqrt(np.sum(np.abs(fa) ** 2 * band * twice) * np.sum(np.abs(fb) ** 2 * band * twice))
    cc = np.fft.fftshift(scipy.fft.irfft2(spec, s=a.shape))
    cy, cx = ny // 2, nx // 2
    r = int(max(1, min(max_shift, cy - 2, cx - 2)))
    sub = cc[cy - r:cy + r + 1, cx - r:cx + r + 1]
    iy, ix = np.unravel_index(int(np.argmax(sub)), sub.shape)
    d0 = np.array([iy - r, ix - r], float)
    # matrix DFT of the cross-power spectrum on a fine grid of ±1 px around the integer peak; the
    # rfft half-plane with its inner columns doubled gives the real part of the full sum
    offs = np.arange(-upsample, upsample + 1) / upsample
    ky, kx = np.fft.fftfreq(ny), np.fft.rfftfreq(nx)
    ey = np.exp(2j * np.pi * np.outer(d0[0] + offs, ky))
    ex = np.exp(2j * np.pi * np.outer(kx, d0[1] + offs))
    fine = np.real(ey @ (spec * twice) @ ex)
    jy, jx = np.unravel_index(int(np.argmax(fine)), fine.shape)
    d = d0 + offs[[jy, jx]]
    step = 1.0 / upsample
    for axis, j in ((0, jy), (1, jx)):
        line = fine[:, jx] if axis == 0 else fine[jy, :]
        if 0 < j < len(line) - 1:
            m, z, p = line[j - 1], line[j], line[j + 1]
            den = m - 2 * z + p
            if den < 0:
                d[axis] += float(np.clip(0.5 * (m - p) / den, -0.5, 0.5)) * step
    peak = float(fine[jy, jx] / norm) if norm > 0 else 0.0
    if not significance:
        return d, peak
    # how far the peak stands above the rest of the searched correlation (robust z-score)
    spread = 1.4826 * float(np.median(np.abs(sub - np.median(sub)))) or 1e-30
    return d, peak, float((sub.max() - np.median(sub)) / spread)
