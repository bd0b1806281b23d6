"""The line labels on the spectrum plot: no two overlap, each element's strongest line is named, and
a zoom makes room for the crowded ones (FePt's Fe L, Cu L, Pt M below 2.2 keV)."""

import pytest

from napari_cryomat.widgets._base import AXIS_LABEL_ROOM
from napari_cryomat.widgets.spectrum._view_parts import label_rows


def test_label_rows_first_come_first_placed():
    # three labels on one spot take three rows; the fourth finds none among three rows
    assert label_rows([(0, 40), (10, 50), (20, 60), (30, 70)], 3) == [0, 1, 2, None]
    # labels apart by more than the gap share the top row; closer ones do not
    assert label_rows([(0, 40), (45, 80), (82, 120)], 2, gap=4) == [0, 0, 1]
    # the order is the priority: the later of two overlapping labels gives way
    assert label_rows([(30, 70), (0, 40)], 1) == [0, None]
    assert label_rows([], 4) == []
    with pytest.raises(ValueError, match="n_rows"):
        label_rows([(0, 1)], 0)


def _shown_labels(plot):
    """{label text: (row height, scene rect)} of the marker labels shown."""
    return {m.label.format: (m.label.orthoPos, m.label.sceneBoundingRect())
            for m in plot.markers if m.label.isVisible()}


def _assert_no_overlap(shown):
    items = list(shown.items())
    for i, (name_a, (row_a, a)) in enumerate(items):
        for name_b, (row_b, b) in items[i + 1:]:
            if row_a == row_b:
                assert a.right() <= b.left() or b.right() <= a.left(), (name_a, name_b)


def test_fept_labels_readable_and_zoom_reveals_crowded_lines(spectrum_dock, qtbot):
    viewer, w = spectrum_dock("eds", show=True)
    w.set_elements("Fe, Pt, C, Cu")
    plot = w.plot
    qtbot.waitUntil(lambda: w.model.spectra is not None, timeout=30000)  # the spectrum sets the counts axis
    qtbot.wait(50)
    # pyqtgraph applies a resize or range change to the view's transform lazily, at the next paint, and the labels
    # are re-placed then (sigTransformChanged): bring it up to date before reading their scene positions, as a paint
    # would (a new spectrum's counts axis can change the tick labels' width, hence the view's)
    plot.plot.getViewBox().updateMatrix()
    names = [m.label.format for m in plot.markers]
    assert {"Fe Ka", "Fe La", "Cu La", "Pt Ma", "Pt Mz"} <= set(names)  # every line keeps its marker
    shown = _shown_labels(plot)
    _assert_no_overlap(shown)
    assert {"Fe Ka", "Pt La", "C Ka", "Cu Ka"} <= set(shown)  # each element's strongest line is named
    assert len(shown) < len(names)  # the crowded rest give way below 2.2 keV
    hidden = [m for m in plot.markers if not m.label.isVisible()]
    assert all(m.toolTip() == m.label.format for m in hidden)  # ... and still name themselves on hover

    # zoom on the L lines of Fe and Cu (keV axis): more of them are named, still without overlap
    def shown_between(lo, hi):
        return {n for n in _shown_labels(plot) if lo <= next(m.value() for m in plot.markers
                                                             if m.label.format == n) <= hi}

    before = shown_between(0.55, 1.0)
    plot.plot.setXRange(0.55, 1.0, padding=0)
    qtbot.wait(50)
    plot.plot.getViewBox().updateMatrix()
    after = shown_between(0.55, 1.0)
    assert len(after) > len(before), (before, after)
    _assert_no_overlap(_shown_labels(plot))


def _velox_like_si(rng):
    """An EDS SI from 0 to 20.48 keV with the lines of hyperspy's Velox sample (Ni, Fe, Cr, Nb, Ti, Cu, Mo, Si)."""
    import numpy as np

    from napari_cryomat.core.eds import eds_lines

    energy = np.arange(2048) * 10.0
    spectrum = 5.0 + 200.0 * np.exp(-energy / 4000.0)
    for el in ("Ni", "Fe", "Cr", "Nb", "Ti", "Cu", "Mo", "Si"):
        for line in eds_lines(el, energy_range=(200.0, 20000.0)):
            spectrum += 300.0 * line.weight * np.exp(-0.5 * ((energy - line.energy) / 60.0) ** 2)
    return rng.poisson(np.broadcast_to(spectrum, (6, 8, energy.size))).astype(np.float32), energy


def test_labels_never_overlap_and_no_legend_covers_them(spectrum_dock, qtbot, add_si):
    """The Velox review: Mo Ka and Nb Ka (16-17 keV) ran under the 'cursor / ROI sum' legend in the plot's top right
    corner, and on a short plot labels in neighbouring rows overlapped (rows 0.12 of the plot's height apart, a label
    is taller). The legend is now a line under the plot naming the curves drawn."""
    import numpy as np

    viewer, w = spectrum_dock(show=True)
    si, energy = _velox_like_si(np.random.default_rng(4))
    add_si(viewer, si, energy, "velox-like", signal_type="EDS")
    w.si_combo.setCurrentText("velox-like")
    w.set_elements("Ni, Fe, Cr, Nb, Ti, Cu, Mo, Si")
    plot = w.plot
    qtbot.waitUntil(lambda: w.model.spectra is not None, timeout=30000)
    assert plot.plot.getPlotItem().legend is None
    assert "cursor" in plot.legend_label.text() and "ROI sum" not in plot.legend_label.text()  # only what is drawn
    for plot_height in (150, 260):  # a 768 px screen's dock, and a taller one
        plot.plot.setFixedHeight(plot_height)
        qtbot.wait(100)
        plot.plot.getViewBox().updateMatrix()
        plot._place_labels()
        box = plot.plot.getViewBox().sceneBoundingRect()
        shown = _shown_labels(plot)
        assert {"Mo Ka", "Nb Ka", "Fe Ka", "Ni Ka", "Cu Ka", "Si Ka"} <= set(shown), sorted(shown)
        rects = [(name, rect) for name, (_, rect) in shown.items()]
        for i, (name_a, a) in enumerate(rects):
            assert box.top() - 1 <= a.top() and a.bottom() <= box.bottom(), (plot_height, name_a)  # inside the plot
            for name_b, b in rects[i + 1:]:
                assert not a.intersects(b), (plot_height, name_a, name_b)


