"""BrowserModel without Qt widgets: a bare napari ViewerModel, the model driven as a script would."""

from types import SimpleNamespace

import numpy as np
import pytest
import starfile

from napari_cryomat.core import tomo as core_tomo
from napari_cryomat.widgets.browser import BrowserModel
from napari_cryomat.widgets.browser._display import is_browsable
from napari_cryomat.widgets.browser.orthoviews import OrthoRequest, compute_orthoslices, preview_step

VS = (5.0, 2.0, 2.0)  # Å per voxel (z, y, x) of the `volume` fixture's layers, anisotropic on purpose



def _shown(viewer, name: str) -> bool:
    """A helper layer is shown: present and visible (hidden, not removed, while its tool is behind)."""
    return name in viewer.layers and bool(viewer.layers[name].visible)

@pytest.fixture
def viewer():
    from napari.components import ViewerModel

    return ViewerModel()


@pytest.fixture
def model(viewer, volume):
    layer = viewer.add_image(volume, name="tomo", scale=VS, units=("angstrom",) * 3)
    m = BrowserModel(viewer)
    m.attach()
    m.set_source(layer)
    yield m
    m.detach()


def click(model, viewer, zyx_or_world, *, drag=False, world=False):
    """Press and release in the canvas (with a move in between if ``drag``)."""
    position = zyx_or_world if world else model.source.data_to_world(zyx_or_world)
    event = SimpleNamespace(button=1, modifiers=(), type="mouse_press", position=position)
    gen = model.on_canvas_mouse(viewer, event)
    try:
        next(gen)
    except StopIteration:  # the callback declined the press
        return
    if drag:
        event.type = "mouse_move"
        next(gen)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)


def test_cursor_follows_clicks_and_the_z_slider(model, viewer):
    seen = []
    model.cursor_changed.connect(lambda c: seen.append(tuple(int(v) for v in c)))
    assert list(model.cursor) == [9, 16, 24]  # napari's middle slice, centre in Y, X
    click(model, viewer, (9, 7, 30))
    assert list(model.cursor) == [9, 7, 30] and seen[-1] == (9, 7, 30)
    xz_cut, yz_cut = viewer.layers["XZ/YZ cuts"].data  # where the XZ (y = 7) and YZ (x = 30) views cut XY
    np.testing.assert_allclose(xz_cut[:, 0], 7)
    np.testing.assert_allclose(yz_cut[:, 1], 30)
    viewer.dims.set_point(0, 2 * VS[0])
    assert model.cursor[0] == 2 and seen[-1] == (2, 7, 30)
    click(model, viewer, (2, 1, 1), drag=True)  # a drag pans; the cursor stays
    assert list(model.cursor) == [2, 7, 30]
    model.set_cursor_world((4 * VS[0], 20 * VS[1], 12 * VS[2]))  # a click in an orthogonal view
    assert list(model.cursor) == [4, 20, 12]
    assert viewer.dims.point[0] == pytest.approx(4 * VS[0])


def test_slab_in_slices_and_angstrom(model, viewer, volume):
    layer = model.source
    model.set_slab(3)
    np.testing.assert_allclose(layer._slice.image.raw, volume[8:11].mean(0), rtol=1e-5)
    model.set_thickness_unit("Å")  # keeps the slab: 3 slices x 5 Å
    assert model.thickness == pytest.approx(15.0) and model.thickness_slices() == 3
    model.set_slab(25.0)
    assert model.thickness_slices() == 5 and "5 slices" in model.slab_text()
    np.testing.assert_allclose(layer._slice.image.raw, volume[7:12].mean(0), rtol=1e-5)


