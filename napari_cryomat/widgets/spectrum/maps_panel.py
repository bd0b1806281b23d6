"""Maps and quantification: elemental maps over the HAADF (with Cliff–Lorimer at.% for EDS when
k-factors are given), t/λ from a low-loss SI, ratio maps and composition profiles.

Every computation runs in the tool's :class:`TaskRunner` from a request the model builds; the
results become layers through the model.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from qtpy.QtCore import QObject, Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.widgets._base import (
    EventLinks,
    TaskRunner,
    hbox,
    placeholder_while_empty,
    show_info,
    show_warning,
)
from napari_cryomat.widgets.spectrum._jobs import (
    MapsResult,
    ThicknessResult,
    compute_maps,
    compute_ratio,
    compute_thickness,
    map_colour,
)
from napari_cryomat.widgets.spectrum._model import SpectrumModel
from napari_cryomat.widgets.spectrum._view_parts import guarded, run_request
from napari_cryomat.widgets.spectrum.profile_plot import ProfilePlot

__all__ = ["LayerSteps", "MapsPanel", "legend_html"]


def _single_value(element_map, quant) -> str:
    """' = counts ± error (at.%)' for a map of one pixel (a single spectrum, e.g. an .msa file), where a
    1 x 1 map layer shows nothing; '' for a real map."""
    if element_map.data.size != 1:
        return ""
    text = f" = {float(element_map.data.ravel()[0]):.4g}"
    variance = element_map.extra.get("variance")
    if variance is not None and np.size(variance) == 1 and float(np.ravel(variance)[0]) >= 0:
        text += f" ± {float(np.sqrt(np.ravel(variance)[0])):.2g}"
    text += " counts"
    if quant is not None:
        text += f", {float(np.ravel(quant)[0]):.1f} at.%"
    return " " + text[1:].replace(" ", "&nbsp;")  # it may wrap before "=", nowhere else


def legend_html(result: MapsResult) -> str:
    """The legend of a map run: a coloured square, the element, the edge or line, the kind; for a
    single spectrum also its net counts (± counting error) and, with k-factors, at.%."""
    quant = result.quant or {}
    items = [
        # non-breaking spaces: a long legend wraps between items, not inside one
        f"<span style='color: rgb{map_colour(i)[1]}'>■</span>&nbsp;{el}&nbsp;({m.feature.replace(' ', '&nbsp;')},&nbsp;{m.kind.upper()})"
        + _single_value(m, quant.get(el))
        for i, (el, m) in enumerate(result.maps.items())
    ]
    single = all(m.data.size == 1 for m in result.maps.values())
    text = ("<br>" if single else " &nbsp; ").join(items)
    if result.quant:
        text += "<br>Cliff–Lorimer at.% layers added (hidden)."
    return text


class LayerSteps(QObject):
    """Runs layer-writing steps (see :meth:`SpectrumModel.maps_steps`) one per event-loop turn,
    so the window stays responsive while napari adds the layers."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._steps: deque = deque()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._next)

    @property
    def busy(self) -> bool:
        return bool(self._steps)

    def run(self, steps) -> None:
        self._steps.extend(steps)
        self._timer.start()

    def _next(self) -> None:
        if self._steps:
            self._steps.popleft()()
        if self._steps:
            self._timer.start()


