"""ObjectTableWidget driven as a user would: measure, sort, click a row, colour, classify, track, export."""

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt

from napari_cryomat.core.synthetic.particles import make_growth, shape_field
from napari_cryomat.widgets.object_table import ObjectTableWidget

PS = 2.0


def _shapes():
    """Disks and rods of known size: 4 x 4 grid, rods on the diagonal pattern."""
    lab = np.zeros((320, 320), np.int32)
    yy, xx = np.mgrid[:320, :320].astype(float)
    kinds = {}
    k = 0
    for i in range(4):
        for j in range(4):
            k += 1
            rod = (i + j) % 2 == 0
            f = shape_field(yy, xx, kind="ellipse", center=(40 + 80 * i, 40 + 80 * j),
                            radius=30 if rod else 20, aspect=3.0 if rod else 1.0, angle=0.3 * k)
            lab[f < 1] = k
            kinds[k] = 2 if rod else 1
    return lab, kinds


@pytest.fixture
def objects(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    lab, kinds = _shapes()
    viewer.add_image(np.where(lab > 0, 0.3, 1.0).astype(np.float32), name="img", scale=(PS, PS),
                             units=("angstrom", "angstrom"))
    layer = viewer.add_labels(lab, name="objects", scale=(PS, PS), units=("angstrom", "angstrom"))
    w = ObjectTableWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.labels_combo.setCurrentText("objects")
    w.image_combo.setCurrentText("img")
    return viewer, layer, w, kinds


def wait(qtbot, w):
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=30000)


def test_measure_sort_select_colour_export(objects, qtbot, tmp_path):
    viewer, layer, w, kinds = objects
    w.measure_button.click()
    wait(qtbot, w)
    t = w.table
    assert len(t) == 16 and w.table_widget.rowCount() == 16
    disk = t[t.label == 2].iloc[0]
    assert disk.area == pytest.approx(np.pi * (20 * PS) ** 2, rel=0.02)
    assert disk.equivalent_diameter == pytest.approx(40 * PS, rel=0.01)
    assert disk.mean_intensity == pytest.approx(0.3)
    headers = [w.table_widget.horizontalHeaderItem(c).text() for c in range(w.table_widget.columnCount())]
    assert "area (Å²)" in headers
    # sort by area (click the header twice: descending), the first row is a rod
    col = headers.index("area (Å²)")
    w.table_widget.sortItems(col, Qt.SortOrder.DescendingOrder)  # a click on the header, twice
    first = w.table_widget.item(0, col).data(256)
    assert first == pytest.approx(t.area.max())
    # clicking a row selects that object in the viewer and centres on it
    w.highlight_check.setChecked(True)
    w.table_widget.selectRow(0)
    row = w.selected_rows()[0]
    assert layer.selected_label == int(t.iloc[row].label)
    assert layer.show_selected_label
    assert viewer.scene.camera.center[-2:] == pytest.approx((t.iloc[row].centroid_y, t.iloc[row].centroid_x))
    # colour by aspect ratio: rods and disks end at the two ends of the colormap
    w.property_combo.setCurrentText("aspect_ratio")
    w.colour_button.click()
    c_rod = layer.colormap.map(np.array([1]))[0]
    c_disk = layer.colormap.map(np.array([2]))[0]
    assert not np.allclose(c_rod, c_disk)
    assert len(w.histogram.getPlotItem().items) == 1
    # CSV export carries units in the header
    path = w.export_csv(str(tmp_path / "objects.csv"))
    back = pd.read_csv(path)
    assert len(back) == 16 and "area (Å²)" in back.columns


def test_classify_unsupervised_and_supervised(objects, qtbot):
    viewer, layer, w, kinds = objects
    w.measure_button.click()
    wait(qtbot, w)
    truth = np.array([kinds[int(l)] for l in w.table.label])
    w.class_method.setCurrentIndex(0)  # k-means
    w.n_classes_spin.setValue(2)
    w.classify_button.click()
    cls = w.table.shape_class.to_numpy()
    assert len(set(cls)) == 2
    assert max(np.mean(cls == truth), np.mean(cls == 3 - truth)) == 1.0
    c1 = layer.colormap.map(np.array([1]))[0]
    c2 = layer.colormap.map(np.array([2]))[0]
    assert not np.allclose(c1, c2)
    # supervised: tag two rods and two disks by selecting rows, then predict the rest
    w.class_method.setCurrentIndex(2)
    for value, want in ((5, 2), (6, 1)):
        rows = [r for r in range(len(w.table)) if truth[r] == want][:2]
        w.table_widget.clearSelection()
        # find the widget rows holding these table rows (the table may be sorted)
        for wr in range(w.table_widget.rowCount()):
            if w.table_widget.item(wr, 0).data(257) in rows:
                w.table_widget.selectRow(wr) if not w.table_widget.selectedItems() else \
                    w.table_widget.item(wr, 0).setSelected(True)
        w.tag_spin.setValue(value)
        w.tag_button.click()
    assert len(w.tags) == 4
    w.classify_button.click()
    cls = w.table.shape_class.to_numpy()
    assert np.all(cls[truth == 2] == 5) and np.all(cls[truth == 1] == 6)


