"""ObjectsModel without Qt (napari's ViewerModel): measurements in layer.features with units,
selection, colours, shape classes, tracking and export, as a script would use them."""

import numpy as np
import pandas as pd
import pytest
from napari.components import ViewerModel

from napari_cryomat.widgets.objects import ObjectsModel
from napari_cryomat.widgets.objects._features import base_name, core_names, with_units
from napari_cryomat.widgets.objects._jobs import compute_measure
from napari_cryomat.widgets.objects._layers import (
    first_axis_is_time,
    guess_time_series,
    matching_image,
    result_name,
    track_colours,
)

PS = 2.0


@pytest.fixture
def viewer():
    return ViewerModel()


@pytest.fixture
def measured(viewer, add_shapes, disks_and_rods):
    image, layer = add_shapes(viewer)
    model = ObjectsModel(viewer)
    model.measure(layer, image)
    return model, layer, disks_and_rods[1]


def test_measurements_live_on_the_layer_with_units(measured):
    model, layer, kinds = measured
    features = layer.features
    assert model.features is features  # the table, a script and the layer read one DataFrame
    assert len(features) == 16
    assert features["index"].tolist() == features["label"].tolist()  # napari's label -> row key
    for column in ("area (Å²)", "perimeter (Å)", "centroid_y (Å)", "orientation (°)", "aspect_ratio"):
        assert column in features
    disk = features[features["label"] == 2].iloc[0]
    assert disk["area (Å²)"] == pytest.approx(np.pi * (20 * PS) ** 2, rel=0.02)
    assert disk["equivalent_diameter (Å)"] == pytest.approx(40 * PS, rel=0.01)
    assert disk["mean_intensity"] == pytest.approx(0.3)
    # napari's status bar finds an object's properties through the index column
    assert layer._get_properties((40, 120))[0].startswith("label: 2")
    assert model.table["area"].iloc[1] == disk["area (Å²)"]  # core names for core calls


def test_uncalibrated_layer_says_pixels(viewer, disks_and_rods):
    layer = viewer.add_labels(disks_and_rods[0], name="plain")
    features = ObjectsModel(viewer).measure(layer)
    assert "area (px²)" in features and "area (Å²)" not in features


def test_select_row_centres_in_world_coordinates(viewer, disks_and_rods):
    """A layer in nm: the camera goes to the object in world (nm) coordinates, not to its Å."""
    lab, _ = disks_and_rods
    layer = viewer.add_labels(lab, name="nm", scale=(0.2, 0.2), units=("nm", "nm"), translate=(5.0, 7.0))
    model = ObjectsModel(viewer)
    features = model.measure(layer)
    model.select_row(3, only_selected=True)
    row = features.iloc[3]
    assert layer.selected_label == row["label"] and layer.show_selected_label
    expected = (row["centroid_y (Å)"] / 10 + 5.0, row["centroid_x (Å)"] / 10 + 7.0)
    assert viewer.scene.camera.center[-2:] == pytest.approx(expected)


def test_class_map_becomes_objects_with_their_class(viewer, disks_and_rods):
    lab, kinds = disks_and_rods
    classes = np.zeros_like(lab)
    for k, kind in kinds.items():
        classes[lab == k] = kind
    annotation = viewer.add_labels(classes, name="particles annotation", metadata={"cryomat_role": "annotation"},
                                   features={"index": [1, 2], "class": ["disk", "rod"]})
    model = ObjectsModel(viewer)
    features = model.measure(annotation)  # guessed: an annotation holds classes
    objects = viewer.layers["particles annotation objects"]
    assert model.layer is objects and objects.features is features
    assert len(features) == 16 and sorted(set(features["class"])) == [1, 2]
    names = dict(zip(features["class"], features["class name"]))
    assert names == {1: "disk", 2: "rod"} and (features["class"] == 2).sum() == sum(k == 2 for k in kinds.values())
    assert list(annotation.features.columns) == ["index", "class"]  # the class map is left as it was


