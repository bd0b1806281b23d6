"""A (T, Z, Y, X) time series of volumes in the Drift correction dock of a real napari window, driven as a
user would: (dz, dy, dx) found, the aligned series written with the layer's scale, plot and table filled,
lazy input kept lazy, Cancel and unsupported settings leave the viewer alone."""

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

from napari_cryomat.widgets.drift import DriftCorrectionWidget
from napari_cryomat.widgets.drift._volume import VolumeRun

SCALE = (2.0, 3.0, 1.5, 1.5)  # s, Å (anisotropic voxels: z twice y and x)
UNITS = ("s", "angstrom", "angstrom", "angstrom")


def _series(seed, n=6, shape=(32, 40, 36), counts=5.0):
    """Volumes of one smooth random specimen moved by a seeded random walk plus a drift, Poisson counts."""
    rng = np.random.default_rng(seed)
    specimen = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    specimen /= specimen.std()
    velocity = rng.uniform(-0.6, 0.6, 3)
    truth = np.cumsum(rng.normal(0, 0.3, (n, 3)), 0) + np.arange(n)[:, None] * velocity
    truth -= truth[0]
    volumes = [rng.poisson(counts * np.clip(1 + 0.5 * ndimage.shift(specimen, s, order=3, mode="grid-wrap"),
                                            0.05, None)) for s in truth]
    return np.stack(volumes).astype(np.float32), truth, specimen


def _dock(viewer) -> DriftCorrectionWidget:
    _dock_widget, widget = viewer.window.add_plugin_dock_widget("napari-cryomat", "Drift correction")
    assert isinstance(widget, DriftCorrectionWidget)
    return widget


def _correlation(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.mark.parametrize("seed", [11, 12])
def test_series_of_volumes_aligned_in_3d(make_napari_viewer, qtbot, messages, seed):
    volumes, truth, specimen = _series(seed)
    viewer = make_napari_viewer()
    viewer.add_image(volumes, name="in situ", scale=SCALE, units=UNITS)
    w = _dock(viewer)
    w.params.layer_combo.setCurrentText("in situ")
    assert w.params.pixel_size.value() == pytest.approx(1.5)  # x voxel size from the layer
    n_before = len(viewer.layers)
    w.params.run_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=120000)
    assert w.runner.last_error is None and not [m for m in messages if "rror" in str(m)]

    run = w.result
    assert isinstance(run, VolumeRun)
    error = run.shifts - truth  # voxels, (dz, dy, dx)
    assert np.sqrt((error**2).sum(1).mean()) < 0.25, np.round(np.c_[truth, run.shifts], 2)
    assert np.abs(truth[1:]).max() > 1.0  # the series really moved
    # one new layer: the aligned series, with the source's scale and units; the source hidden
    assert [layer.name for layer in viewer.layers][n_before:] == ["in situ aligned"]
    aligned = viewer.layers["in situ aligned"]
    assert aligned.data.shape == volumes.shape
    assert tuple(aligned.scale) == pytest.approx(SCALE)
    assert tuple(aligned.units) == tuple(viewer.layers["in situ"].units)  # s, Å, Å, Å as napari spells them
    assert not viewer.layers["in situ"].visible
    data = np.asarray(aligned.data)
    np.testing.assert_allclose(data.sum(axis=(1, 2, 3)), volumes.sum(axis=(1, 2, 3)), rtol=1e-5)  # counts kept
    moved = int(np.argmax(np.abs(truth).sum(1)))
    assert _correlation(data[moved], specimen) > _correlation(volumes[moved], specimen) + 0.05
    assert _correlation(data[moved], data[0]) > _correlation(volumes[moved], volumes[0]) + 0.05

    # the plot shows dz, dy, dx in Å against the frame, the table lists them
    plots = w.results.plots
    curves = plots.traj_plot.getPlotItem().listDataItems()
    assert len(curves) == 3
    np.testing.assert_allclose(curves[0].yData, run.shifts[:, 0] * SCALE[1])  # dz in Å (3 Å voxels in z)
    assert plots.table.rowCount() == len(volumes) and plots.table.columnCount() == 4
    last = [float(plots.table.item(len(volumes) - 1, j).text()) for j in (1, 2, 3)]
    np.testing.assert_allclose(last, run.shifts[-1] * np.array(SCALE[1:]), atol=0.006)
    assert not plots.tabs.isTabEnabled(2)  # FRC: (T, Y, X) stacks only
    assert not w.results.save_button.isEnabled() and not w.results.range_start.isEnabled()
    w.params.advanced.set_expanded(True)
    w.apply_panel.set_expanded(True)
    assert w.sizeHint().width() <= 420 and w.minimumSizeHint().width() <= 420  # fits beside a 1366 px canvas
    w.results.show_aligned.setChecked(False)  # before: the source alone
    assert viewer.layers["in situ"].visible and not aligned.visible
    w.results.show_aligned.setChecked(True)


def test_lazy_series_stays_lazy_and_another_series_gets_the_shifts(make_napari_viewer, qtbot, messages):
    volumes, truth, _specimen = _series(13)
    viewer = make_napari_viewer()
    viewer.add_image(da.from_array(volumes, chunks=(1, -1, -1, -1)), name="lazy", scale=SCALE, units=UNITS)
    second = np.random.default_rng(1).poisson(volumes).astype(np.float32)  # a second channel of the same scan
    viewer.add_image(second, name="channel 2", scale=SCALE, units=UNITS)
    w = _dock(viewer)
    w.params.layer_combo.setCurrentText("lazy")
    w.params.run_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=120000)
    assert w.runner.last_error is None
    aligned = viewer.layers["lazy aligned"].data
    assert hasattr(aligned, "compute") and aligned.shape == volumes.shape  # lazy where the core is lazy
    assert np.sqrt(((w.result.shifts - truth) ** 2).sum(1).mean()) < 0.3

    w.apply_panel.layers.setCurrentText("channel 2")
    w.apply_panel.apply_button.click()
    qtbot.waitUntil(lambda: "channel 2 drift-corrected sum" in viewer.layers and w.idle, timeout=60000)
    out = viewer.layers["channel 2 drift-corrected sum"]
    assert out.data.shape == volumes.shape[1:]  # (Z, Y, X): the aligned volumes summed
    assert tuple(out.scale) == pytest.approx(SCALE[1:])
    assert float(np.sum(out.data)) == pytest.approx(float(second.sum()), rel=1e-5)
    assert not [m for m in messages if "rror" in str(m)]


def test_cancel_and_unsupported_settings_leave_the_viewer_alone(make_napari_viewer, qtbot, messages):
    volumes, _truth, _specimen = _series(14)
    viewer = make_napari_viewer()
    viewer.add_image(volumes, name="in situ", scale=SCALE, units=UNITS)
    w = _dock(viewer)
    w.params.layer_combo.setCurrentText("in situ")
    n_layers = len(viewer.layers)

    w.params.patches.setCurrentText("2 × 2 patches")  # local motion: (T, Y, X) only
    w.params.run_button.click()
    assert not w.runner.busy and any("Global only" in str(m) for m in messages)
    assert len(viewer.layers) == n_layers and w.result is None

    w.params.patches.setCurrentText("Global only")
    w.params.run_button.click()
    assert w.runner.busy
    w.runner.cancel_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=120000)
    assert w.result is None and len(viewer.layers) == n_layers
    assert viewer.layers["in situ"].visible
