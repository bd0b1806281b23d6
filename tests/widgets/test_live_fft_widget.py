"""Drive the Live FFT dock as a user would: ROI, frames, detection, filters, GPA, PLD, series."""

import numpy as np
import pytest

from napari_cryomat.core.synthetic.lattice import decaying_lattice_stack, superlattice_image
from napari_cryomat.widgets.live_fft import ROI_LAYER_NAME, LiveFFTWidget


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


def _wait_fft(qtbot, widget, bounds):
    qtbot.waitUntil(lambda: widget.current is not None and widget.current["bounds"] == bounds, timeout=10000)


def _wait_runner(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=60000)


def test_roi_follows_and_latest_wins(lattice_viewer, qtbot):
    viewer, layer, truth = lattice_viewer
    w = LiveFFTWidget(viewer)
    qtbot.addWidget(w)
    roi = viewer.layers[ROI_LAYER_NAME]
    assert roi.scale[-1] == pytest.approx(truth["pixel_size"])
    _wait_fft(qtbot, w, (0, 384, 0, 384))  # default ROI: min(512, image) centred
    # move and resize the ROI: the spectrum follows with the right calibration
    roi.data = [_rect(100, 50, 200)]
    _wait_fft(qtbot, w, (100, 300, 50, 250))
    assert w.current["dg"][0] == pytest.approx(1 / (200 * truth["pixel_size"]))
    assert w.image_item.image.shape == (200, 101)  # half plane, drawn twice
    from qtpy.QtCore import QPointF

    for r, c in ((100.5, 0.5), (37.5, 60.5), (180.5, 99.5)):  # pixel centres (row, col) of the half
        a = w.image_item.mapToParent(QPointF(c, r))
        b = w.image_item_mirror.mapToParent(QPointF(c, r))
        assert (a.x(), a.y()) == pytest.approx((-b.x(), -b.y()))  # the mirror shows P(-g)
        assert a.y() == pytest.approx((r - 0.5 - 100) * w.current["dg"][0])  # ky = row - Y//2
        assert a.x() == pytest.approx((c - 0.5) * w.current["dg"][1])  # kx = col
    img = w.spectrum()
    assert img.shape == (200, 200)
    # the brightest off-centre spots sit at the lattice's |g|
    spec = img.astype(float)
    spec[95:106, 95:106] = spec.min()
    r, c = np.unravel_index(np.argmax(spec), spec.shape)
    g = np.hypot(r - 100, c - 100) * w.current["dg"][0]
    assert g == pytest.approx(1 / truth["d1"], rel=0.03)
    # a burst of moves: only the last one is guaranteed to be shown, nothing queues
    n0 = w.n_updates
    for k in range(20):
        roi.data = [_rect(10 + k, 10 + k, 128)]
    _wait_fft(qtbot, w, (29, 157, 29, 157))
    assert w.n_updates - n0 <= 20
    qtbot.waitUntil(lambda: w._worker.idle, timeout=5000)
    assert layer.data.shape == (384, 384)


def test_bad_rois_leave_image_untouched(lattice_viewer, qtbot):
    viewer, layer, _ = lattice_viewer
    before = layer.data.copy()
    w = LiveFFTWidget(viewer)
    qtbot.addWidget(w)
    roi = viewer.layers[ROI_LAYER_NAME]
    roi.data = [_rect(300, 300, 200)]  # partly outside
    _wait_fft(qtbot, w, (300, 384, 300, 384))
    assert "clipped" in w.note.text()
    roi.data = [_rect(10, 10, 8)]  # too small
    qtbot.waitUntil(lambda: "at least 16" in w.note.text(), timeout=5000)
    assert w.current["bounds"] == (300, 384, 300, 384)
    np.testing.assert_array_equal(layer.data, before)


def test_rgb_complex_nan_layers(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="rgb", rgb=True)
    w = LiveFFTWidget(viewer)
    qtbot.addWidget(w)
    assert w.layer_combo.findText("rgb") < 0  # RGB layers are not offered
    nan = np.ones((64, 64), np.float32)
    nan[10, 10] = np.nan
    viewer.add_image(nan, name="nan")
    w.layer_combo.setCurrentIndex(w.layer_combo.findText("nan"))
    qtbot.waitUntil(lambda: "NaN" in w.note.text(), timeout=5000)
    assert np.isnan(viewer.layers["nan"].data[10, 10])
    assert w.detect() is None  # a message, no worker
    # napari refuses complex Image layers; the core's "complex" message is tested in tests/core.
    # A ROI region handed over by the widget goes through the same validation:
    with pytest.raises(ValueError, match="complex"):
        from napari_cryomat.core.fourier import validate_image

        validate_image(np.ones((64, 64), complex))