def test_colour_by_value_and_reset(measured):
    model, layer, kinds = measured
    model.colour_by("aspect_ratio")
    rod, disk = layer.colormap.map(np.array([1, 2]))
    assert not np.allclose(rod, disk)
    assert layer.metadata["coloured_by"] == "aspect_ratio"
    with pytest.raises(ValueError, match="No column"):
        model.colour_by("nonsense")
    model.reset_colours()
    assert "coloured_by" not in layer.metadata


def test_classify_unsupervised_and_from_tags(measured):
    model, layer, kinds = measured
    truth = np.array([kinds[int(lab)] for lab in model.features["label"]])
    classes = model.classify("kmeans", 2)["shape_class"].to_numpy()
    assert max(np.mean(classes == truth), np.mean(classes == 3 - truth)) == 1.0
    one, two = layer.colormap.map(np.array([1, 2]))
    assert not np.allclose(one, two)
    rods = list(np.flatnonzero(truth == 2)[:2])
    disks = list(np.flatnonzero(truth == 1)[:2])
    model.tag_rows(rods, 5)
    model.tag_rows(disks, 6)
    assert len(model.tags) == 4
    features = model.classify("forest")
    classes = features["shape_class"].to_numpy()
    assert np.all(classes[truth == 2] == 5) and np.all(classes[truth == 1] == 6)
    assert features["class_confidence"].between(0, 1).all()


def test_user_errors_are_value_errors(viewer, add_shapes):
    image, layer = add_shapes(viewer)
    model = ObjectsModel(viewer)
    small = viewer.add_image(np.zeros((5, 5)), name="small")
    with pytest.raises(ValueError, match="shape"):
        model.measure_request(layer, small)
    with pytest.raises(ValueError, match="time series"):
        model.measure_request(layer, time_series=True)
    with pytest.raises(ValueError, match="labels layer"):
        model.measure_request(None)
    with pytest.raises(ValueError, match="Measure"):
        model.colour_by("area (Å²)")
    with pytest.raises(ValueError, match="time series"):
        model.track_request(60.0)


def test_time_axis_guess(viewer, growth):
    movie, truth, _ = growth
    movie_layer = viewer.add_image(movie, name="growth", metadata={"axes": "TYX"})
    plain = viewer.add_labels(truth, name="plain")
    assert not first_axis_is_time(plain)
    assert guess_time_series(plain, [movie_layer])  # the movie it was made from says so
    assert first_axis_is_time(viewer.add_labels(truth, name="t", axis_labels=("t", "y", "x")))
    assert first_axis_is_time(viewer.add_labels(truth, name="s", units=("s", "nm", "nm")))
    assert not guess_time_series(viewer.add_labels(truth[0], name="2d"), [movie_layer])
    assert matching_image(plain, [movie_layer]) is movie_layer


def test_series_measure_track_growth_export(viewer, growth, tmp_path):
    movie, truth, info = growth
    cal = dict(scale=(1.0, PS, PS), units=("s", "angstrom", "angstrom"), axis_labels=("t", "y", "x"))
    viewer.add_image(movie, name="growth", **cal)
    crystals = viewer.add_labels(truth, name="crystals", **cal)
    model = ObjectsModel(viewer)
    features = model.measure(crystals)  # time series guessed from the layer's time axis
    assert model.time_series and set(features["frame"]) == set(range(5))
    with pytest.raises(ValueError, match="track first"):
        model.colour_by("area (Å²)")
    tracked = model.track(60.0, 1)
    assert [layer.name for layer in viewer.layers][-2:] == ["crystals tracks", "crystals tracked"]
    layer = viewer.layers["crystals tracked"]
    assert model.layer is layer and layer.features is tracked
    assert (tracked["label"] == tracked["track_id"]).all()
    for i in range(1, truth.max() + 1):  # each crystal keeps one label through time
        assert len(np.unique(layer.data[truth == i])) == 1
    rates = np.sort(model.tracked.rates["rate"].to_numpy())
    true = np.sort([np.polyfit(np.arange(5), a, 1)[0] for a in np.asarray(info["area_A2"]).T])
    np.testing.assert_allclose(rates, true, rtol=1e-6)  # Å²/s with 1 s per frame
    assert model.growth_units() == ("Å²", "s")
    # a track has one colour: its objects, its tail
    tracks = viewer.layers["crystals tracks"]
    assert tuple(tracks.scale) == (1, PS, PS)
    colours = track_colours(tracked["track_id"])
    first = tracks.data[:, 0] == 1
    np.testing.assert_allclose(tracks.track_colors[first][0], layer.colormap.map(np.array([1]))[0], atol=1e-6)
    assert len({colours[t] for t in range(1, 7)}) == 6
    # selecting a row goes to its frame
    model.select_row(len(tracked) - 1)
    assert viewer.dims.current_step[0] == tracked["frame"].iloc[-1]
    assert model.rows_of_label(2) == np.flatnonzero(tracked["track_id"] == 2).tolist()
    curves_path, rates_path = model.export_growth_csv(tmp_path / "growth.csv")
    curves = pd.read_csv(curves_path)
    assert curves.shape == (5, truth.max() + 1) and curves.columns[0] == "time (s)"
    assert "rate (Å²/s)" in pd.read_csv(rates_path)
    back = pd.read_csv(model.export_csv(tmp_path / "tracks.csv"))
    pd.testing.assert_frame_equal(back, tracked.drop(columns="index"), check_dtype=False)


