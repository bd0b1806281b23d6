"""Widget-test helpers: a watchdog for work done on the GUI thread."""

from __future__ import annotations

import time

import pytest


class GuiThreadWatch:
    """Measures the GUI thread's CPU time between ticks of a fast Qt timer.

    A handler that computes on the GUI thread shows up as a long gap in CPU time between two ticks.
    CPU time of the GUI thread (``time.thread_time``) does not grow while other processes or our
    own workers hold the cores, so the figure is about our code, not about the machine's load.
    Use with ``show=False`` viewers: a shown canvas renders (Mesa, on the CPU) on the GUI thread.
    """

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.longest = 0.0
        self._last = time.thread_time()
        self._timer = QTimer()
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.thread_time()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def __enter__(self):
        self._last = time.thread_time()
        self.longest = 0.0
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._tick()
        self._timer.stop()

    def reset(self) -> None:
        self._last = time.thread_time()
        self.longest = 0.0


@pytest.fixture
def gui_watch(qapp):
    """``with gui_watch as watch: ...drive the widget...`` then ``watch.longest`` in seconds."""
    return GuiThreadWatch()


@pytest.fixture
def messages(monkeypatch):
    """Every notification a tool shows, by kind: ``messages["error"]``, ``["warning"]``, ``["info"]``
    (the tools' ``_base.notify`` looks napari's functions up at call time)."""
    shown = {"error": [], "warning": [], "info": []}
    for kind, found in shown.items():
        monkeypatch.setattr(f"napari.utils.notifications.show_{kind}", found.append)
    return shown
