"""One file of ``cryomat batch segment``: segment every frame, measure, write the outputs.

:func:`segment_file` is the task a dask worker runs. For ``OUTDIR`` and an input ``<name>.<ext>`` it
writes

- ``<name>_labels.tif``: the labels (Y, X) or (T, Y, X), int32, zlib-compressed, with the pixel size
  (the plugin's own ``voxel_size_angstrom`` metadata, read back by ``io.tiff``, and the TIFF
  resolution tags in pixels per cm that Fiji and others read);
- ``parts/<name>.parquet``: its objects (file, frame, label, pixel size, the columns of
  :func:`napari_cryomat.core.measure.measure` in Å, Å²);
- ``parts/<name>.json`` last: the file's summary, the settings and the input's size and time. It is
  the "done" marker: a rerun with the same settings skips a file whose marker matches.

The core functions are called as they are; nothing here changes them. No Qt, no napari.
"""

from __future__ import annotations

import inspect
import json
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from napari_cryomat.batch._images import BatchInputError, open_image

__all__ = ["SegmentSettings", "BatchSettingsError", "segment_file", "load_classifier", "done_marker",
           "is_done", "PARTS", "labels_path"]

PARTS = "parts"
METHODS = ("particles", "classifier")


class BatchSettingsError(ValueError):
    """Settings that would make every file fail (bad method, model, pixel size, options)."""


@dataclass(frozen=True)
class SegmentSettings:
    """How every file of a batch is segmented.

    ``pixel_size`` (Å) is used for files without a spatial calibration; files that have one are
    measured in their own Å. ``options`` are keywords of
    :func:`~napari_cryomat.core.segment.segment_particles` (default: its own defaults).
    ``background_class``: with ``method="classifier"``, the pixel class that is not an object
    (default: the class covering most of each frame).
    """

    method: str = "particles"
    model: str | None = None
    pixel_size: float | None = None
    options: dict = field(default_factory=dict)
    background_class: int | None = None

    def check(self) -> SegmentSettings:
        """Validate before anything starts; raises :class:`BatchSettingsError` naming the setting."""
        if self.method not in METHODS:
            raise BatchSettingsError(f"method must be one of {METHODS}; got {self.method!r}.")
        if self.pixel_size is not None and not (np.isfinite(self.pixel_size) and 1e-4 <= self.pixel_size <= 1e7):
            raise BatchSettingsError(f"pixel_size must be a pixel size in Å (1e-4 .. 1e7); got {self.pixel_size}.")
        if self.method == "particles":
            from napari_cryomat.core.segment import segment_particles

            known = set(inspect.signature(segment_particles).parameters) - {"image", "pixel_size", "progress", "return_settings"}
            unknown = sorted(set(self.options) - known)
            if unknown:
                raise BatchSettingsError(f"unknown segment_particles option(s) {unknown}; known: {sorted(known)}.")
        else:
            if not self.model:
                raise BatchSettingsError("method 'classifier' needs a model file (--model FILE), saved from the "
                                         "Segmentation dock or with PixelClassifier.save.")
            load_classifier(self.model)
            if self.background_class is not None and self.background_class < 1:
                raise BatchSettingsError(f"background_class must be a class value >= 1; got {self.background_class}.")
        return self

    def key(self) -> dict:
        """What a done marker must match for a rerun to skip the file (the model by size and time).

        The fallback pixel size is not part of it: it matters only to files without a calibration,
        and :func:`is_done` checks it for those.
        """
        key = asdict(self)
        del key["pixel_size"]
        key["options"] = {k: self.options[k] for k in sorted(self.options)}
        if self.model:
            st = os.stat(self.model)
            key["model"] = [os.path.abspath(self.model), st.st_size, st.st_mtime_ns]
        return json.loads(json.dumps(key, default=str))


_CLASSIFIERS: dict = {}  # per worker process: (path, size, mtime) -> PixelClassifier


