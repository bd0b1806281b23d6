"""Live views: "latest request wins".

:class:`LatestWins` is one background thread that computes only the newest request: a request
submitted while another is pending replaces it, and the result of a job that has been superseded
is dropped (each job carries an id, as in napari-cryoet-data-portal's task worker). Nothing queues,
so a view never lags behind a drag.

:class:`LivePanel` is the base of the live panels (napari-matplotlib's ``base.py`` idea). It
listens to the viewer's dims and to its dock coming to the front, and a subclass implements only

- ``request()`` on the GUI thread: read the controls and the layer (lazily) into a plain request
  object, or return None when there is nothing to show; must be cheap;
- ``compute(request)`` in the worker: pure core calls, no Qt, no viewer;
- ``draw(request, result)`` on the GUI thread; and optionally ``clear()``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QWidget

from napari_cryomat.widgets._base import notify, shutdown
from napari_cryomat.widgets._base.panels import DockVisibility, EventLinks

log = logging.getLogger(__name__)

__all__ = ["LatestWins", "LivePanel"]


class _Relay(QObject):
    # (job id, request, result, error); emitted in the worker, delivered in the GUI thread
    finished = Signal(int, object, object, object)


class LatestWins:
    """One daemon thread running ``func(request)`` for the newest request only.

    ``submit(request)`` returns the job id; ``finished`` (a Qt signal, delivered in the thread that
    created this object) emits ``(job_id, request, result, error)``. ``latest`` is the id of the
    newest submitted job: a receiver ignores anything older.
    """

    def __init__(self, func: Callable[[Any], Any], name: str = "live-view"):
        self._func = func
        self._cond = threading.Condition()
        self._pending: tuple[int, Any] | None = None
        self._ids = itertools.count(1)
        self._stopped = False
        self._running = False
        self._running_id = 0
        self.latest = 0
        self._relay = _Relay()
        self.finished = self._relay.finished
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        shutdown.track(self)

    def submit(self, request: Any) -> int:
        with self._cond:
            job_id = next(self._ids)
            self.latest = job_id
            self._pending = (job_id, request)
            self._cond.notify()
        return job_id

    def supersede(self) -> None:
        """Drop the pending job and make any running one stale (its result will be ignored)."""
        with self._cond:
            self._pending = None
            self.latest = next(self._ids)

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and not self._running

    def is_stale(self) -> bool:
        """In the worker: True once the running job has been superseded. A long ``func`` polls it
        (e.g. from a core progress callback, raising ``Cancelled``) to stop early."""
        return self._stopped or self._running_id != self.latest

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._pending = None
            self._cond.notify()

    def stop_for_exit(self) -> None:
        """Python is exiting: no new job starts, the running one is stale (a func polling it stops)."""
        self.stop()

    def wait_for_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the thread to end; True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                (job_id, request), self._pending = self._pending, None
                self._running = True
                self._running_id = job_id
            try:
                result, error = self._func(request), None
            except Exception as exc:  # reported in the GUI thread
                result, error = None, exc
            with self._cond:
                self._running = False
                stale = self._stopped or job_id != self.latest
            if not stale:
                try:
                    self._relay.finished.emit(job_id, request, result, error)
                except RuntimeError:  # the relay's C++ object is gone (viewer closed)
                    return


class LivePanel(QWidget):
    """Base of a live view: recompute when the dims move or the dock comes to the front.

    Subclasses call :meth:`update_live` whenever their own inputs change (a layer chosen, an ROI
    dragged, a control edited) and implement :meth:`request`, :meth:`compute`, :meth:`draw`.
    """

    def __init__(self, viewer: "napari.viewer.Viewer", parent: QWidget | None = None):  # noqa: F821
        super().__init__(parent)
        self.viewer = viewer
        self.in_front = True
        self._awaited: int | None = None  # id of the newest job whose result is not drawn yet
        self.links = EventLinks(self)
        self.live = LatestWins(self.compute, name=f"live-{type(self).__name__}")
        self.live.finished.connect(self._on_finished)
        self.links.connect(viewer.dims.events.current_step, self.update_live)
        self.links.on_close(self.live.stop)
        DockVisibility(self, self._on_front_changed)

    # -- to implement -------------------------------------------------------------------------
    def request(self) -> Any | None:
        """GUI thread: everything ``compute`` needs, or None when there is nothing to show."""
        raise NotImplementedError

    def compute(self, request: Any) -> Any:
        """Worker thread: the result for ``request``. No Qt, no viewer."""
        raise NotImplementedError

    def draw(self, request: Any, result: Any) -> None:
        """GUI thread: show ``result``."""
        raise NotImplementedError

    def clear(self) -> None:
        """GUI thread: show nothing (no input)."""

    def on_front_changed(self, in_front: bool) -> None:
        """The dock came to the front or went behind another tab (e.g. show/hide helper layers)."""

    def on_invalid(self, error: ValueError) -> None:
        """``request`` raised ValueError (the input cannot be shown): by default show nothing and
        say why. A panel that keeps its last result on screen (a live FFT while its ROI is too
        small) overrides this to write the message beside it instead."""
        self.clear()
        notify.show_warning(str(error))

    def on_error(self, request: Any, error: Exception) -> None:
        """``compute`` raised: by default a ValueError is a warning, anything else an error."""
        if isinstance(error, ValueError):
            notify.show_warning(str(error))
        else:
            log.error("%s failed", type(self).__name__, exc_info=error)
            notify.show_error(f"{type(self).__name__}: {type(error).__name__}: {error}")

    # -- machinery ------------------------------------------------------------------------------
    def update_live(self, *_args) -> None:
        """Ask for a new result; a pending older request is dropped."""
        if not self.in_front:
            return
        try:
            request = self.request()
        except ValueError as exc:  # the user's input cannot be shown: say why (on_invalid)
            self.live.supersede()
            self._awaited = None
            self.on_invalid(exc)
            return
        if request is None:
            self.live.supersede()
            self._awaited = None
            self.clear()
            return
        self.submit(request)

    def submit(self, request: Any) -> int:
        """Compute ``request`` as the newest job, without calling :meth:`request` (e.g. from
        :meth:`draw`: the exact pass after a quick preview). Returns the job id."""
        self._awaited = self.live.submit(request)
        return self._awaited

    @property
    def idle(self) -> bool:
        return self.live.idle

    @property
    def busy(self) -> bool:
        """True until the newest request's result has been drawn (or has failed); unlike ``not idle``
        it also covers a result on its way to the GUI thread. What tests wait on."""
        return self._awaited is not None

    def _on_front_changed(self, in_front: bool) -> None:
        self.in_front = bool(in_front)
        self.on_front_changed(self.in_front)
        if self.in_front:
            self.update_live()

    def _on_finished(self, job_id: int, request, result, error) -> None:
        if job_id != self.live.latest:
            return  # superseded while it ran
        self._awaited = None
        if error is not None:
            self.on_error(request, error)
            return
        self.draw(request, result)
