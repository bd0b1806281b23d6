"""The automatic-particle pipeline of :func:`~napari_cryomat.core.segment.segment_particles` after its settings
are known: the mask (global or local threshold), and its objects (holes filled, speckle opened away, touching
particles split by the image's own blobs below 16 px, else on the distance map of a sharper outline; faint small
ones grown by a pixel).

Private: called with checked arguments. Lengths in Å in the settings, pixels here. No Qt, no napari.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core import _particle_detect as _pd
from napari_cryomat.core import _particle_settings as _ps
from napari_cryomat.core import _segment_chains
from napari_cryomat.core._particle_settings import ParticleSettings
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core._segment_chains import split_chains
from napari_cryomat.core._segment_common import (
    BLOB_SPLIT_BELOW_DIAMETER,
    BLOB_SPLIT_MIN_CONTRAST_TO_NOISE,
    blob_split,
    drop_small,
    rejoin_ellipses,
    rod_field,
)


def _nothing_to_segment(img: np.ndarray, settings: ParticleSettings) -> bool:
    """A 2D image in which no blob of the particles' sign stands clear of the noise, and whose particle size
    was not given: an empty field (a hole, bare support, a blank frame of a batch). Thresholding it would
    cut the noise into thousands of "particles" (a Poisson field at 5 counts/px gave 22,740). A volume is
    read through its middle slice only, so it is always segmented."""
    return img.ndim == 2 and settings.n_blobs == 0 and "diameter" in settings.estimated


def _particle_mask(img: np.ndarray, settings: ParticleSettings, support: np.ndarray | None, *, share: float = 0.5):
    """Foreground of ``img`` under ``settings`` (``support``: the estimate's background of a 2D image, in units of
    the image with the particles positive; None for a volume).

    Returns ``(mask, level, background)``: the mask is ``flat > level`` where ``flat`` is the smoothed
    image with the particles positive less ``background`` (None: nothing taken off, global thresholds).
    Decided from the image, the support and the options only, so that ``settings.options()`` reproduce it."""
    from skimage import filters

    ps = settings.pixel_size
    background = None
    sigma = settings.smoothing / ps
    flat = _ps.smoothed(img, sigma) if sigma > 0 else img
    if settings.polarity == "dark":
        flat = -flat
    if settings.threshold in ("local", "detect"):  # "detect" on a volume: the local threshold
        if support is not None and img.ndim == 2:
            background = support
            flat = _ps.take_background(flat, background)
        else:
            # a background broader than the image is flat anyway: cap the kernel at the image size
            sigma_bg = min(max(settings.local_block / ps / 2, 1.0), float(max(img.shape)))
            d_px = settings.diameter / ps if np.isfinite(settings.diameter) else 2 * sigma_bg / 4
            flat, background = _ps.flatten(flat, sigma_bg, grow=max(1, int(d_px / 6)))
    if settings.threshold == "li":
        level = float(filters.threshold_li(flat))
    elif settings.threshold in ("local", "detect") and np.isfinite(settings.contrast):
        # half way between the support (0 once flattened) and the particles: the 50 % point of a blurred
        # edge is the true edge, whatever the share of particles (Otsu drifts into the noisier class
        # when particles are few and small: masks of 5 px particles at 70 counts/px were 2x too large)
        level = share * abs(settings.contrast)
    else:
        level = float(filters.threshold_otsu(flat))
    return flat > level, level, background


# a 2D image under the local threshold is cut at LOWER_LEVEL_SHARE of the contrast read instead of half of it where
# that contrast stands LOWER_LEVEL_FROM_CONTRAST_TO_NOISE to LOWER_LEVEL_BELOW_CONTRAST_TO_NOISE pixel-noise deviations
# clear, the estimate's significant blobs number fewer than LOWER_LEVEL_BELOW_BLOB_SHARE of the half-way mask's objects,
# the scale is below LOWER_LEVEL_BELOW_DIAMETER px and the half-way mask is not chain-like (LOWER_LEVEL_BELOW_CHAIN_SHARE
# of its components long, see chain_field_share); segment_particles also drops it where its granulometry reads a
# smaller scale (noise specks let in). Why: the contrast is then read off the few blobs the noise lifted above the blob
# search's significance (low-dose Ø5-10 round and ellipse fields at 20-60 counts/px with blobs for 0.08-0.35 of their
# objects read 1.0-1.3x the true contrast; images with as many blobs as objects 0.8-0.9x, and there the lower cut lost),
# and the half-way cut gave masks of 2/3 the true area and a diameter read 0.78x small (r25004: F1 0.63). Touching
# fields' half-way masks read 0.48-0.83 long components (ellipses 0.27-0.57, disks 0-0.30), and their members merge at a
# lower cut (t25003 0.55 -> 0.32 at 0.42). Session 15, rule L2: never-seen low-dose fields r28 0.822 -> 0.851, l28
# 0.805 -> 0.820, touching t28 unchanged; benchmark B909 0.911 -> 0.920, A2026 +0.0007, B7177 -0.0020 (#1 -0.025).
# Rule L1 (no guards but the chain test, 0.42) failed: varied images lost up to 0.69 (noise specks, Ø read 2.6).
LOWER_LEVEL_SHARE = 0.45
LOWER_LEVEL_BELOW_CONTRAST_TO_NOISE = 2.5
LOWER_LEVEL_BELOW_CHAIN_SHARE = 0.4
LOWER_LEVEL_FROM_CONTRAST_TO_NOISE = 1.0
LOWER_LEVEL_BELOW_DIAMETER = 10.0
LOWER_LEVEL_BELOW_BLOB_SHARE = 0.5


def lower_level_mask(img: np.ndarray, settings: ParticleSettings, support: np.ndarray | None, mask: np.ndarray,
                     diameter: float = float("nan")):
    """``(mask, level)`` of a 2D image under the local threshold cut at LOWER_LEVEL_SHARE of its particles' contrast
    where that is faint against the pixel noise and the half-way ``mask`` is not a field of chains (see above), else
    None. Decided from the image, the support and the options only (the contrast and noise are read off the image)."""
    contrast, noise = abs(settings.contrast), settings.noise
    if not (img.ndim == 2 and support is not None and settings.threshold == "local"
            and math.isfinite(LOWER_LEVEL_SHARE) and np.isfinite(contrast) and np.isfinite(noise) and noise > 0
            and LOWER_LEVEL_FROM_CONTRAST_TO_NOISE * noise <= contrast < LOWER_LEVEL_BELOW_CONTRAST_TO_NOISE * noise
            and not diameter / settings.pixel_size >= LOWER_LEVEL_BELOW_DIAMETER):
        return None
    components, n = ndi.label(mask)
    if n >= 5 and _segment_chains.chain_field_share(components, n)[0] >= LOWER_LEVEL_BELOW_CHAIN_SHARE:
        return None
    # the contrast is biased up only where it was read off a minority of the particles (the significant blobs)
    objects = int(np.count_nonzero(np.bincount(components.ravel())[1:] >= settings.min_size / settings.pixel_size**2))
    if not settings.n_blobs < LOWER_LEVEL_BELOW_BLOB_SHARE * objects:
        return None
    lower, level, _ = _particle_mask(img, settings, support, share=LOWER_LEVEL_SHARE)
    return lower, level


def _detected_labels(img: np.ndarray, settings: ParticleSettings, support: np.ndarray | None, *, split: bool,
                     progress: ProgressCallback = None):
    """Labels of a 2D image under the threshold "detect": the particles a scanning detector finds at the settings'
    scale (whitened residual against a centre-surround disk, significance against its own noise), each grown
    to half its measured contrast in the smoothed background-free image and split from its neighbours by a
    watershed from the detections. Decided from the image, the estimate's ``support`` (its background with the
    particles positive, a function of the image, polarity, local block and a given diameter; None: read here) and
    the options only, so that ``settings.options()`` reproduce the labels."""
    ps = settings.pixel_size
    sign = -1.0 if settings.polarity == "dark" else 1.0
    if support is None:
        given = {"local_block": settings.local_block}
        if "diameter" not in settings.estimated:
            given["diameter"] = settings.diameter
        support = _ps.support_of(img, settings.polarity, ps, given)
    sigma = settings.smoothing / ps
    flat = _ps.take_background(sign * (_ps.smoothed(img, sigma) if sigma > 0 else img), support)
    background = support
    # the radius from the split distance (a quarter diameter), as the blob split reads it: options() give no diameter
    found = _pd.detect_particles(img, sign, background, 2 * settings.split_distance / ps)
    report(progress, 0.3)
    if found is None:
        return np.zeros(img.shape, np.int32)
    r, ys, xs, z = found
    level = _pd.contrast_at(_ps.take_background(sign * img, background), ys, xs, r, z)
    rungs = _pd.own_rungs(img, sign, background, r, ys, xs)
    report(progress, 0.6)
    labels = _pd.grow(flat, 0.5 * level, ys, xs, r, flat, reach=None if rungs is None else _pd.REACH * rungs[1])
    report(progress, 0.85)
    if rungs is not None and DISK_FROM_RADIUS <= r < DISK_BELOW_RADIUS:
        labels = _disks_where_growth_disagrees(labels, ys, xs, np.minimum(rungs[0], r * 1.2**DISK_MAX_RUNGS_ABOVE))
    components, n = ndi.label(labels > 0)
    if not split:
        labels = components
    else:  # rods cut at their several detections are given back whole
        labels = rejoin_ellipses(labels, components, n)
    return drop_small(labels, settings.min_size / ps**2)


# a detection's growth whose equivalent radius is more than this factor off its own rung (the disk radius at which its
# significance is highest, at most DISK_MAX_RUNGS_ABOVE rungs above the particles') is replaced by that disk. On faint
# Ø8-10 fields the half-way growth of a particle a few noise deviations clear follows the noise (equivalent radii
# 0.4-1.5x the true ones; IoU with the truth 0.22-0.38 where it is smaller than the rung by more than 1.3x) while the
# own rung stays within 0.9-1.2x (IoU 0.48-0.68). Only at particle radii from DISK_FROM_RADIUS to below
# DISK_BELOW_RADIUS px: at Ø11-12 (radius 5.97) the rungs of the off growths read 1.4-1.5x too large and the growth
# was the better outline (e1010 #6 0.82 -> 0.71), and a Ø5.5 field at radius 3.45 lost 0.025 (session 12)
DISK_WHERE_GROWTH_OFF = 1.3
DISK_MAX_RUNGS_ABOVE = 1.0
DISK_FROM_RADIUS, DISK_BELOW_RADIUS = 4.0, 5.5


def _disks_where_growth_disagrees(labels: np.ndarray, ys, xs, rungs: np.ndarray) -> np.ndarray:
    """``labels`` (detection k grown as object k + 1) with each object whose equivalent radius is more than
    DISK_WHERE_GROWTH_OFF off its detection's own rung (``rungs``, px) replaced by the disk of that rung; where two
    disks meet, pixels go to the nearer detection, and no disk takes another object's pixels."""
    from skimage import segmentation

    if not math.isfinite(DISK_WHERE_GROWTH_OFF) or len(ys) == 0:
        return labels
    area = np.bincount(labels.ravel(), minlength=len(ys) + 1)[1:len(ys) + 1]
    grown = np.sqrt(area / math.pi)
    off = np.abs(np.log(rungs / np.maximum(grown, 0.5))) > math.log(DISK_WHERE_GROWTH_OFF)
    if not off.any():
        return labels
    ids = np.flatnonzero(off)
    seeds = np.zeros(labels.shape, np.int32)
    seeds[np.asarray(ys)[ids], np.asarray(xs)[ids]] = ids + 1
    dist, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    nearest = seeds[iy, ix]
    within = dist <= rungs[np.maximum(nearest - 1, 0)]
    out = np.where(np.isin(labels, ids + 1), 0, labels)
    disks = np.where(within & (out == 0), nearest, 0)
    # a disk cut off from its detection by another object keeps only its connected part
    disks = segmentation.watershed(dist, np.where(disks > 0, seeds, 0), mask=disks > 0)
    return np.where(disks > 0, disks, out).astype(labels.dtype)


