"""Tomogram browser: orthogonal views on one cursor, slabs, binning, contrast, picking, measuring.

napari's canvas is the XY view (as 3dmod's ZaP window). The dock holds the XZ and YZ views
(pyqtgraph, as 3dmod's XYZ window), all linked to one cursor (z, y, x): a click in any view
moves it, which moves napari's Z slider and redraws the others. The science lives in
:mod:`napari_cryomat.core.tomo` and :mod:`napari_cryomat.core.picks`; this module only wires
controls to it.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
from qtpy.QtCore import QRectF, Qt, QTimer
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.core import picks as core_picks
from napari_cryomat.core._progress import Cancelled
from napari_cryomat.core import tomo as core_tomo
from napari_cryomat.widgets._common import (
    DockVisibility,
    LayerCombo,
    TaskRunner,
    angstrom_units,
    show_error,
    show_info,
    show_warning,
)

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

__all__ = ["TomogramBrowser"]

BINNINGS = (1, 2, 4, 8)
CONTRAST_PRESETS = ((0.5, 99.5), (1.0, 99.0), (5.0, 95.0))
RENDERINGS = {"volume (MIP)": "mip", "volume (attenuated MIP)": "attenuated_mip", "isosurface": "iso"}
MAX_3D_VOXELS = 1 << 25  # auto-binning above this when switching to 3D (128 MB of float32)
# A YZ view touches every page of the file (X is the fast axis on disk). Above this many bytes
# it is first drawn from every s-th voxel (a preview reading ~1/s**2 of the file), then exactly.
PREVIEW_BYTES = 64 << 20
_YZ_TITLE = "YZ  (Y →, Z ↑)"
_DERIVED_KEY = "tomo_browser_source"


def _display_to_file(points, mrc_meta):
    """Displayed voxel indices -> the MRC file's own voxel indices (the reader's contract)."""
    from napari_cryomat.io.mrc import display_to_file_zyx

    return display_to_file_zyx(points, mrc_meta)


def _file_to_display(points, mrc_meta):
    from napari_cryomat.io.mrc import file_to_display_zyx

    return file_to_display_zyx(points, mrc_meta)


def _is_browsable(layer) -> bool:
    """Image layers that are not our own derived (binned / low-passed) display layers."""
    return _DERIVED_KEY not in getattr(layer, "metadata", {})


class TomogramBrowser(QWidget):
    """Dock widget browsing a 3D image layer (Z, Y, X) the way 3dmod does.

    Public state for scripts and tests: :attr:`cursor` (z, y, x voxel indices of the chosen
    layer), :meth:`set_cursor`, :attr:`picks_layer`, :meth:`export_picks`,
    :meth:`import_picks`, :attr:`measurements` (list of distances in Å).
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        import pyqtgraph as pg
        from napari.layers import Image

        self.viewer = napari_viewer
        self._source = None  # the user's 3D image layer
        self._derived = None  # our binned / low-passed display layer (or None)
        self._picks = {}  # source layer id -> Points layer
        self._cut_layer = None  # 2D Shapes layer: where the XZ and YZ views cut the XY view
        self._measure_layer = None
        self._measure_first: Optional[np.ndarray] = None
        self.measurements: list[float] = []
        self._in_front = True  # False while another dock tab hides this panel (no cut lines then)
        self.cursor = np.zeros(3, dtype=int)
        self._levels: Optional[tuple[float, float]] = None
        self._ortho_ids = itertools.count()
        self._ortho_latest = -1
        self._ortho_pending = None
        self._ortho_worker = None
        self._syncing = False

        # ---- layer & status ------------------------------------------------------------
        self.layer_combo = LayerCombo(napari_viewer, (Image,), predicate=_is_browsable)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.cursor_label = QLabel("cursor: -")

        # ---- orthogonal views (pyqtgraph) ---------------------------------------------
        pg.setConfigOptions(antialias=False)
        self.ortho = pg.GraphicsLayoutWidget()
        self.ortho.setMinimumHeight(260)
        self.ortho.setBackground("k")
        self.xz_view = self.ortho.addViewBox(row=0, col=0, lockAspect=True, enableMouse=True)
        self.yz_view = self.ortho.addViewBox(row=1, col=0, lockAspect=True, enableMouse=True)
        # Both views: Z up (as 3dmod's XZ view); YZ is drawn with Y horizontal so the two stack
        # in a narrow dock (3dmod's XYZ window puts it sideways, to the right of XY).
        self.xz_item = pg.ImageItem(axisOrder="row-major")
        self.yz_item = pg.ImageItem(axisOrder="row-major")
        self.xz_view.addItem(self.xz_item)
        self.yz_view.addItem(self.yz_item)
        # Colours match the cut lines in the XY canvas: yellow = the XZ cut (y), cyan = the YZ
        # cut (x), white = the XY section (z).
        yellow, cyan, white = (pg.mkPen(c, width=1) for c in ((255, 220, 0), (0, 208, 255), (230, 230, 230)))
        self.xz_vline = pg.InfiniteLine(angle=90, pen=cyan)  # x: where the YZ view cuts
        self.xz_hline = pg.InfiniteLine(angle=0, pen=white)  # z: the XY section
        self.yz_vline = pg.InfiniteLine(angle=90, pen=yellow)  # y: where the XZ view cuts
        self.yz_hline = pg.InfiniteLine(angle=0, pen=white)  # z
        for view, items in ((self.xz_view, (self.xz_vline, self.xz_hline)), (self.yz_view, (self.yz_vline, self.yz_hline))):
            for it in items:
                view.addItem(it)
        xz_label = pg.TextItem("XZ  (X →, Z ↑)", color=(255, 220, 0), anchor=(0, 0))
        self.yz_label = pg.TextItem(_YZ_TITLE, color=(0, 208, 255), anchor=(0, 0))
        xz_label.setParentItem(self.xz_view)
        self.yz_label.setParentItem(self.yz_view)
        self.ortho.scene().sigMouseClicked.connect(self._on_ortho_click)

        # ---- slab / binning / low-pass -------------------------------------------------
        self.thickness = QDoubleSpinBox()
        self.thickness.setRange(1, 100000)
        self.thickness.setDecimals(0)
        self.thickness.setValue(1)
        self.thickness_unit = QComboBox()
        self.thickness_unit.addItems(["slices", "Å"])
        self.thickness_unit.setToolTip("Slab thickness unit: slices of the volume or angstrom")
        self.thickness.setToolTip("Mean over this many slices (or Å) around the cursor, in every view")
        slab_row = QHBoxLayout()
        slab_row.addWidget(self.thickness)
        slab_row.addWidget(self.thickness_unit)
        self.slab_info = QLabel()

        self.binning = QComboBox()
        self.binning.addItems([f"{b}x" for b in BINNINGS])
        self.binning.setToolTip("Show a lazily mean-binned copy (reads only what is displayed)")
        self.lowpass = QDoubleSpinBox()
        self.lowpass.setRange(0, 10000)
        self.lowpass.setDecimals(1)
        self.lowpass.setSingleStep(5)
        self.lowpass.setSuffix(" Å")
        self.lowpass.setSpecialValueText("off")
        self.lowpass.setToolTip("Gaussian low-pass sigma in Å, for display only (0 = off)")

        self.contrast_buttons = []
        contrast_row = QHBoxLayout()
        for lo, hi in CONTRAST_PRESETS:
            b = QPushButton(f"{lo:g}-{hi:g} %")
            b.setToolTip(f"Contrast from the {lo:g} and {hi:g} percentiles of the visible slab")
            b.clicked.connect(lambda _=False, p=(lo, hi): self.apply_contrast(p))
            contrast_row.addWidget(b)
            self.contrast_buttons.append(b)

        view_box = QGroupBox("View")
        form = QFormLayout(view_box)
        form.addRow("Slab", slab_row)
        form.addRow("", self.slab_info)
        form.addRow("Binning", self.binning)
        form.addRow("Low-pass σ", self.lowpass)
        form.addRow("Contrast", contrast_row)

        # ---- 3D ------------------------------------------------------------------------
        self.show_cuts = QCheckBox("Show XZ/YZ cut lines in XY")
        self.show_cuts.setChecked(True)
        self.show_cuts.setToolTip("Draw where the XZ (horizontal) and YZ (vertical) views cut the XY canvas")
        form.addRow("", self.show_cuts)
        self.view3d = QCheckBox("3D")
        self.render_mode = QComboBox()
        self.render_mode.addItems(list(RENDERINGS))
        row3d = QHBoxLayout()
        row3d.addWidget(self.view3d)
        row3d.addWidget(self.render_mode)
        form.addRow("Render", row3d)
        self.runner = TaskRunner("3D volume")
        form.addRow("", self.runner)

        # ---- mouse mode, measuring, picking -------------------------------------------
        self.mode_navigate = QRadioButton("Navigate")
        self.mode_pick = QRadioButton("Pick")
        self.mode_measure = QRadioButton("Measure")
        self.mode_navigate.setChecked(True)
        self._mode_group = QButtonGroup(self)
        for b in (self.mode_navigate, self.mode_pick, self.mode_measure):
            self._mode_group.addButton(b)
        mode_row = QHBoxLayout()
        for b in (self.mode_navigate, self.mode_pick, self.mode_measure):
            mode_row.addWidget(b)
        self.distance_label = QLabel("Distance: -")
        self.clear_measure_button = QPushButton("Clear")
        meas_row = QHBoxLayout()
        meas_row.addWidget(self.distance_label, 1)
        meas_row.addWidget(self.clear_measure_button)
        self.picks_label = QLabel("Picks: 0")
        self.undo_pick_button = QPushButton("Undo pick")
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_star_button = QPushButton("Export STAR…")
        self.import_button = QPushButton("Import…")
        pick_row1 = QHBoxLayout()
        pick_row1.addWidget(self.picks_label, 1)
        pick_row1.addWidget(self.undo_pick_button)
        pick_row2 = QHBoxLayout()
        for b in (self.export_csv_button, self.export_star_button, self.import_button):
            pick_row2.addWidget(b)
        click_box = QGroupBox("A click in the XY canvas will")
        click_layout = QVBoxLayout(click_box)
        click_layout.addLayout(mode_row)
        click_layout.addLayout(meas_row)
        click_layout.addLayout(pick_row1)
        click_layout.addLayout(pick_row2)

        layout = QVBoxLayout(self)
        top = QFormLayout()
        top.addRow("Tomogram", self.layer_combo)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.cursor_label)
        layout.addWidget(self.ortho, 1)
        layout.addWidget(view_box)
        layout.addWidget(click_box)
        self._controls = [view_box, click_box, self.ortho]

        # ---- connections ---------------------------------------------------------------
        self.layer_combo.currentIndexChanged.connect(lambda _=None: self._set_source(self.layer_combo.layer()))
        self.thickness.valueChanged.connect(self._on_view_params)
        self.thickness_unit.currentIndexChanged.connect(self._on_thickness_unit)
        self.binning.currentIndexChanged.connect(self._on_view_params)
        self.lowpass.valueChanged.connect(self._on_view_params)
        self.view3d.toggled.connect(self._on_3d)
        self.show_cuts.toggled.connect(lambda _=None: self._update_cut_lines())
        self._dock_visibility = DockVisibility(self, self._on_dock_visibility)
        self.render_mode.currentIndexChanged.connect(self._apply_rendering)
        self.clear_measure_button.clicked.connect(self.clear_measurements)
        self.undo_pick_button.clicked.connect(self.undo_pick)
        self.export_csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.export_star_button.clicked.connect(lambda: self._export_dialog("star"))
        self.import_button.clicked.connect(self._import_dialog)
        self.viewer.dims.events.point.connect(self._on_dims_point)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self.viewer.mouse_drag_callbacks.append(self._on_canvas_mouse)
        self.destroyed.connect(self._disconnect_viewer)
        self._set_source(self.layer_combo.layer())

    # ================================================================ source & display ====
    @property
    def source_layer(self):
        """The 3D image layer being browsed (or None)."""
        return self._source

    @property
    def display_layer(self):
        """The layer napari shows: the derived binned/low-passed layer or the source itself."""
        return self._derived if self._derived is not None else self._source

    @property
    def picks_layer(self):
        """The Points layer collecting picks for the current tomogram (created on demand)."""
        if self._source is None:
            return None
        layer = self._picks.get(id(self._source))
        if layer is None or layer not in self.viewer.layers:
            src = self._source
            layer = self.viewer.add_points(
                np.zeros((0, 3)),
                ndim=3,
                name=f"{src.name} picks",
                scale=tuple(src.scale),
                translate=tuple(src.translate),
                units=self._units(3),
                size=float(np.clip(0.04 * max(src.data.shape[1:]), 6.0, 40.0)),  # voxels; napari's layer controls change it
                face_color="transparent",
                border_color="lime",
                border_width=0.15,
                symbol="disc",
                out_of_slice_display=False,
                metadata={"picks_for": src.name},
            )
            layer.events.data.connect(self._update_pick_count)
            self._picks[id(src)] = layer
            self.viewer.layers.selection.active = self.display_layer
        return layer

    def _voxel_size(self) -> np.ndarray:
        """Å per voxel (z, y, x) of the source layer: its napari scale (set from the MRC header
        by the reader), converted to Å if the layer carries other length units."""
        src = self._source
        scale = np.asarray(src.scale[-3:], dtype=float)
        try:
            units = src.units[-3:]
            return np.array([
                s if str(u) in ("pixel", "angstrom", "Å") else float((s * u).to("angstrom").magnitude)
                for s, u in zip(scale, units)
            ])
        except Exception:  # non-length units: trust the numbers
            return scale

    def _units(self, n: int) -> tuple:
        """Units for layers drawn over the source: the source's own (Å for every tomogram this
        plugin opens), so that napari's world coordinates of all of them agree."""
        try:
            return tuple(str(u) for u in self._source.units[-n:])
        except Exception:
            return angstrom_units(n)

    def _set_source(self, layer) -> None:
        if layer is self._source and layer is not None:
            return
        self._drop_derived()
        if self._source is not None:
            try:
                self._source.events.contrast_limits.disconnect(self._on_layer_contrast)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._source = None
        self._measure_first = None
        if self._cut_layer is not None and self._cut_layer in self.viewer.layers:
            self.viewer.layers.remove(self._cut_layer)
        self._cut_layer = None
        if layer is None:
            self._enable(False, "No 3D image layer: open a tomogram (File > Open, or File > Open Sample > "
                                "napari-cryomat > Cryo-ET tomogram).")
            return
        if layer.ndim != 3 or getattr(layer, "rgb", False) or getattr(layer, "multiscale", False):
            why = "is RGB" if getattr(layer, "rgb", False) else (
                "is already multiscale" if getattr(layer, "multiscale", False) else f"has {layer.ndim} dimensions")
            self._enable(False, f"'{layer.name}' {why}: the tomogram browser needs a single-scale 3D image "
                                "(Z, Y, X). Choose another layer or open a tomogram.")
            return
        self._source = layer
        self._enable(True, "")
        self._show_scale_bar()
        self._levels = tuple(float(v) for v in layer.contrast_limits)
        layer.events.contrast_limits.connect(self._on_layer_contrast)
        layer.projection_mode = "mean"
        shape = np.asarray(layer.data.shape)
        z = self._current_z(default=shape[0] // 2)
        self.cursor = np.array([z, shape[1] // 2, shape[2] // 2], dtype=int)
        self._apply_display()
        self.set_cursor(self.cursor)

    def _show_scale_bar(self) -> None:
        """Turn napari's scale bar on (it speaks the layer's units, Å)."""
        canvas = getattr(self.viewer, "canvas", None)
        bar = getattr(getattr(canvas, "overlays", None), "scale_bar", None) if canvas is not None else None
        if bar is not None:
            bar.visible = True

    def _enable(self, on: bool, message: str) -> None:
        for w in self._controls:
            w.setEnabled(on)
        self.status.setText(message)
        self.status.setStyleSheet("color: #e0a000" if message else "")
        self.status.setVisible(bool(message))
        if not on:
            self.xz_item.clear()
            self.yz_item.clear()
            self.cursor_label.setText("cursor: -")

    def _require_source(self) -> bool:
        if self._source is None:
            show_error("Tomogram browser: " + (self.status.text() or "choose a 3D image layer first."))
            return False
        return True

    def _on_layer_removed(self, event) -> None:
        layer = event.value
        if layer is self._derived:
            self._derived = None
            if self._source is not None and self._source in self.viewer.layers:
                self._source.visible = True
        if layer is self._source:
            self._derived_remove_quiet()
            self._set_source(self.layer_combo.layer())
        if layer is self._measure_layer:
            self._measure_layer = None
        if layer is self._cut_layer:
            self._cut_layer = None

    def _derived_remove_quiet(self) -> None:
        if self._derived is not None and self._derived in self.viewer.layers:
            d, self._derived = self._derived, None
            self.viewer.layers.remove(d)
        self._derived = None

    def _drop_derived(self) -> None:
        if self._source is not None and self._source in self.viewer.layers:
            self._source.visible = True
        self._derived_remove_quiet()

    # ---- parameters ------------------------------------------------------------------------
    def binning_factor(self) -> int:
        return BINNINGS[max(0, self.binning.currentIndex())]

    def thickness_slices(self) -> int:
        """Slab thickness in (unbinned) slices along Z."""
        if self.thickness_unit.currentText() == "Å":
            if self._source is None:
                return 1
            return core_tomo.slices_from_angstrom(self.thickness.value(), float(self._voxel_size()[0]))
        return max(1, int(round(self.thickness.value())))

    def _on_thickness_unit(self) -> None:
        """Convert the value so the slab stays the same when switching slices <-> Å."""
        vz = float(self._voxel_size()[0]) if self._source is not None else 1.0
        self.thickness.blockSignals(True)
        if self.thickness_unit.currentText() == "Å":
            self.thickness.setDecimals(1)
            self.thickness.setSingleStep(vz)
            self.thickness.setValue(self.thickness.value() * vz)
        else:
            self.thickness.setDecimals(0)
            self.thickness.setSingleStep(1)
            self.thickness.setValue(max(1, round(self.thickness.value() / vz)))
        self.thickness.blockSignals(False)
        self._on_view_params()

    def _on_view_params(self, *_) -> None:
        if self._source is None:
            return
        try:
            self._apply_display()
        except ValueError as exc:
            show_error(f"Tomogram browser: {exc}")
            self.binning.blockSignals(True)
            self.binning.setCurrentIndex(0)
            self.binning.blockSignals(False)
            self._apply_display()
        self._request_ortho()

    def _apply_display(self) -> None:
        """Build (lazily) what napari shows: binning and low-pass as a derived layer, slab as
        napari's thick slicing (mean projection over the slab)."""
        src = self._source
        f = self.binning_factor()
        sigma = float(self.lowpass.value())
        vs = np.asarray(src.scale[-3:], dtype=float)
        n = self.thickness_slices()
        self.slab_info.setText(f"= {n} slice{'s' if n > 1 else ''}, {n * self._voxel_size()[0]:.1f} Å")
        if f == 1 and sigma == 0:
            self._drop_derived()
        else:
            data = core_tomo.bin_volume(src.data, f)
            if sigma > 0:
                data = core_tomo.lowpass_slices(data, sigma_A=sigma, pixel_size_A=(vs[1] * f, vs[2] * f))
            scale, translate = core_tomo.binned_scale_translate(vs, np.asarray(src.translate[-3:]), f)
            name = f"{src.name} [{f}x" + (f", σ {sigma:g} Å]" if sigma > 0 else "]")
            meta = {_DERIVED_KEY: src.name, "binning": f, "lowpass_sigma_angstrom": sigma}
            if self._derived is not None and self._derived in self.viewer.layers:
                self.viewer.layers.remove(self._derived)
                self._derived = None
            self._derived = self.viewer.add_image(
                data,
                name=name,
                scale=scale,
                translate=translate,
                units=self._units(3),
                colormap=src.colormap.name,
                contrast_limits=self._levels,
                projection_mode="mean",
                rendering=RENDERINGS[self.render_mode.currentText()],
                metadata=meta,
            )
            self._derived.events.contrast_limits.connect(self._on_layer_contrast)
            # keep it just above the source so picks/measurements stay on top
            self.viewer.layers.move(self.viewer.layers.index(self._derived), self.viewer.layers.index(src) + 1)
            src.visible = False
            self.viewer.layers.selection.active = self._derived
        self._apply_slab()

    def _apply_slab(self) -> None:
        """napari thick slicing: mean over the slab around the current Z (world units, Å)."""
        axis = self.viewer.dims.ndim - 3
        n = self.thickness_slices()
        vz = float(self._source.scale[-3])
        left = list(self.viewer.dims.margin_left)
        right = list(self.viewer.dims.margin_right)
        left[axis] = (n - 1) // 2 * vz
        right[axis] = n // 2 * vz
        self.viewer.dims.margin_left = tuple(left)
        self.viewer.dims.margin_right = tuple(right)

    # ---- contrast ----------------------------------------------------------------------------
    def apply_contrast(self, percentiles=(0.5, 99.5)) -> Optional[tuple[float, float]]:
        """Set display limits from percentiles of the visible XY slab (strided subsample)."""
        if not self._require_source():
            return None
        disp = self.display_layer
        f = self.binning_factor() if self._derived is not None else 1
        n_disp = max(1, int(round(self.thickness_slices() / f)))
        z_disp = int(self.cursor[0]) // f
        try:
            lo, hi = core_tomo.slab_contrast(disp.data, z_disp, thickness=n_disp, percentiles=percentiles)
        except ValueError as exc:
            show_error(f"Tomogram browser: {exc}")
            return None
        self._levels = (lo, hi)
        # widen the slider range if needed, then set the limits on what is shown
        for layer in {id(disp): disp, id(self._source): self._source}.values():
            rng = layer.contrast_limits_range
            layer.contrast_limits_range = (min(rng[0], lo), max(rng[1], hi))
            layer.contrast_limits = (lo, hi)
        self.xz_item.setLevels((lo, hi))
        self.yz_item.setLevels((lo, hi))
        return lo, hi

    def _on_layer_contrast(self, event=None) -> None:
        """The user moved napari's contrast slider: the orthogonal views follow."""
        disp = self.display_layer
        if disp is None or (event is not None and getattr(event, "source", disp) is not disp):
            return
        lo, hi = (float(v) for v in disp.contrast_limits)
        self._levels = (lo, hi)
        self.xz_item.setLevels((lo, hi))
        self.yz_item.setLevels((lo, hi))

    # ---- 3D ----------------------------------------------------------------------------------
    def _on_3d(self, on: bool) -> None:
        if on and self._source is None:
            self._require_source()
            self.view3d.setChecked(False)
            return
        if not on:
            if self.runner.busy:
                self.runner.cancel()
            self._set_3d(False)
            return
        nvox = float(np.prod(self._source.data.shape))
        f = self.binning_factor()
        if nvox / f**3 > MAX_3D_VOXELS:
            need = next((b for b in BINNINGS if nvox / b**3 <= MAX_3D_VOXELS), BINNINGS[-1])
            show_info(f"3D rendering of {int(nvox):,} voxels: switching to {need}x binning so it fits the GPU.")
            self.binning.setCurrentIndex(BINNINGS.index(need))
        derived = self._derived
        if derived is not None and not isinstance(derived.data, np.ndarray):
            # The binned / low-passed volume is lazy: compute it off the GUI thread (progress,
            # Cancel) and render it once it is in memory.
            self._lock_2d_controls(True)
            worker = self.runner.start(core_tomo.compute_slices, derived.data, on_done=self._on_volume_ready)
            if worker is not None:
                worker.errored.connect(lambda _exc: self._set_3d(False))
            return
        self._set_3d(True)

    def _on_volume_ready(self, volume: np.ndarray) -> None:
        if self._derived is None or not self.view3d.isChecked():
            self._lock_2d_controls(False)
            return
        self._derived.data = volume
        self._set_3d(True)

    def _lock_2d_controls(self, lock: bool) -> None:
        """In 3D the rendered volume is fixed: binning, low-pass and slab are 2D browsing tools."""
        for w in (self.binning, self.lowpass, self.thickness, self.thickness_unit):
            w.setEnabled(not lock)

    def _set_3d(self, on: bool) -> None:
        if self.view3d.isChecked() != on:
            self.view3d.blockSignals(True)
            self.view3d.setChecked(on)
            self.view3d.blockSignals(False)
        self._lock_2d_controls(on)
        self.viewer.dims.ndisplay = 3 if on else 2
        self._apply_rendering()
        self._update_cut_lines()

    def _apply_rendering(self, *_) -> None:
        disp = self.display_layer
        if disp is None:
            return
        mode = RENDERINGS[self.render_mode.currentText()]
        disp.rendering = mode
        if mode == "iso":
            lo, hi = disp.contrast_limits
            disp.iso_threshold = lo + 0.6 * (hi - lo)

    # ============================================================================ cursor ====
    def _current_z(self, default: int = 0) -> int:
        src = self._source
        if src is None:
            return default
        try:
            idx = src.world_to_data(np.asarray(self.viewer.dims.point)[-3:] if src.ndim == 3 else self.viewer.dims.point)
            z = int(round(float(idx[0])))
        except Exception:
            return default
        return int(np.clip(z, 0, src.data.shape[0] - 1))

    def set_cursor(self, zyx) -> None:
        """Move the shared cursor to voxel indices (z, y, x) of the tomogram; moves napari's
        Z slider and redraws the orthogonal views."""
        if self._source is None:
            return
        shape = np.asarray(self._source.data.shape)
        new = np.clip(np.round(np.asarray(zyx, dtype=float)).astype(int), 0, shape - 1)
        moved_yx = not np.array_equal(new[1:], self.cursor[1:])
        self.cursor = new
        world = np.asarray(self._source.data_to_world(new.astype(float)))
        axis = self.viewer.dims.ndim - 3
        self._syncing = True
        try:
            self.viewer.dims.set_point(axis, float(world[0]))
        finally:
            self._syncing = False
        self._update_crosshair()
        if moved_yx or self.xz_item.image is None:
            self._request_ortho()

    def _on_dims_point(self, event=None) -> None:
        if self._syncing or self._source is None:
            return
        z = self._current_z(default=int(self.cursor[0]))
        if z != self.cursor[0]:
            self.cursor[0] = z
            self._update_crosshair()

    def _update_crosshair(self) -> None:
        src = self._source
        if src is None:
            return
        w = np.asarray(src.data_to_world(self.cursor.astype(float)))[-3:]
        self.xz_vline.setPos(w[2])
        self.xz_hline.setPos(w[0])
        self.yz_vline.setPos(w[1])
        self.yz_hline.setPos(w[0])
        vs = self._voxel_size()
        z, y, x = (int(c) for c in self.cursor)
        self.cursor_label.setText(
            f"cursor z {z}  y {y}  x {x} (voxels) = {z * vs[0]:.0f}, {y * vs[1]:.0f}, {x * vs[2]:.0f} Å"
        )
        self._update_cut_lines()

    def _on_dock_visibility(self, visible: bool) -> None:
        self._in_front = bool(visible)
        self._update_cut_lines()

    def _update_cut_lines(self) -> None:
        """Two lines in the XY canvas through the cursor: the XZ cut (along X) and the YZ cut
        (along Y). A 2D layer, so napari shows it on every Z section."""
        src = self._source
        show = (src is not None and self.show_cuts.isChecked() and self.viewer.dims.ndisplay == 2
                and self._in_front)
        layer = self._cut_layer
        if not show:
            if layer is not None and layer in self.viewer.layers:
                layer.visible = False
            return
        ny, nx = src.data.shape[1:]
        _, y, x = (float(c) for c in self.cursor)
        lines = [np.array([[y, -0.5], [y, nx - 0.5]]), np.array([[-0.5, x], [ny - 0.5, x]])]
        if layer is None or layer not in self.viewer.layers:
            active = self.viewer.layers.selection.active
            layer = self.viewer.add_shapes(
                lines,
                shape_type="line",
                ndim=2,
                name="XZ/YZ cuts",
                scale=tuple(src.scale[-2:]),
                translate=tuple(src.translate[-2:]),
                units=self._units(2),
                edge_color=["#ffdc00", "#00d0ff"],
                edge_width=float(np.clip(0.003 * max(ny, nx), 0.5, 4.0)),
                opacity=0.6,
                blending="translucent_no_depth",
            )
            self._cut_layer = layer
            if active is not None:
                self.viewer.layers.selection.active = active
        else:
            layer.data = lines
            layer.edge_color = ["#ffdc00", "#00d0ff"]
            layer.visible = True

    # ================================================================ orthogonal views ====
    @property
    def ortho_busy(self) -> bool:
        """True while an orthogonal view is being computed (tests wait on this)."""
        return self._ortho_worker is not None or self._ortho_pending is not None

    def _preview_step(self) -> int:
        """Stride of the first, quick YZ pass: 1 for volumes up to PREVIEW_BYTES."""
        data = self._source.data
        nbytes = float(np.prod(data.shape)) * np.dtype(data.dtype).itemsize
        step = 1
        while nbytes / step**2 > PREVIEW_BYTES and step < 64:
            step *= 2
        return step

    def _ortho_request(self) -> dict:
        src = self._source
        return {
            "yz_step": self._preview_step(),
            "data": src.data,
            "y": int(self.cursor[1]),
            "x": int(self.cursor[2]),
            "thickness": self.thickness_slices(),
            "binning": self.binning_factor(),
            "sigma": float(self.lowpass.value()),
            "voxel_size": np.asarray(src.scale[-3:], dtype=float),
            "translate": np.asarray(src.translate[-3:], dtype=float),
        }

    def _request_ortho(self) -> None:
        """Latest request wins: at most one computation runs, the newest waiting one follows."""
        if self._source is None:
            return
        req = self._ortho_request()
        req["id"] = rid = next(self._ortho_ids)
        req["is_stale"] = lambda: self._ortho_latest != rid  # read from the worker thread
        self._ortho_latest = rid
        if self._ortho_worker is not None:
            self._ortho_pending = req
            return
        self._start_ortho(req)

    def _start_ortho(self, req: dict) -> None:
        from napari.qt.threading import create_worker

        self._ortho_pending = None
        worker = create_worker(_compute_orthoslices, req, _start_thread=False)
        worker.returned.connect(self._on_ortho_done)
        worker.errored.connect(self._on_ortho_error)
        worker.finished.connect(self._on_ortho_finished)
        self._ortho_worker = worker
        worker.start()

    def _on_ortho_done(self, result) -> None:
        if result["id"] != self._ortho_latest or self._source is None:
            return  # superseded
        if result["yz_step"] > 1:  # quick preview shown; now the exact view (stoppable)
            self._ortho_pending = {**result["req"], "yz_step": 1}
            self.yz_label.setText(f"{_YZ_TITLE}  preview 1/{result['yz_step']}, refining…")
        else:
            self.yz_label.setText(_YZ_TITLE)
        lo_hi = self._levels or (float(np.min(result["xz"])), float(np.max(result["xz"])) + 1e-6)
        self.xz_item.setImage(result["xz"], levels=lo_hi, autoLevels=False)
        self.yz_item.setImage(result["yz"], levels=lo_hi, autoLevels=False)
        self.xz_item.setRect(QRectF(*result["xz_rect"]))
        self.yz_item.setRect(QRectF(*result["yz_rect"]))
        fit_key = (id(self._source), tuple(self._source.data.shape), result["req"]["binning"])
        if fit_key != getattr(self, "_last_fit", None):  # new volume or binning: fit the views
            self._last_fit = fit_key
            self.xz_view.autoRange(padding=0.02)
            self.yz_view.autoRange(padding=0.02)
        self._update_crosshair()

    def _on_ortho_error(self, exc) -> None:
        if isinstance(exc, Cancelled):  # superseded by a newer cursor position
            return
        log.warning("orthogonal views failed: %s", exc)
        show_error(f"Tomogram browser: orthogonal views failed ({exc}).")

    def _on_ortho_finished(self) -> None:
        self._ortho_worker = None
        if self._ortho_pending is not None:
            QTimer.singleShot(0, self._run_pending)

    def _run_pending(self) -> None:
        if self._ortho_pending is not None and self._ortho_worker is None:
            self._start_ortho(self._ortho_pending)

    def _on_ortho_click(self, event) -> None:
        if self._source is None or event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.scenePos()
        vs = self._voxel_size_scale()
        t = np.asarray(self._source.translate[-3:], dtype=float)
        for view, axes in ((self.xz_view, (2, 0)), (self.yz_view, (1, 0))):
            if view.sceneBoundingRect().contains(pos):
                p = view.mapSceneToView(pos)
                new = self.cursor.astype(float).copy()
                new[axes[0]] = (p.x() - t[axes[0]]) / vs[axes[0]]
                new[axes[1]] = (p.y() - t[axes[1]]) / vs[axes[1]]
                self.set_cursor(new)
                event.accept()
                return

    def _voxel_size_scale(self) -> np.ndarray:
        return np.asarray(self._source.scale[-3:], dtype=float)

    # ============================================================= canvas mouse modes ====
    def _on_canvas_mouse(self, viewer, event):
        """Click (press and release without drag) in the XY canvas: navigate, pick or measure."""
        if self._source is None or viewer.dims.ndisplay != 2 or event.button != 1:
            return
        if "Shift" in getattr(event, "modifiers", ()) or "Control" in getattr(event, "modifiers", ()):
            return
        yield
        dragged = False
        while event.type == "mouse_move":
            dragged = True
            yield
        if dragged:
            return
        self.click_world(event.position)

    def click_world(self, position) -> None:
        """Act on a click at world coordinates ``position`` (Å) in the XY canvas, according to
        the mouse mode. Used by the canvas callback and by tests/scripts."""
        if self._source is None:
            return
        idx = np.asarray(self._source.world_to_data(np.asarray(position, dtype=float)[-3:]), dtype=float)
        idx[0] = self.cursor[0] if self.viewer.dims.ndisplay == 2 else idx[0]
        shape = np.asarray(self._source.data.shape)
        if np.any(idx < -0.5) or np.any(idx > shape - 0.5):
            return  # outside the volume
        if self.mode_pick.isChecked():
            self.add_pick(idx)
        elif self.mode_measure.isChecked():
            self.measure_click(idx)
        else:
            self.set_cursor(idx)

    # ---- picking -------------------------------------------------------------------------------
    def add_pick(self, zyx) -> None:
        """Add a pick at voxel indices (z, y, x) of the tomogram (as displayed)."""
        if not self._require_source():
            return
        layer = self.picks_layer
        layer.add(np.asarray(zyx, dtype=float)[None, :])
        self._update_pick_count()

    def undo_pick(self) -> None:
        layer = self._picks.get(id(self._source)) if self._source is not None else None
        if layer is not None and len(layer.data):
            layer.data = layer.data[:-1]
        self._update_pick_count()

    def _update_pick_count(self, *_) -> None:
        layer = self._picks.get(id(self._source)) if self._source is not None else None
        n = 0 if layer is None or layer not in self.viewer.layers else len(layer.data)
        self.picks_label.setText(f"Picks: {n}")

    def export_picks(self, path) -> Optional[Path]:
        """Write the picks to ``path`` (``.star``: RELION STAR, else CSV) in the file's voxel
        indices (MRC Y flip undone). Returns the path, or None (with a message) on failure."""
        if not self._require_source():
            return None
        layer = self._picks.get(id(self._source))
        if layer is None or len(layer.data) == 0:
            show_error("Tomogram browser: no picks to export. Choose 'Pick' and click particles first.")
            return None
        meta = self._source.metadata.get("mrc")
        pts = _display_to_file(np.asarray(layer.data, dtype=float), meta)
        tomo_name = Path(meta["path"]).name.split(".")[0] if meta and meta.get("path") else self._source.name
        try:
            out = core_picks.write_picks(path, pts, voxel_size=tuple(self._voxel_size()), tomo_name=tomo_name)
        except (ValueError, OSError) as exc:
            show_error(f"Tomogram browser: cannot write {path}: {exc}")
            return None
        show_info(f"Exported {len(pts)} picks to {out}")
        return out

    def import_picks(self, path) -> int:
        """Add picks from a CSV or STAR file (file voxel indices) to the picks layer.

        Returns the number of picks read (0 on failure, with a message)."""
        if not self._require_source():
            return 0
        try:
            pts = core_picks.read_picks(path)
        except (ValueError, OSError) as exc:
            show_error(f"Tomogram browser: {exc}")
            return 0
        if len(pts) == 0:
            show_warning(f"Tomogram browser: {Path(path).name} holds no picks.")
            return 0
        pts = _file_to_display(pts, self._source.metadata.get("mrc"))
        shape = np.asarray(self._source.data.shape)
        outside = int(np.sum(np.any((pts < -0.5) | (pts > shape - 0.5), axis=1)))
        layer = self.picks_layer
        layer.add(pts)
        self._update_pick_count()
        msg = f"Imported {len(pts)} picks from {Path(path).name}"
        if outside:
            show_warning(msg + f"; {outside} lie outside the volume {tuple(shape)}: were they picked on a "
                               "tomogram with another binning?")
        else:
            show_info(msg)
        return len(pts)

    def _export_dialog(self, kind: str) -> None:
        if not self._require_source():
            return
        filt = "RELION STAR (*.star)" if kind == "star" else "CSV (*.csv)"
        path, _ = QFileDialog.getSaveFileName(self, "Export picks", f"{self._source.name}_picks.{kind}", filt)
        if path:
            if not path.lower().endswith(f".{kind}"):
                path += f".{kind}"
            self.export_picks(path)

    def _import_dialog(self) -> None:
        if not self._require_source():
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Import picks", "", "Picks (*.star *.csv *.txt);;All files (*)"
        )
        if path:
            self.import_picks(path)

    # ---- measuring -----------------------------------------------------------------------------
    def measure_click(self, zyx) -> Optional[float]:
        """First call stores a point, the second returns the distance in Å to it and draws a line."""
        if not self._require_source():
            return None
        p = np.asarray(zyx, dtype=float)
        if self._measure_first is None:
            self._measure_first = p
            self.distance_label.setText("Distance: click the second point…")
            return None
        p0, self._measure_first = self._measure_first, None
        d = core_tomo.distance_angstrom(p0, p, voxel_size=self._voxel_size())
        self.measurements.append(d)
        self._draw_measurement(p0, p, d)
        dz = abs(p[0] - p0[0]) * self._voxel_size()[0]
        self.distance_label.setText(f"Distance: {d:.1f} Å" + (f" (Δz {dz:.0f} Å)" if dz else ""))
        return d

    def _draw_measurement(self, p0, p1, d: float) -> None:
        src = self._source
        layer = self._measure_layer
        if layer is None or layer not in self.viewer.layers:
            layer = self.viewer.add_shapes(
                ndim=3,
                name="measurements",
                scale=tuple(src.scale),
                translate=tuple(src.translate),
                units=self._units(3),
                edge_color="yellow",
                edge_width=float(np.clip(0.004 * max(src.data.shape[1:]), 1.0, 6.0)),
                features={"distance_angstrom": np.zeros(0), "z0": np.zeros(0), "z1": np.zeros(0)},
                text={"string": "{distance_angstrom:.1f} Å", "color": "yellow", "size": 10,
                      "anchor": "upper_left"},
            )
            self._measure_layer = layer
            self.viewer.layers.selection.active = self.display_layer
        # drawn in the plane of the second click (napari shows planar shapes in 2D);
        # the true endpoints are kept in the features table.
        line = np.array([[p1[0], p0[1], p0[2]], [p1[0], p1[1], p1[2]]])
        layer.feature_defaults = {"distance_angstrom": d, "z0": p0[0], "z1": p1[0]}
        layer.add_lines(line)

    def clear_measurements(self) -> None:
        self.measurements.clear()
        self._measure_first = None
        if self._measure_layer is not None and self._measure_layer in self.viewer.layers:
            self.viewer.layers.remove(self._measure_layer)
        self._measure_layer = None
        self.distance_label.setText("Distance: -")

    # ======================================================================== teardown ====
    def _disconnect_viewer(self, *_) -> None:
        try:
            self.viewer.dims.events.point.disconnect(self._on_dims_point)
            self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
            if self._on_canvas_mouse in self.viewer.mouse_drag_callbacks:
                self.viewer.mouse_drag_callbacks.remove(self._on_canvas_mouse)
        except Exception:  # viewer already gone
            pass


def _compute_orthoslices(req: dict) -> dict:
    """XZ and YZ slabs (binned, low-passed) through the cursor; runs in a worker thread.

    Stops (raises Cancelled) as soon as a newer request exists. The YZ view is read with the
    stride ``req["yz_step"]`` (1 = exact)."""
    data, f, n, s = req["data"], req["binning"], req["thickness"], req["yz_step"]
    vs, t = req["voxel_size"], req["translate"]

    def progress(_fraction):
        if req["is_stale"]():
            raise Cancelled()

    try:
        xz = core_tomo.orthoslice(data, req["y"], axis=1, thickness=n, binning=f, progress=progress)  # (Z, X)
        yz = core_tomo.orthoslice(data, req["x"], axis=2, thickness=n, binning=f, step=s, progress=progress)
    finally:
        core_tomo.release_pages(data)  # keep RSS to what is displayed, not what was read
    py = max(f, s)  # YZ pixel, in voxels
    if req["sigma"] > 0:
        xz = core_tomo.gaussian_lowpass(xz, sigma_A=req["sigma"], pixel_size_A=(vs[0] * f, vs[2] * f))
        yz = core_tomo.gaussian_lowpass(yz, sigma_A=req["sigma"], pixel_size_A=(vs[0] * py, vs[1] * py))
    # Image rectangles in world Å. Rows are Z (drawn upwards), columns X (XZ) or Y (YZ). The left
    # edge of the first pixel is at unbinned index -step/2 (see core.tomo.orthoslice).
    nz, nx = xz.shape
    nzs, ny = yz.shape
    xz_edge = t - vs / 2.0
    yz_edge = t - vs * s / 2.0
    return {
        "id": req["id"],
        "req": req,
        "yz_step": s,
        "xz": xz,
        "yz": yz,
        "xz_rect": (xz_edge[2], xz_edge[0], nx * f * vs[2], nz * f * vs[0]),
        "yz_rect": (yz_edge[1], yz_edge[0], ny * py * vs[1], nzs * py * vs[0]),
    }