def test_detect_bragg_gpa_pld_layers(lattice_viewer, qtbot):
    viewer, layer, truth = lattice_viewer
    w = LiveFFTWidget(viewer)
    qtbot.addWidget(w)
    roi = viewer.layers[ROI_LAYER_NAME]
    roi.data = [_rect(128, 128, 256)]
    _wait_fft(qtbot, w, (128, 384, 128, 384))
    w.detect_button.click()
    _wait_runner(qtbot, w)
    lat = w.lattice
    assert lat is not None
    assert lat.d1 == pytest.approx(truth["d1"], rel=3e-3)
    assert lat.modulation_vectors
    assert "superlattice" in w.summary.text()
    assert len(w.peak_scatter.data) == len(lat.peaks)
    # the same detection as napari layers in reciprocal space (1/Å)
    w.as_layers.setChecked(True)
    w.detect_button.click()
    _wait_runner(qtbot, w)
    pts = viewer.layers["FFT lattice spots of lattice"]
    assert str(pts.units[-1]) in ("1 / angstrom", "1/angstrom")
    assert len(pts.data) == len(w.lattice.peaks)
    d = np.array(pts.features["d"])
    assert np.allclose(1 / np.hypot(pts.data[:, 0], pts.data[:, 1]), d)
    assert any(lbl.endswith("(1,0)") for lbl in pts.features["label"])
    sup = viewer.layers["FFT superlattice spots of lattice"]
    assert any("/3" in lbl for lbl in sup.features["label"])
    fft = viewer.layers["FFT of lattice"]
    assert fft.scale[-1] == pytest.approx(1 / (256 * truth["pixel_size"]))
    lat = w.lattice
    # Bragg filter (lattice) -> an image layer in Å at the ROI position
    w.filter_mode.setCurrentText("lattice")
    w.bragg_button.click()
    _wait_runner(qtbot, w)
    out = viewer.layers["lattice Bragg-filtered (lattice)"]
    p = truth["pixel_size"]
    assert out.data.shape == (256, 256)
    assert tuple(out.scale) == pytest.approx((p, p))
    assert tuple(out.translate) == pytest.approx((128 * p, 128 * p))
    assert str(out.units[-1]) == "angstrom"
    # GPA: four maps, diverging colormap centred on zero
    w.gpa_button.click()
    _wait_runner(qtbot, w)
    exx = viewer.layers["lattice GPA exx"]
    lo, hi = exx.contrast_limits
    assert lo == pytest.approx(-hi)
    assert exx.colormap.name == "PiYG"
    assert "lattice GPA rotation (deg)" in viewer.layers
    assert abs(np.median(exx.data[64:-64, 64:-64])) < 0.003  # unstrained region: zero strain
    # PLD amplitude close to the truth
    w.pld_button.click()
    _wait_runner(qtbot, w)
    amp = viewer.layers["lattice PLD amplitude (Å)"].data
    assert np.median(amp[64:-64, 64:-64]) == pytest.approx(truth["pld_amplitude"], rel=0.2)
    # radial profile plot in Å^-1
    g, prof = w.run_radial_profile()
    assert g[-1] <= 0.5 / p + 1e-9
    np.testing.assert_array_equal(layer.data, superlattice_image((384, 384), strain_radius=20.0,
                                                                  strain_centre=(40.0, 40.0), seed=7)[0])


def test_click_pick_snaps_to_refined_peak(lattice_viewer, qtbot):
    viewer, layer, truth = lattice_viewer
    w = LiveFFTWidget(viewer)
    qtbot.addWidget(w)
    viewer.layers[ROI_LAYER_NAME].data = [_rect(128, 128, 256)]
    _wait_fft(qtbot, w, (128, 384, 128, 384))
    g1 = np.array(truth["g1"])
    pk = w.pick(g1 + np.array([0.004, -0.003]))  # a click slightly off the spot
    assert pk is not None
    assert np.hypot(*(pk.g - g1)) < 1.5e-3
    assert len(w.pick_scatter.data) == 1
    assert "d = " in w.describe_g(pk.g)


