"""TIFF stacks, opened lazily with tifffile.

Uncompressed, contiguous files are memory-mapped (``tifffile.memmap``); anything else becomes a
dask array that reads one page when a slice needs it. A voxel size written by this plugin
(JSON description ``voxel_size_angstrom``) or by ImageJ (``spacing``/``unit`` and the resolution
tags) becomes the layer scale in Å.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_cryomat.io.mrc import strided_contrast_limits

_UNIT_TO_ANGSTROM = {"angstrom": 1.0, "å": 1.0, "a": 1.0, "nm": 10.0, "nanometer": 10.0,
                     "micron": 1e4, "um": 1e4, "µm": 1e4, "\\u00b5m": 1e4, "mm": 1e7}


class TIFFError(ValueError):
    """A file that cannot be opened as TIFF; the message names the file and what is wrong."""


def read_tiff(path: str | os.PathLike) -> list[tuple]:
    """Open a TIFF (stack) lazily as LayerData; ``kwargs['scale']`` is Å per voxel when known.

    Labels saved by this plugin (``labels`` flag in the description) open as a labels layer.
    """
    import tifffile

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise TIFFError(f"{path.name}: the file is missing or empty.")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, dtype = tuple(series.shape), series.dtype
            meta = tif.shaped_metadata[0] if tif.shaped_metadata else {}
            imagej = tif.imagej_metadata or {}
            page0 = tif.pages[0]
            res = page0.tags.get("XResolution")
            n_pages = len(series.pages)
    except Exception as exc:
        raise TIFFError(f"{path.name}: not a readable TIFF ({exc}).") from exc

    data = _lazy_array(path, shape, dtype, n_pages)
    ndim = len(shape)
    voxel = _voxel_size(meta, imagej, res, ndim)
    kwargs = {"name": path.stem, "metadata": {"tiff": {"path": str(path)}}}
    if voxel is not None:
        kwargs["scale"] = voxel
        kwargs["units"] = ("angstrom",) * ndim
    if meta.get("labels"):
        return [(data, kwargs, "labels")]
    kwargs["contrast_limits"] = strided_contrast_limits(data)
    return [(data, kwargs, "image")]


def _lazy_array(path: Path, shape, dtype, n_pages):
    import tifffile

    try:
        return tifffile.memmap(str(path), mode="r")
    except Exception:
        pass  # compressed or tiled: read page by page instead
    import dask
    import dask.array as da

    page_shape = shape[-2:]
    if int(np.prod(shape[:-2] or (1,))) != n_pages:
        # not one page per plane (e.g. RGB or tiled pyramid): fall back to reading the series
        return da.from_delayed(dask.delayed(tifffile.imread)(str(path)), shape=shape, dtype=dtype)

    def read_page(i):
        with tifffile.TiffFile(path) as tif:
            return tif.series[0].pages[i].asarray()

    planes = [da.from_delayed(dask.delayed(read_page)(i), shape=page_shape, dtype=dtype)
              for i in range(n_pages)]
    stack = da.stack(planes) if len(planes) > 1 else planes[0][None]
    return stack.reshape(shape)


def _voxel_size(meta: dict, imagej: dict, xres, ndim: int):
    if "voxel_size_angstrom" in meta:
        vs = [float(v) for v in meta["voxel_size_angstrom"]]
        return tuple(([1.0] * ndim + vs)[-ndim:])
    unit = str(imagej.get("unit", "")).lower()
    factor = _UNIT_TO_ANGSTROM.get(unit)
    if factor is None or xres is None:
        return None
    num, den = xres.value
    if not num:
        return None
    pixel = den / num * factor
    z = float(imagej.get("spacing", 1.0)) * factor
    return tuple(([z] * max(0, ndim - 2) + [pixel, pixel])[-ndim:])


def napari_get_reader(path):
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return napari_read_tiff if str(path).lower().endswith((".tif", ".tiff")) else None


def napari_read_tiff(path):
    if isinstance(path, list):
        path = path[0]
    try:
        return read_tiff(path)
    except TIFFError as err:
        from napari.utils.notifications import show_error

        show_error(str(err))
        return [(None,)]
