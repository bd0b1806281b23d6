"""Overview levels for big 2D images: area means, so that a 4k micrograph looks binned, not aliased.

napari draws a large image by sampling the texture at the screen's pixels: a 3838 x 3710 micrograph
shown 650 pixels high keeps one pixel in six and shows their noise, not the particles (what
DigitalMicrograph, Velox and IMOD's 3dmod avoid by showing a binned overview). A napari multiscale
layer is given the image itself as level 0 and its area means (2x, 3x, 4x, ... bins) as the lower
levels; napari chooses the coarsest level that still has a pixel per screen pixel, and level 0 once
zoomed in. The levels are lazy (dask): opening reads only a sample for the contrast limits (a few MB),
and only the level on screen is ever computed, from the file's own pixels (level 0 is the memory map,
never a copy). The napari reader hooks apply it (:func:`with_overview`); ``read_mrc``/``read_tiff``
return one array for batch work and scripts.

Only 2D grey images of at least :data:`OVERVIEW_MIN_SIDE` pixels get levels: stacks and volumes keep
one array (the tomogram browser bins them its own way; a widget's frame loop wants a plain stack).
"""

from __future__ import annotations

import numpy as np

#: a 2D image with a side this long or longer opens as an overview pyramid
OVERVIEW_MIN_SIDE = 2048
#: the coarsest level's longer side is at least this (a 4k image: levels 1, 2, 3, 4, 5, 6, 8 x)
_SMALLEST_SIDE = 512
#: bin factors, about 1.25x apart: napari shows the coarsest level that still has a pixel per screen
#: pixel, so with powers of two alone a 4k image on a laptop's 650-pixel-high canvas would be drawn
#: from the 4x level (960 pixels, one in 1.5 sampled); with these, from the 5x level (768 pixels).
_FACTORS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64)
#: level-0 pixels per dask chunk side (rounded down to a whole number of bins for each level)
_CHUNK = 1536
#: the contrast limits of an overview are those of the level whose longer side is nearest this: the
#: level a laptop shows whole (the level-0 pixels' limits would leave the binned overview flat grey)
_CONTRAST_SIDE = 800
#: level-0 strips sampled for those limits: a few MB read, whatever the image size
_CONTRAST_STRIPS = 64


def wants_overview(data, *, rgb: bool = False) -> bool:
    """True for a 2D grey image big enough to alias when shown whole."""
    return not rgb and np.ndim(data) == 2 and max(np.shape(data)) >= OVERVIEW_MIN_SIDE


