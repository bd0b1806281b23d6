"""Widget-test helpers: a watchdog for work done on the GUI thread."""

from __future__ import annotations

import gc
import time

import numpy as np
import pytest


class GuiThreadWatch:
    """Measures the GUI thread's CPU time between ticks of a fast Qt timer.

    A handler that computes on the GUI thread shows up as a long gap in CPU time between two ticks.
    CPU time of the GUI thread (``time.thread_time``) does not grow while other processes or our
    own workers hold the cores, so the figure is about our code, not about the machine's load.
    Use with ``show=False`` viewers: a shown canvas renders (Mesa, on the CPU) on the GUI thread.
    The objects alive when the watch starts are frozen out of the garbage collector for its duration: late
    in the suite they are the leftovers of a thousand earlier tests, and one full collection over them
    (168 ms in a clean-clone run, where the same test alone stays under 45 ms) is the test process's
    cost, not the widget's.
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
        gc.collect()
        gc.freeze()
        self._last = time.thread_time()
        self.longest = 0.0
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._tick()
        self._timer.stop()
        gc.unfreeze()

    def reset(self) -> None:
        self._last = time.thread_time()
        self.longest = 0.0


def _compile_napari_label_kernels() -> None:
    """napari colours labels with numba kernels compiled on first use (``cache=True``: once per
    machine, ~0.5-1 s). Compile them before any GUI-thread watch, which measures our work, not a
    one-off JIT compile of napari's (a fresh CI machine saw 0.83 s in the objects test otherwise)."""
    try:
        from napari.utils.colormaps import DirectLabelColormap
        from napari.utils.colormaps import _accelerated_cmap as kernels
    except ImportError:  # napari's internals moved: nothing to warm
        return
    rng = np.random.default_rng(0)
    # one kernel per (label dtype, texture dtype): the texture is uint8/uint16/uint32 by colour count
    colormaps = []
    for n_colours in (3, 300, 70000):
        colours = {i: list(rng.random(3)) + [1.0] for i in range(1, n_colours)}
        colormaps.append(DirectLabelColormap(color_dict={None: [0.5, 0.5, 0.5, 1.0], 0: [0, 0, 0, 0], **colours}))
    for dtype in (np.uint8, np.uint16, np.uint32, np.int32, np.int64):
        data = np.arange(64, dtype=dtype).reshape(8, 8)
        calls = [lambda c=c: kernels.labels_raw_to_texture_direct(data, c) for c in colormaps]
        calls += [lambda t=t: kernels.zero_preserving_modulo(data, 49, t) for t in (np.uint8, np.uint16)]
        for call in calls:
            try:
                call()
            except Exception:  # a signature of napari's changed: the watch may then include a compile
                pass


@pytest.fixture
def gui_watch(qapp):
    """``with gui_watch as watch: ...drive the widget...`` then ``watch.longest`` in seconds."""
    _compile_napari_label_kernels()
    return GuiThreadWatch()
