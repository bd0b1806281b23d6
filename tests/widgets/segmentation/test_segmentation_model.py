"""SegmentationModel without Qt (a napari ViewerModel): annotation, classes, jobs, clicks, autosave."""

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_cryomat.core.annotation import image_key, load_annotation, save_annotation
from napari_cryomat.core.measure import match_labels
from napari_cryomat.widgets._base import palette_colour
from napari_cryomat.widgets.segmentation import SegmentationModel
from napari_cryomat.widgets.segmentation._autosave import SESSION_ID
from napari_cryomat.widgets.segmentation._clicks import ClickOptions
from napari_cryomat.widgets.segmentation._model import ClassifierOptions, ParticleOptions, result_name

PS = 2.0


@pytest.fixture
def model(sample):
    viewer = ViewerModel()
    image = viewer.add_image(sample[0], name="particles", scale=(PS, PS), units=("angstrom", "angstrom"))
    m = SegmentationModel(viewer)
    m.set_image(image)
    yield m
    m.close()


def test_result_names_do_not_repeat():
    assert result_name("particles", "particles", "segmented") == "particles segmented"
    assert result_name("gold particle", "particles", "segmented") == "gold particle segmented"
    assert result_name("growth", "particles", "segmented") == "growth particles"
    assert result_name("particles", "prediction", "classes") == "particles prediction"


def test_class_table_edits_reach_the_annotation(model):
    layer = model.new_annotation()
    assert layer.name == "particles annotation" and layer.data.shape == model.image.data.shape
    assert tuple(layer.scale) == (PS, PS) and [str(u) for u in layer.units] == ["angstrom", "angstrom"]
    assert list(layer.features["class"]) == ["particle", "dendrite", "SEI", "void", "ice"]
    assert [c["colour"] for c in model.classes.rows] == [palette_colour(i) for i in range(1, 6)]
    model.classes.rename(0, "nanoparticle")
    added = model.classes.add()
    assert added == {"id": 6, "name": "class 6", "colour": palette_colour(6)}
    assert list(layer.features["class"])[0] == "nanoparticle" and layer.features["index"].iloc[-1] == 6
    assert layer.metadata["classes"][5]["id"] == 6  # what the autosave keeps
    np.testing.assert_allclose(layer.colormap.map(np.array([1]))[0][:3], [0xE6 / 255, 0x19 / 255, 0x4B / 255],
                               atol=1e-6)
    model.select_class(2)
    assert layer.selected_label == 3
    with pytest.raises(ValueError, match="Select the class"):
        model.classes.remove(17)


def test_annotation_of_another_shape_is_refused(model):
    model.set_annotation(model.viewer.add_labels(np.zeros((10, 10), np.uint8), name="wrong"))
    with pytest.raises(ValueError, match="shape.*New annotation"):
        model.training_job(ClassifierOptions())


def test_particles_layer_is_named_once_and_updated(model, sample):
    message = model.particles_job(ParticleOptions()).run()
    labels = model.viewer.layers["particles segmented"]
    assert message == f"{labels.data.max()} particles found."
    assert tuple(labels.scale) == (PS, PS)
    assert match_labels(labels.data, sample[1])["f1"] >= 0.9
    model.particles_job(ParticleOptions(split=False)).run()  # a second run updates the same layer
    assert [layer.name for layer in model.viewer.layers].count("particles segmented") == 1


def test_movie_is_segmented_frame_by_frame():
    from napari_cryomat.core.synthetic.particles import make_growth

    movie, truth, _ = make_growth(n_frames=3)
    viewer = ViewerModel()
    m = SegmentationModel(viewer)
    m.set_image(viewer.add_image(movie, name="growth", scale=(1, PS, PS), axis_labels=("t", "y", "x")))
    assert m.image_is_series()
    m.particles_job(ParticleOptions(series=True)).run()
    labels = viewer.layers["growth particles"].data
    for t in range(3):
        assert labels[t].max() == truth[t].max()  # labels restart in every frame
        assert match_labels(labels[t], truth[t])["f1"] == 1.0


