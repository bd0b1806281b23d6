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


def test_the_slice_note_names_its_layer_says_when_it_is_hidden_and_follows_the_plots_unit(spectrum_dock, qtbot,
                                                                                           add_si):
    """The gui22 review: "Image slice: 70.00 eV" stood under a canvas that showed the HAADF (both SIs hidden), in eV
    under an EDS plot in keV, and the blue line it spoke of had no name among the element markers."""
    viewer, w = spectrum_dock("eels", show=True)
    core = viewer.layers["EELS SI (SEI)"]
    assert w.si_combo.currentText() == core.name
    core.visible = False  # as the sample opens: the HAADF on view
    viewer.dims.set_current_step(0, 299)
    qtbot.waitUntil(lambda: "hidden" in w.plot.slice_label.text(), timeout=5000)
    text = w.plot.slice_label.text()
    assert text.startswith("EELS SI (SEI) slice: ") and "hidden: show it to see the slice" in text, text
    core.visible = True  # the user shows it: the note says what the canvas shows, no more
    qtbot.waitUntil(lambda: "hidden" not in w.plot.slice_label.text(), timeout=5000)
    assert w.plot.slice_label.text() == "EELS SI (SEI) slice: 70.00 eV (channel 80 of 1200)"
    assert w.plot.slice_line.label is not None and w.plot.slice_line.label.format == "slice"

    si = np.random.default_rng(1).poisson(5.0, (4, 5, 2048)).astype(np.float32)
    add_si(viewer, si, np.arange(2048) * 10.0, "EDS map", signal_type="EDS")  # 0-20.47 keV: the plot in keV
    w.si_combo.setCurrentText("EDS map")
    assert w.plot.units_combo.currentText() == "keV"
    viewer.dims.set_current_step(0, 1023)
    qtbot.waitUntil(lambda: "EDS map slice" in w.plot.slice_label.text(), timeout=5000)
    qtbot.waitUntil(lambda: " keV (channel " in w.plot.slice_label.text(), timeout=5000)
    assert " eV (" not in w.plot.slice_label.text()


def test_the_slice_follows_the_line_while_it_is_dragged(spectrum_dock, qtbot):
    """The gui22 review: in the middle of a drag the line stood at 280 eV while the note (and the canvas) still said
    95 eV, until the mouse was released; and the line then turned red, the element markers' colour."""
    viewer, w = spectrum_dock("eels", show=True)
    line = w.plot.slice_line
    viewer.dims.set_current_step(0, 400)
    qtbot.waitUntil(lambda: "95.00 eV" in w.plot.slice_label.text(), timeout=5000)
    finished = []
    line.sigPositionChangeFinished.connect(finished.append)
    line.moving = True  # as pyqtgraph's drag does: the mouse is down, each move sets the line's position
    for energy in (150.0, 220.0, 284.3):
        line.setValue(energy)
        qtbot.wait(5)
    qtbot.waitUntil(lambda: "284.50 eV" in w.plot.slice_label.text(), timeout=2000)  # the latest position wins
    assert not finished  # ... before the mouse is released
    line.moving = False
    hover = line.hoverPen.color()
    assert (hover.red(), hover.green(), hover.blue()) == line.pen.color().getRgb()[:3]  # its own colour, not red
