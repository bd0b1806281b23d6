"""Layout pieces that make every dock fit a 1366x768 laptop screen, and the plumbing that ties a
widget's life to the viewer's events.

- :class:`ScrollPanel`: the dock's content in a vertical scroll area, so a tall form never pushes
  the window beyond the screen; opened beside another of our docks where both would not fit, it
  opens as a tab on it.
- :class:`Section`: a collapsible group (a tool button with an arrow); rarely used options start
  collapsed.
- :class:`DockVisibility`: tells a widget when its dock tab comes to the front or goes behind.
- :class:`EventLinks`: connects viewer events and disconnects them all when the widget is destroyed
  (napari outlives its docks; a dangling connection would call into a deleted Qt object).
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject, QSize, Qt
from qtpy.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["DockVisibility", "EventLinks", "ScrollPanel", "Section", "hbox", "tab_if_crowded"]


def hbox(*widgets, stretch_last: bool = False) -> QWidget:
    """A row of widgets with no margins."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    if stretch_last:
        layout.addStretch(1)
    return row


class Section(QWidget):
    """A titled group that folds away: click the title to show or hide its content.

    ``section.layout_`` (a QVBoxLayout) takes the content; ``expanded`` says whether it is shown.
    """

    def __init__(self, title: str, *, expanded: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self.toggle = QToolButton()
        self.toggle.setText(title)
        self.toggle.setCheckable(True)
        self.toggle.setChecked(expanded)
        self.toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.toggle.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.toggle.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.body = QFrame()
        self.layout_ = QVBoxLayout(self.body)
        self.layout_.setContentsMargins(8, 0, 0, 4)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        outer.addWidget(self.toggle)
        outer.addWidget(self.body)
        self.toggle.toggled.connect(self._set_expanded)
        self._set_expanded(expanded)

    @property
    def expanded(self) -> bool:
        return self.toggle.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.toggle.setChecked(expanded)

    def _set_expanded(self, expanded: bool) -> None:
        self.toggle.setArrowType(Qt.DownArrow if expanded else Qt.RightArrow)
        self.body.setVisible(expanded)

    def add(self, widget: QWidget) -> QWidget:
        self.layout_.addWidget(widget)
        return widget


class ScrollPanel(QWidget):
    """A dock's content: a vertical stack inside a scroll area, plus an optional footer that stays
    visible below it (the progress bar and Cancel of a TaskRunner).

    ``panel.add(widget)`` appends to the scrolled stack. The panel asks for little height, so a
    tabbed dock never makes the window taller than a laptop screen.
    """

    MIN_HEIGHT = 200

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.content = QWidget()
        self.stack = QVBoxLayout(self.content)
        self.stack.setContentsMargins(4, 4, 4, 4)
        self.stack.setSpacing(4)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.content)
        self.footer = QVBoxLayout()
        self.footer.setContentsMargins(4, 0, 4, 4)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.scroll, 1)
        outer.addLayout(self.footer)
        self._stretched = False
        self._placed = False
        # napari adds a stretch below a docked widget unless something in it expands vertically,
        # which would pin the footer mid-dock and leave the dock's lower part blank
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)

    def add(self, widget: QWidget, stretch: int = 0) -> QWidget:
        self.stack.addWidget(widget, stretch)
        return widget

    def add_footer(self, widget: QWidget) -> QWidget:
        self.footer.addWidget(widget)
        return widget

    def finish(self) -> None:
        """Call after the last :meth:`add`: pushes the content to the top."""
        if not self._stretched:
            self.stack.addStretch(1)
            self._stretched = True

    def showEvent(self, event):  # noqa: N802 (Qt name)
        super().showEvent(event)
        if not self._placed:  # the dock exists once napari has docked the panel, so at its first show
            self._placed = True
            tab_if_crowded(self)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        hint = self.content.sizeHint()
        return QSize(hint.width() + self.scroll.verticalScrollBar().sizeHint().width() + 8, min(hint.height(), 560))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(self.content.minimumSizeHint().width(), self.MIN_HEIGHT)


def _dock_of(widget: QWidget) -> QDockWidget | None:
    parent = widget.parent()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parent()
    return parent


def tab_if_crowded(panel: QWidget) -> None:
    """Put ``panel``'s dock in a tab on another of our docks where napari stacked them and the stack
    cannot give each its preferred height.

    napari stacks a dock opened from the Plugins menu under those already in its area: on a 768 px
    screen the Live FFT above Drift correction left Drift showing only down to its Align button. Two of
    our docks need ~1,100 px at their preferred heights, so on a laptop they open as tabs (as the demo
    docks them); on a screen tall enough for both they stay stacked. Another plugin's dock is left where
    napari put it."""
    dock = _dock_of(panel)
    window = dock.parentWidget() if dock is not None else None
    if dock is None or dock.isFloating() or not isinstance(window, QMainWindow):
        return
    area = window.dockWidgetArea(dock)
    tabbed = set(window.tabifiedDockWidgets(dock))
    # docks in one tab group share one place (one rectangle) of the stack; a tab behind another keeps
    # isVisible(), so the places are told apart by their rectangles
    places: dict[tuple, list[QDockWidget]] = {}
    for other in window.findChildren(QDockWidget):
        if other is not dock and other not in tabbed and not other.isHidden() and not other.isFloating() \
                and window.dockWidgetArea(other) == area:
            places.setdefault(other.geometry().getRect(), []).append(other)
    ours = [other for group in places.values() for other in group if other.findChild(ScrollPanel) is not None]
    if not ours:
        return
    wanted = dock.sizeHint().height() + sum(max(d.sizeHint().height() for d in group) for group in places.values())
    room = dock.height() + sum(rect[3] for rect in places)
    if wanted <= room:
        return
    window.tabifyDockWidget(ours[-1], dock)
    dock.show()
    dock.raise_()


class DockVisibility(QObject):
    """Calls ``callback(visible)`` when the dock holding ``widget`` comes to the front or goes
    behind another tab.

    A tabbed QDockWidget reports this only through its ``visibilityChanged`` signal (its content
    keeps ``isVisible()``), and the dock exists only once napari has docked the widget, so the
    connection is made at the widget's first show.
    """

    def __init__(self, widget: QWidget, callback: Callable[[bool], None]):
        super().__init__(widget)
        self._widget = widget
        self._callback = callback
        self.dock: QDockWidget | None = None
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802 (Qt name)
        if event.type() == QEvent.Show and self.dock is None:
            parent = _dock_of(self._widget)
            if parent is not None:
                self.dock = parent
                parent.visibilityChanged.connect(self._callback)
        return False


class EventLinks:
    """Connections from napari's (or a model's) events to a widget, undone when the widget dies.

    ``links.connect(viewer.layers.events.inserted, self.refresh)``; ``links.on_close(f)`` runs ``f``
    when the widget is destroyed (stop a thread, remove helper layers).
    """

    def __init__(self, widget: QWidget):
        self._links: list[tuple[object, Callable]] = []
        self._closers: list[Callable[[], None]] = []
        widget.destroyed.connect(self.disconnect_all)

    def connect(self, emitter, callback: Callable) -> None:
        emitter.connect(callback)
        self._links.append((emitter, callback))

    def on_close(self, func: Callable[[], None]) -> None:
        self._closers.append(func)

    def disconnect_all(self, *_args) -> None:
        for emitter, callback in self._links:
            try:
                emitter.disconnect(callback)
            except Exception:  # already gone with the viewer
                pass
        self._links.clear()
        for func in self._closers:
            try:
                func()
            except Exception:  # the viewer may be closing too
                pass
        self._closers.clear()
