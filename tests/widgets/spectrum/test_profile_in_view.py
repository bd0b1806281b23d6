"""The composition profile under "Draw profile line", as a user sees it on a 1366x768 laptop: the dock's content
is taller than the dock, and the profile plot lay below its bottom edge (only its top strip showing). Pressing
"Draw profile line" scrolls the whole plot into view, a plot high enough for its axis label and tick labels
(120 px left a profile with its title 51 px of data area: the 0-1 labels overlapped under a 97 px axis label).
"""

import numpy as np
from qtpy.QtGui import QImage, QPainter


def _top_in_viewport(w, widget) -> int:
    return widget.mapTo(w.scroll.viewport(), widget.rect().topLeft()).y()


def test_draw_profile_line_brings_the_profile_plot_into_view(spectrum_dock, add_si, qtbot):
    viewer, w = spectrum_dock(show=True)
    viewer.window._qt_window.resize(1366, 768)
    si = np.random.default_rng(2805).poisson(40.0, size=(16, 16, 128)).astype(np.float32)  # fixed draw
    add_si(viewer, si, 250.0 + 2.0 * np.arange(128), "small SI")
    # the first spectrum is drawn (its cursor line shown): the dock has its final layout, and it scrolls
    qtbot.waitUntil(lambda: w.plot.cursor_label.isVisible(), timeout=10000)
    qtbot.wait(50)
    viewport, profile = w.scroll.viewport(), w.maps.profile.plot
    assert w.content.height() > viewport.height()
    assert _top_in_viewport(w, profile) + profile.height() > viewport.height()  # the premise: cut at the bottom
    assert not w.maps.legend.isVisible()  # no maps yet: no blank legend line above the ratio row

    w.maps.line_button.click()
    assert "composition line" in viewer.layers
    qtbot.wait(50)
    top = _top_in_viewport(w, profile)
    assert top >= 0 and top + profile.height() <= viewport.height(), (top, profile.height(), viewport.height())
    # the counts axis: its label no longer than the data area is high, its tick labels apart
    view, axis = profile.getViewBox(), profile.getAxis("left")
    assert axis.label.boundingRect().width() <= view.height(), (axis.label.boundingRect().width(), view.height())
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        ticks = [(text, rect) for rect, _, text in axis.generateDrawSpecs(painter)[2] if text]
    finally:
        painter.end()
    assert len(ticks) >= 3 and not any(a.intersects(b) for i, (_, a) in enumerate(ticks) for _, b in ticks[:i]), ticks
