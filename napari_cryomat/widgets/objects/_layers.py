"""What the tool reads from layers (is the first axis time? which image? which units?), the names
and placement of the layers it makes, and what its tracks layer shows: a track's tail has the
colour of its objects and of its growth curve (the shared class palette, by track id).

No Qt.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core.units import is_time, is_time_axis, time_to_seconds
from napari_cryomat.widgets._base.layers import CLASS_PALETTE, palette_colour
from napari_cryomat.widgets.objects._features import INDEX, with_units

__all__ = [
    "TRACK_COLOUR",
    "class_names_of",
    "first_axis_is_time",
    "frame_interval",
    "guess_time_series",
    "is_class_map",
    "length_unit",
    "matching_image",
    "placement",
    "result_name",
    "track_colours",
    "prime_label_colormap",
    "tracks_layer_data",
]

_RESULT_SUFFIXES = (" objects", " tracked", " tracks")


def result_name(source: str, what: str) -> str:
    """Name of a result layer made from layer ``source``: "crystals" -> "crystals tracks", and
    "crystals tracked" -> "crystals tracks" too (no "tracked tracks")."""
    for suffix in _RESULT_SUFFIXES:
        if source.endswith(suffix):
            source = source[: -len(suffix)]
            break
    return f"{source} {what}"


def first_axis_is_time(layer) -> bool:
    """The one time-axis guess (:func:`core.units.is_time_axis`) on a layer's first axis; a layer
    with fewer than three axes has no time axis."""
    if layer is None or layer.ndim < 3:
        return False
    labels = tuple(getattr(layer, "axis_labels", ()) or ())
    units = getattr(layer, "units", None)
    unit = str(units[0]) if units is not None else None
    axes = str(layer.metadata.get("axes", "")).upper()
    return is_time_axis(labels[0] if labels else None, unit) or (len(axes) == layer.ndim and axes[0] == "T")


def guess_time_series(labels_layer, images=()) -> bool:
    """True if the first axis of ``labels_layer`` is time: by its own axis, or by an image of the
    same shape (the movie the labels were made from)."""
    if labels_layer is None or labels_layer.ndim < 3:
        return False
    shape = tuple(labels_layer.data.shape)
    return first_axis_is_time(labels_layer) or any(
        first_axis_is_time(image) for image in images if tuple(image.data.shape) == shape)


def matching_image(labels_layer, images):
    """The image ``labels_layer`` was drawn on: the one its metadata names (segmentation tool), else
    the last image of the same shape; None if there is none."""
    if labels_layer is None:
        return None
    shape = tuple(labels_layer.data.shape)
    same = [image for image in images if tuple(image.data.shape) == shape]
    named = [image for image in same if image.name == labels_layer.metadata.get("cryomat_image")]
    return (named or same or [None])[-1]


def class_names_of(layer) -> dict[int, str] | None:
    """{class value: name} from a class map's features (the Segmentation tool writes ``index`` and
    ``class`` there), or None."""
    features = getattr(layer, "features", None)
    if features is None or not {"index", "class"} <= set(features.columns):
        return None
    return {int(k): str(v) for k, v in zip(features["index"], features["class"])}


def is_class_map(layer) -> bool:
    """A labels layer whose values are classes (an annotation or a prediction), not objects."""
    return layer is not None and layer.metadata.get("cryomat_role") in ("annotation", "prediction")


def length_unit(layer) -> str:
    """ "Å" for a layer calibrated in a length, "px" for napari's unit-less pixels."""
    units = getattr(layer, "units", None)
    unit = str(units[-1]) if units is not None else "pixel"
    return "px" if unit in ("pixel", "", "None") else "Å"


def frame_interval(layer) -> tuple[float, str]:
    """Time between frames: (seconds, "s") when the first axis is calibrated in time, else (1, "frame")."""
    units = getattr(layer, "units", None)
    unit = str(units[0]) if units is not None else ""
    if is_time(unit):
        return time_to_seconds(float(layer.scale[0]), unit), "s"
    return 1.0, "frame"


def placement(layer) -> dict:
    """Keyword arguments that put a result layer exactly over ``layer``."""
    return dict(scale=tuple(layer.scale), translate=tuple(layer.translate), units=tuple(layer.units),
                axis_labels=tuple(layer.axis_labels))


#: the tracks layer's feature that colours its tails
TRACK_COLOUR = "track colour"


def track_colours(track_ids) -> dict[int, str]:
    """{track id: colour}: the palette's colour of each track (the same everywhere)."""
    return {int(t): palette_colour(t) for t in np.unique(np.asarray(track_ids, int))}


def tracks_layer_data(tracks, pixel_size: float, length_unit: str):
    """Data, features and colormap of a napari Tracks layer from the core's tracks table.

    Returns
    -------
    data : ndarray (N, 2 + D)
        ``track_id, frame, [z,] y, x`` in pixels (the layer takes the objects layer's scale).
    features : pandas.DataFrame
        The tracks table with units, plus :data:`TRACK_COLOUR` (a value in [0, 1] per vertex).
    colormap : napari Colormap
        Maps :data:`TRACK_COLOUR` to the palette colour of the vertex's track.
    """
    from napari.utils.colormaps import Colormap

    coords = [c for c in ("centroid_z", "centroid_y", "centroid_x") if c in tracks]
    data = np.column_stack([tracks["track_id"].to_numpy(float), tracks["frame"].to_numpy(float)]
                           + [tracks[c].to_numpy(float) / pixel_size for c in coords])
    n = len(CLASS_PALETTE)
    features = with_units(tracks, length_unit).drop(columns=[INDEX])
    features[TRACK_COLOUR] = ((tracks["track_id"].to_numpy(int) - 1) % n + 0.5) / n
    colormap = Colormap(colors=list(CLASS_PALETTE), controls=np.linspace(0.0, 1.0, n + 1),
                        interpolation="zero", name="cryomat tracks")
    return data, features, colormap


def prime_label_colormap(colormap, dtype):
    """Fill napari's caches of a DirectLabelColormap for labels of ``dtype``; returns it.

    Setting a labels layer's colormap builds a lookup from label values to texture values and the
    texture's colour table (and, the first time in a session, compiles them with numba: seconds).
    Done here, in the worker that made the colormap, the GUI thread is left with mapping the pixels.
    Best effort: these are napari internals; should they change, colouring is merely slower.
    """
    try:
        from napari.utils.colormaps.colormap import _texture_dtype

        dtype = np.dtype(dtype)
        texture = dtype  # 8 and 16 bit labels are their own texture
        if dtype.itemsize > 2:  # wider labels are cast to the smallest dtype holding the colours
            colormap._get_typed_dict_mapping(dtype)
            texture = _texture_dtype(colormap._num_unique_colors + 2, dtype)
        colormap._get_mapping_from_cache(texture)
    except Exception:  # noqa: BLE001 (a speed-up only)
        pass
    return colormap
