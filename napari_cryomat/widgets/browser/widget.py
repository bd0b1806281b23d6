"""The tomogram browser's dock: orthogonal views on one cursor, slabs, binning, contrast, 3D,
picking, measuring (3dmod's ZaP window is napari's canvas; the dock is its XYZ window).

:class:`TomogramBrowser` composes the pieces: a :class:`BrowserModel` (state and layers), the
:class:`OrthoViews` live panel and three sections of controls in a :class:`ScrollPanel`, with the
task runner (progress, Cancel) in its footer.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import EventLinks, LayerCombo, ScrollPanel, TaskRunner, show_error
from napari_cryomat.widgets.browser._display import is_browsable
from napari_cryomat.widgets.browser._model import BrowserModel
from napari_cryomat.widgets.browser.display_panel import RenderSection, ViewSection
from napari_cryomat.widgets.browser.orthoviews import OrthoViews
from napari_cryomat.widgets.browser.picks_panel import ClickSection

if TYPE_CHECKING:
    import napari

__all__ = ["TomogramBrowser"]


class TomogramBrowser(QWidget):
    """Dock widget browsing a 3D image layer (Z, Y, X) the way 3dmod does.

    ``browser.model`` holds the state (cursor, slab, binning, picks: see :class:`BrowserModel`);
    the attributes below are the controls, for scripts and tests: ``layer_combo``, ``ortho``
    (XZ / YZ views), ``view`` (slab, binning, low-pass, contrast), ``render`` (3D), ``clicks``
    (mouse mode, distances, picks), ``runner`` (progress, Cancel).
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        from napari.layers import Image

        self.viewer = napari_viewer
        self.model = model = BrowserModel(napari_viewer)
        self.layer_combo = LayerCombo(napari_viewer, (Image,), predicate=is_browsable, placeholder="no image layer",
                                      why="No 3D image in the viewer: open a tomogram (File > Open: MRC, .rec).")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #e0a000")
        self.cursor_label = QLabel("cursor: -")
        self.cursor_label.setWordWrap(True)
        self.ortho = OrthoViews(model)
        self.runner = TaskRunner("3D volume")
        self.view = ViewSection(model, self.runner)
        self.render = RenderSection(model, self.runner, self.view)
        self.clicks = ClickSection(model)

        self.panel = ScrollPanel()
        top = QWidget()
        form = QFormLayout(top)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Tomogram", self.layer_combo)
        for widget in (top, self.status, self.cursor_label):
            self.panel.add(widget)
        self.panel.add(self.ortho, stretch=1)
        for widget in (self.view, self.render, self.clicks):
            self.panel.add(widget)
        self.panel.add_footer(self.runner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)

        self.links = EventLinks(self)
        self.links.connect(model.source_changed, self._on_source)
        self.links.connect(model.cursor_changed, self._show_cursor)
        self.links.on_close(model.detach)
        self.layer_combo.currentIndexChanged.connect(lambda _=None: model.set_source(self.layer_combo.layer()))
        model.attach()
        # Docked in a tab behind another tool (every `cryomat demo`), the browser learns so only once
        # its dock exists and Qt has settled the tabs; until then it must not add its cut lines, or
        # they stay, hidden, in the user's layer list. It decides one event-loop turn later.
        model.set_in_front(False)
        model.set_source(self.layer_combo.layer())
        QTimer.singleShot(0, self._settle_front)
        # Binning and low-pass are lazy dask arrays; the first import of dask.array takes a few hundred
        # ms: take it now, off the GUI thread, rather than when the user first picks a binning.
        threading.Thread(target=importlib.import_module, args=("dask.array",), daemon=True).start()
        if model.source is None:
            self._on_source(None)

    # ---- for scripts and tests --------------------------------------------------------------
    @property
    def source_layer(self):
        """The 3D image layer being browsed (or None)."""
        return self.model.source

    @property
    def display_layer(self):
        """The layer napari shows: the derived binned / low-passed layer or the source itself."""
        return self.model.display.layer

    @property
    def ortho_busy(self) -> bool:
        """True until the orthogonal views show the newest cursor and parameters."""
        return self.ortho.busy

    # the scripting calls the README documents, kept on the widget
    @property
    def cursor(self):
        """The cursor (z, y, x), voxel indices of the tomogram."""
        return self.model.cursor

    def set_cursor(self, zyx) -> None:
        self.model.set_cursor(zyx)

    @property
    def measurements(self) -> list[float]:
        """Distances measured so far, in Å."""
        return self.model.annotations.measurements

    def add_pick(self, zyx) -> None:
        try:
            self.model.annotations.add_pick(zyx)
        except ValueError as exc:
            show_error(f"Tomogram browser: {exc}")

    def export_picks(self, path):
        """Picks to CSV or STAR (file voxel indices); the path, or None with a message."""
        return self.clicks.export_picks(path)

    def import_picks(self, path) -> int:
        return self.clicks.import_picks(path)

    def apply_contrast(self, percentiles=(0.5, 99.5)):
        """Percentile contrast of the visible slab, computed now; (lo, hi), or None with a message."""
        try:
            return self.model.display.apply_contrast(percentiles)
        except ValueError as exc:
            show_error(f"Tomogram browser: {exc}")
            return None

    def _settle_front(self) -> None:
        try:
            in_front = self.ortho.in_front  # what the dock reported since (True if never docked)
        except RuntimeError:  # closed before the event loop came back
            return
        self.model.set_in_front(in_front)

    # ---- model events -------------------------------------------------------------------
    def _on_source(self, layer) -> None:
        for widget in (self.ortho, self.view, self.render, self.clicks):
            widget.setEnabled(layer is not None)
        self.status.setText(self.model.status)
        self.status.setVisible(bool(self.model.status))
        if layer is None:
            self.cursor_label.setText("cursor: -")

    def _show_cursor(self, cursor) -> None:
        z, y, x = (int(c) for c in cursor)
        vz, vy, vx = self.model.voxel_size
        self.cursor_label.setText(f"cursor z {z}  y {y}  x {x} (voxels) = {z * vz:.0f}, {y * vy:.0f}, {x * vx:.0f} Å")
