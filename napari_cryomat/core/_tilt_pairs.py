"""Tilt-pair shifts solved all at once: a robust global least squares over neighbour pairs and pairs
further apart (the coarse step of fiducial-free tilt alignment, :mod:`._tilt_align`).

A chain of neighbour correlations accumulated from zero tilt (IMOD tiltxcorr) turns every error of
one pair into an offset of all the tilts beyond it: a random walk, and one pair locked onto a wrong
pattern (a bead-only series) throws half the series off. Here every pair ``(i, j)`` with
``|i - j| <= separations`` is correlated (cosine-stretched, the tilt nearer zero stretched onto the
other), and the shifts are the weighted least-squares solution of all pair equations

    t_j,y - t_i,y = d_y        t_j,x - (cos θ_j / cos θ_i) t_i,x = d_x

(a flat specimen at mid-height foreshortens by cos θ). Each pair is weighted by its significance
(how far its correlation peak stands above the rest, robust z-score) and, iteratively, by a Cauchy
weight of its residual, as the drift engine weighs frame pairs: a pair that disagrees with the
others (a wrong pattern, a peak on noise) drops out instead of moving every tilt after it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: robust z-score of a correlation peak on noise alone (the largest of a few hundred correlated
#: samples): pairs at or below it carry no weight
NOISE_Z = 3.0
#: smallest residual scale of the robust weights (binned px): below it pairs agree as well as the
#: flat-specimen stretch model allows, and a smaller scale would start rejecting good pairs
MIN_SCALE = 0.25


def pair_shifts(aligned: np.ndarray, angles: np.ndarray, *, separations, max_shift: float, band, win,
                xcorr, references: np.ndarray | None = None) -> list[tuple[int, int, np.ndarray, float]]:
    """``(i, j, d, z)`` for every pair ``j - i`` in ``separations`` (an iterable) of tilts resampled with zero
    shift: ``d`` the rotated-frame (dy, dx) of ``j`` against ``i`` stretched onto ``j``'s foreshortening
    (``i`` the tilt nearer zero; ``d`` is stated as ``t_j - c t_i``, see module), ``z`` its significance.
    ``references``: the images stretched in place of ``aligned[i]`` (a null of the same frames)."""
    n, h, w = aligned.shape
    references = aligned if references is None else references
    cos = np.cos(np.deg2rad(angles))
    u = np.arange(w) - (w - 1) / 2
    rows = np.arange(h)
    pairs = []
    for k in separations:
        for a in range(n - k):
            b = a + k
            ref, j = (a, b) if abs(angles[a]) <= abs(angles[b]) else (b, a)
            cols = u * (cos[ref] / cos[j]) + (w - 1) / 2
            stretched = ndimage.map_coordinates(references[ref], np.meshgrid(rows, cols, indexing="ij"),
                                                order=1, mode="nearest")
            d, _, z = xcorr(aligned[j], stretched, max_shift=max_shift, band=band, win=win, significance=True)
            pairs.append((ref, j, np.asarray(d, float), float(z)))
    return pairs


def _design(pairs, cos: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair-equation matrices for the y and x components (rows: pairs, columns: tilts)."""
    ay = np.zeros((len(pairs), n))
    ax = np.zeros((len(pairs), n))
    for r, (i, j, _, _) in enumerate(pairs):
        ay[r, j], ay[r, i] = 1.0, -1.0
        ax[r, j], ax[r, i] = 1.0, -cos[j] / cos[i]
    return ay, ax


def solve_pairs(pairs, angles: np.ndarray, *, iterations: int = 16, cauchy: float = 2.385):
    """Rotated-frame shifts (N, 2) from pair measurements by iteratively reweighted least squares
    (significance times a robust weight of the residual: least absolute deviations, then Cauchy), and the final weight of each pair (near 0
    for pairs rejected as outliers or insignificant). The minimum-norm solution is returned; callers
    remove the gauge."""
    n = len(angles)
    ay, ax = _design(pairs, np.cos(np.deg2rad(angles)), n)
    d = np.array([p[2] for p in pairs]).reshape(-1, 2)
    # linear, not squared (the inverse variance of a peak on Gaussian noise): a confident wrong pattern
    # must not outweigh several weaker pairs that agree
    significance = np.clip(np.array([p[3] for p in pairs]) - NOISE_Z, 0, None)
    # a thin thread along the neighbours keeps every tilt connected when all its pairs are rejected
    thread = np.array([1e-4 if abs(j - i) == 1 else 0.0 for i, j, _, _ in pairs])
    good = significance > 0
    robust = np.ones(len(pairs))
    t = np.zeros((n, 2))
    # least absolute deviations first (convex: sparse wrong pairs cannot pull the start far), then a
    # Cauchy weight, which drops them altogether
    for it in range(iterations):
        sw = np.sqrt(significance * robust + thread)
        t = np.stack([np.linalg.lstsq(a * sw[:, None], d[:, axis] * sw, rcond=None)[0]
                      for axis, a in ((0, ay), (1, ax))], axis=1)
        if not np.any(good):
            break
        res = np.hypot(ay @ t[:, 0] - d[:, 0], ax @ t[:, 1] - d[:, 1])
        # median of a 2D normal's norm is 1.18 sigma; a floor keeps a near-perfect fit from rejecting all
        scale = max(float(np.median(res[good])) / 1.1774, MIN_SCALE)
        if it < iterations // 2:
            new = scale / np.maximum(res, scale)
        else:
            new = 1 / (1 + (res / (cauchy * scale)) ** 2)
        if it >= iterations // 2 and np.allclose(new, robust, atol=1e-3):
            break
        robust = new
    return t, significance * robust