def overview_factors(shape) -> list[int]:
    """The bin factors of the lower levels of a 2D image of ``shape``."""
    longest = max(int(s) for s in shape)
    return [f for f in _FACTORS if -(-longest // f) >= _SMALLEST_SIDE]


def overview_pyramid(image) -> list:
    """``[image, mean of 2x2 bins, mean of 3x3 bins, ...]`` for a 2D ``image`` (numpy, memmap or dask).

    Level 0 is ``image`` itself. Level ``f`` has ``ceil(ny / f) x ceil(nx / f)`` float32 pixels, each
    the mean of the ``f x f`` image pixels it covers (fewer at the right and bottom edges, where the
    image does not fill a whole bin: the edge is kept, not dropped). Nothing is read until a level's
    pixels are computed; each level is computed from level 0 alone.
    """
    import dask.array as da

    from napari_cryomat.core.tomo import lazy_dask

    if np.ndim(image) != 2:
        raise ValueError(f"overview_pyramid takes a 2D image; got shape {tuple(np.shape(image))}.")
    ny, nx = (int(s) for s in np.shape(image))
    levels = [image]
    for f in overview_factors((ny, nx)):
        # chunks of whole bins: a multiple of f near _CHUNK, so each output chunk reads one input chunk
        side = max(f, (_CHUNK // f) * f)
        source = lazy_dask(image, (side, side)) if not isinstance(image, da.Array) else image.rechunk((side, side))
        out_chunks = tuple(tuple(-(-c // f) for c in axis_chunks) for axis_chunks in source.chunks)
        levels.append(source.map_blocks(area_means, f, dtype=np.float32, chunks=out_chunks,
                                        meta=np.empty((0, 0), np.float32)))
    return levels


def area_means(block: np.ndarray, f: int) -> np.ndarray:
    """Mean of each f x f bin of ``block`` (a partial bin at the edge: the mean of what it holds).

    Rows first, f at a time over contiguous memory, then columns on the f-times smaller result:
    about 4 ms for a 1536² chunk, six times faster than ``np.add.reduceat`` over both axes.
    """
    b = np.asarray(block)
    ny, nx = b.shape
    whole_y, whole_x = ny // f, nx // f
    out_y, out_x = -(-ny // f), -(-nx // f)
    rows = np.empty((out_y, nx), np.float64)
    rows[:whole_y] = b[:whole_y * f].reshape(whole_y, f, nx).sum(axis=1, dtype=np.float64)
    if out_y > whole_y:
        rows[-1] = b[whole_y * f:].sum(axis=0, dtype=np.float64)
    sums = np.empty((out_y, out_x), np.float64)
    sums[:, :whole_x] = rows[:, :whole_x * f].reshape(out_y, whole_x, f).sum(axis=2)
    if out_x > whole_x:
        sums[:, -1] = rows[:, whole_x * f:].sum(axis=1)
    count_y = np.minimum(f, ny - f * np.arange(out_y))
    count_x = np.minimum(f, nx - f * np.arange(out_x))
    return (sums / np.outer(count_y, count_x)).astype(np.float32)


def overview_contrast_limits(image, *, low: float = 0.5, high: float = 99.5) -> tuple[float, float] | None:
    """Percentile contrast limits of the overview level a laptop shows whole, from a sample.

    ``_CONTRAST_STRIPS`` evenly spaced strips ``f`` rows high are read from ``image`` and binned
    ``f x f`` (``f``: the factor of the level nearest ``_CONTRAST_SIDE`` pixels); the percentiles of
    those bin means are the limits. None if the image has no overview levels or no finite pixel.
    """
    factors = overview_factors(np.shape(image))
    if not factors:
        return None
    longest = max(np.shape(image))
    f = min(factors, key=lambda k: abs(longest / k - _CONTRAST_SIDE))
    ny, nx = np.shape(image)
    starts = np.unique(np.linspace(0, ny - f, min(_CONTRAST_STRIPS, ny // f)).round().astype(int))
    keep = (nx // f) * f
    means = [np.asarray(image[y:y + f, :keep], dtype=np.float32).reshape(f, keep // f, f).mean(axis=(0, 2))
             for y in starts]
    sample = np.concatenate(means)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return None
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    return (lo, hi) if hi > lo else None


def with_overview(layers: list) -> list:
    """napari LayerData tuples with every big 2D grey image made a multiscale overview.

    The napari reader hooks call this; the readers themselves (``read_mrc``, ``read_tiff``) return one
    array, which batch work and scripts take as it is. A layer with its own colour scale (a phase map's
    cyclic colormap and fixed limits) is left alone: the mean of wrapped phases is no overview.
    """
    out = []
    for item in layers:
        if len(item) == 3 and item[2] == "image" and "colormap" not in item[1] \
                and not item[1].get("multiscale") and wants_overview(item[0], rgb=bool(item[1].get("rgb"))):
            data, kwargs, kind = item
            kwargs = {**kwargs, "multiscale": True}
            limits = overview_contrast_limits(data)
            if limits is not None:
                kwargs["contrast_limits"] = limits
            item = (overview_pyramid(data), kwargs, kind)
        out.append(item)
    return out


def full_resolution(data):
    """Level 0 of a multiscale layer's data (napari's ``MultiScaleData``), else ``data`` itself.

    ``np.asarray`` of napari's multiscale data gives its *smallest* level: every computation that takes
    an image layer's pixels goes through this function first.
    """
    return data[0] if type(data).__name__ == "MultiScaleData" else data
