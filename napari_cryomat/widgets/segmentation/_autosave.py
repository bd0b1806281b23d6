"""Autosave of the annotation being painted, and the offer to restore one. No Qt.

The file format, atomic writes and the image key are :mod:`napari_cryomat.core.annotation`'s; this
module keeps the bookkeeping of one tool session:

- which labels layer is saved, under which key, to which folder (the user's choice, else
  :func:`core.annotation.default_folder`);
- whether anything changed since the last save. Edits are counted, not flagged: a save runs in a
  worker while the user keeps painting, and an edit made during the write must stay "unsaved";
- that a slow, older write never replaces a newer one on disk (writes carry their edit count and
  run under a lock);
- which autosave to offer back, and whether to say so: only work from an earlier session is
  announced (what this session saved a minute ago is not news, but stays restorable).

The view calls :meth:`AnnotationAutosave.take_job` from its timer, runs :meth:`write` in a worker
and hands the result to :meth:`saved`; :meth:`flush` saves synchronously on close.
"""

from __future__ import annotations

import datetime
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import Signal

from napari_cryomat.core import annotation as ann
from napari_cryomat.widgets._base.layers import image_data, pixel_size_of

__all__ = ["SESSION_ID", "AnnotationAutosave", "RestoreQuery", "SaveJob", "source_of"]

#: identifies this napari session in every autosave it writes
SESSION_ID = uuid.uuid4().hex


def source_of(layer) -> str | None:
    """The file a layer was opened from, or None."""
    return getattr(getattr(layer, "source", None), "path", None)


@dataclass(frozen=True)
class SaveJob:
    """Everything one write needs (built on the GUI thread, written anywhere)."""

    folder: Path
    key: str
    labels: Any
    classes: list
    metadata: dict
    edits: int


@dataclass(frozen=True)
class RestoreQuery:
    """Look for an autosave of one image: its data (keyed lazily, in a worker) and where to look."""

    data: Any = field(repr=False)
    source: str | None
    name: str
    folders: tuple
    shape: tuple


