"""The detector's second pass: faint particles whose score maximum a brighter neighbour took.

Private to :mod:`napari_cryomat.core._segment_particles`. Pixels here. No Qt, no napari.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

from napari_cryomat.core._particle_detect import (
    SURROUND,
    Z_MAX,
    Z_MIN,
    _maxima,
    detect,
    null_maxima,
    whitened_residual,
)

# a second pass looks for particles whose score maximum a brighter neighbour's took (the maxima are about a radius
# apart; b7177 #8: 16 missed particles score 4.5 at their centre but only 3 have a maximum of their own): the first
# detections' grown objects (dilated HIDDEN_RIM_PX px, their blurred rim) are left out, the residual is scored again
# over the pixels left (masked_disk_score), and its maxima outside those objects are kept above the lowest
# significance, not below the first pass's, at which the pure-noise maxima over the free area are at most
# HIDDEN_FALSE_SHARE of them. Their own count, not the first pass's: with the particles left out their negative
# surround no longer holds the noise's maxima down (at the first pass's level, half of them were noise on faint
# Ø8-11 fields). Session 14 (seen faint Ø5-12 fields f20001-20040: +0.0025, 0.05 share +0.0005, 0.35 +0.0016 with
# drops to -0.035; zeroing the objects instead of leaving them out: gaps between dense particles scored, -0.04)
HIDDEN_PASS = True
HIDDEN_RIM_PX = 1
HIDDEN_FALSE_SHARE = 0.2


def masked_disk_score(residual: np.ndarray, free: np.ndarray, radius: float) -> np.ndarray:
    """The disk-less-surround score over the ``free`` pixels only: the mean of the whitened residual over the free
    part of the disk less its mean over the free part of the surround, in noise deviations of that difference
    (blind to the level of the free pixels, as the full kernel is to the mean level)."""
    outer = SURROUND * radius
    pad = int(math.ceil(outer + 4))
    shape = tuple(n + 2 * pad for n in residual.shape)
    h = int(math.ceil(outer + 1))
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    rr = yy**2 + xx**2
    kernels = []
    for inside in (rr <= radius * radius, (rr <= outer * outer) & (rr > radius * radius)):
        full = np.zeros(shape, np.float32)
        full[:inside.shape[0], :inside.shape[1]] = inside
        kernels.append(sfft.rfft2(np.roll(full, (-h, -h), axis=(0, 1)), workers=1))
    w = np.pad(free.astype(np.float32), pad)
    v = np.pad(np.where(free, residual, 0.0).astype(np.float32), pad)
    fw, fv = sfft.rfft2(w, workers=1), sfft.rfft2(v, workers=1)
    out = []
    for spec in (fv, fw):
        for k in kernels:
            out.append(sfft.irfft2(spec * k, s=shape, workers=1)[pad:-pad, pad:-pad])
    s_disk, s_ring, n_disk, n_ring = out
    n_disk, n_ring = np.maximum(n_disk, 1.0), np.maximum(n_ring, 1.0)
    score = (s_disk / n_disk - s_ring / n_ring) / np.sqrt(1.0 / n_disk + 1.0 / n_ring)
    # a disk mostly taken reads a few pixels only
    return np.where(n_disk > 0.5 * math.pi * radius * radius, score, -np.inf).astype(np.float32)


def hidden_detections(plane: np.ndarray, sign: float, background: np.ndarray, radius: float, grown: np.ndarray):
    """``(ys, xs, z)`` of the particles a first pass at ``radius`` missed because a neighbour's maximum hid theirs:
    maxima of the disk score of the whitened residual without ``grown`` (the first detections' objects) that lie
    outside those objects, above the first pass's significance level and the noise's own count (see HIDDEN_PASS)."""
    from napari_cryomat.core._particle_settings import _noise_sigma

    empty = np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.float32)
    if not HIDDEN_PASS or not grown.any():
        return empty
    residual = whitened_residual(plane, sign, background, _noise_sigma(plane))
    first = detect(residual, radius, with_level=True)
    if first is None:
        return empty
    taken = ndi.binary_dilation(grown > 0, iterations=HIDDEN_RIM_PX) if HIDDEN_RIM_PX > 0 else grown > 0
    score = masked_disk_score(residual, ~taken, radius)
    ys, xs, vals = _maxima(score, 0.5 * radius, first[-1])
    free = ~taken[ys, xs]
    ys, xs, vals = ys[free], xs[free], vals[free]
    heights, factor = null_maxima(residual.shape, radius, Z_MIN)
    share = 1.0 - float(np.mean(taken))
    for z in np.arange(first[-1], Z_MAX + 1e-9, 0.25):
        if factor * share * np.count_nonzero(heights > z) <= HIDDEN_FALSE_SHARE * np.count_nonzero(vals > z):
            keep = vals > z
            return ys[keep], xs[keep], vals[keep]
    return empty
