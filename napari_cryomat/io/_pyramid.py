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

Grey images whose frames have a side of at least :data:`OVERVIEW_MIN_SIDE` pixels get levels: 2D
micrographs, and stacks of such frames (movies, tilt series, particle stacks, a single-section
(1, Y, X) file), binned frame by frame (each level is (frames, Y/f, X/f): stepping through the frames
computes one frame of the level on screen). Volumes (a first axis "z" with more than one section: a
tomogram, a map, a FIB-SEM z-stack) keep one array: the tomogram browser bins them in 3D its own way.
The tools take level 0 (``widgets._base.layers.image_data``), never a level napari shows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

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


#: a first axis of this name (the readers' ``axis_labels``) is a volume's depth: no overview
VOLUME_AXIS = "z"


def wants_overview(data, *, rgb: bool = False, axis_labels=None) -> bool:
    """True for a grey image, or a stack of them, whose frames are big enough to alias when shown whole.

    A 3D array is a stack of frames unless its first axis is a volume's "z" with more than one section.
    """
    shape = np.shape(data)
    if rgb or len(shape) not in (2, 3) or max(shape[-2:]) < OVERVIEW_MIN_SIDE:
        return False
    if len(shape) == 3 and shape[0] > 1:
        first = str(axis_labels[0]).lower() if axis_labels else VOLUME_AXIS  # unnamed: assume a volume
        return first != VOLUME_AXIS
    return True


