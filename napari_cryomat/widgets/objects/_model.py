"""State of the Objects and classes tool: which labels layer holds the objects, their measurements
(in that layer's ``features``), tags and shape classes, tracks and growth curves.

No Qt: the views build requests from their controls, run ``compute_*`` of :mod:`._jobs` in a
worker, hand the result to ``apply_*`` here, and redraw on the signals. A script does the same
in one call (:meth:`ObjectsModel.measure`, :meth:`~ObjectsModel.classify`,
:meth:`~ObjectsModel.track`) and reads :attr:`ObjectsModel.features`: the data the table shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from napari_cryomat.widgets._base.layers import camera_of, image_data, pixel_size_of, real_layer, upsert_layer
from napari_cryomat.widgets.objects import _jobs
from napari_cryomat.widgets.objects._features import INDEX, column_for, core_names, unit_of, with_units
from napari_cryomat.widgets.objects._layers import (
    TRACK_COLOUR,
    class_names_of,
    frame_interval,
    guess_time_series,
    is_class_map,
    length_unit,
    placement,
    result_name,
    tracks_layer_data,
)

if TYPE_CHECKING:
    import napari
    import pandas as pd

__all__ = ["ObjectsModel"]


class ObjectsModel:
    """The measured objects of one labels layer, and what was made from them.

    Signals: ``features_changed()`` (the objects layer or its features changed: redraw the
    table, property lists, histogram), ``classes_changed(str)`` (tags or classes changed; a short
    status), ``tracks_changed()`` (growth curves made or dropped), ``label_selected(int)`` (the
    user picked an object in the viewer).
    """

    features_changed = Signal()
    classes_changed = Signal(str)
    tracks_changed = Signal()
    label_selected = Signal(int)

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self.viewer = viewer
        #: the labels layer whose values are the ``label`` column of :attr:`features`
        self.layer = None
        self.time_series = False
        #: the request of the measurement shown (units, pixel size, source)
        self.measured: _jobs.MeasureRequest | None = None
        #: the last tracking (curves, rates, the request with its parameters), or None
        self.tracked: _jobs.TrackResult | None = None
        #: the user's classes for supervised classification: {(frame, label): class}
        self.tags: dict[tuple[int, int], int] = {}
        viewer.layers.events.removed.connect(self._on_layer_removed)

    def close(self) -> None:
        """Stop listening to the viewer (the widget is closing)."""
        self._watch(None)
        try:
            self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        except Exception:  # the viewer is gone already
            pass

    # -- state -----------------------------------------------------------------------------------
    @property
    def features(self) -> "pd.DataFrame | None":
        """The objects layer's ``features`` (units in the column names), or None before a measurement."""
        if self.layer is None or self.measured is None:
            return None
        return self.layer.features

    @property
    def table(self) -> "pd.DataFrame | None":
        """:attr:`features` with the core's plain column names (``area`` in Å²), for core calls."""
        features = self.features
        return None if features is None else core_names(features)

    @property
    def length_unit(self) -> str:
        return self.measured.length_unit if self.measured is not None else "Å"

    def numeric_columns(self) -> list[str]:
        """Columns one can colour by or plot (measured quantities, not ids)."""
        features = self.features
        if features is None:
            return []
        skip = {INDEX, "label", "frame", "track_id"}
        return [c for c in features.columns if c not in skip and np.issubdtype(features[c].dtype, np.number)]

    def _watch(self, layer) -> None:
        """Make ``layer`` the objects layer and follow its features (a script may change them)."""
        links = (("features", self._on_features), ("selected_label", self._on_selected_label))
        if self.layer is not None:
            for name, callback in links:
                try:
                    getattr(self.layer.events, name).disconnect(callback)
                except Exception:
                    pass
        self.layer = None if layer is None else real_layer(layer)
        if self.layer is not None:
            for name, callback in links:
                getattr(self.layer.events, name).connect(callback)

    def _on_features(self, event=None) -> None:
        self.features_changed.emit()

    def _on_selected_label(self, event=None) -> None:
        self.label_selected.emit(int(self.layer.selected_label))

    def _on_layer_removed(self, event) -> None:
        if self.layer is not None and real_layer(event.value) is self.layer:
            self._watch(None)
            self.measured = self.tracked = None
            self.tags = {}
            self.features_changed.emit()
            self.tracks_changed.emit()

    # -- measuring -------------------------------------------------------------------------------
    def measure_request(self, labels_layer, image_layer=None, *, as_classes: bool = False,
                        time_series: bool = False) -> _jobs.MeasureRequest:
        """Check the choice and read it into a request (GUI thread, cheap). Raises ValueError
        with what to do."""
        if labels_layer is None:
            raise ValueError("Choose a labels layer to measure (segment or annotate first).")
        shape = tuple(labels_layer.data.shape)
        if time_series and len(shape) < 3:
            raise ValueError(f"'{labels_layer.name}' is 2D, not a time series: untick 'first axis is time'.")
        if len(shape) - int(time_series) not in (2, 3):
            raise ValueError(f"'{labels_layer.name}' has {len(shape)} axes: measure images (Y, X), "
                             "volumes (Z, Y, X) or time series (T, Y, X).")
        if image_layer is not None and tuple(image_layer.data.shape) != shape:
            raise ValueError(
                f"The labels '{labels_layer.name}' have shape {shape} but the image '{image_layer.name}' has "
                f"shape {tuple(image_layer.data.shape)}: choose the image they were drawn on, or untick "
                "'mean intensity from'.")
        return _jobs.MeasureRequest(
            labels=labels_layer.data, image=None if image_layer is None else image_data(image_layer),
            pixel_size=pixel_size_of(labels_layer), length_unit=length_unit(labels_layer),
            as_classes=bool(as_classes), time_series=bool(time_series),
            class_names=class_names_of(labels_layer) if as_classes else None, source=real_layer(labels_layer))

    def apply_measure(self, result: _jobs.MeasureResult):
        """Write a measurement to its layer's features (GUI thread); returns the objects layer."""
        request = result.request
        source = request.source
        if source not in self.viewer.layers:
            raise ValueError(f"'{source.name}' was removed while it was measured; measure again.")
        layer = source
        if result.objects is not None:  # a class map: its regions are the objects, in a new layer
            layer = upsert_layer(self.viewer, result.objects, name=result_name(source.name, "objects"),
                                 kind="labels", **placement(source))
        self.measured, self.tracked, self.tags = request, None, {}
        self.time_series = request.time_series
        self._watch(layer)
        layer.features = with_units(result.table, request.length_unit)  # -> features_changed
        self.classes_changed.emit("")
        self.tracks_changed.emit()
        return layer

    def measure(self, labels_layer, image_layer=None, *, as_classes: bool | None = None,
                time_series: bool | None = None) -> "pd.DataFrame":
        """Measure in the calling thread (for scripts); options default to the tool's guesses.
        Returns :attr:`features`."""
        if as_classes is None:
            as_classes = is_class_map(labels_layer)
        if time_series is None:
            images = [layer for layer in self.viewer.layers if layer._type_string == "image"]
            time_series = guess_time_series(labels_layer, images)
        request = self.measure_request(labels_layer, image_layer, as_classes=as_classes, time_series=time_series)
        self.apply_measure(_jobs.compute_measure(request))
        return self.features

    def _require_features(self) -> "pd.DataFrame":
        features = self.features
        if features is None or len(features) == 0:
            raise ValueError("Measure some objects first (Measure).")
        return features

    # -- the viewer follows the table ------------------------------------------------------------
    def select_row(self, row: int, *, only_selected: bool = False) -> None:
        """Select the object of row ``row`` of :attr:`features`: its label in the layer, its frame
        and slice in the dims, and centre the camera on it."""
        features = self._require_features()
        record = features.iloc[int(row)]
        layer = self.layer
        layer.selected_label = int(record["label"])
        layer.show_selected_label = bool(only_selected)
        names = [column_for(features, c) for c in ("centroid_z", "centroid_y", "centroid_x")]
        centroid = np.array([float(record[c]) for c in names if c is not None])  # length units
        data = centroid / self.measured.pixel_size  # pixels
        if self.time_series:
            data = np.r_[float(record["frame"]), data]
        n = data.size
        world = data * np.asarray(layer.scale)[-n:] + np.asarray(layer.translate)[-n:]
        first = self.viewer.dims.ndim - n
        for k in range(n - 2):  # frame and slice: the axes not on screen
            self.viewer.dims.set_point(first + k, world[k])
        camera_of(self.viewer).center = tuple(world[-2:])

    def rows_of_label(self, label: int) -> list[int]:
        """Rows of :attr:`features` of the object ``label``: every frame of a track, but only the
        frame on screen in an untracked series (there labels repeat from frame to frame)."""
        features = self.features
        if features is None:
            return []
        hit = features["label"].to_numpy() == int(label)
        if self.time_series and "track_id" not in features:
            hit &= features["frame"].to_numpy() == self.current_frame()
        return np.flatnonzero(hit).tolist()

    def current_frame(self) -> int:
        """The frame of the objects layer on screen (its first axis)."""
        axis = self.viewer.dims.ndim - self.layer.ndim
        world = float(self.viewer.dims.point[axis])
        return int(round((world - float(self.layer.translate[0])) / float(self.layer.scale[0])))

    # -- colours ---------------------------------------------------------------------------------
    def colour_request(self, column: str) -> _jobs.ColourRequest:
        """Colours by a measured column (viridis, low to high; per-track mean in a series), or by
        class for ``shape_class`` (the class palette; a track's most frequent class)."""
        features = self._require_features()
        if self.time_series and "track_id" not in features:
            raise ValueError("In a time series labels repeat from frame to frame: track first (Tracking), "
                             "then colour.")
        if column not in features:
            raise ValueError(f"No column {column!r}: choose one of {', '.join(self.numeric_columns())}.")
        kind = "class" if column == "shape_class" else "value"
        values = _jobs.per_label(features, column, "mode" if kind == "class" else "mean")
        return _jobs.ColourRequest(values, kind, column, self.layer.data.dtype, layer=self.layer)

    def apply_colour(self, result: _jobs.ColourResult) -> None:
        """Give the objects layer the colours of ``result`` (GUI thread)."""
        if result.request.layer is not self.layer:
            raise ValueError("The objects changed while their colours were computed; colour again.")
        self.layer.colormap = result.colormap
        self.layer.metadata["coloured_by"] = result.request.column

    def colour_by(self, column: str) -> None:
        """:meth:`colour_request` and its colours in the calling thread (for scripts)."""
        self.apply_colour(_jobs.compute_colours(self.colour_request(column)))

    def reset_colours(self) -> None:
        """napari's label colours again (track colours on a tracked layer)."""
        from napari.utils.colormaps import label_colormap

        if self.layer is None:
            return
        if self.tracked is not None:  # the layer is the tracked one: its own colours are the tracks'
            self.layer.colormap = self.tracked.colormap
        else:
            self.layer.colormap = label_colormap()
        self.layer.metadata.pop("coloured_by", None)

    # -- classes ---------------------------------------------------------------------------------
    def _key(self, row: int) -> tuple[int, int]:
        record = self.features.iloc[int(row)]
        return (int(record["frame"]) if "frame" in record.index else 0, int(record["label"]))

    def tag_rows(self, rows, value: int) -> None:
        """Tag the objects of ``rows`` as class ``value`` (>= 1) for supervised classification."""
        self._require_features()
        rows = list(rows)
        if not rows:
            raise ValueError("Select some rows (objects) in the table first.")
        for row in rows:
            self.tags[self._key(row)] = int(value)
        self.classes_changed.emit(f"{len(self.tags)} objects tagged ({len(set(self.tags.values()))} classes)")

    def clear_tags(self) -> None:
        self.tags = {}
        self.classes_changed.emit("tags cleared")

    def classify_request(self, method: str, n_classes: int | None = None) -> _jobs.ClassifyRequest:
        """Read a classification request (GUI thread). ``method`` in :data:`._jobs.CLASS_METHODS`."""
        features = self._require_features()
        tags = None
        if method == "forest":
            tags = np.array([self.tags.get(self._key(r), 0) for r in range(len(features))])
        colour = None if self.time_series and "track_id" not in features else self.layer.data.dtype
        return _jobs.ClassifyRequest(core_names(features), method, n_classes or None, tags, colour, layer=self.layer)

    def apply_classify(self, result: _jobs.ClassifyResult) -> None:
        """Add ``shape_class`` (and ``class_confidence``) to the features; colour by class."""
        features = self.features
        if result.request.layer is not self.layer or features is None or len(features) != len(result.classes):
            raise ValueError("The objects changed while they were classified; classify again.")
        features = features.assign(shape_class=result.classes)
        if result.confidence is not None:
            features["class_confidence"] = result.confidence
        self.layer.features = features
        self.classes_changed.emit(result.summary)
        if result.colormap is not None:
            self.layer.colormap = result.colormap
            self.layer.metadata["coloured_by"] = "shape_class"

    def classify(self, method: str = "kmeans", n_classes: int | None = None) -> "pd.DataFrame":
        """Classify in the calling thread (for scripts); returns :attr:`features`."""
        self.apply_classify(_jobs.compute_classify(self.classify_request(method, n_classes)))
        return self.features

    # -- tracking --------------------------------------------------------------------------------
    def track_request(self, max_distance: float, gap_frames: int = 1, method: str = "trackpy",
                      merges_splits: bool = False, motion: str = "auto") -> _jobs.TrackRequest:
        """Read a tracking request (GUI thread): the measured time series and the parameters
        (``method``: "trackpy" for plain linking, "laptrack" where objects merge or split; ``motion``:
        "auto", "none", "drift" or "directed", as ``core.tracking.link_table``)."""
        features = self.features
        if features is None or not self.time_series:
            raise ValueError("Measure a time series first (tick 'first axis is time', then Measure).")
        interval, time_unit = frame_interval(self.layer)
        if merges_splits and method != "laptrack":
            raise ValueError("Merges and splits are followed by laptrack only: choose the laptrack linker.")
        if motion == "directed" and method != "trackpy":
            raise ValueError("Motion 'directed' (each object keeps its own velocity) is followed by trackpy only: "
                             "choose the trackpy linker, or Motion 'drift' or 'auto' for laptrack.")
        return _jobs.TrackRequest(core_names(features), self.layer.data, float(max_distance), int(gap_frames),
                                  interval, time_unit, self.length_unit, layer=self.layer, method=method,
                                  merges_splits=bool(merges_splits), motion=motion)

    def apply_track(self, result: _jobs.TrackResult) -> None:
        """Add the tracks layer and the labels relabelled by track (coloured by track); the table
        then shows the tracked objects (``label`` = track id)."""
        source = result.request.layer
        if source not in self.viewer.layers:
            raise ValueError(f"'{source.name}' was removed while it was tracked; measure and track again.")
        unit = result.request.length_unit
        tracks = result.tracks
        data, features, colours = tracks_layer_data(tracks, self.measured.pixel_size, unit)
        where = placement(source)
        upsert_layer(self.viewer, data, name=result_name(source.name, "tracks"), kind="tracks",
                     features=features, colormaps_dict={TRACK_COLOUR: colours}, color_by=TRACK_COLOUR,
                     tail_length=10, **where)
        tracked = upsert_layer(self.viewer, result.relabelled, name=result_name(source.name, "tracked"),
                               kind="labels", colormap=result.colormap, **where)
        self.tracked, self.tags = result, {}  # tags named (frame, label) of the untracked objects
        self._watch(tracked)
        tracked.features = with_units(tracks.assign(label=tracks["track_id"]), unit)  # -> features_changed
        self.classes_changed.emit("")
        self.tracks_changed.emit()

    def track(self, max_distance: float = 60.0, gap_frames: int = 1, method: str = "trackpy",
              merges_splits: bool = False, motion: str = "auto") -> "pd.DataFrame":
        """Track in the calling thread (for scripts); returns :attr:`features` (one row per track and frame)."""
        request = self.track_request(max_distance, gap_frames, method, merges_splits, motion)
        self.apply_track(_jobs.compute_track(request))
        return self.features

    def growth_units(self) -> tuple[str, str]:
        """(unit of the followed value, unit of time) of the last tracking: ("Å²", "s")."""
        run = self.tracked
        return unit_of(run.value, run.request.length_unit), run.request.time_unit

    # -- export ----------------------------------------------------------------------------------
    def export_csv(self, path) -> str:
        """Write :attr:`features` (napari's ``index`` key left out) to a CSV file."""
        features = self._require_features()
        features.drop(columns=[INDEX], errors="ignore").to_csv(path, index=False)
        return str(path)

    def export_growth_csv(self, path) -> tuple[str, str]:
        """Growth curves (one column per track) to ``path`` and rates to ``<path>_rates.csv``."""
        if self.tracked is None:
            raise ValueError("Track first (Tracking): there are no growth curves yet.")
        value_unit, time_unit = self.growth_units()
        curves = self.tracked.curves.copy()
        curves.columns = [f"track_{c} {self.tracked.value} ({value_unit})" for c in curves.columns]
        time_label = "time (s)" if time_unit == "s" else "frame"
        curves.to_csv(path, index_label=time_label)
        rates = self.tracked.rates.rename(columns={
            "rate": f"rate ({value_unit}/{time_unit})", "initial": f"initial ({value_unit})",
            "final": f"final ({value_unit})"})
        rates_path = str(path).rsplit(".", 1)[0] + "_rates.csv"
        rates.to_csv(rates_path, index=False)
        return str(path), rates_path
