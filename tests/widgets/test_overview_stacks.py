"""Stacks of 4k frames (a movie, a tilt series) open as a per-frame binned overview (io/_pyramid.py), in a
real napari window as a user opens them: the canvas shows a coarse level at full view, stepping frames
shows that frame's area means, and the tools that take stacks (drift correction, tilt align, beam
damage) work on the file's full-resolution frames, never on a level napari shows."""

from dataclasses import replace

import mrcfile
import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_cryomat.core.synthetic.dose import beam_damage_series
from napari_cryomat.io._pyramid import OVERVIEW_MIN_SIDE
from napari_cryomat.widgets._base.layers import image_data
from napari_cryomat.widgets.beam_damage import BeamDamageWidget
from napari_cryomat.widgets.beam_damage._model import run_damage
from napari_cryomat.widgets.drift import DriftCorrectionWidget
from napari_cryomat.widgets.tilt import TiltSeriesWidget

pytestmark = pytest.mark.e2e

SIDE = 4096
TILT_SIDE = OVERVIEW_MIN_SIDE  # the smallest frames shown as an overview: tilt align's own work is 4x less than at 4k
MARGIN = 96  # the frames are windows of a larger specimen, shifted by up to MARGIN/2 pixels


def _write_stack(path, shown, voxel):
    """An image-stack MRC (space group 0, as cameras write movies) whose displayed frames (3dmod: file rows
    bottom-up) are ``shown``."""
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(np.ascontiguousarray(shown[:, ::-1]))
        m.set_image_stack()
        m.voxel_size = voxel
    return path


@pytest.fixture(scope="module")
def big_stack(tmp_path_factory):
    """Three 4096² frames of counts over a smooth specimen, frame k shifted by k times a known whole-pixel step;
    written as a movie (movie.mrc) and, cut to TILT_SIDE², as a tilt series with its angles (tilts.st, tilts.tlt)."""
    rng = np.random.default_rng(25)
    side = SIDE + 2 * MARGIN
    specimen = 30 + 400 * ndi.gaussian_filter(rng.normal(size=(side, side)).astype(np.float32), 4.0)
    # a steady drift (the drift tool fits a smooth trajectory): whole pixels per frame, up to 24 in y and x
    velocity = rng.integers(-MARGIN // 4, MARGIN // 4 + 1, size=2)
    shifts = np.arange(3)[:, None] * velocity
    frames = np.stack([rng.poisson(np.clip(specimen[MARGIN - sy: MARGIN - sy + SIDE, MARGIN - sx: MARGIN - sx + SIDE],
                                           0, None)).astype(np.float32) for sy, sx in shifts])
    folder = tmp_path_factory.mktemp("stacks")
    _write_stack(folder / "movie.mrc", frames, 1.0)
    _write_stack(folder / "tilts.st", frames[:, :TILT_SIDE, :TILT_SIDE], 1.0)
    (folder / "tilts.tlt").write_text("-10.0\n0.0\n10.0\n")
    return folder, frames, shifts


def _open_on_a_laptop(viewer, qtbot, path):
    viewer.window._qt_window.resize(1366, 740)
    [layer] = viewer.open(str(path), plugin="napari-cryomat")
    viewer.reset_view()
    qtbot.wait(200)
    return layer


def test_movie_shows_binned_frames_and_drift_takes_full_resolution(make_napari_viewer, qtbot, big_stack):
    folder, frames, shifts = big_stack
    viewer = make_napari_viewer(show=True)
    layer = _open_on_a_laptop(viewer, qtbot, folder / "movie.mrc")
    assert layer.multiscale and layer.data.shape == frames.shape
    assert layer.data_level >= 3  # a 4x bin or coarser on a laptop's canvas, not every 5th pixel
    level = layer.data_level
    factor = round(layer.downsample_factors[level][-1])  # shape ratios: 5.997 for the 6x level
    for k in (2, 1):  # the frame slider: napari shows that frame's area means
        viewer.dims.set_current_step(0, k)
        qtbot.wait(100)
        shown = np.asarray(layer._slice.image.raw)
        expected = frames[k, :factor * 8, :factor * 8].reshape(8, factor, 8, factor).mean(axis=(1, 3))
        np.testing.assert_allclose(shown[:8, :8], expected, rtol=1e-5)

    _dock, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Drift correction")
    assert isinstance(w, DriftCorrectionWidget)
    w.params.layer_combo.set_layer(layer)
    w.params.run_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=300_000)
    assert w.runner.last_error is None
    # whole-pixel shifts of up to 48 px, found on the 4096² frames (the 512² level would give an eighth)
    found = w.result.drift.shifts - w.result.drift.shifts[0]
    assert np.sqrt(((found - shifts) ** 2).sum(1).mean()) < 1.5
    # the results are shown as the source is: binned overviews of the full-resolution arrays
    aligned, total = viewer.layers["movie aligned"], viewer.layers["movie aligned sum"]
    assert aligned.multiscale and total.multiscale and aligned.data.shape == frames.shape
    np.testing.assert_allclose(np.asarray(image_data(total)), np.asarray(w.result.total), rtol=1e-6)
    qtbot.wait(200)
    assert total.data_level >= 3
    lo, hi = total.contrast_limits  # the overview's limits (sampled), those of the level on screen
    ref_lo, ref_hi = np.percentile(np.asarray(total.data[total.data_level]), [0.5, 99.5])
    assert abs(lo - ref_lo) < 0.15 * (ref_hi - ref_lo) and abs(hi - ref_hi) < 0.15 * (ref_hi - ref_lo)

    # the same shifts applied to a stack (here the movie itself), summed: an overview of the 4096² sum
    w.apply_panel.layers.setCurrentText("movie")
    w.apply_panel.apply_button.click()
    qtbot.waitUntil(lambda: "movie drift-corrected sum" in viewer.layers and w.idle, timeout=120_000)
    applied = viewer.layers["movie drift-corrected sum"]
    assert applied.multiscale and applied.data.shape == frames.shape[1:]
    assert np.asarray(image_data(applied)).sum() == pytest.approx(frames.sum(dtype=np.float64), rel=1e-3)


