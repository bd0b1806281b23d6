"""The live power spectrum of the ROI (a :class:`LivePanel`), drawn with pyqtgraph in 1/Å.

``request`` reads the ROI bounds, frame, layer and pixel size into a :class:`~._jobs.Region`;
``compute`` does the FFT in the live worker; ``draw`` shows it. The spectrum of a real image is
point-symmetric: the right half-plane (kx >= 0) is computed and drawn twice, the second time rotated
by 180° about g = 0 (free in Qt). The ROI (a helper layer) exists only while this view is in front.
Hover reads |g|, d and angle; a click picks the spot under the mouse (refined in a worker).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QRectF, QSize, Qt, QTimer
from qtpy.QtGui import QTransform
from qtpy.QtWidgets import QLabel, QVBoxLayout

from napari_cryomat.core import fourier as F
from napari_cryomat.widgets._base import LivePanel
from napari_cryomat.widgets.live_fft._jobs import Region, describe_g
from napari_cryomat.widgets.live_fft._model import LiveFFTModel

__all__ = ["SpectrumView"]

HOVER_HINT = "Hover over the FFT: |g| (1/Å), d (Å), angle (°); click a spot to pick it."


class SpectrumCanvas(pg.GraphicsLayoutWidget):
    """pyqtgraph's canvas asks for 640x480; this one for a dock's width, so the dock stays narrow."""

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(320, 320)


class SpectrumView(LivePanel):
    """Live spectrum of ``model``'s ROI. ``start(make_job)`` runs a model job (the dock's runner)."""

    def __init__(self, model: LiveFFTModel, start: Callable):
        super().__init__(model.viewer)
        self.model = model
        self._start = start
        self._spectrum = F.LiveSpectrum()  # used in the live worker only (it reuses its buffers)
        self._submitted_key = None
        self._half: np.ndarray | None = None
        self._labels: list[pg.TextItem] = []
        #: the Region drawn, and its Å⁻¹ per spectrum pixel (Y, X)
        self.current: Region | None = None
        self.reciprocal_pixel: tuple[float, float] | None = None
        self.n_updates = 0

        self.graphics = SpectrumCanvas()
        self.graphics.setMinimumSize(160, 220)  # the main view: the form scrolls before it shrinks more
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        self.image_item = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.image_item_mirror = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.view.addItem(self.image_item_mirror)
        self.view.addItem(self.image_item)
        self.peak_scatter = pg.ScatterPlotItem(size=11, pen=pg.mkPen("c", width=1.5), brush=None)
        self.super_scatter = pg.ScatterPlotItem(size=11, pen=pg.mkPen("m", width=1.5), brush=None, symbol="s")
        self.pick_scatter = pg.ScatterPlotItem(size=14, pen=pg.mkPen("y", width=2), brush=None, symbol="+")
        for item in (self.peak_scatter, self.super_scatter, self.pick_scatter):
            self.view.addItem(item)
        self.graphics.scene().sigMouseMoved.connect(self._on_hover)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)

        self.readout = QLabel(HOVER_HINT)
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #e0a040")
        self.note.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.readout)
        layout.addWidget(self.note)

        dims = self.viewer.dims
        for event in (dims.events.order, dims.events.ndisplay, model.layer_changed):
            self.links.connect(event, self.update_live)
        self.links.connect(model.roi_changed, self._on_roi_changed)
        self.links.connect(model.lattice_changed, self._on_lattice)
        self.links.connect(model.picks_changed, self._on_picks)

    # -- the ROI exists only while this view is in front ----------------------------------------
    def showEvent(self, event):  # noqa: N802 (Qt name)
        super().showEvent(event)
        # Decide once Qt has settled which tab is in front: when a window is shown, every tabbed
        # dock's content is shown for a moment, and a tool behind another tab must not add its ROI.
        QTimer.singleShot(0, self._sync_after_show)

    def _sync_after_show(self) -> None:
        try:
            visible = self.isVisible()
        except RuntimeError:  # closed before the event loop came back
            return
        self._sync_roi(visible)

    def hideEvent(self, event):  # noqa: N802 (Qt name)
        super().hideEvent(event)
        self._sync_roi(False)

    def on_front_changed(self, in_front: bool) -> None:
        self._sync_roi(self.isVisible())

    def _sync_roi(self, visible: bool) -> None:
        if visible and self.in_front:
            self.model.show_roi()
            self.update_live()
        else:
            self.model.hide_roi()

    def _on_roi_changed(self) -> None:
        # the ROI layer fires many events (a drag, a highlight): submit only what shows new pixels
        try:
            region = self.model.live_region()
        except ValueError:
            region = None
        if region is None or region.key != self._submitted_key:
            self.update_live()

    # -- LivePanel ------------------------------------------------------------------------------
    def request(self) -> Region | None:
        region = self.model.live_region()
        self._submitted_key = None if region is None else region.key
        return region

    def compute(self, region: Region):
        half, levels = self._spectrum(region.pixels())
        return half.copy(), levels  # the live buffer is reused by the next call

    def draw(self, region: Region, result) -> None:
        half, levels = result
        ny, nx = region.shape
        dgy, dgx = 1.0 / (ny * region.pixel_size), 1.0 / (nx * region.pixel_size)
        # row r of the half plane is ky = r - ny // 2, column c is kx = c (pixel centres)
        rect = QRectF(-0.5 * dgx, -(ny // 2 + 0.5) * dgy, half.shape[1] * dgx, ny * dgy)
        for item in (self.image_item, self.image_item_mirror):
            item.setImage(half, levels=levels, autoLevels=False)
            item.setRect(rect)
        self.image_item_mirror.setTransform(self.image_item_mirror.transform() * QTransform.fromScale(-1, -1))
        new_geometry = self.reciprocal_pixel != (dgy, dgx)
        self._half, self.current, self.reciprocal_pixel = half, region, (dgy, dgx)
        self._set_note(region.note)
        if new_geometry:
            self.view.autoRange(padding=0)
        self.n_updates += 1

    def clear(self) -> None:
        for item in (self.image_item, self.image_item_mirror):
            item.clear()
        self._half = self.current = self.reciprocal_pixel = None
        self._submitted_key = None
        self._set_note("")

    def on_invalid(self, error: ValueError) -> None:
        # keep the last spectrum on screen (a drag past the edge is a passing state) and say why
        self._submitted_key = None
        self._set_note(str(error))

    def on_error(self, request, error: Exception) -> None:
        self._submitted_key = None
        self._set_note(str(error) if isinstance(error, ValueError) else f"FFT failed: {error}")

    def _set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def spectrum(self) -> np.ndarray | None:
        """The spectrum shown as a full centred (Y, X) array (float32 bits as int32), or None."""
        if self.current is None:
            return None
        return F.LiveSpectrum.mirror(self._half, self.current.shape)

    # -- hover and click ------------------------------------------------------------------------
    def _g_at_scene(self, pos) -> np.ndarray | None:
        if self.current is None or not self.view.sceneBoundingRect().contains(pos):
            return None
        point = self.view.mapSceneToView(pos)
        return np.array([point.y(), point.x()])

    def _on_hover(self, pos) -> None:
        g = self._g_at_scene(pos)
        if g is None:
            return
        text = describe_g(g)
        self.readout.setText(text)
        try:
            self.viewer.status = f"FFT: {text}"
        except Exception:  # the status bar is a nicety
            pass

    def _on_click(self, event) -> None:
        if event.button() == Qt.LeftButton:
            g = self._g_at_scene(event.scenePos())
            if g is not None:
                self.pick(g)

    def pick(self, g):
        """Pick the spot nearest ``g`` (Å⁻¹) of the spectrum shown (refined in a worker)."""
        return self._start(lambda: self.model.pick_job(g, self.current))

    # -- overlays --------------------------------------------------------------------------------
    def _on_lattice(self, detection) -> None:
        self._draw_overlays()
        lattice = self.model.lattice
        if lattice is not None:  # zoom onto the indexed spots (the mouse wheel zooms back out)
            reach = 1.15 * max([pk.g_abs for pk in lattice.peaks + lattice.superlattice] or [1.0])
            self.view.setRange(xRange=(-reach, reach), yRange=(-reach, reach), padding=0)

    def _on_picks(self, picks) -> None:
        self._draw_overlays()
        if picks:
            self.readout.setText("picked: " + describe_g(picks[-1].g) + f"   SNR {picks[-1].snr:.0f}")

    def _draw_overlays(self) -> None:
        for label in self._labels:
            self.view.removeItem(label)
        self._labels = []
        lattice = self.model.lattice
        peaks = lattice.peaks if lattice else []
        superlattice = lattice.superlattice if lattice else []
        for scatter, spots in ((self.peak_scatter, peaks), (self.super_scatter, superlattice),
                               (self.pick_scatter, self.model.picks)):
            scatter.setData([pk.g[1] for pk in spots], [pk.g[0] for pk in spots])
        # label only the basis spots and the two shortest superlattice spots in different directions
        # (readable); lattice labels above-right of the spot, superlattice labels below-left
        basis = [(pk, "c", (0, 1)) for pk in peaks if pk.hk in ((1, 0), (0, 1))]
        shortest = _distinct_directions(sorted((pk for pk in superlattice if pk.g[0] <= 0), key=lambda pk: pk.g_abs))
        for pk, colour, anchor in basis + [(pk, "m", (1, 0)) for pk in shortest[:2]]:
            label = pg.TextItem(pk.label(), color=colour, anchor=anchor)
            label.setPos(pk.g[1], pk.g[0])
            self.view.addItem(label)
            self._labels.append(label)


def _distinct_directions(spots, min_angle: float = 20.0) -> list:
    """The spots (in order) whose direction differs by ``min_angle`` degrees from every one kept
    before: their labels do not overlap."""
    kept = []
    for pk in spots:
        if all(abs((pk.angle - other.angle + 180) % 360 - 180) >= min_angle for other in kept):
            kept.append(pk)
    return kept
