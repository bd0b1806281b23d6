"""TomogramBrowser driven as a user would: clicks, spin boxes, combos, buttons, waiting for workers."""

import gc
from types import SimpleNamespace

import numpy as np
import pytest
import starfile
from qtpy.QtCore import QPointF, Qt

from napari_cryomat.widgets.browser import TomogramBrowser

VS = (5.0, 2.0, 2.0)  # Å per voxel (z, y, x) of the `volume` fixture's layers, anisotropic on purpose



def _shown(viewer, name: str) -> bool:
    """A helper layer is shown: present and visible (hidden, not removed, while its tool is behind)."""
    return name in viewer.layers and bool(viewer.layers[name].visible)

@pytest.fixture
def browser(make_napari_viewer, qtbot, volume):
    viewer = make_napari_viewer()
    layer = viewer.add_image(volume, name="tomo", scale=VS, units=("angstrom",) * 3)
    widget = TomogramBrowser(viewer)
    viewer.window.add_dock_widget(widget)
    wait_ortho(qtbot, widget)
    return viewer, layer, widget


def wait_ortho(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.ortho_busy and widget.ortho.xz_item.image is not None, timeout=10000)


def wait_display(qtbot, widget):
    """Binning and low-pass are computed in a worker before napari shows them."""
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=10000)
    wait_ortho(qtbot, widget)


def canvas_click(widget, viewer, position):
    """Press and release in napari's canvas through the browser's drag callback."""
    event = SimpleNamespace(button=1, modifiers=(), type="mouse_press", position=position)
    gen = widget.model.on_canvas_mouse(viewer, event)
    next(gen)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)


