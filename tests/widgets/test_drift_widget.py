"""Drift correction widget driven as a user would: choose a stack, set values, Align, look at layers."""

import csv

import mrcfile
import numpy as np
import pytest

from napari_cryomat.core.synthetic.movie import drifting_movie
from napari_cryomat.widgets.drift import DriftCorrectionWidget


@pytest.fixture
def movie():
    return drifting_movie((96, 96), 8, counts_per_pixel=2.0, pixel_size=1.5, seed=3)


@pytest.fixture
def setup(make_napari_viewer, qtbot, movie):
    viewer = make_napari_viewer()
    layer = viewer.add_image(movie.frames, name="movie", scale=(1.0, 1.5, 1.5),
                             units=("pixel", "angstrom", "angstrom"))
    widget = DriftCorrectionWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, layer, widget


def run_and_wait(qtbot, widget):
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=60000)


def test_align_produces_layers_plots_and_correct_shifts(setup, qtbot, movie, tmp_path):
    viewer, layer, w = setup
    assert w.layer_combo.currentText() == "movie"
    assert w.pixel_size.value() == pytest.approx(1.5)  # read from the layer scale
    w.dose.setValue(1.0)
    w.bfactor.setValue(300)  # Å², i.e. the same filter in px as 133 at 1 Å/px
    run_and_wait(qtbot, w)
    assert w.runner.last_error is None
    names = [l.name for l in viewer.layers]
    for n in ("movie aligned", "movie aligned sum", "movie dose-weighted sum", "movie frames 0-7"):
        assert n in names
    aligned = viewer.layers["movie aligned"]
    assert aligned.data.shape == movie.frames.shape
    assert tuple(aligned.scale) == pytest.approx((1.0, 1.5, 1.5))
    assert str(aligned.units[-1]) == "angstrom"
    s = viewer.layers["movie aligned sum"]
    assert tuple(s.scale) == pytest.approx((1.5, 1.5))
    shifts = w.result["result"].shifts
    assert np.sqrt(((shifts - movie.shifts) ** 2).sum(1).mean()) < 0.45  # 96² px frames: few counts
    # plots got data: trajectory in Å, FRC curves
    items = w.traj_plot.getPlotItem().listDataItems()
    xd, yd = items[0].getData()
    assert np.allclose(xd, shifts[:, 1] * 1.5) and np.allclose(yd, shifts[:, 0] * 1.5)
    assert len(w.frc_plot.getPlotItem().listDataItems()) >= 2
    assert "FRC 0.143" in w.summary.text()

    # running sum: frames 2..4 updates at once
    w.range_start.setValue(2)
    w.range_stop.setValue(5)
    run = [l for l in viewer.layers if l.name == "movie frames 2-4"]
    assert run and np.allclose(run[0].data, aligned.data[2:5].sum(0), atol=1e-3)

    # before/after toggle
    w.show_aligned.setChecked(False)
    assert layer.visible and not aligned.visible
    w.show_aligned.setChecked(True)
    assert aligned.visible and not layer.visible

    # save: MRC with voxel size + CSV shifts
    mrc_path, csv_path = w.save(tmp_path / "al.mrc")
    with mrcfile.open(str(mrc_path)) as mrc:
        assert mrc.data.shape == movie.frames.shape
        assert float(mrc.voxel_size.x) == pytest.approx(1.5)
    # MRC rows are bottom-up: reopened through the plugin, the stack looks as it did on screen
    from napari_cryomat.io.mrc import read_mrc

    [(reopened, _, _)] = read_mrc(mrc_path)
    np.testing.assert_allclose(np.asarray(reopened), np.asarray(aligned.data), atol=1e-4)
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 8 and float(rows[3]["dx_A"]) == pytest.approx(1.5 * shifts[3, 1], abs=1e-3)
    # dy is along the file's rows (bottom-up): the opposite sign of the displayed shift
    assert float(rows[3]["dy_A"]) == pytest.approx(-1.5 * shifts[3, 0], abs=1e-3)


def test_2d_image_is_not_offered_and_bad_data_is_reported(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.float32), name="single image")
    w = DriftCorrectionWidget(viewer)
    assert w.layer_combo.count() == 0  # only (T, Y, X) stacks are offered
    n_before = len(viewer.layers)
    w.run()  # nothing to align: a notification, no exception, no layer
    assert len(viewer.layers) == n_before
    data = np.ones((4, 64, 64), np.float32)
    data[1, 3, 3] = np.nan
    orig = data.copy()
    viewer.add_image(data, name="nan stack")
    w.layer_combo.setCurrentText("nan stack")
    run_and_wait(qtbot, w)
    assert isinstance(w.runner.last_error, ValueError)
    assert "NaN" in str(w.runner.last_error)
    assert len(viewer.layers) == n_before + 1  # no result layers
    np.testing.assert_array_equal(viewer.layers["nan stack"].data, orig)  # data untouched


def test_cancel_leaves_viewer_untouched(setup, qtbot):
    viewer, layer, w = setup
    n_before = len(viewer.layers)
    w.patches.setCurrentText("2 × 2 patches")
    w.run_button.click()
    w.runner.cancel()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=60000)
    assert w.result is None
    assert len(viewer.layers) == n_before
    assert layer.visible


@pytest.mark.e2e
def test_e2e_sample_align_screenshot(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "movie")
    layer = viewer.layers[0]
    assert layer.data.ndim == 3 and "true_shifts_px" in layer.metadata
    w = DriftCorrectionWidget(viewer)
    viewer.window.add_dock_widget(w, name="Drift correction")
    assert w.dose.value() == pytest.approx(layer.metadata["dose_per_frame_e_per_A2"])
    run_and_wait(qtbot, w)
    assert w.runner.last_error is None
    truth = layer.metadata["true_shifts_px"]
    err = w.result["result"].shifts - truth
    assert np.abs(err).max() < layer.metadata["lattice_period_px"] / 2  # no unit-cell jump
    assert np.sqrt((err**2).sum(1).mean()) < 0.6
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 5  # the sums are drawn, not a blank canvas
