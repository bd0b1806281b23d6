"""TaskRunner: a progress bar and a Cancel button that run one core function off the GUI thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Optional

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from napari_cryomat.core._progress import Cancelled
from napari_cryomat.widgets._base import notify, shutdown

log = logging.getLogger(__name__)

__all__ = ["TaskRunner"]


class _ProgressRelay(QObject):
    # Emitted from the worker thread; Qt queues it to the GUI thread.
    fraction = Signal(float)


class TaskRunner(QWidget):
    """Progress bar + Cancel button that runs one core function off the GUI thread.

    ``runner.start(func, *args, on_done=callback, **kwargs)`` calls
    ``func(*args, progress=cb, **kwargs)`` in a napari thread worker. Every parameter is read by
    the caller before the call, so the worker never touches a Qt control. ``cb`` moves the bar and
    raises :class:`Cancelled` once the user pressed Cancel, or napari asked the worker to quit (the
    application is closing), so the computation unwinds and ``on_done`` is never called:
    the viewer stays exactly as it was. ``ValueError`` raised by the
    core is a message for the user and is shown as a notification, not a traceback.
    """

    def __init__(self, label: str = "Run", parent: QWidget | None = None):
        super().__init__(parent)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat(f"{label}: idle")
        # a new QProgressBar holds value -1 (reset), and Qt draws no text then: every dock showed an empty white
        # box, read as an empty text field, instead of "Denoise: idle"
        self.progress_bar.setValue(0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress_bar, 1)
        layout.addWidget(self.cancel_button)
        self._relay = _ProgressRelay()
        self._relay.fraction.connect(self._set_fraction)
        self._cancel_requested = False
        self._quiet = False  # a superseded run stops without telling the user it was cancelled
        self.worker = None
        self.last_error: Optional[BaseException] = None
        self.label = label
        self._activity = None  # napari's own progress bar (activity dock), mirrored
        self._idle = threading.Event()  # set while no computation runs in a worker thread
        self._idle.set()
        shutdown.track(self)

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, func: Callable, *args, on_done: Callable | None = None, label: str | None = None, **kwargs):
        """Run ``func`` in a worker; returns the (started) worker, or None if one is running."""
        from napari.qt.threading import create_worker

        if self.busy:
            notify.show_warning(f"{self.label}: still running; press Cancel first.")
            return None
        if label:
            self.label = label
        self._cancel_requested = self._quiet = False
        self.last_error = None
        self._activity = _napari_progress(self.label)
        self._set_fraction(0.0)
        self.cancel_button.setEnabled(True)

        def progress(fraction: float) -> None:
            # napari asks every worker to quit when its window closes (and then waits for them): a job
            # that did not look would keep napari from closing until it ended, hours for a tomogram
            running = self.worker  # set before the worker starts, cleared only once it has finished
            if running is not None and running.abort_requested:
                self._quiet = True
                raise Cancelled()
            if self._cancel_requested:
                raise Cancelled()
            try:
                self._relay.fraction.emit(float(fraction))
            except RuntimeError:  # the dock's Qt objects are gone (the viewer closed, Python exiting)
                self._quiet = True
                raise Cancelled() from None

        def run(*run_args, **run_kwargs):  # the thread's whole life: shutdown.stop_all waits on _idle
            try:
                return func(*run_args, **run_kwargs)
            finally:
                self._idle.set()

        # errors are ours to show (below); without _ignore_errors superqt re-raises them in the
        # Qt event loop, which napari turns into a traceback dialog.
        worker = create_worker(run, *args, progress=progress, _start_thread=False, _ignore_errors=True, **kwargs)
        if on_done is not None:
            worker.returned.connect(on_done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._idle.clear()
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running computation to stop at its next progress report."""
        if self.worker is not None:
            self._quiet = False
            self._cancel_requested = True
            self.cancel_button.setEnabled(False)
            self.progress_bar.setFormat("cancelling…")

    def stop_for_exit(self) -> None:
        """Python is exiting: the running computation stops at its next progress report, quietly."""
        self._quiet = self._cancel_requested = True

    def wait_for_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the worker to finish; True if it did (or none ran). The computation's
        end is not enough: superqt's worker then emits its signals from the thread, and a thread doing that
        while the interpreter finalizes crashed Python (segfault in superqt's run, reproduced)."""
        import time

        from qtpy.QtCore import QThreadPool

        start = time.monotonic()
        if not self._idle.wait(timeout):
            return False
        left_ms = int(1000 * max(0.0, timeout - (time.monotonic() - start)))
        return bool(QThreadPool.globalInstance().waitForDone(left_ms))  # superqt runs workers in this pool

    def supersede(self) -> None:
        """Stop the running computation because a newer request replaces it ("latest request
        wins"): as :meth:`cancel`, without the "cancelled" message."""
        if self.worker is not None:
            self.cancel()
            self._quiet = True
            self.progress_bar.setFormat(f"{self.label}: replaced by a newer request…")

    def _set_fraction(self, fraction: float) -> None:
        value = int(round(1000 * fraction))
        self.progress_bar.setValue(value)
        self.progress_bar.setFormat(f"{self.label}: %p%")
        if self._activity is not None:
            self._activity.n = value
            self._activity.refresh()

    def _on_error(self, exc: BaseException) -> None:
        self.last_error = exc
        if isinstance(exc, Cancelled):
            if not self._quiet:
                notify.show_info(f"{self.label} cancelled; nothing was changed.")
        elif isinstance(exc, (ValueError, MemoryError, OSError)):
            notify.show_error(f"{self.label}: {exc}")
        else:
            log.exception("%s failed", self.label, exc_info=exc)
            notify.show_error(f"{self.label} failed: {type(exc).__name__}: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self.cancel_button.setEnabled(False)
        if self.last_error is None:
            self._set_fraction(1.0)
        else:
            self.progress_bar.setFormat(f"{self.label}: stopped")
        if self._activity is not None:
            self._activity.close()
            self._activity = None


def _napari_progress(label: str):
    """A determinate napari progress bar (shown in napari's activity dock), or None."""
    try:
        from napari.utils import progress

        return progress(total=1000, desc=label)
    except Exception:  # napari's progress is a nicety; the dock's own bar is what counts
        return None