def test_bad_input_messages(objects, monkeypatch):
    viewer, layer, w, _ = objects
    errors = []
    monkeypatch.setattr("napari_cryomat.widgets.object_table.show_error", errors.append)
    viewer.add_image(np.zeros((5, 5)), name="small")
    w.image_combo.setCurrentText("small")
    w.measure_button.click()
    assert errors and "shape" in errors[0]
    w.track_button.click()
    assert "time series" in errors[-1]


def test_track_growth_series(make_napari_viewer, qtbot, tmp_path):
    movie, truth, info = make_growth(n_frames=5)
    viewer = make_napari_viewer()
    viewer.add_image(movie, name="growth", scale=(1, PS, PS), metadata={"axes": "TYX"})
    viewer.add_labels(truth, name="crystals", scale=(1, PS, PS))
    w = ObjectTableWidget(viewer)
    w.labels_combo.setCurrentText("crystals")
    w.image_combo.setCurrentText("growth")
    w._guess_options()
    assert w.time_check.isChecked()
    w.measure_button.click()
    wait(qtbot, w)
    assert set(w.table.frame) == set(range(5))
    w.track_button.click()
    wait(qtbot, w)
    tracks = viewer.layers["crystals tracks"]
    assert len(np.unique(tracks.data[:, 0])) == truth.max()
    assert tuple(tracks.scale) == (1, PS, PS)
    tracked = viewer.layers["crystals tracked"]
    # each crystal keeps one label through time
    for i in range(1, truth.max() + 1):
        assert len(np.unique(tracked.data[truth == i])) == 1
    rates = np.sort(w.rates.rate.to_numpy())
    true = np.sort([np.polyfit(np.arange(5), a, 1)[0] for a in np.asarray(info["area_A2"]).T])
    np.testing.assert_allclose(rates, true, rtol=1e-6)
    assert len(w.growth_plot.getPlotItem().listDataItems()) == truth.max()
    path = w.export_growth_csv(str(tmp_path / "growth.csv"))
    curves = pd.read_csv(path)
    assert curves.shape == (5, truth.max() + 1)
    assert (tmp_path / "growth_rates.csv").exists()
    # selecting a row moves to its frame
    w.table_widget.selectRow(w.table_widget.rowCount() - 1)
    r = w.selected_rows()[0]
    assert viewer.dims.current_step[0] == int(w.table.iloc[r].frame)


@pytest.mark.e2e
def test_e2e_scribbles_to_csv(make_napari_viewer, qtbot, tmp_path):
    """The whole workflow in a real window: open the sample, paint scribbles, train, predict,
    measure the predicted particles, classify, export CSV, and look at the screen."""
    from napari_cryomat.widgets.segmentation import SegmentationWidget

    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "particles")
    image = viewer.layers["particles"]
    truth = image.metadata["truth"]
    assert tuple(image.scale) == (PS, PS)
    seg = SegmentationWidget(viewer)
    table = ObjectTableWidget(viewer)
    viewer.window.add_dock_widget(seg, name="Segmentation")
    viewer.window.add_dock_widget(table, name="Objects")
    seg.new_button.click()
    scribbles = viewer.layers["particles annotation"]
    rng = np.random.default_rng(0)
    scribbles.brush_size = 5
    for value, region in ((1, truth > 0), (4, truth == 0)):  # particle, void (support)
        ys, xs = np.nonzero(region)
        for i in rng.choice(ys.size, 25, replace=False):
            scribbles.paint((ys[i], xs[i]), value, refresh=False)
    scribbles.refresh()
    seg.trees_spin.setValue(20)
    seg.train_button.click()
    qtbot.waitUntil(lambda: not seg.runner.busy, timeout=60000)
    prediction = viewer.layers["particles prediction"]
    assert np.mean((prediction.data == 1) == (truth > 0)) > 0.95
    table.labels_combo.setCurrentText("particles prediction")
    table.image_combo.setCurrentText("particles")
    assert table.classes_check.isChecked()  # a prediction holds classes: objects are its regions
    table.measure_button.click()
    qtbot.waitUntil(lambda: not table.runner.busy, timeout=60000)
    particles = table.table[table.table["class"] == 1]
    assert len(particles) >= 0.5 * truth.max()  # touching ones merge without a split step
    assert "particles prediction objects" in viewer.layers
    table.n_classes_spin.setValue(2)
    table.classify_button.click()
    assert "shape_class" in table.table
    path = table.export_csv(str(tmp_path / "particles.csv"))
    assert len(pd.read_csv(path)) == len(table.table)
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 5
