"""The whole workflow in a real window: open the sample, paint scribbles, train, predict (the
Segmentation tool, through its public API), measure the predicted particles, classify, export CSV,
and look at the screen."""

import numpy as np
import pandas as pd
import pytest

from napari_cryomat.widgets.objects import ObjectTableWidget

PS = 2.0
pytestmark = pytest.mark.e2e


def test_e2e_scribbles_to_csv(make_napari_viewer, qtbot, tmp_path):
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
    qtbot.waitUntil(lambda: seg.idle, timeout=120000)
    predictions = [layer for layer in viewer.layers if layer.metadata.get("cryomat_role") == "prediction"]
    assert len(predictions) == 1
    prediction = predictions[0]
    assert np.mean((prediction.data == 1) == (truth > 0)) > 0.95
    panel = table.measure_panel
    panel.labels_combo.set_layer(prediction)
    assert panel.image_combo.currentText() == "particles"  # the image the prediction was made on
    assert panel.classes_check.isChecked()  # a prediction holds classes: objects are its regions
    panel.measure_button.click()
    qtbot.waitUntil(lambda: not table.runner.busy, timeout=60000)
    features = table.model.features
    particles = features[features["class"] == 1]
    assert len(particles) >= 0.5 * truth.max()  # touching ones merge without a split step
    assert f"{prediction.name} objects" in viewer.layers
    assert "mean_intensity" in features and "area (Å²)" in features
    table.classes_panel.n_classes_spin.setValue(2)
    table.classes_panel.classify_button.click()
    qtbot.waitUntil(lambda: not table.runner.busy, timeout=60000)
    assert "shape_class" in table.model.features
    path = table.export_panel.export_csv(str(tmp_path / "particles.csv"))
    assert len(pd.read_csv(path)) == len(table.model.features)
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 5