def plot_click(qtbot, widget, view, u, v):
    """A real mouse click in the XZ or YZ view at plot coordinates (u, v), world units."""
    scene = view.mapViewToScene(QPointF(u, v))
    pos = widget.ortho.plots.mapFromScene(scene)
    qtbot.mouseClick(widget.ortho.plots.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_cursor_links_the_three_views(browser, qtbot, volume):
    viewer, layer, w = browser
    ortho = w.ortho
    assert list(w.model.cursor) == [9, 16, 24]
    canvas_click(w, viewer, layer.data_to_world((9, 7, 30)))
    wait_ortho(qtbot, w)
    assert list(w.model.cursor) == [9, 7, 30]
    np.testing.assert_allclose(ortho.xz_item.image, volume[:, 7, :], rtol=1e-6)
    np.testing.assert_allclose(ortho.yz_item.image, volume[:, :, 30], rtol=1e-6)
    assert "y 7" in ortho.xz_label.toPlainText() and "x 30" in ortho.yz_label.toPlainText()  # from the run shown
    assert "z 9  y 7  x 30" in w.cursor_label.text()
    plot_click(qtbot, w, ortho.xz_view, 12 * VS[2], 4 * VS[0])  # XZ view: x = 12, z = 4
    wait_ortho(qtbot, w)
    assert list(w.model.cursor) == [4, 7, 12]
    assert viewer.dims.point[0] == pytest.approx(4 * VS[0])
    np.testing.assert_allclose(ortho.yz_item.image, volume[:, :, 12], rtol=1e-6)
    plot_click(qtbot, w, ortho.yz_view, 20 * VS[1], 15 * VS[0])  # YZ view: y = 20, z = 15
    wait_ortho(qtbot, w)
    assert list(w.model.cursor) == [15, 20, 12]
    np.testing.assert_allclose(ortho.xz_item.image, volume[:, 20, :], rtol=1e-6)
    viewer.dims.set_point(0, 2 * VS[0])  # napari's slider moves the cursor and the crosshair only
    assert w.model.cursor[0] == 2 and not w.ortho_busy
    assert ortho.xz_hline.value() == pytest.approx(2 * VS[0])


def test_slab_binning_lowpass_controls(browser, qtbot, volume):
    viewer, layer, w = browser
    w.view.thickness.setValue(3)
    wait_ortho(qtbot, w)
    np.testing.assert_allclose(layer._slice.image.raw, volume[8:11].mean(0), rtol=1e-5)
    np.testing.assert_allclose(w.ortho.xz_item.image, volume[:, 15:18, :].mean(1), rtol=1e-5)
    w.view.thickness_unit.setCurrentText("Å")
    assert w.view.thickness.value() == pytest.approx(15.0) and w.model.thickness_slices() == 3
    w.view.thickness.setValue(25.0)
    assert "5 slices" in w.view.slab_info.text()
    w.view.thickness_unit.setCurrentText("slices")
    w.view.thickness.setValue(1)
    w.view.binning.setCurrentText("2x")
    wait_display(qtbot, w)
    shown = w.display_layer
    assert shown is not layer and shown.data.shape == (10, 16, 24)
    assert isinstance(shown.data, np.ndarray)  # computed in the worker: napari slices memory, not dask
    binned = volume.reshape(10, 2, 16, 2, 24, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(w.ortho.xz_item.image, binned[:, 8, :], rtol=1e-5)
    assert [w.layer_combo.itemText(i) for i in range(w.layer_combo.count())] == ["tomo"]  # ours is not offered
    w.view.lowpass.setValue(8.0)
    wait_display(qtbot, w)
    assert w.display_layer.name == "tomo [2x, σ 8 Å]" and "2x, σ 8 Å" in w.ortho.xz_label.toPlainText()
    w.view.binning.setCurrentText("1x")
    w.view.lowpass.setValue(0.0)
    wait_display(qtbot, w)
    assert w.display_layer is layer and layer.visible
    assert [lay.name for lay in viewer.layers] == ["tomo", "XZ/YZ cuts"]


def test_binning_newest_request_wins_and_cancel_leaves_the_view(browser, qtbot, volume, monkeypatch, messages):
    """Binning is computed in a worker: a newer choice replaces a running one without a message,
    the combo shows what was asked, and Cancel leaves napari showing what it showed."""
    import time

    from napari_cryomat.widgets.browser import display_panel

    viewer, layer, w = browser
    exact = display_panel.compute_display

    def slow(job, *, progress=None):
        for k in range(100):
            time.sleep(0.01)
            progress(k / 100)
        return exact(job, progress=progress)

    monkeypatch.setattr(display_panel, "compute_display", slow)
    w.view.binning.setCurrentText("2x")
    assert w.runner.busy and w.display_layer is layer  # napari still shows the source meanwhile
    w.view.binning.setCurrentText("4x")
    w.view.contrast_buttons[2].click()  # waits for the volume it is about
    assert w.view.binning.currentText() == "4x"
    wait_display(qtbot, w)
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=5000)  # the contrast, after the display
    shown = w.display_layer
    assert shown.data.shape == (5, 8, 12) and isinstance(shown.data, np.ndarray)
    np.testing.assert_allclose(shown.data, volume.reshape(5, 4, 8, 4, 12, 4).mean(axis=(1, 3, 5)), rtol=1e-5)
    assert not any("cancelled" in m for m in messages["info"])  # the superseded 2x job said nothing
    assert shown.contrast_limits[1] == pytest.approx(np.percentile(shown.data[2], 95), rel=1e-3)
    w.view.lowpass.setValue(8.0)
    assert w.runner.busy
    w.runner.cancel_button.click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=5000)
    assert w.display_layer is shown and w.model.sigma_angstrom == 0 and w.view.lowpass.value() == 0
    assert any("cancelled" in m for m in messages["info"])


def test_contrast_preset_runs_in_a_worker_and_the_views_follow(browser, qtbot, volume):
    viewer, layer, w = browser
    w.view.thickness.setValue(3)
    w.view.contrast_buttons[2].click()  # 5-95 %
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=5000)
    lo, hi = layer.contrast_limits
    exp_lo, exp_hi = np.percentile(volume[8:11].mean(0), [5, 95])
    assert lo == pytest.approx(exp_lo, rel=1e-4) and hi == pytest.approx(exp_hi, rel=1e-4)
    assert w.ortho.xz_item.levels[0] == pytest.approx(lo)
    layer.contrast_limits = (100.0, 900.0)  # as if dragged in napari's layer controls
    assert tuple(w.ortho.xz_item.levels) == (100.0, 900.0) and tuple(w.ortho.yz_item.levels) == (100.0, 900.0)
    w.view.binning.setCurrentText("2x")
    wait_display(qtbot, w)
    w.display_layer.contrast_limits = (200.0, 800.0)
    assert tuple(w.ortho.xz_item.levels) == (200.0, 800.0)


