"""SegmentationWidget driven as a user would: new annotation, classes, autosave and restore, particles,
scribbles -> train -> predict, click-to-segment, slice interpolation."""

from types import SimpleNamespace

import numpy as np
import pytest

from napari_cryomat.core.annotation import image_key, load_annotation
from napari_cryomat.core.measure import match_labels
from napari_cryomat.core.synthetic.particles import make_particles
from napari_cryomat.widgets.segmentation import SegmentationWidget

PS = 2.0


@pytest.fixture(scope="module")
def sample():
    return make_particles(shape=(256, 256), n_particles=10, seed=2)


@pytest.fixture
def seg(make_napari_viewer, qtbot, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("CRYOMAT_AUTOSAVE_DIR", str(tmp_path / "default"))
    viewer = make_napari_viewer()
    image = viewer.add_image(sample[0], name="particles", scale=(PS, PS), units=("angstrom", "angstrom"))
    widget = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, image, widget


def wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=60000)


def test_new_annotation_matches_image_and_keeps_classes(seg):
    viewer, image, w = seg
    w.new_button.click()
    layer = viewer.layers["particles annotation"]
    assert layer.data.shape == image.data.shape
    assert tuple(layer.scale) == (PS, PS)
    assert [str(u) for u in layer.units] == ["angstrom", "angstrom"]
    assert list(layer.features["class"]) == ["particle", "dendrite", "SEI", "void", "ice"]
    # edit the class list as a user: rename, add a class
    w.class_table.item(0, 1).setText("nanoparticle")
    w.add_class_button.click()
    assert list(layer.features["class"])[0] == "nanoparticle"
    assert len(layer.features) == 6 and layer.features["index"].iloc[-1] == 6
    np.testing.assert_allclose(layer.colormap.map(np.array([1]))[0][:3], [0xE6 / 255, 0x19 / 255, 0x4B / 255],
                               atol=1e-6)
    w.class_table.setCurrentCell(2, 1)
    assert layer.selected_label == 3


def test_shape_mismatch_is_a_clear_message(seg, monkeypatch):
    viewer, image, w = seg
    viewer.add_labels(np.zeros((10, 10), np.uint8), name="wrong")
    w.labels_combo.setCurrentText("wrong")
    errors = []
    monkeypatch.setattr("napari_cryomat.widgets.segmentation.show_error", errors.append)
    w.train_button.click()
    assert errors and "shape" in errors[0] and "New annotation" in errors[0]
    assert "particles prediction" not in viewer.layers


def test_autosave_and_restore(seg, qtbot, tmp_path):
    viewer, image, w = seg
    folder = tmp_path / "saves"
    w.folder_edit.setText(str(folder))
    w.autosave_interval.setValue(2)
    assert w.autosave_check.isChecked()  # on by default: nothing to remember before painting
    w.new_button.click()
    layer = viewer.layers["particles annotation"]
    layer.data_setitem((np.array([10, 11]), np.array([20, 20])), 4)  # a "stroke"
    key = image_key(image.data, name="particles")
    qtbot.waitUntil(lambda: (a := load_annotation(folder, key)) is not None and a.labels[10, 20] == 4,
                    timeout=8000)
    assert "saved" in w.autosave_status.text()
    # more painting, then the annotation is deleted: saved on removal, not lost
    layer.data_setitem((np.array([30]), np.array([40])), 2)
    viewer.layers.remove(layer)
    saved = load_annotation(folder, key)
    assert saved.labels[30, 40] == 2 and saved.classes[1]["name"] == "dendrite"
    # opening the same image again offers the autosave back
    viewer.layers.remove(image)
    viewer.add_image(image.data.copy(), name="particles", scale=(PS, PS))
    assert w.restore_button.isEnabled()
    w.restore_button.click()
    restored = viewer.layers["particles annotation (restored)"]
    assert restored.data[10, 20] == 4 and restored.data[30, 40] == 2
    assert tuple(restored.scale) == (PS, PS)


def test_unwritable_autosave_folder_warns_at_once(seg, tmp_path, monkeypatch):
    viewer, image, w = seg
    errors = []
    monkeypatch.setattr("napari_cryomat.widgets.segmentation.show_error", errors.append)
    afile = tmp_path / "afile"
    afile.write_text("x")
    w.new_button.click()
    w.folder_edit.setText(str(afile / "sub"))
    w.folder_edit.editingFinished.emit()  # the user typed a folder and pressed Enter
    assert errors and "Cannot write autosaves" in errors[0]
    assert not w.autosave_check.isChecked()
    assert "NOT SAVING" in w.autosave_status.text()


def test_segment_particles_button(seg, qtbot, sample):
    viewer, image, w = seg
    w.segment_button.click()
    wait(qtbot, w)
    labels = viewer.layers["particles particles"]
    assert tuple(labels.scale) == (PS, PS)
    assert match_labels(labels.data, sample[1])["f1"] >= 0.9


def test_scribbles_train_predict(seg, qtbot, sample):
    viewer, image, w = seg
    truth = sample[1]
    w.new_button.click()
    layer = viewer.layers["particles annotation"]
    rng = np.random.default_rng(0)
    # paint strokes with napari's own paint method: class 1 inside particles, class 4 (void) outside
    for value, region in ((1, truth > 0), (4, truth == 0)):
        ys, xs = np.nonzero(region)
        for i in rng.choice(ys.size, 30, replace=False):
            layer.selected_label = value
            layer.brush_size = 3
            layer.paint((ys[i], xs[i]), value, refresh=False)
    layer.refresh()
    w.trees_spin.setValue(15)
    w.train_button.click()
    wait(qtbot, w)
    pred = viewer.layers["particles prediction"]
    assert set(np.unique(pred.data)) <= {1, 4}
    assert np.mean((pred.data == 1) == (truth > 0)) > 0.93
    assert tuple(pred.scale) == (PS, PS)
    assert "trained on" in w.classifier_status.text()
    # live retraining: paint more, the prediction updates by itself
    w.live_check.setChecked(True)
    before = pred.data.copy()
    ys, xs = np.nonzero(truth == 0)
    layer.paint((ys[5], xs[5]), 4)
    qtbot.waitUntil(lambda: w.runner.busy, timeout=5000)
    wait(qtbot, w)
    assert pred.data.shape == before.shape