def _detector_after_refinement(img: np.ndarray, settings: ParticleSettings, given: dict, support: np.ndarray | None):
    """``(settings, support)`` of the detector where the first mask's granulometry read a speck-sized scale
    (:func:`_particle_detect.speck_scale`) on a 2D image whose threshold and diameter were estimated, else None."""
    if img.ndim != 2 or support is None or \
            not {"threshold", "diameter"} <= set(settings.estimated):
        return None
    ps = settings.pixel_size
    if not _pd.speck_scale(abs(settings.contrast) / max(settings.noise, 1e-12), settings.diameter / ps / 2):
        return None
    return _pd.detector_settings(img, settings, given, support)


def _mask_to_labels(mask: np.ndarray, settings: ParticleSettings, *, split: bool, fill_holes: bool,
                    image: np.ndarray | None = None, cut: tuple | None = None,
                    progress: ProgressCallback = None) -> np.ndarray:
    """Objects of ``mask``: holes filled, speckle opened away, small ones dropped, touching ones split
    (by the image's own blobs when ``image`` is a 2D image of particles below 16 px that stand clear of
    the noise; else by the distance map); in a 2D image cut at ``cut`` (its level and background) with faint
    particles, the objects much smaller than most grown by a pixel (:func:`grow_small_objects`), fragments rejoined
    (:func:`rejoin_fragments`) and, where the particles are also small, outlines redrawn as fitted ellipses
    (:func:`fit_outlines`). ``progress``:
    called with the fraction done between the steps (half the time of a 4k micrograph is spent here)."""

    ps = settings.pixel_size
    if fill_holes:
        mask = ndi.binary_fill_holes(mask)
    # open with a small ball to remove noise bridges and speckle
    radius = int(round(0.5 * settings.smoothing / ps))
    if radius > 0:
        mask = _open_with_ball(mask, radius)
    min_px = settings.min_size / ps**mask.ndim
    lab, n = ndi.label(mask)
    if n:
        sizes = np.bincount(lab.ravel())
        keep = sizes >= max(min_px, 1)
        keep[0] = False
        mask = keep[lab]
    report(progress, 0.25)
    if not split:
        labels, _ = ndi.label(mask)
        return labels.astype(np.int32)
    if image is not None and image.ndim == 2:
        labels = _split_by_blobs(image, mask, settings, min_px)
        if labels is None:
            outline = _sharper_outline(image, mask, settings, *cut) if cut is not None else None
            labels = _split_on_distance(mask, ps, settings.split_distance, min_px, shape_mask=outline)
        report(progress, 0.55)
        # a field of touching chains: their members found at their own scale (the estimate reads the chains')
        labels = split_chains(image, labels, polarity=settings.polarity, min_px=min_px)
        if cut is None:
            return labels
        labels = split_merged_pairs(labels, settings, image, cut[1])
        report(progress, 0.65)
        labels = grow_small_objects(labels, image, settings, *cut)
        report(progress, 0.8)
        labels = rejoin_fragments(labels, settings)
        report(progress, 0.85)
        return fit_outlines(labels, image, settings, cut[1], progress=sub_progress(progress, 0.85, 1.0))
    return _split_on_distance(mask, ps, settings.split_distance, min_px)


def _open_with_ball(mask: np.ndarray, radius: int) -> np.ndarray:
    """``ndi.binary_opening(mask, structure=disk(radius))`` (ball in 3D; outside the image is background), from two
    exact distance transforms: a pixel survives the erosion where its distance to the nearest background pixel
    exceeds ``radius`` (the footprint holds every offset of length <= radius), and the dilation brings back every pixel
    within ``radius`` of a survivor. Why: scipy's erosion by a footprint of radius 16 px (a 4k micrograph's smoothing)
    visits ~800 offsets per pixel. Exact: a distance is the square root of an integer, and sqrt(n) > r iff n > r² in
    floating point for any integer r an image can hold."""
    pad = radius + 1
    padded = np.pad(mask, pad)  # the outside is background, as for binary_erosion's border
    eroded = ndi.distance_transform_edt(padded) > radius
    if not eroded.any():
        return np.zeros(mask.shape, bool)
    opened = ndi.distance_transform_edt(~eroded) <= radius
    return opened[tuple(slice(pad, -pad) for _ in mask.shape)]


# objects under SMALL_OBJECT_SHARE of the median object's area are grown by one pixel into the pixels of the mask's
# smoothed image above SMALL_GROW_LEVEL_SHARE of its level. Why: at low dose the half-way cut catches a particle that
# is smaller than most, or dimmed by the noise, only near its top: its object is a fraction of its area (low-dose Ø5-10
# round and ellipse fields at 20-60 counts/px, session 18: the objects that missed their particle at IoU 0.3-0.5 had a
# median 0.55-0.67 of its area, the matched ones 0.94-1.0), and below the match's IoU of 0.5 from 1 px of radius short.
# Dev (seen) fields 33001-33600, HEAD -> (share 0.6, level 0.7): round 0.8713 -> 0.8955, ellipse 0.8220 -> 0.8405,
# touching 0.7102 -> 0.7186; shares 0.5-0.8 and levels 0.5-0.7 all gained, growing every object lost (ellipse -0.015).
# Only where the particles' contrast is below SMALL_GROW_BELOW_CONTRAST_TO_NOISE pixel-noise deviations (the faint
# fields of lower_level_mask): where it stands clear, the small objects are small particles cut right, and a pixel
# more doubled them (Ø6.5 disks at 213 counts/px, contrast 5 deviations: F1 0.98 -> 0.89; gated, seen Ø6.5-20 fields of
# any dose 34001-34150 round 0.9838 -> 0.9847, ellipse 0.9735 -> 0.9747, worst -0.0095). Session 18, rule S: never-run
# low-dose fields 32301-32600 r 0.8738 -> 0.8939 (25 up, 1 down), l 0.8165 -> 0.8340, t 0.7333 -> 0.7386; Ø6.5-20 any
# dose 34301-34600 round 0.9801 -> 0.9831, ellipse 0.9658 -> 0.9683, touching 0.8903 -> 0.8909; the nine default sets'
# images at most -0.009 (B7177 #5, A2026 #18), 14 up to +0.043
SMALL_OBJECT_SHARE = 0.6
SMALL_GROW_LEVEL_SHARE = 0.7
SMALL_GROW_BELOW_CONTRAST_TO_NOISE = 2.5


