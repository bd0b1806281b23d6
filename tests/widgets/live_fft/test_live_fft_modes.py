"""The Live FFT dock's spectrum modes, driven as a user does in a napari window: Auto shows an
averaged spectrum with Thon rings on a micrograph and the single spectrum with its spots on a crystal;
the mode box and the flatten box switch what is drawn and the status line says what it is."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import argrelextrema

from napari_cryomat.widgets.live_fft import ROI_LAYER_NAME, LiveFFTWidget

sys.path.insert(0, str(Path(__file__).parents[2] / "core"))
from test_fourier_live import ctf_image, ctf_zeros  # noqa: E402  (the CTF simulator of the core tests)


def _rect(y0, x0, s):
    return np.array([[y0, x0], [y0, x0 + s], [y0 + s, x0 + s], [y0 + s, x0]], float)


def _dock(viewer, qtbot) -> LiveFFTWidget:
    _, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Live FFT")
    assert isinstance(w, LiveFFTWidget)
    qtbot.waitUntil(lambda: ROI_LAYER_NAME in viewer.layers, timeout=5000)
    return w


def _wait_drawn(qtbot, w, bounds, mode, flattened=None):
    view = w.spectrum_view

    def drawn():
        info = view.info
        return (view.current is not None and view.current.bounds == bounds and info.mode == mode
                and (flattened is None or info.flattened == flattened))

    qtbot.waitUntil(drawn, timeout=20000)


def _choose(combo, key):
    """Pick an entry of the mode box the way a click does (the index changes, the signal fires)."""
    combo.setCurrentIndex(combo.findData(key))


def _dark_fraction(view) -> float:
    """Fraction of the drawn spectrum in the darkest tenth of its display levels."""
    lo, hi = view.image_item.levels
    return float(np.mean(view.image_item.image < lo + 0.1 * (hi - lo)))


def test_modes_on_a_micrograph_and_a_crystal(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    p, defocus = 1.5, 1.5e4  # Å: Thon-ring zeros 7-9 px apart in 256 px tiles
    img = ctf_image((1024, 1024), p, defocus, seed=3) * 40 + 3000  # counts: a big mean, as a detector gives
    viewer.add_image(img, name="micrograph", scale=(p, p), units=("angstrom", "angstrom"))
    w = _dock(viewer, qtbot)
    view = w.spectrum_view
    assert view.mode.currentData() == "auto" and view.flatten.isChecked() and view.flatten.isEnabled()
    # Auto on an amorphous specimen: the averaged spectrum of 49 tiles of the default 512 px ROI
    _wait_drawn(qtbot, w, (256, 768, 256, 768), "averaged")
    assert view.shown_shape == (128, 128) and view.info.n_tiles == 49
    assert view.status.text().startswith("Averaged, 49 tiles of 128² px, flattened (Auto: no sharp spots)")
    assert _dark_fraction(view) < 0.3  # not black
    # the whole image: 256 px tiles, whose radial profile has its minima at the CTF zeros
    viewer.layers[ROI_LAYER_NAME].data = [_rect(0, 0, 1024)]
    _wait_drawn(qtbot, w, (0, 1024, 0, 1024), "averaged")
    spec = view.spectrum().astype(float)
    assert spec.shape == (256, 256)
    yy, xx = np.indices(spec.shape)
    r = np.rint(np.hypot(yy - 128, xx - 128)).astype(int)
    profile = (np.bincount(r.ravel(), spec.ravel()) / np.bincount(r.ravel()))[:128]
    g = np.arange(128) * view.reciprocal_pixel[0]
    minima = g[[i for i in argrelextrema(profile, np.less, order=2)[0] if i > 4]]
    for zero in ctf_zeros(defocus)[:3]:
        assert np.min(np.abs(minima - zero)) <= view.reciprocal_pixel[0] + 1e-12
    # Single: the whole ROI's periodogram; nothing to flatten
    _choose(view.mode, "single")
    _wait_drawn(qtbot, w, (0, 1024, 0, 1024), "single")
    assert view.shown_shape == (1024, 1024) and view.spectrum().shape == (1024, 1024)
    assert not view.flatten.isEnabled() and view.status.text() == "Single spectrum, 1024×1024 px"
    assert _dark_fraction(view) < 0.3  # the levels leave out g = 0: the mean (3000 counts) does not set them
    # Averaged without flattening: the plain mean power
    _choose(view.mode, "averaged")
    assert view.flatten.isEnabled()
    view.flatten.click()
    _wait_drawn(qtbot, w, (0, 1024, 0, 1024), "averaged", flattened=False)
    assert view.status.text().startswith("Averaged, 49 tiles of 256² px.")
    # no lattice here: the dock says what the spot threshold means, not the parameter's name
    w.lattice_panel.detect_button.click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=60000)
    summary = w.lattice_panel.summary.text()
    assert "No spots" in summary and "min_snr" not in summary and "'min SNR'" in summary

    # a crystal: Auto shows its single spectrum, and the spot labels read to 3 figures
    _choose(view.mode, "auto")
    viewer.open_sample("napari-cryomat", "superlattice")
    layer = viewer.layers["superlattice (synthetic)"]
    w.layer_combo.setCurrentIndex(w.layer_combo.findText(layer.name))
    _wait_drawn(qtbot, w, (256, 768, 256, 768), "single")
    assert view.status.text() == "Single spectrum, 512×512 px (Auto: sharp spots)"
    viewer.layers[ROI_LAYER_NAME].data = [_rect(600, 600, 300)]  # off the sample's strained disk
    _wait_drawn(qtbot, w, (600, 900, 600, 900), "single")
    w.lattice_panel.detect_button.click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=60000)
    truth = layer.metadata["truth"]
    assert w.model.lattice.d1 == pytest.approx(truth["d1"], rel=3e-3) and w.model.lattice.superlattice
    labels = [label.textItem.toPlainText() for label in view._labels]
    assert len(labels) >= 3  # the basis spots and superlattice spots
    for text in labels:
        number = re.match(r"([\d.]+) Å", text).group(1)
        assert len(number.replace(".", "").lstrip("0")) <= 3, text
    basis = [float(re.match(r"([\d.]+) Å \((1,0|0,1)\)", text).group(1)) for text in labels
             if re.search(r"\((1,0|0,1)\)", text)]
    assert len(basis) == 2 and all(d == pytest.approx(truth["d1"], abs=0.011) for d in basis)  # 3.46 Å ± its last digit