def overview_factors(shape) -> list[int]:
    """The bin factors of the lower levels of an image (or a stack of frames) of ``shape``."""
    longest = max(int(s) for s in shape[-2:])
    return [f for f in _FACTORS if -(-longest // f) >= _SMALLEST_SIDE]


def overview_pyramid(image) -> list:
    """``[image, mean of 2x2 bins, mean of 3x3 bins, ...]`` for a 2D ``image`` or a (frames, Y, X)
    stack (numpy, memmap or dask).

    Level 0 is ``image`` itself. Level ``f`` has ``ceil(ny / f) x ceil(nx / f)`` float32 pixels per
    frame, each the mean of the ``f x f`` pixels it covers in that frame (fewer at the right and bottom
    edges, where the image does not fill a whole bin: the edge is kept, not dropped); frames are never
    mixed. Nothing is read until a level's pixels are computed; each level is computed from level 0
    alone, one frame at a time. The lower levels are :class:`ShownLevel` array-likes (lazy; their dask
    array is ``.dask_level``): what napari computed lately is kept, up to :data:`RECENT_BYTES` per image.
    """
    import dask.array as da

    from napari_cryomat.core.tomo import lazy_dask

    if np.ndim(image) not in (2, 3):
        raise ValueError(f"overview_pyramid takes a 2D image or a (frames, Y, X) stack; "
                         f"got shape {tuple(np.shape(image))}.")
    frames = (1,) * (np.ndim(image) - 2)  # one frame per chunk
    levels, recent = [image], _Recent()
    for f in overview_factors(np.shape(image)):
        # chunks of whole bins: a multiple of f near _CHUNK, so each output chunk reads one input chunk
        side = max(f, (_CHUNK // f) * f)
        chunks = frames + (side, side)
        source = image.rechunk(chunks) if isinstance(image, da.Array) else lazy_dask(image, chunks)
        out_chunks = source.chunks[:-2] + tuple(tuple(-(-c // f) for c in axis) for axis in source.chunks[-2:])
        levels.append(ShownLevel(source.map_blocks(_frame_area_means, f, dtype=np.float32, chunks=out_chunks,
                                                   meta=np.empty((0,) * np.ndim(image), np.float32)), recent))
    return levels


#: bytes of recently shown level pixels kept per image (all its lower levels together): at a laptop's full
#: view of a 4096² movie (the 6x level, 1.9 MB a frame) about 16 frames, so stepping back through them
#: is a texture upload, not a read and binning of the frame again
RECENT_BYTES = 32 * 2**20


class _Recent:
    """The latest computed pieces of an image's levels, least recently used dropped past ``limit`` bytes."""

    def __init__(self, limit: int = RECENT_BYTES):
        self.limit = limit
        self.pieces: OrderedDict[str, np.ndarray] = OrderedDict()
        self.nbytes = 0
        self._lock = threading.Lock()  # napari may slice in a thread while the GUI thread slices too

    def get(self, key: str):
        with self._lock:
            piece = self.pieces.get(key)
            if piece is not None:
                self.pieces.move_to_end(key)
            return piece

    def put(self, key: str, piece: np.ndarray) -> None:
        if piece.nbytes > self.limit:
            return
        with self._lock:
            if key in self.pieces:
                return
            self.pieces[key] = piece
            self.nbytes += piece.nbytes
            while self.nbytes > self.limit:
                _, dropped = self.pieces.popitem(last=False)
                self.nbytes -= dropped.nbytes


class ShownLevel:
    """A lower overview level as napari reads it: lazy (``level[key]`` is another ShownLevel), computed when
    napari takes its pixels (``np.asarray``); the result is kept among the image's recent pieces
    (:data:`RECENT_BYTES`), found again by the dask name of that region.

    The region is computed on this process's threads: dask's default scheduler first looks for a
    distributed client, which imports ``distributed`` (0.7 s and ~60 MB on the first overview opened in a
    session, measured in a window), and a display slice of a memory map belongs on this machine anyway.
    napari asks again for what it showed before when the user steps back to a frame, toggles the layer or
    a tool refreshes it: napari's own opportunistic cache serves only dask data, so the levels keep theirs.
    ``dask_level`` is the lazy level (or region) itself, a dask array.
    """

    def __init__(self, dask_level, recent: _Recent):
        self.dask_level = dask_level
        self.shape, self.dtype, self.ndim = dask_level.shape, dask_level.dtype, dask_level.ndim
        self._recent = recent

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> ShownLevel:
        return ShownLevel(self.dask_level[key], self._recent)

    def __array__(self, dtype=None, copy=None):
        from dask.threaded import get as local_threads

        name = self.dask_level.name  # dask names a region by the level and the index: the same region, the same name
        piece = self._recent.get(name)
        if piece is None:
            piece = np.asarray(self.dask_level.compute(scheduler=local_threads))
            piece.setflags(write=False)  # shared by every later request of the same region
            self._recent.put(name, piece)
        if copy or (dtype is not None and np.dtype(dtype) != piece.dtype):
            return np.array(piece, dtype=dtype)
        return piece


def _frame_area_means(block: np.ndarray, f: int) -> np.ndarray:
    """:func:`area_means` of a chunk that is one frame, with or without its (1,) frame axis."""
    b = np.asarray(block)
    means = area_means(b.reshape(b.shape[-2:]), f)
    return means.reshape(b.shape[:-2] + means.shape)


def area_means(block: np.ndarray, f: int) -> np.ndarray:
    """Mean of each f x f bin of ``block`` (a partial bin at the edge: the mean of what it holds).

    Rows first, f at a time over contiguous memory, then columns on the f-times smaller result, in
    float32 (a display level: sums of at most 64² pixels keep 7 significant digits): 3.6 ms for a 1536²
    chunk at 6x, against 8.3 ms summing in float64, 25 ms with ``np.add.reduceat`` over both axes.
    """
    b = np.asarray(block)
    ny, nx = b.shape
    whole_y, whole_x = ny // f, nx // f
    out_y, out_x = -(-ny // f), -(-nx // f)
    rows = np.empty((out_y, nx), np.float32)
    rows[:whole_y] = b[:whole_y * f].reshape(whole_y, f, nx).sum(axis=1, dtype=np.float32)
    if out_y > whole_y:
        rows[-1] = b[whole_y * f:].sum(axis=0, dtype=np.float32)
    sums = np.empty((out_y, out_x), np.float32)
    sums[:, :whole_x] = rows[:, :whole_x * f].reshape(out_y, whole_x, f).sum(axis=2)
    if out_x > whole_x:
        sums[:, -1] = rows[:, whole_x * f:].sum(axis=1)
    count_y = np.minimum(f, ny - f * np.arange(out_y))
    count_x = np.minimum(f, nx - f * np.arange(out_x))
    sums /= np.outer(count_y, count_x).astype(np.float32)
    return sums


#: frames of a stack sampled for its contrast limits (evenly spaced, first and last included)
_CONTRAST_FRAMES = 4


def overview_contrast_limits(image, *, low: float = 0.5, high: float = 99.5) -> tuple[float, float] | None:
    """Percentile contrast limits of the overview level a laptop shows whole, from a sample.

    ``_CONTRAST_STRIPS`` evenly spaced strips ``f`` rows high are read from ``image`` (from up to
    ``_CONTRAST_FRAMES`` frames of a stack, the strips shared among them) and binned ``f x f`` (``f``:
    the factor of the level nearest ``_CONTRAST_SIDE`` pixels); the percentiles of those bin means are
    the limits. None if the image has no overview levels or no finite pixel.
    """
    shape = np.shape(image)
    factors = overview_factors(shape)
    if not factors:
        return None
    ny, nx = shape[-2:]
    f = min(factors, key=lambda k: abs(max(ny, nx) / k - _CONTRAST_SIDE))
    if len(shape) == 3:
        picked = np.unique(np.linspace(0, shape[0] - 1, min(shape[0], _CONTRAST_FRAMES)).round().astype(int))
        frames = [image[int(k)] for k in picked]
    else:
        frames = [image]
    strips = max(1, _CONTRAST_STRIPS // len(frames))
    starts = np.unique(np.linspace(0, ny - f, min(strips, ny // f)).round().astype(int))
    keep = (nx // f) * f
    pieces = [frame[y:y + f, :keep] for frame in frames for y in starts]
    if type(image).__module__.startswith("dask"):
        import dask

        # one compute for all strips: a compressed TIFF page is decoded once, not once per strip (64 decodes
        # of a zlib 2048² page took 5.4 s)
        pieces = dask.compute(*pieces)
    means = [np.asarray(piece, dtype=np.float32).reshape(f, keep // f, f).mean(axis=(0, 2)) for piece in pieces]
    sample = np.concatenate(means)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return None
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    return (lo, hi) if hi > lo else None


def with_overview(layers: list) -> list:
    """napari LayerData tuples with every big grey image or stack of big frames made a multiscale overview.

    The napari reader hooks call this; the readers themselves (``read_mrc``, ``read_tiff``,
    ``read_spectral``) return one array, which batch work and scripts take as it is. A layer with its own
    colour scale (a phase map's cyclic colormap and fixed limits) is left alone: the mean of wrapped
    phases is no overview. So is a spectrum image (its first axis is energy: the Spectrum imaging dock
    takes its data as it is).
    """
    out = []
    for item in layers:
        if len(item) == 3 and item[2] == "image" and "colormap" not in item[1] \
                and "spectrum_image" not in (item[1].get("metadata") or {}) \
                and not item[1].get("multiscale") \
                and wants_overview(item[0], rgb=bool(item[1].get("rgb")), axis_labels=item[1].get("axis_labels")):
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