def grow_small_objects(labels: np.ndarray, image: np.ndarray, settings: ParticleSettings, level: float,
                       background: np.ndarray | None) -> np.ndarray:
    """``labels`` (2D) with each object under SMALL_OBJECT_SHARE of the median object's area grown by one pixel into
    the background pixels where the image, smoothed and less ``background`` as the mask was cut (None: nothing taken
    off), stands above SMALL_GROW_LEVEL_SHARE of the mask's ``level``; a pixel between two objects goes to the
    nearer (:func:`skimage.segmentation.expand_labels`). Only where the ``settings``' contrast is below
    SMALL_GROW_BELOW_CONTRAST_TO_NOISE of their pixel noise; elsewhere ``labels`` as they are."""
    from skimage.segmentation import expand_labels

    area = np.bincount(labels.ravel())
    if area.size < 2 or not SMALL_OBJECT_SHARE > 0 \
            or not abs(settings.contrast) < SMALL_GROW_BELOW_CONTRAST_TO_NOISE * settings.noise:
        return labels
    small = area < SMALL_OBJECT_SHARE * np.median(area[1:])
    small[0] = False
    if not small.any():
        return labels
    sigma = settings.smoothing / settings.pixel_size
    sign = -1.0 if settings.polarity == "dark" else 1.0
    flat = sign * (_ps.smoothed(image, sigma) if sigma > 0 else image)  # exact: a Gaussian commutes with the sign
    if background is not None:
        flat = _ps.take_background(flat, background)
    grown = expand_labels(labels, 1)
    add = (labels == 0) & small[grown] & (flat > SMALL_GROW_LEVEL_SHARE * level)
    return np.where(add, grown, labels).astype(labels.dtype)


# in a faint field of touching round objects (at least PAIR_MIN_OBJECTS objects, at least PAIR_FROM_CHAIN_SHARE of its
# components long, as a field of chains reads, and a median elongation of its objects under
# PAIR_ROUND_FIELD_ELONGATION), an object over PAIR_MIN_AREA_SHARE of the median object's area and PAIR_MIN_ELONGATION
# long (of its second moments) is cut in two across its long axis at its narrowest point in the middle half (of equal
# widths, the one nearest its middle). Why: in faint touching fields most missed particles are merged pairs (dev, seen
# low dose: 57 % of the unmatched truths; a merged object holds 2.0-2.2 particles at 1.3-1.6x the median area) and the
# distance map of the smoothed mask has no neck to cut at. Faint: see PAIR_BELOW_CONTRAST_TO_NOISE. The field gates, seen
# low-dose fields: touching fields read chain shares 0.41-0.76, round ones 0.08-0.19 (whose long objects are single
# particles: cut, 10 of 41 fields lost up to 0.026); ellipse fields with a median elongation under 1.45 read chain
# shares 0.19-0.33, those with 0.4 or more read 1.48-1.57 (ungated, ellipse fields lost up to 0.05); at a median
# elongation gate of 1.40 noisy Ø5-7 touching fields of 1.35-1.40 lost up to 0.05 (session 19). The median and the
# chain share of fewer than 60 objects are chance: faint benchmark "varied" images of 37-39 objects (long single
# ellipses, squares, hexagons among touching pairs) passed both and lost up to 0.04 to cut single particles (session
# 19).
# Session 18 (rule P) also asked for a neck under 0.85 of the widest point on either side: it passed only 24 % of the
# merged pairs (the smoothed mask fills their neck: median neck share 0.90, singles 1.0). Session 20, rule Q3 (no neck
# test, the object count gate), never-run fields: low-dose touching 35401-36000 0.7211 -> 0.7284 (26 up, 4 down, worst
# -0.026), Ø6.5-20 touching of any dose 35401-35600 0.9000 -> 0.9018 (23 up, 4 down), round and ellipse unchanged; of
# the nine benchmark sets and three never-run draws (252 images) two changed, both up (+0.012)
# Only where the particles' contrast is under PAIR_BELOW_CONTRAST_TO_NOISE pixel-noise deviations. Sessions 18-20 used
# the growth's 2.5; seen fields (session 21) say the field gates alone keep the cut off where it harms: of 30 seen
# low-dose touching fields 6 read 2.6-3.3 and left 83-160 merged truths each uncut (seen 34001-34400: 0.7479 -> 0.7513,
# 6 up, 0 down; t34069 0.836 -> 0.876); seen
# Ø6.5-20 touching fields of any dose 34001-34150 0.9122 -> 0.9156 at 4 (18 up, 4 down, worst -0.011), 0.9175 at 5,
# 0.9195 at 8, but at 8 a benchmark image (A31337 #23, Ø18 touching) lost 0.018; round and ellipse fields unchanged
# (their chain share and elongation gates). 4 covers every low-dose field (contrast <= 0.5 at <= 60 counts/px)
PAIR_BELOW_CONTRAST_TO_NOISE = 4.0
# ... and at any contrast where the particle scale (the settings' diameter) is below PAIR_ANY_CONTRAST_BELOW_DIAMETER px.
# Why: the half-way mask of touching particles a few pixels across merges them at high dose as at low dose (the blur
# fills the neck of a Ø5-8 pair whatever the noise: benchmark A2026 #23, touching Ø5.9 at 1036 counts/px, contrast 7.5
# noise deviations, 64 objects held two particles and 7 three), and the field gates and the one-ellipse test keep
# round and ellipse fields as they are. Seen (session 23): touching Ø6.5-8.5 fields of any dose 33001-33400 0.8555 ->
# 0.8663 (40 up, 2 down, worst -0.002), round and ellipse unchanged; A2026 #23 0.882 -> 0.900, the other benchmark and
# seen draws' images unchanged. Touching Ø8.5-20 of any dose 35401-35600: at 12 px 8 fields up, none down; at 16 px 29
# up, 3 down to -0.013; with no bound a benchmark Ø18 touching field (A31337 #23) lost 0.018 (as in session 21)
PAIR_ANY_CONTRAST_BELOW_DIAMETER = 12.0
PAIR_MIN_ELONGATION = 1.6
PAIR_MIN_AREA_SHARE = 1.1
PAIR_ROUND_FIELD_ELONGATION = 1.35
PAIR_MIN_OBJECTS = 60
PAIR_FROM_CHAIN_SHARE = 0.4
# ... and in a field whose median object is long (1.35 to PAIR_MERGED_FIELD_ELONGATION) where at least
# PAIR_MERGED_FIELD_CHAIN_SHARE of the components are chains. Why: there the mask merged so many touching round
# particles that the merged pairs themselves make the median object long (dev, session 27: 14 of the 16 worst low-dose
# touching fields of 33001-33300 read median elongation 1.35-1.47 and chain share 0.47-0.74; ellipse fields read chain
# share 0.27-0.42). Above 1.42 (1.44-1.53) three touching fields and one ellipse field (33282, chain share 0.45) lost.
# Rule Q (session 28), never-run fields 43601-44000: low-dose touching 0.7183 -> 0.7268 (12 up, 3 down, worst -0.010),
# any-dose touching +0.0004 (2 up), round and ellipse fields and 11 of 12 benchmark sets unchanged (A808 #23 +0.002)
PAIR_MERGED_FIELD_CHAIN_SHARE = 0.45
PAIR_MERGED_FIELD_ELONGATION = 1.42


def _second_moments(labels: np.ndarray, ids: np.ndarray, area: np.ndarray):
    """Per object ``ids``: its centroid (my, mx), its central second moments (cyy, cxx, cxy) and its elongation
    (the square root of the moments' major over minor eigenvalue; 1 for a disk)."""
    # sums over the objects' pixels only (bincount in the pixels' order, as ndi.sum: the same sums), not over
    # whole-image coordinate grids (four float64 images the size of a 4k micrograph, summed five times)
    yy, xx = np.nonzero(labels)
    lab = labels[yy, xx]
    yy, xx = yy.astype(float), xx.astype(float)
    n = area[ids].astype(float)

    def total(values):
        return np.bincount(lab, values, minlength=int(ids.max(initial=0)) + 1)[ids]

    my, mx = total(yy) / n, total(xx) / n
    cyy = total(yy * yy) / n - my**2
    cxx = total(xx * xx) / n - mx**2
    cxy = total(yy * xx) / n - my * mx
    half_diff = np.sqrt(((cyy - cxx) / 2) ** 2 + cxy**2)
    major, minor = (cyy + cxx) / 2 + half_diff, (cyy + cxx) / 2 - half_diff
    return (my, mx), (cyy, cxx, cxy), np.sqrt(major / np.maximum(minor, 1e-3))


