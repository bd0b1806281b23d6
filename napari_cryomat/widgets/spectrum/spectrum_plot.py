"""The live spectrum plot: the spectrum under the cursor and the summed spectrum of the ROI.

A :class:`LivePanel`: the request (SI pixel under the cursor, the ROI shape, the selected
element's windows) is read on the GUI thread, the sums run in the live worker, the newest
request wins. The plot also shows the elements' edge (EELS) or line (EDS) markers, the selected
element's windows as draggable regions and, for EELS, the power-law background fit.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QPointF, Qt, QTimer
from qtpy.QtWidgets import QCheckBox, QComboBox, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from napari_cryomat.core._eds_find import MIN_ENERGY_EV
from napari_cryomat.core.units import readable_lengths
from napari_cryomat.widgets._base import EmptyPlotNote, LivePanel, hbox, placeholder_while_empty
from napari_cryomat.widgets.spectrum._model import SpectrumModel
from napari_cryomat.widgets.spectrum._sampling import SpectrumRequest, SpectrumResult, SpectrumSampler
from napari_cryomat.widgets.spectrum._view_parts import CompactPlot, LogCountsAxis, guarded, label_rows

__all__ = ["SpectrumPlot"]

_HINT = "Move the cursor over the image to see its spectrum."
_BACKGROUND_BRUSH = (80, 120, 255, 50)
_SIGNAL_BRUSH = (255, 200, 0, 50)
_SLICE_COLOUR = (90, 150, 255)
#: while the slice line is dragged the canvas follows it at most this often (ms), the newest position winning:
#: napari slices a plane on the GUI thread, and a big SI's plane per mouse move would make the drag stutter
_DRAG_FOLLOW_MS = 50
_CURVE_COLOURS = {"cursor": "#e0e0e0", "ROI sum": "#ffb000", "sum identified": "#40c8a0"}
_LABEL_TOP, _LABEL_STEP = 0.92, 0.12  # marker label rows: the top one, and the least spacing, as fractions of the plot's height
_LABEL_ROWS_MAX, _LABEL_LOWEST = 6, 0.25  # up to 6 rows, none in the lowest quarter (the continuum's)
#: the margin (px) round a label's text: Qt's default of 4 made each label 8 px wider and taller than its text, and on
#: a 768 px screen (a 141 px plot, 0-21 keV) the main lines of O, Na, Mg, Al and Si, within 1.3 keV, found 4 rows only
_LABEL_MARGIN = 1.0
_LABEL_FILL = (38, 41, 48, 200)  # the plot's background behind a label: the neighbours' dotted markers struck it through
#: EDS: the counts axis fits the spectrum above the energy identification reads from: below it lies the detector's
#: noise (zero-strobe) peak, 10-100x any X-ray line in Velox and Bruker files
EDS_FIT_FROM_EV = MIN_ENERGY_EV
#: EDS: the energy axis shows a little past the beam energy, so the continuum's end (Duane-Hunt) is seen
BEAM_MARGIN = 1.05


class SpectrumViewBox(pg.ViewBox):
    """A view box whose ranges, when it fits the data, follow what an EDS user looks at:

    - the counts axis reads only the curves right of ``y_fit_from`` (plot units; None: all of them), so that
      an EDS zero peak does not flatten every X-ray line to the floor (the zero peak stays in view, clipped);
    - the energy axis spans ``x_fit`` (plot units; None: the whole spectrum): EDS from 0 (Bruker axes start
      near -1 keV) to the beam energy: no X-ray has more energy than the electrons that make it (Duane-Hunt),
      so a 10 kV SEM spectrum on an 80 keV axis is all in its first eighth, beyond it only pile-up.
    Zoom and pan still reach every channel."""

    y_fit_from: float | None = None
    x_fit: tuple[float, float] | None = None

    def childrenBounds(self, frac=None, orthoRange=(None, None), items=None):  # noqa: N802 (pyqtgraph name)
        bounds = super().childrenBounds(frac=frac, orthoRange=orthoRange, items=items)
        if orthoRange[1] is not None or bounds[0] is None:
            return bounds
        x_low, x_high = bounds[0]
        if self.x_fit is not None:
            x_low, x_high = max(x_low, self.x_fit[0]), min(x_high, self.x_fit[1])
            if x_low >= x_high:  # the spectrum lies outside: show it whole
                return bounds
        cut = [x_low, x_high] != list(bounds[0])
        bounds[0] = [x_low, x_high]
        y_from = x_low if self.y_fit_from is None else max(x_low, self.y_fit_from)
        if not (cut or y_from > x_low) or y_from >= x_high:
            return bounds
        seen = super().childrenBounds(frac=frac, orthoRange=(None, [y_from, x_high]), items=items)
        if seen[1] is not None:
            bounds[1] = seen[1]
        return bounds


def _counts_text(total: float) -> str:
    """A pixel's total counts, short enough for one line of a 360 px dock: whole numbers up to
    six digits, three significant digits above (a core-loss pixel holds 10^7-10^8)."""
    return f"{total:.0f}" if abs(total) < 1e6 else f"{total:.3g}".replace("e+0", "e").replace("e+", "e")


class SpectrumPlot(LivePanel):
    """Spectrum under the cursor (white), ROI sum (orange) or else the sum Identify read (green), markers,
    windows, background fit.

    Public parts for scripts and tests: ``curve``, ``roi_curve``, ``identified_curve`` (EDS, no ROI:
    the sum the last Identify read), ``bgfit_curve`` (pyqtgraph curves), ``markers`` (InfiniteLines),
    ``regions`` (window name -> LinearRegionItem), ``window_combo``, ``units_combo``, ``log_check``, ``roi_button``,
    ``legend_label`` (the curves drawn, under the plot), ``cursor_label``,
    ``slice_line`` and ``slice_label`` (the energy of the slice the canvas shows).
    """

    def __init__(self, viewer, model: SpectrumModel, parent: QWidget | None = None):
        super().__init__(viewer, parent)
        self.model = model
        self.sampler = SpectrumSampler()  # called in the live worker only
        self._pixel: tuple[int, int] | None = None  # the SI pixel shown (cursor, or the centre)
        self.markers: list[pg.InfiniteLine] = []
        self.regions: dict[str, pg.LinearRegionItem] = {}
        self._label_spans: tuple | None = None  # the marker labels' extents and rows last placed
        self._beam_kev: float | None = None  # EDS: the energy axis ends there (set_beam_energy)
        self._watched_si = None  # the SI layer whose showing or hiding the slice note follows

        self.roi_button = QPushButton("Draw ROI")
        self.roi_button.setToolTip("Add the 'spectrum ROI' shapes layer; its last shape's summed spectrum is plotted")
        self.window_combo = QComboBox()
        self.window_combo.setToolTip("Windows of: the element whose energy windows are shown as draggable regions")
        self.window_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.window_combo.setMinimumContentsLength(4)
        placeholder_while_empty(self.window_combo, "no elements yet",
                                "No element windows yet: type elements above (or press Identify for EDS); each "
                                "element's windows are listed here.")
        self.units_combo = QComboBox()
        self.units_combo.addItems(["eV", "keV"])
        # as wide as "keV" needs: the element windows' combo takes the rest of the row (its placeholder was cut)
        self.units_combo.setSizePolicy(QSizePolicy.Maximum, self.units_combo.sizePolicy().verticalPolicy())
        self.log_check = QCheckBox("log")
        self.log_check.setToolTip("Logarithmic counts axis (EELS spectra span decades)")
        self.plot = CompactPlot(180, viewBox=SpectrumViewBox(), axisItems={"left": LogCountsAxis("left")})
        self.plot.setLabel("left", "counts")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.curve = self.plot.plot([], [], pen=pg.mkPen(_CURVE_COLOURS["cursor"], width=1))
        self.roi_curve = self.plot.plot([], [], pen=pg.mkPen(_CURVE_COLOURS["ROI sum"], width=1))
        # EDS without an ROI: the map's sum Identify read, so its lines can be checked (a pixel holds a few counts)
        self.identified_curve = self.plot.plot([], [], pen=pg.mkPen(_CURVE_COLOURS["sum identified"], width=1))
        # the legend under the plot, naming only the curves drawn: inside, its three rows took the top right
        # corner (~140 x 85 px of a 390 px plot), where the labels of lines above ~15 keV (Velox's Mo, Nb) ran under it
        self.legend_label = QLabel()
        self.legend_label.setTextFormat(Qt.RichText)
        self.bgfit_curve = self.plot.plot([], [], pen=pg.mkPen("#8080ff", width=1, style=Qt.DashLine))
        # the energy of the slice the canvas shows: napari's slider counts steps of the finest layer's grid, which
        # is neither eV nor a channel of this SI when two SIs share the viewer (the EELS sample: 0.25 and 0.5 eV)
        # named, low in the plot: among the element markers an unnamed solid line read as one more of them
        self.slice_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen(_SLICE_COLOUR, width=1), label="slice",
                                          labelOpts={"position": 0.08, "color": _SLICE_COLOUR},
                                          # pyqtgraph's hover pen is red, the colour of element markers
                                          hoverPen=pg.mkPen(_SLICE_COLOUR, width=3))
        self.slice_line.setToolTip("The slice the canvas shows: drag to move the energy slider")
        self.slice_line.setZValue(-5)  # behind the curves
        self.slice_line.setVisible(False)
        self.plot.addItem(self.slice_line)
        self.slice_label = QLabel()
        self.slice_label.setWordWrap(True)  # a layer's name and "hidden: ..." must not widen the dock
        self.slice_label.setToolTip("The energy of the slice the canvas shows (the slider under the canvas counts "
                                    "steps, not eV); the blue line in the plot marks it and can be dragged")
        # the hint in the empty plot, as the other docks' plots have theirs: under it, it left the plot a bare frame
        # and sat below an empty legend line
        self.note = EmptyPlotNote(self.plot, _HINT)
        self.cursor_label = QLabel()
        self.cursor_label.setWordWrap(True)
        self.cursor_label.setToolTip("The pixel under the cursor: (row y, column x), its position "
                                     "from the top left (in Å; in µm or mm beyond 1 µm), and its total counts")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(hbox(self.roi_button, self.window_combo, self.units_combo, self.log_check))
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend_label)
        layout.addWidget(self.cursor_label)
        layout.addWidget(self.slice_label)

        self.roi_button.clicked.connect(self.start_roi)
        self.window_combo.currentTextChanged.connect(self._on_window_choice)
        self.units_combo.currentTextChanged.connect(self._redraw)
        self.log_check.toggled.connect(lambda on: self.plot.setLogMode(y=on))
        self.plot.getViewBox().sigTransformChanged.connect(self._place_labels)  # zoom, pan, resize
        self.links.connect(model.si_changed, self._on_si_changed)
        self.links.connect(model.mode_changed, self._on_mode_changed)
        self.links.connect(model.windows_changed, self._on_windows_changed)
        self.links.connect(model.window_moved, self._on_window_moved)
        self.links.connect(model.identification_changed, self._draw_curves)
        self.links.connect(viewer.dims.events.point, self._show_slice)
        self.links.connect(viewer.dims.events.ndisplay, self._show_slice)
        self.links.connect(viewer.dims.events.order, self._show_slice)
        self._drag_timer = QTimer(self)
        self._drag_timer.setSingleShot(True)
        self._drag_timer.setInterval(_DRAG_FOLLOW_MS)
        self._drag_timer.timeout.connect(self._follow_drag)
        self.slice_line.sigPositionChanged.connect(self._on_slice_dragged)
        self.slice_line.sigPositionChangeFinished.connect(
            lambda line: self.model.show_slice_at(line.value() * self._factor()))
        model.overlays.roi.on_data(self.update_live, events=("data", "set_data"))  # follow a drag live
        callbacks, callback = viewer.mouse_move_callbacks, self._on_mouse_move
        callbacks.append(callback)
        self.links.on_close(lambda: callback in callbacks and callbacks.remove(callback))
        self.links.on_close(lambda: self._watch_si(None))
        self.clear()  # nothing drawn yet: the note, no legend or cursor lines
        self._on_mode_changed(model.mode)

    # -- LivePanel ----------------------------------------------------------------------------------
    def request(self) -> SpectrumRequest | None:
        try:
            src = self.model.source()
        except ValueError:
            return None  # the widget said why when the layer was chosen
        if self._pixel is None:
            ny, nx = src.spatial_shape
            self._pixel = (ny // 2, nx // 2)
        return self.model.spectrum_request(self._pixel, self.window_combo.currentText())

    def compute(self, request: SpectrumRequest) -> SpectrumResult:
        return self.sampler(request)

    def draw(self, request: SpectrumRequest, result: SpectrumResult) -> None:
        self.model.set_spectra(request, result)
        self._draw_curves()
        iy, ix = request.pixel
        px = request.source.pixel_size
        text = f"pixel ({iy}, {ix})  ·  {readable_lengths(iy * px, ix * px)}"
        if result.pixel_spectrum is not None:
            text += f"  ·  {_counts_text(result.pixel_spectrum.sum())} counts"
        if request.roi is not None:
            summed = f"{result.roi_pixels} pixels summed" if result.roi_pixels else "no pixel of the spectrum image"
            text = f"ROI: {summed}\n{text}"
        self.cursor_label.setText(text)
        self.cursor_label.setVisible(True)

    def clear(self) -> None:
        for curve in (self.curve, self.roi_curve, self.identified_curve, self.bgfit_curve):
            curve.setData([], [])
        self.legend_label.setText("")
        self.legend_label.setVisible(False)
        self.cursor_label.setText("")
        self.cursor_label.setVisible(False)
        self.note.update(empty=True)

    # -- actions ------------------------------------------------------------------------------------
    def start_roi(self):
        """Add (or select) the ROI layer in rectangle mode; None with a message without an SI."""
        return guarded(self.model.overlays.start_roi)

    def _on_mouse_move(self, _viewer, event) -> None:
        pixel = self.model.pixel_at(event.position)
        if pixel is not None and pixel != self._pixel:
            self._pixel = pixel
            self.update_live()

    # -- drawing ------------------------------------------------------------------------------------
    def _factor(self) -> float:
        """eV per plot unit."""
        return 1000.0 if self.units_combo.currentText() == "keV" else 1.0

    def _x(self, energy):
        return np.asarray(energy, dtype=float) / self._factor()

    def _redraw(self, *_args) -> None:
        self.plot.setLabel("bottom", f"energy ({self.units_combo.currentText()})")
        self._fit_ranges()
        self._draw_curves()
        self._draw_markers()
        self._draw_regions()
        self._show_slice()

    def _show_slice(self, *_args) -> None:
        shown = self.model.shown_slice()
        self.slice_label.setVisible(shown is not None)
        self.slice_line.setVisible(shown is not None and shown.channel is not None)
        if shown is None:
            return
        self.slice_label.setText(shown.text(self.units_combo.currentText()))
        if shown.channel is not None:
            self.slice_line.blockSignals(True)  # placed by the slider, not dragged
            self.slice_line.setValue(float(self._x(shown.energy)))
            self.slice_line.blockSignals(False)

    def _on_slice_dragged(self, line) -> None:
        """The line moved under the mouse: the slice follows within ``_DRAG_FOLLOW_MS`` (the release sets it exactly)."""
        if line.moving and not self._drag_timer.isActive():
            self._drag_timer.start()

    def _follow_drag(self) -> None:
        self.model.show_slice_at(self.slice_line.value() * self._factor())  # where the line is now: the latest wins

    def _draw_curves(self) -> None:
        spectra = self.model.spectra
        if spectra is None:
            self.clear()
            return
        x, result = self._x(spectra.source.energy), spectra.result
        identified = self.model.identified_spectrum if result.roi_spectrum is None else None
        drawn = []
        for name, curve, y in (("cursor", self.curve, result.pixel_spectrum),
                               ("ROI sum", self.roi_curve, result.roi_spectrum),
                               ("sum identified", self.identified_curve, identified)):
            curve.setData(x, y) if y is not None else curve.setData([], [])
            if y is not None:
                drawn.append(f'<span style="color:{_CURVE_COLOURS[name]}">&#8212;&nbsp;{name}</span>')
        self.legend_label.setText("&nbsp;&nbsp;&nbsp;".join(drawn))
        self.legend_label.setVisible(bool(drawn))
        self.note.update(empty=not drawn)
        if result.fit is not None:
            self.bgfit_curve.setData(self._x(result.fit[0]), result.fit[1])
        else:
            self.bgfit_curve.setData([], [])

    def _draw_markers(self) -> None:
        for item in self.markers:
            self.plot.removeItem(item)
        self.markers = []
        self._label_spans = None
        for label, energy, rgb in self.model.markers():
            line = pg.InfiniteLine(
                pos=float(self._x(energy)), angle=90, pen=pg.mkPen(rgb, width=1, style=Qt.DotLine), label=label,
                labelOpts={"position": _LABEL_TOP, "color": rgb, "movable": True, "fill": _LABEL_FILL},
            )
            line.setToolTip(label)  # a line whose label finds no room still names itself
            line.label.textItem.document().setDocumentMargin(_LABEL_MARGIN)
            line.label.updateTextPos()
            self.plot.addItem(line)
            self.markers.append(line)
        self._place_labels()

    def _place_labels(self, *_args) -> None:
        """Show as many marker labels as have room, in the model's order (each element's strongest
        line first), in up to six rows a label's height apart; the others hide
        until a zoom or a wider dock makes room."""
        view = self.plot.getViewBox()
        view.updateMatrix()  # the scene transform of the range just set (pyqtgraph updates it lazily)
        spans = []
        for line in self.markers:
            line.label.updatePosition()  # its side: right of the line left of the plot's centre, else left
            x = view.mapViewToScene(QPointF(line.value(), 0.0)).x()
            width = line.label.textItem.boundingRect().width()
            left = x - width * line.label.anchor[0]
            spans.append((round(left), round(left + width)))
        if not self.markers:
            self._label_spans = None
            return
        rows = self._label_rows()
        if (spans, rows) == self._label_spans:
            return  # the y range moved (a new spectrum): the labels stay where they are
        self._label_spans = (spans, rows)
        # a label points from its line towards the plot's centre, over the lines nearer the centre: the farther a line
        # from the centre, the higher it stacks, so its label covers those lines (kept within 0-1: above the curves
        # added before them, below the windows' regions)
        centre = view.sceneBoundingRect().center().x()
        width = max(view.sceneBoundingRect().width(), 1.0)
        for line in self.markers:
            x = view.mapViewToScene(QPointF(line.value(), 0.0)).x()
            line.setZValue(0.5 + min(abs(x - centre) / width, 0.49))
        for line, row in zip(self.markers, label_rows(spans, len(rows)), strict=True):
            line.label.setVisible(row is not None)
            if row is not None:
                line.label.setPosition(rows[row])

    def _label_rows(self) -> tuple[float, ...]:
        """The label rows (fractions of the plot's height, top first), at least a label's height apart: on a
        short plot (a 768 px screen) rows 0.12 apart overlapped, a label being taller."""
        box = self.plot.getViewBox().sceneBoundingRect()
        height = self.markers[0].label.textItem.boundingRect().height()
        if box.height() <= 0:
            return (_LABEL_TOP,)
        step = max(_LABEL_STEP, (height + 1.0) / box.height())
        top = min(_LABEL_TOP, 1.0 - (height / 2 + 1.0) / box.height())  # a label is centred on its row
        rows = tuple(round(top - k * step, 4) for k in range(_LABEL_ROWS_MAX) if top - k * step >= _LABEL_LOWEST)
        return rows or (round(top, 4),)

    def _draw_regions(self) -> None:
        for region in self.regions.values():
            self.plot.removeItem(region)
        self.regions = {}
        element = self.window_combo.currentText()
        for name, (lo, hi) in self.model.windows.get(element, {}).items():
            brush = _BACKGROUND_BRUSH if name.startswith("background") else _SIGNAL_BRUSH
            region = pg.LinearRegionItem(values=(float(self._x(lo)), float(self._x(hi))), brush=brush, movable=True)
            region.setToolTip(f"{element} {name.replace('_', ' ')} window: drag the edges")
            region.sigRegionChangeFinished.connect(lambda r, el=element, name=name: self._region_moved(el, name, r))
            self.plot.addItem(region)
            self.regions[name] = region

    def _region_moved(self, element: str, name: str, region) -> None:
        lo, hi = region.getRegion()
        self.model.set_window(element, name, (lo * self._factor(), hi * self._factor()))

    # -- model events -------------------------------------------------------------------------------
    def _watch_si(self, layer) -> None:
        """Follow ``layer``'s showing and hiding in the slice note (None: no layer)."""
        if self._watched_si is not None:
            self._watched_si.events.visible.disconnect(self._show_slice)
        self._watched_si = layer
        if layer is not None:
            layer.events.visible.connect(self._show_slice)

    def _on_si_changed(self) -> None:
        self._pixel = None  # the centre pixel until the cursor moves
        self._watch_si(self.model.si_layer)
        try:
            energy = self.model.source().energy
            self.units_combo.setCurrentText("keV" if energy[-1] > 5000 else "eV")
        except ValueError:
            pass
        self._redraw()
        self.update_live()

    def _on_mode_changed(self, mode: str) -> None:
        self.log_check.setChecked(mode == "EELS")
        self._fit_ranges()

    def set_beam_energy(self, kev: float | None) -> None:
        """EDS: the energy axis ends at the beam energy (kV; None: at the spectrum's end)."""
        self._beam_kev = kev
        self._fit_ranges()

    def _fit_ranges(self) -> None:
        """EDS: the counts axis fits the lines, not the zero peak, and the energy axis runs from 0 to the
        beam energy (see :class:`SpectrumViewBox`); EELS: the whole spectrum."""
        view = self.plot.getViewBox()
        eds = self.model.mode == "EDS"
        view.y_fit_from = float(self._x(EDS_FIT_FROM_EV)) if eds else None
        beam_ev = 1000.0 * self._beam_kev if self._beam_kev else np.inf
        view.x_fit = (0.0, float(self._x(BEAM_MARGIN * beam_ev))) if eds else None
        view.updateAutoRange()

    def _on_windows_changed(self) -> None:
        current = self.window_combo.currentText()
        self.window_combo.blockSignals(True)
        self.window_combo.clear()
        self.window_combo.addItems(list(self.model.windows))
        if current in self.model.windows:
            self.window_combo.setCurrentText(current)
        self.window_combo.blockSignals(False)
        self._draw_markers()
        self._draw_regions()
        self.update_live()

    def _on_window_choice(self, _element: str) -> None:
        self._draw_regions()
        self.update_live()  # the background fit follows the element

    def _on_window_moved(self, element: str) -> None:
        """A window was set: move its region if it was set by a script (not by dragging it)."""
        shown = {n: tuple(np.asarray(r.getRegion()) * self._factor()) for n, r in self.regions.items()}
        wanted = self.model.windows.get(self.window_combo.currentText(), {})
        if element == self.window_combo.currentText() and not all(
            np.allclose(shown.get(n, (np.nan, np.nan)), w) for n, w in wanted.items()
        ):
            self._draw_regions()
        self.update_live()