def test_rows_of_label_in_an_untracked_series_are_of_the_frame_shown(viewer, growth):
    movie, truth, _ = growth
    crystals = viewer.add_labels(truth, name="crystals", axis_labels=("t", "y", "x"))
    model = ObjectsModel(viewer)
    features = model.measure(crystals)
    viewer.dims.set_point(0, 3)
    rows = model.rows_of_label(2)
    assert len(rows) == 1 and features["frame"].iloc[rows[0]] == 3


def test_model_follows_the_layer(measured, viewer):
    model, layer, _ = measured
    seen = []
    model.features_changed.connect(lambda: seen.append(1))
    layer.features = layer.features.assign(note=1.0)  # a script edits the features: the table follows
    assert seen and "note" in model.numeric_columns()
    picked = []
    model.label_selected.connect(picked.append)
    layer.selected_label = 7
    assert picked == [7]
    viewer.layers.remove(layer)
    assert model.features is None and model.layer is None


def test_names_without_repeats():
    assert result_name("crystals", "tracks") == "crystals tracks"
    assert result_name("crystals tracked", "tracks") == "crystals tracks"
    assert result_name("particles prediction", "objects") == "particles prediction objects"
    assert result_name("particles prediction objects", "objects") == "particles prediction objects"


def test_feature_names_round_trip(disks_and_rods):
    from napari_cryomat.core.measure import measure

    table = measure(disks_and_rods[0], pixel_size=PS)
    features = with_units(table, "Å")
    assert base_name("area (Å²)") == "area" and base_name("aspect_ratio") == "aspect_ratio"
    pd.testing.assert_frame_equal(core_names(features), table)


def test_compute_needs_integer_labels(viewer):
    layer = viewer.add_image(np.zeros((8, 8), np.float32))
    model = ObjectsModel(viewer)
    request = model.measure_request(layer)
    with pytest.raises(ValueError, match="integers"):
        compute_measure(request)


def test_both_linkers_give_the_true_tracks(viewer, growth):
    movie, truth, info = growth
    cal = dict(scale=(1.0, PS, PS), units=("s", "angstrom", "angstrom"), axis_labels=("t", "y", "x"))
    crystals = viewer.add_labels(truth, name="crystals", **cal)
    model = ObjectsModel(viewer)
    model.measure(crystals)
    with pytest.raises(ValueError, match="laptrack"):
        model.track_request(60.0, 1, "trackpy", merges_splits=True)
    by_method = {}
    for method, splits in (("trackpy", False), ("laptrack", True)):
        model.measure(crystals)
        tracked = model.track(60.0, 1, method, splits)
        assert model.tracked.request.method == method
        # each track is one true crystal over all frames
        pairs = {(int(r.frame), int(r.track_id)) for r in tracked.itertuples()}
        by_method[method] = pairs
        assert tracked["track_id"].nunique() == truth.max()
        if splits:
            assert "tree_id" in tracked
    assert by_method["trackpy"] == by_method["laptrack"]