def split_merged_pairs(labels: np.ndarray, settings: ParticleSettings, image: np.ndarray | None = None,
                       background: np.ndarray | None = None) -> np.ndarray:
    """``labels`` (2D) with the long objects of a faint field of touching round ones (or one of small particles at any
    contrast) cut at their narrowest point (see above); given the ``image`` (and the ``background`` its mask was cut
    against, None: nothing taken off), each cut pair is then redrawn by a joint fit of two ellipses
    (:func:`_fit_pair_outlines`)."""
    area = np.bincount(labels.ravel())
    faint = abs(settings.contrast) < PAIR_BELOW_CONTRAST_TO_NOISE * settings.noise
    small = settings.diameter / settings.pixel_size < PAIR_ANY_CONTRAST_BELOW_DIAMETER
    if area.size < 6 or not PAIR_MIN_ELONGATION > 0 or not (faint or small):
        return labels
    ids = np.arange(1, area.size)
    ids = ids[area[1:] > 0]
    if ids.size < PAIR_MIN_OBJECTS:  # the field's statistics (median elongation, chain share) need objects
        return labels
    (my, mx), (cyy, cxx, cxy), elongation = _second_moments(labels, ids, area)
    components, n_components = ndi.label(labels > 0)
    chain_share = _segment_chains.chain_field_share(components, n_components)[0]
    median_elongation = float(np.median(elongation))
    # a field of round particles, or one whose long objects are mostly touching round ones merged (see above)
    round_field = median_elongation < PAIR_ROUND_FIELD_ELONGATION or (
        chain_share >= PAIR_MERGED_FIELD_CHAIN_SHARE and median_elongation < PAIR_MERGED_FIELD_ELONGATION)
    if not (round_field and chain_share >= PAIR_FROM_CHAIN_SHARE):
        return labels
    median = float(np.median(area[ids]))
    long = (elongation >= PAIR_MIN_ELONGATION) & (area[ids] > PAIR_MIN_AREA_SHARE * median)
    out = labels.copy()
    next_id = int(area.size)
    boxes = ndi.find_objects(labels)
    cut = []  # (the object's id, its second half's id)
    for i in np.flatnonzero(long):
        k = ids[i]
        box = boxes[k - 1]
        obj = labels[box] == k
        py, px = np.nonzero(obj)
        angle = 0.5 * math.atan2(2 * cxy[i], cyy[i] - cxx[i])  # the long axis (y, x) = (cos, sin)
        t = (py + box[0].start - my[i]) * math.cos(angle) + (px + box[1].start - mx[i]) * math.sin(angle)
        bins = np.floor(t - t.min()).astype(int)
        width = np.bincount(bins)
        lo, hi = np.percentile(bins, [25, 75])
        middle = np.arange(int(math.ceil(lo)), int(math.floor(hi)) + 1)
        if middle.size == 0:
            continue
        narrowest = middle[width[middle] == width[middle].min()]
        neck = narrowest[np.argmin(np.abs(narrowest - np.median(bins)))]  # of equal widths, the one nearest the middle
        part = np.zeros(obj.shape, bool)
        part[py, px] = bins > neck
        out[box][part] = next_id
        cut.append((k, next_id))
        next_id += 1
    if image is not None and cut and PAIR_FIT:
        single = ~long & (elongation < PAIR_MIN_ELONGATION)
        was_cut = np.isin(ids, [k for k, _ in cut])
        if faint:
            min_area, min_elongation, share = WHOLE_FIT_MIN_AREA_SHARE, WHOLE_FIT_MIN_ELONGATION, WHOLE_FIT_ONE_SHARE
        else:
            min_area, min_elongation = WHOLE_FIT_CLEAR_MIN_AREA_SHARE, WHOLE_FIT_CLEAR_MIN_ELONGATION
            share = WHOLE_FIT_CLEAR_ONE_SHARE
        whole = ids[~was_cut & (area[ids] > min_area * median) & (elongation >= min_elongation)]
        out = _fit_pair_outlines(out, labels, cut, image, settings, background, area[ids][single],
                                 elongation[single], whole=whole, whole_share=share)
    return out


# each pair split_merged_pairs cut is redrawn as two ellipses fitted together to the image: both soft-edged ellipses
# (centre, size, aspect, orientation each), one contrast and one background level by least squares over the object's
# box grown by PAIR_FIT_MARGIN px (other objects' pixels, grown by a pixel, left out), the size and aspect held by a
# Gaussian prior learned from the field's own single objects (those not cut and under PAIR_MIN_ELONGATION: the median
# and spread of their log equivalent radius, the spread of their elongation), started from the cut's halves; the
# ellipses are painted (a pixel to the ellipse it lies deeper in) over the object and the background around it. Why:
# the neck cut's halves are the smoothed mask's pixels, not the particles' outlines (session 21: an oracle fit of the
# true pairs told the field's size and aspect distribution found 0.94 of their members, HEAD's halves 0.73). Without the
# prior the fit is worse than the halves (session 21's maximum-likelihood oracle). The halves stay where one ellipse
# fits the object nearly as well: two must explain PAIR_FIT_ONE_SHARE of the object's own signal (half its area times
# the squared contrast-to-noise) better than one. Seen fields, per cut object: where two explain under 2.5 % better
# most objects hold one particle (low-dose touching 34001-34600: 128 of 194) and the fit found fewer than the halves;
# a single long particle of a 'varied' benchmark image (A39121 #6, 0.0205) was halved evenly by the fit and lost.
# Dev (seen, session 22, against 13cdffb): low-dose touching 34001-34600 0.7526 -> 0.7564 (30 up, 4 down, worst
# -0.0043), Ø6.5-20 touching of any dose 35401-35600 0.9101 -> 0.9114 (28 up, 2 down); round and ellipse fields and
# the benchmark sets' other images unchanged (the cut is off there). Painting the ellipses only over the object's own
# pixels gained less (12 fields down of 67); an edge of 0.45 or 0.8 px gained less. Without the one-ellipse test
# (rule P) a never-run 'varied' image lost 0.012.
# All pairs are fitted at once, then all objects left whole (_fit_ellipses_each, session 27), not with scipy pair by
# pair: faint 2048² touching field, CPU s of the pair fits 25.7 -> 6.3, of segment_particles 45.2 -> 24.7 (HEAD and
# this alternated in one process, medians of 3). The two optimisers stop at slightly different points of the flat
# two-ellipse cost: session 27's rule P27, never-run fields 43201-43600 and 12 benchmark sets: every group's mean within
# 0.0005, 12 of 861 images changed, the worst -0.0056 (B4242 #11)
PAIR_FIT = True
PAIR_FIT_EDGE = 0.6  # px, the logistic edge width of a fitted ellipse: 0.59 of a blur's sigma (here 1 px)
PAIR_FIT_MARGIN = 3  # px of background around the object in the fit: the edge blurred over 1-2 px plus room to move
PAIR_FIT_MIN_SINGLES = 20  # single objects needed to learn the size and aspect prior from
PAIR_FIT_RADIUS_RANGE = 2.0  # the fitted radius within this factor of the singles' median (a bound, not the prior)
PAIR_FIT_MAX_EVALUATIONS = 100  # a bound on the time: the fits stop after 5-15 steps at PAIR_FIT_TOLERANCE
PAIR_FIT_MIN_SHARE = 0.2  # an ellipse painted over less than this share of the object: the fit lost a particle
PAIR_FIT_ONE_SHARE = 0.025  # seen: 0.02-0.025 best on both dev sets (0.03: fewer members than no test)
PAIR_FIT_TOLERANCE = 1e-4  # relative: outlines to a hundredth of a pixel (1e-8: twice the steps, no better)

# the objects of such a field the cut left whole (not long enough, or no neck in their middle half) that are larger
# than WHOLE_FIT_MIN_AREA_SHARE of the median object and elongated by WHOLE_FIT_MIN_ELONGATION or more are fitted with
# one and with two ellipses the same way (two started from the object cut across its long axis at its centroid) and
# painted as two where two explain WHOLE_FIT_ONE_SHARE of the object's signal better. Why: seen low-dose touching
# fields 34001-34300, per object the cut left whole (2,916: 2,402 hold one particle, 448 two, 65 three or more), a
# split pays where twice the truths gained exceed F1 (~0.75) times the objects added: best with elongation >= 1.4 and
# a share >= 0.04 (+3.8 per field; on 34301-34600 +4.4; >= 0.03 without the elongation gate: -3 per field). Session
# 23, rule Q (written before the run, session 22): never-run low-dose touching 38601-39000 0.7171 -> 0.7213 (26
# fields changed: 25 up, 1 down by 0.0002), Ø6.5-20 touching of any dose 39001-39200 0.8972 -> 0.8996 (44 up, 7 down,
# worst -0.008); round and ellipse fields unchanged; nine benchmark sets and six never-run draws: 8 images up, none
# down; up to 1.34x the time on those fields
WHOLE_FIT_MIN_AREA_SHARE = 1.0
WHOLE_FIT_MIN_ELONGATION = 1.4
WHOLE_FIT_ONE_SHARE = 0.04
# ... and in the fields the cut runs in by its scale bound only (contrast PAIR_BELOW_CONTRAST_TO_NOISE noise deviations or
# more), from WHOLE_FIT_CLEAR_MIN_ELONGATION on and where two explain WHOLE_FIT_CLEAR_ONE_SHARE of the signal better.
# Why: at that contrast one ellipse fits a single particle to within the noise, and the pairs the mask merged include
# compact ones (touching Ø5-6 disks overlapping by 2-12 % of their radii, blurred: elongation 1.2-1.6; A2026 #23's
# objects holding two particles: median 1.59, a tenth under 1.2). Seen (session 23), touching Ø5-8.5 fields at 100-2000
# counts/px 33001-33400 against the 1.4 / 0.04 of faint fields: 0.8880 -> 0.8942 (80 up, none down, 1.5x the time);
# 1.3 / 0.02: 0.8932 (1.2x); 1.2 with objects from 0.8 of the median: 0.8980 (2.0x the time of the faint gates', 1.3x
# of 1.0's). Rule C2 (session 23, 1.0 / 1.2 / 0.02), never-run touching Ø5-12 fields of any dose 40001-40400 0.8702
# -> 0.8726 (71 up, 4 down, worst -0.002), round, ellipse, low-dose fields and benchmark images not lower. Rule C3
# (area from 0.8 of the median): see notes/handoff_particles23.md
WHOLE_FIT_CLEAR_MIN_AREA_SHARE = 0.8
WHOLE_FIT_CLEAR_MIN_ELONGATION = 1.2
WHOLE_FIT_CLEAR_ONE_SHARE = 0.02


