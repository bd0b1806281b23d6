"""A big micrograph opens as a multiscale overview (io/_pyramid.py). The tools take its full-resolution
pixels, never napari's smallest level (segmentation, measurement, click segment), and the window shows
a binned overview at full view and the file's own pixels once zoomed in."""

from types import SimpleNamespace

import mrcfile
import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_cryomat.core.measure import match_labels
from napari_cryomat.core.synthetic.particles import make_particles
from napari_cryomat.widgets._base.layers import image_data
from napari_cryomat.widgets.objects import ObjectTableWidget
from napari_cryomat.widgets.segmentation import SegmentationWidget

PS = 2.0


def _write_mrc(path, shown, voxel):
    """An MRC whose displayed image (3dmod: file rows bottom-up) is ``shown``."""
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(np.ascontiguousarray(shown[::-1]))
        m.voxel_size = voxel
    return path


@pytest.fixture(scope="module")
def micrograph(tmp_path_factory):
    image, truth, _ = make_particles(shape=(2048, 2080), pixel_size=PS, n_particles=120, seed=7)
    return _write_mrc(tmp_path_factory.mktemp("big") / "big.mrc", image, PS), image, truth


def test_segment_and_measure_take_the_full_resolution(make_napari_viewer, qtbot, micrograph):
    path, image, truth = micrograph
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="napari-cryomat")
    assert layer.multiscale and len(layer.data) >= 3
    np.testing.assert_array_equal(np.asarray(image_data(layer)), image)

    seg = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(seg)
    seg.particles_panel.segment_button.click()
    qtbot.waitUntil(lambda: seg.idle, timeout=180000)
    labels = viewer.layers["big particles"]
    assert labels.data.shape == image.shape  # the overview's smallest level is 512 x 520
    assert match_labels(labels.data, truth)["f1"] >= 0.9

    objects = ObjectTableWidget(viewer)
    viewer.window.add_dock_widget(objects)
    panel = objects.measure_panel
    panel.labels_combo.set_layer(labels)
    panel.intensity_check.setChecked(True)
    panel.image_combo.set_layer(layer)
    panel.measure_button.click()
    qtbot.waitUntil(lambda: not objects.runner.busy, timeout=60000)
    table = objects.model.features
    assert len(table) == int(labels.data.max())
    expected = ndi.mean(image.astype(np.float64), labels.data, table["label"].to_numpy())
    np.testing.assert_allclose(table["mean_intensity"].to_numpy(), expected, rtol=1e-5)


def test_click_segment_reads_the_full_resolution(make_napari_viewer, qtbot, micrograph):
    path, image, truth = micrograph
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-cryomat")
    seg = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(seg)
    seg.new_button.click()
    annotation = viewer.layers["big annotation"]
    annotation.selected_label = 1
    seg.tools_panel.click_check.setChecked(True)
    # the biggest particle that touches no other (a flood cannot tell touching twins apart)
    sizes = np.bincount(truth.ravel())
    alone = [k for k in np.argsort(sizes[1:])[::-1] + 1
             if not np.any(truth[ndi.binary_dilation(truth == k, iterations=3) & (truth != k)] > 0)]
    k = alone[0]
    cy, cx = ndi.center_of_mass(truth == k)
    seg.tools_panel._mouse_click(viewer, SimpleNamespace(type="mouse_press", position=(cy * PS, cx * PS),
                                                        modifiers=()))
    qtbot.waitUntil(lambda: np.any(annotation.data == 1), timeout=20000)
    qtbot.waitUntil(lambda: seg.idle, timeout=20000)
    painted = annotation.data == 1
    iou = np.sum(painted & (truth == k)) / np.sum(painted | (truth == k))
    assert iou > 0.7  # an overview level's mask, scaled back, would be off by its bins


def test_window_shows_a_binned_overview_then_the_pixels(make_napari_viewer, qtbot, tmp_path):
    """Pure counting noise: at full view the canvas shows area means (noise down by the bin factor), not
    every fifth pixel; zoomed in, napari shows level 0, the file's own pixels."""
    rng = np.random.default_rng(12)
    counts = rng.poisson(100.0, size=(3000, 2900)).astype(np.uint16)
    path = _write_mrc(tmp_path / "noise.mrc", counts, 1.0)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 740)  # a laptop's window
    [layer] = viewer.open(str(path), plugin="napari-cryomat")
    plain = viewer.add_image(counts, name="strided", visible=False)
    window = (100 - 6 * 10.0, 100 + 6 * 10.0)  # +-6 pixel deviations: nothing saturates
    layer.contrast_limits = plain.contrast_limits = window
    viewer.reset_view()
    qtbot.wait(300)
    assert layer.data_level >= 3  # a 4x bin or coarser on a laptop's canvas
    factor = layer.downsample_factors[layer.data_level][-1]

    def canvas_spread():
        shot = viewer.screenshot(canvas_only=True, flash=False)[..., 0].astype(float)
        h, w = shot.shape
        return shot[h // 3: 2 * h // 3, w // 3: 2 * w // 3].std()  # the middle of the image

    overview = canvas_spread()
    layer.visible, plain.visible = False, True
    qtbot.wait(100)
    strided = canvas_spread()
    # strided pixels keep the pixels' spread; the area means have 1/factor of it (within 40 %)
    assert overview < 1.4 * strided / factor and strided > 3 * overview

    layer.visible, plain.visible = True, False
    viewer.camera.center = (1500, 1450)
    viewer.camera.zoom = 4.0  # four screen pixels per image pixel
    qtbot.wait(300)
    assert layer.data_level == 0


def test_denoised_big_micrograph_is_shown_as_an_overview_too(make_napari_viewer, qtbot, micrograph):
    """Denoise of a big micrograph (opened as an overview) writes a result shown the same way: binned levels of
    the full-resolution denoised image, not its aliased pixels."""
    from napari_cryomat.widgets.denoise import DenoiseWidget

    path, image, _ = micrograph
    viewer = make_napari_viewer(show=True)
    [layer] = viewer.open(str(path), plugin="napari-cryomat")
    w = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(w)
    qtbot.waitUntil(lambda: w.idle, timeout=120000)
    w.method.setCurrentIndex(w.method.findData("gaussian"))
    w.manual_strength.setChecked(True)
    w.strength.setValue(1.5)
    qtbot.waitUntil(lambda: w.idle, timeout=120000)
    w.apply_button.click()
    qtbot.waitUntil(lambda: w.idle and "big denoised" in viewer.layers, timeout=120000)
    out = viewer.layers["big denoised"]
    assert out.multiscale and out.data.shape == image.shape
    np.testing.assert_allclose(np.asarray(image_data(out)), np.asarray(w.model.result.image), rtol=1e-6)
