"""The line labels on the spectrum plot: no two overlap, each element's strongest line is named, and
a zoom makes room for the crowded ones (FePt's Fe L, Cu L, Pt M below 2.2 keV)."""

import pytest

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
