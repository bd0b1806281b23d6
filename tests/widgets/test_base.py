"""The shared widget base: TaskRunner (progress, Cancel that leaves nothing behind, user errors as
notifications), LatestWins/LivePanel, upsert_layer, HelperLayer, LayerCombo, units."""

import threading

import numpy as np
import pytest
from qtpy.QtWidgets import QComboBox

from napari_cryomat.core import Cancelled, report
from napari_cryomat.widgets._base import (
    HelperLayer,
    LatestWins,
    LayerCombo,
    LivePanel,
    TaskRunner,
    pixel_size_of,
    placeholder_while_empty,
    upsert_layer,
)


def slow_sum(values, *, progress=None, gate=None):
    total = 0.0
    for i, v in enumerate(values):
        if gate is not None:
            gate.wait(5)
        total += v
        report(progress, (i + 1) / len(values))
    return total


def test_an_idle_runner_says_idle(qtbot):
    """Every dock showed an empty white box above its tab (a new QProgressBar draws no text at value -1)."""
    runner = TaskRunner("Denoise")
    qtbot.addWidget(runner)
    assert runner.progress_bar.text() == "Denoise: idle"


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
    monkeypatch.setattr("napari.utils.notifications.show_info", shown.append)
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


def test_closing_napari_stops_a_running_job(qtbot, monkeypatch):
    """napari's application asks every worker to quit, then waits for them (``WorkerBase.await_workers``
    on ``aboutToQuit``): a 100 s job must unwind at its next progress report, quietly, leaving no result."""
    from napari.qt.threading import WorkerBase

    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_info", shown.append)
    runner = TaskRunner("Reconstruct")
    qtbot.addWidget(runner)
    results = []
    step = threading.Event()  # never set: each item waits its full 1 s

    def hundred_seconds(*, progress=None):
        for i in range(100):
            step.wait(1.0)
            report(progress, (i + 1) / 100)
        return "volume"

    runner.start(hundred_seconds, on_done=results.append)
    qtbot.waitUntil(lambda: runner.worker is not None and runner.worker._running, timeout=2000)
    WorkerBase.await_workers(5000)  # raises RuntimeError if the job is still running after 5 s
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results == []
    assert isinstance(runner.last_error, Cancelled)
    assert shown == []  # the application is closing: no "cancelled" message


def test_value_error_is_a_message_not_a_traceback(qtbot, monkeypatch):
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)

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


def test_an_empty_layer_combo_says_what_is_missing_and_is_disabled(make_napari_viewer, qtbot):
    """An empty combo drew as a blank box, read as broken: now greyed placeholder, disabled, tooltip saying why,
    in a shown window; filled, it is enabled on its first layer with its own tooltip."""
    import napari
    from qtpy.QtWidgets import QPushButton

    viewer = make_napari_viewer(show=True)
    combo = LayerCombo(viewer, (napari.layers.Labels,))
    combo.setToolTip("The objects to measure")  # set by its owner after construction, as docks do
    viewer.window.add_dock_widget(combo)
    qtbot.waitExposed(combo)
    assert not combo.isEnabled() and combo.currentIndex() == -1
    assert combo.placeholderText() == "no labels layer"
    assert combo.toolTip().startswith("No labels layer in the viewer") and "The objects to measure" in combo.toolTip()
    combo_width = combo.minimumSizeHint().width()
    viewer.add_labels(np.zeros((4, 4), np.uint8), name="objects")
    assert combo.isEnabled() and combo.currentText() == "objects" and combo.layer().name == "objects"
    assert combo.toolTip() == "The objects to measure"
    viewer.layers.remove("objects")
    assert not combo.isEnabled() and combo.toolTip().startswith("No labels layer")
    assert combo.minimumSizeHint().width() <= combo_width  # the placeholder never widens the dock

    # a plain combo filled later (elements typed, Measure pressed), with the button acting on its choice
    choice, button = QComboBox(), QPushButton("Colour")
    qtbot.addWidget(choice)
    qtbot.addWidget(button)
    placeholder_while_empty(choice, "property: press Measure", "Nothing measured yet: press Measure.",
                            also=(button,))
    assert not choice.isEnabled() and not button.isEnabled() and button.toolTip() == "Nothing measured yet: press Measure."
    choice.sizeHint()  # computed with the placeholder, as a layout does at the first show
    choice.addItems(["area", "perimeter"])
    # Qt 6 leaves a combo with a placeholder on no item when items arrive; ours is on the first, as without one
    assert choice.currentText() == "area" and choice.isEnabled() and button.isEnabled() and button.toolTip() == ""
    plain = QComboBox()
    qtbot.addWidget(plain)
    plain.addItems(["area", "perimeter"])
    assert choice.sizeHint() == plain.sizeHint()  # filled, it asks for no room for the placeholder it no longer shows
    choice.clear()
    assert choice.currentIndex() == -1 and not choice.isEnabled() and not button.isEnabled()


