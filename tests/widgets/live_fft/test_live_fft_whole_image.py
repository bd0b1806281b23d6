"""The Live FFT dock's "Whole image" button, pressed as a user does in a napari window: on a micrograph bigger than
1536 px the ROI becomes the whole image, the averaged spectrum then uses 512 px tiles, and its rings sit at the
CTF zeros that the default 512 px ROI's 128 px tiles cannot resolve."""

import sys
from pathlib import Path

import numpy as np
from scipy.signal import argrelextrema

from napari_cryomat.core.synthetic.lattice import hexagonal_basis, lattice_image
from napari_cryomat.widgets.live_fft import ROI_LAYER_NAME, LiveFFTWidget

sys.path.insert(0, str(Path(__file__).parents[2] / "core"))
from test_fourier_live import ctf_image, ctf_zeros  # noqa: E402  (the CTF simulator of the core tests)


def _wait_drawn(qtbot, w, bounds, mode):
    view = w.spectrum_view
    qtbot.waitUntil(lambda: view.current is not None and view.current.bounds == bounds and view.info.mode == mode,
                    timeout=30000)


def _profile_minima(view) -> np.ndarray:
    """|g| (1/Å) of the local minima of the drawn averaged spectrum's rotational average."""
    spec = view.spectrum().astype(float)
    n = spec.shape[0]
    yy, xx = np.indices(spec.shape)
    r = np.rint(np.hypot(yy - n // 2, xx - n // 2)).astype(int)
    profile = (np.bincount(r.ravel(), spec.ravel()) / np.bincount(r.ravel()))[: n // 2]
    g = np.arange(n // 2) * view.reciprocal_pixel[0]
    return g[[i for i in argrelextrema(profile, np.less, order=2)[0] if i > 4]]


def test_whole_image_button_on_a_micrograph(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    p, defocus = 1.0, 2.5e4  # Å: dense rings, zeros 3-4 px apart in 128 px tiles and 12-16 px in 512 px ones
    h, w_ = 1700, 1900  # not square, as a Falcon frame (3838 × 3710)
    img = ctf_image((h, w_), p, defocus, seed=11) * 40 + 3000
    viewer.add_image(img, name="micrograph", scale=(p, p), units=("angstrom", "angstrom"))
    _, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Live FFT")
    assert isinstance(w, LiveFFTWidget)
    qtbot.waitUntil(lambda: ROI_LAYER_NAME in viewer.layers, timeout=5000)
    view = w.spectrum_view
    y0, x0 = (h - 512) // 2, (w_ - 512) // 2
    _wait_drawn(qtbot, w, (y0, y0 + 512, x0, x0 + 512), "averaged")
    assert view.shown_shape == (128, 128) and view.status.text().endswith("Bigger ROI: finer rings")

    w.whole_roi_button.click()
    _wait_drawn(qtbot, w, (0, h, 0, w_), "averaged")
    roi = viewer.layers[ROI_LAYER_NAME]
    assert viewer.layers.selection.active is roi and roi.mode == "select"  # ready to drag or resize
    assert view.shown_shape == (512, 512) and view.info.n_tiles > 1
    assert view.status.text().startswith(f"Averaged, {view.info.n_tiles} tiles of 512² px, flattened (Auto")
    assert "Bigger ROI" not in view.status.text()
    minima = _profile_minima(view)
    dg = view.reciprocal_pixel[0]
    for zero in ctf_zeros(defocus, g_max=0.2)[:4]:  # the first four rings, resolved
        assert np.min(np.abs(minima - zero)) <= dg + 1e-12, (zero, minima[:8])

    # the ROI stays a normal ROI: moving it back to a small square gives the small view again
    roi.data = [np.array([[100, 100], [100, 612], [612, 612], [612, 100]], float)]
    _wait_drawn(qtbot, w, (100, 612, 100, 612), "averaged")
    assert view.shown_shape == (128, 128)


def test_whole_image_on_a_crystal_shows_its_spots(make_napari_viewer, qtbot):
    """On a big ROI Auto looks for the spots in the averaged spectrum first; a crystal still gets the single
    spectrum of the whole image, its first-order spots at 1 / d."""
    viewer = make_napari_viewer(show=True)
    p, a = 0.5, 3.2  # Å: a hexagonal lattice, d = a √3 / 2 = 2.77 Å (5.5 px)
    h, w_ = 1600, 1800
    img = lattice_image((h, w_), pixel_size=p, basis=hexagonal_basis(a, 23.0), sigma=0.5, noise=0.8, seed=5)
    viewer.add_image(img, name="crystal", scale=(p, p), units=("angstrom", "angstrom"))
    _, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Live FFT")
    qtbot.waitUntil(lambda: ROI_LAYER_NAME in viewer.layers, timeout=5000)
    view = w.spectrum_view
    w.whole_roi_button.click()
    _wait_drawn(qtbot, w, (0, h, 0, w_), "single")
    assert view.status.text() == f"Single spectrum, {h}×{w_} px (Auto: sharp spots)"
    spec = view.spectrum().astype(float)
    cy, cx = h // 2, w_ // 2
    spec[cy - 4: cy + 5, :] = spec[:, cx - 4: cx + 5] = -np.inf  # g = 0 and the axes
    r, c = np.unravel_index(np.argmax(spec), spec.shape)
    g = np.hypot((r - cy) / (h * p), (c - cx) / (w_ * p))
    assert abs(g - 2 / (a * np.sqrt(3))) < 1.5 / (h * p)


def test_whole_image_without_an_image_says_what_to_do(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Live FFT")
    shown = []
    monkeypatch.setattr("napari_cryomat.widgets.live_fft.dock.show_error", shown.append)
    w.whole_roi_button.click()
    assert shown == ["Open or select an image layer first."]
    assert ROI_LAYER_NAME not in viewer.layers