def test_the_elements_field_shows_the_whole_identified_list(spectrum_dock, qtbot):
    """Identify on the Bruker map found 9 elements; the field beside two buttons showed the last 6."""
    viewer, w = spectrum_dock("eds", show=True)
    found = "Si, Al, O, K, Ca, Na, Fe, Mg, Ti"
    w.model.set_elements(found)  # as Identify sets them
    qtbot.wait(50)
    edit = w.elements_edit
    assert edit.text() == found and edit.toolTip() == found
    assert edit.cursorPosition() == 0  # the start (the strongest) in view when longer than the field
    room = edit.contentsRect().width() - 8  # the frame's and text margins
    assert edit.fontMetrics().horizontalAdvance(found) <= room, (edit.width(), w.width())


def _bcf_like_dock(spectrum_dock, qtbot, add_si):
    """The dock on a 20 kV Bruker-like map of the nine elements Identify found on hyperspy's P45 bcf (in its order),
    those elements set; returns (dock, plot, elements)."""
    import numpy as np

    from napari_cryomat.core.eds import eds_lines

    viewer, w = spectrum_dock(show=True)
    found = ("Si", "Al", "O", "K", "Ca", "Na", "Fe", "Mg", "Ti")  # in the order Identify gave them
    energy = np.arange(2048) * 10.0
    spectrum = 5.0 + 200.0 * np.exp(-energy / 4000.0)
    for el in found:
        for line in eds_lines(el, energy_range=(200.0, 20000.0)):
            spectrum += 300.0 * line.weight * np.exp(-0.5 * ((energy - line.energy) / 60.0) ** 2)
    si = np.random.default_rng(5).poisson(np.broadcast_to(spectrum, (6, 8, energy.size))).astype(np.float32)
    add_si(viewer, si, energy, "bcf-like", signal_type="EDS")
    w.si_combo.setCurrentText("bcf-like")
    w.eds.beam_spin.setValue(20.0)
    w.set_elements(", ".join(found))
    plot = w.plot
    qtbot.waitUntil(lambda: w.model.spectra is not None, timeout=30000)
    return w, plot, found


def test_every_identified_elements_main_line_is_named_before_any_minor_line(spectrum_dock, qtbot, add_si):
    """The gui22 review (P45 bcf, 20 kV, a 768 px screen): of the nine identified elements Na Ka and Mg Ka had no
    label while Si Lb3, a minor line, had one: the five main lines of O, Na, Mg, Al and Si lie within 1.3 keV, a few
    px apart on a 0-21 keV axis, and the labels' text boxes (8 px of margin each way) left room for four rows."""
    w, plot, found = _bcf_like_dock(spectrum_dock, qtbot, add_si)
    main = {f"{el} Ka" for el in found}
    for plot_height in (170, 260):  # the review's 768 px screen (a 141 px view box), and a taller dock
        plot.plot.setFixedHeight(plot_height + AXIS_LABEL_ROOM)  # the x label's room comes on top, as in the dock
        qtbot.wait(100)
        plot.plot.getViewBox().updateMatrix()
        plot._place_labels()
        shown = _shown_labels(plot)
        assert main <= set(shown), (plot_height, sorted(main - set(shown)))
        _assert_no_overlap(shown)
        rects = [rect for _, rect in shown.values()]
        assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:]), plot_height


def test_no_marker_line_is_drawn_across_a_label(spectrum_dock, qtbot, add_si):
    """The gui22 review: "O Ka", "Si Lb3", "Al Ka", "K Ka" were struck through by the dotted markers of their
    neighbours. A label has the plot's background behind it and stands above every marker line it spans."""
    from qtpy.QtCore import Qt

    w, plot, _ = _bcf_like_dock(spectrum_dock, qtbot, add_si)
    plot.plot.setFixedHeight(170)
    qtbot.wait(100)
    plot.plot.getViewBox().updateMatrix()
    plot._place_labels()
    view = plot.plot.getViewBox()
    crossings = 0
    for line in plot.markers:
        if not line.label.isVisible():
            continue
        fill = line.label.fill  # the dotted lines do not show through
        assert fill.style() != Qt.NoBrush and fill.color().alpha() >= 180, line.label.format
        rect, own_x = line.label.sceneBoundingRect(), view.mapViewToScene(pg_point(line.value())).x()
        for other in plot.markers:
            x = view.mapViewToScene(pg_point(other.value())).x()
            if rect.left() < x < rect.right() and abs(x - own_x) > 1.0:  # a line on the label's own edge crosses none
                crossings += 1
                assert other.zValue() < line.zValue(), (line.label.format, other.label.format)
    assert crossings > 0  # the crowd below 2 keV: labels do span their neighbours' lines


def pg_point(x):
    from qtpy.QtCore import QPointF

    return QPointF(x, 0.0)