def load_classifier(path):
    """Load a pixel classifier saved by this version (``PixelClassifier.load``), once per process."""
    from napari_cryomat.core.segment import PixelClassifier

    path = Path(path)
    if not path.is_file():
        raise BatchSettingsError(f"model file {path} does not exist.")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _CLASSIFIERS:
        return _CLASSIFIERS[key]
    load = getattr(PixelClassifier, "load", None)
    if load is None:
        raise BatchSettingsError(
            f"model {path.name}: this version of napari-cryomat cannot load pixel classifiers "
            "(PixelClassifier.load is missing); --method classifier needs a model saved by a version that has it."
        )
    try:
        model = load(str(path))
    except (ValueError, OSError, TypeError) as exc:  # e.g. saved by another version: load says which
        raise BatchSettingsError(f"model {path.name}: {exc}") from None
    _CLASSIFIERS.clear()
    _CLASSIFIERS[key] = model
    return model


def labels_path(outdir, name: str) -> Path:
    return Path(outdir) / f"{name}_labels.tif"


def done_marker(outdir, name: str) -> Path:
    return Path(outdir) / PARTS / f"{name}.json"


def _input_stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_done(path, outdir, name: str, settings: SegmentSettings) -> dict | None:
    """The summary of an earlier run of this file with the same settings, or None if it must run."""
    marker = done_marker(outdir, name)
    try:
        done = json.loads(marker.read_text())
        same = (done.get("status") == "ok" and done.get("settings") == settings.key()
                and done.get("input") == _input_stamp(Path(path)))
        if done.get("pixel_size_source") == "--pixel-size":
            same = same and settings.pixel_size is not None and abs(done["pixel_size_A"] - settings.pixel_size) < 1e-9
    except (OSError, ValueError):
        return None
    parts_ok = (Path(outdir) / PARTS / f"{name}.parquet").is_file() and labels_path(outdir, name).is_file()
    return done if same and parts_ok else None


def _segment_frame(frame: np.ndarray, pixel_size: float, settings: SegmentSettings, assumed: dict | None = None):
    """Labels (int32) of one frame and, for the classifier, the pixel class of each label. For particles, what the
    first frame's segmentation assumed goes into ``assumed`` ("assumed": the settings in one line, "caution": a
    sentence where the particles' size was read at the pixel noise's scale, else "")."""
    if settings.method == "particles":
        from napari_cryomat.core.segment import segment_particles

        labels, used = segment_particles(frame, pixel_size=pixel_size, return_settings=True, **settings.options)
        if assumed is not None and not assumed:
            assumed.update(assumed=used.describe(), caution=used.caution())
        return np.asarray(labels, dtype=np.int32), None
    from napari_cryomat.core.measure import instances_from_classes

    classes = np.asarray(load_classifier(settings.model).predict(frame))
    background = settings.background_class
    if background is None:
        values, counts = np.unique(classes, return_counts=True)
        background = int(values[np.argmax(counts)])
    objects, object_class = instances_from_classes(np.where(classes == background, 0, classes))
    return objects.astype(np.int32), object_class


def _measured(labels, frame, pixel_size, object_class, meta: dict):
    from napari_cryomat.core.measure import measure

    table = measure(labels, frame, pixel_size=pixel_size)
    table.insert(0, "pixel_size_A", float(pixel_size))
    table.insert(0, "frame", int(meta["frame"]))
    table.insert(0, "name", meta["name"])
    table.insert(0, "file", meta["file"])
    if object_class is not None:
        table["pixel_class"] = object_class[table["label"].to_numpy()] if len(table) else np.zeros(0, int)
    return table


def _write_labels(path: Path, frames, pixel_size: float, segment_one) -> None:
    """Write labels frame by frame (one frame in memory at a time), atomically."""
    import tifffile

    n, ny, nx = frames.shape
    tmp = path.with_name(path.name + ".part")
    shape = (n, ny, nx) if n > 1 or frames.is_stack else (ny, nx)
    px_per_cm = 1e8 / pixel_size
    try:
        tifffile.imwrite(
            tmp, (segment_one(t) for t in range(n)), shape=shape, dtype=np.int32, compression="zlib",
            photometric="minisblack", metadata={"voxel_size_angstrom": [pixel_size, pixel_size], "labels": True},
            resolution=(px_per_cm, px_per_cm), resolutionunit="CENTIMETER",
        )
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _Frames:
    """The source's frames with the flag the writer needs (a 1-frame stack stays 3D)."""

    def __init__(self, data, is_stack: bool):
        self.data, self.is_stack, self.shape = data, is_stack, tuple(data.shape)


