"""Assisted segmentation: automatic particles, a scribble-trained pixel classifier, click-to-segment,
and interpolation of labels between annotated slices.

All functions work on images (Y, X) and on volumes (Z, Y, X); lengths are in Å, areas in Å².
No Qt, no napari.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core import _particle_settings as _ps
from napari_cryomat.core._classifier import (  # noqa: F401 - re-exported: the pixel classifier's home was here
    FEATURES_VERSION,
    FeatureCache,
    PixelClassifier,
    pixel_features,
    train_pixel_classifier,
)
from napari_cryomat.core._particle_settings import ParticleSettings
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core._segment_common import (
    _as_float,
    iter_tiles,
)
from napari_cryomat.core._segment_particles import (
    _detected_labels,
    _detector_after_refinement,
    _mask_to_labels,
    _nothing_to_segment,
    _particle_mask,
    _split_on_distance,
    lower_level_mask,
)
from napari_cryomat.core._validate import (
    check_memory,
    choice,
    integer,
    labels_array,
    nonnegative,
    positive,
)
from napari_cryomat.core.defects import replace_outlier_pixels

__all__ = [
    "segment_particles",
    "estimate_particle_settings",
    "ParticleSettings",
    "segment_series",
    "split_touching",
    "PixelClassifier",
    "FeatureCache",
    "train_pixel_classifier",
    "pixel_features",
    "click_segment",
    "interpolate_slices",
    "iter_tiles",
    "sam_available",
    "SamSegmenter",
]


def _as_mask(mask, name: str = "mask") -> np.ndarray:
    arr = np.asarray(mask)
    if np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name} must be a boolean (or 0/1) array; got dtype {arr.dtype}.")
    if arr.ndim not in (2, 3) or min(arr.shape) < 1:
        raise ValueError(f"{name} must be 2D (Y, X) or 3D (Z, Y, X); got shape {arr.shape}.")
    check_memory(arr.size * 8 * 4, name, f"splitting objects in {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; it must be a boolean (or 0/1) array.")
    return arr.astype(bool, copy=False)


def _length_px(value, name: str, pixel_size: float, shape, *, allow_zero: bool = True) -> float:
    """A length in Å converted to pixels, at most the image's largest side (a Gaussian or a
    distance longer than the image has no meaning and would ask for absurd kernels)."""
    v = (nonnegative if allow_zero else positive)(value, name, unit="Å")
    limit = float(max(shape)) * pixel_size
    if v > limit:
        raise ValueError(
            f"{name} must be at most the image size, {limit:g} Å ({max(shape)} px of {pixel_size:g} Å); got {value!r}."
        )
    return v / pixel_size


# ------------------------------------------------------------------------------------------------
# Automatic particle segmentation
# ------------------------------------------------------------------------------------------------
@_ps.shared_smoothing()  # one Gaussian per width: the estimate and the mask smooth the image alike
def estimate_particle_settings(image, *, pixel_size: float, polarity: str = "auto", diameter: float | None = None,
                               smoothing: float | None = None, threshold: str = "auto",
                               local_block: float | None = None, min_size: float | None = None,
                               split_distance: float | None = None) -> ParticleSettings:
    """What :func:`segment_particles` will assume about ``image``: the settings read off the image.

    Polarity and particle size come from a scale-space blob search (normalised Laplacian of Gaussian),
    the background from the support around the particles; smoothing (1/8 of the diameter, more up to
    1/4 where half the particle contrast would not stand 3 smoothed-noise deviations clear), minimum
    size (1/5 of a typical particle's area), split distance (1/4 diameter), background scale (4
    diameters) and the threshold (``local`` when the support varies by more than a sixth of the
    particles' contrast or the contrast is below twice the pixel noise, else ``otsu``) follow. Any
    setting given here is taken as it is and the others are estimated around it (a given diameter
    sets the scales).

    Parameters
    ----------
    image : array (Y, X) or (Z, Y, X)
    pixel_size : float
        Pixel size in Å.
    polarity, threshold : str
        ``"auto"`` to estimate, or a value of :func:`segment_particles`.
    diameter, smoothing, local_block, min_size, split_distance : float, optional
        Å (min_size Å² or Å³); None to estimate.

    Returns
    -------
    ParticleSettings
        The settings, what was estimated (``estimated``), and the measured particle ``contrast``,
        pixel ``noise`` and ``background_variation``; ``settings.options()`` are keyword arguments
        of :func:`segment_particles`.
    """
    img, colour = _whitened(_without_defects(_as_float(image)))
    pixel_size = positive(pixel_size, "pixel_size", unit="Å per pixel")
    given = _given_settings(img.shape, pixel_size, polarity=polarity, diameter=diameter, smoothing=smoothing,
                            threshold=threshold, local_block=local_block, min_size=min_size,
                            split_distance=split_distance)
    return _with_colour(_ps.estimate_settings(img, pixel_size, given)[0], colour)


def _without_defects(img: np.ndarray) -> np.ndarray:
    """A 2D image with its hot and X-ray-hit pixels replaced (:mod:`.defects`); a volume (reconstructed: no such
    pixels) as it is. The blob search would otherwise read a hit's ringing as the particles."""
    if img.ndim != 2 or min(img.shape) < 3:
        return img
    return replace_outlier_pixels(img)[0]


def _whitened(img: np.ndarray) -> tuple[np.ndarray, str]:
    """``(image, words)``: a 2D image whose noise is not white (a real detector's: coloured by its MTF or a
    motion-corrected sum's interpolation, or striped by its read-out) whitened (:func:`._particle_blobs.whiten`), and
    words for how it was not white; else the image as it is and "". Every significance and every bound on contrast
    over noise below was set on white noise: on epu2.9_example.mrc (power falling 47x to 0.5 cycles/px) the defaults
    read Ø 2.7 Å noise as 331,000 particles."""
    from napari_cryomat.core._particle_blobs import colour_text, noise_colour, whiten

    colour = noise_colour(img)
    words = colour_text(colour)
    return (whiten(img, colour) if words else img), words


def _with_colour(settings: ParticleSettings, words: str) -> ParticleSettings:
    """``settings`` that say how the noise was not white (their caution then says so)."""
    import dataclasses

    return dataclasses.replace(settings, noise_colour=words) if words else settings


def _given_settings(shape, pixel_size: float, *, polarity, threshold, diameter=None, smoothing=None,
                    local_block=None, min_size=None, split_distance=None) -> dict:
    """The settings the caller fixed, checked; "auto" and None are left out (to be estimated)."""
    given = {}
    if not (isinstance(polarity, str) and polarity == "auto"):
        given["polarity"] = choice(polarity, "polarity", ("auto", "dark", "bright"))
    if not (isinstance(threshold, str) and threshold == "auto"):
        given["threshold"] = choice(threshold, "threshold", ("auto", "otsu", "li", "local", "detect"))
    for name, value in (("diameter", diameter), ("smoothing", smoothing), ("split_distance", split_distance)):
        if value is not None:
            # kept as given (checked): a round trip through pixels could move it by a rounding step, and the options
            # of a result must give back the very values it used
            _length_px(value, name, pixel_size, shape, allow_zero=name != "diameter")
            given[name] = float(value)
    if local_block is not None:
        given["local_block"] = positive(local_block, "local_block", unit="Å")
    if min_size is not None:
        given["min_size"] = nonnegative(min_size, "min_size", unit="Å² or Å³", high=None)
    return given


@_ps.shared_smoothing()  # one Gaussian per width: the estimate and the mask smooth the image alike
def segment_particles(
    image,
    *,
    pixel_size: float,
    smoothing: float | None = None,
    threshold: str = "auto",
    local_block: float | None = None,
    polarity: str = "auto",
    min_size: float | None = None,
    split: bool = True,
    split_distance: float | None = None,
    fill_holes: bool = True,
    diameter: float | None = None,
    return_settings: bool = False,
    progress: ProgressCallback = None,
):
    """Segment particles: Gaussian smoothing, a global or local threshold, then a watershed that splits
    touching particles (seeded by the image's own blobs for particles below 16 px, by the distance map
    above; rods and ovals cut into pieces are given back whole).

    Every setting left at ``"auto"`` / None is read off the image (see
    :func:`estimate_particle_settings`): a new image needs no tuning. A 2D image's hot and X-ray-hit pixels
    (far off all their neighbours, :mod:`.defects`) are replaced by their neighbours' median first.

    Parameters
    ----------
    image : array (Y, X) or (Z, Y, X)
        The micrograph or tomogram.
    pixel_size : float
        Pixel (voxel) size in Å.
    smoothing : float, optional
        Standard deviation of the Gaussian smoothing, Å. 0 switches smoothing off; None: 1/8 of the
        particle diameter, or more (up to 1/4) for faint particles.
    threshold : {"auto", "otsu", "li", "local", "detect"}
        Global Otsu or Li threshold, or a local one: the support's slow variation (a Gaussian over about
        ``local_block`` Å of the support, particles left out) is subtracted, for uneven illumination or
        ice, and the image is cut half way to the particles' measured contrast (Otsu when it was not
        measured). ``detect`` (2D; a volume gets ``local``): faint particles found as a scanning detector
        finds them (the background-free image over its noise, correlated with a centre-surround disk of
        the particle scale (twice ``split_distance`` as its radius), its significance set against the maxima pure
        noise makes), each grown to half the particles' contrast; what is not grown from a detection is
        left out (a detection grows at most 1.2 of its own radii where the image's detections pick the particle scale
        themselves; there, at radii of 4-5.5 px, a growth more than 1.3x off the detection's own best disk radius is
        replaced by that disk). ``auto``: ``detect`` for faint small particles (below one pixel-noise deviation, too few blobs
        for the blob search to read a scale, or a speck-sized scale below 4 px, also when the first mask's
        granulometry reads one), else local when the support varies by more
        than a sixth of the particles' contrast or the contrast is below twice the pixel noise. A 2D image under the
        local threshold whose contrast stands 1-2.5 pixel-noise deviations clear, read off fewer significant blobs than
        half its mask's objects, at a scale below 10 px and not a field of chains, is cut at 0.45 of the contrast
        instead (that contrast is read off the blobs the noise lifted: half way cut low-dose Ø5-9 particles to 2/3
        of their area), where the scale read from that mask is not smaller.
    local_block : float, optional
        Scale in Å of the background the local threshold removes; None: 4 particle diameters.
    polarity : {"auto", "dark", "bright"}
        Whether particles are darker (bright-field TEM, cryo-EM) or brighter (HAADF-STEM) than
        the support; ``auto`` reads it off the image.
    min_size : float, optional
        Objects smaller than this are dropped: area in Å² for images, volume in Å³ for volumes.
        None: a fifth of a typical particle.
    split : bool
        Split touching particles. On a 2D image whose particles stand at least twice the pixel noise
        clear and are below 16 px (4 x ``split_distance``) across, the watershed is seeded at the
        significant maxima of the Laplacian of Gaussian at their scale and runs on that response (the
        distance map of a few-pixel mask has no neck left to cut at); otherwise it runs on the
        Euclidean distance map (:func:`split_touching`). Either way, a cut object narrower than 24 px
        that fills >= 95 % of the ellipse of its second moments (a rod, an oval) is given back whole.
        In a 2D field of touching chains (most objects at least 1.5 disks of their own width, or at low dose nearly
        half of them that long without filling their ellipse as one oval; the particle scale read off the image
        mistakes the chains for particles), the chains narrower than 24 px are split
        again at their width's scale, where that finds more members (``_segment_chains.py``; chains that do
        not fill their ellipse as one oval does are marked at a lower dynamic, below 8 px lower still;
        below 12 px an object that still has the area of several members is cut into as many, by nearest centre).
    split_distance : float, optional
        Minimum distance in Å between the centres of two particles the watershed keeps apart;
        None: a quarter of the particle diameter.
    fill_holes : bool
        Fill holes inside particles.
    diameter : float, optional
        Typical particle diameter in Å, when known: the other scales follow from it.
    return_settings : bool
        Also return the :class:`ParticleSettings` used (what was estimated and what was given);
        ``segment_particles(image, **settings.options())`` gives the same labels again. The support under
        the particles and their contrast are always read off the image (blob search, at the estimate's own
        smoothing), whatever settings are given.
    progress : callable, optional
        Called with the fraction done.

    Returns
    -------
    labels : ndarray of int32, same shape as ``image``
        0 is background, 1..N the particles. All 0 for a 2D image in which no particle-like blob stands
        clear of the noise (an empty field), unless ``diameter`` is given; ``settings.n_blobs`` is then 0.
    settings : ParticleSettings, only with ``return_settings=True``
    """
    img, colour = _whitened(_without_defects(_as_float(image)))
    pixel_size = positive(pixel_size, "pixel_size", unit="Å per pixel")
    given = _given_settings(img.shape, pixel_size, polarity=polarity, threshold=threshold, diameter=diameter,
                            smoothing=smoothing, local_block=local_block, min_size=min_size,
                            split_distance=split_distance)
    report(progress, 0.0)
    settings, support = _ps.estimate_settings(img, pixel_size, given, progress=sub_progress(progress, 0.0, 0.3))
    settings = _with_colour(settings, colour)
    if _nothing_to_segment(img, settings):
        report(progress, 1.0)
        labels = np.zeros(img.shape, np.int32)
        return (labels, settings) if return_settings else labels
    if settings.threshold == "detect" and img.ndim == 2:
        labels = _detected_labels(img, settings, support, split=split, progress=sub_progress(progress, 0.3, 1.0))
        report(progress, 1.0)
        return (labels, settings) if return_settings else labels
    mask, level, background = _particle_mask(img, settings, support)
    report(progress, 0.4)
    first = settings
    settings = _ps.refine_from_mask(settings, mask)
    detected = _detector_after_refinement(img, settings, given, support)
    if detected is not None:  # the mask's specks read as the particles: the detector finds them instead
        settings, support = detected
        labels = _detected_labels(img, settings, support, split=split, progress=sub_progress(progress, 0.5, 1.0))
        report(progress, 1.0)
        return (labels, settings) if return_settings else labels
    lower = lower_level_mask(img, first, support, mask, settings.diameter)
    if lower is not None:  # faint particles not in chains: cut below half way, the scale read again from that mask
        lowered = _ps.refine_from_mask(first, lower[0])
        if lowered.diameter >= settings.diameter:  # a smaller scale read: the lower cut let noise specks in
            (mask, level), settings = lower, lowered
    report(progress, 0.5)
    labels = _mask_to_labels(mask, settings, split=split, fill_holes=fill_holes, image=img,
                             cut=(level, background), progress=sub_progress(progress, 0.5, 1.0))
    report(progress, 1.0)
    return (labels, settings) if return_settings else labels


def segment_series(movie, *, pixel_size: float, progress: ProgressCallback = None, **options) -> np.ndarray:
    """:func:`segment_particles` frame by frame on a time series (T, Y, X).

    A movie must not be segmented as a volume: smoothing and the watershed would mix frames.
    ``options`` are those of :func:`segment_particles`. Labels restart at 1 in every frame
    (link them with :func:`napari_cryomat.core.tracking.track_objects`).
    """
    shape = tuple(np.shape(movie))
    if len(shape) != 3:
        raise ValueError(f"A time series (T, Y, X) is needed to segment frame by frame; the movie has shape {shape}.")
    if np.iscomplexobj(movie):
        raise ValueError("The movie holds complex numbers; take the modulus or phase first.")
    positive(pixel_size, "pixel_size", unit="Å per pixel")
    check_memory(float(np.prod(shape)) * 4, "movie", f"the labels of {shape}")
    out = np.zeros(shape, dtype=np.int32)
    for t in range(shape[0]):
        try:
            out[t] = segment_particles(np.asarray(movie[t]), pixel_size=pixel_size, **options)
        except ValueError as exc:
            raise ValueError(f"movie frame {t}: {exc}") from None
        report(progress, (t + 1) / shape[0])
    return out


def split_touching(mask, *, pixel_size: float, split_distance: float = 30.0,
                   min_size: float = 0.0) -> np.ndarray:
    """Split a binary mask into objects, cutting touching ones apart at their necks.

    A watershed of the (lightly smoothed) Euclidean distance map, seeded at its maxima at least
    ``split_distance`` Å apart; in 2D an object narrower than 24 px that fills >= 95 % of the ellipse of
    its second moments (a rod, an oval: its ridge's pixel steps make spurious maxima) is kept whole,
    where touching particles leave that ellipse's flanks empty (two touching disks fill 0.90-0.94).
    Use it to turn a pixel-classifier prediction into objects.

    Parameters
    ----------
    mask : bool array (Y, X) or (Z, Y, X)
    pixel_size : float
        Pixel size in Å.
    split_distance : float
        Minimum distance between object centres, Å.
    min_size : float
        Smaller pieces are dropped: Å² (2D) or Å³ (3D).

    Returns
    -------
    labels : ndarray of int32
    """
    mask = _as_mask(mask, "mask")
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    _length_px(split_distance, "split_distance", pixel_size, mask.shape)
    min_size = nonnegative(min_size, "min_size", unit="Å² or Å³", high=None)
    return _split_on_distance(mask, pixel_size, split_distance, min_size / pixel_size**mask.ndim)


# ------------------------------------------------------------------------------------------------
# Click-to-segment
# ------------------------------------------------------------------------------------------------
def click_segment(
    image,
    points: Sequence[Sequence[float]],
    *,
    pixel_size: float,
    background_points: Sequence[Sequence[float]] = (),
    method: str = "flood",
    tolerance: float | None = None,
    smoothing: float = 4.0,
    max_radius: float = 300.0,
    split_distance: float = 30.0,
) -> np.ndarray:
    """Segment one object from clicks.

    The first click (``points[0]``) seeds the object; further clicks refine it: more ``points``
    add parts to the object, ``background_points`` mark what does not belong to it.

    Parameters
    ----------
    image : array (Y, X) or (Z, Y, X)
    points : sequence of pixel coordinates
        Clicks on the object (data coordinates, in pixels).
    pixel_size : float
        Pixel size in Å.
    background_points : sequence of pixel coordinates
        Clicks on what is not the object.
    method : {"flood", "watershed", "random_walker"}
        ``flood``: flood fill of pixels within ``tolerance`` of the clicked value;
        ``watershed``: seeded watershed of the gradient between object and background seeds;
        ``random_walker``: random-walker segmentation from the same seeds.
    tolerance : float, optional
        Flood tolerance in image intensity units; default: half the difference between the
        clicked value and the local background (the median of the search window's border).
        A background click lowers it until that point is excluded.
    smoothing : float
        Gaussian smoothing before segmenting, Å.
    max_radius : float
        Half-size in Å of the search window around the clicks; the object cannot extend beyond it.
    split_distance : float
        Touching neighbours of the same intensity are cut off at the neck between them
        (:func:`split_touching` with this minimum centre distance, Å); only the pieces under the
        object clicks are kept. 0 keeps the whole connected region.

    Returns
    -------
    mask : ndarray of bool, same shape as ``image``
    """
    from skimage import filters, segmentation

    shape = tuple(np.shape(image))
    if len(shape) not in (2, 3) or 0 in shape:
        raise ValueError(f"Expected an image (Y, X) or a volume (Z, Y, X); got shape {shape}.")
    if len(points) == 0:
        raise ValueError("Click on the object first (points is empty).")
    pts = _check_clicks(points, "points", shape)
    bgs = _check_clicks(background_points, "background_points", shape) if len(background_points) else \
        np.zeros((0, len(shape)), int)
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    choice(method, "method", ("flood", "watershed", "random_walker"))
    tolerance = nonnegative(tolerance, "tolerance", high=None, allow_none=True)
    _length_px(smoothing, "smoothing", pixel_size, shape)
    _length_px(split_distance, "split_distance", pixel_size, shape)
    max_radius = positive(max_radius, "max_radius", unit="Å")
    check_memory(float(np.prod(shape)) * 2, "image", f"the mask of {shape}")
    # the search window never needs to be larger than the image
    r = max(2, int(math.ceil(min(max_radius / pixel_size, float(max(shape))))))
    allp = np.concatenate([pts, bgs]) if len(bgs) else pts
    lo = np.maximum(allp.min(axis=0) - r, 0)
    hi = np.minimum(allp.max(axis=0) + r + 1, shape)
    win = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    img = _as_float(np.asarray(image[win]))
    if smoothing > 0:
        img = ndi.gaussian_filter(img, sigma=smoothing / pixel_size)
    lp = pts - lo
    lb = [b - lo for b in bgs if np.all(b >= lo) and np.all(b < hi)]
    border = np.concatenate([img[(0,) + (slice(None),) * (img.ndim - 1)].ravel(),
                             img[(-1,) + (slice(None),) * (img.ndim - 1)].ravel(),
                             img[..., 0].ravel(), img[..., -1].ravel()])
    bg_level = float(np.median(border))
    sub = np.zeros(img.shape, dtype=bool)
    if method == "flood":
        for p in lp:
            v = float(img[tuple(p)])
            tol = abs(v - bg_level) / 2 if tolerance is None else float(tolerance)
            for b in lb:
                tol = min(tol, 0.9 * abs(float(img[tuple(b)]) - v))
            region = segmentation.flood(img, tuple(int(c) for c in p), tolerance=max(tol, 1e-6))
            sub |= region
    elif method in ("watershed", "random_walker"):
        markers = np.zeros(img.shape, dtype=np.int32)
        # background seeds: the window border and every background click
        edge = np.ones(img.shape, dtype=bool)
        edge[tuple(slice(1, -1) for _ in img.shape)] = False
        markers[edge] = 2
        for b in lb:
            markers[tuple(b)] = 2
        for p in lp:
            markers[tuple(p)] = 1
        if method == "watershed":
            grad = filters.sobel(img)
            result = segmentation.watershed(grad, markers)
        else:
            import warnings

            norm = (img - img.mean()) / (img.std() + 1e-6)
            with warnings.catch_warnings():  # harmless round-off of the probabilities
                warnings.filterwarnings("ignore", message="The probability range is outside")
                result = segmentation.random_walker(norm, markers, beta=2000, mode="cg_j")
        sub = result == 1
    else:
        raise ValueError(f"Unknown method {method!r}: use 'flood', 'watershed' or 'random_walker'.")
    # keep what is connected to the object clicks (after cutting touching neighbours off), fill holes
    sub = ndi.binary_fill_holes(sub)
    if split_distance > 0 and sub.any():
        lab = _split_on_distance(sub, pixel_size, split_distance, 0.0, rejoin=False)
    else:
        lab, _ = ndi.label(sub)
    ids = np.unique([lab[tuple(p)] for p in lp])
    sub = np.isin(lab, ids[ids > 0])
    sub = ndi.binary_fill_holes(sub)
    mask = np.zeros(shape, dtype=bool)
    mask[win] = sub
    return mask


def _check_clicks(points, name: str, shape) -> np.ndarray:
    """Clicks as integer pixel indices inside ``shape``."""
    try:
        raw = np.asarray(points)
    except Exception:  # noqa: BLE001 - ragged lists
        raise ValueError(f"{name} must be a list of pixel coordinates with {len(shape)} values each.") from None
    if raw.dtype == object or np.iscomplexobj(raw) or not np.issubdtype(raw.dtype, np.number):
        raise ValueError(f"{name} must be real pixel coordinates with {len(shape)} values each; got {raw.dtype}.")
    if raw.ndim == 1:
        raw = raw[None]
    if raw.ndim != 2 or raw.shape[1] != len(shape):
        raise ValueError(f"{name} must have {len(shape)} coordinates each (the image is {len(shape)}D); "
                         f"got shape {raw.shape}.")
    pts = raw.astype(float)
    if not np.all(np.isfinite(pts)):
        raise ValueError(f"{name} contains NaN or inf coordinates.")
    pts = np.round(pts)
    inside = np.all((pts >= 0) & (pts < np.asarray(shape)), axis=1)
    if not np.all(inside):
        bad = pts[~inside][0]
        raise ValueError(f"{name}: the click at {tuple(bad.astype(int).tolist())} is outside the image {shape}.")
    return pts.astype(int)


# ------------------------------------------------------------------------------------------------
# Interpolation between annotated slices
# ------------------------------------------------------------------------------------------------
def _signed_distance(mask: np.ndarray) -> np.ndarray:
    inside = ndi.distance_transform_edt(mask)
    outside = ndi.distance_transform_edt(~mask)
    return (inside - outside).astype(np.float32)


def interpolate_slices(labels, *, axis: int = 0, label_ids: Sequence[int] | None = None) -> np.ndarray:
    """Fill the slices between annotated slices of each label by shape interpolation.

    For every label, the slices along ``axis`` where it is painted are the key slices. Between two
    consecutive key slices the outline is morphed by linear interpolation of the signed distance
    maps (so a circle of radius 10 and one of radius 20 give radius 15 half way). Only unlabelled
    (0) pixels are written; painted pixels are never overwritten.

    Parameters
    ----------
    labels : int array, (Z, Y, X) or (T, Y, X)
    axis : int
        The slicing axis.
    label_ids : sequence of int, optional
        Labels to interpolate; default all.

    Returns
    -------
    ndarray, a new array with the interpolated slices filled.
    """
    lab = labels_array(labels, "labels", copies=3)
    if lab.ndim < 3:
        raise ValueError(f"Interpolation needs labels of a stack or a volume (at least 3 dimensions); got {lab.shape}.")
    axis = integer(axis, "axis", low=-lab.ndim, high=lab.ndim - 1)
    if label_ids is not None:
        label_ids = [integer(v, "label_ids", low=1) for v in np.atleast_1d(np.asarray(label_ids, dtype=object))]
    out = np.moveaxis(lab.copy(), axis, 0)
    src = np.moveaxis(lab, axis, 0)
    ids = np.unique(src[src > 0]) if label_ids is None else np.asarray(label_ids)
    for lid in ids:
        present = np.flatnonzero(np.any((src == lid).reshape(src.shape[0], -1), axis=1))
        for k0, k1 in zip(present[:-1], present[1:]):
            if k1 - k0 < 2:
                continue
            m0, m1 = src[k0] == lid, src[k1] == lid
            sd0, sd1 = _signed_distance(m0), _signed_distance(m1)
            for k in range(k0 + 1, k1):
                w = (k - k0) / (k1 - k0)
                m = ((1 - w) * sd0 + w * sd1) > 0
                sl = out[k]
                sl[m & (sl == 0)] = lid
    return np.moveaxis(out, 0, axis)


# ------------------------------------------------------------------------------------------------
# Optional: Segment Anything (micro-sam), never downloading anything
# ------------------------------------------------------------------------------------------------
def sam_available() -> bool:
    """True when micro-sam or Segment Anything is installed (they are optional, never required)."""
    import importlib.util
    import sys

    for name in ("micro_sam", "segment_anything"):
        if sys.modules.get(name) is not None:
            return True
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError, AttributeError):
            pass
    return False


