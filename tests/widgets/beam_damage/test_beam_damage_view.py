"""Beam damage widget driven as a user would: open the sample, Run, read the plots, export."""

import csv

import numpy as np
import pytest

from napari_cryomat.sample_data.dose import dose_series_sample
from napari_cryomat.widgets.beam_damage import BeamDamageWidget

pytestmark = pytest.mark.e2e


@pytest.fixture
def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    data, kwargs, _ = dose_series_sample()[0]
    layer = viewer.add_image(data[:24, 64:320, 64:320], **kwargs)  # the grain, 24 frames: a quick run
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-cryomat", "Beam damage")
    assert isinstance(widget, BeamDamageWidget)
    return viewer, layer, widget


def test_run_shows_critical_doses_plots_and_exports(setup, qtbot, tmp_path, messages):
    viewer, layer, w = setup
    assert w.layer_combo.currentText() == "dose series"
    assert w.dose_spin.value() == pytest.approx(2.0)  # read from the layer's metadata
    assert w.pixel_label.text().startswith("1 Å")
    w.budget_spin.setValue(4.0)
    # before a run each plot says what it will show, not bare 0-1 axes
    assert all(note.shown and note.text.startswith("Press Run") for note in w.plots.notes.values())
    n_layers = len(viewer.layers)
    w.run_button.click()
    qtbot.waitUntil(lambda: w.result is not None and not w.runner.busy, timeout=60000)
    assert not any(note.shown for note in w.plots.notes.values())
    assert len(viewer.layers) == n_layers  # the tool measures; it changes no layer
    truth = layer.metadata["true_critical_dose_e_per_A2"]
    shells = w.result.series.shells
    assert len(shells) == 2
    for shell in shells:
        expected = min(truth.items(), key=lambda kv: abs(float(kv[0].split()[0]) - shell.d_spacing))[1]
        assert shell.fit.dc == pytest.approx(expected, rel=0.25)
    text = w.summary.text()
    assert "Dc =" in text and "e/Å²" in text and "4 Å — FRC 0.5: " in text
    from napari_cryomat.core.dose import dose_budget

    assert w.result.budgets == {c: dose_budget(w.result.series, 4.0, criterion=c) for c in w.result.budgets}
    assert len(w.plots.resolution_plot.getPlotItem().listDataItems()) == 3
    assert len(w.plots.bragg_plot.getPlotItem().listDataItems()) == 4  # points and fit per shell
    # the legends stand under the plots, naming each curve: inside, the resolution legend covered the last points
    for plot in (w.plots.resolution_plot, w.plots.bragg_plot):
        assert plot.getPlotItem().legend is None
    assert all(c in w.plots.legends["resolution"].text() for c in ("FRC 0.5", "FRC 0.143", "FRPR 45°"))
    assert all(f"{shell.d_spacing:.2f} Å" in w.plots.legends["bragg"].text() for shell in shells)

    table = w.export_table(tmp_path / "damage.csv")
    rows = [r for r in csv.reader(open(table, encoding="utf-8")) if r and not r[0].startswith("#")]
    assert rows[0][0] == "dose_e_per_A2" and len(rows) == 1 + len(w.result.series.dose)
    assert np.allclose([float(r[0]) for r in rows[1:]], w.result.series.dose)
    figure = w.export_figure(tmp_path / "damage.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20000


def test_unknown_dose_counts_frames_and_bad_choice_is_a_message(setup, qtbot, messages):
    viewer, layer, w = setup
    w.dose_spin.setValue(0.0)
    w.points_spin.setValue(1000)
    w.run_button.click()
    assert any("Frames per point" in m for m in messages["error"]) and w.result is None
    w.points_spin.setValue(4)
    w.run_button.click()
    qtbot.waitUntil(lambda: w.result is not None and not w.runner.busy, timeout=60000)
    assert w.result.series.dose_unit == "frame"
    assert "Dose per frame unknown" in w.summary.text()


def test_cancel_leaves_nothing(setup, qtbot, messages):
    viewer, layer, w = setup
    w.run_button.click()
    w.runner.cancel()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=60000)
    assert w.result is None or w.runner.last_error is None  # cancelled before the end, or it had finished
    assert [l.name for l in viewer.layers] == ["dose series"]


def test_series_without_bragg_spots_says_so_in_the_bragg_plot(make_napari_viewer, qtbot, messages):
    # an amorphous film: blurred shot noise, no lattice anywhere; the run still measures resolution and FRC
    from scipy import ndimage

    from napari_cryomat.widgets.beam_damage._plots import NO_BRAGG_SPOTS

    rng = np.random.default_rng(7)
    film = ndimage.gaussian_filter(rng.normal(size=(128, 128)), 2.0)
    film = 50.0 * (1.0 + 0.5 * film / film.std())
    frames = rng.poisson(np.clip(film, 0, None), size=(24, 128, 128)).astype(np.float32)
    viewer = make_napari_viewer()
    viewer.add_image(frames, name="film", scale=(1.0, 1.5, 1.5), metadata={"dose_per_frame_e_per_A2": 2.0})
    _dock, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Beam damage")
    w.run_button.click()
    qtbot.waitUntil(lambda: w.result is not None and not w.runner.busy, timeout=60000)
    assert w.result.series.shells == []
    bragg = w.plots.notes["bragg"]
    assert bragg.shown and bragg.text == NO_BRAGG_SPOTS
    assert not w.plots.notes["resolution"].shown and not w.plots.notes["rings"].shown


def test_frames_beside_a_spectrum_image_are_a_series_and_the_spectrum_image_is_not(make_napari_viewer, qtbot,
                                                                                   messages):
    # a Velox file opens its HAADF frames as (T, 1, Y, X) beside the EDS SI's (E, Y, X) sum: the frames are a dose
    # series (each adds dose), the SI is not (its first axis is energy), though both have 3-4 axes
    viewer = make_napari_viewer()
    data, kwargs, _ = dose_series_sample()[0]
    si_meta = {"spectrum_image": {"signal": "EDS", "energy_axis": {"size": 32, "scale": 10.0, "offset": 0.0}}}
    si = viewer.add_image(np.ones((32, 256, 256), np.float32), name="EDS", metadata=si_meta)
    frames = data[:24, None, 64:320, 64:320]
    kwargs = dict(kwargs, name="HAADF frames", scale=(kwargs["scale"][0], 320.0, *kwargs["scale"][1:]),
                  units=(kwargs["units"][0], "eV", *kwargs["units"][1:]), axis_labels=("t", "E", "y", "x"))
    viewer.add_image(frames, **kwargs)
    _dock, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Beam damage")
    assert [w.layer_combo.itemText(i) for i in range(w.layer_combo.count())] == ["HAADF frames"]
    w.run_button.click()
    qtbot.waitUntil(lambda: w.result is not None and not w.runner.busy, timeout=60000)
    assert w.result.request.frames.shape == (24, 256, 256)
    truth = viewer.layers["HAADF frames"].metadata["true_critical_dose_e_per_A2"]
    assert len(w.result.series.shells) == 2
    for shell in w.result.series.shells:
        expected = min(truth.items(), key=lambda kv: abs(float(kv[0].split()[0]) - shell.d_spacing))[1]
        assert shell.fit.dc == pytest.approx(expected, rel=0.25)

    from napari_cryomat.widgets.beam_damage._model import DamageParams, make_request

    with pytest.raises(ValueError, match="'EDS' is not a .T, Y, X. stack .a spectrum image."):
        make_request(si, DamageParams(0.0, 0, 30.0, 0.0))
