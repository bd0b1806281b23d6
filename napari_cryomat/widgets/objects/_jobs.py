"""The tool's long computations: a plain request built on the GUI thread, a pure ``compute_*``
function that runs in a worker (core calls, and napari colormaps built with their caches filled:
no Qt, no viewer, no layer), and a result that keeps its request, so what is drawn is labelled
from the run that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from napari_cryomat.core import measure as core_measure
from napari_cryomat.core import tracking as core_tracking
from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.widgets._base.layers import class_colormap, compact_labels, palette_colour, value_colormap
from napari_cryomat.widgets.objects._layers import prime_label_colormap, track_colours

__all__ = [
    "CLASS_METHODS",
    "ClassifyRequest",
    "ClassifyResult",
    "ColourRequest",
    "ColourResult",
    "MeasureRequest",
    "MeasureResult",
    "TrackRequest",
    "TrackResult",
    "compute_classify",
    "compute_colours",
    "compute_measure",
    "compute_track",
    "per_label",
]

#: shape-classification methods: request name -> what the user reads
CLASS_METHODS = {"kmeans": "k-means", "gmm": "Gaussian mixture", "forest": "random forest (from tags)"}


def _part(progress: ProgressCallback, start: float, stop: float) -> ProgressCallback:
    """A progress callback for the part [start, stop] of a job."""
    return lambda fraction: report(progress, start + (stop - start) * fraction)


# -- colours ------------------------------------------------------------------------------------
def per_label(table: pd.DataFrame, column: str, how: str = "mean") -> pd.Series:
    """``column`` per label (index: label): the mean, or the most frequent value (``how="mode"``,
    a track's class). One row per label already gives each row's value."""
    if how == "mean":
        return table.groupby("label")[column].mean()
    counts = table.groupby(["label", column]).size().reset_index(name="n")
    best = counts.sort_values("n", kind="stable").drop_duplicates("label", keep="last")
    return best.set_index("label")[column].sort_index()


@dataclass(frozen=True, eq=False)
class ColourRequest:
    """Colours of the objects: ``values`` per label (index), as a value (viridis) or a class."""

    values: pd.Series
    kind: str  # "value" | "class"
    column: str
    #: dtype of the labels layer's data (the colormap's caches are built for it)
    dtype: Any = np.int32
    layer: Any = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class ColourResult:
    request: ColourRequest
    colormap: Any


def colours_of(values: pd.Series, kind: str, dtype):
    """A napari DirectLabelColormap for ``values`` per label, its caches built for ``dtype``."""
    labels = values.index.to_numpy()
    if kind == "class":
        colormap = class_colormap({int(k): palette_colour(c) for k, c in zip(labels, values.to_numpy())})
    else:
        colormap = value_colormap(labels, values.to_numpy(float))
    return prime_label_colormap(colormap, dtype)


def compute_colours(request: ColourRequest, progress: ProgressCallback = None) -> ColourResult:
    """Build the colormap of ``request`` (worker side)."""
    report(progress, 0.0)
    colormap = colours_of(request.values, request.kind, request.dtype)
    report(progress, 1.0)
    return ColourResult(request, colormap)


# -- measuring -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MeasureRequest:
    """A measurement, read on the GUI thread.

    ``labels`` and ``image`` are the layers' data (array-likes, turned into arrays in the worker).
    Lengths come out in ``length_unit`` ("Å", or "px" for a layer in napari's unit-less pixels).
    """

    labels: Any
    image: Any | None
    pixel_size: float
    length_unit: str
    as_classes: bool
    time_series: bool
    #: {class value: name} of a class map, when its layer names them
    class_names: dict | None = None
    #: the labels layer measured: where the result is placed (never read by the worker)
    source: Any = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class MeasureResult:
    request: MeasureRequest
    #: the core's table (plain column names), one row per object (and frame)
    table: pd.DataFrame
    #: new object labels when the input was a class map, else None (the input's labels are the objects)
    objects: np.ndarray | None


def _objects_of_classes(classes: np.ndarray, time_series: bool, progress: ProgressCallback):
    """Objects (connected regions of one class) and a {(frame, label): class} lookup."""
    if not time_series:
        objects, class_of = core_measure.instances_from_classes(classes)
        return objects, lambda frames, labels: class_of[labels]
    objects = np.zeros(classes.shape, np.int32)
    per_frame = []
    for t in range(classes.shape[0]):
        objects[t], class_of = core_measure.instances_from_classes(classes[t])
        per_frame.append(class_of)
        report(progress, (t + 1) / classes.shape[0])
    return objects, lambda frames, labels: [per_frame[f][lab] for f, lab in zip(frames, labels)]


def compute_measure(request: MeasureRequest, progress: ProgressCallback = None) -> MeasureResult:
    """Measure the objects of ``request`` (worker side). Raises ValueError for unusable input."""
    labels = np.asarray(request.labels)
    image = None if request.image is None else np.asarray(request.image)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("The labels layer must hold integers: choose a labels layer (segment or annotate first).")
    objects, class_lookup = labels, None
    if request.as_classes:
        objects, class_lookup = _objects_of_classes(labels, request.time_series, _part(progress, 0.0, 0.3))
    measure = core_measure.measure_series if request.time_series else core_measure.measure
    table = measure(objects, image, pixel_size=request.pixel_size, progress=_part(progress, 0.3, 1.0))
    if class_lookup is not None and len(table):
        frames = table["frame"].to_numpy(int) if request.time_series else None
        where = 2 if request.time_series else 1
        table.insert(where, "class", class_lookup(frames, table["label"].to_numpy(int)))
        if request.class_names:
            table.insert(where + 1, "class name", table["class"].map(request.class_names).fillna(""))
    return MeasureResult(request, table, compact_labels(objects) if request.as_classes else None)


# -- shape classes -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ClassifyRequest:
    """A shape classification of the measured objects (``table`` in the core's names)."""

    table: pd.DataFrame
    method: str
    n_classes: int | None = None
    #: the user's class per row (0 untagged), for ``method="forest"``
    tags: np.ndarray | None = None
    #: dtype of the objects layer's data when the classes are to colour it (None: they cannot,
    #: an untracked time series repeats its labels)
    colour_dtype: Any = None
    #: the layer whose features were classified (checked before the result is written)
    layer: Any = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class ClassifyResult:
    request: ClassifyRequest
    classes: np.ndarray
    confidence: np.ndarray | None
    summary: str
    #: the objects coloured by class, or None
    colormap: Any = None


def compute_classify(request: ClassifyRequest, progress: ProgressCallback = None) -> ClassifyResult:
    """Classify the shapes of ``request.table`` (worker side)."""
    report(progress, 0.0)
    if request.method == "forest":
        classes, confidence = core_measure.classify_supervised(request.table, request.tags)
        summary = f"random forest from {int(np.sum(request.tags > 0))} tagged objects"
    elif request.method in ("kmeans", "gmm"):
        classes, info = core_measure.classify(request.table, method=request.method, n_classes=request.n_classes)
        confidence = None
        summary = (f"{info['n_classes']} classes ({CLASS_METHODS[request.method]}) "
                   f"from {', '.join(info['properties'])}")
    else:
        raise ValueError(f"Unknown method {request.method!r}: choose one of {', '.join(CLASS_METHODS)}.")
    classes = np.asarray(classes, int)
    colormap = None
    if request.colour_dtype is not None:
        per_object = per_label(request.table.assign(shape_class=classes), "shape_class", "mode")
        colormap = colours_of(per_object, "class", request.colour_dtype)
    report(progress, 1.0)
    return ClassifyResult(request, classes, confidence, summary, colormap)


# -- tracking ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TrackRequest:
    """Linking the per-frame objects of a time series into tracks.

    ``table`` is the per-frame measurement (core names; ``label`` is the object's value in
    ``labels``, the objects layer's data). Distances in ``length_unit``; ``frame_interval`` in
    ``time_unit`` ("s" when the time axis is calibrated, else "frame").
    """

    table: pd.DataFrame
    labels: Any
    max_distance: float
    gap_frames: int
    frame_interval: float = 1.0
    time_unit: str = "frame"
    length_unit: str = "Å"
    #: the objects layer tracked: where the results are placed (never read by the worker)
    layer: Any = field(default=None, repr=False)
    #: the linker (``core.tracking.LINKERS``): trackpy for plain linking, laptrack for merges and splits
    method: str = "trackpy"
    merges_splits: bool = False
    #: the motion model (``core.tracking.MOTIONS``): "auto" measures drift / directed motion on a first linking
    motion: str = "auto"


@dataclass(frozen=True, eq=False)
class TrackResult:
    request: TrackRequest
    #: one row per object and frame, ``track_id`` 1.., sorted by track and frame (core names)
    tracks: pd.DataFrame
    #: the objects layer's data with every object relabelled by its track id
    relabelled: np.ndarray
    #: growth curves: index time, one column per track id; rates: one row per track
    curves: pd.DataFrame
    rates: pd.DataFrame
    #: the quantity followed ("area" or "volume")
    value: str
    #: the relabelled objects coloured by track (the palette, as the tails and curves)
    colormap: Any = None


def compute_track(request: TrackRequest, progress: ProgressCallback = None) -> TrackResult:
    """Link, relabel and measure growth (worker side)."""
    report(progress, 0.0)
    tracks = core_tracking.link_table(request.table, max_distance=request.max_distance,
                                      gap_frames=request.gap_frames, method=request.method,
                                      merges_splits=request.merges_splits, motion=request.motion)
    report(progress, 0.5)
    relabelled = compact_labels(core_tracking.relabel_by_track(np.asarray(request.labels), tracks))
    report(progress, 0.8)
    value = "area" if "area" in tracks else "volume"
    curves, rates = core_tracking.growth_curves(tracks, value=value, frame_interval=request.frame_interval)
    colormap = prime_label_colormap(class_colormap(track_colours(tracks["track_id"])), relabelled.dtype)
    report(progress, 1.0)
    return TrackResult(request, tracks, relabelled, curves, rates, value, colormap)
