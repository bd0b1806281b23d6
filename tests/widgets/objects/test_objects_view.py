"""ObjectTableWidget driven as a user would: measure, sort, click a row, colour, classify, track,
export; bad input ends in a message; a 2048² image keeps the GUI thread free."""

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt

from napari_cryomat.widgets.objects import ObjectTableWidget

PS = 2.0


@pytest.fixture
def errors(monkeypatch):
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    return shown


@pytest.fixture
def objects(make_napari_viewer, add_shapes, disks_and_rods):
    viewer = make_napari_viewer()
    _, layer = add_shapes(viewer)
    w = ObjectTableWidget(viewer)
    viewer.window.add_dock_widget(w)
    return viewer, layer, w, disks_and_rods[1]


def wait(qtbot, w, timeout=30000):
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=timeout)


def measure(qtbot, w):
    w.measure_panel.measure_button.click()
    wait(qtbot, w)


def test_options_guessed_from_the_layers(objects):
    viewer, layer, w, _ = objects
    panel = w.measure_panel
    assert panel.labels_combo.currentText() == "objects"
    assert panel.image_combo.currentText() == "img" and panel.intensity_check.isChecked()
    assert not panel.classes_check.isChecked() and not panel.time_check.isChecked()
    assert not w.sections["tracking"].expanded


def test_labels_added_after_docking_are_picked_up(make_napari_viewer, qtbot, growth):
    """The track demo may add its labels once the dock is there: the options follow them."""
    movie, truth, _ = growth
    viewer = make_napari_viewer()
    cal = dict(scale=(1.0, PS, PS), units=("s", "angstrom", "angstrom"), axis_labels=("t", "y", "x"))
    viewer.add_image(movie, name="growth", **cal)
    w = ObjectTableWidget(viewer)
    viewer.window.add_dock_widget(w)
    assert not w.measure_panel.time_check.isChecked()
    labels_combo = w.measure_panel.labels_combo  # no labels yet: says so, greyed and disabled, not a blank box
    assert not labels_combo.isEnabled() and labels_combo.placeholderText() == "no labels layer"
    assert "segment the image" in labels_combo.toolTip()
    viewer.add_labels(truth, name="growth crystals", **cal)
    assert labels_combo.isEnabled() and labels_combo.toolTip().startswith("The objects to measure")
    assert w.measure_panel.labels_combo.currentText() == "growth crystals"
    assert w.measure_panel.time_check.isChecked() and w.sections["tracking"].expanded
    assert w.measure_panel.image_combo.currentText() == "growth"


def test_closed_widget_leaves_the_viewer_alone(objects, qtbot):
    viewer, layer, w, _ = objects
    measure(qtbot, w)
    model = w.model
    seen = []
    model.features_changed.connect(lambda: seen.append(1))
    viewer.window.remove_dock_widget(w)
    w.close()
    w.deleteLater()
    qtbot.wait(50)
    viewer.layers.remove(layer)  # the model no longer listens: nothing is emitted, nothing fails
    assert seen == [] and model.layer is None


