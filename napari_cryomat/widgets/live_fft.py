"""Live FFT dock: calibrated power spectrum of a rectangle ROI, lattice/superlattice indexing,
Bragg filter, GPA, PLD, radial profile and Bragg-peak decay.

The spectrum is drawn in the dock (pyqtgraph), fed by a rectangle in a Shapes layer that the
widget creates over the chosen image. A single background thread computes the *latest* ROI
only ("latest request wins"): while a spectrum is being computed, new requests overwrite one
pending slot, so nothing queues and the display never lags behind a drag.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QObject, QRectF, Qt, Signal
from qtpy.QtGui import QTransform
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.core import fourier as F
from napari_cryomat.widgets._common import (
    DockVisibility,
    LayerCombo,
    TaskRunner,
    angstrom_units,
    pixel_size_of,
    show_error,
    show_info,
)

if TYPE_CHECKING:
    import napari

ROI_LAYER_NAME = "FFT ROI"


class _Relay(QObject):
    result = Signal(object)


class LatestWins:
    """One background thread computing only the most recent request.

    ``submit(job)`` replaces any pending job; ``func(job)`` runs in the thread and its result
    (or the exception it raised) is emitted through ``relay.result`` as ``(job, result, error)``.
    """

    def __init__(self, func):
        self._func = func
        self._cond = threading.Condition()
        self._job = None
        self._stop = False
        self.busy = False
        self.relay = _Relay()
        self._thread = threading.Thread(target=self._loop, name="live-fft", daemon=True)
        self._thread.start()

    def submit(self, job) -> None:
        with self._cond:
            self._job = job
            self._cond.notify()

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._job is None and not self.busy

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._job = None
            self._cond.notify()
        self._thread.join(timeout=2)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job, self._job = self._job, None
                self.busy = True
            try:
                res, err = self._func(job), None
            except Exception as exc:  # reported in the GUI thread
                res, err = None, exc
            with self._cond:
                self.busy = False
            if not self._stop:
                self.relay.result.emit((job, res, err))


def _uid(layer):
    return None if layer is None else layer.unique_id


class LiveFFTWidget(QWidget):
    """Dock widget "Live FFT"."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        from napari.layers import Image

        self.viewer = napari_viewer
        self._live = F.LiveSpectrum()
        self._roi_layer = None
        self._image_layer = None
        self._last_key = None
        self.n_updates = 0
        self.current = None  # dict describing the displayed spectrum
        self.lattice: F.Lattice | None = None
        self.picked: list[F.Peak] = []
        self._labels: list[pg.TextItem] = []

        # ---- layer + ROI ---------------------------------------------------------------------
        self.layer_combo = LayerCombo(
            napari_viewer, (Image,), predicate=lambda layer: not getattr(layer, "rgb", False)
        )
        self.layer_combo.currentIndexChanged.connect(self._on_layer_changed)
        self.reset_roi_button = QPushButton("Reset ROI")
        self.reset_roi_button.setToolTip("Put a 512 px square ROI in the middle of the image")
        self.reset_roi_button.clicked.connect(lambda: self._ensure_roi(reset=True))
        top = QHBoxLayout()
        top.addWidget(QLabel("Image"))
        top.addWidget(self.layer_combo, 1)
        top.addWidget(self.reset_roi_button)

        # ---- spectrum view --------------------------------------------------------------------
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setMinimumSize(300, 300)
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        # the spectrum of a real image is point-symmetric: the right half-plane (kx >= 0) is
        # computed, and drawn twice, the second time rotated by 180° about g = 0 (free in Qt)
        self.image_item = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.image_item_mirror = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.view.addItem(self.image_item_mirror)
        self.view.addItem(self.image_item)
        self.peak_scatter = pg.ScatterPlotItem(size=11, pen=pg.mkPen("c", width=1.5), brush=None)
        self.super_scatter = pg.ScatterPlotItem(size=11, pen=pg.mkPen("m", width=1.5), brush=None, symbol="s")
        self.pick_scatter = pg.ScatterPlotItem(size=14, pen=pg.mkPen("y", width=2), brush=None, symbol="+")
        for it in (self.peak_scatter, self.super_scatter, self.pick_scatter):
            self.view.addItem(it)
        self.graphics.scene().sigMouseMoved.connect(self._on_hover)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)

        self.readout = QLabel("Hover over the FFT: |g| (1/Å), d (Å), angle (°)")
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #e0a040")

        # ---- analysis -----------------------------------------------------------------------
        self.detect_button = QPushButton("Auto-detect lattice")
        self.detect_button.clicked.connect(self.detect)
        self.min_snr = QDoubleSpinBox()
        self.min_snr.setRange(3, 1e4)
        self.min_snr.setValue(25)
        self.min_snr.setToolTip("Spot threshold: power over the rotationally averaged background")
        self.clear_picks_button = QPushButton("Clear picks")
        self.clear_picks_button.clicked.connect(self.clear_picks)
        self.summary = QLabel("No lattice yet. Auto-detect, or click spots in the FFT to pick them.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self.filter_mode = QComboBox()
        self.filter_mode.addItems(["lattice", "superlattice", "picked spots"])
        self.filter_radius = QDoubleSpinBox()
        self.filter_radius.setDecimals(3)
        self.filter_radius.setRange(0.001, 2.0)
        self.filter_radius.setSingleStep(0.005)
        self.filter_radius.setValue(0.03)
        self.filter_radius.setSuffix(" 1/Å")
        self.filter_radius.setToolTip("Soft mask radius in reciprocal space; resolution ≈ 1/radius Å")
        self.bragg_button = QPushButton("Bragg filter")
        self.bragg_button.clicked.connect(self.run_bragg_filter)
        self.gpa_radius = QDoubleSpinBox()
        self.gpa_radius.setDecimals(3)
        self.gpa_radius.setRange(0.002, 1.0)
        self.gpa_radius.setSingleStep(0.005)
        self.gpa_radius.setValue(0.04)
        self.gpa_radius.setSuffix(" 1/Å")
        self.gpa_radius.setToolTip("GPA mask radius; strain resolution ≈ 1/radius Å")
        self.gpa_button = QPushButton("GPA strain maps")
        self.gpa_button.clicked.connect(self.run_gpa)
        self.pld_button = QPushButton("PLD map")
        self.pld_button.clicked.connect(self.run_pld)
        self.radial_button = QPushButton("Radial profile")
        self.radial_button.clicked.connect(self.run_radial_profile)
        self.dose_per_frame = QDoubleSpinBox()
        self.dose_per_frame.setRange(0.0, 1e4)
        self.dose_per_frame.setDecimals(2)
        self.dose_per_frame.setValue(0.0)
        self.dose_per_frame.setSuffix(" e/Å²")
        self.dose_per_frame.setSpecialValueText("unknown")
        self.dose_per_frame.setToolTip("Dose per frame; when set, a critical dose is fitted")
        self.series_button = QPushButton("Peak intensity vs frame")
        self.series_button.clicked.connect(self.run_series)
        self.as_layers = QCheckBox("detected spots also as napari layers (1/Å)")
        self.as_layers.setToolTip(
            "Auto-detect also adds the ROI's spectrum as an image layer and the spots as Points layers,\n"
            "calibrated in 1/Å around the world origin (hide the real-space layers to look at them)"
        )
        self.whole_image = QCheckBox("whole image (not only the ROI)")
        self.whole_image.setToolTip("Bragg filter / GPA / PLD on the whole current frame instead of the ROI")

        grid = QGridLayout()
        grid.addWidget(self.detect_button, 0, 0)
        grid.addWidget(QLabel("min SNR"), 0, 1)
        grid.addWidget(self.min_snr, 0, 2)
        grid.addWidget(self.clear_picks_button, 0, 3)
        grid.addWidget(self.bragg_button, 1, 0)
        grid.addWidget(self.filter_mode, 1, 1, 1, 2)
        grid.addWidget(self.filter_radius, 1, 3)
        grid.addWidget(self.gpa_button, 2, 0)
        grid.addWidget(self.pld_button, 2, 1, 1, 2)
        grid.addWidget(self.gpa_radius, 2, 3)
        grid.addWidget(self.radial_button, 3, 0)
        grid.addWidget(self.series_button, 3, 1, 1, 2)
        grid.addWidget(self.dose_per_frame, 3, 3)
        grid.addWidget(self.whole_image, 4, 0, 1, 2)
        grid.addWidget(self.as_layers, 4, 2, 1, 2)
        box = QGroupBox("Analysis")
        box.setLayout(grid)

        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(160)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)  # keep 1/Å, not "(x0.001)"
        self.plot.hide()
        self.runner = TaskRunner("Live FFT")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.graphics, 3)
        layout.addWidget(self.readout)
        layout.addWidget(self.note)
        layout.addWidget(box)
        layout.addWidget(self.summary)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.runner)

        # ---- live machinery ---------------------------------------------------------------------
        self._dock_visibility = DockVisibility(self, self._show_roi)
        self._worker = LatestWins(self._compute)
        self._worker.relay.result.connect(self._apply)
        napari_viewer.dims.events.current_step.connect(self.request_update)
        napari_viewer.dims.events.order.connect(self.request_update)
        napari_viewer.dims.events.ndisplay.connect(self.request_update)
        self.destroyed.connect(lambda *_: self._worker.stop())
        self._on_layer_changed()

    # ------------------------------------------------------------------------------------------
    # ROI handling
    # ------------------------------------------------------------------------------------------
    def showEvent(self, event):  # noqa: N802 (Qt name)
        super().showEvent(event)
        self._show_roi(True)

    def hideEvent(self, event):  # noqa: N802 (Qt name)
        super().hideEvent(event)
        self._show_roi(False)

    def _show_roi(self, visible: bool) -> None:
        """Show the ROI only while this panel is in front; hidden, it would clutter other views."""
        roi = self._roi_layer
        if roi is None or roi not in self.viewer.layers or roi.visible == visible:
            return
        roi.visible = visible
        if visible:
            self.request_update()
        elif _uid(self.viewer.layers.selection.active) == _uid(roi) and self._image_layer is not None:
            self.viewer.layers.selection.active = self._image_layer

    def _on_layer_changed(self, *_):
        layer = self.layer_combo.layer()
        # compare by id: the viewer given to plugins hands out a new proxy object per access
        if _uid(layer) == _uid(self._image_layer):
            return
        self._image_layer = layer
        self.lattice = None
        self.picked = []
        self._draw_overlays()
        if layer is not None:
            self._ensure_roi(reset=True)
            self.request_update()

    def _ensure_roi(self, reset: bool = False):
        """Create (or re-centre) the rectangle ROI over the chosen image."""
        layer = self._image_layer
        if layer is None:
            return None
        h, w = layer.data.shape[-2:] if not getattr(layer, "multiscale", False) else layer.data[0].shape[-2:]
        scale = tuple(layer.scale[-2:])
        translate = tuple(layer.translate[-2:])
        roi = self._roi_layer
        if roi is None or roi not in self.viewer.layers:
            roi = self.viewer.add_shapes(
                name=ROI_LAYER_NAME,
                ndim=2,
                scale=scale,
                translate=translate,
                units=angstrom_units(2),
                edge_color="yellow",
                face_color="transparent",
                edge_width=max(2.0, 0.004 * max(h, w)),
                # a dock tab behind another one keeps its ROI hidden until it is shown
                visible=self.isVisible(),
            )
            roi.events.data.connect(self.request_update)
            roi.events.set_data.connect(self.request_update)
            roi.events.highlight.connect(self.request_update)
            self._roi_layer = roi
            reset = True
        else:
            roi.scale = scale
            roi.translate = translate
        if reset or len(roi.data) == 0:
            s = min(512, h, w)
            y0, x0 = (h - s) // 2, (w - s) // 2
            rect = np.array([[y0, x0], [y0, x0 + s], [y0 + s, x0 + s], [y0 + s, x0]], float)
            roi.data = [rect]
            roi.shape_type = ["rectangle"]
            roi.mode = "select"
            if self.isVisible():
                self.viewer.layers.selection.active = roi
        return roi

    def roi_bounds(self):
        """(y0, y1, x0, x1) of the ROI in image pixels, clipped, and a note (or raise ValueError)."""
        layer, roi = self._image_layer, self._roi_layer
        if layer is None:
            raise ValueError("Open or select an image layer first.")
        if roi is None or roi not in self.viewer.layers or len(roi.data) == 0:
            raise ValueError("Draw a rectangle in the 'FFT ROI' layer (or press Reset ROI).")
        v = np.asarray(roi.data[-1])[:, -2:]
        # shapes data -> world -> image data coordinates
        world = v * np.asarray(roi.scale[-2:]) + np.asarray(roi.translate[-2:])
        pix = (world - np.asarray(layer.translate[-2:])) / np.asarray(layer.scale[-2:])
        h, w = self._layer_shape()[-2:]
        # tolerate round-off of the scale/translate round trip (768.0000001 is 768)
        y0, x0 = np.floor(pix.min(axis=0) + 1e-6).astype(int)
        y1, x1 = np.ceil(pix.max(axis=0) - 1e-6).astype(int)
        note = ""
        cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
        if (cy0, cy1, cx0, cx1) != (y0, y1, x0, x1):
            note = "ROI partly outside the image: clipped to the image."
        if cy1 - cy0 < F.MIN_SIZE or cx1 - cx0 < F.MIN_SIZE:
            raise ValueError(
                f"ROI is {max(cy1 - cy0, 0)}×{max(cx1 - cx0, 0)} px inside the image; "
                f"make it at least {F.MIN_SIZE}×{F.MIN_SIZE} px."
            )
        return (int(cy0), int(cy1), int(cx0), int(cx1)), note

    def _layer_shape(self):
        layer = self._image_layer
        return layer.data[0].shape if getattr(layer, "multiscale", False) else layer.data.shape

    def _frame_index(self) -> tuple[int, ...]:
        """Indices of the current frame/slice for the leading (non-image) axes."""
        layer = self._image_layer
        nlead = layer.ndim - 2
        if nlead <= 0:
            return ()
        displayed = tuple(self.viewer.dims.displayed)
        if len(displayed) != 2 or sorted(displayed) != [self.viewer.dims.ndim - 2, self.viewer.dims.ndim - 1]:
            raise ValueError(
                "The Live FFT works on the (Y, X) plane of a 2D view: switch to 2D and restore the axis "
                "order (View > Axes > Reset/Roll back) to see the spectrum."
            )
        pt = np.asarray(layer.world_to_data(self.viewer.dims.point))
        shape = self._layer_shape()
        return tuple(int(np.clip(round(float(pt[i])), 0, shape[i] - 1)) for i in range(nlead))

    def _check_layer(self):
        layer = self._image_layer
        if layer is None:
            raise ValueError("Open or select an image layer first.")
        if getattr(layer, "rgb", False):
            raise ValueError("RGB layers have no single intensity: convert to greyscale first.")
        data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
        if np.iscomplexobj(np.empty(0, dtype=data.dtype)):
            raise ValueError("Complex data: take the modulus or real part first, then run the FFT.")
        return data

    def current_region(self, whole: bool = False):
        """The current frame's ROI (or whole frame) as float32, its origin in pixels, and a note."""
        data = self._check_layer()
        idx = self._frame_index()
        if whole:
            h, w = self._layer_shape()[-2:]
            (y0, y1, x0, x1), note = (0, h, 0, w), ""
        else:
            (y0, y1, x0, x1), note = self.roi_bounds()
        region = np.asarray(data[idx + (slice(y0, y1), slice(x0, x1))])
        region = F.validate_image(region, what="region")
        return region, (y0, x0), note

    # ------------------------------------------------------------------------------------------
    # live spectrum
    # ------------------------------------------------------------------------------------------
    def request_update(self, *_):
        """Ask for the spectrum of the current ROI/frame; cheap, called on every ROI/dims event."""
        layer = self._image_layer
        if layer is None or self._roi_layer is None:
            return
        try:
            data = self._check_layer()
            (y0, y1, x0, x1), note = self.roi_bounds()
            idx = self._frame_index()
        except ValueError as exc:
            self.note.setText(str(exc))
            self._last_key = None  # the next valid request must go through
            return
        key = (_uid(layer), idx, y0, y1, x0, x1)
        if key == self._last_key:
            return
        self._last_key = key
        self.note.setText(note)
        self._worker.submit(
            {"key": key, "data": data, "idx": idx, "bounds": (y0, y1, x0, x1), "pixel_size": pixel_size_of(layer)}
        )

    def _compute(self, job):
        y0, y1, x0, x1 = job["bounds"]
        roi = np.asarray(job["data"][job["idx"] + (slice(y0, y1), slice(x0, x1))])
        half, levels = self._live(roi)
        return half.copy(), levels  # the live buffer is reused by the next call

    def _apply(self, payload):
        job, res, err = payload
        if err is not None:
            self.note.setText(str(err) if isinstance(err, ValueError) else f"FFT failed: {err}")
            return
        half, levels = res
        y0, y1, x0, x1 = job["bounds"]
        ny, nx = y1 - y0, x1 - x0
        p = job["pixel_size"]
        dgy, dgx = 1.0 / (ny * p), 1.0 / (nx * p)
        rect = QRectF(-0.5 * dgx, -(ny // 2 + 0.5) * dgy, half.shape[1] * dgx, ny * dgy)
        for item in (self.image_item, self.image_item_mirror):
            item.setImage(half, levels=levels, autoLevels=False)
            item.setRect(rect)
        self.image_item_mirror.setTransform(self.image_item_mirror.transform() * QTransform.fromScale(-1, -1))
        self._half = half
        new_geometry = self.current is None or self.current["shape"] != (ny, nx) or self.current["p"] != p
        self.current = {"bounds": job["bounds"], "idx": job["idx"], "shape": (ny, nx), "p": p, "dg": (dgy, dgx)}
        if new_geometry:
            self.view.autoRange(padding=0)
        self.n_updates += 1

    def spectrum(self) -> np.ndarray | None:
        """The displayed spectrum as a full centred (Y, X) array (float32 bits as int32), or None."""
        if self.current is None:
            return None
        return F.LiveSpectrum.mirror(self._half, self.current["shape"])

    # ------------------------------------------------------------------------------------------
    # hover / click
    # ------------------------------------------------------------------------------------------
    def _g_at_scene(self, pos):
        if self.current is None or not self.view.sceneBoundingRect().contains(pos):
            return None
        pt = self.view.mapSceneToView(pos)
        return np.array([pt.y(), pt.x()])

    @staticmethod
    def describe_g(g) -> str:
        gabs = float(np.hypot(g[0], g[1]))
        d = 1.0 / gabs if gabs > 0 else float("inf")
        ang = float(np.degrees(np.arctan2(-g[0], g[1])))
        return f"|g| = {gabs:.4f} 1/Å   d = {d:.3f} Å   angle = {ang:.1f}°"

    def _on_hover(self, pos):
        g = self._g_at_scene(pos)
        if g is None:
            return
        text = self.describe_g(g)
        self.readout.setText(text)
        try:
            self.viewer.status = f"FFT: {text}"
        except Exception:  # status is cosmetic
            pass

    def _on_click(self, event):
        if event.button() != Qt.LeftButton:
            return
        g = self._g_at_scene(event.scenePos())
        if g is not None:
            self.pick(g)

    def pick(self, g):
        """Pick the spot nearest ``g`` (Å⁻¹), snapped to its refined position in the current ROI."""
        try:
            region, _, _ = self.current_region()
            pk = F.refine_spot(region, pixel_size_of(self._image_layer), g)
        except ValueError as exc:
            show_error(str(exc))
            return None
        self.picked.append(pk)
        self.readout.setText("picked: " + self.describe_g(pk.g) + f"   SNR {pk.snr:.0f}")
        self._draw_overlays()
        return pk

    def clear_picks(self):
        self.picked = []
        self._draw_overlays()

    def _draw_overlays(self):
        for t in self._labels:
            self.view.removeItem(t)
        self._labels = []
        lat = self.lattice
        if lat is None:
            self.peak_scatter.setData([], [])
            self.super_scatter.setData([], [])
        else:
            self.peak_scatter.setData([pk.g[1] for pk in lat.peaks], [pk.g[0] for pk in lat.peaks])
            self.super_scatter.setData([pk.g[1] for pk in lat.superlattice], [pk.g[0] for pk in lat.superlattice])
            # label only the basis spots and the two shortest superlattice spots: readable
            show = [pk for pk in lat.peaks if pk.hk in ((1, 0), (0, 1))]
            sup = sorted((pk for pk in lat.superlattice if pk.g[0] <= 0), key=lambda pk: pk.g_abs)[:2]
            # lattice labels above-right of the spot, superlattice labels below-left: no overlap
            for pk, color, anchor in [(pk, "c", (0, 1)) for pk in show] + [(pk, "m", (1, 0)) for pk in sup]:
                t = pg.TextItem(pk.label(), color=color, anchor=anchor)
                t.setPos(pk.g[1], pk.g[0])
                self.view.addItem(t)
                self._labels.append(t)
        self.pick_scatter.setData([pk.g[1] for pk in self.picked], [pk.g[0] for pk in self.picked])

    # ------------------------------------------------------------------------------------------
    # analysis buttons
    # ------------------------------------------------------------------------------------------
    def _start(self, func, *args, on_done, **kwargs):
        try:
            return self.runner.start(func, *args, on_done=on_done, **kwargs)
        except ValueError as exc:
            show_error(str(exc))
            return None

    def _region_or_error(self, whole=False):
        try:
            return self.current_region(whole=whole)
        except ValueError as exc:
            show_error(str(exc))
            return None

    def detect(self):
        """Auto-detect and index the lattice in the current ROI (worker)."""
        got = self._region_or_error()
        if got is None:
            return None
        region, origin, _ = got
        p = pixel_size_of(self._image_layer)
        self._detect_region = (region, p)
        return self._start(F.find_lattice, region, p, min_snr=float(self.min_snr.value()), on_done=self._on_lattice)

    def _reciprocal_layers(self, lat: F.Lattice):
        """The detection's spectrum (Image) and spots (Points, labelled) as layers in 1/Å."""
        region, p = self._detect_region
        ps = F.power_spectrum(region, p)
        dgy, dgx = ps.reciprocal_pixel
        units = ("1/angstrom", "1/angstrom")
        base = self._image_layer.name
        kw = dict(scale=(dgy, dgx), translate=(-ps.centre[0] * dgy, -ps.centre[1] * dgx), units=units)
        name = f"FFT of {base}"
        lo, hi = np.percentile(ps.data[::4, ::4], (30, 99.95))
        if name in self.viewer.layers:
            self.viewer.layers[name].data = ps.data
            for k, v in kw.items():
                setattr(self.viewer.layers[name], k, v)
            self.viewer.layers[name].contrast_limits = (float(lo), float(hi))
        else:
            self.viewer.add_image(ps.data, name=name, colormap="gray", contrast_limits=(float(lo), float(hi)), **kw)
        for what, spots, color in (("lattice", lat.peaks, "cyan"), ("superlattice", lat.superlattice, "magenta")):
            pname = f"FFT {what} spots of {base}"
            if pname in self.viewer.layers:
                self.viewer.layers.remove(pname)
            if not spots:
                continue
            self.viewer.add_points(
                np.array([pk.g for pk in spots]),
                name=pname,
                units=units,
                size=4 * max(dgy, dgx),
                face_color="transparent",
                border_color=color,
                features={
                    "d": [pk.d for pk in spots],
                    "label": [pk.label() for pk in spots],
                    "angle": [pk.angle for pk in spots],
                },
                text={"string": "{label}", "color": color, "size": 8, "anchor": "upper_left"},
            )

    def _on_lattice(self, lat: F.Lattice):
        self.lattice = lat
        self._draw_overlays()
        if self.as_layers.isChecked():
            self._reciprocal_layers(lat)
        # zoom the FFT view onto the indexed spots (the mouse wheel zooms back out)
        gmax = max([pk.g_abs for pk in lat.peaks + lat.superlattice] or [1.0])
        r = 1.15 * gmax
        self.view.setRange(xRange=(-r, r), yRange=(-r, r), padding=0)
        qs = ", ".join("(" + ", ".join(F._fmt_frac(x) for x in q) + ")" for q in lat.modulation_vectors)
        self.summary.setText(
            f"d1 = {lat.d1:.4f} Å, d2 = {lat.d2:.4f} Å, angle = {lat.angle:.2f}°; "
            f"{len(lat.peaks)} lattice spots, {len(lat.superlattice)} superlattice spots"
            + (f", q = {qs} (basis units)" if qs else "")
            + (f", {len(lat.unindexed)} unindexed" if lat.unindexed else "")
        )

    def _basis(self):
        if self.lattice is not None:
            return self.lattice.g1, self.lattice.g2
        if len(self.picked) >= 2:
            return self.picked[0].g, self.picked[1].g
        raise ValueError("Auto-detect the lattice (or pick two spots) first.")

    def _add_image(self, data, name, origin, **kwargs):
        layer = self._image_layer
        p = pixel_size_of(layer)
        ty, tx = (np.asarray(layer.translate[-2:]) + np.asarray(origin) * np.asarray(layer.scale[-2:]))
        kw = dict(name=name, scale=(p, p), translate=(ty, tx), units=angstrom_units(2))
        kw.update(kwargs)
        if name in self.viewer.layers:
            old = self.viewer.layers[name]
            old.data = data
            for k in ("scale", "translate", "contrast_limits", "colormap"):
                if k in kw:
                    setattr(old, k, kw[k])
            return old
        return self.viewer.add_image(data, **kw)

    def run_bragg_filter(self):
        got = self._region_or_error(self.whole_image.isChecked())
        if got is None:
            return None
        region, origin, _ = got
        mode = self.filter_mode.currentText()
        if mode == "lattice":
            spots = self.lattice.peaks if self.lattice else []
        elif mode == "superlattice":
            spots = self.lattice.superlattice if self.lattice else []
        else:
            spots = self.picked
        if not spots:
            show_error(f"No {mode} spots: auto-detect the lattice or click spots in the FFT first.")
            return None
        p = pixel_size_of(self._image_layer)
        name = f"{self._image_layer.name} Bragg-filtered ({mode})"

        def run(progress=None):
            out = F.bragg_filter(region, spots, float(self.filter_radius.value()), pixel_size=p,
                                 keep_mean=(mode != "superlattice"))
            progress(1.0)
            return out

        return self._start(run, on_done=lambda out: self._add_image(out, name, origin, colormap="gray"))

    def run_gpa(self):
        try:
            g1, g2 = self._basis()
        except ValueError as exc:
            show_error(str(exc))
            return None
        got = self._region_or_error(self.whole_image.isChecked())
        if got is None:
            return None
        region, origin, _ = got
        p = pixel_size_of(self._image_layer)
        return self._start(F.gpa, region, g1, g2, float(self.gpa_radius.value()), pixel_size=p,
                           on_done=lambda res: self._on_gpa(res, origin))

    def _on_gpa(self, res: F.GPAResult, origin):
        base = self._image_layer.name
        for key, data in (("exx", res.exx), ("eyy", res.eyy), ("exy", res.exy), ("rotation (deg)", res.rotation)):
            lim = float(np.percentile(np.abs(data), 99)) or 1e-3
            self._add_image(data, f"{base} GPA {key}", origin, colormap="PiYG",
                            contrast_limits=(-lim, lim), visible=(key == "exx"))
        g1, g2 = res.g1, res.g2
        self.summary.setText(
            self.summary.text()
            + f"\nGPA reference: d1 = {1 / np.hypot(*g1):.4f} Å, d2 = {1 / np.hypot(*g2):.4f} Å "
            "(strain relative to the ROI average; 0.01 = 1 %)"
        )

    def run_pld(self):
        lat = self.lattice
        if lat is None or not lat.modulation_vectors:
            show_error("No superlattice found: auto-detect a lattice with superlattice spots first.")
            return None
        got = self._region_or_error(self.whole_image.isChecked())
        if got is None:
            return None
        region, origin, _ = got
        p = pixel_size_of(self._image_layer)
        q = lat.q_vector(lat.modulation_vectors[0])
        return self._start(F.pld_map, region, q, lattice=(lat.g1, lat.g2), pixel_size=p,
                           on_done=lambda res: self._on_pld(res, origin))

    def _on_pld(self, res: F.PLDResult, origin):
        base = self._image_layer.name
        hi = float(np.percentile(res.amplitude, 99)) or 1e-3
        self._add_image(res.amplitude, f"{base} PLD amplitude (Å)", origin, colormap="magma", contrast_limits=(0, hi))
        self._add_image(res.direction, f"{base} PLD direction (deg)", origin, colormap="twilight",
                        contrast_limits=(0, 180), visible=False)
        inner = res.amplitude[res.amplitude.shape[0] // 4: -res.amplitude.shape[0] // 4,
                              res.amplitude.shape[1] // 4: -res.amplitude.shape[1] // 4]
        show_info(f"PLD amplitude (median, central half): {np.median(inner):.3f} Å")

    def run_radial_profile(self):
        got = self._region_or_error()
        if got is None:
            return None
        region, _, _ = got
        p = pixel_size_of(self._image_layer)
        g, prof = F.radial_profile(region, p)
        self.plot.show()
        self.plot.clear()
        self.plot.setLogMode(x=False, y=True)
        self.plot.setLabel("bottom", "|g| (1/Å)")
        self.plot.setLabel("left", "mean power")
        self.plot.plot(g, np.maximum(prof, 1e-12), pen=pg.mkPen("w"))
        sel = g > 4.0 / (min(region.shape) * p)
        gpk = float(g[sel][np.argmax(prof[sel])]) if sel.any() else float("nan")
        self.plot.setTitle(f"radial profile: maximum at {gpk:.3f} 1/Å (d = {1 / gpk:.2f} Å)")
        self.radial_data = (g, prof)
        return g, prof

    def run_series(self):
        layer = self._image_layer
        if layer is None or layer.ndim != 3:
            show_error("Peak intensity vs frame needs a (T, Y, X) stack layer.")
            return None
        spots = self.lattice.peaks if self.lattice else self.picked
        if not spots:
            show_error("Auto-detect the lattice (or pick spots) first.")
            return None
        upper = [pk for pk in spots if pk.g[0] < 0 or (pk.g[0] == 0 and pk.g[1] > 0)] or spots
        try:
            data = self._check_layer()
            (y0, y1, x0, x1), _ = self.roi_bounds()
        except ValueError as exc:
            show_error(str(exc))
            return None
        stack = data[:, y0:y1, x0:x1]
        dpf = float(self.dose_per_frame.value()) or None
        return self._start(F.bragg_intensity_series, stack, upper, pixel_size=pixel_size_of(layer),
                           dose_per_frame=dpf, on_done=self._on_series)

    def _on_series(self, res: F.BraggSeries):
        self.series = res
        self.plot.show()
        self.plot.clear()
        self.plot.setLogMode(x=False, y=False)
        x = res.dose if res.dose is not None else np.arange(len(res.total))
        self.plot.setLabel("bottom", "cumulative dose (e/Å²)" if res.dose is not None else "frame")
        self.plot.setLabel("left", "Bragg intensity (norm.)")
        self.plot.plot(x, res.total, pen=None, symbol="o", symbolSize=6)
        title = "summed Bragg intensity"
        if res.critical_dose is not None:
            xs = np.linspace(0, x[-1], 100)
            self.plot.plot(xs, np.exp(-xs / res.critical_dose), pen=pg.mkPen("y"))
            err = f" ± {res.critical_dose_error:.2f}" if res.critical_dose_error else ""
            title += f": critical dose {res.critical_dose:.2f}{err} e/Å²"
        self.plot.setTitle(title)

    def closeEvent(self, event):
        self._worker.stop()
        super().closeEvent(event)
