"""State of the Segmentation tool and its core calls. No Qt.

:class:`SegmentationModel` holds the image, the annotation (the labels layer the user paints), its
class table, the trained pixel classifier, the autosave bookkeeping and the click tool, and it makes
the result layers. Every long computation is a :class:`Job`: built on the GUI thread from the
current state and plain options (so a worker never reads a control or a layer's settings), run
anywhere, finished on the GUI thread. Views run jobs in a :class:`~napari_cryomat.widgets._base.TaskRunner`;
scripts and tests call :meth:`Job.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from napari_cryomat.core import annotation as ann
from napari_cryomat.core import segment as seg
from napari_cryomat.core._progress import sub_progress
from napari_cryomat.core.units import is_time_axis
from napari_cryomat.widgets._base.layers import compact_labels, image_data, pixel_size_of, upsert_layer
from napari_cryomat.widgets.segmentation._autosave import AnnotationAutosave, source_of
from napari_cryomat.widgets.segmentation._classes import ClassTable
from napari_cryomat.widgets.segmentation._clicks import ClickOptions, ClickRequest, ClickTool

if TYPE_CHECKING:
    import napari

__all__ = ["ClassifierOptions", "Job", "ParticleOptions", "SegmentationModel", "layer_kwargs", "result_name"]

ROLE = "cryomat_role"  # metadata: "annotation", "prediction" or "particles" (what the layer is to the tools)


def result_name(image_name: str, what: str, instead: str) -> str:
    """``"<image> <what>"``, or ``"<image> <instead>"`` when the image's name already ends with
    ``what`` (singular or plural): an image called "particles" gives "particles segmented", not
    "particles particles"."""
    last = image_name.split()[-1].lower() if image_name.split() else ""
    repeats = last.rstrip("s") == what.lower().rstrip("s")
    return f"{image_name} {instead if repeats else what}"


def layer_kwargs(image) -> dict:
    """Geometry of a result layer that lies exactly on ``image``: scale, translate, units, axis labels."""
    kwargs = dict(scale=tuple(image.scale), translate=tuple(image.translate))
    for key in ("units", "axis_labels"):
        value = getattr(image, key, None)
        if value is not None:
            kwargs[key] = tuple(str(v) for v in value)
    return kwargs


@dataclass(frozen=True)
class ParticleOptions:
    """Automatic particles (see :func:`core.segment.segment_particles`); lengths in Å, areas in Å².
    ``"auto"`` / None: read off the image (:func:`core.segment.estimate_particle_settings`)."""

    threshold: str = "auto"
    polarity: str = "auto"
    smoothing: float | None = None
    min_size: float | None = None
    split: bool = True
    split_distance: float | None = None
    diameter: float | None = None
    series: bool = False  # a movie: segment each frame alone


@dataclass(frozen=True)
class ClassifierOptions:
    """Pixel classifier (see :func:`core.segment.train_pixel_classifier`)."""

    sigma_max: float = 8.0
    n_estimators: int = 10


@dataclass
class Job:
    """One long computation: ``func(*args, **kwargs)`` in a worker, then ``finish(result)`` on the GUI
    thread, which updates the layers and returns a message for the user (or None)."""

    label: str
    func: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    finish: Callable[[Any], str | None] = lambda result: None

    def run(self) -> str | None:
        """Run here and now (scripts, tests)."""
        return self.finish(self.func(*self.args, **self.kwargs))


class SegmentationModel:
    """Image, annotation, classes, classifier, autosave and click tool of one Segmentation dock."""

    annotation_changed = Signal(object)  # the annotation layer, or None
    painted = Signal()  # the annotation was edited
    classifier_changed = Signal(str)  # a readable status of the trained classifier
    particle_settings_changed = Signal(object)  # the core.segment.ParticleSettings of the last run

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self.viewer = viewer
        self.classes = ClassTable()
        self.autosave = AnnotationAutosave()
        self.clicks = ClickTool()
        self.image = None
        self.annotation = None
        self.classifier: seg.PixelClassifier | None = None
        self.classifier_status = ""
        self.particle_settings: seg.ParticleSettings | None = None  # what the last particles run assumed
        self.feature_cache = seg.FeatureCache()  # features survive retraining while painting
        self.classes.changed.connect(self._apply_classes)
        viewer.layers.events.removing.connect(self._on_removing)

    # -- the layers -----------------------------------------------------------------------------
    def set_image(self, layer) -> None:
        self.image = layer

    def set_annotation(self, layer) -> None:
        """Paint on ``layer`` from now on (autosaved; its class table, if it has one, is taken)."""
        if layer is self.annotation:
            return
        self._watch(self.annotation, False)
        self.annotation = layer
        self.clicks.reset()
        self._watch(layer, True)
        if layer is not None and layer.metadata.get(ROLE) == "annotation" and layer.metadata.get("classes"):
            self.classes.replace(layer.metadata["classes"])
        if layer is not None and not layer.metadata.get("cryomat_key") and self.image is not None:
            if tuple(layer.data.shape) == tuple(self.image.data.shape):  # a labels layer of the user's
                layer.metadata.update(self._identity(self.image))
        self.autosave.attach(layer)
        self.annotation_changed.emit(layer)

    def _watch(self, layer, on: bool) -> None:
        if layer is None:
            return
        for emitter in (layer.events.paint, layer.events.data, layer.events.labels_update):
            if on:
                emitter.connect(self._on_painted)
            else:
                emitter.disconnect(self._on_painted)

    def _on_painted(self, *_args) -> None:
        self.autosave.mark_dirty()
        self.painted.emit()

    def _on_removing(self, event) -> None:
        try:
            layer = self.viewer.layers[event.index]
        except (IndexError, AttributeError, TypeError):
            return
        if layer is self.annotation:
            self.set_annotation(None)  # saves what was painted since the last autosave

    def image_is_series(self) -> bool:
        """Is the image a movie (T, Y, X)? The one time-axis guess on its first axis."""
        image = self.image
        if image is None or image.data.ndim != 3:
            return False
        labels, units = getattr(image, "axis_labels", None), getattr(image, "units", None)
        return is_time_axis(labels[0] if labels else None, units[0] if units else None)

    def require_image(self):
        if self.image is None:
            raise ValueError("Open or choose an image first.")
        return self.image

    def require_annotation(self):
        """The annotation, which must lie on the image (ValueError naming what to do)."""
        image = self.require_image()
        layer = self.annotation
        if layer is None:
            raise ValueError("Make an annotation first (New annotation).")
        if tuple(layer.data.shape) != tuple(image.data.shape):
            raise ValueError(
                f"The annotation '{layer.name}' has shape {tuple(layer.data.shape)} but the image "
                f"'{image.name}' has shape {tuple(image.data.shape)}: make a New annotation for this image."
            )
        return layer

    def _identity(self, image) -> dict:
        """Metadata tying an annotation to its image and its autosave file. The first annotation of
        an image is saved under the image's key (the one offered back for restoring); another one
        open at the same time gets a numbered key, so no two ever overwrite each other's file."""
        source = source_of(image)
        taken = {layer.metadata.get("cryomat_key") for layer in self.viewer.layers}
        key, number = ann.image_key(image_data(image), source=source, name=image.name), 1
        while key in taken:
            number += 1
            key = ann.image_key(image_data(image), source=source, name=f"{image.name} {number}")
        return {"cryomat_image": image.name, "cryomat_key": key, "cryomat_source": source}

    def _add_annotation(self, labels: np.ndarray, name: str):
        from napari.layers import Labels

        image = self.require_image()
        # tied to its image and classes before it is added: a view choosing it at once sees it whole
        layer = Labels(labels, name=name, metadata={ROLE: "annotation", **self._identity(image)},
                       **layer_kwargs(image))
        self._apply_classes(layer)
        self.viewer.add_layer(layer)
        self.set_annotation(layer)
        return layer

    def new_annotation(self):
        """A labels layer matched to the image (shape, scale, units) with the class table; paint mode."""
        image = self.require_image()
        labels = np.zeros(tuple(image.data.shape), dtype=self.classes.label_dtype())
        layer = self._add_annotation(labels, f"{image.name} annotation")
        layer.selected_label = self.classes.ids()[0] if len(self.classes) else 1
        layer.mode = "paint"
        return layer

    def restore(self):
        """Add the restorable autosave of the image as an annotation layer."""
        found = self.autosave.restorable
        if found is None:
            raise ValueError("No autosave of this image was found.")
        if found.classes:
            self.classes.replace(found.classes)
        self.autosave.adopt(found.path)
        return self._add_annotation(np.array(found.labels), f"{self.require_image().name} annotation (restored)")

    # -- classes --------------------------------------------------------------------------------
    def _apply_classes(self, layer=None) -> None:
        """Push the class table to the annotation (features, colours, metadata for autosave) and
        the colours to the predictions."""
        annotation = layer if layer is not None else self.annotation
        if annotation is not None and annotation.metadata.get(ROLE) == "annotation":
            annotation.features = self.classes.features()
            annotation.metadata["classes"] = self.classes.rows
            self._colour(annotation)
            if annotation is self.annotation:
                self.autosave.mark_dirty()
        for other in self.viewer.layers:
            if other.metadata.get(ROLE) == "prediction":
                self._colour(other)

    def _colour(self, layer) -> None:
        """Class colours on ``layer``, only when they changed (a new colormap re-colours every pixel)."""
        colours = {str(c["id"]): c["colour"] for c in self.classes.rows}
        if layer.metadata.get("class_colours") != colours:
            layer.colormap = self.classes.colormap()
            layer.metadata["class_colours"] = colours

    def select_class(self, row: int) -> None:
        """Paint with the class of table row ``row``."""
        value = self.classes.id_at(row)
        if self.annotation is not None and value is not None:
            self.annotation.selected_label = value

    # -- clicks ---------------------------------------------------------------------------------
    def click(self, point, *, mode: str, options: ClickOptions) -> ClickRequest | None:
        """GUI thread: a click at ``point`` (data coordinates of the image) for the click tool; the
        view then computes :meth:`ClickTool.unpainted` in a worker and calls :meth:`paint_clicks`."""
        image = self.require_image()
        annotation = self.require_annotation()
        return self.clicks.request(image, annotation, point, mode=mode, pixel_size=pixel_size_of(image),
                                   options=options)

    def paint_clicks(self, batch) -> list[str]:
        """GUI thread: paint a computed batch of clicked objects; returns the errors to show."""
        errors = self.clicks.apply(batch)
        self.autosave.mark_dirty()
        return errors

    # -- jobs -----------------------------------------------------------------------------------
    def particles_job(self, options: ParticleOptions) -> Job:
        """Automatic particles on the image (frame by frame for a movie) -> a labels layer."""
        image = self.require_image()
        series = options.series and image.data.ndim == 3
        kwargs = dict(pixel_size=pixel_size_of(image), smoothing=options.smoothing, threshold=options.threshold,
                      polarity=options.polarity, min_size=options.min_size, split=options.split,
                      split_distance=options.split_distance, diameter=options.diameter)
        name = result_name(image.name, "particles", "segmented")
        geometry = layer_kwargs(image)

        def finish(result) -> str:
            labels, settings = result
            upsert_layer(self.viewer, labels, name=name, kind="labels", **geometry,
                         metadata={ROLE: "particles", "cryomat_image": image.name,
                                   "particle_settings": settings.options()})
            self.particle_settings = settings
            self.particle_settings_changed.emit(settings)
            caution = f" {settings.caution()}" if settings.caution() else ""
            if series:
                return f"{int(sum(frame.max() for frame in labels))} particles found in {len(labels)} frames.{caution}"
            return f"{int(labels.max())} particles found.{caution}"

        return Job("Particles", _particles, (image_data(image), series), kwargs, finish)

    def training_job(self, options: ClassifierOptions) -> Job:
        """Train the pixel classifier on the annotation's strokes and predict the whole image."""
        image = self.require_image()
        annotation = self.require_annotation()
        scribbles = np.array(annotation.data, copy=True)  # painting may go on meanwhile
        settings = dict(sigma_max=options.sigma_max, n_estimators=options.n_estimators, cache=self.feature_cache)
        name = result_name(image.name, "prediction", "classes")
        geometry = layer_kwargs(image)
        if name not in self.viewer.layers:
            geometry["opacity"] = 0.5  # a first look; later retraining keeps the user's opacity

        def finish(result) -> str:
            model, prediction = result
            self.classifier = model
            # the role is in the metadata from the start: layer lists filter on it when it is inserted
            layer = upsert_layer(self.viewer, prediction, name=name, kind="labels", **geometry,
                                 metadata={ROLE: "prediction", "cryomat_image": image.name})
            self._colour(layer)
            if annotation in self.viewer.layers:
                self.viewer.layers.selection.active = annotation  # keep painting on the annotation
            self.classifier_status = (f"trained on {model.n_training_pixels} pixels, "
                                      f"classes {list(map(int, model.classes))}")
            self.classifier_changed.emit(self.classifier_status)
            return None

        return Job("Pixel classifier", _train_and_predict, (image_data(image), scribbles), settings, finish)

    def save_classifier(self, path) -> str:
        """Write the trained classifier to ``path`` (.skops); returns a message."""
        if self.classifier is None:
            raise ValueError("No classifier to save: train one first (Train & predict).")
        written = self.classifier.save(path)
        return f"Classifier saved to {written}."

    def load_classifier(self, path) -> str:
        """Read a classifier saved earlier (checked: another napari-cryomat version's file is refused
        with what to do); :meth:`prediction_job` then applies it to the image."""
        model = seg.PixelClassifier.load(path)
        model.cache = self.feature_cache
        self.classifier = model
        self.classifier_status = (f"loaded {path}: trained on {model.n_training_pixels} pixels, "
                                  f"classes {list(map(int, model.classes))}")
        self.classifier_changed.emit(self.classifier_status)
        return f"Classifier loaded (classes {list(map(int, model.classes))})."

    def prediction_job(self) -> Job:
        """Classify every pixel of the image with the current (e.g. loaded) classifier."""
        image = self.require_image()
        model = self.classifier
        if model is None:
            raise ValueError("No classifier: train one on your strokes or load a saved one first.")
        if image.data.ndim != model.ndim:
            raise ValueError(f"The classifier was trained on {model.ndim}D data; '{image.name}' is "
                             f"{image.data.ndim}D.")
        name = result_name(image.name, "prediction", "classes")
        geometry = layer_kwargs(image)
        if name not in self.viewer.layers:
            geometry["opacity"] = 0.5

        def finish(prediction) -> str:
            layer = upsert_layer(self.viewer, prediction, name=name, kind="labels", **geometry,
                                 metadata={ROLE: "prediction", "cryomat_image": image.name})
            self._colour(layer)
            return f"{image.name} classified into classes {sorted(map(int, np.unique(prediction)))}."

        return Job("Pixel classifier", _predict, (model, image_data(image)), {}, finish)

    def interpolation_job(self) -> Job:
        """Fill the slices between painted slices of a stack or tomogram (first axis)."""
        layer = self.require_annotation()
        if layer.data.ndim < 3:
            raise ValueError("Interpolation needs a stack or tomogram: this annotation is 2D.")

        def finish(fill) -> str | None:
            index, values = fill
            if index[0].size == 0:
                return "Nothing to interpolate: paint the same label on two slices with a gap between them."
            free = np.asarray(layer.data[index]) == 0  # never overwrite what was painted meanwhile
            layer.data_setitem(tuple(i[free] for i in index), values[free])
            self.autosave.mark_dirty()
            return None

        return Job("Interpolation", _interpolation_fill, (np.array(layer.data, copy=True),), {}, finish)

    def close(self) -> None:
        """Save what is pending and let go of the viewer (the dock is closing)."""
        self.autosave.flush()
        self._watch(self.annotation, False)
        try:
            self.viewer.layers.events.removing.disconnect(self._on_removing)
        except (TypeError, ValueError, RuntimeError):
            pass


