"""Helpers shared by :mod:`napari_cryomat.core.segment` and its private engines: image checks and tiles."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np

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
