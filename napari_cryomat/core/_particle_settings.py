"""Settings of :func:`~napari_cryomat.core.segment.segment_particles` read off the image itself.

A new user should not have to know the particle size, the polarity or whether the support is even;
the image says so:

- **scale and polarity** from a scale-space blob search: the scale-normalised Laplacian of Gaussian
  (Lindeberg), on an image pyramid so large scales cost little; its significant maxima sit at particle
  centres with ``sigma ~ radius / sqrt(2)``; dark particles give positive maxima, bright ones negative.
  The sign whose blobs stand most significantly clear of the noise is the particles'.
- **background** by normalised convolution over the support only (particles masked out), a Gaussian a
  couple of particle diameters wide, so that a cluster of particles does not pull the background down.
- **threshold** half way between the flattened support and the typical particle (the 50 % point of a
  blurred edge lies on the true edge); ``local`` (flattened, half way) when the support varies by more
  than a sixth of the particles' contrast across the image or the contrast is below twice the pixel
  noise (where Otsu's histogram split drifts), else one global Otsu level.

Lengths in Å in the settings (pixels internally). No Qt, no napari.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core._validate import choice, nonnegative, positive

# ratio of successive scales; three per octave
_SCALES_PER_OCTAVE = 3
_MIN_SIGMA = 1.0  # px: below this the Laplacian is mostly noise
_Z_DETECT = 6.0  # significance of a blob against the image's bulk response at that scale
# a support varying by more than this fraction of the particle contrast needs a local threshold
LOCAL_IF_BACKGROUND_VARIES = 1 / 6
# ... and so does a particle contrast below this many pixel-noise standard deviations
LOCAL_IF_CONTRAST_TO_NOISE_BELOW = 2.0
# the particles' contrast is read over their inner part, not at the blob centres, below this many
# pixel-noise deviations (faint particles at 20 counts/px: F1 0.79-0.80 -> 0.81-0.84)
LEVEL_SAMPLED_BELOW_CONTRAST_TO_NOISE = 4.0
# smoothing is raised (up to a quarter diameter) until half the contrast stands this many smoothed-noise
# deviations clear: with 1/8 diameter, 7 px particles at 60 counts/px left a mask of noise speckle
SMOOTH_TO_NOISE_Z = 3.0
# smoothing of a particle image before the threshold, as a share of the diameter (raised for faint particles)
SMOOTHING_PER_DIAMETER = 1 / 8


@dataclass(frozen=True)
class ParticleSettings:
    """What :func:`segment_particles` assumed (or was told) about an image; lengths in Å, areas in Å².

    ``estimated`` names the fields read off the image (the others were given). ``diameter`` is the
    typical equivalent diameter of the particles; ``contrast`` their mean difference from the support
    in image units (signed: negative for dark particles), ``noise`` the pixel noise, and
    ``background_variation`` the support's range (5-95 %) as a fraction of ``|contrast|``.
    """

    polarity: str
    diameter: float
    smoothing: float
    threshold: str
    local_block: float
    min_size: float
    split_distance: float
    pixel_size: float
    contrast: float = float("nan")
    noise: float = float("nan")
    background_variation: float = float("nan")
    n_blobs: int = 0
    estimated: tuple = ()

    def options(self) -> dict:
        """Keyword arguments of :func:`segment_particles` that reproduce this segmentation."""
        return dict(polarity=self.polarity, smoothing=self.smoothing, threshold=self.threshold,
                    local_block=self.local_block, min_size=self.min_size, split_distance=self.split_distance)

    def with_overrides(self, **overrides) -> ParticleSettings:
        """A copy with some settings given by the user (checked); they leave ``estimated``."""
        unknown = set(overrides) - set(OVERRIDABLE)
        if unknown:
            raise ValueError(f"Unknown setting(s) {sorted(unknown)}; the settings are {list(OVERRIDABLE)}.")
        checked = {k: _check_override(k, v, self.pixel_size) for k, v in overrides.items() if v is not None}
        estimated = tuple(k for k in self.estimated if k not in checked)
        return dataclasses.replace(self, **checked, estimated=estimated)

    def describe(self) -> str:
        """One line for a status bar or a log: what was assumed, estimated values marked with '*'."""
        def mark(name):
            return "*" if name in self.estimated else ""

        area_unit = "Å²"
        text = (f"{self.polarity}{mark('polarity')} particles, Ø {self.diameter:.0f} Å{mark('diameter')}, "
                f"smoothing {self.smoothing:.1f} Å{mark('smoothing')}, {self.threshold}{mark('threshold')} "
                f"threshold, min {self.min_size:.0f} {area_unit}{mark('min_size')}, "
                f"split ≥ {self.split_distance:.0f} Å{mark('split_distance')}")
        if self.n_blobs:
            text += f" ({self.n_blobs} blobs, background varies {100 * self.background_variation:.0f} % of contrast)"
        elif "diameter" in self.estimated:
            text += " (no particle-like blob above the noise: an image is left empty; give Diameter to segment anyway)"
        return text


OVERRIDABLE = ("polarity", "diameter", "smoothing", "threshold", "local_block", "min_size", "split_distance")


def _check_override(name: str, value, pixel_size: float):
    if name == "polarity":
        return choice(value, "polarity", ("dark", "bright"))
    if name == "threshold":
        return choice(value, "threshold", ("otsu", "li", "local"))
    if name in ("diameter", "local_block"):
        return positive(value, name, unit="Å")
    if name == "min_size":
        return nonnegative(value, name, unit="Å² or Å³", high=None)
    return nonnegative(value, name, unit="Å")


# ------------------------------------------------------------------------------------------------
# scale-space blobs
# ------------------------------------------------------------------------------------------------
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


def masked_background(img: np.ndarray, exclude: np.ndarray | None, sigma: float) -> np.ndarray:
    """Normalised convolution: the Gaussian-weighted mean of the pixels not in ``exclude``.

    A background is smooth, so it is computed on a binned copy (a few pixels per sigma) and
    interpolated back: a Gaussian of sigma 100 px on the full image would cost seconds.
    """
    keep = np.ones(img.shape, np.float32) if exclude is None else (~exclude).astype(np.float32)
    if not keep.any():
        return np.full(img.shape, float(np.median(img)), np.float32)
    fallback = float(np.median(img[keep > 0]))
    factor = max(1, int(sigma / 4))
    if factor > 1 and min(img.shape) >= 4 * factor:
        trimmed = tuple(slice(0, (n // factor) * factor) for n in img.shape)
        num, den = _bin(img[trimmed] * keep[trimmed], factor), _bin(keep[trimmed], factor)
    else:
        factor, num, den = 1, img * keep, keep
    num = ndi.gaussian_filter(num, sigma / factor, mode="reflect")
    den = ndi.gaussian_filter(den, sigma / factor, mode="reflect")
    small = np.where(den > 1e-3, num / np.maximum(den, 1e-3), fallback).astype(np.float32)
    if factor == 1:
        return small
    # back to full size, linear interpolation axis by axis (a small matrix product per axis instead of
    # map_coordinates at every pixel: 0.02 s instead of 0.9 s on 2048²)
    for axis, n in enumerate(img.shape):
        small = np.moveaxis(np.tensordot(_linear_weights(n, small.shape[axis], factor), small, axes=(1, axis)),
                            0, axis)
    return np.ascontiguousarray(small, dtype=np.float32)


def _linear_weights(n: int, m: int, factor: int) -> np.ndarray:
    """(n, m) matrix interpolating ``m`` binned samples linearly onto ``n`` pixels (edges held): the
    centre of binned pixel i sits at (i + 0.5) * factor - 0.5."""
    pos = np.clip((np.arange(n, dtype=np.float64) + 0.5) / factor - 0.5, 0, m - 1)
    i0 = np.minimum(np.floor(pos).astype(int), max(m - 2, 0))
    frac = pos - i0
    w = np.zeros((n, m), np.float32)
    w[np.arange(n), i0] += (1 - frac).astype(np.float32)
    w[np.arange(n), np.minimum(i0 + 1, m - 1)] += frac.astype(np.float32)
    return w


def _bin(a: np.ndarray, factor: int) -> np.ndarray:
    shape = []
    for n in a.shape:
        shape += [n // factor, factor]
    return a.reshape(shape).mean(axis=tuple(range(1, 2 * a.ndim, 2)))


def flatten(smooth: np.ndarray, sigma: float, exclude: np.ndarray | None = None, grow: int = 1):
    """``smooth`` minus its background (particles brighter: flip dark images first), estimated over the
    support only: the pixels that stand out above an Otsu level (grown by ``grow`` px) are left out,
    twice, so that clusters of particles do not pull the background towards them."""
    from skimage.filters import threshold_otsu

    background = masked_background(smooth, exclude, sigma)
    for _ in range(2):
        flat = take_background(smooth, background)
        standing = flat > threshold_otsu(flat)
        if grow > 0:
            standing = ndi.binary_dilation(standing, iterations=grow)
        if exclude is not None:
            standing |= exclude
        background = masked_background(smooth, standing, sigma)
    return take_background(smooth, background), background


def take_background(smooth: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``smooth - background`` as a contrast relative to the local support, scaled to the support's median level,
    where the support is one-signed and far from zero (a recorded intensity): a particle takes away (or adds) a
    fraction of the beam, so under an uneven illumination its contrast in counts follows the support, and one
    half-way level for the whole image missed the particles on the dim side of a ramp and merged those on the
    bright side (7 seed triples: every set's mean F1 up to +0.04 but one -0.002). An image centred on zero
    (normalised) is only shifted."""
    magnitude = np.abs(background)
    ref = float(np.median(magnitude.ravel()[::max(1, magnitude.size // 100_000)]))
    if float(background.min()) * float(background.max()) <= 0 or float(magnitude.min()) < RELATIVE_IF_SUPPORT_ABOVE * ref:
        return smooth - background
    return (smooth - background) * (ref / magnitude)


# the contrast is taken relative to the support where the support is everywhere above this share of its median
# (an intensity far from zero; a normalised image crosses zero)
RELATIVE_IF_SUPPORT_ABOVE = 0.5


# ------------------------------------------------------------------------------------------------
# the estimate
# ------------------------------------------------------------------------------------------------
def _blob_mask(shape, blobs: np.ndarray, grow: float) -> np.ndarray:
    """Disks of ``grow`` x the blob radius at the blobs' centres."""
    mask = np.zeros(shape, bool)
    for y, x, s in blobs[:, :3]:
        r = grow * np.sqrt(2) * s
        y0, y1 = int(max(0, y - r)), int(min(shape[0], y + r + 1))
        x0, x1 = int(max(0, x - r)), int(min(shape[1], x + r + 1))
        yy, xx = np.ogrid[y0:y1, x0:x1]
        mask[y0:y1, x0:x1] |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    return mask


def _choose_polarity(dark: np.ndarray, bright: np.ndarray) -> str:
    """The particles' sign: the one whose strong blobs stand most significantly clear of the noise (90th
    percentile of their z, the response over the noise's at that scale: the raw response of a noise speck
    at 1 px beats that of faint large particles, and a faint Ø33 dark image with 10 such bright specks was
    called bright). Counting blobs would not do: the gaps between packed particles make blobs of the other
    sign, but weaker ones. Only a handful of blobs (fewer than STRAY_BLOBS, against five times as many of
    the other sign) are strays (a speck, an edge), whatever their response: two such blobs outscored 189
    particles."""
    if len(dark) < STRAY_BLOBS and 5 * len(dark) < len(bright):
        return "bright"
    if len(bright) < STRAY_BLOBS and 5 * len(bright) < len(dark):
        return "dark"
    score = [float(np.percentile(b[:, 4], 90)) if len(b) else 0.0 for b in (dark, bright)]
    return "dark" if score[0] >= score[1] else "bright"


STRAY_BLOBS = 5


def _typical_radius(blobs: np.ndarray) -> float:
    """Median radius (px) of the strong blobs (weak ones are noise, fragments or gaps)."""
    if len(blobs) == 0:
        return float("nan")
    strong = blobs[blobs[:, 3] >= 0.7 * blobs[:, 3].max()]
    return float(np.sqrt(2) * np.median(strong[:, 2]))


def _particle_level(flat: np.ndarray, blobs: np.ndarray, noise: float) -> float:
    """The particles' typical value in ``flat``: the median over blobs of their centre pixels or, where
    that is below LEVEL_SAMPLED_BELOW_CONTRAST_TO_NOISE pixel-noise deviations, of the mean of 9 samples
    across each blob's inner part (centre and 8 points at 0.4 of its radius): the centre alone is biased
    upwards there (blobs are found on noise peaks), the threshold half way up cuts particles too small."""
    centre = float(np.median(flat[blobs[:, 0].round().astype(int), blobs[:, 1].round().astype(int)]))
    if abs(centre) >= LEVEL_SAMPLED_BELOW_CONTRAST_TO_NOISE * noise:
        return centre
    angles = np.arange(8) * np.pi / 4
    dy = np.concatenate([[0.0], np.sin(angles)])
    dx = np.concatenate([[0.0], np.cos(angles)])
    reach = 0.4 * np.sqrt(2) * blobs[:, 2:3]
    ys = np.clip(np.round(blobs[:, 0:1] + reach * dy).astype(int), 0, flat.shape[0] - 1)
    xs = np.clip(np.round(blobs[:, 1:2] + reach * dx).astype(int), 0, flat.shape[1] - 1)
    return float(np.median(flat[ys, xs].mean(axis=1)))


def estimate_settings(img: np.ndarray, pixel_size: float, given: dict):
    """The settings of ``img`` (2D; a volume is read through its middle slice); ``given`` holds the
    settings the caller fixed (Å, Å²), which are used as they are.

    Returns ``(settings, flattened)``: ``flattened`` is ``(flat, background)``, the smoothed,
    background-free 2D image with particles positive and the background taken off it, reused by the
    segmentation of a 2D image (None for a volume or where the settings given differ from the estimate)."""
    plane = img if img.ndim == 2 else img[img.shape[0] // 2]
    max_sigma = max(_MIN_SIGMA, min(plane.shape) / 4)
    dark, bright = blob_detections(plane, max_sigma)
    polarity = given.get("polarity") or _choose_polarity(dark, bright)
    blobs = dark if polarity == "dark" else bright
    if given.get("diameter"):
        radius_px = given["diameter"] / pixel_size / 2
    elif len(blobs):
        radius_px = _typical_radius(blobs)
    else:  # nothing blob-like: assume particles of a tenth of the image
        radius_px = min(plane.shape) / 20
    d_px = 2 * radius_px
    smoothing_px = given["smoothing"] / pixel_size if given.get("smoothing") is not None else d_px * SMOOTHING_PER_DIAMETER
    bg_sigma = given["local_block"] / pixel_size / 2 if given.get("local_block") else 2.0 * d_px
    sign = -1.0 if polarity == "dark" else 1.0
    smooth = sign * (ndi.gaussian_filter(plane, smoothing_px) if smoothing_px > 0 else plane)
    flat, background = flatten(smooth, bg_sigma, _blob_mask(plane.shape, blobs, 1.3), grow=max(1, int(d_px / 6)))
    noise = _noise_sigma(plane)
    level = _particle_level(flat, blobs, noise) if len(blobs) else float(flat.std())
    if given.get("smoothing") is None:
        # enough smoothing that half the contrast stands SMOOTH_TO_NOISE_Z smoothed-noise deviations clear
        # (white noise under a Gaussian of sigma s px keeps 1 / (2 sqrt(pi) s) of its deviation)
        needed = min(SMOOTH_TO_NOISE_Z * noise / (math.sqrt(math.pi) * max(abs(level), 1e-12)), d_px / 4)
        if needed > 1.05 * smoothing_px:
            smoothing_px = needed
            smooth = sign * ndi.gaussian_filter(plane, smoothing_px)
            flat, background = flatten(smooth, bg_sigma, _blob_mask(plane.shape, blobs, 1.3),
                                       grow=max(1, int(d_px / 6)))
    lo, hi = np.percentile(background, [5, 95])
    variation = float((hi - lo) / max(abs(level), 1e-12))
    # Otsu also fails where the two classes' histograms overlap (contrast below twice the pixel noise):
    # the flattened image's half-way level does not depend on the histogram's shape
    faint = abs(level) < LOCAL_IF_CONTRAST_TO_NOISE_BELOW * noise
    estimated = dict(
        polarity=polarity, diameter=d_px * pixel_size, smoothing=smoothing_px * pixel_size,
        threshold="local" if variation > LOCAL_IF_BACKGROUND_VARIES or faint else "otsu",
        local_block=2 * bg_sigma * pixel_size,
        min_size=0.2 * math.pi * radius_px**2 * pixel_size**2 * (1.0 if img.ndim == 2 else 4 / 3 * radius_px * pixel_size),
        split_distance=0.25 * d_px * pixel_size,
    )
    values = {k: (given[k] if given.get(k) is not None else v) for k, v in estimated.items()}
    settings = ParticleSettings(
        **values, pixel_size=pixel_size, contrast=sign * level, noise=noise,
        background_variation=variation, n_blobs=int(len(blobs)),
        estimated=tuple(k for k in OVERRIDABLE if given.get(k) is None),
    )
    reusable = img.ndim == 2 and values["smoothing"] == estimated["smoothing"] and \
        values["local_block"] == estimated["local_block"] and values["polarity"] == polarity
    return settings, ((flat, background) if reusable else None)


def refine_from_mask(settings: ParticleSettings, mask: np.ndarray) -> ParticleSettings:
    """Granulometry of the first mask: the median equivalent diameter of its objects (those above the
    minimum size) replaces the blob-scale diameter (quantised to scale steps of 26 %), and the
    minimum size and split distance that were estimated follow it."""
    if "diameter" not in settings.estimated:
        return settings
    lab, n = ndi.label(mask)
    if n < 3:
        return settings
    ps = settings.pixel_size
    sizes = np.bincount(lab.ravel())[1:].astype(float)
    big = sizes >= settings.min_size / ps**mask.ndim
    if np.count_nonzero(big) < 3:
        return settings
    if mask.ndim == 2:
        equivalent = 2 * np.sqrt(sizes[big] / np.pi)
    else:
        equivalent = 2 * np.cbrt(3 * sizes[big] / (4 * np.pi))
    # a cluster of touching particles is one object here: its inscribed disk (the largest distance to
    # the background) is one particle's, so the diameter of an object is at most 1.3x the inscribed one
    # largest distance per object by an unbuffered maximum (ndimage.maximum sorts every pixel: 10x slower)
    peak = np.zeros(n + 1)
    np.maximum.at(peak, lab.ravel(), ndi.distance_transform_edt(mask).ravel())
    inscribed = 2 * peak[1:][big]
    d_px = float(np.median(np.minimum(equivalent, 1.3 * inscribed)))
    d_px = float(np.clip(d_px, 0.5 * settings.diameter / ps, 2.0 * settings.diameter / ps))
    changes = dict(diameter=d_px * ps)
    if "min_size" in settings.estimated:
        r = d_px / 2
        changes["min_size"] = 0.2 * math.pi * r**2 * ps**2 * (1.0 if mask.ndim == 2 else 4 / 3 * r * ps)
    if "split_distance" in settings.estimated:
        changes["split_distance"] = 0.25 * d_px * ps
    return dataclasses.replace(settings, **changes)
