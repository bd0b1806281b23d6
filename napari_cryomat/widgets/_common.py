"""Small pieces every dock widget uses: user-facing errors, layer pickers, physical units.

Kept here so that each widget module reads like a form.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QProgressBar, QPushButton, QWidget

from napari_cryomat.core._progress import Cancelled

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

__all__ = [
    "LayerCombo",
    "TaskRunner",
    "angstrom_units",
    "pixel_size_of",
    "show_error",
    "show_info",
    "show_warning",
]


def angstrom_units(ndim: int) -> tuple[str, ...]:
    """napari layer ``units`` for ``ndim`` spatial axes in angstrom."""
    return ("angstrom",) * ndim


def pixel_size_of(layer: "napari.layers.Layer") -> float:
    """Pixel size in Å of a layer's last (X) axis: from ``scale``, converted if units are not Å.

    Layers made by this plugin always carry Å. A layer with the default unit-less scale of 1
    gives 1.0, i.e. "pixels", which keeps every computation well defined.
    """
    scale = float(layer.scale[-1])
    try:
        unit = layer.units[-1]
        if str(unit) not in ("pixel", "angstrom", "Å"):
            scale = float((scale * unit).to("angstrom").magnitude)
    except Exception:  # older napari or a non-length unit: trust the number
        pass
    return scale


class LayerCombo(QComboBox):
    """A combo box listing the viewer's layers of some kinds, kept in sync with the layer list."""

    def __init__(
        self,
        viewer: "napari.viewer.Viewer",
        layer_types: tuple[type, ...],
        predicate: Callable[[object], bool] | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self._viewer = viewer
        self._layer_types = layer_types
        self._predicate = predicate or (lambda layer: True)
        viewer.layers.events.inserted.connect(self.refresh)
        viewer.layers.events.removed.connect(self.refresh)
        viewer.layers.events.reordered.connect(self.refresh)
        self.refresh()

    def refresh(self, event=None) -> None:
        current = self.currentText()
        self.blockSignals(True)
        self.clear()
        for layer in self._viewer.layers:
            if isinstance(layer, self._layer_types) and self._predicate(layer):
                self.addItem(layer.name)
        idx = self.findText(current)
        self.setCurrentIndex(idx if idx >= 0 else (self.count() - 1))
        self.blockSignals(False)
        self.currentIndexChanged.emit(self.currentIndex())

    def layer(self):
        """The chosen layer, or None.

        napari hands plugin widgets a proxy viewer whose layers come back as new proxies on every
        lookup; the real layer is returned so that ``is`` comparisons and signal connections work.
        """
        name = self.currentText()
        if not name or name not in self._viewer.layers:
            return None
        layer = self._viewer.layers[name]
        return getattr(layer, "__wrapped__", layer)


class _ProgressRelay(QObject):
    # Emitted from the worker thread; Qt queues it to the GUI thread.
    fraction = Signal(float)


class TaskRunner(QWidget):
    """Progress bar + Cancel button that runs one core function off the GUI thread.

    ``runner.start(func, *args, on_done=callback, **kwargs)`` calls
    ``func(*args, progress=cb, **kwargs)`` in a napari thread worker. ``cb`` moves the bar and
    raises :class:`Cancelled` once the user pressed Cancel, so the computation unwinds and
    ``on_done`` is never called: the viewer stays exactly as it was. ``ValueError`` raised by
    the core is a message for the user and is shown as a notification, not a traceback.
    """

    def __init__(self, label: str = "Run", parent: QWidget | None = None):
        super().__init__(parent)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.cancel_button)
        self._relay = _ProgressRelay()
        self._relay.fraction.connect(self._set_fraction)
        self._cancel_requested = False
        self.worker = None
        self.last_error: Optional[BaseException] = None
        self.label = label
        self._activity = None  # napari's own progress bar (activity dock), mirrored

    # -- public ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, func: Callable, *args, on_done: Callable | None = None, **kwargs):
        """Run ``func`` in a worker. Returns the worker (already started)."""
        from napari.qt.threading import create_worker

        if self.busy:
            show_warning(f"{self.label}: still running; press Cancel first.")
            return None
        self._cancel_requested = False
        self.last_error = None
        self._activity = _napari_progress(self.label)
        self._set_fraction(0.0)
        self.cancel_button.setEnabled(True)

        def progress(fraction: float) -> None:
            if self._cancel_requested:
                raise Cancelled()
            self._relay.fraction.emit(float(fraction))

        # errors are ours to show (below); without _ignore_errors superqt re-raises them in the
        # Qt event loop, which napari turns into a traceback dialog.
        worker = create_worker(
            func, *args, progress=progress, _start_thread=False, _ignore_errors=True, **kwargs
        )
        if on_done is not None:
            worker.returned.connect(on_done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running computation to stop at its next progress report."""
        if self.worker is not None:
            self._cancel_requested = True
            self.cancel_button.setEnabled(False)
            self.progress_bar.setFormat("cancelling…")

    # -- slots -------------------------------------------------------------------------------
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
            show_info(f"{self.label} cancelled; nothing was changed.")
        elif isinstance(exc, (ValueError, MemoryError, OSError)):
            show_error(f"{self.label}: {exc}")
        else:
            log.exception("%s failed", self.label, exc_info=exc)
            show_error(f"{self.label} failed: {type(exc).__name__}: {exc}")

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


class DockVisibility(QObject):
    """Calls ``callback(visible)`` when the dock holding ``widget`` comes to the front or goes
    behind another tab.

    A tabbed QDockWidget reports this only through its ``visibilityChanged`` signal (its content
    keeps ``isVisible()``), and the dock exists only once napari has docked the widget, so the
    connection is made at the widget's first show. Widgets use it to hide their overlay layers
    (ROIs, cut lines) while another panel is in front.
    """

    def __init__(self, widget: QWidget, callback: Callable[[bool], None]):
        super().__init__(widget)
        self._widget = widget
        self._callback = callback
        self._dock = None
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802 (Qt name)
        from qtpy.QtCore import QEvent
        from qtpy.QtWidgets import QDockWidget

        if event.type() == QEvent.Show and self._dock is None:
            parent = self._widget.parent()
            while parent is not None and not isinstance(parent, QDockWidget):
                parent = parent.parent()
            if parent is not None:
                self._dock = parent
                parent.visibilityChanged.connect(self._callback)
        return False


def _napari_progress(label: str):
    """A determinate napari progress bar (shown in napari's activity dock), or None."""
    try:
        from napari.utils import progress

        return progress(total=1000, desc=label)
    except Exception:  # napari's progress is a nicety; the dock's own bar is what counts
        return None


def finite_or_raise(data: np.ndarray, what: str = "image") -> None:
    """Raise a user-facing ValueError if ``data`` has NaN or inf."""
    if not np.all(np.isfinite(data)):
        raise ValueError(f"The {what} contains NaN or inf pixels; replace them (e.g. with the median) first.")
