"""SegmentationWidget driven as a user would: new annotation, classes, autosave and restore, particles,
scribbles -> train -> predict, click-to-segment, slice interpolation; the GUI thread stays free."""

from types import SimpleNamespace

import numpy as np
import pytest

from napari_cryomat.core.annotation import default_folder, image_key, load_annotation, save_annotation
from napari_cryomat.core.measure import match_labels
from napari_cryomat.widgets.segmentation import SegmentationWidget

PS = 2.0


@pytest.fixture
def seg(make_napari_viewer, sample, messages):
    viewer = make_napari_viewer()
    image = viewer.add_image(sample[0], name="particles", scale=(PS, PS), units=("angstrom", "angstrom"))
    widget = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, image, widget


def wait(qtbot, widget, timeout=60000):
    qtbot.waitUntil(lambda: widget.idle, timeout=timeout)


def test_new_annotation_matches_image_and_keeps_classes(seg, qtbot):
    viewer, image, w = seg
    w.new_button.click()
    layer = viewer.layers["particles annotation"]
    assert w.labels_combo.layer() is layer
    assert layer.data.shape == image.data.shape and layer.mode == "paint"
    assert tuple(layer.scale) == (PS, PS)
    assert [str(u) for u in layer.units] == ["angstrom", "angstrom"]
    assert list(layer.features["class"]) == ["particle", "dendrite", "SEI", "void", "ice"]
    table = w.classes_panel.table
    table.item(0, 1).setText("nanoparticle")  # edit the class list as a user: rename, add a class
    w.classes_panel.add_button.click()
    assert list(layer.features["class"])[0] == "nanoparticle"
    assert len(layer.features) == 6 and layer.features["index"].iloc[-1] == 6
    np.testing.assert_allclose(layer.colormap.map(np.array([1]))[0][:3], [0xE6 / 255, 0x19 / 255, 0x4B / 255],
                               atol=1e-6)
    table.setCurrentCell(2, 1)
    assert layer.selected_label == 3
    # every class row is on screen: the table is as tall as its rows (once styled, in its window)
    viewer.window.show()
    qtbot.waitUntil(table.isVisible)
    assert table.verticalScrollBar().maximum() == 0 and table.rowCount() == 6


def test_shape_mismatch_is_a_clear_message(seg, messages):
    viewer, image, w = seg
    viewer.add_labels(np.zeros((10, 10), np.uint8), name="wrong")
    w.labels_combo.setCurrentText("wrong")
    w.train_button.click()
    assert messages["error"] and "shape" in messages["error"][0] and "New annotation" in messages["error"][0]
    assert "particles prediction" not in viewer.layers


def test_autosave_and_restore(seg, qtbot, tmp_path, messages):
    viewer, image, w = seg
    panel = w.autosave_panel
    folder = tmp_path / "saves"
    panel.folder_edit.setText(str(folder))
    panel.folder_edit.editingFinished.emit()
    panel.interval_spin.setValue(2)
    assert panel.autosave_check.isChecked()  # on by default: nothing to remember before painting
    w.new_button.click()
    layer = viewer.layers["particles annotation"]
    layer.data_setitem((np.array([10, 11]), np.array([20, 20])), 4)  # a "stroke"
    key = image_key(image.data, name="particles")
    qtbot.waitUntil(lambda: (a := load_annotation(folder, key)) is not None and a.labels[10, 20] == 4,
                    timeout=8000)
    qtbot.waitUntil(lambda: "saved" in panel.status_label.text(), timeout=2000)
    assert panel.status_label.toolTip().endswith(f"{key}.labels.npz")
    # more painting, then the annotation is deleted: saved on removal, not lost
    layer.data_setitem((np.array([30]), np.array([40])), 2)
    viewer.layers.remove(layer)
    saved = load_annotation(folder, key)
    assert saved.labels[30, 40] == 2 and saved.classes[1]["name"] == "dendrite"
    # opening the same image again offers the autosave back, without announcing this session's work
    viewer.layers.remove(image)
    viewer.add_image(image.data.copy(), name="particles", scale=(PS, PS))
    qtbot.waitUntil(panel.restore_button.isEnabled, timeout=5000)
    assert not any("autosaved annotation" in m for m in messages["info"])
    panel.restore_button.click()
    restored = viewer.layers["particles annotation (restored)"]
    assert restored.data[10, 20] == 4 and restored.data[30, 40] == 2
    assert tuple(restored.scale) == (PS, PS)
    assert w.labels_combo.layer() is restored