def test_binning_and_lowpass_use_a_lazy_derived_layer(model, viewer, volume):
    layer, data_before = model.source, model.source.data
    model.set_binning(2)
    shown = model.display.layer
    assert shown is not layer and not layer.visible and shown.name == "tomo [2x]"
    assert not is_browsable(shown)
    np.testing.assert_allclose(shown.scale, (10.0, 4.0, 4.0))
    np.testing.assert_allclose(shown.data_to_world((0, 0, 0)), layer.data_to_world((0.5, 0.5, 0.5)))
    binned = volume.reshape(10, 2, 16, 2, 24, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(shown._slice.image.raw, binned[4], rtol=1e-5)  # z = 9 -> binned 4
    model.set_lowpass(8.0)
    assert model.display.layer is shown and shown.name == "tomo [2x, σ 8 Å]"  # updated in place
    expected = core_tomo.gaussian_lowpass(binned[5], sigma_A=8.0, pixel_size_A=(4.0, 4.0))
    np.testing.assert_allclose(np.asarray(shown.data[5]), expected, rtol=1e-4, atol=1e-3)
    model.set_binning(1)
    assert model.display.layer.name == "tomo [σ 8 Å]"
    model.set_lowpass(0.0)
    assert model.display.layer is layer and layer.visible
    assert [lay.name for lay in viewer.layers] == ["tomo", "XZ/YZ cuts"]
    assert layer.data is data_before  # never modified


def test_binning_too_coarse_is_refused_and_nothing_changes(viewer):
    layer = viewer.add_image(np.zeros((4, 16, 16), np.float32), name="thin")
    m = BrowserModel(viewer)
    m.set_source(layer)
    with pytest.raises(ValueError, match="smaller than one 8x bin"):
        m.set_binning(8)
    assert m.binning == 1 and m.display.layer is layer and [lay.name for lay in viewer.layers] == ["thin", "XZ/YZ cuts"]


def test_layer_in_nm_gives_angstrom_lowpass_slab_and_distances(viewer, volume):
    """A layer calibrated in nm: σ, slab and distances are still Å (the old browser took nm as Å)."""
    layer = viewer.add_image(volume, name="tomo nm", scale=(0.5, 0.2, 0.2), units=("nm",) * 3)
    m = BrowserModel(viewer)
    m.set_source(layer)
    np.testing.assert_allclose(m.voxel_size, VS)
    m.set_lowpass(8.0)
    expected = core_tomo.gaussian_lowpass(volume[9], sigma_A=8.0, pixel_size_A=(2.0, 2.0))
    np.testing.assert_allclose(np.asarray(m.display.layer.data[9]), expected, rtol=1e-4, atol=1e-3)
    m.set_slab(15.0, "Å")
    assert m.thickness_slices() == 3
    assert m.viewer.dims.margin_left[0] == pytest.approx(0.5)  # napari's margins are world units (nm)
    m.mode = "measure"
    m.click_world(layer.data_to_world((9, 2, 2)))
    m.click_world(layer.data_to_world((9, 2, 12)))
    assert m.annotations.measurements == [pytest.approx(20.0)]
    m.set_cursor((9, 7, 30))
    req = OrthoRequest(data=volume, data_id=id(volume), y=7, x=30, thickness=1, binning=1, sigma_angstrom=8.0,
                       voxel_angstrom=tuple(m.voxel_size), scale=tuple(layer.scale), translate=(0, 0, 0))
    xz = compute_orthoslices(req).xz
    np.testing.assert_allclose(xz, core_tomo.gaussian_lowpass(volume[:, 7, :], sigma_A=8.0, pixel_size_A=(5.0, 2.0)),
                               rtol=1e-4, atol=1e-3)


def test_contrast_from_the_visible_slab(model, volume):
    model.set_slab(3)
    levels = []
    model.levels_changed.connect(levels.append)
    lo, hi = model.display.apply_contrast((5.0, 95.0))
    exp_lo, exp_hi = np.percentile(volume[8:11].mean(0), [5, 95])
    assert lo == pytest.approx(exp_lo, rel=1e-4) and hi == pytest.approx(exp_hi, rel=1e-4)
    assert tuple(model.source.contrast_limits) == pytest.approx((lo, hi)) and levels[-1] == (lo, hi)
    model.source.contrast_limits = (100.0, 900.0)  # napari's slider: the views hear of it
    assert levels[-1] == (100.0, 900.0)


def test_picks_export_import_in_file_voxel_indices(viewer, volume, tmp_path):
    meta = {"mrc": {"path": str(tmp_path / "TS_07.rec"), "voxel_size": VS, "file_shape": volume.shape,
                    "flip_y": True}}
    layer = viewer.add_image(volume, name="TS_07", scale=VS, units=("angstrom",) * 3, metadata=meta)
    m = BrowserModel(viewer)
    m.attach()
    m.set_source(layer)
    counts = []
    m.annotations.picks_changed.connect(counts.append)
    m.mode = "pick"
    viewer.dims.set_point(0, 10 * VS[0])  # the user scrolls to slice 10
    for zyx in [(10, 3, 5), (10, 30, 40)]:
        m.click_world(layer.data_to_world(zyx))
    viewer.dims.set_point(0, 4 * VS[0])
    m.click_world(layer.data_to_world((4, 12, 7)))
    picks = m.annotations.picks_layer
    assert counts[-1] == 3 and picks.name == "TS_07 picks"
    np.testing.assert_allclose(picks.data, [[10, 3, 5], [10, 30, 40], [4, 12, 7]])
    np.testing.assert_allclose(picks.scale, VS)
    df = starfile.read(m.annotations.export_picks(tmp_path / "picks.star"))
    np.testing.assert_allclose(df["rlnCoordinateY"], [31 - 3, 31 - 30, 31 - 12])  # file rows: MRC Y flip
    np.testing.assert_allclose(df["rlnCoordinateX"], [5, 40, 7])
    np.testing.assert_allclose(df["rlnCoordinateZ"], [10, 10, 4])
    assert set(df["rlnTomoName"]) == {"TS_07"}
    csv = m.annotations.export_picks(tmp_path / "picks.csv")
    assert csv.read_text().splitlines()[1].split(",")[:3] == ["5.0", "28.0", "10.0"]
    m.annotations.undo_pick()
    assert counts[-1] == 2
    again = BrowserModel(viewer)  # a second browser on the same tomogram finds the picks and follows edits
    again.set_source(layer)
    again_counts = []
    again.annotations.picks_changed.connect(again_counts.append)
    assert again.annotations.count == 2
    picks.data = picks.data[:1]  # edited with napari's own tools
    assert again_counts[-1] == 1 and counts[-1] == 1
    picks.data = np.array([[10, 3, 5], [10, 30, 40]], dtype=float)
    picks.data = np.zeros((0, 3))
    assert m.annotations.import_picks(tmp_path / "picks.star").count == 3
    np.testing.assert_allclose(picks.data, [[10, 3, 5], [10, 30, 40], [4, 12, 7]])
    report = m.annotations.import_picks(tmp_path / "picks.csv")
    assert report.count == 3 and report.outside == 0 and len(picks.data) == 6
    m.detach()


def test_picks_errors_say_what_to_do(model, tmp_path):
    with pytest.raises(ValueError, match="no picks to export"):
        model.annotations.export_picks(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("x,y,z\n")
    with pytest.raises(ValueError, match="holds no picks"):
        model.annotations.import_picks(tmp_path / "empty.csv")
    (tmp_path / "far.csv").write_text("x,y,z\n5,5,5\n400,5,5\n")
    report = model.annotations.import_picks(tmp_path / "far.csv")
    assert report.outside == 1 and "another binning" in report.message


def test_real_mrc_file_picks_round_trip_to_file_indices(viewer, tmp_path):
    """A bright voxel at file index (z 3, y 5, x 7): picked where napari shows it, exported picks
    name the file's own indices (IMOD/RELION), whatever the display flip."""
    mrcfile = pytest.importorskip("mrcfile")
    data = np.zeros((8, 12, 16), np.float32)
    data[3, 5, 7] = 100.0
    path = tmp_path / "TS_01.mrc"
    with mrcfile.new(path) as m:
        m.set_data(data)
        m.voxel_size = 6.5
    from napari_cryomat.io.mrc import read_mrc

    (data, kwargs, _kind), = read_mrc(path)  # what napari's File > Open gives (the reader's own test covers that)
    layer = viewer.add_image(data, **kwargs)
    np.testing.assert_allclose(layer.scale, (6.5, 6.5, 6.5))
    model = BrowserModel(viewer)
    model.set_source(layer)
    shown = np.unravel_index(np.argmax(np.asarray(layer.data)), layer.data.shape)  # where the user sees it
    assert tuple(int(i) for i in shown) == (3, 12 - 1 - 5, 7)  # as in 3dmod: file row 0 at the bottom
    viewer.dims.set_point(0, float(layer.data_to_world(shown)[0]))
    model.mode = "pick"
    model.click_world(layer.data_to_world(shown))
    df = starfile.read(model.annotations.export_picks(tmp_path / "picks.star"))
    assert (df["rlnCoordinateX"][0], df["rlnCoordinateY"][0], df["rlnCoordinateZ"][0]) == (7, 5, 3)
    assert df["rlnTomoName"][0] == "TS_01"
    model.annotations.picks_layer.data = np.zeros((0, 3))
    model.annotations.import_picks(tmp_path / "picks.star")
    np.testing.assert_allclose(model.annotations.picks_layer.data[0], shown)


def test_measure_distances_in_angstrom(model, viewer):
    texts = []
    model.annotations.measure_changed.connect(texts.append)
    model.mode = "measure"
    model.click_world(model.source.data_to_world((10, 2, 2)))
    assert "second point" in texts[-1]
    model.click_world(model.source.data_to_world((10, 2, 12)))  # 10 voxels along X = 20 Å
    assert model.annotations.measurements == [pytest.approx(20.0)] and "20.0 Å" in texts[-1]
    viewer.dims.set_point(0, 14 * VS[0])
    for _ in range(3):  # a zero-length one, then a new one starts on the same spot
        model.click_world(model.source.data_to_world((14, 5, 2)))
    viewer.dims.set_point(0, 18 * VS[0])
    model.click_world(model.source.data_to_world((18, 5, 2)))  # 4 slices deeper = 20 Å along Z
    assert model.annotations.measurements == [pytest.approx(20.0), pytest.approx(0.0), pytest.approx(20.0)]
    assert "Δz 20 Å" in texts[-1]
    shapes = viewer.layers["measurements"]
    assert len(shapes.data) == 3
    np.testing.assert_allclose(shapes.features["distance_angstrom"], [20.0, 0.0, 20.0])
    model.annotations.clear_measurements()
    assert "measurements" not in viewer.layers and model.annotations.measurements == []


def test_layers_that_cannot_be_browsed_say_why(viewer):
    m = BrowserModel(viewer)
    m.set_source(None)
    assert "open a tomogram" in m.status
    m.set_source(viewer.add_image(np.zeros((16, 16), np.float32), name="micrograph"))
    assert m.source is None and "3D image" in m.status and "micrograph" in m.status
    movie = viewer.add_image(np.zeros((4, 16, 16), np.float32), name="movie", scale=(0.1, 2, 2),
                             units=("s", "angstrom", "angstrom"))
    m.set_source(movie)
    assert m.source is None and "length units" in m.status and "second" in m.status
    with pytest.raises(ValueError, match="length units"):
        m.display.contrast_job()
    m.set_source(viewer.add_image(np.zeros((4, 16, 16), np.float32), name="tomo"))
    assert m.source is viewer.layers["tomo"] and m.status == ""


def test_cut_lines_are_a_helper_layer_shown_only_in_front_and_in_2d(model, viewer):
    assert viewer.layers["XZ/YZ cuts"].metadata["cryomat_helper"]
    model.set_in_front(False)
    assert not _shown(viewer, "XZ/YZ cuts")
    model.set_cursor((9, 5, 6))
    model.set_in_front(True)
    np.testing.assert_allclose(viewer.layers["XZ/YZ cuts"].data[0][:, 0], 5)  # drawn where the cursor is now
    model.set_show_cuts(False)
    assert not _shown(viewer, "XZ/YZ cuts")
    model.set_show_cuts(True)
    model.display.set_3d(True)
    assert not _shown(viewer, "XZ/YZ cuts")
    model.display.set_3d(False)
    assert _shown(viewer, "XZ/YZ cuts")
    model.detach()  # the browser closes
    assert not _shown(viewer, "XZ/YZ cuts")
    assert model.on_canvas_mouse not in viewer.mouse_drag_callbacks


def test_clicks_in_the_canvas_act_only_while_the_browser_is_in_front(model, viewer):
    model.mode = "pick"
    model.set_in_front(False)
    click(model, viewer, (9, 3, 3))
    assert model.annotations.count == 0
    model.set_in_front(True)
    click(model, viewer, (9, 3, 3))
    assert model.annotations.count == 1


def test_3d_rendering_and_auto_binning(model, viewer):
    assert model.display.binning_for_3d() is None
    model.display.max_3d_voxels = 1000  # pretend 20x32x48 is huge
    assert model.display.binning_for_3d() == 4  # 30720 / 4**3 = 480 voxels
    model.display.set_3d(True)
    assert viewer.dims.ndisplay == 3
    model.display.set_rendering("isosurface")
    layer = model.source
    assert layer.rendering == "iso"
    lo, hi = layer.contrast_limits
    assert lo < layer.iso_threshold < hi


def test_source_removed_resets_the_model(model, viewer):
    model.set_binning(2)
    sources = []
    model.source_changed.connect(sources.append)
    viewer.layers.remove(model.display.layer)  # the user deletes the binned layer: the source shows again
    assert model.display.derived is None and model.source.visible
    viewer.layers.remove("tomo")
    assert model.source is None and sources[-1] is None and not _shown(viewer, "XZ/YZ cuts")


def test_orthoslices_preview_then_exact_and_stale_jobs_stop(volume):
    assert preview_step(volume.shape, volume.dtype, volume.nbytes // 16) == 4
    assert preview_step(volume.shape, volume.dtype) == 1
    req = OrthoRequest(data=volume, data_id=id(volume), y=16, x=30, thickness=3, binning=1, sigma_angstrom=0.0,
                       voxel_angstrom=VS, scale=VS, translate=(0, 0, 0), yz_step=4)
    preview = compute_orthoslices(req)
    assert preview.yz.shape == (5, 8) and preview.yz_step == 4
    np.testing.assert_allclose(preview.yz_rect, (-4.0, -10.0, 64.0, 100.0))  # covers the volume
    exact = compute_orthoslices(OrthoRequest(**{**req.__dict__, "yz_step": 1}))
    np.testing.assert_allclose(exact.xz, volume[:, 15:18, :].mean(1), rtol=1e-5)
    np.testing.assert_allclose(exact.yz, volume[:, :, 29:32].mean(2), rtol=1e-5)
    np.testing.assert_allclose(exact.xz_rect, (-1.0, -2.5, 96.0, 100.0))
    from napari_cryomat.core._progress import Cancelled

    with pytest.raises(Cancelled):
        compute_orthoslices(req, is_stale=lambda: True)


@pytest.mark.parametrize("size", [20, 256])
def test_cut_lines_are_thin_against_the_field_on_a_small_map(viewer, size):
    """EMD-3197 (20³ voxels of 11.4 Å): the XZ/YZ cut lines were half a voxel wide, 2.5 % of the field (16 px at
    full view), a band over a voxel row. They stay ~0.3 % of the field (~2 px) at any size."""
    layer = viewer.add_image(np.random.default_rng(0).random((size // 2, size, size)), name="map", scale=(11.4,) * 3)
    m = BrowserModel(viewer)
    m.attach()
    m.set_source(layer)
    width = max(viewer.layers["XZ/YZ cuts"].edge_width)
    assert 0.002 <= width / size <= 0.004
    m.detach()

