"""Track a drawn region in a real napari window: the drift of a particle that moves differently from the field."""

import numpy as np
from scipy import ndimage


def _stack(n=12, size=128, seed=5):
    rng = np.random.default_rng(seed)
    stage = np.arange(n)[:, None] * np.array([0.6, 0.3])
    feature = np.arange(n)[:, None] * np.array([-0.5, 0.8])
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), 2)
    particle = ndimage.gaussian_filter(rng.standard_normal((40, 40)), 1.5) * np.hanning(40)[:, None] * np.hanning(40)
    frames = []
    for s, f in zip(stage, feature):
        img = ndimage.shift(field, s, order=3, mode="grid-wrap")
        img[20:60, 20:60] = 0.0
        img[20:60, 20:60] += ndimage.shift(particle, s + f, order=3, mode="constant") * 4
        frames.append(rng.poisson(10 * np.clip(1 + 0.3 * img, 0.05, None)).astype(np.float32))
    return np.stack(frames), stage, stage + feature


def test_tracking_a_drawn_rectangle_follows_the_feature(make_napari_viewer, qtbot):
    frames, stage, particle = _stack()
    viewer = make_napari_viewer()
    viewer.add_image(frames, name="series", scale=(1.0, 2.0, 2.0), units=("s", "angstrom", "angstrom"))
    # the user draws a rectangle (world coordinates, Å) around the particle: rows/cols 14-66 px
    viewer.add_shapes([np.array([[28.0, 28.0], [28.0, 132.0], [132.0, 132.0], [132.0, 28.0]])], shape_type="rectangle",
                      name="particle box")
    _dock, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Drift correction")
    w.params.layer_combo.setCurrentText("series")
    w.params.track_region.setChecked(True)
    w.params.region_combo.setCurrentText("particle box")
    w.params.run_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=120000)
    assert w.runner.last_error is None
    assert w.result.request.params.roi == (14, 66, 14, 66)
    e = w.result.drift.shifts - particle
    assert np.sqrt((e**2).sum(1).mean()) < 0.6  # the particle's motion (the field's is up to 10 px away)
    assert viewer.layers["series aligned"].data.shape == frames.shape  # whole frames aligned with it