def test_measure_sort_select_colour_export(objects, qtbot, tmp_path):
    viewer, layer, w, kinds = objects
    assert w.colour_panel.histogram_note.shown  # "Press Measure: ..." in place of bare axes
    assert w.table_panel.empty_note.shown and w.table_panel.empty_note.text.startswith("Press Measure")
    # the property picker, a blank box before Measure (read as broken): greyed placeholder, disabled with Colour
    prop = w.colour_panel.property_combo
    assert not prop.isEnabled() and not w.colour_panel.colour_button.isEnabled()
    assert prop.currentIndex() == -1 and prop.placeholderText() == "press Measure"
    assert prop.toolTip().startswith("Nothing measured yet: press Measure")
    assert w.sizeHint().width() <= 420  # the placeholder does not widen the dock
    measure(qtbot, w)
    assert not w.colour_panel.histogram_note.shown and not w.table_panel.empty_note.shown
    assert prop.isEnabled() and w.colour_panel.colour_button.isEnabled() and prop.currentText() == "area (Å²)"
    assert prop.toolTip() == "A measured column; shape_class colours by class."
    t = w.model.features
    view = w.table_panel.table_view
    assert len(t) == 16 and view.model().rowCount() == 16
    disk = t[t.label == 2].iloc[0]
    assert disk["area (Å²)"] == pytest.approx(np.pi * (20 * PS) ** 2, rel=0.02)
    assert disk["equivalent_diameter (Å)"] == pytest.approx(40 * PS, rel=0.01)
    assert disk.mean_intensity == pytest.approx(0.3)
    headers = [view.model().headerData(c, Qt.Horizontal) for c in range(view.model().columnCount())]
    assert "area (Å²)" in headers and "index" not in headers
    # a laptop-sized dock: with every section open the dock asks for <= 420 px (the table scrolls sideways)
    for section in w.sections.values():
        section.set_expanded(True)
    assert w.sizeHint().width() <= 420 and w.minimumSizeHint().width() <= 420
    # sort by area (a click on the header, twice: descending)
    view.sortByColumn(view.column_of("area (Å²)"), Qt.SortOrder.DescendingOrder)
    assert view.value(0, "area (Å²)") == pytest.approx(t["area (Å²)"].max())
    # clicking a row selects that object in the viewer and centres on it
    w.table_panel.highlight_check.setChecked(True)
    view.selectRow(0)
    row = w.table_panel.selected_rows()[0]
    assert t.iloc[row]["area (Å²)"] == t["area (Å²)"].max()
    assert layer.selected_label == int(t.iloc[row].label)
    assert layer.show_selected_label
    centre = (t.iloc[row]["centroid_y (Å)"], t.iloc[row]["centroid_x (Å)"])
    assert viewer.scene.camera.center[-2:] == pytest.approx(centre)
    # picking an object in the viewer selects its row
    layer.selected_label = 5
    assert [int(t.iloc[r].label) for r in w.table_panel.selected_rows()] == [5]
    # colour by aspect ratio: rods and disks end at the two ends of the colormap
    colour = w.colour_panel
    colour.property_combo.setCurrentText("aspect_ratio")
    colour.colour_button.click()
    wait(qtbot, w)
    c_rod, c_disk = layer.colormap.map(np.array([1, 2]))
    assert not np.allclose(c_rod, c_disk)
    assert len(colour.histogram.getPlotItem().items) == 1
    assert colour.histogram.getPlotItem().getAxis("bottom").labelText == "aspect_ratio"
    # CSV export: the same features, units in the header
    path = w.export_panel.export_csv(str(tmp_path / "objects.csv"))
    back = pd.read_csv(path)
    assert len(back) == 16 and "area (Å²)" in back.columns
    assert list(back.columns) == list(t.columns.drop("index"))


def test_classify_unsupervised_and_supervised(objects, qtbot):
    viewer, layer, w, kinds = objects
    measure(qtbot, w)
    truth = np.array([kinds[int(lab)] for lab in w.model.features.label])
    classes_panel = w.classes_panel
    w.sections["classes"].set_expanded(True)
    classes_panel.class_method.setCurrentIndex(0)  # k-means
    classes_panel.n_classes_spin.setValue(2)
    classes_panel.classify_button.click()
    wait(qtbot, w)
    cls = w.model.features.shape_class.to_numpy()
    assert len(set(cls)) == 2
    assert max(np.mean(cls == truth), np.mean(cls == 3 - truth)) == 1.0
    c1, c2 = layer.colormap.map(np.array([1, 2]))
    assert not np.allclose(c1, c2)
    assert "2 classes (k-means)" in classes_panel.class_status.text()
    assert "shape_class" in [w.colour_panel.property_combo.itemText(i)
                             for i in range(w.colour_panel.property_combo.count())]
    # supervised: tag two rods and two disks by selecting rows, then predict the rest
    classes_panel.class_method.setCurrentIndex(2)
    view = w.table_panel.table_view
    for value, want in ((5, 2), (6, 1)):
        view.select_rows([r for r in range(len(truth)) if truth[r] == want][:2])
        classes_panel.tag_spin.setValue(value)
        classes_panel.tag_button.click()
    assert len(w.model.tags) == 4
    assert classes_panel.class_status.text().startswith("4 objects tagged")
    classes_panel.classify_button.click()
    wait(qtbot, w)
    cls = w.model.features.shape_class.to_numpy()
    assert np.all(cls[truth == 2] == 5) and np.all(cls[truth == 1] == 6)


