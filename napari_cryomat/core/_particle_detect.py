"""Faint small particles found as a scanning detector finds them, then grown to the half-way level.

Where particles stand only a few pixel-noise deviations clear (a few tens of counts per pixel, a contrast of
15-30 %), a threshold of the smoothed image cuts the noise into specks and misses or merges particles, and the
Laplacian-of-Gaussian blob search (at 6 of its own noise deviations) finds almost none of them. The detector that
an ideal observer would use is the whitened residual (I - B) / sqrt(var) correlated with a disk of the particles'
size: its score is a significance. Here:

- the residual is correlated with a disk less its surround (a zero-sum, unit-norm kernel: blind to the mean level,
  which a field of small particles raises over a large disk), so that on white noise the score is a significance;
- the particles' radius is the blob search's where it found enough blobs, else the one the significant detections
  prefer over a ladder of radii (the scale where each detection's significance is highest);
- detections are the score's local maxima at that radius above the lowest significance at which the maxima that pure
  white noise makes in the same score (a fixed draw, scaled to the image's free area: the part not taken by the
  surrounds of the detections the noise does not explain) are at most FALSE_SHARE of them;
- each detection is grown to the half-way level (half the contrast of the significant detections) of the smoothed,
  background-free image, and the mask keeps only the pieces that hold a detection
  (the rest is noise); the detections seed the watershed that splits them.

On the benchmark's faint family (15 % contrast, 20 counts/px, Ø8-15) it raised F1 on 11 of the 13 images it took
over (e.g. 0.00 -> 0.41, 0.50 -> 0.75, 0.30 -> 0.68) and lowered two of the smallest, Ø5 and Ø8 (0.35 -> 0.15,
0.43 -> 0.35) (notes: handoff_segment7.md). Session 8 (significance down to 2.5 over the free area, the other sign's own
support, contrast from the significant detections, the gate for speck-sized or stray blobs): the 14 tuning triples' extra sets
and two fresh triples in handoff_segment8.md.

Private to :mod:`napari_cryomat.core.segment`. Pixels here. No Qt, no napari.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

# radii of the disk ladder, px (ratio 1.2)
RADII = tuple(float(2.0 * 1.2**k) for k in range(12))
# the detections' significance is lowered until the noise (the count of mirrored detections) would make this
# share of them
FALSE_SHARE = 0.05
# never below this significance (noise deviations of the disk score), never above the blob search's own (3.0 until
# session 8: on faint Ø8-12 fields at 15 % contrast the detections between 2.5 and 3 were still 85-90 % particles)
Z_MIN, Z_MAX = 2.5, 6.0
# the noise's maxima are counted over the image less this many disk-surround areas per detection, and over at least
# this share of it: a field of particles, with their negative surround, holds the noise maxima down (on faint Ø8
# fields 3-8 x fewer false maxima than pure noise: 4 against 26 above z = 3)
FREE_AREA_MIN = 0.1
# the surround of the disk reaches out to this many radii
SURROUND = 2.0
# the pure-noise draw that calibrates the significance is at most this many px a side
NULL_SIDE = 512


def whitened_residual(plane: np.ndarray, sign: float, background: np.ndarray, noise: float) -> np.ndarray:
    """``sign * plane - background`` over the local noise: for a counting image (noise² within a factor 2 of the
    support level) the noise follows sqrt(support), else it is uniform."""
    residual = sign * plane - background
    level = float(np.median(np.abs(background)))
    if background.min() * background.max() > 0 and 0.5 < noise**2 / max(level, 1e-12) < 2.0:
        return residual / np.sqrt(np.maximum(np.abs(background), 1e-3 * level))
    return residual / max(noise, 1e-12)


def _disk_kernel(radius: float, shape) -> np.ndarray:
    """A unit-norm disk of ``radius`` px less its surround (the ring out to SURROUND x radius, weighted to a zero
    sum), edges softened by 1 px (the particles' blur), centred for a circular correlation on ``shape``. The
    surround makes the score blind to the mean level: a plain disk scores a field of small particles higher the
    larger it is, as it covers more of them."""
    outer = SURROUND * radius
    h = int(math.ceil(outer + 3))
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    rr = yy**2 + xx**2
    disk = ndi.gaussian_filter((rr <= radius * radius).astype(np.float64), 1.0)
    ring = ndi.gaussian_filter((rr <= outer * outer).astype(np.float64), 1.0) - disk
    k = disk - ring * (disk.sum() / ring.sum())
    k /= np.sqrt((k**2).sum())
    full = np.zeros(shape, np.float32)
    full[:k.shape[0], :k.shape[1]] = k
    return np.roll(full, (-h, -h), axis=(0, 1))



def disk_scores(residual: np.ndarray, radii) -> list[np.ndarray]:
    """The residual correlated with the unit-norm kernels of ``radii``: on a whitened residual, significances.

    (The noise of a score is not read off its negative side: the surround of every particle scores negative.)"""
    pad = int(math.ceil(SURROUND * max(radii) + 4))
    padded = np.pad(residual.astype(np.float32), pad, mode="reflect")
    spectrum = sfft.rfft2(padded, workers=1)
    out = []
    for r in radii:
        kernel = sfft.rfft2(_disk_kernel(r, padded.shape), workers=1)
        out.append(sfft.irfft2(spectrum * kernel, s=padded.shape, workers=1)[pad:-pad, pad:-pad].astype(np.float32))
    return out


def null_maxima(shape, radius: float, floor: float) -> tuple[np.ndarray, float]:
    """Heights of the maxima that pure white noise makes in the score at ``radius`` (a fixed draw, at most 512 px a
    side), and the factor that scales their count to ``shape``: the count of false detections above any
    significance."""
    side = tuple(min(int(n), NULL_SIDE) for n in shape)
    noise = np.random.default_rng(0).standard_normal(side).astype(np.float32)
    heights = _maxima(disk_scores(noise, [radius])[0], 0.5 * radius, floor)[2]
    return heights, float(np.prod(shape)) / float(np.prod(side))



def _maxima(score: np.ndarray, radius: float, floor: float):
    """Local maxima of ``score`` above ``floor`` at least about ``radius`` px apart: (ys, xs, values)."""
    size = 2 * max(1, int(round(radius))) + 1
    peaks = (score >= ndi.maximum_filter(score, size=size)) & (score > floor)
    ys, xs = np.nonzero(peaks)
    return ys, xs, score[ys, xs]


def significance_level(pos: np.ndarray, null: tuple[np.ndarray, float], radius: float, area: float) -> float:
    """The lowest significance at which the noise's maxima (``null``: heights and the factor to this image's area)
    would be at most FALSE_SHARE of the detections above it, between Z_MIN and Z_MAX. The noise's maxima are
    counted only over the image's free part: the area not within the surround (SURROUND radii) of the detections
    above that significance in excess of the noise's count, where the particles' negative surround holds noise maxima down."""
    heights, factor = null
    reach = math.pi * (SURROUND * radius) ** 2 / area
    for z in np.arange(Z_MIN, Z_MAX + 1e-9, 0.25):
        n, noise = np.count_nonzero(pos > z), factor * np.count_nonzero(heights > z)
        # only the detections beyond what the noise alone makes take area (pure noise keeps the whole image)
        free = max(FREE_AREA_MIN, 1.0 - max(0.0, n - noise) * reach)
        if free * noise <= FALSE_SHARE * n:
            return float(z)
    return Z_MAX


def detect(residual: np.ndarray, radius: float | None = None, radii=RADII):
    """Particles in a whitened residual (particles positive): ``(radius, ys, xs, z, score)`` with the radius the
    significant detections prefer (or the one given), the detections at that radius and their significance, and
    its score map. None where nothing stands out."""
    if radius is not None:
        radii = [radius]
    radii = [r for r in radii if 2 * SURROUND * r + 4 < min(residual.shape) / 2]
    if not radii:
        return None
    scores = disk_scores(residual, radii)
    k = preferred_rung(scores, radii[0])
    if k is None:
        return None
    score, r = scores[k], radii[k]
    ys, xs, vals = _maxima(score, 0.5 * r, Z_MIN)
    z = significance_level(vals, null_maxima(residual.shape, r, Z_MIN), r, float(residual.size))
    keep = vals > z
    return r, ys[keep], xs[keep], vals[keep], score


# the particles' scale is read off the detections at least this significant, as this percentile of their
# preferred radii (the median read Ø8-11 faint particles 1.1-1.5x too large: blur and touching neighbours favour
# the larger disks; the 30th percentile raised 11 such images' F1 by 0.00-0.15 over the median)
SCALE_FROM_Z = 4.0
SCALE_PERCENTILE = 30.0


def preferred_rung(scores: list[np.ndarray], separation: float) -> int | None:
    """The particles' rung of a ladder of disk ``scores``: a detection's radius is the scale where its significance is
    highest (a disk matched to a particle scores highest); the particles' is the SCALE_PERCENTILE of those of the
    detections that stand SCALE_FROM_Z clear at their best (maxima ``separation`` px apart). None below 3 such."""
    best = np.max(scores, axis=0)
    which = np.argmax(scores, axis=0)
    ys, xs, _ = _maxima(best, separation, SCALE_FROM_Z)
    if len(ys) < 3:
        return None
    return int(round(np.percentile(which[ys, xs], SCALE_PERCENTILE)))


def grow(flat: np.ndarray, half: float, ys, xs, radius: float, landscape: np.ndarray, reach=None) -> np.ndarray:
    """Labels: each detection grown over the pixels of ``flat`` above ``half`` connected to it (a disk of 0.4
    radius around it counts as above), split between detections by a watershed of ``-landscape``; pieces of the
    mask without a detection are left out. ``reach`` (px, one per detection): no pixel farther than that from its
    detection is kept."""
    from skimage import segmentation

    seeds = np.zeros(flat.shape, bool)
    seeds[ys, xs] = True
    core = ndi.binary_dilation(seeds, structure=_disk(max(1.0, 0.4 * radius)))
    mask = (flat > half) | core
    components, n = ndi.label(mask)
    held = np.zeros(n + 1, bool)
    held[components[ys, xs]] = True
    held[0] = False
    mask = held[components]
    markers = np.zeros(flat.shape, np.int32)
    markers[ys, xs] = np.arange(1, len(ys) + 1)
    labels = segmentation.watershed(-landscape, markers, mask=mask)
    if reach is not None:
        py, px = np.nonzero(labels)
        own = labels[py, px] - 1
        far = (py - np.asarray(ys)[own]) ** 2 + (px - np.asarray(xs)[own]) ** 2 > np.asarray(reach)[own] ** 2
        labels[py[far], px[far]] = 0
    return labels


# a detection is grown at most REACH of its own radii: the rung of a ladder from the particles' radius up (ratio 1.2,
# REACH_RUNGS rungs) where its significance is highest. Over a support that undulates as much as the contrast, the
# half-way level joins faint particles to the support around them (regions 3x the true area). Only where the image's
# detections choose the settings' radius themselves (their scale pick on a ladder REACH_BELOW rungs below to
# REACH_RUNGS - 1 above lands at most REACH_CONFIRM_RUNGS above it): a blob-search radius that reads small (Ø9 for Ø15
# star-shaped particles, whose detections pick Ø14) would cut the particles (F1 0.72 -> 0.62). Session 9: faint images
# of extra draws 100-129 0.823 -> 0.850 (28 changed, one -0.005), never-seen extra sets in handoff_segment9.md
REACH = 1.2
REACH_RUNGS = 5
REACH_BELOW = 2
REACH_CONFIRM_RUNGS = 1


def reach_of(plane: np.ndarray, sign: float, background: np.ndarray, radius: float, ys, xs):
    """The growth reach (px) of each detection at ``radius`` (REACH x its own rung), or None (no limit) where the
    image's detections would not choose ``radius`` as the particles' (see REACH)."""
    rungs = own_rungs(plane, sign, background, radius, ys, xs)
    return None if rungs is None else REACH * rungs[1]


def own_rungs(plane: np.ndarray, sign: float, background: np.ndarray, radius: float, ys, xs):
    """``(whole, upper)``: each detection's own rung (px; the radius where its significance is highest) on the ladder
    from REACH_BELOW rungs below ``radius`` to REACH_RUNGS - 1 above it, and on its part from ``radius`` up; or None
    where the image's detections would not choose ``radius`` as the particles' (see REACH)."""
    from napari_cryomat.core._particle_settings import _noise_sigma

    residual = whitened_residual(plane, sign, background, _noise_sigma(plane))
    radii = [radius * 1.2**k for k in range(-REACH_BELOW, REACH_RUNGS)]
    radii = [r for r in radii if 2 * SURROUND * r + 4 < min(residual.shape) / 2]
    if len(radii) <= REACH_BELOW:
        return None
    scores = disk_scores(residual, radii)
    pick = preferred_rung(scores, radii[0])
    if pick is None or pick > REACH_BELOW + REACH_CONFIRM_RUNGS:
        return None
    at = np.stack([score[ys, xs] for score in scores])
    ladder = np.asarray(radii)
    return ladder[np.argmax(at, axis=0)], ladder[REACH_BELOW:][np.argmax(at[REACH_BELOW:], axis=0)]


def _disk(radius: float) -> np.ndarray:
    h = int(math.floor(radius))
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    return yy**2 + xx**2 <= radius * radius


# ------------------------------------------------------------------------------------------------
# where the detector replaces the threshold, and its settings
# ------------------------------------------------------------------------------------------------
# particles standing less than this many pixel-noise deviations clear ...
FAINT_CONTRAST_TO_NOISE = 1.0
# ... or images where the blob search found fewer blobs than this (a contrast read off one or two specks is the
# specks': a faint Ø8 field with one noise blob read 2.4 noise deviations and was cut into 1059 specks, F1 0.02) ...
STRAY_BLOBS = 5
# ... or a blob-search diameter below this (px; Ø5-7 particles read 4.9 and are cut better by the threshold) with a
# particle SNR below FAINT_PARTICLE_SNR: noise specks read as the particles (a faint Ø17 field read as Ø2.8: 2790
# specks, F1 0.03; a Ø59 one as Ø1.8: F1 0.10 -> 0.68)
SPECK_DIAMETER = 4.0
# ... whose disk sums to less than this significance (larger faint particles are cut well by the threshold: Ø25-37
# at 15 % contrast and 20 counts/px lost 0.01-0.17 of F1 to the detector) ...
FAINT_PARTICLE_SNR = 15.0
# ... or images where the blob search found fewer blobs than this (its scale is then a guess: 0-8 blobs on faint
# Ø8-11 images, F1 0.00-0.63)
FEW_BLOBS = 10
# ... with a blob-search diameter below this (px; the blob split's bound): the blob search reads faint large
# particles too small (Ø18 for Ø29-30), which the threshold's granulometry corrects and the detector does not
# (4 such images lost 0.06-0.17 of F1 to it; below 16 px, 8 images gained 0.02-0.18)
DETECT_BELOW_DIAMETER = 16.0
# ... and then only where the particles stand less than this many pixel-noise deviations clear (the threshold's own
# "faint" bound): a field of 5 large clear particles (7 blobs) was cut into 15 detections
FEW_BLOBS_BELOW_CONTRAST_TO_NOISE = 2.0
# fewer detections than this are strays (an empty field)
MIN_DETECTIONS = 5
# the contrast (hence the half-way level of the growth) is read over the detections at least this significant: the
# weak ones, nearer the noise, read it low and the half-way level then floods the field
CONTRAST_FROM_Z = 3.5


def speck_scale(contrast_to_noise: float, radius_px: float) -> bool:
    """A speck-sized scale (below SPECK_DIAMETER) at a particle SNR below FAINT_PARTICLE_SNR: noise read as the
    particles."""
    snr = contrast_to_noise * math.sqrt(math.pi) * radius_px
    return 2 * radius_px < SPECK_DIAMETER and snr < FAINT_PARTICLE_SNR


def use_detector(contrast_to_noise: float, radius_px: float, n_blobs: int) -> bool:
    """Whether faint particles are found by the detector rather than a threshold (see the constants)."""
    if n_blobs < STRAY_BLOBS:
        return True
    if n_blobs < FEW_BLOBS:  # a few large clear particles make few blobs too (5-8 particles of the sample: 7-15)
        return contrast_to_noise < FEW_BLOBS_BELOW_CONTRAST_TO_NOISE
    snr = contrast_to_noise * math.sqrt(math.pi) * radius_px
    if speck_scale(contrast_to_noise, radius_px):
        return True
    small = 2 * radius_px < DETECT_BELOW_DIAMETER
    return small and contrast_to_noise < FAINT_CONTRAST_TO_NOISE and snr < FAINT_PARTICLE_SNR


def detect_particles(plane: np.ndarray, sign: float, background: np.ndarray, radius_px: float | None):
    """Detections in a 2D image whose particles are ``sign`` x brighter than ``background`` (the support, in
    ``sign * plane`` units): ``(radius, ys, xs, z)``, or None when fewer than MIN_DETECTIONS stand out."""
    from napari_cryomat.core._particle_settings import _noise_sigma

    found = detect(whitened_residual(plane, sign, background, _noise_sigma(plane)), radius_px)
    if found is None or len(found[1]) < MIN_DETECTIONS:
        return None
    return found[:4]


def contrast_at(relative: np.ndarray, ys, xs, radius: float, z=None) -> float:
    """The particles' contrast: the median over detections (those at least CONTRAST_FROM_Z significant where
    ``z`` is given and enough are) of the mean of ``relative`` (the background-free image, particles positive)
    over their inner part (0.6 radius: the blurred edge left out)."""
    if z is not None:
        strong = np.asarray(z) >= CONTRAST_FROM_Z
        if np.count_nonzero(strong) >= MIN_DETECTIONS:
            ys, xs = np.asarray(ys)[strong], np.asarray(xs)[strong]
    seeds = np.zeros(relative.shape, np.int32)
    seeds[ys, xs] = np.arange(1, len(ys) + 1)
    inner = _painted_disks(seeds, _disk(max(1.0, 0.6 * radius)))
    return float(np.median(ndi.mean(relative, inner, np.arange(1, len(ys) + 1))))


def _painted_disks(seeds: np.ndarray, disk: np.ndarray) -> np.ndarray:
    """``ndi.grey_dilation(seeds, footprint=disk)`` for sparse labelled ``seeds``: every seed's disk painted with
    its label, the largest label holding a pixel where disks overlap (``np.maximum.at``), as the dilation's
    maximum does (its reflected border adds no pixel: a seed's mirror image lies farther from every pixel inside).

    Why: the dilation visits the whole footprint at every pixel; Ø 110 Å particles at 0.85 Å/px make it a disk of
    3,700 px over a 2048² image, 480 s of estimate_particle_settings on fei-extended.mrc's corner (load ~5), where
    painting a few hundred disks takes a fraction of a second."""
    out = np.zeros_like(seeds)
    ny, nx = seeds.shape
    h = disk.shape[0] // 2
    dy, dx = np.nonzero(disk)
    dy, dx = dy - h, dx - h
    ys, xs = np.nonzero(seeds)
    step = max(1, 2**20 // len(dy))  # seeds a batch: about a million painted pixels at a time
    for k in range(0, len(ys), step):
        yy, xx = ys[k:k + step, None] + dy, xs[k:k + step, None] + dx
        inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
        labels = np.broadcast_to(seeds[ys[k:k + step], xs[k:k + step], None], yy.shape)
        np.maximum.at(out, (yy[inside], xx[inside]), labels[inside])
    return out


def _strong(found) -> int:
    """Detections at least SCALE_FROM_Z significant: the polarity's evidence (counted at a fixed significance, not
    at the adaptive level, which on the wrong sign may fall low enough to count the gaps between particles)."""
    return int(np.count_nonzero(found[3] > SCALE_FROM_Z))


def detector_settings(plane: np.ndarray, settings, given: dict, background: np.ndarray, blobs_by_sign=None):
    """``(settings, background)`` with the threshold "detect" for the 2D ``plane`` (``background``: its support, from
    the estimate), or None when fewer than MIN_DETECTIONS stand out. The diameter is the detections' (or, with
    FEW_BLOBS blobs or more, the blob search's), the contrast theirs; smoothing, minimum size and split distance
    follow as in the estimate. With fewer than FEW_BLOBS blobs an estimated polarity is the sign with more
    detections, whose support is then the estimate's for that sign (``blobs_by_sign``: the blob search's
    ``(dark, bright)``, if known), so that the settings' options reproduce it."""
    import dataclasses

    from napari_cryomat.core import _particle_settings as _ps

    ps = settings.pixel_size
    sign = -1.0 if settings.polarity == "dark" else 1.0
    if given.get("diameter"):
        radius = given["diameter"] / ps / 2
    else:
        read = settings.diameter / ps / 2
        # a scale read off few blobs is a guess the ladder checks, unless it lies beyond the ladder: the ladder would
        # find only noise there (a 2048² crop of fei-extended.mrc, Ø 114 px read off 9 blobs: 17 noise specks of Ø5 px)
        trusted = settings.n_blobs >= FEW_BLOBS or read > RADII[-1]
        radius = read if trusted and 2 * read >= SPECK_DIAMETER else None
    found = detect_particles(plane, sign, background, radius)
    if "polarity" in settings.estimated and settings.n_blobs < FEW_BLOBS:
        # the polarity of a handful of blobs is a guess too: the sign with more significant detections, on that
        # sign's own support (the support of the wrong sign leaves out what stands above its Otsu level, which is
        # the support itself: a faint dark Ø8 field read bright had its support at the particles' level, contrast
        # 0.7 counts for 3, F1 0.00)
        other_polarity = "bright" if sign < 0 else "dark"
        other_background = _ps.support_of(plane, other_polarity, ps, {**given, "local_block": settings.local_block},
                                          blobs_by_sign)
        other = detect_particles(plane, -sign, other_background, radius)
        if other is not None and (found is None or _strong(other) > _strong(found)):
            found, sign, background = other, -sign, other_background
            settings = dataclasses.replace(settings, polarity=other_polarity)
    if found is None:
        return None
    r, ys, xs, z = found
    level = contrast_at(_ps.take_background(sign * plane, background), ys, xs, r, z)
    if not level > 0:
        return None
    d = 2 * r
    if given.get("smoothing") is not None:
        smoothing = given["smoothing"] / ps
    else:
        needed = _ps.SMOOTH_TO_NOISE_Z * settings.noise / (math.sqrt(math.pi) * level)
        smoothing = max(d * _ps.SMOOTHING_PER_DIAMETER, min(needed, d / 4))
    estimated = dict(diameter=d * ps, smoothing=smoothing * ps, threshold="detect",
                     min_size=0.2 * math.pi * r * r * ps * ps, split_distance=0.25 * d * ps)
    changes = {k: v for k, v in estimated.items() if k in settings.estimated}
    return dataclasses.replace(settings, **changes, contrast=sign * level, n_blobs=len(ys)), background
