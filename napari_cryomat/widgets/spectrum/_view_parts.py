"""Small pieces the Spectrum imaging views share: a compact plot, and the one way an action turns
the user's input into a request (a ``ValueError`` becomes a message, nothing runs)."""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from qtpy.QtCore import QSize

from napari_cryomat.widgets._base import TaskRunner, show_error

__all__ = ["CompactPlot", "guarded", "run_request"]


class CompactPlot(pg.PlotWidget):
    """A plot that asks for little room (``height`` px; pyqtgraph asks for 640 × 480), so that a
    dock of several plots fits a laptop screen; it grows into whatever room is left."""

    def __init__(self, height: int = 120, **kwargs):
        super().__init__(**kwargs)
        self._height = height
        self.setMinimumHeight(120)
        self.setBackground("#262930")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(300, self._height)


def guarded(action: Callable, *args, **kwargs):
    """``action(*args, **kwargs)``, or None after an error message when the user's input cannot be
    used (``ValueError``: no spectrum image, no maps yet, an unknown element...)."""
    try:
        return action(*args, **kwargs)
    except ValueError as exc:
        show_error(str(exc))
        return None


def run_request(runner: TaskRunner, make_request: Callable, job: Callable, *, on_done: Callable, label: str):
    """Build a request on the GUI thread and run ``job(request)`` in ``runner``; returns the worker,
    or None (with a message) when no request can be built."""
    request = guarded(make_request)
    return None if request is None else runner.start(job, request, on_done=on_done, label=label)