def test_bad_input_messages(objects, errors, qtbot):
    viewer, layer, w, _ = objects
    before = np.array(layer.data, copy=True)
    viewer.add_image(np.zeros((5, 5)), name="small")
    panel = w.measure_panel
    panel.image_combo.setCurrentText("small")
    assert panel.measure() is None
    assert errors and "shape" in errors[0] and "untick" in errors[0]
    assert w.tracking_panel.track() is None
    assert "time series" in errors[-1]
    w.colour_panel.colour_by_property("area (Å²)")
    assert "Measure" in errors[-1]
    assert w.export_panel.export_csv("/nonexistent/x.csv") is None
    panel.image_combo.setCurrentText("img")
    measure(qtbot, w)
    assert w.export_panel.export_csv("/nonexistent/dir/x.csv") is None
    assert "Could not write" in errors[-1]
    np.testing.assert_array_equal(layer.data, before)
    assert len(viewer.layers) == 3


def test_track_growth_series(make_napari_viewer, qtbot, tmp_path, growth, messages):
    movie, truth, info = growth
    viewer = make_napari_viewer()
    viewer.add_image(movie, name="growth", scale=(1, PS, PS), metadata={"axes": "TYX"})
    viewer.add_labels(truth, name="crystals", scale=(1, PS, PS))
    w = ObjectTableWidget(viewer)
    panel = w.measure_panel
    assert panel.labels_combo.currentText() == "crystals"
    assert panel.image_combo.currentText() == "growth"
    assert panel.time_check.isChecked()  # guessed from the movie of the same shape
    assert w.sections["tracking"].expanded
    measure(qtbot, w)
    assert set(w.model.features.frame) == set(range(5))
    # objects over time are counted as the histogram counts them, not as as many objects
    assert f"{5 * truth.max()} object-frames measured in 5 frames." in messages["info"]
    tracking = w.tracking_panel
    assert tracking.growth_note.shown
    tracking.track_button.click()
    wait(qtbot, w)
    assert not tracking.growth_note.shown
    tracks = viewer.layers["crystals tracks"]
    assert len(np.unique(tracks.data[:, 0])) == truth.max()
    assert tuple(tracks.scale) == (1, PS, PS)
    tracked = viewer.layers["crystals tracked"]
    for i in range(1, truth.max() + 1):  # each crystal keeps one label through time
        assert len(np.unique(tracked.data[truth == i])) == 1
    rates = np.sort(w.model.tracked.rates.rate.to_numpy())
    true = np.sort([np.polyfit(np.arange(5), a, 1)[0] for a in np.asarray(info["area_A2"]).T])
    np.testing.assert_allclose(rates, true, rtol=1e-6)
    plot = tracking.growth_plot.getPlotItem()
    assert len(plot.listDataItems()) == truth.max()
    assert plot.getAxis("left").labelText == "area (px²)"  # unit-less layer: pixels
    assert "max. distance 60 px, gap 1" in plot.titleLabel.text
    path = w.export_panel.export_growth_csv(str(tmp_path / "growth.csv"))
    curves = pd.read_csv(path)
    assert curves.shape == (5, truth.max() + 1)
    assert (tmp_path / "growth_rates.csv").exists()
    # the table shows the tracks; selecting a row moves to its frame
    view = w.table_panel.table_view
    assert view.model().rowCount() == len(w.model.features) == 5 * truth.max()
    view.selectRow(view.model().rowCount() - 1)
    r = w.table_panel.selected_rows()[0]
    assert viewer.dims.current_step[0] == int(w.model.features.iloc[r].frame)
    # colour the tracked objects by a property: per-track mean
    w.colour_panel.colour_by_property("area (px²)")
    wait(qtbot, w)
    assert tracked.metadata["coloured_by"] == "area (px²)"


