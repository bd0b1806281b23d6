"""Annotation that never loses work: atomic autosave and restore of labels and their class table.

Pure logic, no Qt: the segmentation widget calls these from a timer and on close.

- An image gets a stable key (:func:`image_key`): from its file path when it has one, otherwise
  from its shape, dtype and a strided sample of its pixels, so reopening the same image (or
  regenerating the same sample) finds its autosave again.
- :func:`save_annotation` writes ``<key>.labels.npz`` atomically: to a temporary file in the same
  folder, flushed and fsync'ed, then ``os.replace``-d over the previous save. A process killed at
  any moment leaves either the old or the new complete file, never a torn one.
- :func:`check_writable` tests a folder at once, so the user hears about an unwritable folder when
  switching autosave on, not after a crash. It also removes temporary files that killed
  processes left behind (:func:`clean_stale_temp_files`).
- One image key, one writer: the first save of a key takes an advisory lock on it
  (``fcntl.flock`` on a lock file in a private temp folder, released when the process ends, even
  by ``kill -9``; napari sessions on one machine see each other's locks). A
  second napari autosaving the same image finds the key taken and saves under ``<key>.2`` (``.3``,
  ...) instead of overwriting the first one's work; :func:`lock_key` says so in its ``notice``.
- Restoring never raises on a damaged file: :func:`load_annotation` and :func:`find_autosave`
  return None for it (and list why in ``problems``), and still find the good saves elsewhere.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    "lock_key",
    "release_key",
    "KeyLock",
    "clean_stale_temp_files",
]

_log = logging.getLogger(__name__)

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
        # named like a save's temp file (writer's PID inside): a kill right here leaves nothing for good
        fd, tmp = tempfile.mkstemp(prefix=f".cryomat-write-test.{os.getpid()}.", suffix=".tmp", dir=p)
        os.write(fd, b"ok")
        os.close(fd)
        os.remove(tmp)
    except OSError as exc:
        raise ValueError(
            f"Cannot write autosaves to {p} ({exc.strerror or exc}). Choose another autosave folder "
            "before you start annotating, or your work will not be saved."
        ) from None
    clean_stale_temp_files(p)
    return p


# -------------------------------------------------------------------------------------------------
# temporary files of killed writers
# -------------------------------------------------------------------------------------------------
# save_annotation writes ".<key>.<pid>.<random>.tmp"; earlier versions wrote ".<key>-<random>.tmp"
_TMP_RE = re.compile(r"^\.(?P<key>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_LEGACY_TMP_RE = re.compile(r"^\.(?P<key>.+)-[A-Za-z0-9_]{8}\.tmp$")
_LEGACY_TMP_AGE = 600.0  # s: no save takes that long; an older legacy temp file is an orphan


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return False
    return True


def clean_stale_temp_files(folder) -> list[Path]:
    """Remove the temporary files that writers killed mid-save left in ``folder``.

    A temporary file carries its writer's PID; it is stale when that process is gone (files of the
    live processes, this one included, are kept: they may be writing right now). Returns the files
    removed; never raises.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        m = _TMP_RE.match(name)
        try:
            if m is not None:
                stale = not _pid_alive(int(m.group("pid")))
            elif _LEGACY_TMP_RE.match(name):
                stale = now - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_TMP_AGE
            else:
                continue
            if stale and entry.is_file(follow_symlinks=False):
                os.remove(entry.path)
                removed.append(Path(entry.path))
        except (OSError, ValueError):
            continue
    if removed:
        _log.info("removed %d stale autosave temp file(s) in %s", len(removed), folder)
    return removed


# -------------------------------------------------------------------------------------------------
# one writer per key
# -------------------------------------------------------------------------------------------------
class KeyLock:
    """This process's claim on an autosave key in a folder (see :func:`lock_key`).

    Attributes
    ----------
    key : str
        The key this process saves under: the one asked for, or ``<key>.2``, ``<key>.3``... when
        another process holds it.
    requested_key : str
    folder : Path
    notice : str or None
        Why ``key`` differs from ``requested_key`` (to tell the user), else None.
    """

    def __init__(self, folder: Path, requested_key: str, key: str, fd: int | None, mode: str,
                 notice: str | None):
        self.folder, self.requested_key, self.key = folder, requested_key, key
        self._fd, self._mode, self.notice = fd, mode, notice

    @property
    def path(self) -> Path:
        """Where this holder's autosave goes."""
        return autosave_path(self.folder, self.key)

    @property
    def held(self) -> bool:
        return self._mode != "released"

    def release(self) -> None:
        """Give the key back (another process may then take it). Idempotent."""
        if self._mode == "released":
            return
        try:
            if self._mode == "pidfile":
                try:
                    os.remove(_lock_path(self.folder, self.key))
                except OSError:
                    pass
            if self._fd is not None:
                os.close(self._fd)  # closing the descriptor drops the flock
        finally:
            self._fd, self._mode = None, "released"
            with _REGISTRY_LOCK:
                for k, v in list(_HELD.items()):
                    if v is self:
                        del _HELD[k]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        return f"KeyLock({str(self.folder)!r}, {self.key!r}, {self._mode})"


