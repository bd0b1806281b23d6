"""State of the Batch results dock: an output folder of ``cryomat batch segment``, its classes and
the object shown in the viewer. No Qt.

Work that reads files (the tables, thumbnails, an object's image and labels) is in plain methods
the view runs in worker threads (:meth:`read_folder`, :meth:`make_thumbnails`,
:meth:`load_object`); what touches the viewer runs on the GUI thread (:meth:`set_results`,
:meth:`show_object`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from napari_cryomat.batch.results import BatchResults, ThumbnailMaker, load_results
from napari_cryomat.widgets._base.layers import camera_of, upsert_layer

if TYPE_CHECKING:
    import napari

__all__ = ["BatchResultsModel", "LoadedObject", "GALLERY_SIZE", "describe_class"]

GALLERY_SIZE = 60  # thumbnails per class in the gallery
SUMMARY_SHOWN = ["name", "status", "n_objects", "frames", "pixel_size_A", "pixel_size_source", "error"]


#: words for a class's mean shape, in the order they are tried (the report's table gives the numbers):
ELONGATED_ASPECT = 1.5  # major/minor axis: rods, needles, chains of two
IRREGULAR_SOLIDITY = 0.85  # area / convex hull area: a concave or ragged outline (touching particles, dendrites)
ROUND_ASPECT, ROUND_CIRCULARITY = 1.2, 0.8  # near-circles (a digitised disc reads 0.93-0.97, a square 0.80-0.96)


def describe_class(objects) -> tuple[str, str]:
    """(short, full) words for a group of objects: "Ø 166 Å, round" and the means behind it
    ("equivalent diameter 166 ± 12 Å · aspect ratio 1.04 · circularity 0.92 · solidity 0.95").
    The classes of ``cryomat batch segment`` are k-means clusters of standardised shape features, numbered
    by size: without words a user sees "class 1 (52 objects)" and must open thumbnails to guess what it is."""
    def mean(column):
        return float(objects[column].mean()) if column in objects and len(objects) else float("nan")

    aspect, solidity, circularity = mean("aspect_ratio"), mean("solidity"), mean("circularity")
    if aspect >= ELONGATED_ASPECT:
        shape = "elongated"
    elif solidity < IRREGULAR_SOLIDITY:
        shape = "irregular"
    elif aspect < ROUND_ASPECT and circularity >= ROUND_CIRCULARITY:
        shape = "round"
    elif np.isfinite(aspect):
        shape = "oval"
    else:
        shape = ""
    diameter = mean("equivalent_diameter")
    short = ", ".join(part for part in (f"Ø {diameter:.0f} Å" if np.isfinite(diameter) else "", shape) if part)
    full = []
    if np.isfinite(diameter):
        full.append(f"equivalent diameter {diameter:.0f} ± {float(objects['equivalent_diameter'].std(ddof=0)):.0f} Å")
    for column, name in (("aspect_ratio", "aspect ratio"), ("circularity", "circularity"), ("solidity", "solidity")):
        if np.isfinite(mean(column)):
            full.append(f"{name} {mean(column):.2f}")
    return short, " · ".join(full)


@dataclass
class LoadedObject:
    """An object's file, read in a worker, ready to be shown."""

    row: int
    name: str
    image: tuple  # LayerData from the project's reader (lazy data, kwargs, "image")
    labels: np.ndarray  # the whole labels file (Y, X) or (T, Y, X)