def test_track_demo_ready_to_act(make_napari_viewer, qtbot):
    """The track demo's layers (growth movie + labels of a quick segmentation, added before the
    dock): Measure then Track work with no setup."""
    from napari_cryomat.core.segment import segment_series

    viewer = make_napari_viewer()
    viewer.open_sample("napari-cryomat", "growth")
    movie = viewer.layers["growth"]
    labels = segment_series(np.asarray(movie.data), pixel_size=PS)
    viewer.add_labels(labels, name="growth particles", scale=movie.scale, units=movie.units,
                      axis_labels=movie.axis_labels)
    w = ObjectTableWidget(viewer)
    viewer.window.add_dock_widget(w)
    assert w.measure_panel.time_check.isChecked() and w.sections["tracking"].expanded
    measure(qtbot, w)
    w.tracking_panel.track_button.click()
    wait(qtbot, w)
    assert "growth particles tracks" in viewer.layers and "growth particles tracked" in viewer.layers
    assert w.model.tracked.tracks["track_id"].nunique() == 6
    assert w.model.growth_units() == ("Å²", "s")
    assert w.model.tracked.rates["rate"].gt(0).mean() > 0.5  # the crystals grow


def test_gui_thread_stays_free_on_2048(make_napari_viewer, qtbot, gui_watch):
    """2048² labels with 1600 objects: measure (objects, and classes into objects), sort, select,
    colour and classify never hold the GUI thread for 0.1 s.

    Left outside the main watch, both napari's own work: adding a layer (~0.15-0.2 s of Qt
    controls and vispy node here, even for a 2x2 layer; the result layer exists beforehand, so
    the run updates it as every run after the first does), and re-mapping every pixel of a 32-bit
    labels layer when its colours change (the tool's own layers are 16-bit, coloured through a
    lookup table); that one is measured on its own below.
    """
    from napari_cryomat.core.synthetic.particles import shape_field

    rng = np.random.default_rng(1)
    labels = np.zeros((2048, 2048), np.int32)
    yy, xx = np.mgrid[:32, :32].astype(float)
    for k, (i, j) in enumerate(np.ndindex(40, 40), start=1):
        f = shape_field(yy, xx, kind="ellipse", center=(16, 16), radius=rng.uniform(6, 12),
                        aspect=rng.uniform(1, 2.5), angle=rng.uniform(0, 3))
        labels[24 + 50 * i: 56 + 50 * i, 24 + 50 * j: 56 + 50 * j][f < 1] = k
    viewer = make_napari_viewer(show=False)
    viewer.add_image(rng.random((2048, 2048), dtype=np.float32), name="big", scale=(PS, PS))
    layer = viewer.add_labels(labels, name="big objects", scale=(PS, PS))
    classes = viewer.add_labels((labels > 0).astype(np.int32) + (labels % 2 == 1), name="big prediction",
                                scale=(PS, PS), metadata={"cryomat_role": "prediction"})
    viewer.add_labels(np.zeros((2, 2), np.uint16), name="big prediction objects")  # see the docstring
    w = ObjectTableWidget(viewer)
    qtbot.addWidget(w)
    panel = w.measure_panel
    view = w.table_panel.table_view
    with gui_watch as watch:
        panel.labels_combo.set_layer(layer)
        measure(qtbot, w)
        assert len(w.model.features) == 1600
        # one user action per event-loop turn (a person cannot sort, select and pick a layer in one)
        view.sortByColumn(view.column_of("area (px²)"), Qt.SortOrder.DescendingOrder)
        qtbot.wait(10)
        view.selectRow(0)
        qtbot.wait(10)
        panel.labels_combo.set_layer(classes)
        assert panel.classes_check.isChecked()
        measure(qtbot, w)
        objects = viewer.layers["big prediction objects"]
        assert objects.data.shape == (2048, 2048) and w.model.layer is objects
        view.selectRow(3)
        qtbot.wait(10)
        w.colour_panel.colour_by_property("aspect_ratio")
        wait(qtbot, w)
        assert objects.metadata["coloured_by"] == "aspect_ratio"
        w.classes_panel.n_classes_spin.setValue(3)
        qtbot.wait(10)
        w.classes_panel.classify_button.click()
        wait(qtbot, w)
        assert w.model.features["shape_class"].nunique() == 3
        assert objects.metadata["coloured_by"] == "shape_class"
        qtbot.wait(50)
    assert watch.longest < 0.1, f"GUI thread busy for {watch.longest:.3f} s"
    # napari re-maps the 4 million pixels of a 32-bit labels layer on the GUI thread
    panel.labels_combo.set_layer(layer)
    measure(qtbot, w)
    with gui_watch as watch:
        w.colour_panel.colour_by_property("aspect_ratio")
        wait(qtbot, w)
        qtbot.wait(50)
    assert layer.metadata["coloured_by"] == "aspect_ratio"
    assert watch.longest < 0.3, f"GUI thread busy for {watch.longest:.3f} s"