def test_earlier_session_is_announced(make_napari_viewer, qtbot, sample, messages):
    data = sample[0]
    earlier = np.zeros(data.shape, np.uint8)
    earlier[3, 4] = 2
    # default_folder(): CRYOMAT_AUTOSAVE_DIR, a temporary folder in tests (tests/conftest.py)
    save_annotation(default_folder(), image_key(data, name="particles"), earlier,
                    metadata={"image": "particles", "session": "last week"})
    viewer = make_napari_viewer()
    w = SegmentationWidget(viewer)
    viewer.add_image(data, name="particles")
    qtbot.waitUntil(w.autosave_panel.restore_button.isEnabled, timeout=5000)
    assert any("autosaved annotation of 'particles'" in m for m in messages["info"])


def test_unwritable_autosave_folder_warns_at_once(seg, tmp_path, messages):
    viewer, image, w = seg
    panel = w.autosave_panel
    afile = tmp_path / "afile"
    afile.write_text("x")
    w.new_button.click()
    panel.folder_edit.setText(str(afile / "sub"))
    panel.folder_edit.editingFinished.emit()  # the user typed a folder and pressed Enter
    assert messages["error"] and "Cannot write autosaves" in messages["error"][0]
    assert not panel.autosave_check.isChecked()
    assert "NOT SAVING" in panel.status_label.text()


def test_segment_particles_button(seg, qtbot, sample, messages):
    viewer, image, w = seg
    w.particles_panel.segment_button.click()
    wait(qtbot, w)
    labels = viewer.layers["particles segmented"]  # not "particles particles"
    assert tuple(labels.scale) == (PS, PS)
    assert match_labels(labels.data, sample[1])["f1"] >= 0.9
    assert any("particles found" in m for m in messages["info"])
    assert w.labels_combo.layer() is None  # a result is not offered as the annotation to paint


def paint_scribbles(layer, truth, n=30):
    """Strokes with napari's own paint method: class 1 inside particles, class 4 (void) outside."""
    rng = np.random.default_rng(0)
    layer.brush_size = 3
    for value, region in ((1, truth > 0), (4, truth == 0)):
        ys, xs = np.nonzero(region)
        for i in rng.choice(ys.size, n, replace=False):
            layer.selected_label = value
            layer.paint((ys[i], xs[i]), value, refresh=False)
    layer.refresh()


def test_scribbles_train_predict(seg, qtbot, sample):
    viewer, image, w = seg
    truth = sample[1]
    w.new_button.click()
    layer = viewer.layers["particles annotation"]
    paint_scribbles(layer, truth)
    w.trees_spin.setValue(15)
    w.train_button.click()
    wait(qtbot, w)
    pred = viewer.layers["particles prediction"]
    assert set(np.unique(pred.data)) <= {1, 4}
    assert np.mean((pred.data == 1) == (truth > 0)) > 0.93
    assert tuple(pred.scale) == (PS, PS)
    assert "trained on" in w.classifier_panel.status_label.text()
    combo = w.labels_combo  # a prediction is a result, not the layer to paint on
    assert "particles prediction" not in [combo.itemText(i) for i in range(combo.count())]
    # live retraining: paint more, the prediction updates by itself
    w.classifier_panel.live_check.setChecked(True)
    before = pred.data.copy()
    ys, xs = np.nonzero(truth == 0)
    layer.paint((ys[5], xs[5]), 4)
    qtbot.waitUntil(lambda: w.runner.busy, timeout=5000)
    wait(qtbot, w)
    assert pred.data.shape == before.shape
    assert [x.name for x in viewer.layers].count("particles prediction") == 1


