"""Tilt series dock driven as a user would in a real napari window: align, drop tilts, preview,
reconstruct, Otsu mask, quantify; Cancel leaves the viewer as it was; angles from a .tlt file."""

import re

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_cryomat.core.synthetic.tilt import make_tilt_series
from napari_cryomat.widgets.tilt import ANGLES_KEY, TiltSeriesWidget


@pytest.fixture(scope="module")
def series():
    return make_tilt_series(shape=(24, 48, 48), n_tilts=31, max_shift=3.0, dose=50.0, pixel_size=4.0, seed=8)


@pytest.fixture
def setup(make_napari_viewer, series):
    viewer = make_napari_viewer()
    layer = viewer.add_image(series.tilts, name="tilts", scale=(1.0, 4.0, 4.0),
                             units=("pixel", "angstrom", "angstrom"), metadata={ANGLES_KEY: series.angles})
    widget = TiltSeriesWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Tilt series")
    return viewer, layer, widget


def wait(qtbot, widget, timeout=120_000):
    qtbot.waitUntil(lambda: widget.idle, timeout=timeout)
    assert widget.runner.last_error is None, widget.runner.last_error


def test_align_drop_reconstruct_quantify(setup, qtbot, series):
    viewer, layer, w = setup
    assert w.source.layer_combo.currentText() == "tilts"
    assert w.source.pixel_size.value() == pytest.approx(4.0)
    assert "31 angles" in w.source.angles_label.text()

    # the microscope's tilt-axis angle is known: the alignment keeps it and finds the shifts
    axis = round(series.tilt_axis_angle, 1)
    w.align.axis.setValue(axis)
    # each empty plot says which button fills it, in place of bare 0-1 axes
    notes = (w.align.plot.note, w.recon.wedge.note, w.quant.histogram.note)
    assert [n.text.split(":")[0] for n in notes if n.shown] == ["Press Align", "Press Preview or Reconstruct",
                                                                "Press Quantify"]
    assert w.align.tilt_list_note.shown  # the empty list of tilts says what fills it, too
    w.align.align_button.click()
    wait(qtbot, w)
    assert not w.align.plot.note.shown
    run = w.model.run
    assert run is not None and run.alignment.shifts.shape == (31, 2)
    assert run.request.tilt_axis_angle == pytest.approx(axis)
    assert run.alignment.tilt_axis_angle == pytest.approx(axis, abs=0.05)
    assert np.sqrt(((run.alignment.shifts - series.shifts) ** 2).sum(1).mean()) < 2.0  # px, of up to ±3·√2
    assert w.align.tilt_list.count() == 31 and w.align.plot.bars is not None
    assert not w.align.tilt_list_note.shown
    # residuals are drawn per tilt, at the tilt angles
    assert len(w.align.plot.bars.opts["x"]) == 31

    # the user unticks two tilts
    for row in (0, 30):
        w.align.tilt_list.item(row).setCheckState(Qt.Unchecked)
    assert int(w.model.kept.sum()) == 29

    w.recon.binning.setCurrentIndex(1)  # bin 2
    w.recon.preview_button.click()
    wait(qtbot, w)
    preview = viewer.layers["tilts WBP preview"]
    assert preview.data.shape == (24, 24, 24) and tuple(preview.scale) == pytest.approx((8.0,) * 3)
    assert len(preview.metadata["tilt_reconstruction"]["angles"]) == 29

    w.recon.binning.setCurrentIndex(0)
    w.recon.iterations.setValue(20)
    w.recon.thickness.setValue(24 * 4.0)
    w.recon.reconstruct_button.click()
    wait(qtbot, w)
    tomo = viewer.layers["tilts tomogram"]
    assert tomo.data.shape == (24, 48, 48) and tuple(tomo.scale) == pytest.approx((4.0,) * 3)
    assert tuple(str(u) for u in tomo.units) == ("angstrom",) * 3
    assert tomo.axis_labels == ("z", "y", "x") and viewer.dims.axis_labels == ("z", "y", "x")  # not "tilt"
    assert w.recon.wedge.image.image is not None and not w.recon.wedge.note.shown
    # the summary says how many SIRT iterations ran (the early stop may end before the 20 asked)
    ran = re.search(r"SIRT (\d+)( of 20)? it\.", w.recon.summary.text())
    assert ran and 1 <= int(ran.group(1)) <= 20 and (ran.group(2) is not None) == (int(ran.group(1)) < 20)
    assert w.quant.volume_combo.currentText() == "tilts tomogram"
    volume = tomo.data - tomo.data.mean()
    truth = series.volume - series.volume.mean()
    assert (volume * truth).sum() / np.sqrt((volume ** 2).sum() * (truth ** 2).sum()) > 0.3
    # the tomogram is offered to the browser (a 3D image layer calibrated in Å)
    from napari_cryomat.widgets.browser._model import browse_problem
    assert browse_problem(tomo) == ""

    w.quant.otsu_button.click()
    wait(qtbot, w)
    mask = viewer.layers["tilts tomogram mask"]
    assert mask.axis_labels == ("z", "y", "x")
    assert mask.data.shape == tomo.data.shape and 0 < mask.data.mean() < 0.6
    assert w.quant.mask_combo.currentText() == "tilts tomogram mask"
    w.quant.quantify_button.click()
    wait(qtbot, w)
    thick = viewer.layers["tilts tomogram mask local thickness"]
    assert tuple(thick.scale) == pytest.approx((4.0,) * 3)
    q = w.model.quantification
    assert q.porosity == pytest.approx(1 - (mask.data > 0).mean())
    assert 4.0 <= q.mean_thickness <= 24 * 4.0            # between one voxel and the slab
    assert q.fractions.sum() == pytest.approx(1.0)
    assert "local thickness" in w.quant.summary.text() and not w.quant.histogram.note.shown
    assert layer.data is series.tilts                       # the source was never touched