def test_frames_and_peak_series(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack, truth = decaying_lattice_stack(12, (128, 128), dose_per_frame=2.0, critical_dose=10.0)
    p = truth["pixel_size"]
    viewer.add_image(stack, name="stack", scale=(1, p, p), units=("pixel", "angstrom", "angstrom"))
    w = LiveFFTWidget(viewer)
    qtbot.addWidget(w)
    _wait_fft(qtbot, w, (0, 128, 0, 128))
    qtbot.waitUntil(lambda: w.current["idx"] == (viewer.dims.current_step[0],), timeout=5000)
    viewer.dims.set_current_step(0, 7)
    qtbot.waitUntil(lambda: w.current["idx"] == (7,), timeout=5000)
    viewer.dims.set_current_step(0, 0)
    qtbot.waitUntil(lambda: w.current["idx"] == (0,), timeout=5000)
    viewer.dims.order = (1, 0, 2)  # a (T, X) view: no FFT, a note instead
    qtbot.waitUntil(lambda: "(Y, X) plane" in w.note.text(), timeout=5000)
    viewer.dims.order = (0, 1, 2)
    viewer.layers[ROI_LAYER_NAME].data = [_rect(0, 0, 120)]
    _wait_fft(qtbot, w, (0, 120, 0, 120))
    viewer.layers[ROI_LAYER_NAME].data = [_rect(0, 0, 128)]
    _wait_fft(qtbot, w, (0, 128, 0, 128))
    w.detect_button.click()
    _wait_runner(qtbot, w)
    assert w.lattice is not None
    w.dose_per_frame.setValue(2.0)
    w.series_button.click()
    _wait_runner(qtbot, w)
    assert w.series.critical_dose == pytest.approx(10.0, rel=0.15)
    assert "critical dose" in w.plot.getPlotItem().titleLabel.text


@pytest.mark.e2e
def test_e2e_superlattice_sample_live_fft(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "superlattice")
    layer = viewer.layers["superlattice (synthetic)"]
    truth = layer.metadata["truth"]
    _, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Live FFT")
    assert isinstance(w, LiveFFTWidget)
    _wait_fft(qtbot, w, (256, 768, 256, 768))  # default: 512 px square in the middle
    first = w.spectrum()
    roi = viewer.layers[ROI_LAYER_NAME]
    roi.data = [_rect(600, 600, 300)]  # move and shrink: the FFT follows
    _wait_fft(qtbot, w, (600, 900, 600, 900))
    assert w.spectrum().shape == (300, 300) and first.shape == (512, 512)
    w.detect_button.click()
    _wait_runner(qtbot, w)
    assert w.lattice.d1 == pytest.approx(truth["d1"], rel=3e-3)
    assert w.lattice.modulation_vectors
    w.gpa_button.click()
    _wait_runner(qtbot, w)
    assert "superlattice (synthetic) GPA exx" in viewer.layers
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 5  # something drawn, not a blank canvas
    grab = w.graphics.grab().toImage()
    assert grab.width() > 100 and grab.height() > 100


def test_fft_follows_a_mouse_drag_before_release(lattice_viewer, qtbot):
    """Drag the ROI with (simulated) mouse events: the spectrum updates during the drag."""
    from napari.utils._test_utils import read_only_mouse_event
    from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

    viewer, layer, truth = lattice_viewer
    p = truth["pixel_size"]
    w = LiveFFTWidget(viewer)
    qtbot.addWidget(w)
    roi = viewer.layers[ROI_LAYER_NAME]
    assert not roi.visible  # the dock is not shown yet: its ROI stays out of the way
    w.show()
    assert roi.visible
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
        b = (50 + step, 178 + step, 50 + step, 178 + step)
        _wait_fft(qtbot, w, b)  # updated while the button is still down
    mouse_release_callbacks(roi, read_only_mouse_event(type="mouse_release", is_dragging=True, position=pos))
    _wait_fft(qtbot, w, (110, 238, 110, 238))