def _ellipse_edge(p, yy, xx):
    """(g, dg/dp) at the pixels (yy, xx) of the ellipse ``p`` = (centre y, x, log equivalent radius r,
    (aspect - 1) cos 2t, (aspect - 1) sin 2t), t its major axis' angle from x towards y: g = (r - rho) / PAIR_FIT_EDGE,
    rho the pixel's distance from the centre in the ellipse's metric (rho = r on its outline); positive inside.
    ``p`` (5,) with pixels of any shape S gives S and S + (5,); ``p`` (n, 5) with pixels (n, P) or (P,), (n, P) and
    (n, P, 5): n ellipses at once."""
    cy, cx, log_r, e1, e2 = (p[..., i, None] for i in range(5))
    r = np.exp(log_r)
    m = np.sqrt(e1 * e1 + e2 * e2 + 1e-12)
    aspect = 1.0 + np.minimum(m, 1.2)
    t = 0.5 * np.arctan2(e2, e1)
    c, s = np.cos(t), np.sin(t)
    dx, dy = xx - cx, yy - cy
    u, v = dx * c + dy * s, dy * c - dx * s  # along and across the major axis
    a, b = u / aspect, v * aspect
    rho = np.maximum(np.sqrt(u * a + v * b), 1e-6)
    # the derivatives of g in a = u / (aspect rho edge) and b = v aspect / (rho edge), written into one array (this
    # runs over every pixel of 30,000 windows several times in a faint 2048² field)
    scale = 1.0 / (rho * PAIR_FIT_EDGE)
    a *= scale
    b *= scale
    g_angle = b * u - a * v
    g_aspect = (u * a - v * b) * np.where(m < 1.2, 0.5 / aspect, 0.0)  # the aspect is capped at 2.2
    grad = np.empty(rho.shape + (5,))
    grad[..., 0] = a * s + b * c
    grad[..., 1] = a * c - b * s
    grad[..., 2] = r / PAIR_FIT_EDGE
    grad[..., 3] = g_aspect * (e1 / m) - g_angle * (0.5 * e2 / m**2)
    grad[..., 4] = g_aspect * (e2 / m) + g_angle * (0.5 * e1 / m**2)
    return (r - rho) / PAIR_FIT_EDGE, grad


def _ellipse_distance(p, yy, xx):
    """The normalised radius (1 on the outline) of the pixels (yy, xx) in the ellipse ``p`` (see _ellipse_edge)."""
    g, _ = _ellipse_edge(p, yy, xx)
    return 1.0 - g * PAIR_FIT_EDGE / np.exp(p[..., 2, None])


def _moment_starts(weight, yy, xx):
    """The ellipse parameters (n, 5) of n pixel sets (``weight`` (n, P), True on a set's pixels at (yy, xx)) from their
    centroids, areas and second moments; a set of at most two pixels is a circle."""
    count = weight.sum(axis=1)
    my, mx = (weight * yy).sum(axis=1) / count, (weight * xx).sum(axis=1) / count
    dy, dx = np.where(weight, yy - my[:, None], 0.0), np.where(weight, xx - mx[:, None], 0.0)
    cyy, cxx, cxy = ((a * b).sum(axis=1) / np.maximum(count - 1, 1) for a, b in ((dy, dy), (dx, dx), (dy, dx)))
    cov = np.stack([np.stack([cyy, cxy], axis=-1), np.stack([cxy, cxx], axis=-1)], axis=-2)
    cov[count <= 2] = np.eye(2)
    w, v = np.linalg.eigh(cov)
    aspect = np.sqrt(np.maximum(w[:, 1], 1e-6) / np.maximum(w[:, 0], 1e-6))
    t = np.arctan2(v[:, 0, 1], v[:, 1, 1])  # the major axis from +x towards +y
    e = np.minimum(aspect - 1.0, 1.2)
    return np.stack([my, mx, np.log(np.maximum(np.sqrt(count / math.pi), 0.8)), e * np.cos(2 * t),
                     e * np.sin(2 * t)], axis=1)


def _window_box(box, shape):
    """The fit window of an object's ``box`` (ndi.find_objects's) in an image of ``shape``: grown by PAIR_FIT_MARGIN."""
    return tuple(slice(max(b.start - PAIR_FIT_MARGIN, 0), min(b.stop + PAIR_FIT_MARGIN, n)) for b, n in zip(box, shape))


def _shape_prior(single_area: np.ndarray, single_elongation: np.ndarray) -> tuple[float, float, float]:
    """The fits' prior from a field's single objects (their areas, px, and elongations): the median and the robust
    spread of their log equivalent radius, and the spread of their elongation."""
    log_r = 0.5 * np.log(single_area / math.pi)
    r0 = float(np.median(log_r))
    r_sd = max(1.4826 * float(np.median(np.abs(log_r - r0))), 0.1)
    e_sd = float(np.clip(np.sqrt(np.mean((single_elongation - 1.0) ** 2)), 0.1, 0.5))
    return r0, r_sd, e_sd


def _window_of(array, corner, shape):
    """``array`` over the windows at ``corner`` (n, 2), each ``shape`` (H, W) (read past the far edges: padding)."""
    h, w = array.shape
    rows = np.minimum(corner[:, 0, None] + np.arange(shape[0]), h - 1)[:, :, None]
    cols = np.minimum(corner[:, 1, None] + np.arange(shape[1]), w - 1)[:, None, :]
    return array[rows, cols]


