"""Scale-space blob search and pixel noise for the particle settings (:mod:`._particle_settings`).

The scale-normalised Laplacian of Gaussian (Lindeberg) on an image pyramid, so that large scales cost little; its
significant maxima sit at particle centres with ``sigma ~ radius / sqrt(2)``. Pixels here. No Qt, no napari.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

# ratio of successive scales; three per octave
_SCALES_PER_OCTAVE = 3
_MIN_SIGMA = 1.0  # px: below this the Laplacian is mostly noise
_Z_DETECT = 6.0  # significance of a blob against the image's bulk response at that scale


def _downsample(img: np.ndarray) -> np.ndarray:
    ny, nx = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    return img[:ny, :nx].reshape(ny // 2, 2, nx // 2, 2).mean(axis=(1, 3))


def blob_detections(image: np.ndarray, max_sigma: float) -> list[np.ndarray]:
    """Significant scale-space maxima of ``+/-`` the normalised LoG of a 2D image.

    Returns ``[dark, bright]``, each an array of rows ``(y, x, sigma, response, z)`` in original
    pixels, one row per blob after suppressing weaker blobs that overlap a stronger one.

    Per pyramid level the Gaussians are one cascade (each scale smooths the previous one) and the
    Laplacian is the 5-point stencil; local maxima are checked only at the pixels above the
    significance level (a few thousand), not with a maximum filter over the whole image.
    """
    found = [[], []]
    level, factor = image.astype(np.float32), 1
    while True:
        spread0 = noise_floor(level)
        smoothed, done = level, 0.0
        for k in range(_SCALES_PER_OCTAVE):
            s_local = _MIN_SIGMA * 2 ** (k / _SCALES_PER_OCTAVE)
            sigma = s_local * factor
            if sigma > max_sigma or min(level.shape) < 4 * s_local + 3:
                break
            smoothed = ndi.gaussian_filter(smoothed, math.sqrt(s_local**2 - done**2), mode="reflect")
            done = s_local
            response = s_local**2 * _laplacian(smoothed)
            spread = spread0 * _log_noise_gain(s_local)
            half = max(1, int(math.ceil(s_local)))  # window 2*half+1; the reflected border makes half-blobs
            for sign, store in ((1.0, found[0]), (-1.0, found[1])):
                ys, xs, vals = _local_maxima(sign * response, _Z_DETECT * spread, half)
                if ys.size:
                    store.append(np.column_stack([(ys + 0.5) * factor - 0.5, (xs + 0.5) * factor - 0.5,
                                                  np.full(ys.size, sigma), vals, vals / spread]))
        else:
            if 2 * _MIN_SIGMA * factor <= max_sigma and min(level.shape) >= 16:
                level, factor = _downsample(level), factor * 2
                continue
        break
    return [_suppress(np.concatenate(f)) if f else np.zeros((0, 5)) for f in found]


def _laplacian(a: np.ndarray) -> np.ndarray:
    """5-point discrete Laplacian with reflected borders."""
    p = np.pad(a, 1, mode="symmetric")
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * a


def _local_maxima(r: np.ndarray, level: float, half: int):
    """Pixels of ``r`` above ``level`` that are maxima of their (2 half + 1)² window, away from the border."""
    inner = r[half:-half, half:-half]
    ys, xs = np.nonzero(inner > level)
    ys, xs = ys + half, xs + half
    vals = r[ys, xs]
    ok = np.ones(ys.size, bool)
    for dy in range(-half, half + 1):
        for dx in range(-half, half + 1):
            if dy or dx:
                ok &= r[ys + dy, xs + dx] <= vals
    return ys[ok], xs[ok], vals[ok]


def _log_noise_gain(sigma: float) -> float:
    """Standard deviation of the normalised LoG (as computed above) of unit white noise at ``sigma`` px."""
    n = 2 * int(math.ceil(4 * sigma)) + 1
    delta = np.zeros((n, n), np.float32)
    delta[n // 2, n // 2] = 1.0
    return float(sigma**2 * np.sqrt(np.sum(_laplacian(ndi.gaussian_filter(delta, sigma)) ** 2)))


def _suppress(blobs: np.ndarray) -> np.ndarray:
    """Keep, greedily by normalised response, blobs whose centres are not inside a stronger one."""
    from scipy.spatial import cKDTree

    order = np.argsort(-blobs[:, 3])
    blobs = blobs[order]
    tree = cKDTree(blobs[:, :2])
    alive = np.ones(len(blobs), bool)
    reach = np.sqrt(2) * blobs[:, 2]  # the radius of the blob found at this sigma
    for i in range(len(blobs)):
        if not alive[i]:
            continue
        for j in tree.query_ball_point(blobs[i, :2], reach[i]):
            if j > i:
                alive[j] = False
    return blobs[alive]


def _noise_sigma(img: np.ndarray) -> float:
    """Pixel noise from the differences of neighbouring pixels (robust to edges and gradients); read
    on every k-th row of a large image (a million differences are plenty for a median)."""
    rows = img[::max(1, img.shape[0] * img.shape[-1] // 1_000_000)] if img.ndim == 2 else img
    d = np.diff(rows, axis=-1).ravel()
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))


def noise_floor(img: np.ndarray) -> float:
    """The pixel noise, but at least 0.1 % of the image's range (a noise-free image has no zero noise
    to divide by: its faint ringing must not count as significant)."""
    lo, hi = np.percentile(img[::max(1, img.shape[0] * img.shape[-1] // 1_000_000)], [1, 99])
    return max(_noise_sigma(img), 1e-3 * float(hi - lo), 1e-12)
