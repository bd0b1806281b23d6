"""Drive the Live FFT dock as a user would: ROI, frames, detection, filters, GPA, PLD, series."""

import numpy as np
import pytest
from qtpy.QtCore import QPointF, Qt

from napari_cryomat.core.synthetic.lattice import decaying_lattice_stack, superlattice_image
from napari_cryomat.widgets.live_fft import ROI_LAYER_NAME, LiveFFTWidget


def _shown(viewer, name: str) -> bool:
    """A helper layer is shown: present and visible (hidden, not removed, while its tool is behind)."""
    return name in viewer.layers and bool(viewer.layers[name].visible)

def _rect(y0, x0, s):
    return np.array([[y0, x0], [y0, x0 + s], [y0 + s, x0 + s], [y0 + s, x0]], float)


@pytest.fixture
def lattice_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    img, truth = superlattice_image((384, 384), strain_radius=20.0, strain_centre=(40.0, 40.0), seed=7)
    p = truth["pixel_size"]
    layer = viewer.add_image(img, name="lattice", scale=(p, p), units=("angstrom", "angstrom"),
                             metadata={"truth": truth})
    return viewer, layer, truth


@pytest.fixture
def errors(monkeypatch):
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    return shown


def _widget(viewer, qtbot):
    w = LiveFFTWidget(viewer)
    qtbot.addWidget(w)
    _show(viewer, w, qtbot)
    return w


def _show(viewer, w, qtbot):
    """The dock comes in front: its ROI appears (once the event loop has settled which tab is in
    front), where there is an image."""
    w.show()
    qtbot.waitUntil(lambda: w.model.layer is None or _shown(viewer, ROI_LAYER_NAME), timeout=5000)


def _wait_fft(qtbot, w, bounds):
    view = w.spectrum_view
    qtbot.waitUntil(lambda: view.current is not None and view.current.bounds == bounds, timeout=10000)


def _wait_runner(qtbot, w):
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=60000)


def test_roi_follows_and_latest_wins(lattice_viewer, qtbot):
    viewer, layer, truth = lattice_viewer
    w = _widget(viewer, qtbot)
    view = w.spectrum_view
    roi = viewer.layers[ROI_LAYER_NAME]
    assert roi.scale[-1] == pytest.approx(truth["pixel_size"])
    _wait_fft(qtbot, w, (0, 384, 0, 384))  # default ROI: min(512, image) centred
    # move and resize the ROI: the spectrum follows with the right calibration
    roi.data = [_rect(100, 50, 200)]
    _wait_fft(qtbot, w, (100, 300, 50, 250))
    assert view.reciprocal_pixel[0] == pytest.approx(1 / (200 * truth["pixel_size"]))
    assert view.image_item.image.shape == (200, 101)  # half plane, drawn twice
    dgy, dgx = view.reciprocal_pixel
    for r, c in ((100.5, 0.5), (37.5, 60.5), (180.5, 99.5)):  # pixel centres (row, col) of the half
        a = view.image_item.mapToParent(QPointF(c, r))
        b = view.image_item_mirror.mapToParent(QPointF(c, r))
        assert (a.x(), a.y()) == pytest.approx((-b.x(), -b.y()))  # the mirror shows P(-g)
        assert a.y() == pytest.approx((r - 0.5 - 100) * dgy)  # ky = row - Y//2
        assert a.x() == pytest.approx((c - 0.5) * dgx)  # kx = col
    spec = view.spectrum().astype(float)
    assert spec.shape == (200, 200)
    # the brightest off-centre spots sit at the lattice's |g|
    spec[95:106, 95:106] = spec.min()
    r, c = np.unravel_index(np.argmax(spec), spec.shape)
    assert np.hypot(r - 100, c - 100) * dgy == pytest.approx(1 / truth["d1"], rel=0.03)
    # a burst of moves: only the last one is guaranteed to be shown, nothing queues
    n0 = view.n_updates
    for k in range(20):
        roi.data = [_rect(10 + k, 10 + k, 128)]
    _wait_fft(qtbot, w, (29, 157, 29, 157))
    assert view.n_updates - n0 <= 20
    qtbot.waitUntil(lambda: view.idle, timeout=5000)
    assert layer.data.shape == (384, 384)


