"""Pixel classifier: multiscale pixel features and a random forest trained from scribbles (as in
ilastik), tiled prediction, a feature cache, and safe save/load (.skops with a feature-version check).

Public names are re-exported by :mod:`napari_cryomat.core.segment` (import them from there).
No Qt, no napari.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._segment_common import _as_float, iter_tiles
from napari_cryomat.core._validate import check_memory, integer, labels_array, positive, regular_file

FEATURES_VERSION = 2  # bump when pixel_features changes: saved classifiers depend on it


def pixel_features(image, *, sigma_min: float = 1.0, sigma_max: float = 8.0, num_sigma: int = 4,
                   intensity: bool = True, edges: bool = True, texture: bool = True) -> np.ndarray:
    """Multiscale features per pixel: at each of ``num_sigma`` log-spaced scales, the Gaussian-smoothed
    intensity, its gradient magnitude and the two eigenvalues of its Hessian.

    The families are those of ``skimage.feature.multiscale_basic_features``; for images they are
    computed from one cascade of Gaussians (each scale smooths the previous one) with finite
    differences, about 5x faster; volumes use scikit-image's function.
    Sigmas are in pixels here: the classifier learns what a class looks like at this sampling.
    Returns an array of float32 with shape ``image.shape + (n_features,)``.
    """
    img = _as_float(image)
    sigma_min, sigma_max, num_sigma = _check_sigmas(sigma_min, sigma_max, num_sigma, img.shape)
    if not (intensity or edges or texture):
        raise ValueError("Choose at least one feature family: intensity, edges or texture must be True.")
    n_feat = num_sigma * (int(intensity) + int(edges) + 2 * int(texture) + (img.ndim - 2) * int(texture))
    check_memory(img.size * 4.0 * max(1, n_feat) * 2, "image", f"{n_feat} features per pixel of {img.shape}")
    if img.ndim == 3:
        from skimage.feature import multiscale_basic_features

        f = multiscale_basic_features(
            img, intensity=intensity, edges=edges, texture=texture, sigma_min=sigma_min,
            sigma_max=sigma_max, num_sigma=num_sigma, channel_axis=None,
        )
        return f.astype(np.float32, copy=False)
    sigmas = np.geomspace(sigma_min, sigma_max, num_sigma) if num_sigma > 1 else np.array([sigma_min])
    out = np.empty(img.shape + (max(1, n_feat),), np.float32)
    k, smoothed, done = 0, img, 0.0
    for sigma in sigmas:
        smoothed = ndi.gaussian_filter(smoothed, math.sqrt(max(sigma**2 - done**2, 1e-6)), truncate=3.5)
        done = sigma
        if intensity:
            out[..., k] = smoothed
            k += 1
        if not (edges or texture):
            continue
        gy, gx = np.gradient(smoothed)
        if edges:
            out[..., k] = np.hypot(gy, gx)
            k += 1
        if texture:
            gyy, gxy = np.gradient(gy)
            gxx = np.gradient(gx, axis=1)
            half_diff = np.hypot(0.5 * (gxx - gyy), gxy)
            mean = 0.5 * (gxx + gyy)
            out[..., k] = mean + half_diff
            out[..., k + 1] = mean - half_diff
            k += 2
    return out[..., :k] if k else out


def _check_sigmas(sigma_min, sigma_max, num_sigma, shape):
    side = float(max(shape))
    sigma_min = positive(sigma_min, "sigma_min", unit="px", high=side)
    sigma_max = positive(sigma_max, "sigma_max", unit="px", high=side)
    if sigma_max < sigma_min:
        raise ValueError(f"sigma_max ({sigma_max:g} px) must be at least sigma_min ({sigma_min:g} px).")
    num_sigma = integer(num_sigma, "num_sigma", low=1, high=32)
    return sigma_min, sigma_max, num_sigma


class FeatureCache:
    """Keeps the pixel features of the tiles of one image, so that predicting after training, and
    retraining while the user paints (as in ilastik), do not compute them again.

    Tied to one image object and one set of feature options; anything else resets it. Holds at most
    ``max_bytes`` of features (tiles beyond that are computed each time).
    """

    def __init__(self, max_bytes: float = 1.5e9):
        self.max_bytes = float(max_bytes)
        self.clear()

    def clear(self) -> None:
        self.image = None
        self.options = None
        self.tiles: dict = {}
        self.nbytes = 0

    def get(self, image, options: dict, key, compute):
        if image is not self.image or options != self.options:
            self.clear()
            self.image, self.options = image, dict(options)
        k = tuple((s.start, s.stop) for s in key)
        if k in self.tiles:
            return self.tiles[k]
        f = compute()
        if self.nbytes + f.nbytes <= self.max_bytes:
            self.tiles[k] = f
            self.nbytes += f.nbytes
        return f


_MODEL_FORMAT = "napari-cryomat pixel classifier"
_TRUSTED_TYPES = ("sklearn.tree._tree.Tree",)


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


@dataclass
class PixelClassifier:
    """A random forest over multiscale pixel features, trained from scribbles.

    Build it with :func:`train_pixel_classifier`; apply it with :meth:`predict`.
    """

    forest: object
    classes: np.ndarray
    ndim: int
    offset: float
    scale: float
    feature_options: dict = field(default_factory=dict)
    n_training_pixels: int = 0
    cache: FeatureCache | None = field(default=None, repr=False)

    @property
    def margin(self) -> int:
        """Extra pixels read around each tile so that features at the tile edge are exact enough."""
        return int(math.ceil(4 * self.feature_options.get("sigma_max", 8.0)))

    def _features(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block)
        if np.iscomplexobj(block):
            raise ValueError("The image holds complex numbers; take the modulus or phase first.")
        block = block.astype(np.float32)
        if not np.all(np.isfinite(block)):
            raise ValueError(
                "The image contains NaN or inf pixels; replace them (e.g. with the median) before training "
                "or predicting: the classifier cannot learn from them."
            )
        return pixel_features((block - self.offset) / self.scale, **self.feature_options)

    def _tile_features(self, image, core, padded, inner) -> np.ndarray:
        def compute():
            return np.ascontiguousarray(self._features(np.asarray(image[padded]))[inner])

        if self.cache is None:
            return compute()
        opts = dict(self.feature_options, offset=self.offset, scale=self.scale, margin=self.margin)
        return self.cache.get(image, opts, core, compute)

    def save(self, path) -> str:
        """Write the classifier to ``path`` (``.skops``, scikit-learn's safe format: no pickle, loading
        runs no code). Returns the path written. The pixel-feature version is stored with it, so a file
        from a version that computes other features is refused at :meth:`load` instead of misleading."""
        import skops.io as sio

        from napari_cryomat import __version__

        if self.forest is None:
            raise ValueError("This classifier is not trained yet: train it before saving it.")
        target = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise ValueError(f"Cannot write the classifier to '{target}': the folder does not exist or is read-only.")
        state = dict(format=_MODEL_FORMAT, features_version=FEATURES_VERSION, napari_cryomat=str(__version__),
                     sklearn=_sklearn_version(), forest=self.forest, classes=np.asarray(self.classes, np.int64),
                     ndim=int(self.ndim), offset=float(self.offset), scale=float(self.scale),
                     feature_options=dict(self.feature_options), n_training_pixels=int(self.n_training_pixels))
        sio.dump(state, target)
        return target

    @classmethod
    def load(cls, path) -> PixelClassifier:
        """Read a classifier written by :meth:`save`. Only scikit-learn's tree types are trusted; a
        file of another kind, or from a napari-cryomat whose pixel features differ, raises ValueError
        saying what to do."""
        import skops.io as sio

        target = regular_file(path, "path")
        try:
            untrusted = sio.get_untrusted_types(file=target)
        except Exception as exc:  # noqa: BLE001 - a zip that is not a skops file, a text file...
            raise ValueError(f"'{target}' is not a saved pixel classifier (.skops): {exc}") from None
        unexpected = [t for t in untrusted if t not in _TRUSTED_TYPES]
        if unexpected:
            raise ValueError(f"'{target}' holds types a pixel classifier never holds ({', '.join(unexpected)}); "
                             "it was not written by napari-cryomat and is not loaded.")
        try:
            state = sio.load(target, trusted=list(untrusted))
        except Exception as exc:  # noqa: BLE001 - damaged archive
            raise ValueError(f"'{target}' could not be read as a pixel classifier: {exc}") from None
        if not isinstance(state, dict) or state.get("format") != _MODEL_FORMAT:
            raise ValueError(f"'{target}' is a scikit-learn file but not a napari-cryomat pixel classifier.")
        if state.get("features_version") != FEATURES_VERSION:
            raise ValueError(
                f"'{target}' was trained with napari-cryomat {state.get('napari_cryomat', '?')} on pixel features "
                f"version {state.get('features_version')}; this version computes features version "
                f"{FEATURES_VERSION}, which the forest would misread. Retrain it on your scribbles "
                "(the annotation is autosaved) and save it again."
            )
        return cls(forest=state["forest"], classes=np.asarray(state["classes"], np.int64), ndim=int(state["ndim"]),
                   offset=float(state["offset"]), scale=float(state["scale"]),
                   feature_options=dict(state["feature_options"]),
                   n_training_pixels=int(state["n_training_pixels"]), cache=FeatureCache())

    def predict(self, image, *, tile_size: int | None = None, return_probability: bool = False,
                out: np.ndarray | None = None, progress: ProgressCallback = None):
        """Classify every pixel of ``image``, tile by tile.

        Parameters
        ----------
        image : array (Y, X) or (Z, Y, X)
            Numpy, memory-mapped or dask array; only one tile is in memory at a time.
        tile_size : int, optional
            Tile edge in pixels; default 1024 for images, 96 for volumes.
        return_probability : bool
            Also return the probability of the winning class (float32).
        out : ndarray, optional
            Where to write the class map (e.g. a ``numpy.memmap`` for volumes larger than memory).
        progress : callable, optional

        Returns
        -------
        classes : ndarray, same shape as ``image``
            The scribble value of the winning class at each pixel.
        probability : ndarray of float32, optional
        """
        shape = tuple(np.shape(image))
        if len(shape) != self.ndim:
            raise ValueError(f"This classifier was trained on {self.ndim}D data; the image is {len(shape)}D.")
        if 0 in shape:
            raise ValueError(f"The image is empty (shape {shape}).")
        tile_size = integer(tile_size, "tile_size", low=16, high=1 << 16, allow_none=True)
        tile = tile_size or (1024 if self.ndim == 2 else 96)
        dtype = np.uint8 if self.classes.max() < 256 else np.int32
        if out is None:
            _check_memory(shape, np.dtype(dtype).itemsize * (5 if return_probability else 1))
            out = np.zeros(shape, dtype=dtype)
        elif tuple(out.shape) != shape:
            raise ValueError("'out' must have the shape of the image.")
        prob = np.zeros(shape, dtype=np.float32) if return_probability else None
        tiles = list(iter_tiles(shape, tile, self.margin))
        report(progress, 0.0)
        for k, (core, padded, inner) in enumerate(tiles):
            feats = self._tile_features(image, core, padded, inner)
            flat = feats.reshape(-1, feats.shape[-1])
            p = self.forest.predict_proba(flat)
            best = np.argmax(p, axis=1)
            out[core] = self.classes[best].reshape(feats.shape[:-1])
            if prob is not None:
                prob[core] = p[np.arange(len(best)), best].reshape(feats.shape[:-1])
            report(progress, (k + 1) / len(tiles))
        return (out, prob) if return_probability else out


def _check_memory(shape, bytes_per_pixel: int) -> None:
    need = int(np.prod(shape, dtype=np.int64)) * bytes_per_pixel
    from napari_cryomat.core._validate import memory_budget

    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    avail = min(avail, 2 * memory_budget())  # an address-space limit (ulimit -v) counts too
    if need > 0.8 * avail:
        raise ValueError(
            f"The prediction for this image needs {need / 2**30:.1f} GiB but only {avail / 2**30:.1f} GiB is free: "
            "pass out=numpy.memmap(...) to write the prediction to disk tile by tile, "
            "or crop / bin the volume first."
        )


def train_pixel_classifier(
    image,
    scribbles,
    *,
    sigma_min: float = 1.0,
    sigma_max: float = 8.0,
    num_sigma: int = 3,
    intensity: bool = True,
    edges: bool = False,
    texture: bool = True,
    n_estimators: int = 10,
    max_depth: int | None = 12,
    max_samples_per_class: int = 5000,
    tile_size: int | None = None,
    random_state: int = 0,
    cache: FeatureCache | None = None,
    progress: ProgressCallback = None,
) -> PixelClassifier:
    """Train a random forest pixel classifier from scribbles (as in ilastik).

    Parameters
    ----------
    image : array (Y, X) or (Z, Y, X)
    scribbles : int array, same shape
        0 where nothing is painted, the class number (1, 2, ...) where the user painted.
    sigma_min, sigma_max : float
        Smallest and largest feature scale, in pixels.
    num_sigma : int
        Number of scales between them (log-spaced).
    intensity, edges, texture : bool
        Which feature families to use (smoothed intensity, gradient magnitude, Hessian eigenvalues);
        by default intensity and Hessian, as in scikit-image's trainable-segmentation gallery.
    n_estimators, max_depth : int
        Size of the forest (scikit-learn ``RandomForestClassifier``). 10 trees of depth 12 on 9
        features classify as well as the gallery's 50 trees on 15 features (benchmarks/segment.py).
    max_samples_per_class : int
        Painted pixels kept per class (random, seeded subset, classes balanced): neighbouring painted
        pixels carry nearly the same features, so a few thousand per class are enough and train
        faster (and generalise no worse) than all of a long stroke.
    tile_size : int, optional
        Features are computed only on the tiles that contain scribbles, with the tiling that
        :meth:`PixelClassifier.predict` uses, so that training and prediction see the same features.
    random_state : int
        Seed of the forest and of the subsampling.
    cache : FeatureCache, optional
        Feature cache to use and to hand to the model (so that :meth:`PixelClassifier.predict` on
        the same image reuses the training tiles). Default: a new one; pass ``False`` for none.

    Returns
    -------
    PixelClassifier
    """
    from sklearn.ensemble import RandomForestClassifier

    shape = tuple(np.shape(image))
    if len(shape) not in (2, 3):
        raise ValueError(f"Expected an image (Y, X) or a volume (Z, Y, X); got {len(shape)} dimensions.")
    if min(shape) < 2:
        raise ValueError(f"The image must be at least 2 px along each axis; got shape {shape}.")
    if np.iscomplexobj(image):
        raise ValueError("The image holds complex numbers; take the modulus or phase first.")
    scr = labels_array(scribbles, "scribbles", copies=1)
    sigma_min, sigma_max, num_sigma = _check_sigmas(sigma_min, sigma_max, num_sigma, shape)
    n_estimators = integer(n_estimators, "n_estimators", low=1, high=10_000)
    max_depth = integer(max_depth, "max_depth", low=1, high=1000, allow_none=True)
    max_samples_per_class = integer(max_samples_per_class, "max_samples_per_class", low=1, high=100_000_000)
    tile_size = integer(tile_size, "tile_size", low=16, high=1 << 16, allow_none=True)
    random_state = integer(random_state, "random_state", low=0, high=2**32 - 1)
    if scr.shape != shape:
        raise ValueError(
            f"The scribbles have shape {scr.shape} but the image has shape {shape}: paint on a labels "
            "layer made for this image (Segmentation > New annotation)."
        )
    painted = np.unique(scr[scr > 0])
    if painted.size == 0:
        raise ValueError("The scribbles layer is empty: paint a few strokes of at least two classes first.")
    if painted.size == 1:
        raise ValueError(
            f"Only class {int(painted[0])} is painted: paint at least one stroke of another class "
            "(for example the background) so the classifier has something to tell apart."
        )
    opts = dict(sigma_min=float(sigma_min), sigma_max=float(sigma_max), num_sigma=int(num_sigma),
                intensity=intensity, edges=edges, texture=texture)
    # robust normalisation from a strided sample of the image
    step = max(1, int(round((np.prod(shape) / 1e6) ** (1 / len(shape)))))
    sample = np.asarray(image[tuple(slice(None, None, step) for _ in shape)], dtype=np.float32)
    if not np.all(np.isfinite(sample)):
        raise ValueError(
            "The image contains NaN or inf pixels; replace them (e.g. with the median) before training: "
            "the classifier cannot learn from them."
        )
    lo, hi = np.percentile(sample, [1, 99])
    offset, scale = float(np.median(sample)), float(max(hi - lo, 1e-6))
    if cache is None:
        cache = FeatureCache()
    model = PixelClassifier(forest=None, classes=painted.astype(np.int64), ndim=len(shape),
                            offset=offset, scale=scale, feature_options=opts, cache=cache or None)
    tile = tile_size or (1024 if len(shape) == 2 else 96)
    rng = np.random.default_rng(random_state)
    xs, ys = [], []
    tiles = [t for t in iter_tiles(shape, tile, model.margin) if np.any(scr[t[0]] > 0)]
    report(progress, 0.0)
    for k, (core, padded, inner) in enumerate(tiles):
        s = scr[core]
        sel = s > 0
        feats = model._tile_features(image, core, padded, inner)
        xs.append(feats[sel])
        ys.append(s[sel])
        report(progress, 0.7 * (k + 1) / len(tiles))
    X = np.concatenate(xs)
    y = np.concatenate(ys)
    keep = []
    for c in painted:
        idx = np.flatnonzero(y == c)
        if idx.size > max_samples_per_class:
            idx = rng.choice(idx, max_samples_per_class, replace=False)
        keep.append(idx)
    keep = np.concatenate(keep)
    forest = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, n_jobs=-1,
                                    random_state=random_state, class_weight="balanced")
    forest.fit(X[keep], y[keep])
    model.forest = forest
    model.classes = forest.classes_.astype(np.int64)
    model.n_training_pixels = int(keep.size)
    report(progress, 1.0)
    return model