def test_align_adds_the_aligned_tilts_to_step_through(setup, qtbot, series):
    """After Align the user scrubs the aligned tilts (IMOD's .ali in 3dmod) before reconstructing."""
    viewer, layer, w = setup
    w.align.axis.setValue(round(series.tilt_axis_angle, 1))
    w.align.align_button.click()
    wait(qtbot, w)
    aligned = viewer.layers["tilts aligned"]
    alignment = w.model.run.alignment
    assert aligned.data.shape == (31, *alignment.aligned_shape) and aligned.visible
    assert viewer.layers.index(aligned) == viewer.layers.index(layer) + 1  # right above the raw series
    assert tuple(aligned.scale) == pytest.approx((1.0, 4.0, 4.0)) and tuple(aligned.units) == tuple(layer.units)
    # centred on the raw series
    centre = lambda lay: np.asarray(lay.translate[1:]) + (np.asarray(lay.data.shape[1:]) - 1) / 2 * 4.0  # noqa: E731
    np.testing.assert_allclose(centre(aligned), centre(layer), atol=4.0)
    # the plane napari draws at a slider step is that tilt, aligned
    expected = alignment.apply(series.tilts, order=1)
    for step in (0, 17, 30):
        viewer.dims.set_current_step(0, step)
        np.testing.assert_allclose(np.asarray(aligned._data_view), expected[step], rtol=1e-5, atol=1e-4)
    # aligned tilts agree with each other better than the raw ones (the shifts are gone): neighbours correlate more
    def neighbour_correlation(stack):
        a, b = stack[:-1].reshape(30, -1), stack[1:].reshape(30, -1)
        a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        return float(np.mean((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))))
    raw_centre = series.tilts[:, 8:40, 8:40]
    cy, cx = np.asarray(alignment.aligned_shape) // 2
    aligned_centre = np.asarray(aligned.data)[:, cy - 16:cy + 16, cx - 16:cx + 16]
    assert neighbour_correlation(aligned_centre) > neighbour_correlation(raw_centre)
    # a view of an alignment, not a series to align or reconstruct again
    assert "tilts aligned" not in [w.source.layer_combo.itemText(i) for i in range(w.source.layer_combo.count())]
    assert w.source.layer_combo.currentText() == "tilts"
    # aligned again: the layer is updated, not duplicated
    w.align.align_button.click()
    wait(qtbot, w)
    assert [lay.name for lay in viewer.layers].count("tilts aligned") == 1


def test_cancel_leaves_viewer_unchanged(setup, qtbot, messages):
    viewer, layer, w = setup
    names = [lyr.name for lyr in viewer.layers]
    w.recon.iterations.setValue(1000)
    w.recon.reconstruct_button.click()
    qtbot.waitUntil(lambda: w.runner.progress_bar.value() > 0, timeout=30_000)
    w.runner.cancel_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=60_000)
    assert [lyr.name for lyr in viewer.layers] == names
    assert w.model.reconstruction is None
    assert any("cancelled" in str(m) for m in messages["info"])


