"""TaskRunner: progress, Cancel that leaves nothing behind, user errors as notifications."""

import threading

import numpy as np
import pytest

from napari_cryomat.core import Cancelled, report
from napari_cryomat.widgets._common import LayerCombo, TaskRunner, pixel_size_of


def slow_sum(values, *, progress=None, gate=None):
    total = 0.0
    for i, v in enumerate(values):
        if gate is not None:
            gate.wait(5)
        total += v
        report(progress, (i + 1) / len(values))
    return total


def test_runner_returns_result_and_fills_bar(qtbot):
    runner = TaskRunner("Sum")
    qtbot.addWidget(runner)
    results = []
    runner.start(slow_sum, [1.0, 2.0, 3.0], on_done=results.append)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results == [6.0]
    assert runner.progress_bar.value() == 1000


def test_cancel_unwinds_without_result(qtbot, monkeypatch):
    shown = []
    monkeypatch.setattr("napari_cryomat.widgets._common.show_info", shown.append)
    runner = TaskRunner("Sum")
    qtbot.addWidget(runner)
    gate = threading.Event()
    results = []
    runner.start(slow_sum, list(range(100)), gate=gate, on_done=results.append)
    runner.cancel()
    gate.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results == []
    assert isinstance(runner.last_error, Cancelled)
    assert shown and "cancelled" in shown[0]


def test_value_error_is_a_message_not_a_traceback(qtbot, monkeypatch):
    shown = []
    monkeypatch.setattr("napari_cryomat.widgets._common.show_error", shown.append)

    def bad(*, progress=None):
        raise ValueError("needs a stack of frames")

    runner = TaskRunner("Align")
    qtbot.addWidget(runner)
    runner.start(bad)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert shown == ["Align: needs a stack of frames"]


def test_layer_combo_follows_layers_and_pixel_size(make_napari_viewer):
    import napari

    viewer = make_napari_viewer()
    combo = LayerCombo(viewer, (napari.layers.Image,), predicate=lambda l: l.ndim == 3)
    assert combo.layer() is None
    viewer.add_image(np.zeros((4, 4)), name="flat")
    viewer.add_image(np.zeros((2, 4, 4)), name="vol", scale=(2, 0.5, 0.5), units=("nm",) * 3)
    assert [combo.itemText(i) for i in range(combo.count())] == ["vol"]
    assert combo.layer().name == "vol"
    assert pixel_size_of(combo.layer()) == pytest.approx(5.0)  # 0.5 nm in Å
    viewer.layers.remove("vol")
    assert combo.count() == 0
