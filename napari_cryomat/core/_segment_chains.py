"""Chains of touching small particles split at their own scale (issue #14, session 11).

In a field of touching pairs and chains of particles a few pixels across, the particle scale read off the image
(blob search, granulometry) is that of the chains, ~1.4x the particles' (Ø5.1 read 7.1, Ø8.3 read 10.4), and the
blob split's markers at that scale see one maximum per pair: about half of the particles came out merged two or
three in one object (session 11: F1 0.58-0.84 on seen touching fields, every error a merge). A chain's width (the
minor axis of the ellipse with its second moments) is its members' diameter, whatever their number, so the image
says both that it is a field of chains and at which scale to look for their members.

Private: called with checked arguments, pixels. No Qt, no napari.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core._segment_common import ROD_MARKER_FIELD_ASPECT, drop_small, ellipse_fill

# a mask component is long (two or more particles, or an oval) where its area is at least this many times the
# disk of its own width: one disk reads 1, a touching pair ~2, a chain of three ~3, an ellipse its aspect
CHAIN_MIN_AREA_PER_WIDTH_DISK = 1.5
# ... and the field is a field of chains where at least this share of its components is long: touching fields
# read 0.71-0.83, fields of ellipses (aspect 1.3-2.2) 0.23-0.49, disks and blobs 0-0.12, the varied images
# (touching pairs and triples among single particles) 0.26-0.27 (session 11's development images)
CHAIN_FIELD_SHARE = 0.6
# ... or where at least this share of its components is long AND fills less than CHAIN_FINE_BELOW_FILL of its ellipse
# (two or three members, not one oval). Low-dose touching fields (Ø5-7, 30-50 counts/px) lose members to noise specks
# and single particles, and read long shares of 0.46-0.59 (session 16, dev seeds 30001-30200, 33001-34000): the split
# then stayed at the chains' scale and half their particles came out merged (F1 0.34-0.52). Their long-and-not-oval
# shares read 0.41-0.89, those of ellipse fields (aspect 1.3-2.2, any dose, Ø5-20) at most 0.38, disks and blobs 0.23.
# Rule G (session 16), never-run low-dose fields 29001-29300: touching t29 0.6554 -> 0.6643 (5 changed, 4 up, one
# -0.109), r29/l29 identical; benchmark A808 0.9185 -> 0.9247 (two touching fields +0.06/+0.09), the other 8 identical
CHAIN_FIELD_NOT_OVAL_SHARE = 0.45
# the members are looked for below this width (px; the ellipse rejoin's ONE_ELLIPSE_BELOW_WIDTH). Touching fields of
# Ø15-19 read member widths of 16.5-20 px and were merged as the smaller ones (session 11, rule R10: 16 -> 24 raised
# never-seen touching fields of Ø14-30 0.885 -> 0.897, ellipse fields of Ø14-30 unchanged)
CHAIN_BELOW_WIDTH = 24.0
# markers: maxima of the blob response at 0.8 of the members' scale standing this many of its noise deviations
# above the saddle to any higher one (h-maxima), and above CHAIN_MARKER_MIN_Z deviations themselves. Seen touching
# fields: 3 split 2x more merged pairs than 4 (b301 #11 0.686 -> 0.852 at 3, 0.743 at 4)
CHAIN_MARKER_DYNAMIC = 3.0
# ... and in components filling less than CHAIN_FINE_BELOW_FILL of their ellipse (two or three members, not one oval),
# this many: the neck between two touching members of Ø5-10 is shallower still (session 12, seen t12/t13 fields:
# mean 0.818 at 3, 0.853 at 1 everywhere). At 1 everywhere, single ovals of ellipse fields at low dose were cut at
# their ends (l15009 0.989 -> 0.904): they filled 0.964-0.980, and no single particle among the components that 1
# split more than 3 filled less than 0.96 (698 components holding 2-3 particles below 0.98)
CHAIN_FINE_MARKER_DYNAMIC = 1.0
CHAIN_FINE_BELOW_FILL = 0.96
# ... and, where the members are narrower than CHAIN_NARROW_BELOW_WIDTH px, this many, at the members' own scale: a
# Ø5-7 pair's neck at low dose rises less than 1 deviation above its saddle (LoG markers of h 1 found 60 % of the true
# centres of a Ø5.3 field at 33 counts/px, plain maxima 72 %). Session 12 had looked there at 0.85 of the scale with
# dynamic 1. Session 16, rule M (never-run low-dose touching fields 31001-31300: t31 0.6345 -> 0.6432, 30 of 34
# changed up, worst -0.004; round/ellipse identical; benchmark A2026 +0.0006, A31337 +0.0005, A808 -0.0002, rest
# identical). Dev (seen): Ø5-7 touching at 30-50 counts/px 0.556 -> 0.572, touching Ø5-10 of any dose 0.795 -> 0.802;
# at every width it lost on Ø10-20 touching fields (0.866 -> 0.863), hence the width bound
CHAIN_NARROW_MARKER_DYNAMIC = 0.25
CHAIN_NARROW_BELOW_WIDTH = 8.0
# the components that are not long but hold at least this many disks of the members' width without filling their
# ellipse as one oval (compact pairs and triangles, under 1.5 disks of their own width) are re-split too. Half the
# merged objects of Ø5-7 touching fields lay in such components (33633: 117 merged objects holding 244 of 670
# particles). Session 17, rule K (members under 8 px only): dev (seen) low-dose touching fields 30001-30400 +
# 33001-34000 0.6983 -> 0.7057 (1.3 disks 0.7050, 0.7: 0.7058); never-run t32 0.7073 -> 0.7166, r32/l32 identical,
# A2026 +0.003, A31337 +0.001, A808 +0.002, the rest identical. Rule L (every width): dev all-dose touching Ø10-20
# 30201-30400 0.8719 -> 0.9160 (8 px bound -> none), ellipse 0.9824 -> 0.9822, round identical; never-run fields
# 34001-34300 (Ø6.5-20, any dose): touching 0.8573 -> 0.8903 (189 up, 7 down, worst -0.010), ellipse 0.9639 (2
# changed, +0.010/-0.005) and round 0.9796 unchanged; A31337 +0.0007, B909 +0.0017, the other 7 sets identical
CHAIN_CLUMP_MIN_DISKS = 1.0
CHAIN_MARKER_MIN_Z = 3.0
# in a field of chains narrower than CHAIN_COUNT_BELOW_WIDTH px, an object of at least this many disks of the
# members' width that does not fill its ellipse as one oval (below CHAIN_FINE_BELOW_FILL) still holds round(area /
# disk) members, whatever maxima the responses show: it is cut into that many parts (by nearest centre, below).
# A Ø5-7 pair's response has one maximum even at 0.85 of the scale (session 13, rule C1: never-seen touching fields
# t21001-21024 0.8258 -> 0.8279, 5 fired and up; benchmark A2026 0.9487 -> 0.9508, A31337 0.9540 -> 0.9546, no image
# down; 1.5 disks on seen fields: as good on average, worst image -0.017 against -0.009)
CHAIN_COUNT_MIN_DISKS = 1.7
# ... in fields of chains narrower than this (px). Rule C2 (session 13): 8 -> 12 raised never-seen touching fields
# t22001-22024 0.8210 -> 0.8242 (7 fired, Ø8-11, all up to +0.027), nothing else changed; 16 on seen fields: +0.0015
# more, one Ø15 field -0.002
CHAIN_COUNT_BELOW_WIDTH = 12.0
# objects of at least this many members are cut by nearest centre (k-means of their pixels, started from the centres
# of the slabs across the major axis) instead of by those slabs: a bent chain of three has no straight axis, and a
# pair of unequal members is cut nearer its neck. Session 14, rule C3: never-seen touching fields t25001-25024
# 0.8081 -> 0.8178 (17 fired, up to +0.046, worst -0.004), Ø14-30 and the benchmark sets unchanged but A2026
# 0.9508 -> 0.9514, A31337 0.9546 -> 0.9548; from 3 members only on seen fields: 0.8187 -> 0.8253 (2: 0.8275)
CHAIN_COUNT_CLUSTER_FROM = 2
CHAIN_COUNT_CLUSTER_STEPS = 20
# a re-split component that fills at least this share of the ellipse with its second moments is one oval: ovals of
# fields of ellipses (Ø16-19, whose field shares read 0.6+ too) filled 0.986-0.997, components holding 2-3 touching
# particles 0.87-0.97 (90 % below 0.973; blur fills their necks, so the rejoin's 0.95 undid half the splits)
CHAIN_ONE_ELLIPSE_FILL = 0.98


def chain_field_share(components: np.ndarray, n: int, with_fill: bool = False) -> tuple:
    """Share of the 2D ``components`` 1..n that are long (area >= CHAIN_MIN_AREA_PER_WIDTH_DISK disks of their
    width), with the per-component long flags, widths and aspect ratios (index 0: background, False / 0), and with
    ``with_fill`` the share of its ellipse each fills."""
    fill, width, aspect = ellipse_fill(components, n, with_aspect=True)
    area = np.bincount(components.ravel(), minlength=n + 1).astype(np.float64)
    long = area >= CHAIN_MIN_AREA_PER_WIDTH_DISK * math.pi * np.maximum(width, 1e-6) ** 2 / 4
    long[0] = False
    share = float(long[1:].mean()) if n else 0.0
    return (share, long, width, aspect, fill) if with_fill else (share, long, width, aspect)


def h_maxima_of_groups(values: np.ndarray, inside: np.ndarray, h: float) -> np.ndarray:
    """``morphology.h_maxima(values, h) & inside`` for a 2D ``values`` that holds its minimum everywhere outside
    ``inside``, computed on the 8-connected groups of ``inside`` only: their boxes (each with a 1 px rim of the
    minimum) packed side by side on one smaller canvas. Every path between two groups runs through the minimum
    in both layouts, so the maxima are the same; the floor around the chains is no longer sorted and swept
    (2048² touching fields: 2.5 -> ~0.8 s of the chain step's 3.7 s; session 12)."""
    from skimage import morphology

    groups, n = ndi.label(inside, structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros(values.shape, bool)
    floor = values[inside].min()
    boxes = ndi.find_objects(groups)
    heights = np.array([b[0].stop - b[0].start + 2 for b in boxes])
    widths = np.array([b[1].stop - b[1].start + 2 for b in boxes])
    side = max(int(widths.max()), int(math.sqrt(float((heights * widths).sum()))) + 1)
    corners, y, x, shelf = [], 0, 0, 0
    for k in np.argsort(-heights, kind="stable"):  # shelves of boxes, tallest first
        if x + widths[k] > side:
            y, x, shelf = y + shelf, 0, 0
        corners.append((k, y, x))
        x, shelf = x + widths[k], max(shelf, heights[k])
    canvas = np.full((y + shelf, side), floor, values.dtype)
    owns = [None] * n
    for k, cy, cx in corners:
        box = boxes[k]
        owns[k] = groups[box] == k + 1
        canvas[cy + 1:cy + heights[k] - 1, cx + 1:cx + widths[k] - 1] = np.where(owns[k], values[box], floor)
    packed = morphology.h_maxima(canvas, h).astype(bool)
    out = np.zeros(values.shape, bool)
    for k, cy, cx in corners:
        out[boxes[k]] |= packed[cy + 1:cy + heights[k] - 1, cx + 1:cx + widths[k] - 1] & owns[k]
    return out


def split_chains(image: np.ndarray, labels: np.ndarray, *, polarity: str, min_px: float) -> np.ndarray:
    """``labels`` (the split of the 2D ``image``'s mask; ``polarity`` "dark" or "bright") with the long components of a field
    of chains re-split at their members' scale, where that finds more members than the split did.

    A field of chains: at least 5 components, not a field of rods (:func:`rod_field`'s test, whose own markers keep
    a rod whole), and CHAIN_FIELD_SHARE of them long, or CHAIN_FIELD_NOT_OVAL_SHARE of them long without filling their
    ellipse as one oval (low-dose fields, whose specks and single members lower the long share). The members' scale
    is the median width of the long components (below CHAIN_BELOW_WIDTH px); the markers are the blob response's h-maxima there (CHAIN_MARKER_DYNAMIC noise
    deviations), so a neck between two members is a marker pair and a noise bump on one member is not. Members are
    looked for also in the compact clumps that are not one oval (CHAIN_CLUMP_MIN_DISKS).
    In fields of chains narrower than CHAIN_COUNT_BELOW_WIDTH px, objects that still hold several members by
    their area are then cut (:func:`cut_by_count`).
    Decided from the image and the labels only, so that ``settings.options()`` reproduce the labels."""
    if not math.isfinite(CHAIN_FIELD_SHARE):
        return labels
    components, n = ndi.label(labels > 0)
    if n < 5:
        return labels
    share, long, width, aspect, fill = chain_field_share(components, n, with_fill=True)
    not_oval = float((long[1:] & (fill[1:] < CHAIN_FINE_BELOW_FILL)).mean())
    # a field of rods (rod_field, from the same moments) keeps its own markers
    if (share < CHAIN_FIELD_SHARE and not not_oval >= CHAIN_FIELD_NOT_OVAL_SHARE) \
            or np.median(aspect[1:]) >= ROD_MARKER_FIELD_ASPECT:
        return labels
    member = float(np.median(width[long]))
    if not member < CHAIN_BELOW_WIDTH:
        return labels
    # compact clumps (pairs, triangles) that are not one oval are looked into too
    area = np.bincount(components.ravel(), minlength=n + 1)
    clump = (area >= CHAIN_CLUMP_MIN_DISKS * math.pi * member**2 / 4) & (fill < CHAIN_FINE_BELOW_FILL)
    clump[0] = False
    out = _resplit_at_members_scale(image, labels, components, n, long | clump, fill, member, polarity=polarity,
                                    min_px=min_px)
    if member < CHAIN_COUNT_BELOW_WIDTH:
        out = cut_by_count(out, member, min_px)
    return out


def _resplit_at_members_scale(image, labels, components, n, long, fill, member: float, *, polarity: str, min_px: float):
    """``labels`` with the long ``components`` re-split at the scale of the members (``member`` px wide), where that
    finds more members than the split did (see :func:`split_chains`)."""
    from skimage import segmentation

    from napari_cryomat.core._particle_blobs import _log_noise_gain, noise_floor

    sigma = max(0.8, 0.8 * member / (2 * math.sqrt(2)))
    signed = -image if polarity == "dark" else image
    response = -(sigma**2) * ndi.gaussian_laplace(signed.astype(np.float32, copy=False), sigma)
    response_noise = noise_floor(image) * _log_noise_gain(sigma)
    inside = long[components]
    # the rest floored to the long components' lowest response: no saddle runs through it
    floored = np.where(inside, response, response[inside].min()).astype(np.float64)
    # more markers where a component is not one oval; each set of components on its own (the floor separates them)
    fine = (fill < CHAIN_FINE_BELOW_FILL)[components] & inside if CHAIN_FINE_MARKER_DYNAMIC < CHAIN_MARKER_DYNAMIC \
        else np.zeros(inside.shape, bool)
    peaks = np.zeros(inside.shape, bool)
    fine_dynamic = CHAIN_NARROW_MARKER_DYNAMIC if member < CHAIN_NARROW_BELOW_WIDTH else CHAIN_FINE_MARKER_DYNAMIC
    for part, dynamic in ((inside & ~fine, CHAIN_MARKER_DYNAMIC), (fine, fine_dynamic)):
        if part.any():
            peaks |= h_maxima_of_groups(np.where(part, floored, floored.min()), part, dynamic * response_noise)
    peaks &= response > CHAIN_MARKER_MIN_Z * response_noise
    markers, n_markers = ndi.label(peaks, structure=np.ones((3, 3)))
    if n_markers == 0:
        return labels
    # members found per component against the objects the split already made there
    found = np.bincount(np.unique(components[peaks].astype(np.int64) * (n_markers + 1) + markers[peaks])
                        // (n_markers + 1), minlength=n + 1)
    top = int(labels.max()) + 1
    on = labels > 0
    made = np.bincount(np.unique(components[on].astype(np.int64) * top + labels[on]) // top, minlength=n + 1)
    redo = long & (found > made)
    if not redo.any():
        return labels
    region = redo[components]
    resplit = segmentation.watershed(-response, np.where(region, markers, 0), mask=region)
    # an oval's two ends are real maxima at its width's scale: a component that fills its ellipse is one particle
    fill, _ = ellipse_fill(np.where(region, components, 0), n)
    whole = (redo & (fill >= CHAIN_ONE_ELLIPSE_FILL))[components]
    resplit[whole] = 1 + int(resplit.max()) + components[whole]
    out = labels.copy()
    out[region] = resplit[region] + int(labels.max())  # new ids above the split's; relabelled by drop_small
    return drop_small(out, min_px)


def _nearest_centre_parts(points: np.ndarray, parts: list) -> list:
    """``parts`` (index arrays into ``points``) re-drawn as the k-means clusters of the points, started from the
    parts' centres: each point to its nearest centre, the centres moved to their points' means until nothing moves
    (at most CHAIN_COUNT_CLUSTER_STEPS times)."""
    centres = np.array([points[p].mean(axis=0) for p in parts])
    assign = None
    for _ in range(CHAIN_COUNT_CLUSTER_STEPS):
        nearest = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        if assign is not None and np.array_equal(nearest, assign):
            break
        assign = nearest
        centres = np.array([points[assign == j].mean(axis=0) if np.any(assign == j) else centres[j]
                            for j in range(len(parts))])
    return [np.flatnonzero(assign == j) for j in range(len(parts)) if np.any(assign == j)]


def cut_by_count(labels: np.ndarray, member: float, min_px: float) -> np.ndarray:
    """``labels`` with each object of at least CHAIN_COUNT_MIN_DISKS disks of ``member`` px across that fills less than
    CHAIN_FINE_BELOW_FILL of its ellipse cut into k = round(area / disk) parts: slabs of equal area along its major
    axis (the second moments' long axis), re-drawn by nearest centre from CHAIN_COUNT_CLUSTER_FROM members on; the
    others as they were."""
    n = int(labels.max())
    if n == 0 or not math.isfinite(CHAIN_COUNT_MIN_DISKS):
        return labels
    fill, _ = ellipse_fill(labels, n)
    area = np.bincount(labels.ravel(), minlength=n + 1).astype(np.float64)
    disk = math.pi * member**2 / 4
    count = np.rint(area / disk).astype(int)
    cut = (area >= CHAIN_COUNT_MIN_DISKS * disk) & (fill < CHAIN_FINE_BELOW_FILL) & (count >= 2)
    cut[0] = False
    if not cut.any():
        return labels
    ys, xs = np.nonzero(cut[labels])
    ids = labels[ys, xs]
    out = labels.copy()
    top = n
    for obj in np.unique(ids):
        own = ids == obj
        y, x = ys[own].astype(np.float64), xs[own].astype(np.float64)
        y0, x0 = y - y.mean(), x - x.mean()
        major = np.linalg.eigh(np.cov(np.vstack([y0, x0])))[1][:, 1]
        order = np.argsort(y0 * major[0] + x0 * major[1], kind="stable")
        parts = np.array_split(order, count[obj])
        if count[obj] >= CHAIN_COUNT_CLUSTER_FROM:
            parts = _nearest_centre_parts(np.column_stack([y0, x0]), parts)
        for part in parts[1:]:
            top += 1
            out[ys[own][part], xs[own][part]] = top
    return drop_small(out, min_px)
