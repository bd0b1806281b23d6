"""Denoise widget driven as a user would, in a real napari window: preview, calibration curves,
manual strength, apply to an image and to a stack, before/after, Cancel, and a refused method."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryomat.core._progress import Cancelled
from napari_cryomat.core.synthetic.denoise import noisy_image
from napari_cryomat.widgets.denoise import DenoiseWidget


def psnr(image, truth):
    return 10 * np.log10(np.ptp(truth) ** 2 / np.mean((np.asarray(image, np.float64) - truth) ** 2))


@pytest.fixture
def setup(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    noisy, truth = noisy_image("lattice", (320, 288), dose=1.0, seed=5)
    layer = viewer.add_image(noisy, name="lattice", scale=(0.4, 0.4), units=("angstrom", "angstrom"))
    widget = DenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.show()  # as the dock in front (a docked widget of a hidden window reports itself behind)
    qtbot.waitUntil(lambda: widget.model.preview is not None and widget.idle, timeout=60000)
    return viewer, layer, widget, noisy, truth


def test_preview_shows_the_calibrated_choice_over_the_view(setup, qtbot, gui_watch):
    viewer, layer, w, noisy, truth = setup
    name = "lattice denoise preview"
    assert name in viewer.layers and viewer.layers[name].metadata["cryomat_helper"]
    preview = viewer.layers[name]
    y0, x0 = (np.asarray(preview.translate) / 0.4).round().astype(int)
    h, wd = preview.data.shape
    assert (h, wd) == (288, 288)  # the view's centre crop, clipped to the image
    crop = (slice(y0, y0 + h), slice(x0, x0 + wd))
    assert psnr(preview.data, truth[crop]) > psnr(noisy[crop], truth[crop]) + 10
    assert set(w.plot.curves) == {"gaussian", "spectral"} and not w.plot.note.shown
    assert w.model.preview.parts[0][0] == "spectral"  # a lattice: the block Wiener wins
    assert "spectral" in w.plot.summary.text()
    # a manual strength for one method: the preview follows (latest request wins)
    with gui_watch as watch:  # every computation off the GUI thread; only drawing on it
        w.method.setCurrentIndex(w.method.findData("gaussian"))
        w.manual_strength.setChecked(True)
        w.strength.setValue(2.5)
        qtbot.waitUntil(lambda: w.idle and w.model.preview.parts[0][:2] == ("gaussian", 2.5), timeout=60000)
    assert list(w.plot.curves) == ["gaussian"]
    assert watch.longest < 0.1, f"the GUI thread worked {watch.longest:.3f} s at once"


def test_apply_writes_a_new_layer_and_keeps_the_raw(setup, qtbot):
    viewer, layer, w, noisy, truth = setup
    raw = layer.data.copy()
    w.apply_button.click()
    qtbot.waitUntil(lambda: w.idle and "lattice denoised" in viewer.layers, timeout=90000)
    out = viewer.layers["lattice denoised"]
    np.testing.assert_array_equal(layer.data, raw)
    assert out.data.shape == noisy.shape and tuple(out.scale) == pytest.approx((0.4, 0.4))
    assert psnr(out.data, truth) > psnr(noisy, truth) + 12
    assert "lattice denoise preview" not in viewer.layers
    assert "spectral" in out.metadata["denoise"]
    w.show_before.setChecked(True)
    assert not out.visible
    w.show_before.setChecked(False)
    assert out.visible


def test_stack_apply_and_cancel(setup, qtbot, messages):
    viewer, layer, w, noisy, truth = setup
    frames = np.stack([noisy_image("particles", (160, 192), dose=2.0, seed=s)[0] for s in range(3)])
    viewer.add_image(frames, name="stack")
    w.layer_combo.set_layer("stack")
    w.method.setCurrentIndex(w.method.findData("gaussian"))
    qtbot.waitUntil(lambda: w.idle and w.model.preview is not None and w.model.preview.image.shape == (160, 160),
                    timeout=60000)
    w.apply_button.click()
    qtbot.waitUntil(lambda: w.idle and "stack denoised" in viewer.layers, timeout=90000)
    out = viewer.layers["stack denoised"].data
    assert out.shape == frames.shape and out.std(axis=(1, 2)).max() < frames.std(axis=(1, 2)).min()
    # Cancel: a bigger stack, cancelled at once, leaves nothing behind
    big = np.random.default_rng(0).poisson(1.0, (12, 384, 384)).astype(np.float32)
    viewer.add_image(big, name="big")
    w.layer_combo.set_layer("big")
    w.live_preview.setChecked(False)
    w.apply_button.click()
    w.runner.cancel()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=90000)
    assert isinstance(w.runner.last_error, Cancelled)
    assert "big denoised" not in viewer.layers


def test_noise2void_without_careamics_is_a_message(setup, qtbot, messages):
    viewer, layer, w, noisy, truth = setup
    pytest.importorskip("napari")
    try:
        import careamics  # noqa: F401
        pytest.skip("careamics is installed")
    except ImportError:
        pass
    n_layers = len(viewer.layers)
    w.method.setCurrentIndex(w.method.findData("n2v"))
    w.apply_button.click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=30000)
    assert any("careamics" in str(m) for m in messages["error"])
    assert len(viewer.layers) == n_layers - 1  # the preview went (no live preview for n2v), nothing added


def test_preview_belongs_to_the_dock_in_front_and_keeps_the_selection(make_napari_viewer, qtbot):
    """A Denoise dock tabbed behind another tool leaves no preview layer on the canvas (the demo
    docks every tool, and a hidden dock's preview had stayed on top, selected); back in front it
    previews again. The preview never takes the selection from the user's layer."""
    from qtpy.QtWidgets import QLabel

    viewer = make_napari_viewer(show=True)
    noisy, _truth = noisy_image("lattice", (160, 160), dose=1.0, seed=6)
    layer = viewer.add_image(noisy, name="lattice")
    widget = DenoiseWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Denoise")
    preview = "lattice denoise preview"
    qtbot.waitUntil(lambda: preview in viewer.layers and not widget.busy, timeout=60000)
    assert viewer.layers.selection.active is layer
    other = viewer.window.add_dock_widget(QLabel("another tool"), name="other", tabify=True)
    other.show()
    other.raise_()
    qtbot.waitUntil(lambda: preview not in viewer.layers, timeout=10000)
    assert [lay.name for lay in viewer.layers] == ["lattice"] and viewer.layers.selection.active is layer
    dock.raise_()
    qtbot.waitUntil(lambda: preview in viewer.layers and not widget.busy, timeout=60000)
    assert viewer.layers.selection.active is layer


def _counts_with_excess_noise(factor: int, seed: int = 3) -> np.ndarray:
    """Whole numbers with ``factor`` x the Poisson variance (the default noise model takes them as counts at
    gain 1, as on the real EPU micrograph, whose noise is ~13x): each denoiser's optimum moves up by ~``factor``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:256, :256]
    lam = 400 + 100 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    return (rng.poisson(lam) * factor + rng.integers(0, factor, lam.shape)).astype(np.uint16)


def test_calibration_names_its_units_and_says_an_optimum_at_the_end_of_the_scan(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(_counts_with_excess_noise(16), name="16x")
    viewer.add_image(_counts_with_excess_noise(4), name="4x")
    w = DenoiseWidget(viewer)
    qtbot.addWidget(w)
    w.show()
    w.method.setCurrentIndex(w.method.findData("spectral"))
    w.layer_combo.set_layer("4x")
    qtbot.waitUntil(lambda: w.idle and w.model.preview is not None and bool(w.plot.curves), timeout=60000)
    assert w.plot.plot.getAxis("bottom").labelText == "strength: beta (noise power)"
    # 4x: the optimum lies past the grid's end (8); the scan follows it and brackets it: nothing to warn about
    assert w.model.preview.parts[0][1] > 8.0
    assert "optimum at the end" not in w.plot.summary.text()
    # 16x: still falling 3 steps past the end: the dock says so under the plot
    w.layer_combo.set_layer("16x")
    qtbot.waitUntil(lambda: w.idle and "optimum at the end of the scanned range" in w.plot.summary.text(),
                    timeout=60000)
    assert "45.3 is the largest tried" in w.plot.summary.text()
    w.method.setCurrentIndex(w.method.findData("auto"))
    qtbot.waitUntil(lambda: w.idle and set(w.plot.curves) == {"gaussian", "spectral"}, timeout=60000)
    assert w.plot.plot.getAxis("bottom").labelText == "strength: sigma (px), beta (noise power)"


def test_calibration_plot_reads_the_chosen_curve_legend_under_it_no_blank_band_label_whole(make_napari_viewer, qtbot):
    """gui22 review item 7, on a dock at 1366x768 as the review saw it: the methods' losses differ several-fold (on
    the real EPU micrograph the gaussian climbed to 395k while the chosen spectral curve sat at 97k-122k), and a y
    range spanning every curve left the chosen minimum a flat line; the legend covered the gaussian's points; a
    ~70 px blank band lay between the plot and the summary; the x label's descenders were cut off."""
    import pyqtgraph as pg

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    viewer.add_image(_counts_with_excess_noise(4), name="4x")
    w = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(w, name="Denoise")
    qtbot.waitUntil(lambda: w.idle and set(w.plot.curves) == {"gaussian", "spectral"}, timeout=60000)
    qtbot.wait(200)
    # here spectral x 0.9 + gaussian x 0.1; the gaussian's loss climbs 5x above the spectral's
    main = max(w.model.preview.parts, key=lambda part: part[2])[0]
    main_losses = w.plot.curves[main][1]
    other_losses = np.concatenate([losses for name, (_v, losses) in w.plot.curves.items() if name != main])
    lo, hi = w.plot.plot.getViewBox().viewRange()[1]
    # the main choice's curve fills the height, every curve's minimum (and star) in view; a curve climbing beyond
    # runs off the top, and the legend says so
    assert lo <= main_losses.min() and main_losses.max() <= hi
    assert hi - lo < 1.25 * np.ptp(main_losses)
    assert all(lo <= cal.best_loss <= hi for cal in w.model.preview.calibrations.values())
    assert other_losses.max() > hi, "the test's data must have a curve above the chosen one"
    assert "runs off the top" in w.plot.legend.text()
    # no legend inside the plot; the curves and the star are named under it
    assert not any(isinstance(item, pg.LegendItem) for item in w.plot.plot.scene().items())
    assert all(word in w.plot.legend.text() for word in ("gaussian", "spectral", "chosen"))
    # the plot takes the spare height: the legend and the summary follow it closely
    plot_bottom = w.plot.plot.geometry().bottom()
    assert w.plot.legend.geometry().top() - plot_bottom < 8
    assert w.plot.plot.height() > 220
    # the x label's text (its box less the text margin) lies inside the plot widget, centred under the axis
    label = w.plot.plot.getAxis("bottom").label
    box = label.mapRectToScene(label.boundingRect())
    margin = label.document().documentMargin()
    view = w.plot.plot.viewport().rect()
    assert box.bottom() - margin <= view.bottom() - 1 and box.left() + margin >= 0 and box.right() - margin <= view.right()
    axis_box = w.plot.plot.getAxis("bottom").sceneBoundingRect()
    assert abs(box.center().x() - axis_box.center().x()) < 2


def test_folding_the_calibration_leaves_no_blank_where_the_plot_was(make_napari_viewer, qtbot):
    """The plot takes the dock's spare height (c304a18); folded, its section is a title only: the Result section
    follows it (after c304a18 a folded Calibration kept 416 px of blank at 1366x768)."""
    from napari_cryomat.widgets._base import Section

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    viewer.add_image(_counts_with_excess_noise(4), name="4x")
    w = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(w, name="Denoise")
    qtbot.waitUntil(lambda: w.idle and bool(w.plot.curves), timeout=60000)
    sections = {section.toggle.text(): section for section in w.findChildren(Section)}
    calibration, result = sections["Calibration (preview)"], sections["Result"]

    def gap():
        bottom = calibration.mapTo(w, calibration.rect().bottomLeft()).y()
        return result.mapTo(w, result.rect().topLeft()).y() - bottom

    assert w.plot.plot.height() > 220 and gap() < 10  # shown: the plot fills the spare height
    calibration.set_expanded(False)
    qtbot.wait(100)
    assert calibration.height() < 2 * calibration.toggle.height() and gap() < 10
    calibration.set_expanded(True)
    qtbot.wait(100)
    assert w.plot.plot.height() > 220

