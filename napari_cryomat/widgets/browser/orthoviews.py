"""The XZ and YZ views of the tomogram browser (pyqtgraph, as 3dmod's XYZ window), a live panel.

napari's canvas is the XY view. :class:`OrthoViews` reads the cursor, slab, binning and low-pass
into an :class:`OrthoRequest` on the GUI thread, :func:`compute_orthoslices` cuts the two slabs in
a worker (core :func:`~napari_cryomat.core.tomo.orthoslice`), and ``draw`` shows them. A YZ view
touches every page of the file (X is the fast axis on disk): above ``preview_bytes`` it is first
drawn from every s-th voxel (a preview reading about 1/s² of the file), then exactly. A newer
request stops an older computation at its next block of Z sections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qtpy.QtCore import QPointF, QRectF, QSize, Qt

from napari_cryomat.core import tomo as core_tomo
from napari_cryomat.core._progress import Cancelled
from napari_cryomat.widgets._base import LivePanel
from napari_cryomat.widgets.browser._model import BrowserModel

__all__ = ["OrthoRequest", "OrthoResult", "OrthoViews", "compute_orthoslices", "preview_step"]

PREVIEW_BYTES = 64 << 20
XZ_TITLE = "XZ  (X →, Z ↑)"
YZ_TITLE = "YZ  (Y →, Z ↑)"
YELLOW, CYAN, WHITE = (255, 220, 0), (0, 208, 255), (230, 230, 230)  # as the cut lines in the XY canvas


@dataclass(frozen=True)
class OrthoRequest:
    """Everything one computation of the two views needs, read on the GUI thread."""

    data: Any = field(compare=False, repr=False)  # the source volume (numpy, memmap or dask)
    data_id: int  # identity of ``data``: equal requests show the same picture
    y: int  # the XZ view cuts at this row (voxel index)
    x: int  # the YZ view cuts at this column
    thickness: int  # slab thickness, unbinned voxels
    binning: int
    sigma_angstrom: float  # Gaussian low-pass σ in Å (0 = off)
    voxel_angstrom: tuple  # Å per voxel (z, y, x), for the low-pass
    scale: tuple  # world units per voxel (z, y, x), for placing the images
    translate: tuple
    yz_step: int = 1  # stride of the YZ read (1 = exact)

    def describe(self, axis: str) -> str:
        """The run's parameters, for the view's title: e.g. "y 7, slab 3, 2x, σ 8 Å"."""
        parts = [f"{axis} {self.y if axis == 'y' else self.x}"]
        parts += [f"slab {self.thickness}"] if self.thickness > 1 else []
        parts += [f"{self.binning}x"] if self.binning > 1 else []
        parts += [f"σ {self.sigma_angstrom:g} Å"] if self.sigma_angstrom > 0 else []
        return ", ".join(parts)


@dataclass(frozen=True)
class OrthoResult:
    xz: np.ndarray  # (Z, X), rows drawn upwards
    yz: np.ndarray  # (Z, Y)
    xz_rect: tuple  # (left, bottom, width, height) in world units
    yz_rect: tuple
    yz_step: int


def preview_step(shape, dtype, preview_bytes: int = PREVIEW_BYTES) -> int:
    """Stride of the first, quick YZ pass: 1 for volumes up to ``preview_bytes``, else a power of 2."""
    nbytes = float(np.prod(shape)) * np.dtype(dtype).itemsize
    step = 1
    while nbytes / step**2 > preview_bytes and step < 64:
        step *= 2
    return step


def compute_orthoslices(req: OrthoRequest, *, is_stale: Callable[[], bool] = lambda: False) -> OrthoResult:
    """XZ and YZ slabs (binned, low-passed) through the cursor. Worker-safe; raises Cancelled as
    soon as ``is_stale()`` says a newer request exists."""
    data, f, n, s = req.data, req.binning, req.thickness, req.yz_step

    def progress(_fraction):
        if is_stale():
            raise Cancelled()

    try:
        xz = core_tomo.orthoslice(data, req.y, axis=1, thickness=n, binning=f, progress=progress)
        yz = core_tomo.orthoslice(data, req.x, axis=2, thickness=n, binning=f, step=s, progress=progress)
    finally:
        core_tomo.release_pages(data)  # keep resident memory to what is displayed, not what was read
    vz, vy, vx = req.voxel_angstrom
    p = max(f, s)  # YZ pixel, in voxels
    if req.sigma_angstrom > 0:
        xz = core_tomo.gaussian_lowpass(xz, sigma_A=req.sigma_angstrom, pixel_size_A=(vz * f, vx * f))
        yz = core_tomo.gaussian_lowpass(yz, sigma_A=req.sigma_angstrom, pixel_size_A=(vz * p, vy * p))
    # Image rectangles in world units. Rows are Z (drawn upwards), columns X (XZ) or Y (YZ). The
    # left edge of the first pixel is at unbinned index -step/2 (see core.tomo.orthoslice).
    scale, t = np.asarray(req.scale, dtype=float), np.asarray(req.translate, dtype=float)
    xz_edge, yz_edge = t - scale / 2.0, t - scale * s / 2.0
    (nz, nx), (nzs, ny) = xz.shape, yz.shape
    return OrthoResult(
        xz, yz,
        (xz_edge[2], xz_edge[0], nx * f * scale[2], nz * f * scale[0]),
        (yz_edge[1], yz_edge[0], ny * p * scale[1], nzs * p * scale[0]),
        s,
    )


class OrthoViews(LivePanel):
    """XZ (top) and YZ (bottom) views through the model's cursor; a click in either moves it."""

    MIN_HEIGHT = 160  # both views still readable; the dock's scroll area gives the rest to the controls
    HINT_HEIGHT = 300  # two tomogram-shaped (wide, flat) views in a ~400 px wide dock

    def __init__(self, model: BrowserModel, parent=None):
        import pyqtgraph as pg
        from qtpy.QtWidgets import QVBoxLayout

        super().__init__(model.viewer, parent)
        self.model = model
        self.preview_bytes = PREVIEW_BYTES
        self._last_request: OrthoRequest | None = None
        self._fitted = None
        pg.setConfigOptions(antialias=False)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(self.MIN_HEIGHT)
        self.plots.setBackground("k")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plots)
        # Both views: Z up (as 3dmod's XZ view); YZ is drawn with Y horizontal so the two stack
        # in a narrow dock (3dmod puts it sideways, to the right of XY).
        (self.xz_view, self.xz_item, self.xz_label,
         self.xz_vline, self.xz_hline) = self._add_view(0, XZ_TITLE, YELLOW, CYAN)
        (self.yz_view, self.yz_item, self.yz_label,
         self.yz_vline, self.yz_hline) = self._add_view(1, YZ_TITLE, CYAN, YELLOW)
        self.plots.scene().sigMouseClicked.connect(self._on_click)
        for signal, slot in ((model.cursor_changed, self._on_cursor), (model.display_changed, self.update_live),
                             (model.source_changed, self._on_source), (model.levels_changed, self.set_levels)):
            self.links.connect(signal, slot)

    def _add_view(self, row: int, title: str, title_colour, vline_colour):
        import pyqtgraph as pg

        view = self.plots.addViewBox(row=row, col=0, lockAspect=True, enableMouse=True)
        item = pg.ImageItem(axisOrder="row-major")
        view.addItem(item)
        # vertical line: where the other view cuts (its colour); horizontal: the XY section (z)
        lines = (pg.InfiniteLine(angle=90, pen=pg.mkPen(vline_colour, width=1)),
                 pg.InfiniteLine(angle=0, pen=pg.mkPen(WHITE, width=1)))
        for line in lines:
            view.addItem(line)
        label = pg.TextItem(title, color=title_colour, anchor=(0, 0))
        label.setParentItem(view)
        return (view, item, label, *lines)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(320, self.HINT_HEIGHT)

    # ---- LivePanel ------------------------------------------------------------------------
    def update_live(self, *_args) -> None:
        if self.in_front and self._last_request is not None and self._last_request == self._build():
            return  # the same picture (e.g. only Z moved: the crosshair follows, nothing to recompute)
        super().update_live()

    def _build(self) -> OrthoRequest | None:
        model, src = self.model, self.model.source
        if src is None:
            return None
        return OrthoRequest(
            data=src.data, data_id=id(src.data), y=int(model.cursor[1]), x=int(model.cursor[2]),
            thickness=model.thickness_slices(), binning=model.binning, sigma_angstrom=model.sigma_angstrom,
            voxel_angstrom=tuple(model.voxel_size), scale=tuple(float(s) for s in src.scale[-3:]),
            translate=tuple(float(t) for t in src.translate[-3:]),
            yz_step=preview_step(src.data.shape, src.data.dtype, self.preview_bytes),
        )

    def request(self) -> OrthoRequest | None:
        self._last_request = self._build()
        return self._last_request

    def compute(self, request: OrthoRequest) -> OrthoResult:
        return compute_orthoslices(request, is_stale=self.live.is_stale)

    def draw(self, request: OrthoRequest, result: OrthoResult) -> None:
        if self.model.source is None:
            return
        if result.yz_step > 1:  # the quick preview is shown; now the exact view
            self.submit(dataclasses.replace(request, yz_step=1))
        preview = f"  preview 1/{result.yz_step}, refining…" if result.yz_step > 1 else ""
        self.xz_label.setText(f"{XZ_TITLE}  {request.describe('y')}")
        self.yz_label.setText(f"{YZ_TITLE}  {request.describe('x')}{preview}")
        levels = self.model.display.levels or (float(np.min(result.xz)), float(np.max(result.xz)) + 1e-6)
        for item, image, rect in ((self.xz_item, result.xz, result.xz_rect), (self.yz_item, result.yz, result.yz_rect)):
            item.setImage(image, levels=levels, autoLevels=False)
            item.setRect(QRectF(*rect))
        fit = (request.data_id, request.scale, request.binning)
        if fit != self._fitted:  # a new volume or binning: fit the views to it
            self._fitted = fit
            self.xz_view.autoRange(padding=0.02)
            self.yz_view.autoRange(padding=0.02)
        self._draw_crosshair()

    def clear(self) -> None:
        self._last_request = None
        self.xz_item.clear()
        self.yz_item.clear()

    def on_front_changed(self, in_front: bool) -> None:
        self.model.set_in_front(in_front)

    # ---- model events ---------------------------------------------------------------------
    def _on_source(self, layer) -> None:
        self.setEnabled(layer is not None)
        if layer is None:
            self.clear()

    def _on_cursor(self, _cursor=None) -> None:
        self._draw_crosshair()
        self.update_live()

    def set_levels(self, levels) -> None:
        for item in (self.xz_item, self.yz_item):
            if item.image is not None:
                item.setLevels(levels)

    def _draw_crosshair(self) -> None:
        if self.model.source is None:
            return
        z, y, x = self.model.cursor_world()
        self.xz_vline.setPos(x)
        self.xz_hline.setPos(z)
        self.yz_vline.setPos(y)
        self.yz_hline.setPos(z)

    # ---- clicks ---------------------------------------------------------------------------
    def click_plot(self, view: str, u: float, v: float) -> None:
        """A click at plot coordinates (u →, v ↑) in ``view`` ("xz" or "yz"), world units: moves
        the cursor there (the other coordinate stays)."""
        world = self.model.cursor_world().astype(float)
        world[2 if view == "xz" else 1], world[0] = u, v
        self.model.set_cursor_world(world)

    def _on_click(self, event) -> None:
        if self.model.source is None or event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.scenePos()
        for name, view in (("xz", self.xz_view), ("yz", self.yz_view)):
            if view.sceneBoundingRect().contains(pos):
                point: QPointF = view.mapSceneToView(pos)
                self.click_plot(name, point.x(), point.y())
                event.accept()
                return