def test_angles_from_a_tlt_file_and_errors(setup, qtbot, tmp_path, messages, series):
    viewer, layer, w = setup
    layer.metadata.pop(ANGLES_KEY)
    w.source.layer_combo.refresh()
    w._layer_changed()
    assert w.angles is None and "No tilt angles" in w.source.angles_label.text()
    w.align.align_button.click()
    assert messages["error"] and "No tilt angles" in str(messages["error"][-1])
    tlt = tmp_path / "tilts.tlt"
    tlt.write_text("\n".join(f"{a:.2f}" for a in series.angles[:-1]))
    w.load_angles(tlt)
    assert "30 angles" in w.source.angles_label.text()
    w.align.align_button.click()                            # 30 angles for 31 tilts: refused before any work
    assert w.idle and "31 tilts but 30 angles" in str(messages["error"][-1])
    tlt.write_text("\n".join(f"{a:.2f}" for a in series.angles))
    w.load_angles(tlt)
    assert "31 angles" in w.source.angles_label.text()
    w.quant.quantify_button.click()
    assert "Choose the structure" in str(messages["error"][-1])


def test_gui_thread_stays_free_on_the_sample(make_napari_viewer, qtbot, gui_watch):
    """Reconstruct the 128² x 41 sample and quantify a 64 x 128 x 128 mask: the GUI thread only
    gathers parameters and adds layers (CPU time between event-loop turns well under a second)."""
    from napari_cryomat.sample_data.tilt import tilt_series_sample

    viewer = make_napari_viewer(show=False)
    [(data, kwargs, _)] = tilt_series_sample()
    viewer.add_image(data, **kwargs)
    w = TiltSeriesWidget(viewer)
    w.recon.iterations.setValue(10)
    w.recon.thickness.setValue(64 * 5.0)
    with gui_watch as watch:
        w.recon.reconstruct_button.click()
        wait(qtbot, w)
        w.quant.otsu_button.click()
        wait(qtbot, w)
        w.quant.quantify_button.click()
        wait(qtbot, w)
    assert viewer.layers["tilt series tomogram"].data.shape == (64, 128, 128)
    assert "tilt series tomogram mask local thickness" in viewer.layers
    assert watch.longest < 0.5, f"GUI thread busy for {watch.longest:.2f} s"


def test_align_on_gold_beads(make_napari_viewer, qtbot):
    """Gold beads chosen in the Align section: shifts and the tilt axis (not given) come back from the
    bead model, the residual plot is in pixels, and the fitted beads are drawn over the series."""
    from napari_cryomat.core.fiducials import _remove_gauge
    from napari_cryomat.core.synthetic.beads import bead_tilt_series

    tilts, truth = bead_tilt_series((128, 128), np.arange(-60.0, 61.0, 4.0), n_beads=10, bead_diameter_px=6.0,
                                    tilt_axis_angle=-35.0, max_shift=10.0, dose=30.0, seed=21)
    viewer = make_napari_viewer()
    viewer.add_image(tilts, name="beads series", scale=(1.0, 5.0, 5.0), metadata={ANGLES_KEY: truth["angles"]})
    w = TiltSeriesWidget(viewer)
    viewer.window.add_dock_widget(w, name="Tilt series")
    assert not w.align.bead_diameter.isEnabled()
    w.align.method.setCurrentIndex(w.align.method.findData("beads"))
    assert w.align.bead_diameter.isEnabled() and not w.align.refine_axis.isEnabled()
    w.align.bead_diameter.setValue(30.0)  # 6 px of 5 Å
    w.align.align_button.click()
    wait(qtbot, w)
    run = w.model.run
    assert run.beads is not None and run.request.bead_diameter == pytest.approx(30.0)
    ref, _ = _remove_gauge(truth["shifts"], truth["beads"], np.deg2rad(truth["angles"]), -35.0)
    assert np.sqrt(np.mean((run.alignment.shifts - ref) ** 2)) < 0.3
    assert abs(run.alignment.tilt_axis_angle + 35.0) < 0.3
    assert "beads, mean residual" in w.align.summary.text()
    assert w.align.plot.widget.getAxis("left").labelText == "residual (px)"
    points = viewer.layers["beads series beads"]
    assert points.data.shape[1] == 3 and len(points.data) >= 0.6 * 10 * len(truth["angles"])
    assert tuple(points.scale) == (1.0, 5.0, 5.0)
    # aligned again without beads: the bead model no longer describes the alignment and goes
    w.align.method.setCurrentIndex(w.align.method.findData(None))
    w.align.align_button.click()
    wait(qtbot, w)
    assert w.model.run.beads is None and "beads series beads" not in viewer.layers


