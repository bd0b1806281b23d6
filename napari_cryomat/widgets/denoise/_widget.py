"""Dock widget "Denoise": live preview on the view, calibration curves, apply to the whole layer.

The preview is a live view (:class:`LivePanel`, latest request wins): changing the layer, the
method, the strength, the destriping, the frame or panning the view asks for a new preview of the
crop around the view's centre; a request arriving while one runs replaces it. "Apply to layer"
denoises every pixel (every frame of a stack) in the TaskRunner (progress, Cancel) into a new layer;
the raw layer is never changed, and "Show raw (before)" hides the result for comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.core.denoise import CALIBRATED, DenoiseResult
from napari_cryomat.widgets._base import (
    EmptyPlotNote,
    LayerCombo,
    LivePanel,
    ScrollPanel,
    Section,
    TaskRunner,
    camera_of,
    hbox,
    is_grey_image,
    legend_html,
    room_for_axis_label,
    show_error,
)
from napari_cryomat.widgets.denoise._model import (
    DESTRIPE,
    DenoiseModel,
    DenoiseParams,
    PreviewRequest,
    run_apply,
    run_preview,
)

if TYPE_CHECKING:
    import napari

__all__ = ["DenoiseWidget"]

METHOD_LABELS = {"auto": "auto (Noise2Self choice)", "gaussian": "Gaussian", "spectral": "spectral (block Wiener)",
                 "tv": "total variation", "wavelet": "wavelet (undecimated)", "nlm": "non-local means",
                 "n2v": "Noise2Void (careamics)"}
#: what the calibration plot says while it is empty
CALIBRATION_NOTE = ("With the live preview on, each denoiser's self-supervised loss against its strength appears "
                    "here; a star marks the strength chosen.")
#: the calibration section's share of the dock's spare height against the stretch under the last section (1)
PLOT_STRETCH = 100
#: the margin above and below the chosen curve's losses, as a fraction of their span
Y_PADDING = 0.08
COLOURS = {"gaussian": "#4363d8", "spectral": "#e6194b", "tv": "#3cb44b", "wavelet": "#f58231", "nlm": "#911eb4"}


class CalibrationPlot(QWidget):
    """Self-supervised loss against strength, one curve per denoiser tried, the choices marked.

    The y range is fitted to the main chosen method's curve and every curve's minimum: the methods' losses differ by up to 4x
    on a real micrograph (EPU: gaussian up to 395k, spectral 97k-122k), and a range spanning all of them left the
    chosen curve's minimum a flat line. The legend is a line under the plot (``legend``), naming a curve that runs off
    the top; the plot takes the dock's spare height.
    """

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        import pyqtgraph as pg

        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(170)
        # the plot takes the dock's spare height and no more: its own 480 px hint made the dock scroll
        self.plot.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Ignored)
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "strength")  # named with each method's unit once curves are drawn
        # octave ticks only: pyqtgraph labels every minor tick of a short log axis, unreadably
        octaves = [0.125 * 2**k for k in range(10)]
        self.plot.getAxis("bottom").setTicks([[(np.log10(v), f"{v:g}") for v in octaves], []])
        self.plot.setLabel("left", "Noise2Self loss")
        room_for_axis_label(self.plot)
        self.note = EmptyPlotNote(self.plot, CALIBRATION_NOTE)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setWordWrap(True)
        self.summary = QLabel("No preview yet.")
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)
        layout.addWidget(self.summary)
        self.curves: dict[str, tuple] = {}

    def show_result(self, result: DenoiseResult) -> None:
        import pyqtgraph as pg

        self.plot.clear()
        self.curves = {}
        chosen = {name: strength for name, strength, _ in result.parts}
        for name, cal in result.calibrations.items():
            pen = pg.mkPen(COLOURS.get(name, "w"), width=2)
            self.plot.plot(cal.values, cal.losses, pen=pen, symbol="o", symbolSize=5,
                           symbolBrush=COLOURS.get(name, "w"))
            self.curves[name] = (cal.values, cal.losses)
            if name in chosen:
                self.plot.plot([chosen[name]], [cal.best_loss], pen=None, symbol="star", symbolSize=14,
                               symbolBrush="y")
        # the main choice's whole curve and every curve's minimum (the methods compared where auto compares them): a
        # blend's minor part (gaussian x 0.1 on counts with excess noise) climbs 5x above the main curve, and its
        # whole curve in range would flatten the main one again
        main = max(result.parts, key=lambda part: part[2])[0] if result.parts else None
        fitted = [self.curves[main][1]] if main in self.curves else []
        fitted += [[cal.best_loss] for cal in result.calibrations.values()]
        top = self._fit_y(fitted)
        entries = [(name + (" (runs off the top)" if np.nanmax(losses) > top else ""), COLOURS.get(name, "#ffffff"),
                    "&#8212;&#9679;") for name, (_values, losses) in self.curves.items()]
        if any(name in self.curves for name in chosen):
            entries.append(("chosen", "#ffff00", "&#9733;"))
        self.legend.setText(legend_html(entries))
        # each method's strength in its own unit (sigma in px, beta in units of the noise power ...)
        units = dict.fromkeys(cal.parameter for cal in result.calibrations.values())
        self.plot.setLabel("bottom", "strength: " + ", ".join(units) if units else "strength")
        # pyqtgraph places an axis label on a resize only: the demo's label stayed where the short "strength" had
        # been, its end cut off at the plot's right edge
        self.plot.getAxis("bottom").resizeEvent()
        self.note.update()
        # an optimum at the end of the scan is said where the choice is read (the plot's star alone does not say it)
        notes = [result.calibrations[name].end_note() for name in chosen if name in result.calibrations]
        self.summary.setText("\n".join([result.describe(), *filter(None, notes)]))

    def _fit_y(self, fitted: list) -> float:
        """Fit the y range to the losses in ``fitted`` (every curve's when it is empty); return the range's top."""
        curves = fitted or [losses for _values, losses in self.curves.values()]
        values = np.concatenate([np.asarray(c, np.float64) for c in curves]) if curves else np.empty(0)
        values = values[np.isfinite(values)]
        if values.size == 0:
            self.plot.enableAutoRange(axis="y")
            return np.inf
        lo, hi = float(values.min()), float(values.max())
        self.plot.setYRange(lo, hi, padding=Y_PADDING)
        return float(self.plot.getViewBox().viewRange()[1][1])


class DenoiseWidget(LivePanel):
    """Self-supervised denoising of a low-dose image or stack.

    Attributes
    ----------
    model : DenoiseModel
    layer_combo, method, strength, manual_strength, destripe : the form
    plot : CalibrationPlot
    apply_button, show_before : actions; runner : TaskRunner of "Apply to layer"
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: Optional[QWidget] = None):
        super().__init__(napari_viewer, parent)
        import napari

        self.model = DenoiseModel(napari_viewer)
        self.layer_combo = LayerCombo(napari_viewer, (napari.layers.Image,), predicate=is_grey_image,
                                      placeholder="no grey image",
                                      why="No grey image, stack or volume in the viewer: open one (File > Open).")
        self.method = QComboBox()
        for key in ("auto",) + CALIBRATED + ("n2v",):
            self.method.addItem(METHOD_LABELS[key], key)
        self.manual_strength = QCheckBox("set")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.05, 100.0)
        self.strength.setDecimals(2)
        self.strength.setValue(1.0)
        self.strength.setEnabled(False)
        self.destripe = QComboBox()
        self.destripe.addItems(list(DESTRIPE))
        self.live_preview = QCheckBox("Live preview of the view")
        self.live_preview.setChecked(True)

        form = QFormLayout()
        form.addRow("Image", self.layer_combo)
        form.addRow("Method", self.method)
        form.addRow("Strength", hbox(self.manual_strength, self.strength))
        form.addRow("Destripe", self.destripe)
        settings = Section("Settings")
        box = QWidget()
        box.setLayout(form)
        settings.add(box)
        settings.add(self.live_preview)

        self.plot = CalibrationPlot()
        calibration = Section("Calibration (preview)")
        calibration.add(self.plot)

        self.apply_button = QPushButton("Apply to layer")
        self.show_before = QCheckBox("Show raw (before)")
        actions = Section("Result")
        actions.add(hbox(self.apply_button, self.show_before))
        self.runner = TaskRunner("Denoise")

        panel = ScrollPanel()
        panel.add(settings)
        # the plot takes the spare height while it is shown (a capped plot left a blank band under it); folded, the
        # spare height goes below the last section, not into the folded one's title
        panel.add(calibration, PLOT_STRETCH)
        panel.add(actions)
        panel.finish()
        calibration.toggle.toggled.connect(
            lambda shown: panel.stack.setStretchFactor(calibration, PLOT_STRETCH if shown else 0))
        panel.add_footer(self.runner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel)
        self.setMaximumWidth(420)

        # panning fires many camera events: ask for a preview once the view rests
        self._camera_timer = QTimer(self)
        self._camera_timer.setSingleShot(True)
        self._camera_timer.setInterval(250)
        self._camera_timer.timeout.connect(self.update_live)
        camera = camera_of(napari_viewer)
        self.links.connect(camera.events.center, self._camera_moved)
        self.links.connect(camera.events.zoom, self._camera_moved)
        self.links.on_close(self.model.remove_preview)
        for signal in (self.layer_combo.currentIndexChanged, self.method.currentIndexChanged,
                       self.destripe.currentIndexChanged, self.strength.valueChanged):
            signal.connect(self.update_live)
        self.manual_strength.toggled.connect(self._manual_toggled)
        self.live_preview.toggled.connect(self._live_toggled)
        self.apply_button.clicked.connect(self.apply)
        self.show_before.toggled.connect(self.model.show_before)
        self.model.preview_changed.connect(self.plot.show_result)
        QTimer.singleShot(0, self.update_live)

    # -- form ----------------------------------------------------------------------------------
    def params(self) -> DenoiseParams:
        method = self.method.currentData()
        strength = self.strength.value() if self.manual_strength.isChecked() and method not in ("auto", "n2v") else None
        return DenoiseParams(method=method, strength=strength, destripe=self.destripe.currentText())

    def _camera_moved(self, *_args) -> None:
        self._camera_timer.start()

    def _manual_toggled(self, on: bool) -> None:
        self.strength.setEnabled(on)
        if on and self.model.preview is not None and self.model.preview.parts:
            self.strength.blockSignals(True)
            self.strength.setValue(float(self.model.preview.parts[0][1]))  # start from the calibrated value
            self.strength.blockSignals(False)
        self.update_live()

    def _live_toggled(self, on: bool) -> None:
        if on:
            self.update_live()
        else:
            self.live.supersede()
            self._awaited = None
            self.model.remove_preview()

    # -- live preview (LivePanel) ---------------------------------------------------------------
    def request(self) -> Optional[PreviewRequest]:
        if not self.live_preview.isChecked() or self.method.currentData() == "n2v":
            return None  # Noise2Void trains for minutes: no live preview
        layer = self.layer_combo.layer()
        if layer is None:
            return None
        return self.model.preview_request(layer, self.params())

    def compute(self, request: PreviewRequest) -> DenoiseResult:
        return run_preview(request)

    def draw(self, request: PreviewRequest, result: DenoiseResult) -> None:
        if request.source not in self.viewer.layers:
            return
        self.model.accept_preview(request, result)
        if self.show_before.isChecked():
            self.model.show_before(True)

    def clear(self) -> None:
        self.model.remove_preview()

    def on_front_changed(self, in_front: bool) -> None:
        # the preview belongs to the dock: a tool behind another tab leaves no layer of its own on the
        # canvas (coming back to the front asks for a fresh one)
        if not in_front:
            self.live.supersede()
            self._awaited = None
            self.model.remove_preview()

    # -- apply ---------------------------------------------------------------------------------
    def apply(self) -> None:
        """Denoise the whole chosen layer into a new layer, in the background."""
        if self.runner.busy:
            show_error("Denoise is still running; wait for it or press Cancel first.")
            return
        try:
            request = self.model.apply_request(self.layer_combo.layer(), self.params())
        except ValueError as exc:
            show_error(str(exc))
            return
        self.runner.start(run_apply, request, on_done=lambda result: self._applied(request, result),
                          label="Denoise")

    def _applied(self, request, result: DenoiseResult) -> None:
        self.model.accept_apply(request, result)
        if result.calibrations:
            self.plot.show_result(result)
        if self.show_before.isChecked():
            self.model.show_before(True)

    @property
    def idle(self) -> bool:
        return not self.runner.busy and not self.busy
