"""Apply the shifts of an aligned HAADF series to its EDS frames, in a real napari window, as a user would."""

import numpy as np
import pytest
from scipy import ndimage

from napari_cryomat.widgets.drift import DriftCorrectionWidget


def _series(n=10, size=64, channels=12, seed=0):
    """HAADF (T, Y, X) and EDS frames as napari shows them (T, E, Y, X), with the true shifts."""
    rng = np.random.default_rng(seed)
    shifts = np.cumsum(rng.normal(0, 0.5, (n, 2)), 0) + np.arange(n)[:, None] * np.array([1.0, -0.8])
    shifts -= shifts[0]
    yy, xx = np.mgrid[0:size, 0:size]
    texture = ndimage.gaussian_filter(rng.standard_normal((size, size)), 2.0)
    particle = np.exp(-((yy - 30) ** 2 + (xx - 34) ** 2) / (2 * 2.0**2))
    spectrum = np.exp(-((np.arange(channels) - 6) ** 2) / 4.0)
    haadf, eds = [], []
    for s in shifts:
        moved = ndimage.shift(particle, s, order=1, mode="grid-wrap")
        tex = ndimage.shift(texture, s, order=1, mode="grid-wrap")
        haadf.append(rng.poisson(30 * (1.0 + 0.3 * tex + moved)).astype(np.float32))
        eds.append(rng.poisson(3.0 * spectrum[:, None, None] * moved[None]).astype(np.float32))
    return np.stack(haadf), np.stack(eds), shifts


def spread(image):
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    w = image / image.sum()
    cy, cx = (w * yy).sum(), (w * xx).sum()
    return float(np.sqrt((w * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum()))


def test_shifts_from_haadf_make_the_eds_map_sharp_in_a_napari_window(make_napari_viewer, qtbot, messages):
    haadf, eds, truth = _series()
    viewer = make_napari_viewer()
    viewer.add_image(haadf, name="HAADF frames", scale=(1.0, 2.0, 2.0), units=("s", "angstrom", "angstrom"))
    viewer.add_image(eds, name="EDS frames", scale=(1.0, 10.0, 2.0, 2.0),
                     metadata={"spectrum_image": {"note": "kept on the result"}})
    _dock, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Drift correction")
    assert isinstance(w, DriftCorrectionWidget)
    w.params.layer_combo.setCurrentText("HAADF frames")
    assert not w.apply_panel.apply_button.isEnabled()  # nothing to apply before a run
    w.params.run_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=120000)
    assert w.runner.last_error is None
    assert w.apply_panel.apply_button.isEnabled()

    w.apply_panel.layers.setCurrentText("EDS frames")
    assert w.apply_panel.summed.isChecked()
    w.apply_panel.apply_button.click()
    qtbot.waitUntil(lambda: "EDS frames drift-corrected sum" in viewer.layers and w.idle, timeout=60000)
    out = viewer.layers["EDS frames drift-corrected sum"]
    assert out.data.shape == eds.shape[1:]  # (E, Y, X): frames summed
    assert tuple(out.scale) == pytest.approx((10.0, 2.0, 2.0))
    assert out.metadata["spectrum_image"] == {"note": "kept on the result"}
    assert out.data.sum() == pytest.approx(eds.sum(), rel=1e-5)  # counts conserved
    element_map = np.asarray(out.data).sum(0)
    plain = eds.sum(0).sum(0)
    assert spread(element_map) < 0.7 * spread(plain)  # sharp where the plain sum is smeared
    assert spread(element_map) < 3.3  # a 2 px Gaussian has 2.83
    assert not [m for m in messages if "rror" in str(m)]


def test_applying_to_a_stack_with_another_frame_count_says_so(make_napari_viewer, qtbot, messages):
    haadf, eds, _ = _series(n=8)
    viewer = make_napari_viewer()
    viewer.add_image(haadf, name="HAADF frames")
    viewer.add_image(eds[:5], name="short EDS")
    _dock, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Drift correction")
    w.params.layer_combo.setCurrentText("HAADF frames")
    w.params.run_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=120000)
    n_layers = len(viewer.layers)
    w.apply_panel.layers.setCurrentText("short EDS")
    w.apply_panel.apply_button.click()
    assert len(viewer.layers) == n_layers  # nothing written
    assert any("8 frames" in str(m) for m in messages)