def _run_file(path: Path, outdir: Path, name: str, settings: SegmentSettings) -> dict:
    import pandas as pd

    src = open_image(path)
    if src.pixel_size is not None:
        pixel_size, source = src.pixel_size, "file"
    elif settings.pixel_size is not None:
        pixel_size, source = float(settings.pixel_size), "--pixel-size"
    else:
        raise BatchInputError(f"{path.name}: the file has no pixel size (no spatial calibration): "
                              "give it with --pixel-size Å (pixel_size=...).")
    tables, areas, assumed = [], [], {}

    def segment_one(t: int) -> np.ndarray:
        frame = np.asarray(src.frames[t], dtype=np.float32)
        try:
            labels, object_class = _segment_frame(frame, pixel_size, settings, assumed)
            tables.append(_measured(labels, frame, pixel_size, object_class,
                                    {"file": str(path), "name": name, "frame": t}))
        except ValueError as exc:
            raise ValueError(f"frame {t}: {exc}" if src.frames.shape[0] > 1 else str(exc)) from None
        areas.append(float(np.count_nonzero(labels)) / labels.size)
        return labels

    _write_labels(labels_path(outdir, name), _Frames(src.frames, src.is_stack), pixel_size, segment_one)
    objects = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame({"label": []})
    part = Path(outdir) / PARTS / f"{name}.parquet"
    objects.to_parquet(part.with_name(part.name + ".part"), index=False)
    os.replace(part.with_name(part.name + ".part"), part)
    area = objects["area"] if "area" in objects else pd.Series(dtype=float)
    diameter = objects["equivalent_diameter"] if "equivalent_diameter" in objects else pd.Series(dtype=float)
    return {
        "frames": int(src.frames.shape[0]), "height": int(src.frames.shape[1]), "width": int(src.frames.shape[2]),
        "layer": src.layer_name, "pixel_size_A": float(pixel_size), "pixel_size_source": source,
        "n_objects": int(len(objects)), "objects_per_frame": float(len(objects) / src.frames.shape[0]),
        "area_fraction": float(np.mean(areas)) if areas else 0.0,
        "mean_area_A2": float(area.mean()) if len(area) else float("nan"),
        "median_diameter_A": float(diameter.median()) if len(diameter) else float("nan"),
        "assumed": assumed.get("assumed", ""), "caution": assumed.get("caution", ""),
    }


def segment_file(path, outdir, name: str, settings: SegmentSettings) -> dict:
    """Segment, measure and write one file. Never raises: returns its summary row as a dict,
    ``status`` "ok" or "failed" (with ``error``, and ``trace`` for unexpected errors)."""
    path, outdir = Path(path), Path(outdir)
    start, cpu_start = time.perf_counter(), time.process_time()
    row = {"name": name, "file": str(path), "status": "failed", "error": ""}
    try:
        row.update(_run_file(path, outdir, name, settings))
        row["status"] = "ok"
    except (ValueError, OSError, MemoryError) as exc:  # the user's data or disk: a message is enough
        text = str(exc) or type(exc).__name__
        row["error"] = text if path.name in text else f"{path.name}: {text}"
    except Exception as exc:  # noqa: BLE001 - a bug must not stop the other files; keep its trace
        row["error"] = f"{path.name}: {type(exc).__name__}: {exc}"
        row["trace"] = traceback.format_exc()
    row["seconds"] = round(time.perf_counter() - start, 3)
    row["cpu_seconds"] = round(time.process_time() - cpu_start, 3)  # the cost on a machine shared with others
    if row["status"] == "ok":
        marker = done_marker(outdir, name)
        record = dict(row, settings=settings.key(), input=_input_stamp(path))
        marker.with_name(marker.name + ".part").write_text(json.dumps(record, indent=1))
        os.replace(marker.with_name(marker.name + ".part"), marker)
    return row