def test_tilt_align_takes_full_resolution(make_napari_viewer, qtbot, big_stack):
    folder, frames, _ = big_stack
    viewer = make_napari_viewer(show=True)
    layer = _open_on_a_laptop(viewer, qtbot, folder / "tilts.st")
    assert layer.multiscale and layer.data_level >= 1  # the canvas shows a binned level
    w = TiltSeriesWidget(viewer)
    viewer.window.add_dock_widget(w, name="Tilt series")
    w.source.layer_combo.set_layer(layer)
    assert "3 angles" in w.source.angles_label.text()  # read from tilts.tlt next to the stack
    w.align.axis.setValue(0.0)  # the microscope's tilt-axis angle is known
    w.align.align_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=300_000)
    assert w.runner.last_error is None, w.runner.last_error
    run = w.model.run
    assert np.shares_memory(run.request.tilts, image_data(layer))  # the memory map itself, no level
    assert tuple(run.alignment.shape) == (TILT_SIDE, TILT_SIDE)
    assert run.alignment.shifts.shape == (3, 2) and np.all(np.isfinite(run.alignment.shifts))


def test_beam_damage_takes_full_resolution(make_napari_viewer, qtbot, big_stack, tmp_path, messages):
    folder, _, _ = big_stack
    viewer = make_napari_viewer(show=True)
    movie = _open_on_a_laptop(viewer, qtbot, folder / "movie.mrc")
    _dock, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Beam damage")
    assert isinstance(w, BeamDamageWidget)
    w.layer_combo.set_layer(movie)
    w.run_button.click()  # three frames: too few, and the dock says so
    assert any("has 3 frames" in text for kind, text in messages if kind == "error")

    series = beam_damage_series((2048, 2048), 6, seed=4)
    dose_frames = series.frames.astype(np.float32)
    path = _write_stack(tmp_path / "dose.mrc", dose_frames, series.pixel_size)
    layer = viewer.open(str(path), plugin="napari-cryomat")[0]
    assert layer.multiscale
    w.layer_combo.set_layer(layer)
    w.dose_spin.setValue(series.dose_per_frame)
    w.run_button.click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=120_000)
    assert w.runner.last_error is None, w.runner.last_error
    result = w.result
    assert np.shares_memory(result.request.frames, image_data(layer))  # the memory map itself, no level
    # the same run on the generated frames themselves gives the same critical doses
    reference = run_damage(replace(result.request, frames=dose_frames))
    got = [s.fit.dc for s in result.series.shells if s.fit is not None]
    assert got and got == pytest.approx([s.fit.dc for s in reference.series.shells if s.fit is not None], rel=1e-6)
    fast = min(series.shells, key=lambda s: s.d_spacing)  # the 3 Å spots fade with Dc = 12 e/Å²
    found = min(result.series.shells, key=lambda s: abs(s.d_spacing - fast.d_spacing))
    assert found.fit.dc == pytest.approx(fast.critical_dose, rel=0.3)