def test_bad_rois_leave_image_untouched(lattice_viewer, qtbot):
    viewer, layer, _ = lattice_viewer
    before = layer.data.copy()
    w = _widget(viewer, qtbot)
    roi = viewer.layers[ROI_LAYER_NAME]
    roi.data = [_rect(300, 300, 200)]  # partly outside
    _wait_fft(qtbot, w, (300, 384, 300, 384))
    assert "clipped" in w.spectrum_view.note.text()
    roi.data = [_rect(10, 10, 8)]  # too small: the last spectrum stays, a note says why
    qtbot.waitUntil(lambda: "at least 16" in w.spectrum_view.note.text(), timeout=5000)
    assert w.spectrum_view.current.bounds == (300, 384, 300, 384)
    np.testing.assert_array_equal(layer.data, before)


def test_rgb_and_nan_layers(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="rgb", rgb=True)
    w = _widget(viewer, qtbot)
    assert w.layer_combo.findText("rgb") < 0  # RGB layers are not offered
    assert w.layer_combo.findText(ROI_LAYER_NAME) < 0  # nor is the tool's own ROI
    nan = np.ones((64, 64), np.float32)
    nan[10, 10] = np.nan
    viewer.add_image(nan, name="nan")
    w.layer_combo.setCurrentIndex(w.layer_combo.findText("nan"))
    qtbot.waitUntil(lambda: "NaN" in w.spectrum_view.note.text(), timeout=5000)
    w.lattice_panel.detect_button.click()  # the worker finds the NaN: a message, nothing changed
    _wait_runner(qtbot, w)
    assert any("NaN" in message for message in errors)
    assert "NaN" in w.lattice_panel.summary.text()  # said in the dock too: a notification shows one line
    assert w.model.lattice is None and np.isnan(viewer.layers["nan"].data[10, 10])
    assert [layer.name for layer in viewer.layers] == ["rgb", "nan", ROI_LAYER_NAME]


def test_buttons_detect_bragg_gpa_pld_radial(lattice_viewer, qtbot):
    viewer, layer, truth = lattice_viewer
    p = truth["pixel_size"]
    w = _widget(viewer, qtbot)
    viewer.layers[ROI_LAYER_NAME].data = [_rect(128, 128, 256)]
    _wait_fft(qtbot, w, (128, 384, 128, 384))
    lattice_panel = w.lattice_panel
    lattice_panel.as_layers.setChecked(True)
    lattice_panel.detect_button.click()
    _wait_runner(qtbot, w)
    lattice = w.model.lattice
    assert lattice.d1 == pytest.approx(truth["d1"], rel=3e-3) and lattice.modulation_vectors
    assert "superlattice" in lattice_panel.summary.text() and "256×256 px" in lattice_panel.summary.text()
    assert len(w.spectrum_view.peak_scatter.data) == len(lattice.peaks)
    assert len(w.model.reciprocal_viewer().layers["FFT lattice spots of lattice"].data) == len(lattice.peaks)
    lattice_panel.filter_mode.setCurrentText("lattice")
    lattice_panel.bragg_button.click()
    _wait_runner(qtbot, w)
    out = viewer.layers["lattice Bragg-filtered (lattice)"]
    assert out.data.shape == (256, 256) and tuple(out.translate) == pytest.approx((128 * p, 128 * p))
    w.gpa_panel.gpa_button.click()
    _wait_runner(qtbot, w)
    assert viewer.layers["lattice GPA exx"].colormap.name == "PiYG"
    assert "GPA of 256×256 px" in w.gpa_panel.results.text()
    w.gpa_panel.pld_button.click()
    _wait_runner(qtbot, w)
    amp = viewer.layers["lattice PLD amplitude (Å)"].data
    assert np.median(amp[64:-64, 64:-64]) == pytest.approx(truth["pld_amplitude"], rel=0.2)
    # the radial profile runs in a worker; the plot is titled from its run
    w.series_panel.radial_button.click()
    _wait_runner(qtbot, w)
    assert w.model.radial.g[-1] <= 0.5 / p + 1e-9
    assert "radial profile of 256×256 px" in w.series_panel.plot.getPlotItem().titleLabel.text
    # whole image: the same filter on the whole frame, same layer updated
    w.whole_image.setChecked(True)
    lattice_panel.bragg_button.click()
    _wait_runner(qtbot, w)
    assert viewer.layers["lattice Bragg-filtered (lattice)"].data.shape == (384, 384)
    assert tuple(viewer.layers["lattice Bragg-filtered (lattice)"].translate) == pytest.approx((0, 0))
    np.testing.assert_array_equal(layer.data, superlattice_image((384, 384), strain_radius=20.0,
                                                                  strain_centre=(40.0, 40.0), seed=7)[0])
    w.model.close()  # as when the dock closes: the reciprocal-space window (spots as layers) goes with it


