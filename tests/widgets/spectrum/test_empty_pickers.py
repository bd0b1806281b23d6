"""The Spectrum dock's pickers before they have anything to offer (seen at 1366x768 on the EDS demo: the combo
right of Draw ROI and both ratio-map combos were blank boxes, read as broken): greyed placeholder, disabled,
tooltip saying what fills them; enabled on a real entry once elements are typed and maps made."""

import numpy as np


def _eds_si(rng, shape=(12, 12)):
    """Counts of Fe Kα (6.40 keV) and Cu Kα (8.05 keV) peaks on a flat continuum, each element in half the
    scan, Poisson noise: (Y, X, E) and the energy axis in eV."""
    energy = np.arange(0.0, 12000.0, 20.0)
    fe = np.exp(-0.5 * ((energy - 6400.0) / 60.0) ** 2)
    cu = np.exp(-0.5 * ((energy - 8040.0) / 65.0) ** 2)
    half = np.zeros(shape)
    half[:, : shape[1] // 2] = 1.0
    mean = 2.0 + 40.0 * half[..., None] * fe + 40.0 * (1.0 - half)[..., None] * cu
    return rng.poisson(mean).astype(np.float32), energy


def test_window_and_ratio_pickers_say_what_fills_them(spectrum_dock, add_si, qtbot):
    viewer, w = spectrum_dock(show=True)
    viewer.window._qt_window.resize(1366, 740)
    # no spectrum image yet: its picker says so, and so do the optional reference's and the ones below
    assert not w.si_combo.isEnabled() and w.si_combo.placeholderText() == "open an EDS or EELS file"
    assert "File > Open" in w.si_combo.toolTip()
    assert not w.eels.low_combo.isEnabled() and w.eels.low_combo.placeholderText() == "open the low-loss SI"
    add_si(viewer, *_eds_si(np.random.default_rng(2801)), "EDS SI", signal_type="EDS")
    assert w.si_combo.isEnabled() and w.si_combo.currentText() == "EDS SI" and w.mode == "EDS"
    assert not w.ref_combo.isEnabled() and w.ref_combo.placeholderText().startswith("optional")

    windows, ratio_a, ratio_b = w.plot.window_combo, w.maps.ratio_a, w.maps.ratio_b
    for combo in (windows, ratio_a, ratio_b):
        assert not combo.isEnabled() and combo.currentIndex() == -1 and combo.placeholderText()
    assert windows.placeholderText() == "no elements yet" and "type elements" in windows.toolTip()
    assert ratio_a.placeholderText() == "no maps yet" and "Make maps" in ratio_b.toolTip()
    assert not w.maps.ratio_button.isEnabled()  # nothing to divide yet
    qtbot.waitExposed(w)
    # the placeholder is drawn whole: the row gives it its width (the "eV/keV" combo takes only what it needs)
    assert windows.width() >= windows.fontMetrics().horizontalAdvance(windows.placeholderText()) + 30

    w.elements_edit.setText("Fe, Cu")
    w.elements_edit.editingFinished.emit()  # Enter
    assert windows.isEnabled() and windows.currentText() == "Fe"
    assert windows.toolTip().startswith("Windows of")
    assert not ratio_a.isEnabled()  # typed elements are not maps yet

    w.maps.maps_button.click()
    qtbot.waitUntil(lambda: ratio_a.count() == 2, timeout=60000)
    assert ratio_a.isEnabled() and ratio_b.isEnabled() and w.maps.ratio_button.isEnabled()
    assert (ratio_a.currentText(), ratio_b.currentText()) == ("Fe", "Cu")
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
