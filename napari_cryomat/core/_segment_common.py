"""Helpers shared by :mod:`napari_cryomat.core.segment` and its private engines: image checks and tiles."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core._validate import check_memory, integer


def _as_float(image, name: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"The {name} must hold real numbers (take the modulus or phase first); got dtype {arr.dtype}.")
    if arr.ndim not in (2, 3):
        raise ValueError(f"Expected an {name} (Y, X) or a volume (Z, Y, X); got {arr.ndim} dimensions.")
    if min(arr.shape) < 2:
        raise ValueError(f"The {name} must be at least 2 px along each axis; got shape {arr.shape}.")
    check_memory(arr.size * 4 * 8, name, f"segmenting {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError("The image contains NaN or inf pixels; replace them (e.g. with the median) first.")
    return arr


def iter_tiles(shape: Sequence[int], tile: int, margin: int) -> Iterator[tuple[tuple, tuple, tuple]]:
    """Cover ``shape`` with tiles of ``tile`` pixels per axis, read with ``margin`` extra pixels.

    Yields ``(core, padded, inner)``: slices of the output core in the full array, of the padded
    read in the full array, and of the core inside the padded read. The arguments are checked at
    once (not at the first tile); at most a million tiles.
    """
    try:
        dims = [integer(n, "shape", low=1) for n in shape]
    except TypeError:
        raise ValueError(f"shape must be a sequence of positive integers; got {shape!r}.") from None
    if not dims:
        raise ValueError("shape must have at least one axis.")
    tile = integer(tile, "tile", low=1)
    margin = integer(margin, "margin", low=0)
    n_tiles = math.prod(-(-n // tile) for n in dims)
    if n_tiles > 1_000_000:
        raise ValueError(
            f"tile = {tile} px cuts shape {tuple(dims)} into {n_tiles:,} tiles (at most 1,000,000): use larger tiles."
        )
    return _iter_tiles(dims, tile, margin)


def _iter_tiles(shape, tile: int, margin: int):
    starts = [range(0, n, tile) for n in shape]
    for origin in itertools.product(*starts):
        core, padded, inner = [], [], []
        for o, n in zip(origin, shape):
            e = min(o + tile, n)
            po, pe = max(0, o - margin), min(n, e + margin)
            core.append(slice(o, e))
            padded.append(slice(po, pe))
            inner.append(slice(o - po, o - po + (e - o)))
        yield tuple(core), tuple(padded), tuple(inner)


# a split object whose pixels fill at least this share of the ellipse with the same second moments is one
# ellipse (a rod, an oval), not touching particles: two touching disks fill 0.90-0.94 of theirs (their
# neck leaves the ellipse's flanks empty), a pixelated ellipse 0.97-1. Only for objects narrower than
# ONE_ELLIPSE_BELOW_WIDTH px: wider ones have distance maps smooth enough not to be cut by pixel steps, and
# heavily overlapping large ovals can fill 0.96-0.98 of their ellipse
ONE_ELLIPSE_FILL = 0.95
ONE_ELLIPSE_BELOW_WIDTH = 24.0
# a thin rod's mask fills less of its ellipse (pixel steps and noise along a 3-5 px width: the cut masks of rods of
# aspect 3-6 filled 0.80-0.91, the truth's own 0.88-0.96), so a cut object at least ONE_ROD_ASPECT long per width
# is one rod from ONE_ROD_FILL on. Touching pairs and bent chains are shorter or fill less; 2.8 also rejoined
# straight triples of the "varied" images (20 images lost 0.02-0.11), 3.4 two of them (-0.02); rod images at F1
# 0.57-0.79 went to 0.73-0.96
ONE_ROD_ASPECT = 3.4
ONE_ROD_FILL = 0.87


def ellipse_fill(components: np.ndarray, n: int, with_aspect: bool = False) -> tuple:
    """Per 2D component 1..n: its area over the area of the ellipse with its second moments, and that
    ellipse's minor axis in px (index 0: 0, 0); ``with_aspect``: also its aspect ratio (major over minor axis).

    A uniform ellipse of semi-axes a, b has variances a²/4 and b²/4 along them, so its area pi a b is
    4 pi sqrt(det(covariance)); pixels add 1/12 px² of variance per axis."""
    ys, xs = np.nonzero(components)
    ids = components[ys, xs]
    count = np.bincount(ids, minlength=n + 1).astype(np.float64)
    c = np.maximum(count, 1.0)
    dy = ys - (np.bincount(ids, ys, n + 1) / c)[ids]
    dx = xs - (np.bincount(ids, xs, n + 1) / c)[ids]
    vyy = np.bincount(ids, dy * dy, n + 1) / c + 1 / 12
    vxx = np.bincount(ids, dx * dx, n + 1) / c + 1 / 12
    vxy = np.bincount(ids, dy * dx, n + 1) / c
    det = np.maximum(vyy * vxx - vxy**2, 1e-12)
    fill = count / (4 * np.pi * np.sqrt(det))
    spread = np.sqrt(0.25 * (vyy - vxx) ** 2 + vxy**2)
    smaller_variance, larger_variance = 0.5 * (vyy + vxx) - spread, 0.5 * (vyy + vxx) + spread
    width = 4 * np.sqrt(np.maximum(smaller_variance, 0.0))
    fill[0] = width[0] = 0.0
    if with_aspect:
        return fill, width, np.sqrt(larger_variance / np.maximum(smaller_variance, 1e-12))
    return fill, width


# in a field of rods (the median filled component at least ROD_FIELD_ASPECT long per width) a cut object is one rod
# from ROD_FIELD_MIN_ASPECT on: the mask of a rod 4 px wide is widened by blur and smoothing (cut rods of aspect 3-6
# read 2.5-4.1 in their masks, median 3.1), while touching pairs and triples, rare in such a field, read 2-3.
# Session 9: 11 seen rod images +0.09..+0.34; never-seen extra 1213..8990 0.914 -> 0.925 (9 rod images up, none down),
# A1214/B1215/A2026/B7177 unchanged
ROD_FIELD_ASPECT = 2.7
ROD_FIELD_MIN_ASPECT = 2.5


def _rod_aspect(fill: np.ndarray, aspect: np.ndarray) -> float:
    """The aspect from which a filled cut object is one rod: ONE_ROD_ASPECT, or ROD_FIELD_MIN_ASPECT in a field of rods."""
    filled = aspect[1:][fill[1:] >= ONE_ROD_FILL]
    if filled.size >= 5 and np.median(filled) >= ROD_FIELD_ASPECT:
        return ROD_FIELD_MIN_ASPECT
    return ONE_ROD_ASPECT


def rejoin_ellipses(labels: np.ndarray, components: np.ndarray, n: int, outline: np.ndarray | None = None) -> np.ndarray:
    """``labels`` (a watershed of the 2D ``components``) with every component that was cut into pieces
    but is one filled ellipse given back as one object: the distance map of a rod or an oval has a
    ridge whose pixel steps make spurious maxima, and no neck tells them apart from touching particles
    at the scale of a few pixels, but touching particles leave the flanks of their ellipse empty."""
    inside = labels > 0
    if n == 0 or not inside.any():
        return labels
    top = int(labels.max()) + 1
    pairs = np.unique(components[inside].astype(np.int64) * top + labels[inside])
    pieces = np.bincount(pairs // top, minlength=n + 1)
    fill, width, aspect = ellipse_fill(components if outline is None else components * outline, n, with_aspect=True)
    rod = (fill >= ONE_ROD_FILL) & (aspect >= _rod_aspect(fill, aspect))
    whole = (pieces > 1) & ((fill >= ONE_ELLIPSE_FILL) | rod) & (width < ONE_ELLIPSE_BELOW_WIDTH)
    if not whole.any():
        return labels
    out = labels.copy()
    sel = whole[components]
    out[sel] = components[sel] + int(labels.max())  # new ids above the watershed's; relabelled after
    return out


# the blob split needs particles standing clear of the pixel noise (the constant of the local threshold), except in a
# field of rods, where its markers are the response's maxima that stand ROD_MARKER_DYNAMIC noise deviations above
# the saddle to any higher one (noise bumps along a rod's ridge do not; the gap between two touching particles does)
BLOB_SPLIT_MIN_CONTRAST_TO_NOISE = 2.0
# ... and is used below this particle diameter (px), where the distance map's pixel steps are as deep as
# the necks; larger particles are split on the distance map
BLOB_SPLIT_BELOW_DIAMETER = 16.0


# a field of rods, for the markers: the median component of the mask at least this long per width. Thin rods
# (aspect 3-6, ~4 px wide) read 2.5-4.2 in their masks, fields of disks, ellipses (aspect 1.3-2.2), blobs and
# touching pairs/chains 1.1-2.0 (session 10's development images)
ROD_MARKER_FIELD_ASPECT = 2.3
# ... where the markers are maxima of the blob response standing this many of its noise deviations above the saddle
# to any higher maximum (h-maxima). Thin bright rods at 50-250 counts/px were cut at 2-4 noise maxima along their
# ridge (session 10: 8 seen rod images 0.68 -> 0.86 at 3, 0.87 at 4, 0.87 at 5)
ROD_MARKER_DYNAMIC = 4.0


def rod_field(components: np.ndarray, n: int) -> bool:
    """Whether the 2D mask's ``components`` 1..n (at least 5) are a field of rods: their median aspect ratio (of the
    ellipse with their second moments) is at least ROD_MARKER_FIELD_ASPECT."""
    if n < 5:
        return False
    _fill, _width, aspect = ellipse_fill(components, n, with_aspect=True)
    return bool(np.median(aspect[1:]) >= ROD_MARKER_FIELD_ASPECT)


def blob_split(image: np.ndarray, mask: np.ndarray, *, diameter_px: float, noise: float, min_px: float,
               rods: bool = False) -> np.ndarray:
    """Split the 2D ``mask`` into particles with markers from the image itself (particles positive).

    The markers are the significant maxima of the scale-normalised Laplacian of Gaussian at 0.8 of the
    particles' scale, one per 0.6 diameters, and the watershed runs on that response: the blob filter sees
    a particle's whole outline, where the distance map of a thresholded mask sees only its neck, which
    blur fills in for particles of a few pixels (5-7 px touching particles: F1 0.58-0.85 with distance
    maxima). ``rods`` (a field of rods): the markers are instead the maxima that stand ROD_MARKER_DYNAMIC noise
    deviations of the response above their saddle to any higher one, at any distance, so the flat ridge of a
    rod keeps one marker where its noise bumps gave one per 0.6 widths. Components without a marker stay
    whole; rods and ovals cut in pieces are rejoined.
    """
    from skimage import morphology, segmentation

    from napari_cryomat.core._particle_settings import _log_noise_gain

    sigma = max(0.8, 0.8 * diameter_px / (2 * math.sqrt(2)))
    response = -(sigma**2) * ndi.gaussian_laplace(image, sigma)
    response_noise = noise * _log_noise_gain(sigma)
    if rods:  # the background floored to the mask's lowest response: no saddle runs through it
        floored = np.where(mask, response, response[mask].min() if mask.any() else 0.0).astype(np.float64)
        peaks = morphology.h_maxima(floored, ROD_MARKER_DYNAMIC * response_noise).astype(bool) & mask
    else:
        half = max(1, int(round(0.3 * diameter_px)))
        peaks = (response >= ndi.maximum_filter(response, size=2 * half + 1)) & mask
    peaks &= response > 3.0 * response_noise
    markers, n_markers = ndi.label(peaks, structure=np.ones((3, 3)))
    components, n = ndi.label(mask)
    missing = np.setdiff1d(np.arange(1, n + 1), components[peaks])
    if missing.size:  # a component without a significant maximum is one object, seeded at its strongest pixel
        for k, pos in enumerate(ndi.maximum_position(response, components, missing), start=1):
            markers[pos] = n_markers + k
    labels = segmentation.watershed(-response, markers, mask=mask)
    labels = rejoin_ellipses(labels, components, n)
    return drop_small(labels, min_px)


def drop_small(labels: np.ndarray, min_px: int) -> np.ndarray:
    """``labels`` relabelled 1.. consecutively, without the objects of fewer than ``min_px`` pixels (pieces a
    split leaves behind)."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= max(min_px, 1)
    keep[0] = False
    lut = np.zeros(sizes.size, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    return lut[labels]
