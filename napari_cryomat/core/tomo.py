"""Tomogram browsing: slabs, binning, display contrast, low-pass and distances.

Pure functions over ``(Z, Y, X)`` volumes that may be numpy arrays, ``numpy.memmap`` views of an
MRC file or dask arrays. Nothing here reads a whole volume: a slab reads only its slices, the
binned pyramid is lazy (dask) and contrast comes from a strided subsample.

Conventions
-----------
* Voxel indices are 0-based, with the centre of voxel ``i`` at index ``i``.
* Lengths are in angstrom (Å); ``voxel_size`` is ``(z, y, x)`` Å per voxel.
* A slab of ``n`` slices centred on slice ``i`` covers ``i - (n - 1) // 2 .. i + n // 2``
  (inclusive), clipped to the volume; this is also how the browser sets napari's thick slicing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import (
    check_memory,
    integer,
    nonnegative,
    number,
    positive,
    vector,
)
from napari_cryomat.core._validate import window as _window

__all__ = [
    "slab_bounds",
    "slices_from_angstrom",
    "slab_mean",
    "orthoslice",
    "bin_image",
    "bin_volume",
    "binned_pyramid",
    "binned_scale_translate",
    "release_pages",
    "compute_slices",
    "percentile_contrast",
    "slab_contrast",
    "gaussian_lowpass",
    "lowpass_slices",
    "distance_angstrom",
]


def _as_voxel_size(voxel_size, ndim: int = 3, name: str = "voxel_size") -> np.ndarray:
    raw = np.asarray(voxel_size)
    if raw.dtype == object or np.iscomplexobj(raw) or not np.issubdtype(raw.dtype, np.number) \
            or raw.ndim > 1 or (raw.ndim == 1 and raw.size not in (1, ndim)):
        raise ValueError(f"Voxel size ({name}) must be one positive number (Å) or {ndim}; got {voxel_size!r}.")
    vs = np.broadcast_to(raw.astype(float).reshape(-1)[:ndim] if raw.ndim else raw.astype(float), (ndim,)).copy()
    if not np.all(np.isfinite(vs)) or np.any(vs <= 0) or np.any(vs > 1e9):
        raise ValueError(f"Voxel size ({name}) must be positive and finite (Å, at most 1e9), got {tuple(vs.tolist())}.")
    return vs


def _finite_mean(part: np.ndarray, axis) -> np.ndarray:
    """Mean over ``axis`` of the finite values only (NaN where there is none): a few NaN voxels
    (masked reconstructions) must not blank out whole rows of a slab."""
    finite = np.isfinite(part)
    if finite.all():
        return part.mean(axis=axis, dtype=np.float32)
    total = np.where(finite, part, np.float32(0)).sum(axis=axis, dtype=np.float32)
    count = finite.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.float32(np.nan)).astype(np.float32)


def slab_bounds(index: int, thickness: int, size: int) -> tuple[int, int]:
    """Slice range ``[start, stop)`` of a slab of ``thickness`` slices centred on ``index``.

    Parameters
    ----------
    index : int
        Central slice (0-based). Clipped to ``[0, size - 1]``.
    thickness : int
        Number of slices, >= 1.
    size : int
        Length of the axis.

    Returns
    -------
    start, stop : int
        ``index - (thickness - 1) // 2`` and ``index + thickness // 2 + 1``, clipped to the axis.
    """
    size = integer(size, "size")
    if size < 1:
        raise ValueError(f"The volume is empty along the slab axis (size = {size}).")
    thickness = integer(thickness, "thickness", low=1)
    index = number(index, "index")
    index = int(min(max(int(round(index)), 0), size - 1))
    start = max(index - (thickness - 1) // 2, 0)
    stop = min(index + thickness // 2 + 1, size)
    return start, stop


def slices_from_angstrom(thickness_A: float, voxel_size_A: float) -> int:
    """Number of slices closest to a slab thickness in Å (at least 1).

    Parameters
    ----------
    thickness_A : float
        Slab thickness in Å.
    voxel_size_A : float
        Voxel size along the slab axis in Å.
    """
    voxel_size_A = positive(voxel_size_A, "voxel_size_A", unit="Å", label="Voxel size")
    thickness_A = nonnegative(thickness_A, "thickness_A", unit="Å", label="Slab thickness")
    n = thickness_A / voxel_size_A
    if n > 1e9:
        raise ValueError(f"Slab thickness (thickness_A) of {thickness_A:g} Å is more than 1e9 slices of {voxel_size_A:g} Å.")
    return max(1, int(round(n)))


def _check_volume(volume, name: str = "volume") -> None:
    if getattr(volume, "ndim", 0) != 3:
        raise ValueError(
            f"Needs a 3D volume (Z, Y, X) as {name}; got {getattr(volume, 'ndim', 0)} dimension(s). "
            "Choose a tomogram layer."
        )
    if 0 in volume.shape:
        raise ValueError(f"The volume ({name}) is empty: shape {tuple(volume.shape)}.")
    dtype = np.dtype(getattr(volume, "dtype", np.float32))
    if dtype.kind == "c" or not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise ValueError(f"The volume ({name}) must hold real numbers; got dtype {dtype}.")


def _check_axis(axis) -> int:
    return integer(axis, "axis", low=0, high=2)


def slab_mean(
    volume,
    index: int,
    *,
    thickness: int = 1,
    axis: int = 0,
    step: int = 1,
    progress: ProgressCallback = None,
) -> np.ndarray:
    """Mean over a slab of ``thickness`` slices along ``axis``, reading only that slab.

    Parameters
    ----------
    volume : array-like, shape (Z, Y, X)
        numpy array, ``numpy.memmap`` or dask array. Only the slab (and, with ``step`` > 1,
        only every ``step``-th voxel of it along the two in-plane axes) is read.
    index : int
        Central slice along ``axis`` (0-based voxel index).
    thickness : int
        Number of slices averaged (>= 1), see :func:`slab_bounds`.
    axis : {0, 1, 2}
        0 gives an XY slab (shape (Y, X)), 1 an XZ slab (shape (Z, X)), 2 a YZ slab
        (shape (Z, Y)): the remaining axes keep their order.
    step : int
        Subsampling stride of the two in-plane axes (1 = every voxel). On a memory-mapped file
        an XZ or YZ slab touches about ``1 / step**2`` of the pages it would otherwise.
    progress : callable, optional
        Called with the fraction read, after each slice (XY) or block of Z sections (XZ, YZ);
        raising from it (e.g. :class:`~napari_cryomat.core._progress.Cancelled`) stops the read.

    Returns
    -------
    ndarray, float32, 2D

    Notes
    -----
    XZ/YZ slabs of a ``numpy.memmap`` release the pages they touched after each block of Z
    sections (:func:`release_pages`): the data stay in the OS page cache, but the process's
    resident memory does not grow to the size of the file.
    """
    _check_volume(volume)
    axis = _check_axis(axis)
    step = integer(step, "step", low=1)
    start, stop = slab_bounds(index, thickness, volume.shape[axis])
    plane = [s for a, s in enumerate(volume.shape) if a != axis]
    check_memory(4.0 * 4 * (-(-plane[0] // step)) * (-(-plane[1] // step)), "volume", "one slab")
    n = stop - start
    if axis == 0:
        acc = cnt = None
        for k, i in enumerate(range(start, stop)):
            plane = np.asarray(volume[i, ::step, ::step], dtype=np.float32)
            finite = np.isfinite(plane)
            if not finite.all():  # NaN/inf voxels count as missing, not as poison
                plane = np.where(finite, plane, np.float32(0))
                if cnt is None:
                    cnt = np.full(plane.shape, k, np.int32)
            if acc is None:
                acc = plane.copy()
            else:
                acc += plane
            if cnt is not None:
                cnt += finite
            report(progress, (k + 1) / n)
        if cnt is None:
            acc /= np.float32(n)
            return acc
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(cnt > 0, acc / np.maximum(cnt, 1), np.float32(np.nan)).astype(np.float32)
    # XZ / YZ: read blocks of Z sections so that the read can report progress and be stopped.
    zs = np.arange(0, volume.shape[0], step)
    other = volume.shape[3 - axis]  # the in-plane axis that is not Z
    out = np.empty((zs.size, len(range(0, other, step))), dtype=np.float32)
    block = 16
    for b0 in range(0, zs.size, block):
        b1 = min(b0 + block, zs.size)
        key = [slice(int(zs[b0]), int(zs[b1 - 1]) + 1, step), slice(None, None, step), slice(None, None, step)]
        key[axis] = slice(start, stop)
        part = np.asarray(volume[tuple(key)], dtype=np.float32)
        out[b0:b1] = _finite_mean(part, axis)
        # A YZ slab touches every page of a memory-mapped file: hand them back block by block so
        # that resident memory stays at one block, not the whole file (no-op for other arrays).
        release_pages(volume)
        report(progress, b1 / zs.size)
    return out


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean-bin a 2D image by ``factor`` in both axes (edges that do not fill a bin are dropped).

    Returns float32 of shape ``(ny // factor, nx // factor)``.
    """
    raw = np.asarray(image)
    if raw.ndim != 2 or 0 in raw.shape:
        raise ValueError(f"bin_image needs a 2D image (Y, X); got shape {raw.shape}.")
    if np.iscomplexobj(raw) or not (np.issubdtype(raw.dtype, np.number) or raw.dtype == np.bool_):
        raise ValueError(f"The image must hold real numbers; got dtype {raw.dtype}.")
    check_memory(raw.size * 4.0 * 3, "image", f"binning {raw.shape}")
    image = raw.astype(np.float32, copy=False)
    factor = integer(factor, "factor", low=1)
    if factor == 1:
        return image
    ny, nx = (s // factor for s in image.shape)
    if ny == 0 or nx == 0:
        raise ValueError(f"The image ({image.shape}) is smaller than one {factor}x bin (factor).")
    trimmed = image[: ny * factor, : nx * factor]
    return _finite_mean(trimmed.reshape(ny, factor, nx, factor), (1, 3))


def orthoslice(
    volume,
    index: int,
    *,
    axis: int,
    thickness: int = 1,
    binning: int = 1,
    step: int = 1,
    progress: ProgressCallback = None,
) -> np.ndarray:
    """Slab mean along ``axis``, mean-binned in-plane, as shown by an orthogonal view.

    With ``binning`` = f the slab is aligned to the bin containing ``index`` and is at least f
    slices thick, so the result equals the corresponding slice of ``bin_volume(volume, f)``
    (when ``thickness`` <= f). Reads only the slab.

    Parameters
    ----------
    volume : array-like, shape (Z, Y, X)
    index : int
        Slice (0-based, unbinned voxel index) along ``axis``.
    axis : {0, 1, 2}
        0: XY view, 1: XZ view, 2: YZ view.
    thickness : int
        Slab thickness in unbinned slices.
    binning : int
        Bin factor (1, 2, 4, 8...).
    step : int
        Preview stride (power of 2): read only every ``step``-th voxel in-plane, then bin by
        ``binning // step``. The pixel size of the result is ``max(binning, step)`` voxels and
        the centre of its first pixel lies at unbinned index ``(max(binning, step) - step) / 2``.
        On a memory-mapped file a YZ view (which touches every page at step 1) then reads about
        ``1 / step**2`` of the file.
    progress : callable, optional
        Passed to :func:`slab_mean`.

    Returns
    -------
    ndarray, float32, 2D (remaining axes in order, binned).
    """
    _check_volume(volume)
    axis = _check_axis(axis)
    f = integer(binning, "binning", low=1)
    step = integer(step, "step", low=1)
    thickness = integer(thickness, "thickness", low=1)
    index = number(index, "index")
    size = volume.shape[axis]
    nb = size // f
    if nb == 0:
        raise ValueError(f"The volume ({volume.shape}) is smaller than one {f}x bin (binning).")
    b = min(int(index) // f, nb - 1)
    nbins = max(1, int(math.ceil(int(thickness) / f)))
    if f == 1:
        start, stop = slab_bounds(index, thickness, size)
    else:
        bstart, bstop = slab_bounds(b, nbins, nb)
        start, stop = bstart * f, bstop * f
    # A slab of (stop - start) slices whose centre gives exactly [start, stop).
    n = stop - start
    centre = start + (n - 1) // 2
    img = slab_mean(volume, centre, thickness=n, axis=axis, step=step, progress=progress)
    if f > step:
        img = bin_image(img, f // step)
    return img


def release_pages(volume) -> bool:
    """Let go of the pages of a memory-mapped volume that this process has touched.

    Reading a memory map leaves every page it touched counted in the process's resident memory
    (RSS) until the OS needs it back. This calls ``madvise(MADV_DONTNEED)`` on the underlying
    map (Linux): the data stay in the OS page cache, later reads fault them back in for free.
    Returns True if a map was found and released; a no-op for arrays that are not memory maps.
    """
    import mmap

    a = volume
    for _ in range(16):  # follow views (flips, slices) down to the np.memmap that owns the map
        if a is None:
            break
        mm = getattr(a, "_mmap", None)
        if isinstance(mm, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            try:
                mm.madvise(mmap.MADV_DONTNEED)
                return True
            except (ValueError, OSError):
                return False
        a = getattr(a, "base", None)
    return False


class _Sliceable:
    """Minimal array-like around a numpy/memmap volume for ``dask.array.from_array``.

    ``from_array`` copies anything that has a ``copy`` method and embeds numpy arrays in the
    graph, which for a memory-mapped tomogram means reading the whole file. This wrapper only
    exposes ``shape``, ``dtype``, ``ndim`` and slicing, so each chunk is read when computed.
    """

    def __init__(self, array):
        self._array = array
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        return np.asarray(self._array[key])


def lazy_dask(volume, chunks):
    """dask view of a numpy/memmap/dask volume that reads only the chunks it computes."""
    import dask.array as da

    if isinstance(volume, da.Array):
        return volume.rechunk(chunks)
    return da.from_array(
        _Sliceable(volume),
        chunks=chunks,
        asarray=False,
        lock=False,
        name=False,  # no content hash: tokenizing would read the whole volume
        meta=np.empty((0,) * volume.ndim, dtype=volume.dtype),
    )


def bin_volume(volume, factor: int):
    """Lazy mean-binning of a (Z, Y, X) volume by ``factor`` in all three axes.

    Parameters
    ----------
    volume : array-like, shape (Z, Y, X)
        numpy, memmap or dask. Edges that do not fill a bin are dropped (as IMOD's
        ``binvol`` does with ``-bin``).
    factor : int
        1 returns ``volume`` itself (no copy).

    Returns
    -------
    dask.array.Array, float32, shape ``(Z // f, Y // f, X // f)``, one output slice per chunk,
    so displaying slice ``k`` reads only source slices ``k*f .. k*f + f - 1``.
    """
    _check_volume(volume)
    f = integer(factor, "factor", low=1, label="Binning")
    if f == 1:
        return volume
    shape = tuple(s // f for s in volume.shape)
    if 0 in shape:
        raise ValueError(
            f"The volume {tuple(volume.shape)} is smaller than one {f}x bin in some axis: factor must be at most "
            f"{min(volume.shape)}."
        )
    trimmed_shape = tuple(s * f for s in shape)
    # each output slice reads f source slices: that much must fit (checked now, not at display time)
    check_memory(4.0 * 4 * f * trimmed_shape[1] * trimmed_shape[2], "volume", f"one {f}x binned slice")
    src = lazy_dask(volume[tuple(slice(0, s) for s in trimmed_shape)], (f, trimmed_shape[1], trimmed_shape[2]))

    def _bin_block(block):
        b = np.asarray(block, dtype=np.float32)
        nz, ny, nx = (s // f for s in b.shape)
        return _finite_mean(b.reshape(nz, f, ny, f, nx, f), (1, 3, 5))

    return src.map_blocks(
        _bin_block,
        dtype=np.float32,
        chunks=tuple(tuple(c // f for c in cs) for cs in src.chunks),
    )


def binned_pyramid(volume, *, factors: Sequence[int] = (1, 2, 4, 8)) -> list:
    """Lazy multiscale pyramid: one mean-binned version of ``volume`` per factor.

    Factors that would make an axis empty are skipped. Level ``factor == 1`` is ``volume``
    itself. Nothing is computed until a level is sliced.

    Returns
    -------
    list of (factor, array) pairs, in the order of ``factors``.
    """
    _check_volume(volume)
    try:
        factors = [integer(f, "factors", low=1) for f in factors]
    except TypeError:
        raise ValueError(f"factors must be a sequence of integers >= 1; got {factors!r}.") from None
    out = []
    for f in factors:
        if min(volume.shape) // f == 0:
            continue
        out.append((f, bin_volume(volume, f)))
    return out


def binned_scale_translate(scale, translate, factor: int) -> tuple[tuple, tuple]:
    """napari ``scale`` and ``translate`` (Å) of a volume binned by ``factor``.

    The centre of binned voxel 0 lies at the mean of unbinned voxels ``0 .. f - 1``, i.e. at
    unbinned index ``(f - 1) / 2``, so world (Å) coordinates of both layers agree.
    """
    scale = vector(scale, "scale", length=range(1, 65), all_positive=True, high=1e12)
    translate = vector(translate, "translate", length=range(1, 65), high=1e15)
    if translate.size != scale.size:
        raise ValueError(f"scale and translate must have the same length; got {scale.size} and {translate.size}.")
    f = integer(factor, "factor", low=1, high=1 << 20)
    return tuple(scale * f), tuple(translate + scale * (f - 1) / 2.0)


def compute_slices(array, *, progress: ProgressCallback = None) -> np.ndarray:
    """Evaluate a lazy (Z, Y, X) array (dask, memmap) into a float32 numpy array, one Z section
    at a time, reporting progress after each so that a GUI can show it and cancel.

    Used to hand napari's 3D rendering a binned volume in memory instead of a lazy one that it
    would compute in the GUI thread.
    """
    _check_volume(array, "array")
    check_memory(float(np.prod(array.shape)) * 4, "array", f"the volume {tuple(array.shape)} in memory")
    out = np.empty(array.shape, dtype=np.float32)
    nz = array.shape[0]
    for z in range(nz):
        out[z] = np.asarray(array[z], dtype=np.float32)
        report(progress, (z + 1) / nz)
    release_pages(array)
    return out


def percentile_contrast(
    data,
    *,
    percentiles: tuple[float, float] = (0.5, 99.5),
    max_samples: int = 1 << 18,
) -> tuple[float, float]:
    """Display limits from percentiles of a strided subsample of ``data``.

    Parameters
    ----------
    data : array-like, any dimension
        Only about ``max_samples`` voxels are read, on a regular stride.
    percentiles : (low, high)
        Percentiles in % (0..100), low < high.
    max_samples : int
        Upper bound on the number of voxels read.

    Returns
    -------
    (low, high) : float
        ``high > low`` always (a flat image gives ``value ± 0.5``). NaN/inf are ignored.
    """
    try:
        lo_p, hi_p = _window(percentiles, "percentiles", low=0.0, high=100.0, unit="%")
    except ValueError:
        raise ValueError(f"Percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}.") from None
    max_samples = integer(max_samples, "max_samples", low=1)
    dtype = np.dtype(getattr(data, "dtype", np.float32))
    if dtype.kind == "c" or not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise ValueError(f"Cannot compute contrast of data with dtype {dtype}: it must be real.")
    size = int(np.prod(data.shape))
    if size == 0:
        raise ValueError(f"Cannot compute contrast of empty data (shape {tuple(data.shape)}).")
    ndim = max(1, len(data.shape))
    stride = 1
    if size > max_samples:
        stride = int(math.ceil((size / max_samples) ** (1.0 / ndim)))
    sample = np.asarray(data[(slice(None, None, stride),) * ndim], dtype=np.float32).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        raise ValueError("The image has no finite values to set the contrast from.")
    lo, hi = np.percentile(sample, [lo_p, hi_p])
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        lo, hi = lo - 0.5, lo + 0.5
    return lo, hi


def slab_contrast(
    volume,
    index: int,
    *,
    thickness: int = 1,
    axis: int = 0,
    percentiles: tuple[float, float] = (0.5, 99.5),
    max_samples: int = 1 << 18,
) -> tuple[float, float]:
    """Percentile contrast of the visible slab, from a strided subsample of the slab only.

    The slab (see :func:`slab_mean`) is read every ``step``-th row and column, with the step
    chosen so that about ``max_samples`` pixels are averaged; then
    :func:`percentile_contrast` applies.
    """
    _check_volume(volume)
    axis = _check_axis(axis)
    max_samples = integer(max_samples, "max_samples", low=1)
    plane_shape = [s for a, s in enumerate(volume.shape) if a != axis]
    step = max(1, int(math.ceil(math.sqrt(plane_shape[0] * plane_shape[1] / max_samples))))
    slab = slab_mean(volume, index, thickness=thickness, axis=axis, step=step)
    return percentile_contrast(slab, percentiles=percentiles, max_samples=max_samples)


def gaussian_lowpass(image, *, sigma_A: float, pixel_size_A) -> np.ndarray:
    """Gaussian low-pass for display, with the width in Å.

    Parameters
    ----------
    image : array-like
        2D or 3D.
    sigma_A : float
        Standard deviation of the Gaussian in Å (0 returns the image as float32). The
        corresponding resolution cut-off (amplitude 1/e) is about ``2 * pi * sigma_A / sqrt(2)``.
    pixel_size_A : float or sequence of float
        Pixel size per axis in Å.

    Returns
    -------
    ndarray, float32, same shape.
    """
    raw = np.asarray(image)
    if raw.ndim not in (2, 3) or 0 in raw.shape:
        raise ValueError(f"The image to low-pass must be 2D or 3D; got shape {raw.shape}.")
    if np.iscomplexobj(raw) or not (np.issubdtype(raw.dtype, np.number) or raw.dtype == np.bool_):
        raise ValueError(f"The image to low-pass must hold real numbers; got dtype {raw.dtype}.")
    check_memory(raw.size * 4.0 * 4, "image", f"filtering {raw.shape}")
    image = raw.astype(np.float32, copy=False)
    sigma_A = _check_sigma(sigma_A, pixel_size_A, image.shape)
    if sigma_A == 0:
        return image
    px = _as_voxel_size(pixel_size_A, image.ndim, "pixel_size_A")
    finite = np.isfinite(image)
    if finite.all():
        return ndimage.gaussian_filter(image, sigma=sigma_A / px, mode="nearest").astype(np.float32, copy=False)
    # NaN/inf pixels are missing data: normalised convolution smooths around them
    num = ndimage.gaussian_filter(np.where(finite, image, np.float32(0)), sigma=sigma_A / px, mode="nearest")
    den = ndimage.gaussian_filter(finite.astype(np.float32), sigma=sigma_A / px, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-6, num / np.maximum(den, 1e-6), np.float32(np.nan)).astype(np.float32)


def _check_sigma(sigma_A, pixel_size_A, shape) -> float:
    sigma_A = nonnegative(sigma_A, "sigma_A", unit="Å", label="Low-pass sigma")
    px = _as_voxel_size(pixel_size_A, len(shape), "pixel_size_A")
    extent = float(np.max(np.asarray(shape[-px.size:]) * px))
    if sigma_A > extent:
        raise ValueError(
            f"Low-pass sigma (sigma_A) must be at most the image extent, {extent:g} Å; got {sigma_A!r}."
        )
    return sigma_A


def lowpass_slices(volume, *, sigma_A: float, pixel_size_A):
    """Lazy per-slice (XY) Gaussian low-pass of a (Z, Y, X) volume, for display.

    Each Z slice is filtered in 2D when napari asks for it, so browsing a huge volume stays
    fast. ``pixel_size_A`` is the in-plane ``(y, x)`` pixel size in Å.

    Returns
    -------
    dask.array.Array, float32, same shape, one slice per chunk.
    """
    _check_volume(volume)
    px = _as_voxel_size(pixel_size_A, 2, "pixel_size_A")
    sigma_A = _check_sigma(sigma_A, px, volume.shape[1:])  # checked now, not when napari asks for a slice
    check_memory(4.0 * 4 * volume.shape[1] * volume.shape[2], "volume", "filtering one slice")
    src = lazy_dask(volume, (1, volume.shape[1], volume.shape[2]))

    def _filter(block):
        b = np.asarray(block, dtype=np.float32)
        return np.stack([gaussian_lowpass(s, sigma_A=sigma_A, pixel_size_A=px) for s in b])

    return src.map_blocks(_filter, dtype=np.float32)


def distance_angstrom(p0, p1, *, voxel_size) -> float:
    """Euclidean distance in Å between two points given in voxel indices (z, y, x).

    Parameters
    ----------
    p0, p1 : sequence of float
        Points in voxel indices, same axis order as ``voxel_size``.
    voxel_size : float or sequence of float
        Å per voxel for each axis (anisotropic voxels are handled).
    """
    p0 = vector(p0, "p0", length=range(1, 65), high=1e12)
    p1 = vector(p1, "p1", length=range(1, 65), high=1e12)
    if p0.shape != p1.shape:
        raise ValueError(f"Both points need the same number of coordinates: p0 has {p0.size}, p1 has {p1.size}.")
    vs = _as_voxel_size(voxel_size, p0.size)
    return float(np.sqrt(np.sum(((p1 - p0) * vs) ** 2)))
