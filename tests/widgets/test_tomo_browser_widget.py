"""TomogramBrowser driven as a user would: cursor clicks, slab, binning, contrast, picks, measure."""

from types import SimpleNamespace

import numpy as np
import pytest
import starfile

from napari_cryomat.core import tomo as core_tomo
from napari_cryomat.widgets import tomo_browser as tb
from napari_cryomat.widgets.tomo_browser import TomogramBrowser

VS = (5.0, 2.0, 2.0)  # Å per voxel (z, y, x), anisotropic on purpose


@pytest.fixture
def volume():
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(np.arange(20), np.arange(32), np.arange(48), indexing="ij")
    return (100.0 * z + 10.0 * y + x + rng.normal(0, 1, (20, 32, 48))).astype(np.float32)


@pytest.fixture
def browser(make_napari_viewer, qtbot, volume):
    viewer = make_napari_viewer()
    layer = viewer.add_image(volume, name="tomo", scale=VS, units=("angstrom",) * 3)
    widget = TomogramBrowser(viewer)
    viewer.window.add_dock_widget(widget)
    qtbot.waitUntil(lambda: not widget.ortho_busy and widget.xz_item.image is not None, timeout=5000)
    return viewer, layer, widget


def wait_ortho(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.ortho_busy, timeout=5000)


class FakeSceneClick:
    def __init__(self, scene_pos):
        from qtpy.QtCore import Qt

        self._pos, self._button = scene_pos, Qt.MouseButton.LeftButton

    def button(self):
        return self._button

    def scenePos(self):
        return self._pos

    def accept(self):
        pass


def test_cursor_links_the_three_views(browser, qtbot, volume):
    viewer, layer, w = browser
    assert list(w.cursor) == [9, 16, 24]  # napari's middle slice, centre in Y, X
    # a click in the XY canvas (press + release, no drag) moves y, x
    event = SimpleNamespace(button=1, modifiers=(), type="mouse_press",
                            position=layer.data_to_world((9, 7, 30)))
    gen = w._on_canvas_mouse(viewer, event)
    next(gen)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)
    wait_ortho(qtbot, w)
    assert list(w.cursor) == [9, 7, 30]
    np.testing.assert_allclose(w.xz_item.image, volume[:, 7, :], rtol=1e-6)
    np.testing.assert_allclose(w.yz_item.image, volume[:, :, 30], rtol=1e-6)
    # the XY canvas shows where the XZ (y = 7) and YZ (x = 30) views cut it
    xz_cut, yz_cut = viewer.layers["XZ/YZ cuts"].data
    np.testing.assert_allclose(xz_cut[:, 0], 7)
    np.testing.assert_allclose(yz_cut[:, 1], 30)

    # a click in the XZ view at (x = 12, z = 4) moves the napari Z slider and redraws YZ
    from qtpy.QtCore import QPointF

    scene = w.xz_view.mapViewToScene(QPointF(12 * VS[2], 4 * VS[0]))
    w._on_ortho_click(FakeSceneClick(scene))
    wait_ortho(qtbot, w)
    assert list(w.cursor) == [4, 7, 12]
    assert viewer.dims.point[0] == pytest.approx(4 * VS[0])
    np.testing.assert_allclose(w.yz_item.image, volume[:, :, 12], rtol=1e-6)
    # a click in the YZ view at (y = 20, z = 15)
    scene = w.yz_view.mapViewToScene(QPointF(20 * VS[1], 15 * VS[0]))
    w._on_ortho_click(FakeSceneClick(scene))
    wait_ortho(qtbot, w)
    assert list(w.cursor) == [15, 20, 12]
    np.testing.assert_allclose(w.xz_item.image, volume[:, 20, :], rtol=1e-6)
    # moving napari's slider moves the cursor and the crosshair
    viewer.dims.set_point(0, 2 * VS[0])
    assert w.cursor[0] == 2
    assert w.xz_hline.value() == pytest.approx(2 * VS[0])
    # a drag (pan) does not move the cursor
    event = SimpleNamespace(button=1, modifiers=(), type="mouse_press", position=layer.data_to_world((2, 1, 1)))
    gen = w._on_canvas_mouse(viewer, event)
    next(gen)
    event.type = "mouse_move"
    next(gen)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)
    assert list(w.cursor) == [2, 20, 12]