def _similar_windows(boxes, ids):
    """The indices into ``ids`` in chunks whose windows' longer sides lie within 1.25x of each other (little padding),
    each of about OUTLINE_FIT_CHUNK_PIXELS window pixels."""
    side = np.array([max(b[0].stop - b[0].start, b[1].stop - b[1].start) for b in (boxes[k - 1] for k in ids)])
    side += 2 * PAIR_FIT_MARGIN
    order = np.argsort(side, kind="stable")
    start = 0
    while start < ids.size:
        stop = int(np.searchsorted(side[order], 1.25 * side[order[start]], side="right"))
        stop = min(stop, start + max(1, OUTLINE_FIT_CHUNK_PIXELS // int(1.25 * side[order[start]]) ** 2))
        yield order[start:stop]
        start = stop


def _fit_pair_outlines(out, labels, cut, image, settings, background, single_area, single_elongation, whole=(),
                       whole_share=WHOLE_FIT_ONE_SHARE):
    """``out`` with each pair ``cut`` ((object id in ``labels``, its second half's id in ``out``)) redrawn by a joint
    least-squares fit of two soft ellipses, a contrast and a background level to the ``image`` less its ``background``
    (see above); the prior from the field's ``single_area`` and ``single_elongation``. The cut stays where one ellipse
    fits the object nearly as well (see PAIR_FIT_ONE_SHARE) or the fit gives one ellipse under PAIR_FIT_MIN_SHARE of
    the object. Then each object of ``whole`` (ids in ``labels`` the cut left whole) is painted as two ellipses where
    two fit it clearly better than one: by ``whole_share`` of its signal (see WHOLE_FIT_ONE_SHARE)."""
    if single_area.size < PAIR_FIT_MIN_SINGLES or not settings.noise > 0:
        return out
    r0, r_sd, e_sd = _shape_prior(single_area, single_elongation)
    signed = (-image if settings.polarity == "dark" else image).astype(float)
    flat = signed if background is None else _ps.take_background(signed, background)
    contrast, noise = abs(settings.contrast), settings.noise
    prior_mean, prior_sd = np.array([r0, 0.0, 0.0]), np.array([r_sd, e_sd, e_sd])
    # the radius within PAIR_FIT_RADIUS_RANGE of the singles' median, the aspect at most 2.2 (as _ellipse_edge caps
    # it), the contrast within 0.2-5x the field's: a pair fit that runs off them keeps the cut
    one_lo = [-np.inf, -np.inf, r0 - math.log(PAIR_FIT_RADIUS_RANGE), -1.2, -1.2]
    one_hi = [np.inf, np.inf, r0 + math.log(PAIR_FIT_RADIUS_RANGE), 1.2, 1.2]
    bounds = {n: (np.r_[np.tile(one_lo, n), 0.2 * contrast, -np.inf], np.r_[np.tile(one_hi, n), 5.0 * contrast, np.inf])
              for n in (1, 2)}
    boxes = ndi.find_objects(labels)

    def fit_two_and_one(ids, halves):  # per object of ids: both fits (see _fit_ellipses_each), all objects at once
        results = {}
        for chunk in _similar_windows(boxes, ids):
            corner, size, obj, usable, values, offset = _fit_windows(labels, ids[chunk], boxes, flat)
            n, height, width = obj.shape
            yy, xx = (a.ravel().astype(float) for a in np.indices((height, width)))
            data, used = values.reshape(n, -1), usable.reshape(n, -1)
            first, second = halves(chunk, corner, obj)
            two = np.c_[_moment_starts(first.reshape(n, -1), yy, xx), _moment_starts(second.reshape(n, -1), yy, xx),
                        np.full(n, contrast), offset]
            q, cost, within = _fit_ellipses_each(yy, xx, data, used, two, prior_mean, prior_sd, *bounds[2], noise)
            one = np.c_[_moment_starts(obj.reshape(n, -1), yy, xx), np.full(n, contrast), offset]
            cost_one = np.full(n, np.nan)
            if within.any():
                cost_one[within] = _fit_ellipses_each(yy, xx, data[within], used[within], one[within], prior_mean,
                                                      prior_sd, *bounds[1], noise)[1]
            for i, j in enumerate(chunk):
                results[j] = (q[i], cost[i], within[i], cost_one[i])
        return results

    def cut_halves(chunk, corner, obj):  # the two objects the cut made, in out
        window = _window_of(out, corner, obj.shape[1:])
        pair_ids = np.array([cut[j] for j in chunk])
        return obj & (window == pair_ids[:, 0, None, None]), obj & (window == pair_ids[:, 1, None, None])

    if cut:
        fits = fit_two_and_one(np.array([k for k, _ in cut]), cut_halves)
    for index, (k, second) in enumerate(cut):
        q, cost, within, cost_one = fits[index]
        if not within:
            continue
        win = _window_box(boxes[k - 1], labels.shape)
        obj = labels[win] == k
        if cost_one - cost < PAIR_FIT_ONE_SHARE * 0.5 * (contrast / noise) ** 2 * np.count_nonzero(obj):
            continue
        yy, xx = np.indices(obj.shape, dtype=float)
        f = np.stack([_ellipse_distance(q[5 * j:5 * j + 5], yy, xx) for j in (0, 1)])
        free = obj | (out[win] == 0)
        new = np.where(free & (f.min(0) < 1.0), np.where(f[0] <= f[1], k, second), np.where(obj, 0, out[win]))
        sizes = [np.count_nonzero(new == j) for j in (k, second)]
        if min(sizes) < PAIR_FIT_MIN_SHARE * np.count_nonzero(obj):
            continue
        out[win] = new
    # the objects left whole: halves along the long axis (each of 3 px or more)
    whole_ids, whole_starts = [], {}
    for k in whole:
        win = _window_box(boxes[k - 1], labels.shape)
        py, px = np.nonzero(labels[win] == k)
        angle = 0.5 * math.atan2(2 * np.mean((py - py.mean()) * (px - px.mean())), np.var(py) - np.var(px))
        t = (py - py.mean()) * math.cos(angle) + (px - px.mean()) * math.sin(angle)  # along the long axis
        if (t > 0).sum() < 3 or (t <= 0).sum() < 3:
            continue
        whole_starts[len(whole_ids)] = (py, px, t)
        whole_ids.append(k)

    def long_axis_halves(chunk, corner, obj):
        first, second = np.zeros_like(obj), np.zeros_like(obj)
        for i, j in enumerate(chunk):
            py, px, t = whole_starts[j]
            first[i, py[t <= 0], px[t <= 0]] = True
            second[i, py[t > 0], px[t > 0]] = True
        return first, second

    if whole_ids:
        fits = fit_two_and_one(np.array(whole_ids), long_axis_halves)
    next_id = int(out.max()) + 1
    for index, k in enumerate(whole_ids):
        q, cost, within, cost_one = fits[index]
        if not within:
            continue
        win = _window_box(boxes[k - 1], labels.shape)
        obj = labels[win] == k
        area = np.count_nonzero(obj)
        if cost_one - cost < whole_share * 0.5 * (contrast / noise) ** 2 * area:
            continue
        yy, xx = np.indices(obj.shape, dtype=float)
        f = np.stack([_ellipse_distance(q[5 * j:5 * j + 5], yy, xx) for j in (0, 1)])
        in_out = out[win] == k
        free = in_out | (out[win] == 0)
        new = np.where(free & (f.min(0) < 1.0), np.where(f[0] <= f[1], k, next_id), np.where(in_out, 0, out[win]))
        sizes = [np.count_nonzero(new == j) for j in (k, next_id)]
        if min(sizes) < PAIR_FIT_MIN_SHARE * area:
            continue
        out[win] = new
        next_id += 1
    return out


# in a faint field of long objects that is not a field of chains (at least PAIR_MIN_OBJECTS objects, a median
# elongation of PAIR_ROUND_FIELD_ELONGATION or more, under PAIR_FROM_CHAIN_SHARE of its components long: the fields
# split_merged_pairs leaves alone), two adjacent objects each smaller than the median object and together at most
# FRAGMENT_MAX_UNION_SHARE of it are joined, the pairs sharing the longest boundary first, each object at most once.
# Why: in faint ellipse fields the split cuts elongated particles in two (seen low-dose ellipse fields 33001-33400:
# 63 % of the false objects lie on a particle whose best object reaches only IoU 0.3-0.5; of those particles held by
# two objects 98 % are held by two adjacent ones, sized 0.81 and 0.68 of the median object, whose union matches the
# particle at IoU > 0.5 in 95 %). Seen fields with median elongation >= 1.35 read chain shares: ellipse 0.27-0.42,
# touching 0.48-0.68 (joining there merged touching particles: lost up to 0.06). The union's solidity (area over its
# convex hull's) tells the pieces of one particle (seen: median 0.86) from two particles that touch (0.77-0.80; without
# it, faint benchmark 'varied' images lost 0.02-0.03). Session 20, rule R, never-run fields: low-dose ellipse
# 36001-36600 0.8112 -> 0.8216 (72 fields, 36 up, 1 down -0.004), round 0.8659 -> 0.8685 (8 up), touching unchanged;
# Ø6.5-20 of any dose 36001-36200 ellipse 0.9620 -> 0.9635 (13 up), round +0.0002, touching unchanged; of the nine
# benchmark sets and three never-run draws (252 images) 6 changed, the lowest -0.003
FRAGMENT_MAX_UNION_SHARE = 1.6
FRAGMENT_MIN_SOLIDITY = 0.84


def rejoin_fragments(labels: np.ndarray, settings: ParticleSettings) -> np.ndarray:
    """``labels`` (2D) with the adjacent small fragments of a faint field of long single objects joined (see above)."""
    area = np.bincount(labels.ravel())
    if area.size < 6 or not FRAGMENT_MAX_UNION_SHARE > 0 \
            or not abs(settings.contrast) < SMALL_GROW_BELOW_CONTRAST_TO_NOISE * settings.noise:
        return labels
    ids = np.flatnonzero(area[1:]) + 1
    if ids.size < PAIR_MIN_OBJECTS:
        return labels
    if not np.median(_second_moments(labels, ids, area)[2]) >= PAIR_ROUND_FIELD_ELONGATION:
        return labels
    components, n_components = ndi.label(labels > 0)
    if not _segment_chains.chain_field_share(components, n_components)[0] < PAIR_FROM_CHAIN_SHARE:
        return labels
    median = float(np.median(area[ids]))
    # pairs of different objects that touch (8-connected), with the length of their shared boundary
    keys = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :]),
                 (labels[:-1, :-1], labels[1:, 1:]), (labels[:-1, 1:], labels[1:, :-1])):
        touch = (a > 0) & (b > 0) & (a != b)
        keys.append(np.minimum(a[touch], b[touch]).astype(np.int64) * area.size + np.maximum(a[touch], b[touch]))
    pairs, shared = np.unique(np.concatenate(keys), return_counts=True)
    p, q = pairs // area.size, pairs % area.size
    small = (area[p] < median) & (area[q] < median) & (area[p] + area[q] <= FRAGMENT_MAX_UNION_SHARE * median)
    p, q, shared = p[small], q[small], shared[small]
    if not p.size:
        return labels
    from skimage.measure import regionprops

    joined = np.arange(area.size)
    used = np.zeros(area.size, bool)
    boxes = ndi.find_objects(labels)
    for i in np.argsort(-shared, kind="stable"):
        if used[p[i]] or used[q[i]]:
            continue
        box = tuple(slice(min(u.start, v.start), max(u.stop, v.stop)) for u, v in zip(boxes[p[i] - 1], boxes[q[i] - 1]))
        one, other = labels[box] == p[i], labels[box] == q[i]
        # two pieces of one particle leave a convex union; two particles meet at a narrow contact, their union waisted
        if regionprops((one | other).astype(np.uint8))[0].solidity < FRAGMENT_MIN_SOLIDITY:
            continue
        used[p[i]] = used[q[i]] = True
        joined[q[i]] = p[i]
    present = np.zeros(area.size, bool)
    present[joined[ids]] = True
    consecutive = np.zeros(area.size, labels.dtype)  # ids 1.. without gaps, as the split's drop_small leaves them
    consecutive[present] = np.arange(1, int(present.sum()) + 1)
    return consecutive[joined][labels]


# in a faint field of small particles (the settings' diameter below OUTLINE_FIT_BELOW_DIAMETER px, their contrast below
# OUTLINE_FIT_BELOW_CONTRAST_TO_NOISE pixel-noise deviations) each object is fitted with one soft ellipse (the pair fit's
# model, prior and window) and redrawn as that ellipse where the fit's contrast lies within OUTLINE_FIT_CONTRAST_RANGE of
# the median over the fits of the field's single objects. Why: a few-pixel object cut from the smoothed image follows
# its noise (a pixel of radius off halves the IoU of a Ø5 particle); a fit whose contrast is off the field's fitted a
# noise speck, a merged pair or a fragment, and keeps its object (not holding the contrast, the dev images lost 0.002).
# Seen (session 24, dev): benchmark A808 #7 0.441 -> 0.465, B909 #9 0.589 -> 0.606, A808 #23 0.684 -> 0.702; low-dose
# fields 33001-33300 r 0.9063 -> 0.9119, l 0.8592 -> 0.8644, t 0.7653 -> 0.7663 at a range of 1.2 (1.05: less; 1.5:
# the same). Two ellipses per object (as the whole-object fit) split single round and ellipse particles there (low-dose
# ellipse fields -0.05). Not at higher contrast: a 2048² field of Ø8 particles at 3.4 noise deviations holds 20,000.
# All objects are fitted at once (_fit_one_ellipse_each, session 25): about 0.2 ms of CPU an object, where scipy's
# least_squares object by object took about 1.2 ms (rule B/B2: see the handoff of session 25)
OUTLINE_FIT = True
OUTLINE_FIT_BELOW_DIAMETER = 12.0
OUTLINE_FIT_BELOW_CONTRAST_TO_NOISE = 2.5
OUTLINE_FIT_CONTRAST_RANGE = 1.2