def test_click_picks_the_refined_spot(lattice_viewer, qtbot):
    viewer, layer, truth = lattice_viewer
    w = _widget(viewer, qtbot)
    w.resize(420, 900)
    viewer.layers[ROI_LAYER_NAME].data = [_rect(128, 128, 256)]
    _wait_fft(qtbot, w, (128, 384, 128, 384))
    view = w.spectrum_view
    g1 = np.array(truth["g1"])
    # a click on the spectrum, slightly off the spot
    scene = view.view.mapViewToScene(QPointF(g1[1] - 0.003, g1[0] + 0.004))
    pos = view.graphics.mapFromScene(scene)
    qtbot.mouseClick(view.graphics.viewport(), Qt.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: len(w.model.picks) == 1, timeout=20000)
    _wait_runner(qtbot, w)
    assert np.hypot(*(w.model.picks[0].g - g1)) < 1.5e-3
    assert len(view.pick_scatter.data) == 1 and view.readout.text().startswith("picked: ")
    w.lattice_panel.clear_picks_button.click()
    assert len(view.pick_scatter.data) == 0


def test_frames_and_peak_series(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack, truth = decaying_lattice_stack(12, (128, 128), dose_per_frame=2.0, critical_dose=10.0)
    p = truth["pixel_size"]
    viewer.add_image(stack, name="stack", scale=(1, p, p), units=("pixel", "angstrom", "angstrom"))
    w = _widget(viewer, qtbot)
    view = w.spectrum_view
    _wait_fft(qtbot, w, (0, 128, 0, 128))
    qtbot.waitUntil(lambda: view.current.index == (viewer.dims.current_step[0],), timeout=5000)
    viewer.dims.set_current_step(0, 7)
    qtbot.waitUntil(lambda: view.current.index == (7,), timeout=5000)
    viewer.dims.set_current_step(0, 0)
    qtbot.waitUntil(lambda: view.current.index == (0,), timeout=5000)
    viewer.dims.order = (1, 0, 2)  # a (T, X) view: no FFT, a note instead
    qtbot.waitUntil(lambda: "(Y, X) plane" in view.note.text(), timeout=5000)
    viewer.dims.order = (0, 1, 2)
    viewer.layers[ROI_LAYER_NAME].data = [_rect(0, 0, 120)]
    _wait_fft(qtbot, w, (0, 120, 0, 120))
    viewer.layers[ROI_LAYER_NAME].data = [_rect(0, 0, 128)]
    _wait_fft(qtbot, w, (0, 128, 0, 128))
    w.lattice_panel.detect_button.click()
    _wait_runner(qtbot, w)
    assert w.model.lattice is not None
    w.series_panel.dose_per_frame.setValue(2.0)
    w.series_panel.series_button.click()
    _wait_runner(qtbot, w)
    assert w.model.series.result.critical_dose == pytest.approx(10.0, rel=0.15)
    assert "critical dose" in w.series_panel.plot.getPlotItem().titleLabel.text


def test_roi_exists_only_while_in_front(lattice_viewer, qtbot):
    """The ROI is a helper layer: absent until the dock is shown, gone while it is hidden, back where
    the user left it, removed when the widget closes."""
    viewer, _, _ = lattice_viewer
    w = LiveFFTWidget(viewer)
    qtbot.addWidget(w)
    assert not _shown(viewer, ROI_LAYER_NAME)  # the dock is not shown yet
    _show(viewer, w, qtbot)
    viewer.layers[ROI_LAYER_NAME].data = [_rect(50, 60, 100)]
    _wait_fft(qtbot, w, (50, 150, 60, 160))
    w.hide()
    assert not _shown(viewer, ROI_LAYER_NAME)
    _show(viewer, w, qtbot)
    assert w.model.roi_bounds()[0] == (50, 150, 60, 160)
    w.close()
    w.deleteLater()
    qtbot.waitUntil(lambda: not _shown(viewer, ROI_LAYER_NAME), timeout=5000)


def test_roi_sits_right_above_the_image_it_lies_on(lattice_viewer, qtbot):
    """An image opened after the ROI lies above it: chosen in the dock, it hid the ROI the user is to drag. The
    ROI moves right above the image chosen, there and back, and comes back there after the user deleted it."""
    viewer, _, _ = lattice_viewer
    w = _widget(viewer, qtbot)
    noise = np.random.default_rng(2801).normal(size=(128, 128)).astype(np.float32)  # fixed draw
    viewer.add_image(noise, name="next sample")

    def names():
        return [layer.name for layer in viewer.layers]

    assert names() == ["lattice", ROI_LAYER_NAME, "next sample"]  # the dock still shows "lattice"
    w.layer_combo.set_layer("next sample")
    assert names() == ["lattice", "next sample", ROI_LAYER_NAME] and _shown(viewer, ROI_LAYER_NAME)
    w.layer_combo.set_layer("lattice")
    assert names() == ["lattice", ROI_LAYER_NAME, "next sample"]
    viewer.layers.remove(ROI_LAYER_NAME)  # the user deletes it; the dock shows it again on the next image
    w.layer_combo.set_layer("next sample")
    assert names() == ["lattice", "next sample", ROI_LAYER_NAME] and _shown(viewer, ROI_LAYER_NAME)


def test_gui_thread_stays_free_on_a_2048_image(make_napari_viewer, qtbot, gui_watch):
    """FFTs, profile, picks and filters of a 2048² image run in workers; the GUI thread only draws.

    Adding a new layer costs napari itself 65-130 ms of GUI thread here whatever its size (layer
    controls, vispy node), so the filter's layer is made once before the watch, which then covers
    updating it with a new 2048² result.
    """
    viewer = make_napari_viewer(show=False)
    img, truth = superlattice_image((2048, 2048), seed=3)
    p = truth["pixel_size"]
    viewer.add_image(img, name="big", scale=(p, p), units=("angstrom", "angstrom"))
    w = _widget(viewer, qtbot)
    roi = viewer.layers[ROI_LAYER_NAME]
    w.spectrum_view.pick(np.array(truth["g1"]))
    _wait_runner(qtbot, w)
    w.lattice_panel.filter_mode.setCurrentText("picked spots")
    w.whole_image.setChecked(True)
    w.lattice_panel.bragg_button.click()
    _wait_runner(qtbot, w)
    with gui_watch as watch:
        roi.data = [_rect(0, 0, 2048)]  # the whole image, live
        _wait_fft(qtbot, w, (0, 2048, 0, 2048))
        for k in (16, 32):
            roi.data = [_rect(k, k, 2048 - k)]
            _wait_fft(qtbot, w, (k, 2048, k, 2048))
        w.series_panel.radial_button.click()
        _wait_runner(qtbot, w)
        w.spectrum_view.pick(np.array(truth["g2"]))
        _wait_runner(qtbot, w)
        w.lattice_panel.filter_radius.setValue(0.05)
        w.lattice_panel.bragg_button.click()
        _wait_runner(qtbot, w)
    out = viewer.layers["big Bragg-filtered (picked spots)"]
    assert out.data.shape == (2048, 2048) and len(w.model.picks) == 2
    assert w.model.radial.region.shape == (2016, 2016)
    # the 2016² spectrum reaches the canvas binned 2 x 2 in the worker, each bin over its pixels' mean g
    view = w.spectrum_view
    assert view.image_item.image.shape == (1008, 504) and view.shown_shape == (2016, 2016)
    dgy, dgx = view.reciprocal_pixel
    for r, c in ((0, 0), (500, 17), (1007, 503)):
        a = view.image_item.mapToParent(QPointF(c + 0.5, r + 0.5))
        assert a.y() == pytest.approx(((r + 0.5) * 2 - 0.5 - 1008) * dgy)
        assert a.x() == pytest.approx(((c + 0.5) * 2 - 0.5) * dgx)
    print(f"Live FFT, 2048² image: longest GUI-thread stretch {watch.longest * 1e3:.0f} ms")
    assert watch.longest < 0.1, f"GUI thread busy for {watch.longest:.3f} s"


@pytest.mark.e2e
def test_e2e_superlattice_sample_live_fft(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "superlattice")
    layer = viewer.layers["superlattice (synthetic)"]
    truth = layer.metadata["truth"]
    _, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Live FFT")
    assert isinstance(w, LiveFFTWidget)
    _wait_fft(qtbot, w, (256, 768, 256, 768))  # default: 512 px square in the middle
    qtbot.waitUntil(lambda: _shown(viewer, ROI_LAYER_NAME), timeout=5000)
    first = w.spectrum_view.spectrum()
    roi = viewer.layers[ROI_LAYER_NAME]
    roi.data = [_rect(600, 600, 300)]  # move and shrink: the FFT follows
    _wait_fft(qtbot, w, (600, 900, 600, 900))
    assert w.spectrum_view.spectrum().shape == (300, 300) and first.shape == (512, 512)
    w.lattice_panel.detect_button.click()
    _wait_runner(qtbot, w)
    assert w.model.lattice.d1 == pytest.approx(truth["d1"], rel=3e-3)
    assert w.model.lattice.modulation_vectors
    w.gpa_panel.gpa_button.click()
    _wait_runner(qtbot, w)
    assert "superlattice (synthetic) GPA exx" in viewer.layers
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 5  # something drawn, not a blank canvas
    grab = w.spectrum_view.graphics.grab().toImage()
    assert grab.width() > 100 and grab.height() > 100
    # another dock tabbed in front: the ROI goes; back in front: it returns where it was
    from qtpy.QtWidgets import QLabel

    other = viewer.window.add_dock_widget(QLabel("other"), name="other tool", tabify=True)
    other.show()
    other.raise_()
    qtbot.waitUntil(lambda: not _shown(viewer, ROI_LAYER_NAME), timeout=5000)
    fft_dock = viewer.window._qt_window.findChild(type(other), "Live FFT") or w.parent()
    fft_dock.raise_()
    qtbot.waitUntil(lambda: _shown(viewer, ROI_LAYER_NAME), timeout=5000)
    assert w.model.roi_bounds()[0] == (600, 900, 600, 900)


def test_fft_follows_a_mouse_drag_before_release(lattice_viewer, qtbot):
    """Drag the ROI with (simulated) mouse events: the spectrum updates during the drag."""
    from napari.utils._test_utils import read_only_mouse_event
    from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

    viewer, layer, truth = lattice_viewer
    p = truth["pixel_size"]
    w = _widget(viewer, qtbot)
    roi = viewer.layers[ROI_LAYER_NAME]
    roi.data = [_rect(50, 50, 128)]
    _wait_fft(qtbot, w, (50, 178, 50, 178))
    roi.mode = "select"
    start = (114 * p, 114 * p)  # centre of the rectangle, world coordinates (Å)
    for kind in ("mouse_press", "mouse_release"):  # select it
        cb = mouse_press_callbacks if kind == "mouse_press" else mouse_release_callbacks
        cb(roi, read_only_mouse_event(type=kind, position=start))
    mouse_press_callbacks(roi, read_only_mouse_event(type="mouse_press", is_dragging=True, position=start))
    mouse_move_callbacks(roi, read_only_mouse_event(type="mouse_move", is_dragging=True, position=start))
    for step in (20, 40, 60):
        pos = (start[0] + step * p, start[1] + step * p)
        mouse_move_callbacks(roi, read_only_mouse_event(type="mouse_move", is_dragging=True, position=pos))
        _wait_fft(qtbot, w, (50 + step, 178 + step, 50 + step, 178 + step))  # button still down
    mouse_release_callbacks(roi, read_only_mouse_event(type="mouse_release", is_dragging=True, position=pos))
    _wait_fft(qtbot, w, (110, 238, 110, 238))


def test_a_big_spectrum_reaches_the_canvas_binned_where_it_belongs():
    """A spectrum over DISPLAY_MAX_SIDE px a side is binned in the worker (pyqtgraph would bin it again on
    the GUI thread for each of its two image items); the bins' means are the spectrum's and the canvas
    rectangle keeps each bin over the g of the pixels it holds (test_gui_thread_stays_free_on_a_2048_image)."""
    from napari_cryomat.widgets.live_fft.spectrum_view import DISPLAY_MAX_SIDE, display_copy

    rng = np.random.default_rng(11)
    for shape in [(2048, 1025), (1500, 751), (4096, 2049), (1024, 513)]:
        half = rng.random(shape, dtype=np.float32)
        shown, k = display_copy(half)
        assert max(shown.shape) <= DISPLAY_MAX_SIDE
        assert k == -(-max(shape) // DISPLAY_MAX_SIDE)
        if k == 1:
            assert shown is half
            continue
        r, c = rng.integers(0, shown.shape[0]), rng.integers(0, shown.shape[1])
        assert shown[r, c] == pytest.approx(half[r * k:(r + 1) * k, c * k:(c + 1) * k].mean(), rel=1e-5)