def test_slab_thickness_in_slices_and_angstrom(browser, qtbot, volume):
    viewer, layer, w = browser
    w.thickness.setValue(3)
    wait_ortho(qtbot, w)
    # napari's thick slicing shows the mean of slices 8..10 around the cursor (z = 9)
    np.testing.assert_allclose(layer._slice.image.raw, volume[8:11].mean(0), rtol=1e-5)
    np.testing.assert_allclose(w.xz_item.image, volume[:, 15:18, :].mean(1), rtol=1e-5)
    # switching to Å keeps the slab: 3 slices x 5 Å = 15 Å
    w.thickness_unit.setCurrentText("Å")
    assert w.thickness.value() == pytest.approx(15.0)
    assert w.thickness_slices() == 3
    w.thickness.setValue(25.0)  # 5 slices
    assert w.thickness_slices() == 5
    np.testing.assert_allclose(layer._slice.image.raw, volume[7:12].mean(0), rtol=1e-5)
    assert "5 slices" in w.slab_info.text()


def test_binning_and_lowpass_swap_in_lazy_display_layer(browser, qtbot, volume):
    viewer, layer, w = browser
    data_before = layer.data
    w.binning.setCurrentText("2x")
    wait_ortho(qtbot, w)
    disp = w.display_layer
    assert disp is not layer and not layer.visible
    assert disp.data.shape == (10, 16, 24)
    np.testing.assert_allclose(disp.scale, (10.0, 4.0, 4.0))
    # world positions agree: binned voxel 0 sits at the centre of unbinned voxels 0..1
    np.testing.assert_allclose(disp.data_to_world((0, 0, 0)), layer.data_to_world((0.5, 0.5, 0.5)))
    binned = volume.reshape(10, 2, 16, 2, 24, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(w.xz_item.image, binned[:, 8, :], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(disp.data[4]), binned[4], rtol=1e-5)
    np.testing.assert_allclose(disp._slice.image.raw, binned[4], rtol=1e-5)  # z = 9 -> binned 4
    assert "tomo" not in [w.layer_combo.itemText(i) for i in range(w.layer_combo.count())][1:]

    w.lowpass.setValue(8.0)  # Å
    wait_ortho(qtbot, w)
    disp = w.display_layer
    assert "σ 8 Å" in disp.name
    expected = core_tomo.gaussian_lowpass(binned[5], sigma_A=8.0, pixel_size_A=(4.0, 4.0))
    np.testing.assert_allclose(np.asarray(disp.data[5]), expected, rtol=1e-4, atol=1e-3)

    w.binning.setCurrentText("1x")
    w.lowpass.setValue(0.0)
    wait_ortho(qtbot, w)
    assert w.display_layer is layer and layer.visible
    assert [l.name for l in viewer.layers] == ["tomo", "XZ/YZ cuts"]
    assert layer.data is data_before  # never modified


def test_contrast_preset_from_visible_slab(browser, qtbot, volume):
    viewer, layer, w = browser
    w.thickness.setValue(3)
    w.contrast_buttons[2].click()  # 5-95 %
    lo, hi = layer.contrast_limits
    exp_lo, exp_hi = np.percentile(volume[8:11].mean(0), [5, 95])
    # strided subsample of a 32x48 slab is the slab itself here
    assert lo == pytest.approx(exp_lo, rel=1e-4) and hi == pytest.approx(exp_hi, rel=1e-4)
    assert w.xz_item.levels[0] == pytest.approx(lo)


def test_picks_export_import_in_file_voxel_indices(make_napari_viewer, qtbot, volume, tmp_path):
    viewer = make_napari_viewer()
    meta = {"mrc": {"path": str(tmp_path / "TS_07.rec"), "voxel_size": VS, "file_shape": volume.shape,
                    "flip_y": True}}
    layer = viewer.add_image(volume, name="TS_07", scale=VS, units=("angstrom",) * 3, metadata=meta)
    w = TomogramBrowser(viewer)
    wait_ortho(qtbot, w)
    w.mode_pick.click()
    viewer.dims.set_point(0, 10 * VS[0])  # the user scrolls to slice 10
    for zyx in [(10, 3, 5), (10, 30, 40)]:
        w.click_world(layer.data_to_world(zyx))
    viewer.dims.set_point(0, 4 * VS[0])
    w.click_world(layer.data_to_world((4, 12, 7)))
    assert w.picks_label.text() == "Picks: 3"
    np.testing.assert_allclose(w.picks_layer.data, [[10, 3, 5], [10, 30, 40], [4, 12, 7]])
    np.testing.assert_allclose(w.picks_layer.scale, VS)

    star = w.export_picks(tmp_path / "picks.star")
    df = starfile.read(star)
    np.testing.assert_allclose(df["rlnCoordinateY"], [31 - 3, 31 - 30, 31 - 12])  # file rows: MRC Y flip
    np.testing.assert_allclose(df["rlnCoordinateX"], [5, 40, 7])
    np.testing.assert_allclose(df["rlnCoordinateZ"], [10, 10, 4])
    assert set(df["rlnTomoName"]) == {"TS_07"}
    csv = w.export_picks(tmp_path / "picks.csv")
    assert csv.read_text().splitlines()[1].split(",")[:3] == ["5.0", "28.0", "10.0"]

    w.undo_pick_button.click()
    assert w.picks_label.text() == "Picks: 2"
    w.picks_layer.data = np.zeros((0, 3))
    assert w.import_picks(tmp_path / "picks.star") == 3
    np.testing.assert_allclose(w.picks_layer.data, [[10, 3, 5], [10, 30, 40], [4, 12, 7]])
    assert w.import_picks(tmp_path / "picks.csv") == 3
    assert len(w.picks_layer.data) == 6


def test_measure_distance_in_angstrom(browser, qtbot):
    viewer, layer, w = browser
    w.mode_measure.click()
    w.click_world(layer.data_to_world((10, 2, 2)))
    assert "second point" in w.distance_label.text()
    w.click_world(layer.data_to_world((10, 2, 12)))  # 10 voxels along X = 20 Å
    assert w.measurements == [pytest.approx(20.0)]
    assert "20.0 Å" in w.distance_label.text()
    viewer.dims.set_point(0, 14 * VS[0])
    w.click_world(layer.data_to_world((14, 5, 2)))
    w.click_world(layer.data_to_world((14, 5, 2)))
    w.click_world(layer.data_to_world((14, 5, 2)))  # start a new one on the same spot
    viewer.dims.set_point(0, 18 * VS[0])
    w.click_world(layer.data_to_world((18, 5, 2)))  # 4 slices deeper = 20 Å along Z
    assert w.measurements == [pytest.approx(20.0), pytest.approx(0.0), pytest.approx(20.0)]
    shapes = viewer.layers["measurements"]
    assert len(shapes.data) == 3
    np.testing.assert_allclose(shapes.features["distance_angstrom"], [20.0, 0.0, 20.0])
    w.clear_measure_button.click()
    assert "measurements" not in viewer.layers and w.measurements == []


def test_3d_rendering_toggle(browser, qtbot):
    viewer, layer, w = browser
    w.view3d.setChecked(True)
    assert viewer.dims.ndisplay == 3
    w.render_mode.setCurrentText("isosurface")
    assert layer.rendering == "iso"
    lo, hi = layer.contrast_limits
    assert lo < layer.iso_threshold < hi
    w.view3d.setChecked(False)
    assert viewer.dims.ndisplay == 2


def test_2d_layer_gives_a_clear_message(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((16, 16), np.float32), name="micrograph")
    errors = []
    monkeypatch.setattr(tb, "show_error", errors.append)
    w = TomogramBrowser(viewer)
    assert "3D image" in w.status.text() and "micrograph" in w.status.text()
    assert not w.ortho.isEnabled()
    assert w.apply_contrast() is None
    assert w.export_picks("x.csv") is None
    assert errors and "3D" in errors[0]
    # adding a tomogram later makes the browser usable
    viewer.add_image(np.zeros((4, 16, 16), np.float32), name="tomo")
    w.layer_combo.setCurrentText("tomo")
    assert w.source_layer is viewer.layers["tomo"] and w.ortho.isEnabled()


@pytest.mark.e2e
def test_e2e_sample_tomogram_browse_and_render(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "tomogram")
    w = TomogramBrowser(viewer)
    viewer.window.add_dock_widget(w)
    truth = viewer.layers[0].metadata["truth"]
    wait_ortho(qtbot, w)
    w.thickness.setValue(5)
    w.lowpass.setValue(16.0)
    w.contrast_buttons[1].click()
    # put the cursor on a known particle: XY slab through its centre
    z, y, x = np.round(truth["particle_centers_zyx_voxels"][0]).astype(int)
    w.set_cursor((z, y, x))
    wait_ortho(qtbot, w)
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3 and shot.shape[0] > 100
    gray = shot[..., :3].mean(-1)
    assert gray.std() > 10  # not blank: structure visible
    # the particle is bright in the XZ view at the cursor (elongated by the missing wedge)
    xz = w.xz_item.image
    assert xz[z, x] > np.percentile(xz, 90)
    w.render_mode.setCurrentText("isosurface")
    w.view3d.setChecked(True)
    qtbot.waitUntil(lambda: viewer.dims.ndisplay == 3, timeout=10000)  # low-passed volume computed first
    assert w.display_layer.rendering == "iso"
    shot3d = viewer.screenshot(canvas_only=True, flash=False)
    assert shot3d[..., :3].mean(-1).std() > 5


def test_3d_on_a_big_volume_bins_first(browser, qtbot, monkeypatch, volume):
    viewer, layer, w = browser
    monkeypatch.setattr(tb, "MAX_3D_VOXELS", 1000)  # pretend 20x32x48 is huge
    w.view3d.setChecked(True)
    # the lazy 4x volume is computed in a worker (progress bar, Cancel), then rendered
    qtbot.waitUntil(lambda: viewer.dims.ndisplay == 3, timeout=5000)
    assert w.binning_factor() == 4  # 30720 / 4**3 = 480 voxels <= 1000
    disp = w.display_layer
    assert isinstance(disp.data, np.ndarray) and disp.data.shape == (5, 8, 12)
    np.testing.assert_allclose(disp.data, volume[:20, :32, :48].reshape(5, 4, 8, 4, 12, 4).mean(axis=(1, 3, 5)),
                               rtol=1e-5)
    assert not viewer.layers["XZ/YZ cuts"].visible  # 2D overlay hidden in 3D
    assert not w.binning.isEnabled()  # fixed while in 3D
    w.view3d.setChecked(False)
    assert viewer.dims.ndisplay == 2 and w.binning.isEnabled()


def test_3d_volume_computation_can_be_cancelled(browser, qtbot, monkeypatch):
    import time

    viewer, layer, w = browser
    w.binning.setCurrentText("2x")
    wait_ortho(qtbot, w)

    def slow(array, *, progress=None):
        for k in range(200):
            time.sleep(0.01)
            progress(k / 200)
        return np.zeros(array.shape, np.float32)

    monkeypatch.setattr(tb.core_tomo, "compute_slices", slow)
    w.view3d.setChecked(True)
    assert w.runner.busy
    w.runner.cancel_button.click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=5000)
    assert viewer.dims.ndisplay == 2 and not w.view3d.isChecked()
    assert not isinstance(w.display_layer.data, np.ndarray)  # still the lazy binned view, untouched
    assert w.binning.isEnabled()