def _isolated_particle(truth):
    """Index of the largest particle that touches no other (flood fill cannot tell touching twins apart)."""
    from scipy import ndimage as ndi

    best, size = None, 0
    for k in range(int(truth.max())):
        m = truth == k + 1
        ring = ndi.binary_dilation(m, iterations=3) & ~m
        if not np.any(truth[ring] > 0) and m.sum() > size:
            best, size = k, m.sum()
    return best


def test_click_to_segment_and_refine(seg, qtbot, sample):
    viewer, image, w = seg
    truth, info = sample[1], sample[2]
    w.new_button.click()
    layer = viewer.layers["particles annotation"]
    layer.selected_label = 1
    w.click_check.setChecked(True)
    assert w._mouse_click in viewer.mouse_drag_callbacks
    k = _isolated_particle(truth)
    cy, cx = info["center_px"][k]
    # a real napari mouse event shape: world position in Å
    event = SimpleNamespace(type="mouse_press", position=(cy * PS, cx * PS), modifiers=())
    w._mouse_click(viewer, event)
    obj = layer.data == 1
    iou = np.sum(obj & (truth == k + 1)) / np.sum(obj | (truth == k + 1))
    assert iou > 0.7
    # a tolerance that is too loose floods, a Shift-click on the support refines it
    w.tolerance_spin.setValue(0.5)
    w.click_at((cy, cx), mode="new")
    assert np.count_nonzero(layer.data == 1) > 2 * np.count_nonzero(truth == k + 1)
    w._click_state["previous"]  # the flood is remembered so that a refinement replaces it
    background = np.argwhere(truth == 0)
    target = np.array([cy, cx + info["radius_A"][k] / PS + 10])
    bg = background[np.argmin(np.hypot(*(background - target).T))]
    w._mouse_click(viewer, SimpleNamespace(type="mouse_press", position=tuple(bg * PS),
                                           modifiers=(SimpleNamespace(name="Shift"),)))
    obj = layer.data == 1
    assert np.sum(obj & (truth == k + 1)) / np.sum(obj | (truth == k + 1)) > 0.6
    w.click_check.setChecked(False)
    assert w._mouse_click not in viewer.mouse_drag_callbacks


def test_interpolate_between_slices(make_napari_viewer):
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
    w.interpolate_button.click()
    r = np.sqrt(np.count_nonzero(layer.data[4] == 2) / np.pi)
    assert abs(r - 9) < 1.0


def test_movie_is_segmented_frame_by_frame(make_napari_viewer, qtbot):
    from napari_cryomat.core.synthetic.particles import make_growth

    movie, truth, info = make_growth(n_frames=3)
    viewer = make_napari_viewer()
    viewer.add_image(movie, name="growth", scale=(1, PS, PS), axis_labels=("t", "y", "x"))
    w = SegmentationWidget(viewer)
    assert w.frames_check.isChecked()
    w.segment_button.click()
    wait(qtbot, w)
    labels = viewer.layers["growth particles"].data
    for t in range(3):
        assert labels[t].max() == truth[t].max()  # labels restart in every frame
        assert match_labels(labels[t], truth[t])["f1"] == 1.0


def test_segment_anything_is_offered_only_when_installed(make_napari_viewer, monkeypatch, tmp_path):
    import sys
    import types

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((64, 64)).astype(np.float32), name="img")
    monkeypatch.setitem(sys.modules, "segment_anything", None)
    monkeypatch.setitem(sys.modules, "micro_sam", None)
    w = SegmentationWidget(viewer)
    methods = [w.click_method.itemText(i) for i in range(w.click_method.count())]
    assert "segment anything" not in methods

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
    w.click_method.setCurrentText("segment anything")
    w.new_button.click()
    errors = []
    monkeypatch.setattr("napari_cryomat.widgets.segmentation.show_error", errors.append)
    w.click_at((20, 30))
    assert errors and "weights" in errors[0]  # no weights chosen: a message, nothing downloaded
    weights = tmp_path / "sam.pth"
    weights.write_bytes(b"w")
    w.sam_weights_edit.setText(str(weights))
    w.click_at((20, 30))
    assert np.count_nonzero(viewer.layers["img annotation"].data) == 49


def test_autosave_on_window_close(seg, tmp_path):
    from qtpy.QtGui import QCloseEvent

    viewer, image, w = seg
    folder = tmp_path / "onclose"
    w.folder_edit.setText(str(folder))
    w.autosave_interval.setValue(3600)  # the timer will not fire during the test
    w.new_button.click()
    w.autosave_check.setChecked(True)
    layer = viewer.layers["particles annotation"]
    layer.data_setitem((np.array([7]), np.array([9])), 5)
    key = image_key(image.data, name="particles")
    before = load_annotation(folder, key)
    assert before is None or before.labels[7, 9] == 0
    # napari's main window receives a Close event (File > Exit, the window's close button)
    w._close_watcher.eventFilter(viewer.window._qt_window, QCloseEvent())
    assert load_annotation(folder, key).labels[7, 9] == 5