class AnnotationAutosave:
    """Autosave bookkeeping for the annotation layer a tool is editing (one at a time)."""

    status_changed = Signal(str)
    enabled_changed = Signal(bool)
    restorable_changed = Signal(object)  # core.annotation.Annotation or None
    error = Signal(str)  # a problem the user must act on (an unwritable folder)
    notice = Signal(str)  # something the user should know (an earlier autosave was moved aside)

    def __init__(self, *, enabled: bool = True, interval: float = 30.0):
        # on by default: people annotate for hours and must never lose work
        self.enabled = bool(enabled)
        self.interval = float(interval)
        self.folder_choice = ""  # the user's folder; "" = core.annotation.default_folder
        self.layer = None
        self.key: str | None = None
        self.folder: Path | None = None
        self.status = ""
        self.restorable: ann.Annotation | None = None
        # edits are counted over the whole session (never reset), so that the count written to a
        # file (_on_disk) stays comparable when a layer is attached again
        self._edits = 0
        self._saved = 0  # edits contained in the last finished save
        self._in_flight = -1  # edits of the job handed to a worker, -1 if none
        self._write_lock = threading.Lock()
        self._on_disk: dict[Path, int] = {}  # newest edit count written per file
        self._announced: set = set()
        self.kept_earlier: Path | None = None  # where an earlier session's autosave was moved
        self._kept_unannounced: Path | None = None
        self._set_status("on: starts with the first annotation (New annotation)")

    # -- state ----------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self._edits > self._saved

    def _set_status(self, text: str) -> None:
        self.status = text
        self.status_changed.emit(text)

    def folder_for(self, source: str | None) -> Path:
        return Path(self.folder_choice) if self.folder_choice else ann.default_folder(source)

    def set_enabled(self, on: bool) -> None:
        """Switch autosave on (starts at once on the attached layer) or off (saves what is pending)."""
        if bool(on) == self.enabled:
            return
        if not on:
            self.flush()
        self.enabled = bool(on)
        self.enabled_changed.emit(self.enabled)
        if on:
            self._start()
        else:
            self._set_status("off")

    def set_folder(self, folder: str) -> None:
        """Use ``folder`` ("" = the default). An unwritable folder is reported at once and stops
        saving, rather than failing silently after hours of work; a writable one switches it on."""
        folder = str(folder).strip()
        if folder == self.folder_choice and (self.enabled or not folder):
            return
        self.flush()
        self.folder_choice = folder
        if folder:
            try:
                ann.check_writable(folder)
            except ValueError as exc:
                self._fail(exc)
                return
        if not self.enabled:
            self.enabled = True
            self.enabled_changed.emit(True)
        self._start()

    def _fail(self, exc: Exception) -> None:
        self.key = self.folder = None
        if self.enabled:
            self.enabled = False
            self.enabled_changed.emit(False)
        self._set_status(f"NOT SAVING: {exc}")
        self.error.emit(str(exc))

    # -- the layer ------------------------------------------------------------------------------
    def attach(self, layer) -> None:
        """Save ``layer`` from now on (``None``: nothing to save). The previous layer is flushed.

        The layer must carry ``metadata["cryomat_key"]`` (the model sets it on the annotations it
        makes and on a labels layer of the user's that lies on the image)."""
        if layer is self.layer:
            return
        self.flush()
        self.layer = layer
        self._saved = self._edits  # nothing of the new layer is unsaved yet
        self._in_flight = -1
        self._start()

    def _start(self) -> None:
        layer = self.layer
        if not self.enabled:
            return
        if layer is None:
            self.key = self.folder = None
            self._set_status("on: waiting for an annotation (New annotation)")
            return
        key = layer.metadata.get("cryomat_key")
        if not key:
            self.key = self.folder = None
            self._set_status("NOT SAVING: choose the image of this annotation (autosave names the file after it).")
            return
        try:
            folder = ann.check_writable(self.folder_for(layer.metadata.get("cryomat_source")))
        except ValueError as exc:
            self._fail(exc)
            return
        self.key, self.folder = key, folder
        # nothing is written before the first edit: an empty new annotation must not replace an
        # autosave on disk
        self._set_status(f"on: {ann.autosave_path(folder, key)}")

    def mark_dirty(self, *_args) -> None:
        self._edits += 1

    # -- saving ---------------------------------------------------------------------------------
    def take_job(self, *, force: bool = False) -> SaveJob | None:
        """GUI thread: the save to run now, or None (off, nothing new, or a write already running)."""
        if not self.enabled or self.layer is None or self.key is None or not self.dirty:
            return None
        if not force and self._in_flight >= self._edits:
            return None
        layer = self.layer
        try:
            pixel_size = float(pixel_size_of(layer))
        except ValueError:
            pixel_size = float(layer.scale[-1])
        metadata = {"layer": layer.name, "pixel_size_A": pixel_size, "image": layer.metadata.get("cryomat_image"),
                    "session": SESSION_ID}
        classes = [dict(c) for c in layer.metadata.get("classes", [])]
        job = SaveJob(self.folder, self.key, layer.data, classes, metadata, self._edits)
        self._in_flight = job.edits
        return job

    def write(self, job: SaveJob) -> Path | None:
        """Any thread: write ``job`` atomically; None when a newer save is already on disk."""
        path = ann.autosave_path(job.folder, job.key)
        with self._write_lock:
            if self._on_disk.get(path, -1) >= job.edits:
                return None
            if path not in self._on_disk:
                self._kept_unannounced = _keep_earlier_session(path) or self._kept_unannounced
            ann.save_annotation(job.folder, job.key, job.labels, classes=job.classes, metadata=job.metadata)
            self._on_disk[path] = job.edits
        return path

    def adopt(self, path) -> None:
        """The autosave at ``path`` was restored: later saves may replace it (no copy kept)."""
        self._on_disk.setdefault(Path(path), 0)

    def saved(self, job: SaveJob, path: Path | None, error: BaseException | None = None) -> None:
        """GUI thread: the write of ``job`` finished (``error``: it failed; the edits stay unsaved)."""
        if job.key != self.key:
            return  # the layer changed meanwhile: that save was flushed already
        self._in_flight = -1
        if error is not None:
            self._set_status(f"NOT SAVING: {error}. Choose another autosave folder.")
            return
        self._saved = max(self._saved, job.edits)
        if path is not None:
            self._set_status(f"saved {datetime.datetime.now():%H:%M:%S} to {path}")
        kept, self._kept_unannounced = self._kept_unannounced, None
        if kept is not None:
            self.kept_earlier = kept
            self.notice.emit(f"The autosave an earlier session left at {path} was kept as {kept}; "
                             "this annotation is saved in its place.")

    def flush(self) -> Path | None:
        """Save now, on the calling thread, if anything changed (on close, quit, layer removal)."""
        job = self.take_job(force=True)
        if job is None:
            return None
        try:
            path = self.write(job)
        except (OSError, ValueError) as exc:
            self.saved(job, None, exc)
            return None
        self.saved(job, path)
        return path

    # -- restoring ------------------------------------------------------------------------------
    def query(self, image) -> RestoreQuery:
        """GUI thread: where to look for an autosave of the image layer ``image`` (cheap)."""
        source = source_of(image)
        folders = tuple(dict.fromkeys(os.fspath(f) for f in (self.folder_for(source), ann.default_folder(source))))
        return RestoreQuery(image_data(image), source, image.name, folders, tuple(image.data.shape))

    @staticmethod
    def find(query: RestoreQuery) -> ann.Annotation | None:
        """Any thread: the newest autosave of the queried image that fits its shape, or None."""
        key = ann.image_key(query.data, source=query.source, name=query.name)
        found = ann.find_autosave(key, query.folders)
        if found is None or tuple(found.labels.shape) != query.shape:
            return None
        return found

    def offer(self, found: ann.Annotation | None) -> str | None:
        """GUI thread: make ``found`` the restorable autosave. Returns the message to show when it is
        work from an earlier session not announced yet, else None."""
        self.restorable = found
        self.restorable_changed.emit(found)
        if found is None or found.metadata.get("session") == SESSION_ID:
            return None
        token = (str(found.path), found.saved_at)
        if token in self._announced:
            return None
        self._announced.add(token)
        return (f"An autosaved annotation of '{found.metadata.get('image') or 'this image'}' from "
                f"{saved_when(found)} exists: press 'Restore autosave' in the Segmentation dock to get it back.")


def _keep_earlier_session(path: Path) -> Path | None:
    """Before this session first writes ``path``: move an autosave there that an earlier session
    wrote (and nobody restored) aside, so a new annotation never replaces older work. Returns the
    new place, or None."""
    earlier = ann.load_annotation(path.parent, path.name[: -len(ann.SUFFIX)])
    if earlier is None or earlier.metadata.get("session") == SESSION_ID:
        return None
    stamp = datetime.datetime.fromtimestamp(earlier.saved_at).strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.name[: -len('.npz')]}.{stamp}.npz")
    os.replace(path, kept)
    return kept


def saved_when(found: ann.Annotation) -> str:
    return datetime.datetime.fromtimestamp(found.saved_at).strftime("%Y-%m-%d %H:%M:%S")