def _particles(data, series: bool, *, progress=None, split: bool = True, **options):
    """Worker: labels (compact type) and the settings used. A movie's settings are read off its first
    frame and kept for every frame, so that the frames are segmented alike (and track well)."""
    if series:
        settings_options = dict(options)
        diameter = settings_options.pop("diameter")
        settings = seg.estimate_particle_settings(np.asarray(data[0]), diameter=diameter, **settings_options)
        labels = seg.segment_series(data, pixel_size=options["pixel_size"], split=split, progress=progress,
                                    **settings.options())
        return compact_labels(labels), settings
    labels, settings = seg.segment_particles(data, split=split, return_settings=True, progress=progress, **options)
    return compact_labels(labels), settings


def _predict(model, image, *, progress=None):
    """Worker: the class of every pixel."""
    return model.predict(image, progress=progress)


def _train_and_predict(image, scribbles, *, progress=None, **settings):
    """Worker: train on the strokes (first 30 % of the bar), then predict every pixel."""

    model = seg.train_pixel_classifier(image, scribbles, progress=sub_progress(progress, 0.0, 0.3), **settings)
    return model, model.predict(image, progress=sub_progress(progress, 0.3, 1.0))


def _interpolation_fill(labels: np.ndarray, *, progress=None):
    """Worker: where interpolation between slices paints, and with which values."""
    filled = seg.interpolate_slices(labels, axis=0)
    index = np.nonzero(filled != labels)
    if progress is not None:
        progress(1.0)
    return index, filled[index]