def test_training_predicts_and_keeps_painting_on_the_annotation(model, sample):
    truth = sample[1]
    layer = model.new_annotation()
    rng = np.random.default_rng(0)
    for value, region in ((1, truth > 0), (4, truth == 0)):
        ys, xs = np.nonzero(region)
        pick = rng.choice(ys.size, 30, replace=False)
        layer.data[ys[pick], xs[pick]] = value
    statuses = []
    model.classifier_changed.connect(statuses.append)
    model.training_job(ClassifierOptions(n_estimators=15)).run()
    prediction = model.viewer.layers["particles prediction"]
    assert set(np.unique(prediction.data)) <= {1, 4}
    assert np.mean((prediction.data == 1) == (truth > 0)) > 0.9
    assert prediction.metadata["cryomat_role"] == "prediction" and prediction.opacity == 0.5
    assert model.viewer.layers.selection.active is layer
    assert statuses and statuses[0].startswith("trained on")
    prediction.opacity = 0.8  # the user's choice survives retraining
    model.training_job(ClassifierOptions(n_estimators=5)).run()
    assert prediction.opacity == 0.8


def click(model, point, mode="new", **options):
    """A click as the view makes it, computed here and now."""
    request = model.click(point, mode=mode, options=ClickOptions(**options))
    assert request is not None
    return model.paint_clicks(model.clicks.compute(model.clicks.unpainted()))


def test_click_segments_and_refines(model, sample, isolated):
    truth, info = sample[1], sample[2]
    layer = model.new_annotation()
    layer.selected_label = 1
    k = isolated
    cy, cx = info["center_px"][k]
    assert click(model, (cy, cx)) == []
    obj, true = layer.data == 1, truth == k + 1
    assert np.sum(obj & true) / np.sum(obj | true) > 0.7
    # a tolerance that is too loose floods; a Shift-click on the support cuts it back
    click(model, (cy, cx), tolerance=0.5)
    assert np.count_nonzero(layer.data == 1) > 2 * np.count_nonzero(true)
    background = np.argwhere(truth == 0)
    target = np.array([cy, cx + info["radius_A"][k] / PS + 10])
    bg = background[np.argmin(np.hypot(*(background - target).T))]
    click(model, bg, mode="background", tolerance=0.5)
    obj = layer.data == 1
    assert np.sum(obj & true) / np.sum(obj | true) > 0.6


def test_object_overtaken_by_the_next_click_is_still_painted(model, sample):
    info = sample[2]
    layer = model.new_annotation()
    first, second = info["center_px"][0], info["center_px"][1]
    model.click(first, mode="new", options=ClickOptions())
    layer.selected_label = 2
    model.click(second, mode="new", options=ClickOptions())  # before the first was computed
    batch = model.clicks.unpainted()
    assert len(batch) == 2
    model.paint_clicks(model.clicks.compute(batch))
    assert layer.data[tuple(np.round(first).astype(int))] == 1
    assert layer.data[tuple(np.round(second).astype(int))] == 2
    assert model.clicks.unpainted() == ()


def test_click_errors_are_messages(model):
    model.new_annotation()
    with pytest.raises(ValueError, match="weights"):
        model.click((20, 30), mode="new", options=ClickOptions(method="segment anything"))
    assert model.click((-5, 30), mode="new", options=ClickOptions()) is None  # outside: nothing
    model.click((20, 30), mode="new", options=ClickOptions(method="magic"))
    assert "magic" in model.paint_clicks(model.clicks.compute(model.clicks.unpainted()))[0]
    assert model.clicks.unpainted() == ()  # not tried again


def test_interpolation_between_slices():
    viewer = ViewerModel()
    m = SegmentationModel(viewer)
    m.set_image(viewer.add_image(np.zeros((9, 40, 40), np.float32), name="stack", scale=(3, 3, 3)))
    layer = m.new_annotation()
    yy, xx = np.mgrid[:40, :40]
    layer.data[0][np.hypot(yy - 20, xx - 20) < 5] = 2
    layer.data[8][np.hypot(yy - 20, xx - 20) < 13] = 2
    assert m.interpolation_job().run() is None
    r = np.sqrt(np.count_nonzero(layer.data[4] == 2) / np.pi)
    assert abs(r - 9) < 1.0
    assert "Nothing to interpolate" in m.interpolation_job().run()
    m.set_annotation(None)
    m.set_image(viewer.add_image(np.zeros((8, 8)), name="flat"))
    m.new_annotation()
    with pytest.raises(ValueError, match="2D"):
        m.interpolation_job()


# -- autosave -------------------------------------------------------------------------------------
def saved_labels(model):
    return load_annotation(model.autosave.folder, model.autosave.key)


