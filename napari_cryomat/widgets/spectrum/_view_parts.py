"""Small pieces the Spectrum imaging views share: a compact plot, the rows of the line labels, and
the one way an action turns the user's input into a request (a ``ValueError`` becomes a message,
nothing runs)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QSize
from qtpy.QtGui import QFontMetricsF

from napari_cryomat.widgets._base import AXIS_LABEL_ROOM, TaskRunner, room_for_axis_label, show_error

__all__ = ["CompactPlot", "LogCountsAxis", "guarded", "label_rows", "run_request"]


class CompactPlot(pg.PlotWidget):
    """A plot that asks for little room (``height`` px; pyqtgraph asks for 640 × 480), so that a
    dock of several plots fits a laptop screen; it grows into whatever room is left."""

    def __init__(self, height: int = 120, **kwargs):
        super().__init__(**kwargs)
        self._height = height
        self.setMinimumHeight(120)
        self.setBackground("#262930")
        room_for_axis_label(self)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        # the x label's room comes on top of the view: the EDS labels' rows keep the height they had
        return QSize(300, self._height + AXIS_LABEL_ROOM)


class LogCountsAxis(pg.AxisItem):
    """A counts axis whose log scale labels only the minor ticks (2-9 times a power of ten) that have room.

    Over less than about three decades pyqtgraph adds the ticks 2, 3, ... 9 of every decade and labels each,
    whatever the axis' length: on a 768 px screen's 140 px plot (an empty one spans 1-10) "5" to "9" fell within
    a label's height of each other, a crowded column of digits. Here the ticks stay and only the labels of the
    densest of (2..9), (2, 3, 5), (2, 5), () whose neighbours (and the decades) lie a label's height apart are drawn.
    """

    _MINOR_LABELS = ((2, 3, 4, 5, 6, 7, 8, 9), (2, 3, 5), (2, 5), ())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._labelled: tuple[int, ...] = self._MINOR_LABELS[0]

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802, N803 (pyqtgraph names)
        ticks = super().logTickValues(minVal, maxVal, size, stdTicks)
        pixels_per_decade = size / max(maxVal - minVal, 1e-12)
        room = 1.2 * QFontMetricsF(self.style["tickFont"] or self.font()).height()
        for labelled in self._MINOR_LABELS:
            marks = np.log10(np.array((1, *labelled, 10)))
            if np.diff(marks).min() * pixels_per_decade >= room:
                break
        self._labelled = labelled
        return ticks

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph name)
        strings = super().logTickStrings(values, scale, spacing)
        if spacing is not None:  # decades: always labelled
            return strings
        mantissas = [round(10 ** (v - np.floor(v + 1e-9))) for v in np.asarray(values, float)]
        return [s if m in self._labelled else "" for s, m in zip(strings, mantissas)]


def label_rows(spans: list[tuple[float, float]], n_rows: int, gap: float = 4.0) -> list[int | None]:
    """The row (0 = top) of each label so that no two labels in a row overlap, or None for a label
    that finds no room.

    ``spans`` are the labels' (left, right) extents on screen (px), in priority order: a label
    takes the first row where it clears every label already placed there by ``gap`` px, so the
    labels that come first (each element's strongest line) are always shown, and lines crowded
    below 2 keV keep their marker without a pile of unreadable text (DigitalMicrograph and
    HyperSpy label only what has room too).
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1 (got {n_rows}).")
    placed: list[list[tuple[float, float]]] = [[] for _ in range(n_rows)]
    rows: list[int | None] = []
    for left, right in spans:
        row = next((r for r, taken in enumerate(placed)
                    if all(right + gap <= a or left >= b + gap for a, b in taken)), None)
        if row is not None:
            placed[row].append((left, right))
        rows.append(row)
    return rows


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