def test_click_to_segment_and_refine(seg, qtbot, sample, isolated):
    viewer, image, w = seg
    tools = w.tools_panel
    truth, info = sample[1], sample[2]
    w.new_button.click()
    layer = viewer.layers["particles annotation"]
    layer.selected_label = 1
    tools.click_check.setChecked(True)
    assert tools.clicking and layer.mode == "pan_zoom"  # a click segments, it does not paint
    k = isolated
    cy, cx = info["center_px"][k]
    # a real napari mouse event shape: world position in Å
    tools._mouse_click(viewer, SimpleNamespace(type="mouse_press", position=(cy * PS, cx * PS), modifiers=()))
    qtbot.waitUntil(lambda: np.any(layer.data == 1), timeout=10000)
    wait(qtbot, w)
    obj = layer.data == 1
    iou = np.sum(obj & (truth == k + 1)) / np.sum(obj | (truth == k + 1))
    assert iou > 0.7
    # a tolerance that is too loose floods, a Shift-click on the support refines it
    tools.tolerance_spin.setValue(0.5)
    tools.click_at((cy, cx), mode="new")
    wait(qtbot, w)
    assert np.count_nonzero(layer.data == 1) > 2 * np.count_nonzero(truth == k + 1)
    background = np.argwhere(truth == 0)
    target = np.array([cy, cx + info["radius_A"][k] / PS + 10])
    bg = background[np.argmin(np.hypot(*(background - target).T))]
    tools._mouse_click(viewer, SimpleNamespace(type="mouse_press", position=tuple(bg * PS),
                                               modifiers=(SimpleNamespace(name="Shift"),)))
    wait(qtbot, w)
    obj = layer.data == 1
    assert np.sum(obj & (truth == k + 1)) / np.sum(obj | (truth == k + 1)) > 0.6
    # another tool's tab in front: clicks are not ours
    tools.set_in_front(False)
    assert not tools.clicking
    tools.set_in_front(True)
    tools.click_check.setChecked(False)
    assert not tools.clicking


def test_random_walker_click_runs_in_a_worker(seg, qtbot, sample, gui_watch):
    viewer, image, w = seg
    w.new_button.click()
    tools = w.tools_panel
    tools.method_combo.setCurrentText("random_walker")
    tools.radius_spin.setValue(60)
    cy, cx = sample[2]["center_px"][0]
    with gui_watch as watch:
        assert tools.click_at((cy, cx)) is not None
        wait(qtbot, w)
    assert viewer.layers["particles annotation"].data[int(round(cy)), int(round(cx))] == 1
    assert watch.longest < 0.1


def test_interpolate_between_slices(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((9, 40, 40), np.float32), name="stack", scale=(3, 3, 3))
    w = SegmentationWidget(viewer)
    w.new_button.click()
    layer = viewer.layers["stack annotation"]
    yy, xx = np.mgrid[:40, :40]
    data = layer.data.copy()
    data[0][np.hypot(yy - 20, xx - 20) < 5] = 2
    data[8][np.hypot(yy - 20, xx - 20) < 13] = 2
    layer.data = data
    w.classes_panel.interpolate_button.click()
    wait(qtbot, w)
    r = np.sqrt(np.count_nonzero(layer.data[4] == 2) / np.pi)
    assert abs(r - 9) < 1.0


def test_movie_is_segmented_frame_by_frame(make_napari_viewer, qtbot):
    from napari_cryomat.core.synthetic.particles import make_growth

    movie, truth, info = make_growth(n_frames=3)
    viewer = make_napari_viewer()
    viewer.add_image(movie, name="growth", scale=(1, PS, PS), axis_labels=("t", "y", "x"))
    w = SegmentationWidget(viewer)
    assert w.particles_panel.frames_check.isChecked()
    w.particles_panel.segment_button.click()
    wait(qtbot, w)
    labels = viewer.layers["growth particles"].data
    for t in range(3):
        assert labels[t].max() == truth[t].max()  # labels restart in every frame
        assert match_labels(labels[t], truth[t])["f1"] == 1.0


