"""The Spectrum imaging dock's live plot before it has a spectrum, as a user sees it on a 1366x768 laptop: the
hint sits inside the plot (not under it, below an empty legend line), and with "log" on the counts axis labels
only the minor ticks that have room (pyqtgraph labelled all of 2..9 in a 140 px column). (Once a spectrum is
drawn the note goes and the cursor line comes: test_spectrum_view.)"""

from qtpy.QtGui import QImage, QPainter


def _tick_texts(axis):
    """(text, rect) of each tick label the axis draws, as pyqtgraph lays them out."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(text, rect) for rect, _, text in texts if text]


def test_empty_log_plot_has_its_hint_inside_and_readable_ticks(spectrum_dock, qtbot):
    viewer, w = spectrum_dock(show=True)
    viewer.window._qt_window.resize(1366, 768)
    plot = w.plot
    plot.log_check.setChecked(True)
    qtbot.wait(50)
    view = plot.plot.getViewBox()
    assert view.sceneBoundingRect().height() < 200  # the laptop's short plot, where the labels crowded

    texts = _tick_texts(plot.plot.getAxis("left"))
    assert texts, "the counts axis shows no value at all"
    for i, (text, rect) in enumerate(texts):
        for other, other_rect in texts[:i]:
            assert not rect.intersects(other_rect), f"tick labels {text!r} and {other!r} overlap: {texts}"

    assert plot.note.shown and "cursor" in plot.note.text
    assert view.sceneBoundingRect().contains(plot.note.label.sceneBoundingRect())
    assert not plot.cursor_label.isVisible() and not plot.legend_label.isVisible()
