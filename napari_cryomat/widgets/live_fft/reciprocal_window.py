"""The napari window of Live FFT's reciprocal-space layers (the detected spectrum and spots, in 1/Å).

A second napari Viewer: napari draws the layers of one viewer in one system of units, so 1/Å layers
beside the micrograph's Å ones would turn unit-aware drawing off for all of them (with a warning).

Two napari windows share one GL thread, each canvas with its own GL context. napari deletes a removed layer's GL
objects (programs, buffers, textures) at once, by flushing its canvas' GL commands outside a paint
(``VispyCanvas._clean_and_update_scenegraph``: ``context.finish()``), in whatever context is current. With two
windows that can be the other window's, whose objects of the same names it then deletes: the other window's next
draw failed ("Error drawing visual <Image>": glUseProgram GL_INVALID_VALUE, raised at glVertexAttribPointer; 3 of
40 test runs under Xvfb/Mesa), or the deletions missed (Mesa: GL_INVALID_VALUE in glDeleteProgram, at every close).
So the reciprocal window makes its own canvas' context current before a layer of it is removed (the micrograph's
window's removals in the other direction did not break it in the test; see the gui27 handoff).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject, QTimer


class _CloseTheNapariWay(QObject):
    """The window's close button closes the viewer as ``Viewer.close()`` does (layers removed, viewer
    forgotten) and then says so: by itself it deletes the Qt window and leaves the viewer, its layers
    and Qt wrappers alive (seen with napari 0.9: one QtViewer left per closed window)."""

    def __init__(self, viewer, on_closed: Callable):
        super().__init__()
        self.viewer, self.on_closed, self.closing = viewer, on_closed, False

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if event.type() != QEvent.Type.Close or self.closing:
            return False
        event.ignore()  # the close button: close the napari way, once this event is over
        self.closing = True
        QTimer.singleShot(0, self._closed_by_user)
        return True

    def _closed_by_user(self) -> None:
        self.on_closed(self.viewer)
        self.viewer.close()

    def close(self) -> None:
        """Close the viewer (the tool is closing)."""
        if not self.closing:
            self.closing = True
            self.viewer.close()


def _own_context_for_removals(qt_viewer) -> None:
    """Before a layer of ``qt_viewer`` is removed, make its canvas' GL context current (see the module's doc)."""
    canvas = qt_viewer.canvas._scene_canvas

    def make_current(_event=None) -> None:
        with contextlib.suppress(RuntimeError):  # its Qt widget is already deleted: no GL object of it is left
            canvas.set_current()

    qt_viewer.viewer.layers.events.removing.connect(make_current)


def open_reciprocal_window(title: str, on_closed: Callable) -> tuple:
    """``(viewer, close)``: a new napari Viewer titled ``title``, and the function that closes it;
    ``on_closed(viewer)`` is called when the user closes it."""
    import napari

    viewer = napari.Viewer(title=title)
    _own_context_for_removals(viewer.window._qt_viewer)
    closer = _CloseTheNapariWay(viewer, on_closed)
    window = viewer.window._qt_window  # our own viewer (not the plugin's proxy): napari has no public close event
    window.installEventFilter(closer)
    # on close napari saves a window's geometry as the one the next session's main window opens with: not this one's
    window._save_current_window_settings = lambda: None
    return viewer, closer.close
