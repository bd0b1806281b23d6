"""`cryomat demo`: every widget docks through napari's plugin machinery (the proxy viewer that
real users get), for every demo topic; the window shows the sample and fits a 1366x768 laptop
screen with every control of every dock reachable."""

import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QTabBar,
    QWidget,
)

from napari_cryomat.cli import DEMOS, WIDGETS, open_demo

pytestmark = pytest.mark.e2e

LAPTOP = (1366, 768 - 40)  # minus a task bar
CONTROLS = (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit)


def _reachable(control: QWidget, window: QWidget) -> bool:
    """On screen inside the window, or inside a scroll area (the user can scroll to it)."""
    parent = control.parentWidget()
    while parent is not None and parent is not window:
        if isinstance(parent, QAbstractScrollArea) and parent.isVisibleTo(window):
            viewport = parent.viewport()
            top_left = viewport.mapTo(window, viewport.rect().topLeft())
            bottom = top_left.y() + viewport.height()
            return 0 <= top_left.y() and bottom <= window.height() + 1
        parent = parent.parentWidget()
    rect = control.rect()
    top_left = control.mapTo(window, rect.topLeft())
    return (0 <= top_left.x() and top_left.x() + rect.width() <= window.width() + 1
            and 0 <= top_left.y() and top_left.y() + rect.height() <= window.height() + 1)


@pytest.mark.parametrize("topic", sorted(DEMOS))
def test_demo_opens_sample_with_all_widgets(make_napari_viewer, topic, monkeypatch, qtbot):
    problems = []
    monkeypatch.setattr("napari.utils.notifications.show_warning", problems.append)
    viewer = make_napari_viewer(show=True)
    open_demo(topic, viewer=viewer)
    assert problems == [], problems  # every widget loaded
    qtbot.wait(50)  # the Live FFT and the browser decide whether they are in front once the event loop runs
    names = [layer.name for layer in viewer.layers]
    front = DEMOS[topic][1]  # a tool behind another tab adds no helper layer
    if front != "Live FFT":
        assert "FFT ROI" not in names
    if front != "Tomogram browser":
        assert "XZ/YZ cuts" not in names
    docked = viewer.window._wrapped_dock_widgets
    for name in WIDGETS:
        assert any(name in key for key in docked), f"{name} not docked"
    assert len(viewer.layers) >= 1
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot[..., :3].std() > 5

    window = viewer.window._qt_window
    window.resize(*LAPTOP)
    qtbot.wait(50)
    assert window.width() <= LAPTOP[0] and window.height() <= LAPTOP[1], (
        f"the window cannot shrink to {LAPTOP}: it is {window.width()}x{window.height()}")
    for key, dock in docked.items():
        dock.show()
        dock.raise_()
        qtbot.wait(20)
        hidden = [c.text() if hasattr(c, "text") else type(c).__name__
                  for c in dock.widget().findChildren(CONTROLS)
                  if c.isVisibleTo(window) and not _reachable(c, window)]
        assert hidden == [], f"{key}: controls off screen at {LAPTOP}: {hidden[:8]}"
    # the tabs name the tools in full (scroll arrows, not "To…", "T…", "D…"), after every raise above
    bars = [bar for bar in window.findChildren(QTabBar)
            if bar.isVisible() and any(bar.tabText(i) in WIDGETS for i in range(bar.count()))]
    assert bars and all(bar.elideMode() == Qt.TextElideMode.ElideNone for bar in bars)
    assert set(WIDGETS) <= {bar.tabText(i) for bar in bars for i in range(bar.count())}