def test_tilts_without_shared_contrast_are_refused_with_the_docks_way_out(make_napari_viewer, qtbot, messages):
    """Tilts of pure shot noise share nothing to align on: fiducial-free alignment refuses (shifts beyond
    half the field) and the message names the dock's Gold beads method, not a Python function; nothing is
    added and no alignment is kept."""
    rng = np.random.default_rng(0)
    angles = np.linspace(-60.0, 60.0, 41)
    viewer = make_napari_viewer()
    viewer.add_image(rng.poisson(2.0, (41, 96, 96)).astype(np.float32), name="noise",
                     metadata={ANGLES_KEY: angles})
    w = TiltSeriesWidget(viewer)
    viewer.window.add_dock_widget(w, name="Tilt series")
    w.align.align_button.click()
    qtbot.waitUntil(lambda: w.idle, timeout=120_000)
    text = str(w.runner.last_error)
    assert "beyond half the" in text and "Method 'Gold beads'" in text and "track_beads" not in text
    assert [layer.name for layer in viewer.layers] == ["noise"] and w.model.run is None


def test_a_blind_axis_search_stopped_at_its_reach_is_shown_as_a_warning(make_napari_viewer, qtbot, messages,
                                                                        monkeypatch):
    """The blind tilt axis is searched within a reach (25°) of the coarse scan's estimate; when the estimate
    is beyond it (session 11's seed 193 started 70° off), the likelihood is still rising where the search
    stops and the core warns (TiltAxisWarning). The dock keeps the alignment (no error, nothing blocked)
    and shows the warning's advice in the dock's own words, as a notification and under Align. Cheap case:
    a 128² series at 2 counts/px whose coarse scan is made to start 8° off, with the reach cut to 3°."""
    from napari_cryomat.core import _tilt_axis, _tilt_scan

    alpha = 20.0
    s = make_tilt_series(shape=(64, 128, 128), n_tilts=31, max_shift=3.0, dose=2.0, tilt_axis_angle=alpha, seed=3)
    monkeypatch.setattr(_tilt_scan, "scan_axis_candidates", lambda *a, **k: [alpha + 8.0])
    monkeypatch.setattr(_tilt_axis, "MAX_OFFSET", 3.0)
    viewer = make_napari_viewer()
    viewer.add_image(s.tilts, name="far start", metadata={ANGLES_KEY: s.angles})
    w = TiltSeriesWidget(viewer)
    viewer.window.add_dock_widget(w, name="Tilt series")
    assert w.align.axis.text() == "auto"                    # the user leaves the axis to the data
    w.align.align_button.click()
    wait(qtbot, w)
    assert w.model.run is not None and not messages["error"]
    [note] = messages["warning"]
    assert "stopped at its reach, 3° from" in note and "Set 'Tilt axis' in the Align section" in note
    assert "tilt_axis_angle" not in note                    # the dock's control, not the Python parameter
    assert note in w.align.summary.text()


def test_a_spectrum_image_is_offered_neither_as_tilt_series_nor_as_volume(setup):
    # an EELS SI is (E, Y, X) like a tilt series or a volume, but its first axis is energy: aligning or
    # quantifying it would answer nonsense in degrees and Å
    viewer, layer, w = setup
    viewer.add_image(np.ones((64, 48, 48), np.float32), name="EELS SI",
                     metadata={"spectrum_image": {"signal": "EELS",
                                                  "energy_axis": {"size": 64, "scale": 1.0, "offset": 0.0}}})
    for combo in (w.source.layer_combo, w.quant.volume_combo):
        combo.refresh()
        assert "EELS SI" not in [combo.itemText(i) for i in range(combo.count())]
    assert w.source.layer_combo.currentText() == "tilts"
