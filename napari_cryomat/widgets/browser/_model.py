"""The tomogram browser's state: which layer, the cursor, the slab, binning, low-pass, clicks.

:class:`BrowserModel` talks to :mod:`napari_cryomat.core.tomo` and to the viewer (Z slider, the
"XZ/YZ cuts" helper layer, clicks in the canvas) and tells the views what changed through psygnal
signals. No Qt widgets: scripts and tests drive it with a bare ``napari.components.ViewerModel``.
Two parts hang off it: ``model.display``
(:class:`~napari_cryomat.widgets.browser._display.DisplayLayers`: the binned / low-passed display
layer, contrast, 3D) and ``model.annotations``
(:class:`~napari_cryomat.widgets.browser._picks.Annotations`: picks and distances).

Lengths the user reads or types (slab in Å, low-pass σ, distances) are in Å whatever the layer's
units: the voxel size comes from :func:`~napari_cryomat.widgets._base.pixel_size_of`. Positions on
napari's canvas and in the orthogonal views are world coordinates (the layer's ``scale`` units).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from napari_cryomat.core import tomo as core_tomo
from napari_cryomat.widgets._base.layers import HelperLayer, pixel_size_of, real_layer
from napari_cryomat.widgets.browser._display import DisplayLayers
from napari_cryomat.widgets.browser._picks import Annotations

if TYPE_CHECKING:
    import napari

__all__ = ["MODES", "BrowserModel", "browse_problem"]

MODES = ("navigate", "pick", "measure")  # what a click in the XY canvas does
CUT_COLOURS = ["#ffdc00", "#00d0ff"]  # yellow: where the XZ view cuts (y); cyan: the YZ view (x)
#: the cut lines' least width (voxels): their width is 0.3 % of the field (~2 px at full view); a floor of 0.5 voxel
#: drew them 16 px wide over a 20³ map (EMD-3197), hiding a voxel row
CUT_WIDTH_MIN = 0.02
NO_LAYER = ("No 3D image layer: open a tomogram (File > Open, or File > Open Sample > napari-cryomat > "
            "Cryo-ET tomogram).")


def browse_problem(layer) -> str:
    """Why ``layer`` cannot be browsed ("" when it can), naming what to do."""
    if layer is None:
        return NO_LAYER
    if getattr(layer, "rgb", False) or getattr(layer, "multiscale", False) or layer.ndim != 3:
        # the readers give a multiscale overview to stacks of big frames (movies, tilt series), never to volumes
        why = ("is RGB" if getattr(layer, "rgb", False) else
               "is a stack of images shown as a binned overview (a movie or tilt series), not a volume"
               if getattr(layer, "multiscale", False) else f"has {layer.ndim} dimensions")
        return (f"'{layer.name}' {why}: the tomogram browser needs a single-scale 3D image (Z, Y, X). "
                "Choose another layer or open a tomogram.")
    try:
        [pixel_size_of(layer, axis) for axis in (-3, -2, -1)]
    except ValueError as exc:
        return f"'{layer.name}': {exc}. The tomogram browser needs a (Z, Y, X) volume in length units."
    return ""


class BrowserModel:
    """State of one tomogram browser over ``viewer``; call :meth:`attach` to follow the viewer.

    Signals: ``source_changed(layer or None)`` (``status`` says why None), ``cursor_changed(zyx)``,
    ``display_changed()`` (slab, binning, low-pass, display layer), ``levels_changed((lo, hi))``,
    ``ndisplay_changed(2 or 3)``.
    """

    source_changed = Signal(object)
    cursor_changed = Signal(object)
    display_changed = Signal()
    levels_changed = Signal(object)
    ndisplay_changed = Signal(int)

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self.viewer = viewer
        self.source = None  # the user's 3D image layer
        self.status = NO_LAYER
        self.cursor = np.zeros(3, dtype=int)  # (z, y, x) voxel indices of the source
        self.thickness = 1.0  # slab thickness in `thickness_unit`
        self.thickness_unit = "slices"  # or "Å"
        self.binning = 1
        self.sigma_angstrom = 0.0  # Gaussian low-pass σ in Å, 0 = off
        self.mode = "navigate"
        self.show_cuts = True
        self.in_front = True  # the browser's dock tab is in front (helper layers shown)
        self.display = DisplayLayers(self)
        self.cuts = HelperLayer(viewer, "XZ/YZ cuts", "shapes", self._make_cuts)
        self.annotations = Annotations(self)
        self._syncing = False
        self._attached = False

    # ------------------------------------------------------------------ viewer connections ----
    def attach(self) -> None:
        """Follow the viewer: Z slider, 2D/3D, removed layers, clicks in the canvas."""
        if self._attached:
            return
        self._attached = True
        self.viewer.dims.events.point.connect(self._on_dims_point)
        self.viewer.dims.events.ndisplay.connect(self._on_ndisplay)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self.viewer.mouse_drag_callbacks.append(self.on_canvas_mouse)

    def detach(self) -> None:
        """Undo :meth:`attach` and remove the helper layer (the browser is closing)."""
        if self._attached:
            self._attached = False
            self.viewer.dims.events.point.disconnect(self._on_dims_point)
            self.viewer.dims.events.ndisplay.disconnect(self._on_ndisplay)
            self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
            if self.on_canvas_mouse in self.viewer.mouse_drag_callbacks:
                self.viewer.mouse_drag_callbacks.remove(self.on_canvas_mouse)
        self.display.watch_contrast(self.source, False)
        self.display.watch_contrast(self.display.derived, False)
        self.cuts.remove()

    # ------------------------------------------------------------------------------ source ----
    @property
    def voxel_size(self) -> np.ndarray:
        """Å per voxel (z, y, x) of the source, from its scale and units."""
        return np.array([pixel_size_of(self.source, axis) for axis in (-3, -2, -1)])

    def units(self, n: int) -> tuple[str, ...]:
        """The source's last ``n`` units, for layers drawn over it (so world coordinates agree)."""
        return tuple(str(u) for u in self.source.units[-n:])

    def set_source(self, layer) -> None:
        """Browse ``layer`` (or nothing). A layer that cannot be browsed sets :attr:`status`."""
        layer = real_layer(layer) if layer is not None else None
        if layer is self.source and layer is not None:
            return
        self.status = browse_problem(layer)
        self.display.set_source(None if self.status else layer)  # the old source is left as it was
        self.cuts.hide()  # its scale and extent belong to the old source: refilled at the next show
        self.source = None if self.status else layer
        if self.source is None:
            self.source_changed.emit(None)
            return
        shape = np.asarray(layer.data.shape)
        self.cursor = np.array([self.current_z(default=shape[0] // 2), shape[1] // 2, shape[2] // 2])
        self._show_scale_bar()
        self.apply_display()
        self.source_changed.emit(layer)
        self.set_cursor(self.cursor)

    def _show_scale_bar(self) -> None:
        """napari's scale bar speaks the layer's units (Å): turn it on (a Qt viewer only)."""
        overlays = getattr(getattr(self.viewer, "canvas", None), "overlays", None)
        bar = getattr(overlays, "scale_bar", None)
        if bar is not None:
            bar.visible = True

    def _on_layer_removed(self, event) -> None:
        layer = event.value
        if self.display.forget(layer):
            self.display_changed.emit()
        elif layer is self.source:
            self.set_source(None)
        self.annotations.forget(layer)

    # ------------------------------------------------------------------------- parameters ----
    def thickness_slices(self) -> int:
        """Slab thickness in (unbinned) slices along Z."""
        if self.thickness_unit == "Å":
            return core_tomo.slices_from_angstrom(self.thickness, float(self.voxel_size[0])) if self.source else 1
        return max(1, int(round(self.thickness)))

    def slab_text(self) -> str:
        """What the slab is in both units, e.g. "= 3 slices, 15.0 Å"."""
        n = self.thickness_slices()
        vz = float(self.voxel_size[0]) if self.source is not None else float("nan")
        return f"= {n} slice{'s' if n > 1 else ''}, {n * vz:.1f} Å"

    def set_slab(self, thickness: float, unit: str | None = None) -> None:
        """Slab thickness ``thickness`` in ``unit`` ("slices" or "Å"; default: the current unit)."""
        self.thickness = float(thickness)
        if unit is not None:
            self.thickness_unit = unit
        self.apply_display()

    def set_thickness_unit(self, unit: str) -> None:
        """Switch between slices and Å keeping the slab as it is (the value is converted)."""
        if unit == self.thickness_unit:
            return
        vz = float(self.voxel_size[0]) if self.source is not None else 1.0
        n = self.thickness_slices()
        self.thickness_unit = unit
        self.thickness = n * vz if unit == "Å" else float(n)
        self.apply_display()

    def set_binning(self, factor: int) -> None:
        """Show a lazily mean-binned copy (the dock computes it in a worker first, see
        ``set_display``); raises ValueError (nothing changed) if the volume is too small."""
        self.set_display(factor, self.sigma_angstrom)

    def set_lowpass(self, sigma_angstrom: float) -> None:
        """Gaussian low-pass σ in Å for display (0 = off), applied slice by slice, lazily."""
        self.set_display(self.binning, sigma_angstrom)

    def set_display(self, binning: int, sigma_angstrom: float, volume=None) -> None:
        """Binning and low-pass σ (Å) together. ``volume``: the display volume already computed for
        them (see :meth:`DisplayLayers.display_job`), shown from memory; without it the derived layer
        is lazy. ValueError (nothing changed) if the volume is too small for ``binning``."""
        old = self.binning, self.sigma_angstrom
        self.binning, self.sigma_angstrom = int(binning), max(0.0, float(sigma_angstrom))
        try:
            self.display.apply(volume)
        except ValueError:
            self.binning, self.sigma_angstrom = old
            self.apply_display()
            raise
        self.display_changed.emit()

    def apply_display(self) -> None:
        """Show the slab, binning and low-pass (napari and the orthogonal views follow)."""
        self.display.apply()
        self.display_changed.emit()

    def _on_ndisplay(self, event=None) -> None:
        self.update_cuts()
        self.ndisplay_changed.emit(int(self.viewer.dims.ndisplay))

    # ----------------------------------------------------------------------------- cursor ----
    def current_z(self, default: int = 0) -> int:
        """The source's Z slice under napari's Z slider."""
        src = self.source
        if src is None:
            return default
        try:
            z = int(round(float(src.world_to_data(np.asarray(self.viewer.dims.point)[-3:])[0])))
        except (ValueError, IndexError):
            return default
        return int(np.clip(z, 0, src.data.shape[0] - 1))

    def set_cursor(self, zyx) -> None:
        """Move the cursor to voxel indices (z, y, x) of the source; moves napari's Z slider."""
        src = self.source
        if src is None:
            return
        self.cursor = np.clip(np.round(np.asarray(zyx, dtype=float)).astype(int), 0, np.asarray(src.data.shape) - 1)
        world = np.asarray(src.data_to_world(self.cursor.astype(float)))
        self._syncing = True
        try:
            self.viewer.dims.set_point(self.viewer.dims.ndim - 3, float(world[0]))
        finally:
            self._syncing = False
        self.update_cuts()
        self.cursor_changed.emit(self.cursor.copy())

    def set_cursor_world(self, world_zyx) -> None:
        """Move the cursor to world coordinates (z, y, x), e.g. a click in an orthogonal view."""
        if self.source is not None:
            self.set_cursor(self.source.world_to_data(np.asarray(world_zyx, dtype=float)))

    def cursor_world(self) -> np.ndarray:
        """The cursor in world coordinates (z, y, x)."""
        return np.asarray(self.source.data_to_world(self.cursor.astype(float)))[-3:]

    def _on_dims_point(self, event=None) -> None:
        if self._syncing or self.source is None:
            return
        z = self.current_z(default=int(self.cursor[0]))
        if z != self.cursor[0]:
            self.cursor[0] = z
            self.cursor_changed.emit(self.cursor.copy())

    # -------------------------------------------------------------------------- cut lines ----
    def set_in_front(self, in_front: bool) -> None:
        """The browser's dock came to the front (show the cut lines) or went behind (remove them)."""
        self.in_front = bool(in_front)
        self.update_cuts()

    def set_show_cuts(self, show: bool) -> None:
        self.show_cuts = bool(show)
        self.update_cuts()

    def _cut_lines(self) -> list[np.ndarray]:
        ny, nx = self.source.data.shape[1:]
        _, y, x = (float(c) for c in self.cursor)
        return [np.array([[y, -0.5], [y, nx - 0.5]]), np.array([[-0.5, x], [ny - 0.5, x]])]

    def _make_cuts(self, _kept):
        src = self.source
        return self._cut_lines(), dict(
            shape_type="line", ndim=2, scale=tuple(src.scale[-2:]), translate=tuple(src.translate[-2:]),
            units=self.units(2), edge_color=CUT_COLOURS, opacity=0.6, blending="translucent_no_depth",
            edge_width=float(np.clip(0.003 * max(src.data.shape[1:]), CUT_WIDTH_MIN, 4.0)),
        )

    def update_cuts(self) -> None:
        """Two lines in the XY canvas through the cursor, where the XZ and YZ views cut it: a 2D
        helper layer (shown on every Z section) that exists only while the browser is in front."""
        want = self.source is not None and self.show_cuts and self.in_front and self.viewer.dims.ndisplay == 2
        if not want:
            self.cuts.hide()
        elif self.cuts.shown:
            self.cuts.layer.data = self._cut_lines()
            self.cuts.layer.edge_color = CUT_COLOURS
        else:
            self.cuts.show(reset=True)

    # ------------------------------------------------------------------------------ clicks ----
    def require_source(self) -> None:
        """ValueError naming what to do when there is no tomogram to act on."""
        if self.source is None:
            raise ValueError(self.status or "choose a 3D image layer first.")

    def click_world(self, position) -> None:
        """Act on a click at world coordinates ``position`` in the XY canvas, as :attr:`mode` says:
        move the cursor, add a pick or measure. Clicks outside the volume do nothing."""
        if self.source is None:
            return
        idx = np.asarray(self.source.world_to_data(np.asarray(position, dtype=float)[-3:]), dtype=float)
        if self.viewer.dims.ndisplay == 2:
            idx[0] = self.cursor[0]
        if np.any(idx < -0.5) or np.any(idx > np.asarray(self.source.data.shape) - 0.5):
            return
        if self.mode == "pick":
            self.annotations.add_pick(idx)
        elif self.mode == "measure":
            self.annotations.measure_click(idx)
        else:
            self.set_cursor(idx)

    def on_canvas_mouse(self, viewer, event):
        """napari drag callback: a click (press and release, no drag) in the 2D canvas while the
        browser is in front goes to :meth:`click_world`; drags (pan) and Shift/Ctrl clicks do not."""
        if self.source is None or not self.in_front or viewer.dims.ndisplay != 2 or event.button != 1:
            return
        if {"Shift", "Control"} & set(getattr(event, "modifiers", ())):
            return
        yield
        dragged = False
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged:
            self.click_world(event.position)