def test_picks_and_distances_through_the_buttons(browser, qtbot, tmp_path, monkeypatch, messages):
    from qtpy.QtWidgets import QFileDialog

    viewer, layer, w = browser
    clicks = w.clicks
    clicks.mode_buttons["pick"].click()
    for zyx in [(9, 3, 5), (9, 30, 40)]:
        canvas_click(w, viewer, layer.data_to_world(zyx))
    assert clicks.picks_label.text() == "Picks: 2"
    clicks.undo_pick_button.click()
    assert clicks.picks_label.text() == "Picks: 1"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "p"), ""))
    clicks.export_star_button.click()  # the suffix is added
    df = starfile.read(tmp_path / "p.star")
    assert list(df["rlnCoordinateX"]) == [5] and "Exported 1 picks" in messages["info"][-1]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "p.star"), ""))
    clicks.import_button.click()
    assert clicks.picks_label.text() == "Picks: 2" and "Imported 1 picks" in messages["info"][-1]
    assert clicks.import_picks(tmp_path / "missing.csv") == 0 and "no such file" in messages["error"][-1]

    clicks.mode_buttons["measure"].click()
    canvas_click(w, viewer, layer.data_to_world((9, 2, 2)))
    assert "second point" in clicks.distance_label.text()
    canvas_click(w, viewer, layer.data_to_world((9, 2, 12)))
    assert "20.0 Å" in clicks.distance_label.text() and w.model.annotations.measurements == [pytest.approx(20.0)]
    clicks.clear_measure_button.click()
    assert "measurements" not in viewer.layers and clicks.distance_label.text() == "Distance: -"
    clicks.mode_buttons["navigate"].click()
    canvas_click(w, viewer, layer.data_to_world((9, 4, 4)))
    assert list(w.model.cursor) == [9, 4, 4]
    # the scripting calls of the README
    w.set_cursor((3, 5, 6))
    assert list(w.cursor) == [3, 5, 6] and w.measurements == []
    w.add_pick((3, 5, 6))
    assert w.export_picks(tmp_path / "s.csv").read_text().splitlines()[-1].startswith("6.0,5.0,3.0")
    assert w.import_picks(tmp_path / "s.csv") == 3 and clicks.picks_label.text() == "Picks: 6"
    lo, hi = w.apply_contrast((1, 99))
    assert tuple(layer.contrast_limits) == pytest.approx((lo, hi))


def test_3d_toggle_and_isosurface(browser, qtbot):
    viewer, layer, w = browser
    w.render.view3d.setChecked(True)
    assert viewer.dims.ndisplay == 3 and not w.view.binning.isEnabled()
    w.render.render_mode.setCurrentText("isosurface")
    assert layer.rendering == "iso"
    lo, hi = layer.contrast_limits
    assert lo < layer.iso_threshold < hi
    w.render.view3d.setChecked(False)
    assert viewer.dims.ndisplay == 2 and w.view.binning.isEnabled()
    viewer.dims.ndisplay = 3  # napari's own 2D/3D button: the check box follows
    assert w.render.view3d.isChecked()
    viewer.dims.ndisplay = 2


def test_3d_on_a_big_volume_bins_first_in_a_worker(browser, qtbot, volume, messages):
    viewer, layer, w = browser
    w.model.display.max_3d_voxels = 1000  # pretend 20x32x48 is huge
    w.render.view3d.setChecked(True)
    assert w.display_layer is layer  # napari never slices a lazy binned layer meanwhile
    qtbot.waitUntil(lambda: viewer.dims.ndisplay == 3, timeout=5000)
    assert w.view.binning.currentText() == "4x" and "4x binning" in messages["info"][-1]
    shown = w.display_layer
    assert isinstance(shown.data, np.ndarray) and shown.data.shape == (5, 8, 12)
    np.testing.assert_allclose(shown.data, volume.reshape(5, 4, 8, 4, 12, 4).mean(axis=(1, 3, 5)), rtol=1e-5)
    assert not _shown(viewer, "XZ/YZ cuts")  # a 2D overlay: gone in 3D
    assert not w.view.binning.isEnabled()
    w.render.view3d.setChecked(False)
    assert viewer.dims.ndisplay == 2 and w.view.binning.isEnabled() and _shown(viewer, "XZ/YZ cuts")


