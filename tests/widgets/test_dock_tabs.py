"""Our docks open as tabs on each other where napari would stack them too small to use."""

from __future__ import annotations

import pytest
from qtpy.QtWidgets import QLabel, QTabBar


def _open(viewer, qtbot, name):
    dock, widget = viewer.window.add_plugin_dock_widget("napari-cryomat", name)
    qtbot.waitUntil(lambda: dock.isVisible() or bool(viewer.window._qt_window.tabifiedDockWidgets(dock)), timeout=5000)
    qtbot.wait(50)
    return dock


@pytest.mark.parametrize("height", [740])
def test_second_tool_opens_as_a_tab_on_a_laptop_screen(make_napari_viewer, qtbot, height):
    """Live FFT then Drift correction from the Plugins menu on a 1366 x 740 window: napari stacks
    them (Drift then showed only down to its Align button); they open as tabs, the new one in front."""
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1366, height)
    fft = _open(viewer, qtbot, "Live FFT")
    drift = _open(viewer, qtbot, "Drift correction")
    assert window.tabifiedDockWidgets(drift) == [fft]
    tab_bars = [bar for bar in window.findChildren(QTabBar)
                if {bar.tabText(i) for i in range(bar.count())} == {fft.windowTitle(), drift.windowTitle()}]
    assert len(tab_bars) == 1 and tab_bars[0].tabText(tab_bars[0].currentIndex()) == drift.windowTitle()
    assert drift.height() > 0.8 * window.centralWidget().height()  # the whole right column


def test_another_plugins_dock_is_left_stacked(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1366, 740)
    other = viewer.window.add_dock_widget(QLabel("another plugin"), name="other", area="right")
    qtbot.wait(50)
    drift = _open(viewer, qtbot, "Drift correction")
    assert window.tabifiedDockWidgets(drift) == [] and other.isVisible() and drift.isVisible()


def test_docks_stay_stacked_where_both_fit(make_napari_viewer, qtbot):
    """A window tall enough for both at their preferred heights keeps napari's stack."""
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1366, 2600)
    qtbot.waitUntil(lambda: window.height() > 2000, timeout=3000)
    fft = _open(viewer, qtbot, "Live FFT")
    drift = _open(viewer, qtbot, "Drift correction")
    assert window.tabifiedDockWidgets(drift) == [] and fft.isVisible() and drift.isVisible()
