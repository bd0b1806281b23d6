"""Annotation that never loses work: atomic autosave and restore of labels and their class table.

Pure logic, no Qt: the segmentation widget calls these from a timer and on close.

- An image gets a stable key (:func:`image_key`): from its file path when it has one, otherwise
  from its shape, dtype and a strided sample of its pixels, so reopening the same image (or
  regenerating the same sample) finds its autosave again.
- :func:`save_annotation` writes ``<key>.labels.npz`` atomically: to a temporary file in the same
  folder, flushed and fsync'ed, then ``os.replace``-d over the previous save. A process killed at
  any moment leaves either the old or the new complete file, never a torn one.
- :func:`check_writable` tests a folder at once, so the user hears about an unwritable folder when
  switching autosave on, not after a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "DEFAULT_CLASSES",
    "Annotation",
    "Autosaver",
    "image_key",
    "default_folder",
    "check_writable",
    "save_annotation",
    "load_annotation",
    "find_autosave",
    "autosave_path",
]

#: Default class table: (name, colour) for label values 1, 2, ...
DEFAULT_CLASSES: tuple[tuple[str, str], ...] = (
    ("particle", "#e6194b"),
    ("dendrite", "#3cb44b"),
    ("SEI", "#ffe119"),
    ("void", "#4363d8"),
    ("ice", "#42d4f4"),
)

SUFFIX = ".labels.npz"


def image_key(data, *, source: str | os.PathLike | None = None, name: str | None = None) -> str:
    """A short stable key identifying an image across sessions.

    Parameters
    ----------
    data : array-like
        The image (numpy, memmap or dask); only a strided sample of at most ~65k pixels is read.
    source : path, optional
        The file the image was opened from; when given the key depends on the absolute path and
        the shape only, so it survives changes to the in-memory data (contrast, dtype casts).
    name : str, optional
        A readable prefix (the layer name) put in front of the hash.
    """
    shape = tuple(int(s) for s in np.shape(data))
    h = hashlib.sha1()
    h.update(repr(shape).encode())
    if source:
        h.update(os.path.abspath(os.fspath(source)).encode())
    else:
        h.update(str(np.dtype(getattr(data, "dtype", np.float64))).encode())
        n = int(np.prod(shape)) if shape else 1
        step = max(1, int(np.ceil((n / 65536) ** (1 / max(len(shape), 1)))))
        sample = np.asarray(data[tuple(slice(None, None, step) for _ in shape)])
        h.update(np.ascontiguousarray(sample).tobytes())
    digest = h.hexdigest()[:16]
    if name:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name))[:40]
        return f"{safe}-{digest}"
    return digest


def default_folder(source: str | os.PathLike | None = None) -> Path:
    """Where autosaves go by default: next to the image file (in ``.cryomat_annotations``), or, for
    images without a file, in ``$CRYOMAT_AUTOSAVE_DIR`` or ``~/.cache/napari-cryomat/annotations``."""
    if source:
        return Path(os.path.abspath(os.fspath(source))).parent / ".cryomat_annotations"
    env = os.environ.get("CRYOMAT_AUTOSAVE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "napari-cryomat" / "annotations"


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove that a file can be written there.

    Raises
    ------
    ValueError
        With a message telling the user to choose another folder.
    """
    p = Path(folder)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cryomat-write-test-", dir=p)
        os.write(fd, b"ok")
        os.close(fd)
        os.remove(tmp)
    except OSError as exc:
        raise ValueError(
            f"Cannot write autosaves to {p} ({exc.strerror or exc}). Choose another autosave folder "
            "before you start annotating, or your work will not be saved."
        ) from None
    return p


def autosave_path(folder: str | os.PathLike, key: str) -> Path:
    return Path(folder) / f"{key}{SUFFIX}"


@dataclass
class Annotation:
    """A restored annotation."""

    labels: np.ndarray
    classes: list[dict] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    saved_at: float = 0.0
    path: Path | None = None


def save_annotation(folder: str | os.PathLike, key: str, labels, *,
                    classes: Sequence[dict] | None = None, metadata: dict | None = None,
                    compress: bool = True) -> Path:
    """Write labels and their class table atomically to ``<folder>/<key>.labels.npz``.

    Parameters
    ----------
    folder : path
    key : str
        From :func:`image_key`.
    labels : int array
    classes : list of dict, optional
        The class table, e.g. ``[{"id": 1, "name": "particle", "colour": "#e6194b"}, ...]``.
    metadata : dict, optional
        Anything JSON-serialisable (pixel size in Å, image name, ...).
    compress : bool
        zlib-compress (labels compress very well).

    Returns
    -------
    Path of the save.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = autosave_path(folder, key)
    header = json.dumps(dict(classes=list(classes or []), metadata=dict(metadata or {}),
                             saved_at=time.time(), key=key))
    fd, tmp = tempfile.mkstemp(prefix=f".{key}-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            saver = np.savez_compressed if compress else np.savez
            saver(fh, labels=np.asarray(labels), header=np.array(header))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return target


def _read(path: Path) -> Annotation:
    with np.load(path, allow_pickle=False) as z:
        labels = z["labels"]
        header = json.loads(str(z["header"]))
    return Annotation(labels=labels, classes=header.get("classes", []),
                      metadata=header.get("metadata", {}), saved_at=float(header.get("saved_at", 0)),
                      path=path)


def load_annotation(folder: str | os.PathLike, key: str) -> Annotation | None:
    """Read the autosave of ``key`` in ``folder``; None if there is none or it cannot be read."""
    path = autosave_path(folder, key)
    if not path.is_file():
        return None
    try:
        return _read(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def find_autosave(key: str, folders: Iterable[str | os.PathLike]) -> Annotation | None:
    """The newest readable autosave of ``key`` in any of ``folders``, or None."""
    best = None
    for f in folders:
        if f is None:
            continue
        ann = load_annotation(f, key)
        if ann is not None and (best is None or ann.saved_at > best.saved_at):
            best = ann
    return best


class Autosaver:
    """Bookkeeping for periodic saves: remembers whether anything changed since the last save.

    The caller marks changes with :meth:`mark_dirty` and calls :meth:`maybe_save` from a timer
    (every ``interval`` s) and :meth:`flush` on close. Saving an unchanged annotation is skipped.
    """

    def __init__(self, folder, key: str, *, interval: float = 30.0):
        self.folder = check_writable(folder)
        self.key = key
        self.interval = float(interval)
        self.dirty = False
        self.last_save = 0.0
        self.path = autosave_path(self.folder, key)

    def mark_dirty(self) -> None:
        self.dirty = True

    def due(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.dirty and now - self.last_save >= self.interval

    def maybe_save(self, labels, *, classes=None, metadata=None, now: float | None = None) -> Path | None:
        """Save if something changed and ``interval`` seconds have passed; return the path or None."""
        if not self.due(now):
            return None
        return self.flush(labels, classes=classes, metadata=metadata)

    def flush(self, labels, *, classes=None, metadata=None) -> Path | None:
        """Save now if anything changed (on close)."""
        if not self.dirty:
            return None
        path = save_annotation(self.folder, self.key, labels, classes=classes, metadata=metadata)
        self.dirty = False
        self.last_save = time.time()
        return path