def test_3d_volume_computation_can_be_cancelled(browser, qtbot, monkeypatch):
    import time

    from napari_cryomat.core import tomo as core_tomo

    viewer, layer, w = browser
    w.model.display.max_in_memory_bytes = 0  # too big to hold: the binned view stays lazy
    w.view.binning.setCurrentText("2x")
    assert not w.runner.busy
    wait_ortho(qtbot, w)
    assert not isinstance(w.display_layer.data, np.ndarray)

    def slow(array, *, progress=None):
        for k in range(200):
            time.sleep(0.01)
            progress(k / 200)
        return np.zeros(array.shape, np.float32)

    monkeypatch.setattr(core_tomo, "compute_slices", slow)
    w.render.view3d.setChecked(True)
    assert w.runner.busy
    w.runner.cancel_button.click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=5000)
    assert viewer.dims.ndisplay == 2 and not w.render.view3d.isChecked()
    assert not isinstance(w.display_layer.data, np.ndarray)  # still the lazy binned view, untouched
    assert w.view.binning.isEnabled()


def test_big_volume_yz_preview_then_exact(browser, qtbot, volume):
    viewer, layer, w = browser
    w.ortho.preview_bytes = volume.nbytes // 16  # pretend it is huge: stride 4
    steps = []
    w.ortho.live.finished.connect(lambda _id, _req, result, _err: result is not None and steps.append(result.yz_step))
    w.model.set_cursor((9, 16, 30))
    wait_ortho(qtbot, w)
    assert steps == [4, 1]
    np.testing.assert_allclose(w.ortho.yz_item.image, volume[:, :, 30], rtol=1e-6)  # exact in the end
    w.model.set_cursor((9, 16, 5))  # two quick moves: the newer one wins, nothing stale stays
    w.model.set_cursor((9, 16, 40))
    wait_ortho(qtbot, w)
    np.testing.assert_allclose(w.ortho.yz_item.image, volume[:, :, 40], rtol=1e-6)
    assert "preview" not in w.ortho.yz_label.toPlainText()


def test_2d_layer_gives_a_clear_message(make_napari_viewer, qtbot, messages):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((16, 16), np.float32), name="micrograph")
    w = TomogramBrowser(viewer)
    assert "3D image" in w.status.text() and "micrograph" in w.status.text()
    assert not w.ortho.isEnabled() and not w.view.isEnabled()
    w.view.contrast((0.5, 99.5))
    assert w.clicks.export_picks("x.csv") is None
    assert w.apply_contrast() is None  # the scripting call too
    w.add_pick((0, 1, 1))
    assert len(messages["error"]) == 4 and all("3D" in m for m in messages["error"])
    viewer.add_image(np.zeros((4, 16, 16), np.float32), name="tomo")  # adding a tomogram makes it usable
    w.layer_combo.setCurrentText("tomo")
    assert w.source_layer is viewer.layers["tomo"] and w.ortho.isEnabled() and not w.status.isVisible()


def test_cut_lines_only_while_the_browser_tab_is_in_front(make_napari_viewer, qtbot, volume):
    from qtpy.QtWidgets import QLabel

    viewer = make_napari_viewer(show=True)
    viewer.add_image(volume, name="tomo", scale=VS, units=("angstrom",) * 3)
    w = TomogramBrowser(viewer)
    dock = viewer.window.add_dock_widget(w, name="Tomogram browser")
    qtbot.waitUntil(lambda: _shown(viewer, "XZ/YZ cuts"), timeout=5000)  # alone, it is in front
    other = viewer.window.add_dock_widget(QLabel("another tool"), name="Other", tabify=True)
    other.raise_()
    qtbot.waitUntil(lambda: not _shown(viewer, "XZ/YZ cuts"), timeout=5000)
    dock.raise_()
    qtbot.waitUntil(lambda: _shown(viewer, "XZ/YZ cuts"), timeout=5000)
    viewer.window.remove_dock_widget(dock)  # the dock closes: its overlay goes at once
    qtbot.waitUntil(lambda: not _shown(viewer, "XZ/YZ cuts"), timeout=5000)
    model = w.model
    w.deleteLater()  # and once the widget is gone, nothing of it stays connected to the viewer
    qtbot.waitUntil(lambda: model.on_canvas_mouse not in viewer.mouse_drag_callbacks, timeout=5000)
    viewer.dims.set_point(0, 3 * VS[0])  # no callback into a deleted widget


