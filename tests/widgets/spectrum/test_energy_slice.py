"""The energy of the slice the canvas shows, said in eV in the Spectrum imaging dock (the EELS sample merges a
0.25 eV low-loss and a 0.5 eV core-loss SI onto one slider whose step number is a channel of neither)."""

import numpy as np
import pytest


def test_dock_says_the_shown_slice_in_ev(spectrum_dock, qtbot):
    viewer, w = spectrum_dock("eels")
    assert w.si_combo.currentText() == "EELS SI (SEI)"
    core = viewer.layers["EELS SI (SEI)"]
    core.visible = True  # napari slices what it draws
    energy = w.model.source().energy  # 30 eV + 0.5 eV per channel
    viewer.dims.set_current_step(0, 299)  # the review's "energy 299 | 2538": 69.75 eV on the shared 0.25 eV grid
    qtbot.waitUntil(lambda: "channel" in w.plot.slice_label.text(), timeout=5000)
    text = w.plot.slice_label.text()
    channel = int(text.split("channel ")[1].split()[0])
    # the plane napari draws is the channel the dock names, and the eV said is that channel's
    np.testing.assert_array_equal(np.asarray(core._data_view), np.asarray(core.data[channel]))
    assert f"{energy[channel]:.2f} eV" in text and f"of {energy.size}" in text
    assert 69.5 <= energy[channel] <= 70.0
    assert w.plot.slice_line.isVisible() and w.plot.slice_line.value() == pytest.approx(energy[channel])

    # dragging the line in the plot moves the slider to that energy
    w.plot.slice_line.setValue(284.3)
    w.plot.slice_line.sigPositionChangeFinished.emit(w.plot.slice_line)
    qtbot.waitUntil(lambda: "284.50 eV" in w.plot.slice_label.text(), timeout=5000)
    np.testing.assert_array_equal(np.asarray(core._data_view), np.asarray(core.data[509]))  # (284.5 - 30) / 0.5

    # below the core-loss SI's first channel its image is blank: the dock says so
    viewer.dims.set_current_step(0, 20)  # 0 eV
    qtbot.waitUntil(lambda: "outside" in w.plot.slice_label.text(), timeout=5000)
    assert "0.00 eV" in w.plot.slice_label.text() and not w.plot.slice_line.isVisible()

    # the low-loss SI chosen: the same slider step is its own channel
    w.si_combo.setCurrentText("EELS low-loss SI (SEI)")
    viewer.dims.set_current_step(0, 299)
    qtbot.waitUntil(lambda: "69.75 eV (channel 299 of 600)" in w.plot.slice_label.text(), timeout=5000)

    viewer.dims.ndisplay = 3  # a 3D view shows no energy slice
    qtbot.waitUntil(lambda: not w.plot.slice_label.isVisible() and not w.plot.slice_line.isVisible(), timeout=5000)