def test_latest_wins_drops_superseded_jobs(qtbot):
    gate = threading.Event()
    seen = []

    def slow_square(x):
        if x == 1:
            gate.wait(5)
        return x * x

    live = LatestWins(slow_square)
    live.finished.connect(lambda job_id, req, res, err: seen.append((job_id, req, res)) if job_id == live.latest else None)
    live.submit(1)  # starts, blocks on the gate
    qtbot.waitUntil(lambda: not live.idle, timeout=2000)
    live.submit(2)  # pending, replaced by 3 before it runs
    last = live.submit(3)
    gate.set()
    qtbot.waitUntil(lambda: live.idle and bool(seen), timeout=5000)
    qtbot.wait(50)
    live.stop()
    assert seen == [(last, 3, 9)]


class _MeanPanel(LivePanel):
    """Mean of the current slice of the first image: the smallest live panel."""

    def __init__(self, viewer):
        super().__init__(viewer)
        self.drawn = []

    def request(self):
        if not len(self.viewer.layers):
            return None
        layer = self.viewer.layers[0]
        return layer.data[self.viewer.dims.current_step[0]]

    def compute(self, request):
        return float(np.mean(request))

    def draw(self, request, result):
        self.drawn.append(result)


def test_live_panel_follows_dims(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.arange(3)[:, None, None] * np.ones((3, 4, 4)))
    panel = _MeanPanel(viewer)
    qtbot.addWidget(panel)
    viewer.dims.set_current_step(0, 2)
    qtbot.waitUntil(lambda: bool(panel.drawn) and panel.drawn[-1] == 2.0, timeout=5000)
    viewer.dims.set_current_step(0, 1)
    qtbot.waitUntil(lambda: panel.drawn[-1] == 1.0, timeout=5000)


def test_upsert_updates_in_place_and_replaces_other_kinds(make_napari_viewer):
    viewer = make_napari_viewer()
    first = upsert_layer(viewer, np.zeros((4, 4)), name="sum", scale=(2, 2))
    again = upsert_layer(viewer, np.ones((6, 6)), name="sum", scale=(3, 3), colormap="magma")
    assert again is first and len(viewer.layers) == 1
    assert again.data.shape == (6, 6) and tuple(again.scale) == (3, 3) and again.colormap.name == "magma"
    labels = upsert_layer(viewer, np.ones((6, 6), int), name="sum", kind="labels")
    assert len(viewer.layers) == 1 and labels._type_string == "labels"


def test_helper_layer_keeps_its_data_and_is_no_input(make_napari_viewer):
    import napari

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((8, 8)), name="image")
    roi = HelperLayer(viewer, "ROI", "shapes",
                      lambda kept: (kept if kept is not None else [np.array([[0, 0], [4, 4]])],
                                    {"shape_type": "rectangle"}))
    combo = LayerCombo(viewer, (napari.layers.Layer,))
    layer = roi.show()
    assert viewer.layers.selection.active.name == "image"  # the helper did not steal the selection
    assert [combo.itemText(i) for i in range(combo.count())] == ["image"]
    layer.data = [np.array([[1, 1], [1, 6], [6, 6], [6, 1]])]
    roi.hide()
    assert not roi.shown and not layer.visible  # hidden, not removed (napari Shapes re-add crash)
    assert roi.show() is layer and layer.visible
    assert np.array_equal(layer.data[0], [[1, 1], [1, 6], [6, 6], [6, 1]])
    roi.show(reset=True)  # back to the default, in the same layer
    assert roi.layer is layer and np.array_equal(layer.data[0][[0, 2]], [[0, 0], [4, 4]])
    viewer.layers.remove(layer)  # the user deletes it: the next show brings it back as it was
    again = roi.show()
    assert again is not layer and np.array_equal(again.data[0][[0, 2]], [[0, 0], [4, 4]])
    roi.remove()
    assert "ROI" not in viewer.layers and roi.layer is None


def test_empty_plot_note_shows_only_while_the_plot_holds_no_data(qtbot):
    """The note replaces bare 0-1 axes: shown on an empty plot and on one holding only a threshold line,
    hidden once data are drawn, back after clear(); it stays centred in the view and wraps to its width."""
    import pyqtgraph as pg

    from napari_cryomat.widgets._base import EmptyPlotNote

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(260, 200)
    plot.show()
    qtbot.waitExposed(plot)
    text = "Press Run: the resolution reached at each cumulative dose appears here, by three criteria."
    note = EmptyPlotNote(plot, text)
    assert note.shown and note.text == text
    plot.addItem(pg.InfiniteLine(pos=0.5, angle=0))
    note.update()
    assert note.shown  # a reference line alone is not a result
    plot.plot([0, 1, 2], [3, 1, 2])
    note.update()
    assert not note.shown
    plot.clear()
    note.update()
    assert note.shown
    view = plot.getViewBox()
    box = note.label.mapRectToParent(note.label.boundingRect())
    assert view.boundingRect().contains(box)  # wrapped to the view's width, not running off it
    assert abs(box.center().x() - view.boundingRect().center().x()) < 3
    assert box.height() > 2 * note.label.item.document().defaultFont().pointSizeF()  # more than one line
    note.say("No Bragg spot stands out.")
    assert note.text == "No Bragg spot stands out." and note.shown