def test_segment_anything_is_offered_only_when_installed(make_napari_viewer, qtbot, monkeypatch, tmp_path,
                                                         messages):
    import sys
    import types

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((64, 64)).astype(np.float32), name="img")
    monkeypatch.setitem(sys.modules, "segment_anything", None)
    monkeypatch.setitem(sys.modules, "micro_sam", None)
    w = SegmentationWidget(viewer)
    combo = w.tools_panel.method_combo
    assert "segment anything" not in [combo.itemText(i) for i in range(combo.count())]

    class Predictor:
        def __init__(self, sam):
            pass

        def set_image(self, rgb):
            self.shape = rgb.shape[:2]

        def predict(self, point_coords, point_labels, multimask_output):
            m = np.zeros(self.shape, bool)
            x, y = point_coords[0].astype(int)
            m[y - 3:y + 4, x - 3:x + 4] = True
            return m[None], np.array([1.0]), None

    class Sam:
        def to(self, device):
            pass

    mod = types.ModuleType("segment_anything")
    mod.SamPredictor = Predictor
    mod.sam_model_registry = {"vit_b": lambda checkpoint: Sam()}
    monkeypatch.setitem(sys.modules, "segment_anything", mod)
    monkeypatch.setitem(sys.modules, "micro_sam.util", None)
    w = SegmentationWidget(viewer)
    tools = w.tools_panel
    tools.method_combo.setCurrentText("segment anything")
    w.new_button.click()
    tools.click_at((20, 30))
    assert messages["error"] and "weights" in messages["error"][0]  # no weights chosen: nothing downloaded
    tools.sam_weights_edit.setText(str(tmp_path / "missing.pth"))
    tools.click_at((20, 30))
    wait(qtbot, w)
    assert "No Segment Anything weights" in messages["error"][-1]
    weights = tmp_path / "sam.pth"
    weights.write_bytes(b"w")
    tools.sam_weights_edit.setText(str(weights))
    tools.click_at((20, 30))
    wait(qtbot, w)
    assert np.count_nonzero(viewer.layers["img annotation"].data) == 49


def test_autosave_on_window_close_and_quit(seg, tmp_path):
    from qtpy.QtGui import QCloseEvent
    from qtpy.QtWidgets import QApplication

    viewer, image, w = seg
    panel = w.autosave_panel
    folder = tmp_path / "onclose"
    panel.folder_edit.setText(str(folder))
    panel.folder_edit.editingFinished.emit()
    panel.interval_spin.setValue(3600)  # the timer will not fire during the test
    w.new_button.click()
    layer = viewer.layers["particles annotation"]
    layer.data_setitem((np.array([7]), np.array([9])), 5)
    key = image_key(image.data, name="particles")
    assert load_annotation(folder, key) is None
    # napari's main window receives a Close event (File > Exit, the window's close button)
    panel._close_watcher.eventFilter(viewer.window._qt_window, QCloseEvent())
    assert load_annotation(folder, key).labels[7, 9] == 5
    layer.data_setitem((np.array([8]), np.array([9])), 3)
    QApplication.instance().aboutToQuit.emit()  # the application quits
    assert load_annotation(folder, key).labels[8, 9] == 3