OUTLINE_FIT_CHUNK_PIXELS = 1 << 16  # window pixels fitted at once: its arrays stay in the cache (2^19: 1.4x the time)


def _fit_windows(labels, ids, boxes, flat):
    """The fit windows of the objects ``ids`` of ``labels`` (``boxes`` from ndi.find_objects): each object's box grown
    by PAIR_FIT_MARGIN px (_window_box), padded to one size (H, W) at their far sides: (window corners (n, 2), window
    sizes (n, 2), the objects' pixels, the usable pixels (other objects' grown by a pixel left out, padding not),
    ``flat`` over the windows, each background level: the median of ``flat`` over the usable pixels of no object), the
    masks and values (n, H, W)."""
    h, w = labels.shape
    first = np.array([[boxes[k - 1][0].start, boxes[k - 1][1].start] for k in ids])
    last = np.array([[boxes[k - 1][0].stop, boxes[k - 1][1].stop] for k in ids])
    corner = np.maximum(first - PAIR_FIT_MARGIN, 0)
    size = np.minimum(last + PAIR_FIT_MARGIN, (h, w)) - corner
    rows = corner[:, 0, None] + np.arange(size[:, 0].max())
    cols = corner[:, 1, None] + np.arange(size[:, 1].max())
    inside = (rows < (corner[:, 0] + size[:, 0])[:, None])[:, :, None] \
        & (cols < (corner[:, 1] + size[:, 1])[:, None])[:, None, :]
    rows, cols = np.minimum(rows, h - 1)[:, :, None], np.minimum(cols, w - 1)[:, None, :]
    window = np.where(inside, labels[rows, cols], 0)
    obj = window == ids[:, None, None]
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndi.generate_binary_structure(2, 1)  # each window dilated in its own plane only
    usable = inside & ~ndi.binary_dilation((window != 0) & ~obj, structure=in_plane)
    values = flat[rows, cols]
    # the median of the values around the object (np.median's, over a varying count of pixels per window)
    around = (usable & (window == 0)).reshape(len(ids), -1)
    ordered = np.sort(np.where(around, values.reshape(len(ids), -1), np.inf), axis=1)
    count = around.sum(axis=1)
    at = np.arange(len(ids))
    middle = 0.5 * (ordered[at, np.maximum(count - 1, 0) // 2] + ordered[at, count // 2])
    return corner, size, obj, usable, values, np.where(count > 0, middle, 0.0)


def _fit_one_ellipse_each(yy, xx, data, used, starts, prior_mean, prior_sd, lo, hi, noise):
    """``(parameters (n, 7), within (n,))`` of _fit_ellipses_each with one ellipse per window."""
    q, _, within = _fit_ellipses_each(yy, xx, data, used, starts, prior_mean, prior_sd, lo, hi, noise)
    return q, within


def _fit_ellipses_each(yy, xx, data, used, starts, prior_mean, prior_sd, lo, hi, noise):
    """``(parameters (n, 5k + 2), cost (n,), within (n,))`` of n windows' joint least-squares fits, each of k soft
    ellipses (their union), a contrast and a background level to its ``data`` at the pixels (yy, xx), in units of the
    pixel ``noise``, with the Gaussian prior (``prior_mean``, ``prior_sd``) on each ellipse's log radius and aspect
    terms; cost: half the sum of the squared residuals, prior included; within: the parameters inside (``lo``, ``hi``).
    ``data`` and ``used`` (n, P) (False: padding, pixels left out), the pixels' (yy, xx) (P,), ``starts`` (n, 5k + 2):
    each ellipse's 5 parameters, then contrast and level. The tests hold it to scipy's MINPACK fit of one window
    (tests/core/_ellipse_reference.py). Why batched: scipy's least_squares costs about 1 ms a call in overhead alone, and a faint 2048² field holds 30,000 objects; here each
    Levenberg-Marquardt step is a few numpy operations over all the windows and one (5k + 2)² solve per window, each
    with its own damping (Marquardt's, Nielsen's update) and each stopping on its own (the cost or the step below
    PAIR_FIT_TOLERANCE, relative, or PAIR_FIT_MAX_EVALUATIONS steps)."""
    from scipy.special import expit

    k = (starts.shape[1] - 2) // 5
    m = 5 * k + 2
    weight = used / noise
    prior_weight = 1.0 / np.tile(prior_sd, k)
    prior_mean = np.tile(prior_mean, k)
    shape_terms = np.concatenate([[5 * j + 2, 5 * j + 3, 5 * j + 4] for j in range(k)])

    def evaluate(q, rows):  # the windows' costs (half the squared residuals' sum), normal matrices and gradients
        w, contrast = weight[rows], q[:, 5 * k, None]
        model_jac = np.empty(w.shape + (m,))
        if k == 1:
            g, dg = _ellipse_edge(q[:, :5], yy, xx)
            union = expit(g)
            model_jac[..., :5] = dg * (contrast * union * (1.0 - union) * w)[..., None]
        else:
            edges = [_ellipse_edge(q[:, 5 * j:5 * j + 5], yy, xx) for j in range(k)]
            inside = [expit(g) for g, _ in edges]
            outside = [1.0 - s for s in inside]
            union = 1.0 - np.prod(outside, axis=0)
            for j, (_, dg) in enumerate(edges):
                others = np.prod([o for i, o in enumerate(outside) if i != j], axis=0)
                model_jac[..., 5 * j:5 * j + 5] = dg * (contrast * others * inside[j] * outside[j] * w)[..., None]
        residual = (data[rows] - contrast * union - q[:, 5 * k + 1, None]) * w
        model_jac[..., 5 * k] = union * w
        model_jac[..., 5 * k + 1] = w
        prior = (q[:, shape_terms] - prior_mean) * prior_weight
        cost = 0.5 * (np.einsum("np,np->n", residual, residual) + np.einsum("ni,ni->n", prior, prior))
        normal = np.matmul(model_jac.transpose(0, 2, 1), model_jac)
        normal[:, shape_terms, shape_terms] += prior_weight**2
        grad = -np.matmul(model_jac.transpose(0, 2, 1), residual[..., None])[..., 0]
        grad[:, shape_terms] += prior * prior_weight
        return cost, normal, grad

    q = np.clip(starts, lo + 1e-6, hi - 1e-6)
    final_cost = np.full(len(q), np.inf)
    rows = np.flatnonzero(np.isfinite(q).all(axis=1))  # the windows still being fitted
    cost, normal, grad = evaluate(q[rows], rows)
    final_cost[rows] = cost
    damping, growth = np.full(rows.size, 1e-3), np.full(rows.size, 2.0)
    for _ in range(PAIR_FIT_MAX_EVALUATIONS):
        if not rows.size:
            break
        scale = np.maximum(np.diagonal(normal, axis1=1, axis2=2), 1e-12)
        damped = normal + damping[:, None, None] * np.eye(m) * scale[:, None, :]
        step = -np.linalg.solve(damped, grad[..., None])[..., 0]
        trial = q[rows] + step
        new_cost, new_normal, new_grad = evaluate(trial, rows)
        predicted = -np.einsum("ni,ni->n", step, grad) - 0.5 * np.einsum("ni,nij,nj->n", step, normal, step)
        gain = (cost - new_cost) / np.maximum(predicted, 1e-300)
        accept = np.isfinite(new_cost) & (gain > 0)
        done = (np.linalg.norm(step, axis=1) <= PAIR_FIT_TOLERANCE * np.linalg.norm(trial, axis=1)) | (
            accept & (cost - new_cost <= PAIR_FIT_TOLERANCE * cost) & (predicted <= PAIR_FIT_TOLERANCE * cost))
        q[rows[accept]] = trial[accept]
        cost[accept], normal[accept], grad[accept] = new_cost[accept], new_normal[accept], new_grad[accept]
        final_cost[rows] = cost
        damping = np.where(accept, damping * np.maximum(1.0 / 3.0, 1.0 - (2.0 * gain - 1.0) ** 3), damping * growth)
        growth = np.where(accept, 2.0, growth * 2.0)
        done |= damping > 1e12  # no step lowers the cost: a minimum within rounding
        damping = np.maximum(damping, 1e-12)
        rows, cost, normal, grad, damping, growth = (a[~done] for a in (rows, cost, normal, grad, damping, growth))
    within = np.isfinite(q).all(axis=1) & np.all((q >= lo) & (q <= hi), axis=1)
    return q, final_cost, within


def fit_outlines(labels: np.ndarray, image: np.ndarray, settings: ParticleSettings,
                 background: np.ndarray | None, progress: ProgressCallback = None) -> np.ndarray:
    """``labels`` (2D) of a faint field of small particles with each object redrawn as the soft ellipse fitted to the
    ``image`` less ``background`` (None: nothing taken off) around it, where the fit's contrast agrees with the field's
    (see above); the other objects, and every object of other fields, stay as they are. ``progress``: called with the
    fraction done (the objects are fitted in chunks of similar window sizes, all of a chunk at once)."""
    contrast, noise = abs(settings.contrast), settings.noise
    if not (OUTLINE_FIT and labels.ndim == 2 and noise > 0 and np.isfinite(contrast)
            and settings.diameter / settings.pixel_size < OUTLINE_FIT_BELOW_DIAMETER
            and contrast < OUTLINE_FIT_BELOW_CONTRAST_TO_NOISE * noise):
        return labels
    area = np.bincount(labels.ravel())
    ids = np.flatnonzero(area[1:]) + 1
    if ids.size < PAIR_FIT_MIN_SINGLES:
        return labels
    elongation = _second_moments(labels, ids, area)[2]
    is_single = elongation < PAIR_MIN_ELONGATION
    if np.count_nonzero(is_single) < PAIR_FIT_MIN_SINGLES:
        return labels
    r0, r_sd, e_sd = _shape_prior(area[ids[is_single]], elongation[is_single])
    signed = (-image if settings.polarity == "dark" else image).astype(float)
    flat = signed if background is None else _ps.take_background(signed, background)
    boxes = ndi.find_objects(labels)
    # the radius within PAIR_FIT_RADIUS_RANGE of the singles' median, the aspect at most 2.2, the contrast 0.2-5x
    lo = np.array([-np.inf, -np.inf, r0 - math.log(PAIR_FIT_RADIUS_RANGE), -1.2, -1.2, 0.2 * contrast, -np.inf])
    hi = np.array([np.inf, np.inf, r0 + math.log(PAIR_FIT_RADIUS_RANGE), 1.2, 1.2, 5.0 * contrast, np.inf])
    fitted = []  # per chunk: the objects' ids, window corners and sizes, fitted parameters, within the bounds, ellipses
    done = 0
    for part in _similar_windows(boxes, ids):
        report(progress, 0.9 * done / ids.size)
        done += part.size
        chunk = ids[part]
        corner, size, obj, usable, values, offset = _fit_windows(labels, chunk, boxes, flat)
        n, height, width = obj.shape
        yy, xx = (a.ravel().astype(float) for a in np.indices((height, width)))
        starts = np.c_[_moment_starts(obj.reshape(n, -1), yy, xx), np.full(n, contrast), offset]
        q, within = _fit_one_ellipse_each(yy, xx, values.reshape(n, -1), usable.reshape(n, -1), starts,
                                          np.array([r0, 0.0, 0.0]), np.array([r_sd, e_sd, e_sd]), lo, hi, noise)
        ellipse = np.zeros(obj.shape, bool)
        ellipse[within] = (_ellipse_distance(q[within, :5], yy, xx) < 1.0).reshape(-1, height, width)
        fitted.append((chunk, corner, size, q, within, ellipse))
    report(progress, 0.9)
    chunk_ids, corner, size, q, within = (np.concatenate(parts) for parts in list(zip(*fitted))[:5])
    ellipse = [mask for part in fitted for mask in part[5]]  # the chunks' windows differ in size
    single = np.isin(chunk_ids, ids[is_single])
    if np.count_nonzero(single & within) < PAIR_FIT_MIN_SINGLES:
        return labels
    # the field's contrast, as the fits of its single objects read it
    c_fit = float(np.median(q[single & within, 5]))
    agree = within.copy()
    agree[within] = np.abs(np.log(q[within, 5] / c_fit)) <= math.log(OUTLINE_FIT_CONTRAST_RANGE)
    out = labels.copy()
    for i in np.flatnonzero(agree)[np.argsort(chunk_ids[agree], kind="stable")]:  # in the order of the ids
        k, (y0, x0), (height, width) = chunk_ids[i], corner[i], size[i]
        win = (slice(y0, y0 + height), slice(x0, x0 + width))
        in_out = out[win] == k
        new = np.where((in_out | (out[win] == 0)) & ellipse[i][:height, :width], k, np.where(in_out, 0, out[win]))
        if np.count_nonzero(new == k) >= 3:
            out[win] = new
    return out


def _sharper_outline(image: np.ndarray, mask: np.ndarray, settings: ParticleSettings, level: float,
                     background: np.ndarray | None) -> np.ndarray | None:
    """The particles inside the 2D ``mask`` cut at the same ``level`` but at the least smoothing the noise
    allows (at least 1 px; half the particle contrast SMOOTH_TO_NOISE_Z smoothed-noise deviations clear),
    or None where that is not clearly less than the mask's own smoothing.

    Smoothing at 1/8 of the diameter fills the necks between touching particles in (the notch between two
    disks takes light from both): the distance map of the smoothed mask then has no saddle to cut at
    (touching 18-53 px pairs: F1 0.80-0.89 where Otsu + watershed at 1 px reached 0.93-0.97). The mask was cut
    from the smoothed image less ``background`` (None: nothing); the background is smooth, so the sharper
    image is the less smoothed one less the same background. Contrast and noise are read off image and mask (not the estimate), so
    that ``settings.options()`` reproduce the labels."""
    sigma = settings.smoothing / settings.pixel_size
    signed = -image if settings.polarity == "dark" else image
    step = max(1, mask.size // 250_000)
    values, inside = signed.ravel()[::step], mask.ravel()[::step]
    contrast = float(np.median(values[inside]) - np.median(values[~inside])) if 0 < inside.sum() < inside.size else 0.0
    if contrast <= 0:
        return None
    noise = _ps.noise_floor(image)
    fine = max(1.0, _ps.SMOOTH_TO_NOISE_Z * noise / (math.sqrt(math.pi) * contrast))
    if fine > 0.8 * sigma:
        return None
    sharper = ndi.gaussian_filter(signed, fine)
    if background is not None:
        sharper = _ps.take_background(sharper, background)
    outline = (sharper > level) & mask
    # holes of noise would make false distance minima: fill the gaps that do not reach the support (a label
    # of the gaps costs half of binary_fill_holes on 2048²)
    gaps, n_gaps = ndi.label(~outline)
    reaches_support = np.bincount(gaps[~mask], minlength=n_gaps + 1) > 0
    return outline | ~reaches_support[gaps]


def _split_by_blobs(image: np.ndarray, mask: np.ndarray, settings: ParticleSettings, min_px: float):
    """:func:`blob_split` of a 2D mask when its particles are small (below BLOB_SPLIT_BELOW_DIAMETER px)
    and stand BLOB_SPLIT_MIN_CONTRAST_TO_NOISE pixel-noise deviations clear or are a field of rods
    (:func:`rod_field`; markers that stand clear of the noise), else None. Decided from the
    image, the mask and the options only, so that ``settings.options()`` reproduce the labels."""
    d_px = 4 * settings.split_distance / settings.pixel_size  # the split distance is a quarter diameter
    if not (0 < d_px < BLOB_SPLIT_BELOW_DIAMETER) or not mask.any() or mask.all():
        return None
    signed = -image if settings.polarity == "dark" else image
    noise = _ps.noise_floor(image)
    rods = rod_field(*ndi.label(mask))
    if not rods:  # a field of rods keeps only the markers that stand clear of the response's noise
        step = max(1, mask.size // 1_000_000)
        values, inside = signed.ravel()[::step], mask.ravel()[::step]
        if np.median(values[inside]) - np.median(values[~inside]) < BLOB_SPLIT_MIN_CONTRAST_TO_NOISE * noise:
            return None
    return blob_split(signed, mask, diameter_px=d_px, noise=noise, min_px=min_px, rods=rods)


def _split_on_distance(mask: np.ndarray, pixel_size: float, split_distance: float, min_px: float, *,
                       rejoin: bool = True, shape_mask: np.ndarray | None = None) -> np.ndarray:
    """:func:`split_touching` on checked arguments; ``rejoin=False`` leaves rods and ovals cut (a click
    only needs its neighbours cut off, and a rejoined pair would take one of them along)."""
    from skimage import segmentation
    from skimage.feature import peak_local_max

    dist = ndi.distance_transform_edt(mask if shape_mask is None else shape_mask)
    # light smoothing of the distance map against pixel-step ridges, less for tiny particles
    dist = ndi.gaussian_filter(dist, sigma=float(np.clip(split_distance / pixel_size / 3, 0.5, 1.0)))
    md = max(1, int(round(split_distance / pixel_size)))
    cc, n_cc = ndi.label(mask)
    # maxima over the whole map (labels= would run one search per object: 3 s for 4,000 objects); a
    # peak suppressed by a neighbouring object's is restored below as a missing component's marker
    peaks = peak_local_max(dist, min_distance=md, exclude_border=False)
    peaks = np.asarray(peaks, dtype=np.intp).reshape(-1, mask.ndim)  # skimage returns (0, 2) for no peaks in 3D
    peaks = peaks[(mask if shape_mask is None else shape_mask)[tuple(peaks.T)]]
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # components without a peak (tiny or flat) still get one marker
    missing = np.setdiff1d(np.unique(cc[mask]), np.unique(cc[tuple(peaks.T)]) if len(peaks) else [])
    if missing.size:
        com = ndi.maximum_position(dist, cc, missing)
        for k, pos in enumerate(com):
            markers[pos] = len(peaks) + 1 + k
    labels = segmentation.watershed(-dist, markers, mask=mask)
    if rejoin and mask.ndim == 2:  # rods and ovals cut at pixel-step maxima of their ridge become one again
        labels = rejoin_ellipses(labels, cc, n_cc, shape_mask)
    return drop_small(labels, min_px)  # pieces below the minimum size created by the split go