def test_empty_plot_note_stays_centred_in_its_view_as_the_plot_is_resized(qtbot):
    """The Drift correction dock at 1366x768 showed its Trajectory note cut off at the left edge: the label
    placed its text only when its own size changed, and a widget outside a layout never shrinks back, so a
    new wrap width left the text where an earlier width had put it. Through a fixed walk of plot widths,
    growing and shrinking, the text lies inside the view and centred on it after every resize."""
    import pyqtgraph as pg

    from napari_cryomat.widgets._base import EmptyPlotNote

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(700, 200)
    plot.show()
    qtbot.waitExposed(plot)
    note = EmptyPlotNote(plot, "Press Align: the path of the drift (Å), frame by frame from the first (square), "
                               "appears here.")
    view = plot.getViewBox()
    for width in (260, 300, 420, 200, 640, 330):
        before = view.width()
        plot.resize(width, 200)
        qtbot.waitUntil(lambda: view.width() != before)  # the window system delivers the resize
        text = note.label.item.mapRectToScene(note.label.item.boundingRect())
        frame = view.mapRectToScene(view.boundingRect())
        assert frame.contains(text), (width, text, frame)
        assert abs(text.center().x() - frame.center().x()) < 2, (width, text, frame)


def test_empty_view_note_follows_the_rows_and_lets_clicks_through(qtbot):
    """An empty list or table shows its sentence centred in the viewport, not a blank box; the note
    hides when rows arrive (inserted or a model reset), comes back when they go, and follows resizes."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QListWidget

    from napari_cryomat.widgets._base import EmptyViewNote

    view = QListWidget()
    qtbot.addWidget(view)
    view.resize(300, 120)
    view.show()
    qtbot.waitExposed(view)
    note = EmptyViewNote(view, "Press Align: each tilt appears here.")
    assert note.shown and note.text == "Press Align: each tilt appears here."
    assert note.label.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    assert view.viewport().rect().contains(note.label.geometry())
    view.addItem("0 -60.0°")
    assert not note.shown
    view.clear()
    assert note.shown
    view.resize(200, 160)
    qtbot.waitUntil(lambda: note.label.width() < 200)
    assert view.viewport().rect().contains(note.label.geometry())



def _label_ink_bottom(plot) -> tuple[float, float]:
    """(bottom of the x-axis label's text, bottom of the plot's view) in px."""
    label = plot.getAxis("bottom").label
    box = label.mapRectToScene(label.boundingRect())
    return box.bottom() - label.document().documentMargin(), float(plot.viewport().rect().bottom())


def test_every_plot_leaves_room_for_its_x_labels_descenders(make_napari_viewer, qtbot):
    """At 1366x768 the x labels "energy (keV)", "tilt angle (°)", "strength: sigma (px)" had their descenders cut off
    at the plot's lower edge: pyqtgraph reserves 0.8 of the label's height and sets the text 5 px below the axis.
    A plot with room_for_axis_label keeps the text inside, one without does not; every dock's plots have it."""
    import pyqtgraph as pg

    from napari_cryomat.cli import WIDGETS
    from napari_cryomat.widgets._base import AXIS_LABEL_ROOM, room_for_axis_label

    def shown_plot(room: bool):
        plot = pg.PlotWidget()
        qtbot.addWidget(plot)
        plot.setLabel("bottom", "energy (keV)")
        if room:
            room_for_axis_label(plot)
        plot.resize(320, 180)
        plot.show()
        qtbot.waitExposed(plot)
        qtbot.wait(50)
        return plot

    text_bottom, view_bottom = _label_ink_bottom(shown_plot(room=False))
    assert text_bottom > view_bottom - 1  # pyqtgraph's own layout: the descenders reach the edge
    text_bottom, view_bottom = _label_ink_bottom(shown_plot(room=True))
    assert text_bottom <= view_bottom - 2
    viewer = make_napari_viewer()
    for name in WIDGETS:
        _, widget = viewer.window.add_plugin_dock_widget("napari-cryomat", name)
        plots = [plot for plot in widget.findChildren(pg.PlotWidget)
                 if plot.getPlotItem().getAxis("bottom").isVisible()]
        for plot in plots:
            assert plot.getPlotItem().layout.getContentsMargins()[3] >= AXIS_LABEL_ROOM, (name, plot)
