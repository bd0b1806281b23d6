"""Spectrum imaging: live spectrum under the cursor, EELS/EDS elemental maps over the HAADF,
composition profiles, PCA denoising, t/λ, export.

The science is in :mod:`napari_cryomat.core.spectral`; this module wires controls to it.
A spectrum-image layer holds (E, Y, X) in napari (energy is the slider, see
:mod:`napari_cryomat.io.spectral`); :func:`si_from_layer` hands the core its (Y, X, E) view.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.core import spectral as core
from napari_cryomat.io.spectral import si_from_layer, spectrum_image_layer, write_csv, write_msa
from napari_cryomat.widgets._common import LayerCombo, TaskRunner, angstrom_units, show_error, show_info

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

__all__ = ["SpectrumImagingWidget", "PeriodicTableDialog"]

#: (napari colormap, RGB used for the legend, plot and the PNG composite)
MAP_COLORS = (
    ("red", (255, 0, 0)),
    ("green", (0, 255, 0)),
    ("blue", (40, 90, 255)),
    ("magenta", (255, 0, 255)),
    ("cyan", (0, 255, 255)),
    ("yellow", (255, 255, 0)),
    ("bop orange", (255, 140, 0)),
    ("bop purple", (160, 60, 255)),
)
_MAP_KEY = "spectrum_map"  # metadata key marking layers this widget made
ROI_NAME = "spectrum ROI"
LINE_NAME = "composition line"


def _maps_job(si, *, energy, mode, elements, windows, method, fwhm, k_factors, progress=None):
    """Worker body: load (if lazy) and compute maps; Cliff–Lorimer when k-factors are given."""
    si = np.asarray(si)
    core.check_spectrum_image(si)
    if mode == "EELS":
        maps = core.eels_maps(si, energy=energy, elements=elements, windows=windows, method=method, progress=progress)
        quant = None
    else:
        maps = core.eds_maps(si, energy=energy, elements=elements, fwhm_mn_ka=fwhm, windows=windows, progress=progress)
        quant = None
        if k_factors and len(maps) >= 2:
            quant = core.cliff_lorimer({el: m.data for el, m in maps.items()}, k_factors=k_factors)
    return maps, quant


def _pca_job(si, *, max_components, progress=None):
    return core.pca(np.asarray(si), poisson=True, max_components=max_components, progress=progress)


def _identify_job(data, *, energy, fwhm, progress=None):
    """``data``: a sum spectrum (E,) or the whole SI (Y, X, E), summed here (off the GUI thread)."""
    if progress:
        progress(0.1)
    data = np.asarray(data)
    spectrum = data.reshape(-1, data.shape[-1]).sum(axis=0, dtype=np.float64) if data.ndim > 1 else data
    return core.identify_elements(spectrum, energy=energy, fwhm_mn_ka=fwhm)


def _thickness_job(si, *, energy, progress=None):
    if progress:
        progress(0.1)
    return core.thickness_log_ratio(np.asarray(si), energy=energy)


def _reconstruct_job(result, *, n_components, progress=None):
    return core.pca_reconstruct(result, n_components=n_components, progress=progress)


def parse_k_factors(text: str) -> dict[str, float]:
    """ "Fe: 1.0, Pt: 1.6" -> {"Fe": 1.0, "Pt": 1.6}; empty text -> {}."""
    out = {}
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if ":" not in part and "=" not in part:
            raise ValueError(f"k-factor '{part}': write element: value, e.g. 'Fe: 1.0, Pt: 1.6'.")
        el, val = part.replace("=", ":").split(":", 1)
        (el,) = core.parse_elements(el.strip())
        try:
            out[el] = float(val)
        except ValueError:
            raise ValueError(f"k-factor of {el} is not a number: '{val.strip()}'.") from None
    return out


class PeriodicTableDialog(QDialog):
    """A clickable periodic table (Z 1–94, symbols from xraylib) returning the chosen symbols."""

    def __init__(self, selected=(), parent=None):
        import xraylib

        super().__init__(parent)
        self.setWindowTitle("Pick elements")
        grid = QGridLayout()
        grid.setSpacing(2)
        self.buttons: dict[str, QPushButton] = {}
        for z in range(1, 95):
            sym = xraylib.AtomicNumberToSymbol(z)
            row, col = _table_position(z)
            b = QPushButton(sym)
            b.setCheckable(True)
            b.setChecked(sym in selected)
            b.setFixedWidth(34)
            grid.addWidget(b, row, col)
            self.buttons[sym] = b
        box = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addWidget(box)

    def selected(self) -> list[str]:
        return [s for s, b in self.buttons.items() if b.isChecked()]


def _table_position(z: int) -> tuple[int, int]:
    """(row, column) of element ``z`` in the 18-column periodic table; La–Yb / Ac–No go to
    rows 8–9 below the table. Computed from the period lengths 2, 8, 8, 18, 18, 32, 32."""
    starts = [1, 3, 11, 19, 37, 55, 87, 119]
    period = max(i for i, s in enumerate(starts) if s <= z)
    idx = z - starts[period]
    n = starts[period + 1] - starts[period]
    if n == 2:
        return period, 0 if idx == 0 else 17
    if n == 8:
        return period, idx if idx < 2 else idx + 10
    if n == 18:
        return period, idx
    # 32-long periods: two s, fourteen f (La..Yb / Ac..No) below, then Lu/Lr.. in column 3
    if idx < 2:
        return period, idx
    if idx < 16:
        return period + 3, idx + 1
    return period, idx - 14


class SpectrumImagingWidget(QWidget):
    """Dock widget "Spectrum imaging" (see docs/guide_spectrum.md)."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: QWidget | None = None):
        from napari.layers import Image

        super().__init__(parent)
        self.viewer = napari_viewer
        self._windows: dict[str, dict] = {}
        self._maps: dict[str, core.ElementMap] = {}
        self._quant: dict[str, np.ndarray] | None = None
        self._pca: core.PCAResult | None = None
        self._pending_pos = None
        self.last_spectrum: Optional[np.ndarray] = None  # counts at the cursor
        self.last_pixel: Optional[tuple[int, int]] = None
        self.roi_spectrum: Optional[np.ndarray] = None
        self.last_profile: dict | None = None
        self.last_identification: core.Identification | None = None
        self._cache = None  # (layer, layer.data, si, energy, px, signal type)
        self._si_layer = None

        # -- inputs -----------------------------------------------------------------------------
        self.si_combo = LayerCombo(
            napari_viewer, (Image,), predicate=lambda l: l.ndim == 3 or "spectrum_image" in (l.metadata or {})
        )
        self.ref_combo = LayerCombo(napari_viewer, (Image,), predicate=lambda l: l.ndim == 2)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["EELS", "EDS"])
        self.elements_edit = QLineEdit()
        self.elements_edit.setPlaceholderText("e.g. C, N, O  or  Fe, Pt, Cu")
        self.table_button = QPushButton("Table…")
        self.identify_button = QPushButton("Identify")
        self.identify_button.setToolTip("EDS: find elements from the sum spectrum (of the ROI, if drawn)")
        self.method_combo = QComboBox()
        self.method_combo.addItems(["least squares", "two-area (Egerton)"])
        self.fwhm_spin = QDoubleSpinBox()
        self.fwhm_spin.setRange(40.0, 400.0)
        self.fwhm_spin.setValue(130.0)
        self.fwhm_spin.setSuffix(" eV")
        self.k_edit = QLineEdit()
        self.k_edit.setPlaceholderText("Cliff–Lorimer k-factors, e.g. Fe: 1.0, Pt: 1.6")
        self.units_combo = QComboBox()
        self.units_combo.addItems(["eV", "keV"])
        self.log_check = QCheckBox("log")
        self.log_check.setToolTip("Logarithmic counts axis (EELS spectra span decades)")
        self.window_combo = QComboBox()
        self.window_combo.setToolTip("Element whose windows are shown as draggable regions")

        form = QFormLayout()
        form.addRow("Spectrum image", self.si_combo)
        form.addRow("Reference (HAADF)", self.ref_combo)
        form.addRow("Signal", self.mode_combo)
        row = QHBoxLayout()
        row.addWidget(self.elements_edit)
        row.addWidget(self.table_button)
        row.addWidget(self.identify_button)
        form.addRow("Elements", row)
        self.method_label = QLabel("Background")
        form.addRow(self.method_label, self.method_combo)
        self.fwhm_label = QLabel("FWHM at Mn Kα")
        form.addRow(self.fwhm_label, self.fwhm_spin)
        self.k_label = QLabel("k-factors")
        form.addRow(self.k_label, self.k_edit)
        row2 = QHBoxLayout()
        row2.addWidget(self.window_combo)
        row2.addWidget(QLabel("axis"))
        row2.addWidget(self.units_combo)
        row2.addWidget(self.log_check)
        form.addRow("Windows of", row2)

        # -- spectrum plot --------------------------------------------------------------------
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(200)
        self.plot.setBackground("#262930")
        self.plot.setLabel("left", "counts")
        self.plot.setLabel("bottom", "energy", units="")
        self.plot.addLegend(offset=(-5, 5))
        self.curve = self.plot.plot([], [], pen=pg.mkPen("#e0e0e0", width=1), name="cursor")
        self.roi_curve = self.plot.plot([], [], pen=pg.mkPen("#ffb000", width=1), name="ROI sum")
        self.bgfit_curve = self.plot.plot([], [], pen=pg.mkPen("#8080ff", width=1, style=Qt.DashLine))
        self._markers: list = []
        self._regions: dict[str, pg.LinearRegionItem] = {}
        self.cursor_label = QLabel("Move the cursor over the image to see its spectrum.")
        self.identify_label = QLabel("")
        self.identify_label.setWordWrap(True)

        # -- actions --------------------------------------------------------------------------
        self.roi_button = QPushButton("Draw ROI")
        self.roi_button.setToolTip("Add a shapes layer; the summed spectrum of its last shape is plotted")
        self.maps_button = QPushButton("Make maps")
        self.runner = TaskRunner("Spectrum imaging")
        self.legend = QLabel("")
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setWordWrap(True)

        self.ratio_a = QComboBox()
        self.ratio_b = QComboBox()
        self.ratio_button = QPushButton("Ratio map")
        self.line_button = QPushButton("Draw profile line")
        self.profile_plot = pg.PlotWidget()
        self.profile_plot.setMinimumHeight(130)
        self.profile_plot.setBackground("#262930")
        self.profile_plot.setLabel("bottom", "distance", units="Å")
        self.profile_plot.setLabel("left", "relative")
        self.profile_plot.getAxis("left").enableAutoSIPrefix(False)

        self.pca_button = QPushButton("PCA (scree)")
        self.pca_spin = QSpinBox()
        self.pca_spin.setRange(1, 64)
        self.pca_spin.setValue(6)
        self.pca_apply = QPushButton("Add denoised SI")
        self.pca_apply.setEnabled(False)
        self.scree = pg.PlotWidget()
        self.scree.setMinimumHeight(110)
        self.scree.setBackground("#262930")
        self.scree.setLogMode(y=True)
        self.scree.setLabel("bottom", "component")
        self.scree.setLabel("left", "variance")
        self.scree.getAxis("left").enableAutoSIPrefix(False)
        self.scree.setVisible(False)  # shown once a PCA has run
        self.thickness_button = QPushButton("t/λ (low-loss)")

        self.export_maps_button = QPushButton("Maps → TIFF")
        self.export_rgb_button = QPushButton("RGB → PNG")
        self.export_profile_button = QPushButton("Profile → CSV")
        self.export_spectrum_button = QPushButton("Spectrum → CSV/MSA")

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.plot, stretch=3)
        lay.addWidget(self.cursor_label)
        lay.addWidget(self.identify_label)
        r = QHBoxLayout()
        r.addWidget(self.roi_button)
        r.addWidget(self.maps_button)
        r.addWidget(self.thickness_button)
        lay.addLayout(r)
        lay.addWidget(self.runner)
        lay.addWidget(self.legend)
        g = QGroupBox("Ratio and profile")
        gl = QVBoxLayout(g)
        r = QHBoxLayout()
        r.addWidget(self.ratio_a)
        r.addWidget(QLabel("/"))
        r.addWidget(self.ratio_b)
        r.addWidget(self.ratio_button)
        gl.addLayout(r)
        gl.addWidget(self.line_button)
        gl.addWidget(self.profile_plot)
        lay.addWidget(g)
        g = QGroupBox("PCA denoising (Poisson-normalised SVD)")
        gl = QVBoxLayout(g)
        r = QHBoxLayout()
        r.addWidget(self.pca_button)
        r.addWidget(QLabel("components"))
        r.addWidget(self.pca_spin)
        r.addWidget(self.pca_apply)
        gl.addLayout(r)
        gl.addWidget(self.scree)
        lay.addWidget(g)
        g = QGroupBox("Export")
        gl = QGridLayout(g)
        gl.addWidget(self.export_maps_button, 0, 0)
        gl.addWidget(self.export_rgb_button, 0, 1)
        gl.addWidget(self.export_profile_button, 1, 0)
        gl.addWidget(self.export_spectrum_button, 1, 1)
        lay.addWidget(g)
        lay.addStretch(1)

        # -- wiring ---------------------------------------------------------------------------
        self.si_combo.currentIndexChanged.connect(self._on_si_changed)
        self.mode_combo.currentTextChanged.connect(self._on_mode_changed)
        self.elements_edit.editingFinished.connect(self._on_elements_changed)
        self.table_button.clicked.connect(self._open_table)
        self.identify_button.clicked.connect(self.identify)
        self.units_combo.currentTextChanged.connect(lambda _t: self._redraw_all())
        self.log_check.toggled.connect(lambda on: self.plot.setLogMode(y=on))
        self.window_combo.currentTextChanged.connect(lambda _t: self._draw_regions())
        self.fwhm_spin.valueChanged.connect(lambda _v: self._reset_windows())
        self.roi_button.clicked.connect(self.add_roi_layer)
        self.maps_button.clicked.connect(self.make_maps)
        self.ratio_button.clicked.connect(self.make_ratio)
        self.line_button.clicked.connect(self.add_line_layer)
        self.pca_button.clicked.connect(self.run_pca)
        self.pca_apply.clicked.connect(self.add_denoised)
        self.thickness_button.clicked.connect(self.make_thickness)
        self.export_maps_button.clicked.connect(lambda: self.export_maps())
        self.export_rgb_button.clicked.connect(lambda: self.export_rgb())
        self.export_profile_button.clicked.connect(lambda: self.export_profile())
        self.export_spectrum_button.clicked.connect(lambda: self.export_spectrum())

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._update_cursor_spectrum)
        napari_viewer.mouse_move_callbacks.append(self._on_mouse_move)
        callbacks, callback = napari_viewer.mouse_move_callbacks, self._on_mouse_move

        def _forget(*_args):  # not a bound method: runs after the C++ object is gone
            if callback in callbacks:
                callbacks.remove(callback)

        self.destroyed.connect(_forget)
        self._on_mode_changed(self.mode)
        self._on_si_changed()

    # ------------------------------------------------------------------------------------------
    # layer / data access
    # ------------------------------------------------------------------------------------------
    def _si(self):
        """(si (Y,X,E), energy eV, pixel Å, signal type) of the chosen layer; ValueError if unusable."""
        layer = self.si_combo.layer()
        if layer is None:
            raise ValueError("Open a spectrum image first (File > Open, or File > Open Sample > napari-cryomat).")
        if self._cache is not None and self._cache[0] is layer and self._cache[1] is layer.data:
            return self._cache[2:]
        out = si_from_layer(layer)
        core.check_energy_axis(out[1], out[0].shape[-1])
        self._cache = (layer, layer.data, *out)
        return out

    def _on_si_changed(self, *args):
        layer = self.si_combo.layer()
        if layer is not None and layer is self._si_layer:
            return  # the layer list changed, not the chosen SI: keep windows and plot
        self._si_layer = layer
        self._cache = None
        self.roi_spectrum = None  # it belonged to the previous SI
        if layer is None or not isinstance(layer.metadata, dict) or "spectrum_image" not in layer.metadata:
            return
        info = layer.metadata["spectrum_image"]
        st = str(info.get("signal_type", ""))
        if st in ("EELS", "EDS"):
            self.mode_combo.setCurrentText(st)
        k = layer.metadata.get("k_factors")
        if k and not self.k_edit.text():
            self.k_edit.setText(", ".join(f"{el}: {v:g}" for el, v in k.items()))
        try:
            si, energy, _px, _st = self._si()
        except ValueError:
            return
        self.units_combo.setCurrentText("keV" if energy[-1] > 5000 else "eV")
        # show the centre pixel's spectrum until the cursor moves
        ny, nx = si.shape[:2]
        self.last_spectrum = np.asarray(si[ny // 2, nx // 2, :], dtype=np.float32)
        self._reset_windows(quiet=True)
        self._redraw_all()

    def _on_mode_changed(self, mode: str):
        eels = mode == "EELS"
        self.log_check.setChecked(eels)
        for w in (self.method_label, self.method_combo):
            w.setVisible(eels)
        for w in (self.fwhm_label, self.fwhm_spin, self.k_label, self.k_edit, self.identify_button):
            w.setVisible(not eels)
        self._reset_windows()

    @property
    def mode(self) -> str:
        return self.mode_combo.currentText()

    def elements(self) -> list[str]:
        return core.parse_elements(self.elements_edit.text())

    # ------------------------------------------------------------------------------------------
    # elements, markers and windows
    # ------------------------------------------------------------------------------------------
    def set_elements(self, text: str) -> None:
        """Type elements programmatically (as a user would) and update markers and windows."""
        self.elements_edit.setText(text)
        self._on_elements_changed()

    def _open_table(self):
        try:
            current = [e.split("_")[0] for e in self.elements()]
        except ValueError:
            current = []
        dlg = PeriodicTableDialog(current, self)
        if dlg.exec_():
            self.set_elements(", ".join(dlg.selected()))

    def _on_elements_changed(self):
        self._reset_windows()

    def _reset_windows(self, quiet: bool = False):
        """Default windows for the typed elements (errors are shown, nothing else changes)."""
        self._windows = {}
        text = self.elements_edit.text().strip()
        current = self.window_combo.currentText()
        self.window_combo.blockSignals(True)
        self.window_combo.clear()
        if text:
            errors = []
            try:
                _si, energy, _px, _st = self._si()
                elements = self.elements()
            except ValueError as exc:
                errors, elements = [str(exc)], []
            for el in elements:  # one element out of range does not hide the others
                try:
                    if self.mode == "EELS":
                        edge = core.choose_edge(el, energy=energy)
                        bg, it = core.default_eels_windows(edge.onset, energy=energy)
                        self._windows[el] = {"background": bg, "integration": it}
                    else:
                        ln = core.choose_line(el, energy=energy, fwhm_mn_ka=self.fwhm_spin.value())
                        self._windows[el] = core.eds_windows(ln.energy, fwhm_mn_ka=self.fwhm_spin.value())
                except ValueError as exc:
                    errors.append(str(exc))
            if errors and not quiet:
                show_error(" ".join(errors))
        self.window_combo.addItems(list(self._windows))
        if current in self._windows:
            self.window_combo.setCurrentText(current)
        self.window_combo.blockSignals(False)
        self._redraw_all()

    def _x(self, e):
        """Energy (eV) -> plot x in the chosen unit."""
        return np.asarray(e) / (1000.0 if self.units_combo.currentText() == "keV" else 1.0)

    def _e(self, x):
        return float(x) * (1000.0 if self.units_combo.currentText() == "keV" else 1.0)

    def _redraw_all(self):
        self.plot.setLabel("bottom", f"energy ({self.units_combo.currentText()})")
        self._draw_curves()
        self._draw_markers()
        self._draw_regions()

    def _draw_curves(self):
        try:
            _si, energy, _px, _st = self._si()
        except ValueError:
            self.curve.setData([], [])
            return
        if self.last_spectrum is not None and self.last_spectrum.size == energy.size:
            self.curve.setData(self._x(energy), self.last_spectrum)
        if self.roi_spectrum is not None and self.roi_spectrum.size == energy.size:
            self.roi_curve.setData(self._x(energy), self.roi_spectrum)
        else:
            self.roi_curve.setData([], [])
        self._draw_background_fit()

    def _draw_background_fit(self):
        """EELS: the power-law fit of the shown spectrum for the selected element."""
        el = self.window_combo.currentText()
        spec = self.roi_spectrum if self.roi_spectrum is not None else self.last_spectrum
        if self.mode != "EELS" or el not in self._windows or spec is None:
            self.bgfit_curve.setData([], [])
            return
        try:
            _si, energy, _px, _st = self._si()
            w = self._windows[el]
            a, r = core.fit_power_law(spec[None], energy=energy, window=w["background"])
            sl = slice(core.window_slice(energy, w["background"]).start, core.window_slice(energy, w["integration"]).stop)
            self.bgfit_curve.setData(self._x(energy[sl]), core.power_law(energy[sl], a, r)[0])
        except ValueError:
            self.bgfit_curve.setData([], [])

    def _draw_markers(self):
        for m in self._markers:
            self.plot.removeItem(m)
        self._markers = []
        try:
            _si, energy, _px, _st = self._si()
            elements = self.elements() if self.elements_edit.text().strip() else []
        except ValueError:
            return
        rng = (energy[0], energy[-1])
        for i, el in enumerate(elements):
            rgb = MAP_COLORS[i % len(MAP_COLORS)][1]
            if self.mode == "EELS":
                feats = [(e.label, e.onset) for e in core.eels_edges(el.split("_")[0], energy_range=rng)]
            else:
                feats = [(ln.label, ln.energy) for ln in core.eds_lines(el.split("_")[0], energy_range=rng) if ln.weight >= 0.1]
            for label, e in feats:
                line = pg.InfiniteLine(
                    pos=float(self._x(e)),
                    angle=90,
                    pen=pg.mkPen(rgb, width=1, style=Qt.DotLine),
                    label=label,
                    labelOpts={"position": 0.92 - 0.12 * (len(self._markers) % 4), "color": rgb, "movable": True},
                )
                self.plot.addItem(line)
                self._markers.append(line)

    def _draw_regions(self):
        for reg in self._regions.values():
            self.plot.removeItem(reg)
        self._regions = {}
        el = self.window_combo.currentText()
        if el not in self._windows:
            return
        for name, (lo, hi) in self._windows[el].items():
            brush = (80, 120, 255, 50) if name.startswith("background") else (255, 200, 0, 50)
            reg = pg.LinearRegionItem(values=(float(self._x(lo)), float(self._x(hi))), brush=brush, movable=True)
            reg.setToolTip(f"{el} {name.replace('_', ' ')} window: drag the edges")
            reg.sigRegionChangeFinished.connect(lambda r, el=el, name=name: self._region_moved(el, name, r))
            self.plot.addItem(reg)
            self._regions[name] = reg
        self._draw_background_fit()

    def _region_moved(self, el, name, reg):
        lo, hi = reg.getRegion()
        self._windows.setdefault(el, {})[name] = (self._e(lo), self._e(hi))
        self._draw_background_fit()

    def set_window(self, element: str, name: str, window: tuple[float, float]) -> None:
        """Set one window (eV) of an element, as dragging its region does."""
        if element not in self._windows:
            raise ValueError(f"{element} is not among the elements.")
        self._windows[element][name] = (float(window[0]), float(window[1]))
        self._draw_regions()

    # ------------------------------------------------------------------------------------------
    # live spectrum
    # ------------------------------------------------------------------------------------------
    def _on_mouse_move(self, viewer, event):
        """mouse_move_callbacks entry: remember the position, draw on the next tick (latest wins)."""
        self._pending_pos = tuple(event.position)
        try:
            if not self._timer.isActive():
                self._timer.start()
        except RuntimeError:  # the dock was deleted but napari still holds the callback
            pass

    def _update_cursor_spectrum(self):
        pos = self._pending_pos
        layer = self.si_combo.layer()
        if pos is None or layer is None:
            return
        try:
            si, energy, px, _st = self._si()
        except ValueError:
            return
        if len(pos) < 2:
            return
        data_pos = layer.world_to_data(pos)
        iy, ix = int(np.floor(data_pos[-2] + 0.5)), int(np.floor(data_pos[-1] + 0.5))
        ny, nx = si.shape[:2]
        if not (0 <= iy < ny and 0 <= ix < nx):
            return
        self.last_spectrum = np.asarray(si[iy, ix, :], dtype=np.float32)
        self.last_pixel = (iy, ix)
        self.cursor_label.setText(
            f"pixel (y, x) = ({iy}, {ix})  ·  {iy * px:.0f}, {ix * px:.0f} Å  ·  {self.last_spectrum.sum():.0f} counts"
        )
        self.curve.setData(self._x(energy), self.last_spectrum)
        if self.roi_spectrum is None:
            self._draw_background_fit()

    def add_roi_layer(self):
        """Add (or select) the ROI shapes layer in rectangle mode."""
        try:
            _si, _e, px, _st = self._si()
        except ValueError as exc:
            show_error(str(exc))
            return None
        if ROI_NAME in self.viewer.layers:
            layer = self.viewer.layers[ROI_NAME]
        else:
            layer = self.viewer.add_shapes(
                name=ROI_NAME, scale=(px, px), units=angstrom_units(2), edge_color="#ffb000",
                face_color=[1, 0.7, 0, 0.15], edge_width=1,
            )
            layer.events.data.connect(self._on_roi_changed)
        self.viewer.layers.selection.active = layer
        layer.mode = "add_rectangle"
        return layer

    def _on_roi_changed(self, event=None):
        layer = self.viewer.layers[ROI_NAME] if ROI_NAME in self.viewer.layers else None
        try:
            si, energy, _px, _st = self._si()
        except ValueError:
            return
        if layer is None or len(layer.data) == 0:
            self.roi_spectrum = None
            self._draw_curves()
            return
        mask = layer.to_masks(mask_shape=si.shape[:2])[-1].astype(bool)
        if not mask.any():
            self.roi_spectrum = None
            show_info("The ROI holds no pixel of the spectrum image.")
        else:
            ys, xs = np.nonzero(mask)
            box = np.asarray(si[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1, :], dtype=np.float32)
            sub = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
            self.roi_spectrum = box[sub].sum(axis=0)
            self.cursor_label.setText(f"ROI: {int(mask.sum())} pixels summed")
        self._draw_curves()

    # ------------------------------------------------------------------------------------------
    # maps
    # ------------------------------------------------------------------------------------------
    def make_maps(self):
        """Start the map computation (worker); layers appear when it succeeds."""
        try:
            si, energy, px, _st = self._si()
            elements = self.elements()
            k = parse_k_factors(self.k_edit.text()) if self.mode == "EDS" else {}
            if k:
                missing = [el for el in elements if el.split("_")[0] not in k]
                if missing:
                    raise ValueError(f"Give a k-factor for {', '.join(missing)} too, or clear the k-factors field.")
        except ValueError as exc:
            show_error(str(exc))
            return None
        windows = {el: dict(w) for el, w in self._windows.items() if el in elements}
        method = "lsq" if self.method_combo.currentIndex() == 0 else "two_area"
        return self.runner.start(
            _maps_job,
            si,
            energy=energy,
            mode=self.mode,
            elements=elements,
            windows=windows,
            method=method,
            fwhm=self.fwhm_spin.value(),
            k_factors=k,
            on_done=lambda res: self._show_maps(res, px),
        )

    def _map_layer(self, name, data, kwargs):
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = data
            for key in ("colormap", "contrast_limits", "blending", "visible"):
                if key in kwargs:
                    setattr(layer, key, kwargs[key])
            return layer
        return self.viewer.add_image(data, name=name, **kwargs)

    def _show_maps(self, result, px):
        maps, quant = result
        si_layer = self.si_combo.layer()
        translate = tuple(si_layer.translate[-2:]) if si_layer is not None else (0.0, 0.0)
        ref = self.ref_combo.layer()
        if ref is not None:
            # the maps add light on top of the reference: dim it so colours stay readable
            ref.visible = True
            ref.opacity = min(ref.opacity, 0.5)
        self._maps = maps
        self._quant = quant
        legend = []
        for i, (el, m) in enumerate(maps.items()):
            cmap, rgb = MAP_COLORS[i % len(MAP_COLORS)]
            hi = float(np.nanpercentile(m.data, 99.5)) if np.isfinite(m.data).any() else 1.0
            kwargs = dict(
                scale=(px, px),
                translate=translate,
                units=angstrom_units(2),
                colormap=cmap,
                blending="additive",
                contrast_limits=(0.0, hi if hi > 0 else 1.0),
                metadata={_MAP_KEY: {"element": el, "feature": m.feature, "kind": m.kind, "windows": m.windows, "rgb": rgb}},
            )
            self._map_layer(f"{el} map", m.data, kwargs)
            legend.append(f"<span style='color: rgb{rgb}'>■</span> {el} ({m.feature}, {m.kind.upper()})")
        if quant:
            for el, q in quant.items():
                kwargs = dict(
                    scale=(px, px), translate=translate, units=angstrom_units(2), colormap="viridis",
                    contrast_limits=(0.0, 100.0), visible=False, blending="translucent",
                    metadata={_MAP_KEY: {"element": el, "kind": "at.%"}},
                )
                self._map_layer(f"{el} at.%", q, kwargs)
            legend.append("Cliff–Lorimer at.% layers added (hidden).")
        self.legend.setText("  ".join(legend))
        names = list(maps)
        for combo in (self.ratio_a, self.ratio_b):
            combo.clear()
            combo.addItems(names)
        if len(names) > 1:
            self.ratio_b.setCurrentIndex(1)
        self._on_line_changed()

    def make_ratio(self):
        a, b = self.ratio_a.currentText(), self.ratio_b.currentText()
        if a not in self._maps or b not in self._maps or a == b:
            show_error("Make maps first and pick two different elements for the ratio.")
            return None
        r = core.ratio_map(self._maps[a].data, self._maps[b].data)
        _si, _e, px, _st = self._si()
        finite = r[np.isfinite(r)]
        hi = float(np.percentile(finite, 99)) if finite.size else 1.0
        return self._map_layer(
            f"{a}/{b} ratio", r,
            dict(scale=(px, px), units=angstrom_units(2), colormap="turbo", contrast_limits=(0.0, hi if hi > 0 else 1.0),
                 metadata={_MAP_KEY: {"element": f"{a}/{b}", "kind": "ratio"}}),
        )

    def make_thickness(self):
        try:
            si, energy, px, _st = self._si()
        except ValueError as exc:
            show_error(str(exc))
            return None
        name = self.si_combo.currentText()

        def done(res):
            t, thr = res
            finite = t[np.isfinite(t)]
            self._map_layer(
                f"t/λ ({name})", t,
                dict(scale=(px, px), units=angstrom_units(2), colormap="inferno",
                     contrast_limits=(float(finite.min()), float(finite.max())) if finite.size and finite.max() > finite.min() else (0, 1),
                     metadata={_MAP_KEY: {"kind": "t/lambda", "zlp_threshold_eV": thr}}),
            )
            show_info(f"t/λ by log-ratio; zero-loss integral up to {thr:.1f} eV.")

        return self.runner.start(_thickness_job, si, energy=energy, on_done=done)

    # ------------------------------------------------------------------------------------------
    # identification
    # ------------------------------------------------------------------------------------------
    def identify(self):
        try:
            si, energy, _px, _st = self._si()
        except ValueError as exc:
            show_error(str(exc))
            return None
        spectrum = self.roi_spectrum if self.roi_spectrum is not None else si

        def done(res: core.Identification):
            self.last_identification = res
            if not res.elements:
                show_info("No element lines found above the noise.")
                return
            self.set_elements(", ".join(res.elements))
            txt = "Identified: " + ", ".join(res.elements)
            if res.ambiguous:
                txt += "<br>Ambiguous: " + "; ".join(f"{k} could also be {', '.join(v)}" for k, v in res.ambiguous.items())
            if res.unexplained:
                txt += "<br>Unexplained peaks at " + ", ".join(f"{e / 1000:.2f} keV" for e in res.unexplained)
            self.identify_label.setText(txt)

        return self.runner.start(_identify_job, spectrum, energy=energy, fwhm=self.fwhm_spin.value(), on_done=done)

    # ------------------------------------------------------------------------------------------
    # profiles
    # ------------------------------------------------------------------------------------------
    def add_line_layer(self):
        try:
            _si, _e, px, _st = self._si()
        except ValueError as exc:
            show_error(str(exc))
            return None
        if LINE_NAME in self.viewer.layers:
            layer = self.viewer.layers[LINE_NAME]
        else:
            layer = self.viewer.add_shapes(
                name=LINE_NAME, scale=(px, px), units=angstrom_units(2), edge_color="white", edge_width=1.5,
            )
            layer.events.data.connect(self._on_line_changed)
        self.viewer.layers.selection.active = layer
        layer.mode = "add_line"
        return layer

    def _on_line_changed(self, event=None):
        if LINE_NAME not in self.viewer.layers or not self._maps:
            return
        layer = self.viewer.layers[LINE_NAME]
        lines = [d for d, t in zip(layer.data, layer.shape_type) if t in ("line", "path")]
        if not lines:
            return
        pts = np.asarray(lines[-1])[:, -2:]
        start, end = pts[0], pts[-1]
        _si, _e, px, _st = self._si()
        self.profile_plot.clear()
        self.profile_plot.addLegend(offset=(-5, 5))
        prof = {}
        try:
            for i, (el, m) in enumerate(self._maps.items()):
                d, v = core.line_profile(m.data, start=start, end=end, pixel_size=px, width=3)
                prof["distance_A"] = d
                prof[el] = v
                peak = float(np.nanmax(np.abs(m.data))) or 1.0
                self.profile_plot.plot(d, v / peak, pen=pg.mkPen(MAP_COLORS[i % len(MAP_COLORS)][1], width=2), name=el)
            if self._quant:
                for el, q in self._quant.items():
                    prof[f"{el}_at%"] = core.line_profile(np.nan_to_num(q), start=start, end=end, pixel_size=px, width=3)[1]
        except ValueError as exc:
            show_error(str(exc))
            return
        self.last_profile = prof

    # ------------------------------------------------------------------------------------------
    # PCA
    # ------------------------------------------------------------------------------------------
    def run_pca(self):
        try:
            si, _e, _px, _st = self._si()
        except ValueError as exc:
            show_error(str(exc))
            return None

        def done(res: core.PCAResult):
            self._pca = res
            ev = res.explained_variance[: min(100, res.explained_variance.size)]
            self.scree.clear()
            self.scree.setVisible(True)
            self.scree.plot(np.arange(1, ev.size + 1), np.maximum(ev, 1e-30), pen=None, symbol="o", symbolSize=4)
            self.pca_spin.setMaximum(res.factors.shape[0])
            self.pca_spin.setValue(core.suggest_components(res.explained_variance))
            self.pca_apply.setEnabled(True)

        return self.runner.start(_pca_job, si, max_components=32, on_done=done)

    def add_denoised(self):
        if self._pca is None:
            show_error("Run PCA first.")
            return None
        try:
            _si, energy, px, st = self._si()
        except ValueError as exc:
            show_error(str(exc))
            return None
        n = self.pca_spin.value()
        name = f"{self.si_combo.currentText()} PCA({n})"

        def done(den):
            data, kwargs, _t = spectrum_image_layer(
                den, energy_offset=float(energy[0]), energy_scale=float(energy[1] - energy[0]), pixel_size=px,
                name=name, signal_type=st, visible=False,
            )
            if name in self.viewer.layers:
                self.viewer.layers[name].data = data
            else:
                self.viewer.add_image(data, **kwargs)

        return self.runner.start(_reconstruct_job, self._pca, n_components=n, on_done=done)

    # ------------------------------------------------------------------------------------------
    # export
    # ------------------------------------------------------------------------------------------
    def _ask(self, title, default, filt, directory=False):
        if directory:
            return QFileDialog.getExistingDirectory(self, title, default) or None
        path, _ = QFileDialog.getSaveFileName(self, title, default, filt)
        return path or None

    def export_maps(self, directory: str | None = None) -> list[str]:
        """One float32 TIFF per map (pixel size in the ImageJ metadata, Å)."""
        import tifffile

        if not self._maps:
            show_error("Make maps first.")
            return []
        directory = directory or self._ask("Folder for the map TIFFs", str(Path.home()), "", directory=True)
        if not directory:
            return []
        _si, _e, px, _st = self._si()
        out = []
        items = [(el, m.data) for el, m in self._maps.items()] + [(f"{el}_at%", q) for el, q in (self._quant or {}).items()]
        for el, data in items:
            p = Path(directory) / f"{el.replace('/', '_')}_map.tif"
            tifffile.imwrite(p, np.asarray(data, np.float32), imagej=True, resolution=(1 / px, 1 / px),
                             metadata={"unit": "angstrom"})
            out.append(str(p))
        show_info(f"Wrote {len(out)} maps to {directory}.")
        return out

    def rgb_composite(self) -> np.ndarray:
        """(Y, X, 3) uint8: each map scaled to its layer's contrast limits, coloured, summed."""
        if not self._maps:
            raise ValueError("Make maps first.")
        shape = next(iter(self._maps.values())).data.shape
        rgb = np.zeros(shape + (3,), np.float32)
        for i, (el, m) in enumerate(self._maps.items()):
            name = f"{el} map"
            lo, hi = (self.viewer.layers[name].contrast_limits if name in self.viewer.layers else (0.0, np.nanmax(m.data)))
            v = np.clip((np.nan_to_num(m.data) - lo) / max(hi - lo, 1e-12), 0, 1)
            rgb += v[..., None] * (np.array(MAP_COLORS[i % len(MAP_COLORS)][1], np.float32) / 255.0)
        return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)

    def export_rgb(self, path: str | None = None) -> str | None:
        from PIL import Image as PILImage

        try:
            rgb = self.rgb_composite()
        except ValueError as exc:
            show_error(str(exc))
            return None
        path = path or self._ask("Save RGB composite", str(Path.home() / "composite.png"), "PNG (*.png)")
        if not path:
            return None
        PILImage.fromarray(rgb).save(path)
        return path

    def export_profile(self, path: str | None = None) -> str | None:
        if not self.last_profile:
            show_error("Draw a profile line over the maps first.")
            return None
        path = path or self._ask("Save profile", str(Path.home() / "profile.csv"), "CSV (*.csv)")
        if not path:
            return None
        return write_csv(path, self.last_profile)

    def export_spectrum(self, path: str | None = None) -> str | None:
        """The ROI sum spectrum (or the one under the cursor) as CSV (.csv) or EMSA (.msa)."""
        spec = self.roi_spectrum if self.roi_spectrum is not None else self.last_spectrum
        if spec is None:
            show_error("Move the cursor over the spectrum image or draw an ROI first.")
            return None
        path = path or self._ask("Save spectrum", str(Path.home() / "spectrum.msa"), "EMSA (*.msa);;CSV (*.csv)")
        if not path:
            return None
        _si, energy, _px, st = self._si()
        if str(path).lower().endswith(".csv"):
            return write_csv(path, {"energy_eV": energy, "counts": spec})
        try:
            return write_msa(path, spec, energy=energy, title=self.si_combo.currentText(), signal_type=st)
        except ImportError as exc:
            show_error(str(exc))
            return None