def test_big_image_keeps_the_gui_thread_free(make_napari_viewer, qtbot, sample, gui_watch):
    """2048² image, the loop of a long annotation session: strokes, autosave, particles, retraining,
    clicks, class colours. The GUI thread never computes for more than 0.1 s between event-loop turns.

    The first run of each step is not watched: it adds the result layers, and napari's adding of any
    labels layer (its vispy visuals and controls, 90-180 ms here whatever the size) and its first
    label colormap (a ~2 s numba compile) are napari's own one-time costs."""
    viewer = make_napari_viewer(show=False)
    big = np.tile(sample[0], (8, 8))
    truth = np.tile(sample[1] > 0, (8, 8))
    viewer.add_image(big, name="big", scale=(PS, PS), units=("angstrom", "angstrom"))
    w = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.classifier_panel.sigma_max_spin.setValue(2)
    w.trees_spin.setValue(5)
    w.new_button.click()
    layer = viewer.layers["big annotation"]
    paint_scribbles(layer, truth[:256, :256], n=10)
    cy, cx = sample[2]["center_px"][0]

    def session_steps():
        layer.data_setitem((np.array([5, 6]), np.array([5, 5])), 4)
        w.autosave_panel.tick()
        w.particles_panel.segment_button.click()
        wait(qtbot, w, timeout=120000)
        w.train_button.click()
        wait(qtbot, w, timeout=180000)
        w.tools_panel.click_at((cy, cx))
        wait(qtbot, w)
        w.model.classes.recolour(1, "#00ff00")
        w.autosave_panel.tick()
        wait(qtbot, w)

    session_steps()  # first run: makes "big particles" and "big prediction"
    with gui_watch as watch:
        session_steps()
    assert "big particles" in viewer.layers and "big prediction" in viewer.layers
    assert layer.data[int(round(cy)), int(round(cx))] != 0
    print(f"longest GUI-thread stretch: {watch.longest * 1000:.0f} ms")
    assert watch.longest < 0.1, f"the GUI thread computed for {watch.longest:.3f} s at once"


def test_particles_show_what_was_assumed_and_take_an_override(seg, qtbot, sample, messages):
    viewer, image, w = seg
    panel = w.particles_panel
    assert panel.polarity_combo.currentText() == "auto" and panel.smoothing_spin.text() == "auto"
    panel.segment_button.click()
    wait(qtbot, w)
    first = viewer.layers["particles segmented"].data.max()
    assumed = panel.assumed_note.text()
    assert "dark*" in assumed and "Ø" in assumed  # the sample's particles are dark, read off the image
    assert panel.polarity_combo.itemText(0) == "auto (dark)"
    diameter = w.model.particle_settings.diameter
    assert 40 < diameter < 100  # the sample's particles are 48-88 Å across
    assert panel.diameter_spin.text().startswith("auto: ")
    # override one setting: a minimum size above every particle leaves nothing; the rest stays auto
    panel.min_size_spin.setValue(1e8)
    panel.segment_button.click()
    wait(qtbot, w)
    assert first > 0 and viewer.layers["particles segmented"].data.max() == 0
    settings = w.model.particle_settings
    assert settings.min_size == 1e8 and "min_size" not in settings.estimated and "polarity" in settings.estimated
    assert "min 100000000 Å²," in panel.assumed_note.text()


def test_classifier_saved_loaded_and_applied(seg, qtbot, sample, messages, tmp_path):
    viewer, image, w = seg
    truth = sample[1]
    w.new_button.click()
    paint_scribbles(viewer.layers["particles annotation"], truth)
    panel = w.classifier_panel
    panel.save(str(tmp_path / "none.skops"))
    assert "train one first" in messages["error"][-1]
    w.train_button.click()
    wait(qtbot, w)
    first = viewer.layers["particles prediction"].data.copy()
    panel.save(str(tmp_path / "particles.skops"))
    assert (tmp_path / "particles.skops").exists() and "saved" in messages["info"][-1]
    viewer.layers.remove("particles prediction")
    w.model.classifier = None
    (tmp_path / "notes.skops").write_text("a note")
    panel.load(str(tmp_path / "notes.skops"))
    assert "not a saved pixel classifier" in messages["error"][-1] and w.model.classifier is None
    panel.load(str(tmp_path / "particles.skops"))
    assert "loaded" in panel.status_label.text()
    panel.apply_button.click()
    wait(qtbot, w)
    assert np.array_equal(viewer.layers["particles prediction"].data, first)