def test_gui_thread_stays_free_on_a_2048_tomogram(make_napari_viewer, qtbot, gui_watch):
    """A 2048² x 16 tomogram: moving the cursor, slab, binning, low-pass, contrast and picks never
    hold the GUI thread (orthogonal views and contrast are computed in workers; napari re-slices
    its canvas once per change). Adding a layer is napari's own fixed cost (~0.1 s here, several
    times that for the first layer of a kind), so the binned, picks and distance layers are made
    before the watch starts."""
    rng = np.random.default_rng(1)
    volume = rng.normal(size=(16, 2048, 2048)).astype(np.float32)
    viewer = make_napari_viewer(show=False)
    layer = viewer.add_image(volume, name="big", scale=(10.0, 10.0, 10.0), units=("angstrom",) * 3,
                             contrast_limits=(-3, 3))
    w = TomogramBrowser(viewer)
    viewer.window.add_dock_widget(w)
    wait_ortho(qtbot, w)
    w.view.binning.setCurrentText("2x")  # napari adds the binned layer
    wait_display(qtbot, w)
    w.clicks.mode_buttons["pick"].click()
    canvas_click(w, viewer, layer.data_to_world((8, 10, 10)))  # napari adds the picks layer
    w.clicks.mode_buttons["measure"].click()
    for zyx in [(8, 10, 10), (8, 10, 20)]:
        canvas_click(w, viewer, layer.data_to_world(zyx))  # napari adds the distances layer
    w.clicks.mode_buttons["navigate"].click()
    wait_ortho(qtbot, w)
    actions = [  # one user action per event-loop turn, as with a mouse
        *(lambda zyx=zyx: canvas_click(w, viewer, layer.data_to_world(zyx))
          for zyx in [(8, 100, 1900), (8, 1500, 300), (3, 700, 700)]),
        lambda: w.view.thickness.setValue(3),
        lambda: w.view.binning.setCurrentText("4x"),
        lambda: w.view.lowpass.setValue(20.0),
        lambda: w.view.binning.setCurrentText("2x"),
        lambda: w.view.contrast_buttons[1].click(),
        lambda: w.clicks.mode_buttons["pick"].click(),
        lambda: canvas_click(w, viewer, layer.data_to_world((3, 10, 10))),
        lambda: w.clicks.mode_buttons["measure"].click(),
        lambda: canvas_click(w, viewer, layer.data_to_world((3, 10, 10))),
        lambda: canvas_click(w, viewer, layer.data_to_world((3, 10, 110))),
    ]
    gc.collect()  # a collection of napari's heap is not ours to measure
    with gui_watch as watch:
        for action in actions:
            action()
            qtbot.wait(20)
        qtbot.waitUntil(lambda: not w.runner.busy, timeout=20000)
        wait_ortho(qtbot, w)
    assert w.ortho.xz_item.image.shape == (8, 1024)
    assert w.model.annotations.count == 2
    assert w.model.annotations.measurements == [pytest.approx(100.0), pytest.approx(1000.0)]
    print(f"longest GUI-thread stretch: {watch.longest * 1000:.0f} ms")
    assert watch.longest < 0.1


@pytest.mark.e2e
def test_e2e_sample_tomogram_browse_and_render(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "tomogram")
    w = TomogramBrowser(viewer)
    viewer.window.add_dock_widget(w)
    truth = viewer.layers[0].metadata["truth"]
    wait_ortho(qtbot, w)
    w.view.thickness.setValue(5)
    w.view.lowpass.setValue(16.0)
    w.view.contrast_buttons[1].click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=10000)
    z, y, x = np.round(truth["particle_centers_zyx_voxels"][0]).astype(int)  # a known particle
    w.model.set_cursor((z, y, x))
    wait_ortho(qtbot, w)
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3 and shot.shape[0] > 100
    assert shot[..., :3].mean(-1).std() > 10  # not blank: structure visible
    xz = w.ortho.xz_item.image
    assert xz[z, x] > np.percentile(xz, 90)  # the particle is bright in the XZ view at the cursor
    w.render.render_mode.setCurrentText("isosurface")
    w.render.view3d.setChecked(True)
    qtbot.waitUntil(lambda: viewer.dims.ndisplay == 3, timeout=10000)  # low-passed volume computed first
    assert w.display_layer.rendering == "iso"
    shot3d = viewer.screenshot(canvas_only=True, flash=False)
    assert shot3d[..., :3].mean(-1).std() > 5
    # and back to 2D, as a user leaves the 3D view: a slice again (this also spares the teardown's pending
    # repaints a software-GL ray cast of the volume each under Xvfb: 16-41 s of teardown)
    w.render.view3d.setChecked(False)
    qtbot.waitUntil(lambda: viewer.dims.ndisplay == 2, timeout=10000)
