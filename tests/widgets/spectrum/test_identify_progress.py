"""Identify's progress bar moves while the elements are selected, and Cancel stops it there (the review: "Identify:
50 %" for 15 s on a 75 x 100 x 2048 Bruker map, then 100 %; a user would think it hung and press Cancel)."""

def test_identify_bar_moves_in_fine_steps_and_cancel_stops_it(spectrum_dock, qtbot):
    viewer, w = spectrum_dock("eds")
    bar = w.runner.progress_bar
    values = []
    bar.valueChanged.connect(values.append)
    w.identify_button.click()
    qtbot.waitUntil(lambda: not w.busy, timeout=120000)
    assert {"Fe", "Pt", "Cu"} <= set(w.elements())
    assert values[-1] == bar.maximum() and all(b >= a for a, b in zip(values, values[1:]))
    during_the_fit = {v for v in values if 0.15 * bar.maximum() < v < 0.95 * bar.maximum()}
    assert len(during_the_fit) >= 20, sorted(set(values))  # HEAD: 0, 50 % (the sum), 100 %

    # Cancel in the middle of the fit: the run stops there, the elements stay as they were
    w.set_elements("C")
    values.clear()
    bar.valueChanged.connect(lambda v: v > 0.4 * bar.maximum() and w.runner.cancel())
    w.identify_button.click()
    qtbot.waitUntil(lambda: not w.busy, timeout=120000)
    assert w.elements() == ["C"] and max(values) < 0.9 * bar.maximum()
