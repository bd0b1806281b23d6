"""Running a calibrated denoiser over a whole image or stack: eager in tiles, or lazily with dask.

A "part" is ``(method, strength, weight)``; the parts of a result are applied to every tile as
``sum(weight * unstabilise(method(stabilise(tile), strength)))``. Each method is local (see
:mod:`._denoise_methods`), so tiles padded by the largest margin give the same pixels as the whole
image: the eager path (:func:`._denoise_methods.apply_tiled`, a thread pool) and the lazy one
(``dask.array.map_overlap``, mirror boundary) agree to float rounding.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core import _validate as V
from napari_cryomat.core._denoise_methods import METHODS, apply_tiled, tile_margin
from napari_cryomat.core._denoise_noise import NoiseModel, stabilise, stripe_correction, stripe_ratio, unstabilise
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress

__all__ = ["apply_parts", "as_frames", "destripe_frame", "parse_destripe"]

#: stripe_ratio above which destripe="auto" acts (about 1 without stripes)
STRIPE_RATIO = 3.0


def _is_lazy(a) -> bool:
    return hasattr(a, "dask") or hasattr(a, "chunks") and not isinstance(a, np.ndarray)


def as_frames(image):
    """``image`` checked as a real (Y, X) or (T, Y, X) array; numpy data converted, dask kept lazy."""
    if _is_lazy(image):
        if image.ndim not in (2, 3):
            raise ValueError(f"image must be 2D (Y, X) or a (T, Y, X) stack; got shape {image.shape}.")
        if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
            raise ValueError(f"image must hold real numbers; got dtype {image.dtype}.")
        if min(image.shape[-2:]) < 8 or image.shape[0] == 0:
            raise ValueError(f"image must be at least 8 x 8 pixels; got shape {image.shape}.")
        V.check_memory(4 * 6 * int(np.prod(image.shape[-2:])), "image", "denoising one frame")
        return image
    arr = V.real_array(image, "image", ndim=(2, 3), min_size=1, dtype=None, finite=False, copies=6.0)
    if min(arr.shape[-2:]) < 8:
        raise ValueError(f"image must be at least 8 x 8 pixels; got shape {arr.shape}.")
    if arr.dtype == np.float16 or arr.dtype.kind in "iub":
        arr = arr.astype(np.float32)
    return arr


def parse_destripe(destripe, frame) -> tuple:
    """The axes to destripe: () | ("rows",) | ("columns",) | ("rows", "columns")."""
    if destripe is False or destripe is None:
        return ()
    if destripe is True or destripe == "rows":
        return ("rows",)
    if destripe == "columns":
        return ("columns",)
    if destripe == "both":
        return ("rows", "columns")
    return tuple(name for name, axis in (("rows", 0), ("columns", 1)) if stripe_ratio(frame, axis) > STRIPE_RATIO)


def destripe_frame(frame, axes: tuple):
    """``frame`` (numpy or dask, 2D) minus its row and/or column offsets."""
    out = frame.astype(np.float32)
    if "rows" in axes:
        out = out - stripe_correction(out, 0)[:, None]
    if "columns" in axes:
        out = out - stripe_correction(out, 1)[None, :]
    return out


def _tile_function(parts, noise: NoiseModel):
    def run(tile: np.ndarray) -> np.ndarray:
        v = stabilise(tile, noise)
        total = np.zeros(tile.shape, np.float32)
        for name, strength, weight in parts:
            total += np.float32(weight) * unstabilise(METHODS[name].run(v, strength), noise)
        return total
    return run


def _frame(frame: np.ndarray, parts, noise, axes, tile: int, progress: ProgressCallback = None) -> np.ndarray:
    frame = np.asarray(frame, np.float32)
    if not np.all(np.isfinite(frame)):
        raise ValueError("image contains NaN or inf values; replace them (e.g. with the median) or crop them away.")
    return apply_tiled(destripe_frame(frame, axes), _tile_function(parts, noise), tile_margin(parts), tile=tile,
                       progress=progress)


def apply_parts(image, frames, parts, noise: NoiseModel, axes: tuple, *, tile: int, lazy: bool | None,
                progress: ProgressCallback = None):
    """The denoised image or stack (numpy, or dask when ``lazy``; default: lazy iff the input is)."""
    lazy = _is_lazy(frames) if lazy is None else bool(lazy)
    if not lazy:
        if frames.ndim == 2:
            return _frame(frames, parts, noise, axes, tile, progress)
        V.check_memory(4.0 * np.prod(frames.shape), "image", "the denoised stack")
        out = np.empty(frames.shape, np.float32)
        for i in range(frames.shape[0]):
            out[i] = _frame(frames[i], parts, noise, axes, tile, sub_progress(progress, i / len(out),
                                                                                (i + 1) / len(out)))
        return out
    import dask.array as da

    arr = frames if _is_lazy(frames) else da.from_array(frames, chunks=(1,) * (frames.ndim - 2) + frames.shape[-2:])
    report(progress, 1.0)
    if arr.ndim == 3:
        arr = arr.rechunk((1,) + arr.shape[1:])
        return arr.map_blocks(lambda block: _frame(block[0], parts, noise, axes, tile, None)[None],
                              dtype=np.float32)
    margin = tile_margin(parts)
    size = max(tile, margin)
    arr = destripe_frame(arr, axes)
    if margin >= min(arr.shape):  # dask cannot mirror deeper than the array: one chunk, padded by numpy
        return arr.rechunk(arr.shape).map_blocks(
            lambda block: apply_tiled(block, _tile_function(parts, noise), margin, tile=tile), dtype=np.float32)
    arr = arr.rechunk((size, size))
    return da.map_overlap(_tile_function(parts, noise), arr, depth=margin, boundary="reflect", dtype=np.float32,
                          trim=True)
