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
  noise (where Otsu's histogram split drifts), else one global Otsu level; ``detect`` for faint small
  particles (:mod:`._particle_detect`: a scanning detector's significant detections grown half way).

The blob search lives in :mod:`._particle_blobs`, the background in :mod:`._particle_background`.
Lengths in Å in the settings (pixels internally). No Qt, no napari.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core import _particle_detect as _pd
from napari_cryomat.core._particle_background import (  # noqa: F401 - the settings' helpers, re-exported
    RELATIVE_IF_SUPPORT_ABOVE,
    flatten,
    masked_background,
    take_background,
)
from napari_cryomat.core._particle_blobs import (  # noqa: F401 - the settings' helpers, re-exported
    _MIN_SIGMA,
    _SCALES_PER_OCTAVE,
    _Z_DETECT,
    _log_noise_gain,
    _noise_sigma,
    blob_detections,
    noise_floor,
)
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core._validate import choice, nonnegative, positive

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
    ``background_variation`` the support's range (5-95 %) as a fraction of ``|contrast|``; ``noise_colour`` says how
    the noise was not white ("" where it was white), see :func:`._particle_blobs.noise_colour`.
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
    noise_colour: str = ""

    def options(self) -> dict:
        """Keyword arguments of :func:`segment_particles` that reproduce this segmentation (the same labels): the
        settings used, and the diameter where it was given (an estimated one is read off the image again: the
        support under the particles is read at the blob search's scale, not at the diameter the granulometry or
        the detector settled on)."""
        options = dict(polarity=self.polarity, smoothing=self.smoothing, threshold=self.threshold,
                       local_block=self.local_block, min_size=self.min_size, split_distance=self.split_distance)
        if "diameter" not in self.estimated:
            options["diameter"] = self.diameter
        return options

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
        text = (f"{self.polarity}{mark('polarity')} particles, Ø {_length(self.diameter)} Å{mark('diameter')}, "
                f"smoothing {self.smoothing:.1f} Å{mark('smoothing')}, {self.threshold}{mark('threshold')} "
                f"threshold, min {self.min_size:.0f} {area_unit}{mark('min_size')}, "
                f"split ≥ {self.split_distance:.0f} Å{mark('split_distance')}")
        if self.n_blobs:
            found = "significant detections" if self.threshold == "detect" else "blobs"  # n_blobs counts either
            # the background's range as a share of the particles' contrast: a plain ratio past 1 ("2.5x", not "247 %")
            variation = self.background_variation
            spread = f"{variation:.1f}x" if variation >= 1 else f"{100 * variation:.0f} % of"
            text += f" (read off {self.n_blobs} {found}; background range {spread} the particles' contrast)"
        elif "diameter" in self.estimated:
            text += " (no particle-like blob above the noise: an image is left empty; give Diameter to segment anyway)"
        if self.noise_colour and "diameter" not in self.estimated:
            # with the size read off the image the caution says this; with a given size there is no caution, yet the
            # image was still whitened before the particles were looked for, and the user should know
            text += f"; noise not white ({self.noise_colour}): looked for in the image whitened"
        return text

    def caution(self) -> str:
        """A sentence for the user where the particles' size was read below CAUTION_BELOW_PX pixels (the scale of the
        pixel noise, where a micrograph's noise makes "particles" by the thousand), and one where the image's noise was
        not white (its significance was read on the image whitened: a real micrograph whose noise is coloured or
        striped), else ""."""
        d_px = self.diameter / self.pixel_size
        text = ""
        if "diameter" in self.estimated and d_px < CAUTION_BELOW_PX:
            text = (f"The particles' size was read as Ø {_length(self.diameter)} Å ({d_px:.1f} px), the scale of the "
                    "pixel noise: check that they are particles. If they are larger, give their diameter (Diameter in "
                    "the Segmentation dock, --param diameter=Å in a batch).")
        if self.noise_colour and "diameter" in self.estimated:
            text += (" " if text else "") + (
                f"The image's noise is not white ({self.noise_colour}): the particles were looked for in the image "
                "whitened; check that the objects are particles, not the support's texture or the detector's pattern.")
        return text


# an estimated diameter below this many pixels gets a caution: real micrographs whose particles the estimate missed
# read 2-4.5 px (mrcfile's fei-extended.mrc before session 22: Ø 2 Å at 0.85 Å/px; epu2.9_example.mrc: Ø 3 Å at
# 0.67 Å/px, 347,413 "particles"); genuine Ø5 px particles, read 4.5 px, get it too, and are the user's to confirm
CAUTION_BELOW_PX = 5.0


def _length(angstrom: float) -> str:
    """A length for a sentence: whole Å from 10 Å up, two significant digits below (an atomic column's 0.77 Å, not 1)."""
    return f"{angstrom:.0f}" if abs(angstrom) >= 10 else f"{angstrom:.2g}"


OVERRIDABLE = ("polarity", "diameter", "smoothing", "threshold", "local_block", "min_size", "split_distance")


def _check_override(name: str, value, pixel_size: float):
    if name == "polarity":
        return choice(value, "polarity", ("dark", "bright"))
    if name == "threshold":
        return choice(value, "threshold", ("otsu", "li", "local", "detect"))
    if name in ("diameter", "local_block"):
        return positive(value, name, unit="Å")
    if name == "min_size":
        return nonnegative(value, name, unit="Å² or Å³", high=None)
    return nonnegative(value, name, unit="Å")


# ------------------------------------------------------------------------------------------------
# one Gaussian per image and width
# ------------------------------------------------------------------------------------------------
# The estimate, the mask, the lower cut and the growth of small objects each smooth the image at the particles'
# smoothing: on a 4k micrograph (sigma 18 px) that was the same 1.7 s Gaussian three to five times. Within
# shared_smoothing() (one segmentation, one thread) smoothed() computes each (image, sigma) once; the result is
# read-only, so that no step can change what another reads.
_SHARED = threading.local()


@contextmanager
def shared_smoothing():
    """Within the block, :func:`smoothed` of the same image object and sigma is computed once (this thread)."""
    outer = getattr(_SHARED, "cache", None)
    if outer is None:
        _SHARED.cache = {}
    try:
        yield
    finally:
        if outer is None:
            _SHARED.cache = None


def smoothed(img: np.ndarray, sigma: float) -> np.ndarray:
    """``ndi.gaussian_filter(img, sigma)``, shared within :func:`shared_smoothing` (read-only there)."""
    cache = getattr(_SHARED, "cache", None)
    if cache is None:
        return ndi.gaussian_filter(img, sigma)
    key = (id(img), float(sigma))
    hit = cache.get(key)
    if hit is not None and hit[0] is img:  # the entry holds the image itself, so its id cannot have been reused
        return hit[1]
    out = ndi.gaussian_filter(img, sigma)
    out.flags.writeable = False
    cache[key] = (img, out)
    return out


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


def _choose_polarity(dark: np.ndarray, bright: np.ndarray, plane: np.ndarray | None = None) -> str:
    """The particles' sign: the one whose strong blobs stand most significantly clear of the noise (90th
    percentile of their z, the response over the noise's at that scale: the raw response of a noise speck
    at 1 px beats that of faint large particles, and a faint Ø33 dark image with 10 such bright specks was
    called bright). Counting blobs would not do: the gaps between packed particles make blobs of the other
    sign, but weaker ones. Only a handful of blobs (fewer than STRAY_BLOBS, against five times as many of
    the other sign) are strays (a speck, an edge), whatever their response: two such blobs outscored 189
    particles. Near a tie (POLARITY_TIE) the sign with OUTNUMBER x the other's blobs wins, else the sign whose phase
    of ``plane`` is isolated, not percolating."""
    if len(dark) < STRAY_BLOBS and 5 * len(dark) < len(bright):
        return "bright"
    if len(bright) < STRAY_BLOBS and 5 * len(bright) < len(dark):
        return "dark"
    score = [float(np.percentile(b[:, 4], 90)) if len(b) else 0.0 for b in (dark, bright)]
    if min(score) > 0 and max(score) < POLARITY_TIE * min(score):
        if max(len(dark), len(bright)) >= OUTNUMBER * min(len(dark), len(bright)):
            return "dark" if len(dark) > len(bright) else "bright"
        connected = _isolated_phase(plane) if plane is not None else None
        if connected is not None:
            return connected
    return "dark" if score[0] >= score[1] else "bright"


STRAY_BLOBS = 5
# where both signs' blobs stand about as clear (90th-percentile significances within this factor), the blobs of the
# other sign are the gaps between packed particles: the particles are the phase that does not percolate (dark Ø30-37
# fields at half coverage and k 200-350, whose gaps stood 1.0-1.2x clearer than the particles, were called bright: F1 0)
POLARITY_TIE = 1.5
# a phase percolates where its largest connected piece holds at least this share of it, and the other is isolated where
# its share is at least ISOLATED_BY less (on 720 generated images the cue, where it decided, was never the wrong way
# round; 0.7 and "at most 0.4" left a dense dark Ø33 field, shares 0.58 / 1.00, called bright)
PERCOLATES, ISOLATED_BY = 0.8, 0.3
# ... but first, near a tie, a sign with this many times the other's blobs is the particles' (the gaps between packed
# particles make weaker blobs, not more: on the 231 benchmark images of sessions 14-22 with a tie, the sign with 3x the
# blobs was the particles' in all 43 where one had; a 2048² crop of fei-extended.mrc, 22 dark blobs against 6 bright
# remnants of hit pixels, was called bright by the phases of its pixel noise)
OUTNUMBER = 3.0


def _isolated_phase(plane: np.ndarray) -> str | None:
    """The sign ("dark" or "bright") of the phase below / above Otsu's level of the lightly smoothed ``plane`` that is
    broken into pieces while the other percolates (the support around particles is one connected network), or None
    where that is not clear."""
    from skimage.filters import threshold_otsu

    smooth = ndi.gaussian_filter(plane.astype(np.float32), 1.5)
    level = threshold_otsu(smooth)
    shares = []
    for phase in (smooth < level, smooth > level):
        pieces, n = ndi.label(phase)
        sizes = np.bincount(pieces.ravel())[1:]
        shares.append(float(sizes.max() / sizes.sum()) if n else 0.0)
    if max(shares) >= PERCOLATES and max(shares) - min(shares) >= ISOLATED_BY:
        return "dark" if shares[0] < shares[1] else "bright"
    return None


# a crowd of blobs is the particles, not the strong blobs above it, where the strong ones are fewer than STRAY_BLOBS
# and the crowd holds CROWD_OVER_STRONG x as many at CROWD_ABOVE_STRONG x their scale or more (see _typical_radius;
# 3 and 5 change the same benchmark images; 3 also reads 1800² crops of fei-extended.mrc with 2 strays and 7 particles)
CROWD_OVER_STRONG = 3
CROWD_ABOVE_STRONG = 3.0


def _strong(blobs: np.ndarray) -> np.ndarray:
    """The blobs of the highest responses (within 0.7 of the highest; a mask): a disk's normalised response is set by
    its contrast, whatever its size."""
    return blobs[:, 3] >= 0.7 * blobs[:, 3].max()


def _crowd(blobs: np.ndarray) -> np.ndarray:
    """The blobs of the most crowded octave of scales (a mask)."""
    steps = np.round(np.log2(blobs[:, 2]) * _SCALES_PER_OCTAVE).astype(int)  # the pyramid's scale steps
    octaves = [(steps >= k) & (steps < k + _SCALES_PER_OCTAVE) for k in np.unique(steps)]
    return max(octaves, key=np.count_nonzero)


def _typical_radius(blobs: np.ndarray) -> float:
    """Median radius (px) of the strong blobs (weak ones are noise, fragments or gaps).

    Unless a handful of strong blobs (fewer than STRAY_BLOBS) sit well below a crowd (the most crowded octave of
    scales, CROWD_OVER_STRONG x as many blobs at CROWD_ABOVE_STRONG x the scale or more): the crowd is then the
    particles and the strong ones are strays. Where the particles stand a fraction of the pixel noise clear, every
    blob barely clears the detection level, and there a blob's response is the noise's at its scale, which falls as
    1/scale: a speck of noise, ice or a hit pixel's remnant outranks the particles. In the real micrograph
    ``fei-extended.mrc`` (Ø ~110 Å particles, 130 px, at a quarter of the pixel noise) two blobs at 1.6 px had the
    highest responses and 38 of the 60 blobs sat at 32-51 px (Ø 114 px read; Ø 5 and 2 Å before). Of 510 benchmark
    images (327 seen, 183 never run) it changed one particle scale: a faint touching Ø6.4 px field read at 2.8 px
    (1.4 px blobs), now 9 px (F1 0.28 -> 0.74)."""
    if len(blobs) == 0:
        return float("nan")
    strong, crowd = _strong(blobs), _crowd(blobs)
    radius = float(np.sqrt(2) * np.median(blobs[strong, 2]))
    crowd_radius = float(np.sqrt(2) * np.median(blobs[crowd, 2]))
    n_strong = np.count_nonzero(strong)
    if (n_strong < STRAY_BLOBS and np.count_nonzero(crowd) >= CROWD_OVER_STRONG * n_strong
            and crowd_radius >= CROWD_ABOVE_STRONG * radius):
        return crowd_radius
    return radius


# the detector's gate reads the particles' contrast also from the blob responses (see _response_contrast) and takes
# the lower of that and the level read in the image
GATE_FROM_RESPONSE = True


def _response_contrast(blobs: np.ndarray) -> float:
    """The particles' contrast from the blob search's responses: a disk of contrast c at the scale sigma = R / sqrt(2)
    gives 2c/e in the scale-normalised LoG; the median over the more significant half of the blobs. Unlike the level
    at the blob centres it does not depend on the scale read as typical (faint Ø8-14 fields at 0.67 noise
    deviations read 0.61-0.77 at 512² and 2048², the level 0.74-1.57)."""
    z = blobs[:, 4]
    return float(np.median(np.abs(blobs[z >= np.median(z), 3]))) / (2 / math.e)


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


def estimate_settings(img: np.ndarray, pixel_size: float, given: dict, blobs_by_sign=None,
                      progress: ProgressCallback = None):
    """The settings of ``img`` (2D; a volume is read through its middle slice); ``given`` holds the
    settings the caller fixed (Å, Å²), which are used as they are.

    Returns ``(settings, support)``: ``support`` is the background under the particles of a 2D image (in
    ``sign * plane`` units, see :func:`read_support`), None for a volume. The support and the contrast depend on the
    image, the polarity, the local block and a given diameter only, never on a given smoothing, so that
    ``settings.options()`` (which hold the smoothing and the threshold the estimate chose) reproduce them.
    ``blobs_by_sign``: the blob search's ``(dark, bright)`` of the plane, if already known. ``progress``: called with
    the fraction done (the support of a large image takes tens of seconds)."""
    plane = img if img.ndim == 2 else img[img.shape[0] // 2]
    max_sigma = max(_MIN_SIGMA, min(plane.shape) / 4)
    dark, bright = blob_detections(plane, max_sigma) if blobs_by_sign is None else blobs_by_sign
    report(progress, 0.2)
    polarity = given.get("polarity") or _choose_polarity(dark, bright, plane)
    blobs = dark if polarity == "dark" else bright
    noise = _noise_sigma(plane)
    radius_px = _support_radius(plane, blobs, pixel_size, given)
    d_px = 2 * radius_px
    local_block = given["local_block"] if given.get("local_block") else 4.0 * d_px * pixel_size
    sign = -1.0 if polarity == "dark" else 1.0
    smoothing_px, level, flat, background = read_support(plane, blobs, radius_px, local_block / pixel_size / 2,
                                                         sign, noise, progress=sub_progress(progress, 0.2, 0.6))
    lo, hi = np.percentile(background, [5, 95])
    variation = float((hi - lo) / max(abs(level), 1e-12))
    # Otsu also fails where the two classes' histograms overlap (contrast below twice the pixel noise):
    # the flattened image's half-way level does not depend on the histogram's shape
    faint = abs(level) < LOCAL_IF_CONTRAST_TO_NOISE_BELOW * noise
    estimated = dict(
        polarity=polarity, diameter=d_px * pixel_size, smoothing=smoothing_px * pixel_size,
        threshold="local" if variation > LOCAL_IF_BACKGROUND_VARIES or faint else "otsu",
        local_block=local_block,
        min_size=0.2 * math.pi * radius_px**2 * pixel_size**2 * (1.0 if img.ndim == 2 else 4 / 3 * radius_px * pixel_size),
        split_distance=0.25 * d_px * pixel_size,
    )
    values = {k: (given[k] if given.get(k) is not None else v) for k, v in estimated.items()}
    settings = ParticleSettings(
        **values, pixel_size=pixel_size, contrast=sign * level, noise=noise,
        background_variation=variation, n_blobs=int(len(blobs)),
        estimated=tuple(k for k in OVERRIDABLE if given.get(k) is None),
    )
    # the detector's scale and polarity are read by the detector itself, whether it was chosen or asked for
    asked = given.get("threshold") == "detect"
    gate_contrast = abs(level)
    if GATE_FROM_RESPONSE and len(blobs):  # the level at the blob centres is biased up where the scale is read small
        gate_contrast = min(gate_contrast, _response_contrast(blobs))
    report(progress, 0.6)  # the detector, where it takes over, scans the image at the particles' scale: the rest
    if img.ndim == 2 and (asked or given.get("threshold") is None and
                          _pd.use_detector(gate_contrast / max(noise, 1e-12), radius_px, len(blobs))):
        detected = _pd.detector_settings(plane, settings, given, background, (dark, bright))
        if detected is not None:  # faint particles: found by a scanning detector, not a threshold
            settings, background = detected
    return settings, (background if img.ndim == 2 else None)


def _support_radius(plane: np.ndarray, blobs: np.ndarray, pixel_size: float, given: dict) -> float:
    """The particles' radius (px) the support is read at: the given diameter's, else the blob search's typical one,
    else a tenth of the image (nothing blob-like)."""
    if given.get("diameter"):
        return given["diameter"] / pixel_size / 2
    if len(blobs):
        return _typical_radius(blobs)
    return min(plane.shape) / 20


def read_support(plane: np.ndarray, blobs: np.ndarray, radius_px: float, bg_sigma: float, sign: float,
                 noise: float, progress: ProgressCallback = None):
    """``(smoothing_px, level, flat, background)``: the estimate's own smoothing (1/8 of the diameter, raised up to a
    quarter until half the contrast stands SMOOTH_TO_NOISE_Z smoothed-noise deviations clear), the particles' level
    (read at 1/8 diameter), and the smoothed ``sign * plane`` less its background over the support (the blobs and what
    stands above Otsu's level left out; a Gaussian of ``bg_sigma`` px) and that background. A function of the
    image, the sign, the blobs, the radius and ``bg_sigma`` only."""
    d_px = 2 * radius_px
    smoothing_px = d_px * SMOOTHING_PER_DIAMETER
    exclude = _blob_mask(plane.shape, blobs, 1.3)
    smooth = sign * (smoothed(plane, smoothing_px) if smoothing_px > 0 else plane)
    flat, background = flatten(smooth, bg_sigma, exclude, grow=max(1, int(d_px / 6)))
    level = _particle_level(flat, blobs, noise) if len(blobs) else float(flat.std())
    report(progress, 0.5)
    # enough smoothing that half the contrast stands SMOOTH_TO_NOISE_Z smoothed-noise deviations clear
    # (white noise under a Gaussian of sigma s px keeps 1 / (2 sqrt(pi) s) of its deviation)
    needed = min(SMOOTH_TO_NOISE_Z * noise / (math.sqrt(math.pi) * max(abs(level), 1e-12)), d_px / 4)
    if needed > 1.05 * smoothing_px:
        smoothing_px = needed
        smooth = sign * smoothed(plane, smoothing_px)
        flat, background = flatten(smooth, bg_sigma, exclude, grow=max(1, int(d_px / 6)))
    return smoothing_px, level, flat, background


def support_of(plane: np.ndarray, polarity: str, pixel_size: float, given: dict, blobs_by_sign=None) -> np.ndarray:
    """The support (background, in ``sign * plane`` units) the estimate reads under ``polarity``'s particles, with
    the local block and diameter of ``given`` where given (see :func:`estimate_settings`)."""
    if blobs_by_sign is None:
        blobs_by_sign = blob_detections(plane, max(_MIN_SIGMA, min(plane.shape) / 4))
    blobs = blobs_by_sign[0] if polarity == "dark" else blobs_by_sign[1]
    radius_px = _support_radius(plane, blobs, pixel_size, given)
    local_block = given["local_block"] if given.get("local_block") else 4.0 * 2 * radius_px * pixel_size
    sign = -1.0 if polarity == "dark" else 1.0
    return read_support(plane, blobs, radius_px, local_block / pixel_size / 2, sign, _noise_sigma(plane))[3]


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