def test_autosave_counts_edits_made_while_a_save_is_written(model):
    layer = model.new_annotation()
    autosave = model.autosave
    assert autosave.enabled and autosave.take_job() is None  # nothing to save before the first edit
    layer.data_setitem((np.array([10]), np.array([20])), 4)
    job = autosave.take_job()
    assert job is not None and autosave.take_job() is None  # one write at a time
    layer.data_setitem((np.array([11]), np.array([20])), 4)  # painted while the job is written
    path = autosave.write(job)
    autosave.saved(job, path)
    assert autosave.dirty and "saved" in autosave.status
    newer = autosave.take_job()
    assert autosave.write(newer) is not None
    assert autosave.write(job) is None  # a slow, older write never replaces a newer one
    autosave.saved(newer, path)
    assert not autosave.dirty
    saved = saved_labels(model)
    assert saved.labels[11, 20] == 4 and saved.metadata["session"] == SESSION_ID
    assert saved.classes[1]["name"] == "dendrite"


def test_switching_annotations_back_and_forth_keeps_saving(model):
    first = model.new_annotation()
    for i in range(5):
        first.data_setitem((np.array([i]), np.array([0])), 1)
    model.autosave.flush()
    second = model.new_annotation()  # the first is flushed and left
    model.set_annotation(first)  # ...and chosen again: a single new edit must still be saved
    first.data_setitem((np.array([9]), np.array([9])), 2)
    assert model.autosave.flush() is not None
    assert saved_labels(model).labels[9, 9] == 2
    assert second.metadata["cryomat_key"] != model.autosave.key


def test_removing_the_annotation_saves_it(model):
    layer = model.new_annotation()
    layer.data_setitem((np.array([30]), np.array([40])), 2)
    model.viewer.layers.remove(layer)
    assert model.annotation is None
    key = image_key(model.image.data, name="particles")
    assert load_annotation(model.autosave.folder_for(None), key).labels[30, 40] == 2


def test_restore_is_offered_and_announced_only_for_an_earlier_session(model, tmp_path):
    autosave = model.autosave
    folder = autosave.folder_for(None)
    key = image_key(model.image.data, name="particles")
    earlier = np.zeros(model.image.data.shape, np.uint8)
    earlier[5, 5] = 3
    save_annotation(folder, key, earlier, classes=[{"id": 3, "name": "SEI", "colour": "#ffe119"}],
                    metadata={"image": "particles", "session": "yesterday"})
    found = autosave.find(autosave.query(model.image))
    assert found.labels[5, 5] == 3
    message = autosave.offer(found)
    assert "autosaved annotation of 'particles'" in message
    assert autosave.offer(found) is None  # said once
    # this session's own autosave is restorable but not news
    notices = []
    autosave.notice.connect(notices.append)
    layer = model.new_annotation()
    layer.data_setitem((np.array([1]), np.array([1])), 1)
    autosave.flush()
    assert len(notices) == 1 and "earlier session" in notices[0]
    ours = autosave.find(autosave.query(model.image))
    assert ours.labels[1, 1] == 1 and autosave.offer(ours) is None
    assert autosave.restorable is ours
    # the earlier session's work was not overwritten by the new annotation: it was kept beside it
    assert autosave.kept_earlier is not None and autosave.kept_earlier.exists()
    restored = model.restore()
    assert restored.name == "particles annotation (restored)" and restored.data[1, 1] == 1


def test_restored_autosave_is_saved_in_place(model):
    autosave = model.autosave
    key = image_key(model.image.data, name="particles")
    save_annotation(autosave.folder_for(None), key, np.ones(model.image.data.shape, np.uint8),
                    metadata={"session": "yesterday"})
    autosave.offer(autosave.find(autosave.query(model.image)))
    layer = model.restore()
    assert model.annotation is layer and layer.metadata["cryomat_key"] == key
    layer.data_setitem((np.array([0]), np.array([0])), 2)
    autosave.flush()
    assert autosave.kept_earlier is None and load_annotation(autosave.folder, key).labels[0, 0] == 2


def test_two_annotations_of_one_image_never_share_a_file(model):
    keys = [model.new_annotation().metadata["cryomat_key"] for _ in range(3)]
    assert keys[0] == image_key(model.image.data, name="particles")  # the one offered back for restoring
    assert len(set(keys)) == 3


def test_unwritable_folder_stops_autosave_with_a_message(model, tmp_path):
    errors = []
    model.autosave.error.connect(errors.append)
    model.new_annotation()
    afile = tmp_path / "afile"
    afile.write_text("x")
    model.autosave.set_folder(str(afile / "sub"))
    assert errors and "Cannot write autosaves" in errors[0]
    assert not model.autosave.enabled and model.autosave.status.startswith("NOT SAVING")
    model.autosave.set_folder(str(tmp_path / "good"))  # a writable folder switches it back on
    assert model.autosave.enabled and str(tmp_path / "good") in model.autosave.status