class SamSegmenter:
    """Point-prompted Segment Anything on 2D images, from a local weights file.

    Uses micro-sam's ``micro_sam.util.get_sam_model`` when micro-sam is installed (so its
    microscopy fine-tuned models work), otherwise ``segment_anything`` directly. The checkpoint must
    be a file on disk: nothing is ever downloaded (both are given the local path explicitly).

    Parameters
    ----------
    checkpoint : path
        The ``.pth`` / ``.pt`` weights file.
    model_type : str
        ``vit_b``, ``vit_l``, ``vit_h`` (or a micro-sam type such as ``vit_b_em_organelles``).
    device : str, optional
        ``cuda`` when available, else ``cpu``.
    """

    def __init__(self, checkpoint, *, model_type: str = "vit_b", device: str | None = None):
        from pathlib import Path

        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise ValueError(
                f"No Segment Anything weights at '{path}': download a checkpoint (e.g. vit_b) yourself "
                "and point to the file; napari-cryomat never downloads weights."
            )
        self.checkpoint, self.model_type = path, model_type
        try:
            from micro_sam.util import get_sam_model
        except ImportError:
            get_sam_model = None
        if get_sam_model is not None:
            self.predictor = get_sam_model(model_type=model_type, device=device, checkpoint_path=str(path))
        else:
            try:
                from segment_anything import SamPredictor, sam_model_registry
            except ImportError:
                raise ValueError(
                    "Segment Anything is not installed: `pip install micro_sam` (conda-forge) or "
                    "`pip install segment-anything`, then try again."
                ) from None
            if model_type not in sam_model_registry:
                raise ValueError(f"Unknown model type {model_type!r}; use one of {sorted(sam_model_registry)}.")
            sam = sam_model_registry[model_type](checkpoint=str(path))
            if device is None:
                try:
                    import torch

                    device = "cuda" if torch.cuda.is_available() else "cpu"
                except ImportError:
                    device = "cpu"
            sam.to(device=device)
            self.predictor = SamPredictor(sam)
        self._image_token = None

    @staticmethod
    def _to_rgb8(image) -> np.ndarray:
        img = np.asarray(image, dtype=np.float32)
        lo, hi = np.percentile(img, [0.5, 99.5])
        u8 = np.clip((img - lo) / max(hi - lo, 1e-12) * 255, 0, 255).astype(np.uint8)
        return np.repeat(u8[..., None], 3, axis=-1)

    def segment(self, image, points, *, background_points=()) -> np.ndarray:
        """Mask (bool, shape of ``image``) of the object under ``points`` (pixel (y, x)); clicks in
        ``background_points`` are negative prompts. The image embedding is computed once per image."""
        img = np.asarray(image)
        if img.ndim != 2:
            raise ValueError("Segment Anything works on 2D images: use it on one slice.")
        token = (img.shape, hash(img[:: max(1, img.shape[0] // 64), :: max(1, img.shape[1] // 64)].tobytes()))
        if token != self._image_token:
            self.predictor.set_image(self._to_rgb8(img))
            self._image_token = token
        fg = np.asarray(points, dtype=float).reshape(-1, 2)
        bg = np.asarray(background_points, dtype=float).reshape(-1, 2)
        if len(fg) == 0:
            raise ValueError("Click on the object first.")
        coords = np.concatenate([fg, bg])[:, ::-1]  # SAM wants (x, y)
        labels = np.concatenate([np.ones(len(fg)), np.zeros(len(bg))]).astype(int)
        masks, scores, _ = self.predictor.predict(point_coords=coords, point_labels=labels,
                                                  multimask_output=False)
        return np.asarray(masks[0], dtype=bool)
