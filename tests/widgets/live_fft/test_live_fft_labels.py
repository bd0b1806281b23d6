"""Spot labels on the Live FFT spectrum, driven as a user does in a napari window: on a crystal with an
incommensurate modulation (dozens of satellites) auto-detect labels the basis spots and one satellite per
modulation, and no two label boxes shown overlap; the napari Points layers keep every spot's full index."""

import sys
from pathlib import Path

import numpy as np

from napari_cryomat.widgets.live_fft import ROI_LAYER_NAME

sys.path.insert(0, str(Path(__file__).parents[2] / "core"))
from test_fourier_indexing import _modulated, _square  # noqa: E402  (the PLD simulator of the core tests)


def _shown_boxes(view):
    """Scene rectangles (screen pixels) of the spectrum's labels that are shown."""
    return [(label.toPlainText(), label.sceneBoundingRect()) for label in view._labels if label.isVisible()]


def _assert_apart(shown):
    for i, (text, box) in enumerate(shown):
        for other, other_box in shown[:i]:
            assert not box.intersects(other_box), f"labels {text!r} and {other!r} overlap"


def test_many_satellites_labels_do_not_overlap(make_napari_viewer, qtbot):
    rng = np.random.default_rng(2511)
    q_fraction = rng.uniform(0.23, 0.31)  # incommensurate: far from 1/4 and 1/3 at this size
    img, _, _ = _modulated(960, 0.83, _square(4.11, rng.uniform(0, 30)), q_fraction, which=1, amp=0.364,
                           charge=0.05, noise=0.25, seed=int(rng.integers(1 << 16)))
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)  # a laptop screen: the dock's spectrum is small
    viewer.add_image(img, name="PLD", scale=(0.83, 0.83), units=("angstrom", "angstrom"))
    _, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Live FFT")
    qtbot.waitUntil(lambda: ROI_LAYER_NAME in viewer.layers, timeout=5000)
    w.whole_roi_button.click()
    w.lattice_panel.as_layers.setChecked(True)
    w.lattice_panel.detect_button.click()
    qtbot.waitUntil(lambda: w.model.lattice is not None and not w.runner.busy, timeout=120000)
    lattice = w.model.lattice
    assert len(lattice.modulation_vectors) == 1 and len(lattice.superlattice) >= 12  # many satellites
    qtbot.wait(200)  # the zoom onto the spots is drawn

    _assert_apart(_shown_boxes(w.spectrum_view))
    texts = [text for text, _ in _shown_boxes(w.spectrum_view)]
    assert any("(1,0)" in t for t in texts) and any("(0,1)" in t for t in texts)  # the basis spots
    assert any("." in t.split("(")[-1] for t in texts)  # a satellite, with its incommensurate index
    w.spectrum_view.view.scaleBy((3, 3))  # the user zooms out: the spots crowd, the labels must not
    qtbot.wait(200)
    shown = _shown_boxes(w.spectrum_view)
    assert shown
    _assert_apart(shown)

    # the Points layer: every satellite and its full index as a feature, text only on the labelled one(s)
    points = w.model.reciprocal_viewer().layers["FFT superlattice spots of PLD"]
    assert len(points.data) == len(lattice.superlattice)
    assert sorted(points.features["label"]) == sorted(pk.label() for pk in lattice.superlattice)
    texts = [t for t in points.text.values if t]
    assert 1 <= len(texts) <= 2 * len(lattice.modulation_vectors)