def test_empty_field_segments_nothing_and_says_why(make_napari_viewer, qtbot, messages):
    """A blank frame (shot noise on bare support): Segment particles gives an empty labels layer and the
    assumed-settings line says no particle-like blob stood above the noise and how to force a result."""
    viewer = make_napari_viewer()
    noise = np.random.default_rng(3).poisson(40.0, (256, 256)).astype(np.float32)
    viewer.add_image(noise, name="blank", scale=(PS, PS), units=("angstrom", "angstrom"))
    w = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.particles_panel.segment_button.click()
    wait(qtbot, w)
    assert viewer.layers["blank particles"].data.max() == 0
    assert "no particle-like blob above the noise" in w.particles_panel.assumed_note.text()
    assert "Diameter" in w.particles_panel.assumed_note.text()


def test_faint_small_particles_auto_shows_detect_and_detect_can_be_picked(make_napari_viewer, qtbot, messages):
    """Ø12 particles at 15 % contrast, 20 counts/px: Segment particles says it used the detector
    ("auto (detect)") and finds most of them; picking "detect" by hand gives the same labels."""
    from napari_cryomat.core.synthetic.particles import make_particle_field

    img, truth, _ = make_particle_field(diameter=12, contrast=0.15, dose=20, size=(256, 256), polarity="dark", seed=300)
    viewer = make_napari_viewer()
    viewer.add_image(img, name="faint", scale=(PS, PS), units=("angstrom", "angstrom"))
    w = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(w)
    panel = w.particles_panel
    panel.segment_button.click()
    wait(qtbot, w)
    assert panel.threshold_combo.itemText(0) == "auto (detect)"
    auto = viewer.layers["faint particles"].data.copy()
    assert match_labels(auto, truth)["f1"] >= 0.7
    panel.threshold_combo.setCurrentText("detect")
    panel.segment_button.click()
    wait(qtbot, w)
    assert match_labels(viewer.layers["faint particles"].data, auto)["f1"] >= 0.95


def test_a_size_read_at_the_pixel_scale_is_cautioned_in_the_dock(make_napari_viewer, qtbot, messages):
    # atom columns 3 px across segmented as particles read Ø 4 px, as a micrograph's noise does (epu2.9_example.mrc:
    # 331k "particles" of 3 Å): the caution was only in a toast that napari cut short
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:192, :192].astype(np.float32)
    columns = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
                  for cy in np.arange(3, 192, 6.0) for cx in np.arange(3, 192, 6.0))
    viewer = make_napari_viewer()
    viewer.add_image(rng.poisson(50 + 100 * columns).astype(np.float32), name="haadf", scale=(0.2, 0.2),
                     units=("angstrom", "angstrom"))
    w = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.particles_panel.segment_button.click()
    wait(qtbot, w)
    note = w.particles_panel.assumed_note.text()
    assert note.startswith("⚠ The particles' size was read as Ø") and "check that they are particles" in note
    assert any("check that they are particles" in m for m in messages["info"])


def test_a_new_user_sees_segment_particles_without_scrolling(make_napari_viewer, sample, qtbot):
    """On a laptop (1366 x 740 window) the dock opens with Automatic particles and its button on screen: it
    needs only the image. Below the classes, paint and classifier sections its button ended 840 px down a
    643 px high view."""
    from qtpy.QtCore import QPoint

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 740)
    viewer.add_image(sample[0], name="particles", scale=(PS, PS), units=("angstrom", "angstrom"))
    _dock, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Segmentation")
    qtbot.wait(200)
    viewport = w.panel.scroll.viewport()
    button = w.particles_panel.segment_button
    bottom = button.mapTo(viewport, QPoint(0, button.height())).y()
    assert w.panel.scroll.verticalScrollBar().value() == 0 and 0 < bottom <= viewport.height()