def measured_growth(make_napari_viewer, qtbot, growth):
    """(viewer, dock, true labels): the growth movie and its crystals, measured as a time series."""
    movie, truth, info = growth
    viewer = make_napari_viewer()
    viewer.add_image(movie, name="growth", scale=(1, PS, PS), metadata={"axes": "TYX"})
    viewer.add_labels(truth, name="crystals", scale=(1, PS, PS))
    w = ObjectTableWidget(viewer)
    measure(qtbot, w)
    return viewer, w, truth


def test_linker_choice_says_what_it_suits_and_is_used(make_napari_viewer, qtbot, growth):
    viewer, w, truth = measured_growth(make_napari_viewer, qtbot, growth)
    tracking = w.tracking_panel
    assert tracking.linker_combo.currentText().startswith("trackpy")  # the fast default
    assert "plain linking" in tracking.linker_note.text()
    tracking.linker_combo.setCurrentIndex(2)
    assert "merges and splits" in tracking.linker_note.text()
    tracking.track_button.click()
    wait(qtbot, w)
    run = w.model.tracked
    assert run.request.method == "laptrack" and run.request.merges_splits
    assert run.tracks["track_id"].nunique() == truth.max() and "tree_id" in run.tracks
    assert "laptrack" in tracking.growth_plot.getPlotItem().titleLabel.text


def test_motion_choice_is_used_and_checked(make_napari_viewer, qtbot, growth, errors):
    """The Motion choice reaches the linker (the finish message's model is the one asked for); directed
    motion with laptrack is refused with a message, and nothing is added."""
    viewer, w, truth = measured_growth(make_napari_viewer, qtbot, growth)
    tracking = w.tracking_panel
    assert tracking.motion() == "auto" and "measure the stage drift" in tracking.linker_note.text()
    tracking.motion_combo.setCurrentText("drift")
    assert "stage drift, measured" in tracking.linker_note.text()
    tracking.track_button.click()
    wait(qtbot, w)
    run = w.model.tracked
    assert run.request.motion == "drift" and run.tracks.attrs["motion"]["model"] == "drift"
    assert run.tracks["track_id"].nunique() == truth.max()
    names = [layer.name for layer in viewer.layers]
    tracking.motion_combo.setCurrentText("directed")
    tracking.linker_combo.setCurrentIndex(1)  # laptrack
    assert tracking.track() is None
    assert "directed" in errors[-1] and "trackpy" in errors[-1]
    assert [layer.name for layer in viewer.layers] == names and w.model.tracked is run


def test_track_message_names_the_motion_assumed():
    """The finish message says what the linker assumed, measured from a first linking."""
    from types import SimpleNamespace

    import pandas as pd

    from napari_cryomat.widgets.objects.tracking_panel import _track_message

    tracks = pd.DataFrame({"track_id": [1, 1, 2, 2]})
    tracks.attrs["motion"] = {"model": "directed", "drift_per_frame": 3.04}
    result = SimpleNamespace(tracks=tracks, request=SimpleNamespace(length_unit="Å"))
    assert _track_message(result) == "2 tracks; motion: directed, drift 3.0 Å/frame."
    tracks.attrs["motion"] = {"model": "none"}
    assert _track_message(result) == "2 tracks."