_HELD: dict[tuple[str, str], KeyLock] = {}  # (folder, requested key) -> this process's claim
_REGISTRY_LOCK = threading.RLock()
_MAX_ALTERNATIVES = 99


def _lock_dir() -> Path:
    """Where lock files live: ``$CRYOMAT_LOCK_DIR``, else a private folder in the temp dir (the
    autosave folder itself holds nothing but the saves)."""
    env = os.environ.get("CRYOMAT_LOCK_DIR")
    if env:
        base = Path(env)
    else:
        uid = os.getuid() if hasattr(os, "getuid") else 0
        base = Path(tempfile.gettempdir()) / f"napari-cryomat-locks-{uid}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return base


def _lock_path(folder: Path, key: str) -> Path:
    """The lock file of ``key`` in ``folder`` (one per folder and key, whatever path names the folder)."""
    where = hashlib.sha1(os.path.realpath(os.fspath(folder)).encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:80]
    return _lock_dir() / f"{where}-{safe}-{hashlib.sha1(key.encode()).hexdigest()[:8]}.lock"


def _lock_holder(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


def _try_lock(folder: Path, key: str) -> tuple[int | None, str] | None:
    """Take the lock file of ``key``: (fd, mode) on success, None when another live process holds it."""
    path = _lock_path(folder, key)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None
    if fcntl is not None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            # the file system has no flock (some network mounts): PID files below
        else:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd, "flock"
    # PID-file lock: the file exists while held; a dead holder's file is reclaimed
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is not None and _pid_alive(holder) and holder != os.getpid():
                return None
            try:
                os.remove(path)  # stale: its process is gone
            except OSError:
                return None
            continue
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        return None, "pidfile"
    return None


def lock_key(folder, key: str) -> KeyLock:
    """Claim ``key`` in ``folder`` for this process's autosaves (advisory, per key).

    If another process (a second napari on the same image) holds it, the first free alternative
    ``<key>.2``, ``<key>.3``... is claimed instead and :attr:`KeyLock.notice` says so. Calling it
    again for the same key returns the same claim. Locks are released by :meth:`KeyLock.release`
    or when the process ends (also by ``kill -9``: the kernel drops a dead process's flock; a PID
    file of a dead process is reclaimed).

    Raises
    ------
    ValueError
        ``key`` is not a plain name, or 99 other sessions hold the key and all its alternatives.
    """
    from napari_cryomat.core._validate import plain_name

    key = plain_name(key, "key")
    folder = Path(folder)
    ident = (os.path.abspath(folder), key)
    with _REGISTRY_LOCK:
        held = _HELD.get(ident)
        if held is not None and held.held:
            return held
        for (where, _), lock in _HELD.items():  # a key this process already holds as an alternative
            if where == ident[0] and lock.key == key and lock.held:
                return lock
        folder.mkdir(parents=True, exist_ok=True)
        holder = None
        for n in range(1, _MAX_ALTERNATIVES + 1):
            cand = key if n == 1 else f"{key}.{n}"
            got = _try_lock(folder, cand)
            if got is None:
                if n == 1:
                    holder = _lock_holder(_lock_path(folder, key))
                continue
            fd, mode = got
            notice = None
            if cand != key:
                who = f" (PID {holder})" if holder else ""
                notice = (f"Another napari session{who} is autosaving this image to {autosave_path(folder, key)}; "
                          f"this session saves its annotation to {autosave_path(folder, cand)} instead, so "
                          "neither overwrites the other.")
                _log.warning(notice)
            lock = KeyLock(folder, key, cand, fd, mode, notice)
            _HELD[ident] = lock
            return lock
    raise ValueError(f"key {key!r}: {_MAX_ALTERNATIVES} sessions already autosave this image in {folder}.")


def release_key(folder, key: str) -> None:
    """Release this process's claim on ``key`` in ``folder``, if it has one."""
    with _REGISTRY_LOCK:
        held = _HELD.get((os.path.abspath(Path(folder)), key))
    if held is not None:
        held.release()


def autosave_path(folder: str | os.PathLike, key: str) -> Path:
    """``<folder>/<key>.labels.npz``; ``key`` must be a plain name (no '/', no '..')."""
    from napari_cryomat.core._validate import plain_name

    return Path(folder) / f"{plain_name(key, 'key')}{SUFFIX}"


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
    Path of the save. It is ``<key>.labels.npz`` unless another process holds ``key`` (a second
    napari on the same image): then ``<key>.2.labels.npz`` (see :func:`lock_key`), never the other
    session's file.
    """
    from napari_cryomat.core._validate import check_memory, labels_array, plain_name

    key = plain_name(key, "key")
    labels = labels_array(labels, "labels", nonnegative=False, copies=1)
    check_memory(labels.nbytes, "labels", "saving them")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = lock_key(folder, key).key  # this process's key: the one asked for, or its own alternative
    target = autosave_path(folder, key)
    header = json.dumps(dict(classes=list(classes or []), metadata=dict(metadata or {}),
                             saved_at=time.time(), key=key))
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.{os.getpid()}.", suffix=".tmp", dir=folder)
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
    """Read one save; any damage raises (the callers turn it into None and a reason)."""
    from numpy.lib import format as npformat

    from napari_cryomat.core._validate import memory_budget

    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("labels.npy")
        if info.file_size > memory_budget():
            raise ValueError(f"its labels would need {info.file_size / 2**30:.1f} GiB")
        with zf.open(info) as member:  # the array header must agree with the stored size
            version = npformat.read_magic(member)
            read_header = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            shape, _, dtype = read_header(member)
            if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                raise ValueError(f"its labels header claims {shape} {dtype} but the file holds less")
    with np.load(path, allow_pickle=False) as z:
        labels = z["labels"]
        header = json.loads(str(z["header"]))
    if not isinstance(header, dict):
        raise ValueError("its header is not a table")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"its labels are {labels.dtype}, not integers")
    return Annotation(labels=labels, classes=list(header.get("classes", [])),
                      metadata=dict(header.get("metadata", {})), saved_at=float(header.get("saved_at", 0)),
                      path=path)


def _load(path: Path, problems: list | None) -> Annotation | None:
    try:
        return _read(path)
    except Exception as exc:  # noqa: BLE001 - a damaged save must never stop a restore
        reason = f"{type(exc).__name__}: {exc}"
        _log.warning("autosave %s is damaged and was skipped (%s)", path, reason)
        if problems is not None:
            problems.append((path, reason))
        return None


def load_annotation(folder: str | os.PathLike, key: str, *, problems: list | None = None) -> Annotation | None:
    """Read the autosave of ``key`` in ``folder``; None if there is none or it cannot be read.

    A damaged file gives None too, never an exception; ``problems`` (a list), when given, receives
    ``(path, reason)`` for it.
    """
    path = autosave_path(folder, key)
    if not path.is_file():
        return None
    return _load(path, problems)


def _alternatives(folder, key: str) -> list[Path]:
    """``<key>.labels.npz`` and the ``<key>.<n>.labels.npz`` of concurrent sessions in ``folder``."""
    out = [autosave_path(folder, key)]
    pat = re.compile(re.escape(key) + r"\.(\d+)" + re.escape(SUFFIX) + "$")
    try:
        out += sorted(Path(e.path) for e in os.scandir(folder) if pat.match(e.name))
    except OSError:
        pass
    return out


def find_autosave(key: str, folders: Iterable[str | os.PathLike], *,
                  problems: list | None = None) -> Annotation | None:
    """The newest readable autosave of ``key`` in any of ``folders``, or None.

    Saves that concurrent sessions wrote under ``<key>.2``, ``<key>.3``... count too. Damaged files
    are skipped (listed in ``problems`` when given), so a good save in another folder is still found.
    """
    from napari_cryomat.core._validate import plain_name

    plain_name(key, "key")
    best = None
    for f in folders:
        if f is None:
            continue
        for path in _alternatives(f, key):
            if not path.is_file():
                continue
            ann = _load(path, problems)
            if ann is not None and (best is None or ann.saved_at > best.saved_at):
                best = ann
    return best


class Autosaver:
    """Bookkeeping for periodic saves: remembers whether anything changed since the last save.

    The caller marks changes with :meth:`mark_dirty` and calls :meth:`maybe_save` from a timer
    (every ``interval`` s) and :meth:`flush` on close. Saving an unchanged annotation is skipped.
    """

    def __init__(self, folder, key: str, *, interval: float = 30.0):
        from napari_cryomat.core._validate import nonnegative

        self.interval = nonnegative(interval, "interval", unit="s", high=None)
        self.folder = check_writable(folder)  # also removes temp files of killed writers
        self.lock = lock_key(self.folder, key)
        self.requested_key = key
        self.key = self.lock.key
        #: set when another session holds ``key``: this one saves under its own name instead
        self.notice = self.lock.notice
        self.dirty = False
        self.last_save = 0.0
        self.path = autosave_path(self.folder, self.key)

    def close(self) -> None:
        """Give the key back (call after the last :meth:`flush`)."""
        self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

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