class MapsPanel(QWidget):
    """k-factors (EDS), Make maps, t/λ, the legend of the last run; ratio map and profile line.

    ``make_maps``, ``make_ratio``, ``make_thickness`` return the started worker (None when the
    input is refused, with a message).
    """

    def __init__(self, viewer, model: SpectrumModel, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.runner = runner
        self.links = EventLinks(self)
        self.steps = LayerSteps(self)
        self.k_edit = QLineEdit()
        self.k_edit.setPlaceholderText("e.g. Fe: 1.0, Pt: 1.6")
        self.k_edit.setToolTip("Cliff–Lorimer k-factors; empty: net-count maps only")
        self.maps_button = QPushButton("Make maps")
        self.thickness_button = QPushButton("t/λ (low-loss)")
        self.thickness_button.setToolTip("Relative thickness by the log-ratio method; pick the low-loss SI first")
        self.legend = QLabel("")
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setWordWrap(True)
        self.legend.setVisible(False)  # until there are maps: empty, it was a blank line (21 px of a laptop's dock)
        self.ratio_a, self.ratio_b = QComboBox(), QComboBox()
        self.ratio_a.setToolTip("Ratio map: this map divided by the one on the right, pixel by pixel")
        self.ratio_b.setToolTip("Ratio map: the map on the left divided by this one, pixel by pixel")
        self.ratio_button = QPushButton("Ratio map")
        why = "No maps yet: press Make maps; the maps of the elements typed above are listed here."
        placeholder_while_empty(self.ratio_a, "no maps yet", why, also=(self.ratio_button,))
        placeholder_while_empty(self.ratio_b, "no maps yet", why)
        divided_by = QLabel("/")
        divided_by.setSizePolicy(QSizePolicy.Maximum, QSizePolicy.Preferred)  # the combos take the row, not "/"
        self.line_button = QPushButton("Draw profile line")
        self.line_button.setToolTip("Add the 'composition line' shapes layer; its last line gives the profiles")
        self.width_spin = QDoubleSpinBox()
        self.width_spin.setRange(0.1, 1e5)
        self.width_spin.setDecimals(1)
        self.width_spin.setSuffix(" Å")
        self.width_spin.setValue(model.profile_width)
        self.width_spin.setToolTip("Width of the band averaged across the line (error bars: counting statistics)")
        self.profile = ProfilePlot(viewer, model)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.k_label = QLabel("k-factors")
        form.addRow(self.k_label, self.k_edit)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(hbox(self.maps_button, self.thickness_button))
        layout.addWidget(self.legend)
        layout.addWidget(hbox(self.ratio_a, divided_by, self.ratio_b, self.ratio_button))
        layout.addWidget(hbox(self.line_button, QLabel("width"), self.width_spin))
        layout.addWidget(self.profile, 1)

        self.k_edit.textChanged.connect(lambda text: setattr(model, "k_text", text))
        self.maps_button.clicked.connect(self.make_maps)
        self.thickness_button.clicked.connect(self.make_thickness)
        self.ratio_button.clicked.connect(self.make_ratio)
        self.line_button.clicked.connect(self.start_line)
        self.width_spin.valueChanged.connect(self._width_changed)
        self.links.connect(model.maps_changed, self._on_maps_changed)
        self.links.connect(model.mode_changed, self._on_mode_changed)
        self.links.connect(model.si_changed, self._on_si_changed)
        self._on_mode_changed(model.mode)

    def make_maps(self):
        """Maps of the typed elements of the chosen SI (a worker); layers when it succeeds."""
        return run_request(self.runner, self.model.maps_request, compute_maps, on_done=self._show_maps, label="Maps")

    def _show_maps(self, result: MapsResult) -> None:
        self.steps.run(self.model.maps_steps(result))
        messages = [m.extra["message"] for m in result.maps.values() if m.extra.get("message")]
        if messages:  # no clean background window: say so, and what to do instead
            show_warning(" ".join(messages))

    def make_ratio(self):
        numerator, denominator = self.ratio_a.currentText(), self.ratio_b.currentText()
        return run_request(self.runner, lambda: self.model.ratio_request(numerator, denominator), compute_ratio,
                           on_done=self.model.show_ratio, label="Ratio map")

    def make_thickness(self):
        return run_request(self.runner, self.model.source, compute_thickness, on_done=self._thickness_done,
                           label="t/λ")

    def _thickness_done(self, result: ThicknessResult) -> None:
        self.model.show_thickness(result)
        show_info(f"t/λ of {result.source.name} by log-ratio; zero-loss integral up to {result.zlp_threshold:.1f} eV.")

    def _width_changed(self, value: float) -> None:
        self.model.profile_width = float(value)
        self.profile.update_live()

    def start_line(self):
        """Add (or select) the composition-line layer in line mode."""
        return guarded(self.model.overlays.start_line)

    def _on_maps_changed(self) -> None:
        result = self.model.maps
        self.legend.setText(legend_html(result))
        self.legend.setVisible(bool(self.legend.text()))
        names = list(result.maps)
        for combo in (self.ratio_a, self.ratio_b):
            combo.clear()
            combo.addItems(names)
        if len(names) > 1:
            self.ratio_b.setCurrentIndex(1)

    def _on_mode_changed(self, mode: str) -> None:
        for widget in (self.k_label, self.k_edit):
            widget.setVisible(mode == "EDS")
        self.thickness_button.setVisible(mode == "EELS")

    def _on_si_changed(self) -> None:
        if self.k_edit.text() != self.model.k_text:  # the SI brought its k-factors
            self.k_edit.setText(self.model.k_text)