def test_orthogonal_views_follow_napari_contrast_slider(browser, qtbot):
    viewer, layer, w = browser
    layer.contrast_limits = (100.0, 900.0)  # as if dragged in napari's layer controls
    assert tuple(w.xz_item.levels) == (100.0, 900.0) and tuple(w.yz_item.levels) == (100.0, 900.0)
    w.binning.setCurrentText("2x")
    wait_ortho(qtbot, w)
    w.display_layer.contrast_limits = (200.0, 800.0)
    assert tuple(w.xz_item.levels) == (200.0, 800.0)


def test_real_mrc_file_picks_round_trip_to_file_indices(make_napari_viewer, qtbot, tmp_path):
    """A bright voxel at file index (z 3, y 5, x 7): picked where napari shows it, exported
    picks name the file's own indices (IMOD/RELION), whatever the display flip."""
    mrcfile = pytest.importorskip("mrcfile")
    pytest.importorskip("napari_cryomat.io.mrc")
    data = np.zeros((8, 12, 16), np.float32)
    data[3, 5, 7] = 100.0
    path = tmp_path / "TS_01.mrc"
    with mrcfile.new(path) as m:
        m.set_data(data)
        m.voxel_size = 6.5
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-cryomat")
    layer = viewer.layers[0]
    np.testing.assert_allclose(layer.scale, (6.5, 6.5, 6.5))
    w = TomogramBrowser(viewer)
    wait_ortho(qtbot, w)
    shown = np.unravel_index(np.argmax(np.asarray(layer.data)), layer.data.shape)  # where the user sees it
    assert tuple(int(i) for i in shown) == (3, 12 - 1 - 5, 7)  # shown as in 3dmod: file row 0 at the bottom
    viewer.dims.set_point(0, float(layer.data_to_world(shown)[0]))
    w.mode_pick.click()
    w.click_world(layer.data_to_world(shown))
    df = starfile.read(w.export_picks(tmp_path / "picks.star"))
    assert (df["rlnCoordinateX"][0], df["rlnCoordinateY"][0], df["rlnCoordinateZ"][0]) == (7, 5, 3)
    assert df["rlnTomoName"][0] == "TS_01"
    # and back: importing the file puts the pick on the bright voxel again
    w.picks_layer.data = np.zeros((0, 3))
    w.import_picks(tmp_path / "picks.star")
    np.testing.assert_allclose(w.picks_layer.data[0], shown)


def test_big_volume_yz_preview_then_exact(browser, qtbot, monkeypatch, volume):
    viewer, layer, w = browser
    monkeypatch.setattr(tb, "PREVIEW_BYTES", volume.nbytes // 16)  # pretend it is huge: stride 4
    shown = []
    orig = w._on_ortho_done
    monkeypatch.setattr(w, "_on_ortho_done", lambda r: (shown.append(r["yz_step"]), orig(r)))
    # reconnecting is not needed: workers connect to the bound attribute at start
    w.set_cursor((9, 16, 30))
    wait_ortho(qtbot, w)
    assert shown == [4, 1]
    np.testing.assert_allclose(w.yz_item.image, volume[:, :, 30], rtol=1e-6)  # exact in the end
    # two quick moves: the newer one wins, nothing stale is left on screen
    w.set_cursor((9, 16, 5))
    w.set_cursor((9, 16, 40))
    wait_ortho(qtbot, w)
    np.testing.assert_allclose(w.yz_item.image, volume[:, :, 40], rtol=1e-6)
    assert "preview" not in w.yz_label.toPlainText()
