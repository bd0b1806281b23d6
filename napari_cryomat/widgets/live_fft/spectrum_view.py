"""The live power spectrum of the ROI (a :class:`LivePanel`), drawn with pyqtgraph in 1/Å.

``request`` reads the ROI bounds, frame, layer and pixel size into a :class:`~._jobs.Region`, with the
spectrum mode (Auto, Single for crystals, Averaged for micrographs); ``compute`` does the FFT in the
live worker; ``draw`` shows it and says in the status line what was drawn. The spectrum of a real image is
point-symmetric: the right half-plane (kx >= 0) is computed and drawn twice, the second time rotated
by 180° about g = 0 (free in Qt). The ROI (a helper layer) exists only while this view is in front.
Hover reads |g|, d and angle; a click picks the spot under the mouse (refined in a worker).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from qtpy.QtGui import QTransform
from qtpy.QtWidgets import QCheckBox, QComboBox, QLabel, QSizePolicy, QVBoxLayout

from napari_cryomat.core import fourier as F
from napari_cryomat.widgets._base import LivePanel, hbox
from napari_cryomat.widgets.live_fft._jobs import Region, describe_g, labelled_satellites, spot_label
from napari_cryomat.widgets.live_fft._model import SPECTRUM_MODES, LiveFFTModel

__all__ = ["SpectrumView"]

HOVER_HINT = "Hover over the FFT: |g| (1/Å), d (Å), angle (°); click a spot to pick it."


class SpectrumCanvas(pg.GraphicsLayoutWidget):
    """pyqtgraph's canvas asks for 640x480; this one for a dock's width, so the dock stays narrow."""

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(320, 320)


MODE_TIPS = {
    "auto": "Single periodogram when the ROI's spectrum has sharp spots (a crystal), else the averaged one",
    "single": "The whole ROI's power spectrum: full resolution in g, for crystal spots and lattices\n"
              "(on amorphous ice or carbon it is noisy speckle)",
    "averaged": "Mean power spectrum of overlapping tiles of the ROI (as CTFFIND or the microscope's live FFT):\n"
                "the speckle averages out and Thon rings and the ice ring show; spots get wider.\n"
                "A bigger ROI averages more tiles and uses bigger ones (finer rings)",
}


@dataclass(frozen=True, eq=False)
class SpectrumRequest:
    """What the live worker computes: the pixels of ``region`` as spectrum ``mode``."""

    region: Region
    mode: str
    flatten: bool

    @property
    def key(self) -> tuple:
        return self.region.key + (self.mode, self.flatten)


def describe_spectrum(info, region: Region, auto: bool) -> str:
    """The status line: what the spectrum drawn is, in a few words (two lines of a narrow dock)."""
    if info.mode == "single":
        return f"Single spectrum, {region.shape[0]}×{region.shape[1]} px" + (" (Auto: sharp spots)" if auto else "")
    tile = info.shape[0]
    text = f"Averaged, {info.n_tiles} tiles of {tile}² px" + (", flattened" if info.flattened else "")
    if auto:
        text += " (Auto: no sharp spots)"
    if tile < F.default_tile((4096, 4096)):  # not yet the largest tile: a bigger ROI refines the rings
        text += ". Bigger ROI: finer rings"
    return text


#: the most spectrum pixels a side handed to the canvas: a dock shows well under 1024, and pyqtgraph's own
#: downsampling of a bigger spectrum runs on the GUI thread, once per image item (the half plane and its
#: mirror): a 2048² ROI's spectrum took ~100 ms of GUI thread per update (tests/widgets/live_fft)
DISPLAY_MAX_SIDE = 1024


def display_copy(half: np.ndarray) -> tuple[np.ndarray, int]:
    """``(copy, k)``: ``half`` binned k x k (means, as pyqtgraph's own downsampling; the last partial bins
    left out) so that no side exceeds :data:`DISPLAY_MAX_SIDE`; ``half`` itself and 1 when it is small."""
    k = -(-max(half.shape) // DISPLAY_MAX_SIDE)
    if k <= 1:
        return half, 1
    ny, nx = half.shape[0] // k * k, half.shape[1] // k * k
    return half[:ny, :nx].reshape(ny // k, k, nx // k, k).mean(axis=(1, 3), dtype=np.float32), k


class SpectrumView(LivePanel):
    """Live spectrum of ``model``'s ROI. ``start(make_job)`` runs a model job (the dock's runner)."""

    def __init__(self, model: LiveFFTModel, start: Callable):
        super().__init__(model.viewer)
        self.model = model
        self._start = start
        # one per (mode, flatten), used in the live worker only (each reuses its buffers)
        self._spectra: dict[tuple[str, bool], F.LiveSpectrum] = {}
        self._submitted_key = None
        self._half: np.ndarray | None = None
        self._labels: list[pg.TextItem] = []
        #: the Region drawn, its Å⁻¹ per spectrum pixel (Y, X), the full spectrum's shape and what the
        #: LiveSpectrum drew (LiveSpectrum.last: mode, tiles)
        self.current: Region | None = None
        self.reciprocal_pixel: tuple[float, float] | None = None
        self.shown_shape: tuple[int, int] | None = None
        self.info = None
        self.n_updates = 0

        self.mode = QComboBox()
        for key, text in SPECTRUM_MODES.items():
            self.mode.addItem(text, key)
            self.mode.setItemData(self.mode.count() - 1, MODE_TIPS[key], Qt.ToolTipRole)
        self.mode.setCurrentIndex(self.mode.findData(model.spectrum_mode))
        self.mode.setToolTip("What the spectrum shows. Auto: " + MODE_TIPS["auto"])
        self.mode.currentIndexChanged.connect(self._on_mode)
        self.flatten = QCheckBox("flatten")
        self.flatten.setChecked(model.flatten)
        self.flatten.setToolTip("Averaged spectrum: divide out its smooth fall-off with |g| (envelope, detector),\n"
                                "so rings show from the centre to the edge")
        self.flatten.toggled.connect(self._on_flatten)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #a0a0a0")
        # a fixed two-line box: new words must not resize the canvas (a relayout repaints a 2048²
        # spectrum: 50 ms of GUI thread)
        self.status.setFixedHeight(2 * self.status.fontMetrics().lineSpacing() + 8)
        self.status.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)

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
        self.view.sigRangeChanged.connect(self._place_labels)  # zoom, pan, resize: the label boxes move
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
        layout.addWidget(hbox(QLabel("Spectrum"), self.mode, self.flatten))
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.readout)
        layout.addWidget(self.note)
        self._sync_flatten()

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
        if region is None or region.key + (self.model.spectrum_mode, self.model.flatten) != self._submitted_key:
            self.update_live()

    def _on_mode(self, _index: int) -> None:
        self.model.spectrum_mode = self.mode.currentData()
        self._sync_flatten()
        self.update_live()

    def _on_flatten(self, checked: bool) -> None:
        self.model.flatten = bool(checked)
        self.update_live()

    def _sync_flatten(self) -> None:
        self.flatten.setEnabled(self.model.spectrum_mode != "single")  # the single spectrum is never flattened

    # -- LivePanel ------------------------------------------------------------------------------
    def request(self) -> SpectrumRequest | None:
        region = self.model.live_region()
        if region is None:
            self._submitted_key = None
            return None
        request = SpectrumRequest(region, self.model.spectrum_mode, self.model.flatten)
        self._submitted_key = request.key
        return request

    def compute(self, request: SpectrumRequest):
        key = (request.mode, request.flatten)
        live = self._spectra.get(key)
        if live is None:
            live = self._spectra[key] = F.LiveSpectrum(mode=request.mode, flatten=request.flatten)
        half, levels = live(request.region.pixels())
        # a float32 copy (the live buffer is reused by the next call): pyqtgraph paints float32 through
        # its fast path, int32 through a slow one (1024² ROI, both halves: 8 ms instead of 74 ms)
        half = half.astype(np.float32)
        return half, display_copy(half), levels, live.last

    def draw(self, request: SpectrumRequest, result) -> None:
        half, (shown, k), levels, info = result
        region = request.region
        ny, nx = info.shape  # the ROI's (single) or a tile's (averaged)
        dgy, dgx = 1.0 / (ny * region.pixel_size), 1.0 / (nx * region.pixel_size)
        # row r of the half plane is ky = r - ny // 2, column c is kx = c (pixel centres); a display copy
        # binned k x k covers the first shown.shape * k rows and columns
        rect = QRectF(-0.5 * dgx, -(ny // 2 + 0.5) * dgy, shown.shape[1] * k * dgx, shown.shape[0] * k * dgy)
        for item in (self.image_item, self.image_item_mirror):
            item.setImage(shown, levels=levels, autoLevels=False)
            item.setRect(rect)
        self.image_item_mirror.setTransform(self.image_item_mirror.transform() * QTransform.fromScale(-1, -1))
        # the view's extent (Nyquist) depends on the pixel size only: keep the user's zoom across modes
        new_extent = self.current is None or self.current.pixel_size != region.pixel_size
        self._half, self.current, self.reciprocal_pixel = half, region, (dgy, dgx)
        self.shown_shape, self.info = (ny, nx), info
        self._set_status(describe_spectrum(info, region, request.mode == "auto"))
        self._set_note(region.note)
        if new_extent:
            self.view.autoRange(padding=0)
        self.n_updates += 1

    def clear(self) -> None:
        for item in (self.image_item, self.image_item_mirror):
            item.clear()
        self._half = self.current = self.reciprocal_pixel = self.shown_shape = self.info = None
        self._submitted_key = None
        self.status.setText("")
        self._set_note("")

    def on_invalid(self, error: ValueError) -> None:
        # keep the last spectrum on screen (a drag past the edge is a passing state) and say why
        self._submitted_key = None
        self._set_note(str(error))

    def on_error(self, request, error: Exception) -> None:
        self._submitted_key = None
        self._set_note(str(error) if isinstance(error, ValueError) else f"FFT failed: {error}")

    def _set_status(self, text: str) -> None:
        if text != self.status.text():
            self.status.setText(text)

    def _set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def spectrum(self) -> np.ndarray | None:
        """The spectrum shown as a full centred array, or None: LiveSpectrum's log-scale values
        (``LiveSpectrum.to_ln`` gives ln power) as float32, in the ROI's shape for a single spectrum,
        a tile's for an averaged one (:attr:`shown_shape`)."""
        if self.current is None:
            return None
        return F.LiveSpectrum.mirror(self._half, self.shown_shape)

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
        lattice = self.model.lattice
        peaks = lattice.peaks if lattice else []
        superlattice = lattice.superlattice if lattice else []
        for scatter, spots in ((self.peak_scatter, peaks), (self.super_scatter, superlattice),
                               (self.pick_scatter, self.model.picks)):
            scatter.setData([pk.g[1] for pk in spots], [pk.g[0] for pk in spots])
        self._place_labels()

    def _place_labels(self, *_) -> None:
        """Label the basis spots, then one satellite per modulation (:func:`labelled_satellites`); a label
        whose box would overlap one placed before is left out (its spot keeps its marker, and a click or the
        spot list gives its index). Labels keep their size in screen pixels, so this is redone on zoom."""
        for label in self._labels:
            self.view.removeItem(label)
        self._labels = []
        lattice = self.model.lattice
        if lattice is None:
            return
        # lattice labels above-right of their spot, satellite labels below-left
        wanted = [(pk, "c", (0, 1)) for pk in lattice.peaks if pk.hk in ((1, 0), (0, 1))]
        wanted += [(pk, "m", (1, 0)) for pk in labelled_satellites(lattice)]
        placed: list[QRectF] = []
        for pk, colour, anchor in wanted:
            # on a dark box: readable over the speckle and the spot markers
            label = pg.TextItem(spot_label(pk), color=colour, anchor=anchor, fill=(0, 0, 0, 170))
            size = label.textItem.boundingRect()  # in screen pixels, whatever the zoom
            spot = self.view.mapViewToScene(QPointF(pk.g[1], pk.g[0]))
            box = QRectF(spot.x() - anchor[0] * size.width(), spot.y() - anchor[1] * size.height(),
                         size.width(), size.height())
            if any(box.intersects(other) for other in placed):
                continue
            placed.append(box)
            label.setPos(pk.g[1], pk.g[0])
            self.view.addItem(label)
            self._labels.append(label)