class BatchResultsModel:
    """The opened output folder (``results``) and what is shown from it."""

    opened = Signal(object)  # BatchResults
    object_shown = Signal(int)  # row of results.objects

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self.viewer = viewer
        self.results: BatchResults | None = None
        self._thumbs: ThumbnailMaker | None = None
        self.layer_names: tuple[str, str] | None = None  # image, labels of the file on screen
        self.shown_row: int | None = None

    # -- worker side ---------------------------------------------------------------------------
    @staticmethod
    def read_folder(folder) -> BatchResults:
        """Read an output folder (in a worker); ValueError names what is missing."""
        return load_results(folder)

    def class_counts(self) -> dict[int, int]:
        return self.results.class_counts() if self.results is not None else {}

    def class_descriptions(self) -> dict[int, tuple[str, str]]:
        """{class: (short, full) description} (:func:`describe_class`); class 0: the objects not classified."""
        if self.results is None:
            return {}
        objects = self.results.objects
        if "shape_class" not in objects:
            return {0: describe_class(objects)} if len(objects) else {}
        return {int(k): describe_class(group) for k, group in objects.groupby("shape_class")}

    def gallery_rows(self, class_id: int, limit: int = GALLERY_SIZE) -> list[int]:
        """Rows of the objects table shown for ``class_id``: spread over the class's size range."""
        objects = self.results.objects
        rows = objects.index[objects["shape_class"] == class_id] if "shape_class" in objects else objects.index
        if "equivalent_diameter" in objects:
            rows = objects.loc[rows, "equivalent_diameter"].sort_values(kind="stable").index
        if len(rows) > limit:
            rows = rows[np.linspace(0, len(rows) - 1, limit).round().astype(int)]
        return [int(r) for r in rows]

    def make_thumbnails(self, rows: list[int]) -> list[tuple[int, np.ndarray | None]]:
        """(row, RGB thumbnail or None when its image cannot be read) for ``rows`` (in a worker)."""
        maker = self._thumbs
        out = []
        for row in rows:
            try:
                out.append((row, maker.thumbnail(self.results.objects.loc[row])))
            except (OSError, ValueError, IndexError, KeyError):
                out.append((row, None))
        return out

    def load_object(self, row: int) -> LoadedObject:
        """Read the image (lazily, through the project's readers) and labels of ``row``'s file."""
        from napari_cryomat.batch._images import image_layer
        from napari_cryomat.io.tiff import read_tiff

        obj = self.results.objects.loc[row]
        image, _ = image_layer(Path(obj["file"]))
        [(labels, _, _)] = read_tiff(self.results.labels_file(str(obj["name"])))
        return LoadedObject(row=int(row), name=str(obj["name"]), image=image, labels=np.asarray(labels))

    # -- GUI side ------------------------------------------------------------------------------
    def set_results(self, results: BatchResults) -> None:
        self.results = results
        self._thumbs = ThumbnailMaker(results.outdir, size=72)
        self.shown_row = None
        self.opened.emit(results)

    def objects_table(self):
        """The objects with the columns a user scans first (name, frame, label, class) in front."""
        objects = self.results.objects
        first = [c for c in ("name", "frame", "label", "shape_class", "pixel_class", "area", "equivalent_diameter")
                 if c in objects]
        return objects[first + [c for c in objects.columns if c not in first]]

    def summary_table(self):
        s = self.results.summary
        return s[[c for c in SUMMARY_SHOWN if c in s]] if len(s) else s

    def show_object(self, loaded: LoadedObject) -> None:
        """Show the object's image and labels, go to its frame, select it and centre on it."""
        data, kwargs, _ = loaded.image
        obj = self.results.objects.loc[loaded.row]
        image_name, labels_name = loaded.name, f"{loaded.name} labels"
        if self.layer_names and self.layer_names[0] != image_name:
            for old in self.layer_names:  # one file at a time: the previous one goes
                if old in self.viewer.layers:
                    self.viewer.layers.remove(old)
        keep = {k: kwargs[k] for k in ("scale", "units", "contrast_limits", "metadata", "colormap") if k in kwargs}
        image = upsert_layer(self.viewer, data, name=image_name, kind="image", **keep)
        labels = loaded.labels
        if labels.ndim < np.ndim(data):
            labels = labels.reshape(np.shape(data))  # a 1-frame stack written as one image
        layer = upsert_layer(self.viewer, labels, name=labels_name, kind="labels", scale=tuple(image.scale),
                             units=tuple(image.units), opacity=0.5)
        self.layer_names = (image_name, labels_name)
        frame = int(obj["frame"])
        if np.ndim(data) == 3:
            self.viewer.dims.set_point(0, frame * float(image.scale[0]) + float(image.translate[0]))
        layer.selected_label = int(obj["label"])
        layer.show_selected_label = False
        self.viewer.layers.selection.active = layer
        self._centre_on(obj, image)
        self.shown_row = loaded.row
        self.object_shown.emit(loaded.row)

    def _centre_on(self, obj, image) -> None:
        """Centre the camera on the object and zoom so that it fills about a quarter of the view."""
        px = float(obj["pixel_size_A"])
        # centroids are in Å from pixel 0 of the file; the layer may have another calibration
        centre = [float(obj["centroid_y"]) / px, float(obj["centroid_x"]) / px]
        world = [c * float(s) + float(t) for c, s, t in zip(centre, image.scale[-2:], image.translate[-2:])]
        camera = camera_of(self.viewer)
        camera.center = tuple(world)
        extent = float(obj.get("feret_diameter_max", 20 * px)) / px * float(image.scale[-1])
        canvas = min(getattr(self.viewer, "_canvas_size", (600, 600)))
        camera.zoom = max(canvas, 100) / max(4 * extent, 1e-9)


    def close(self) -> None:
        self.results = None
        self._thumbs = None
