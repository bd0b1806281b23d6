"""The "Spectrum imaging" dock: inputs (spectrum image, HAADF, EELS/EDS, elements), the live
spectrum plot, maps and quantification, PCA denoising and exports, in one scrolling panel with
the progress bar and Cancel below it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from napari_cryomat.widgets._base import (
    DockVisibility,
    EventLinks,
    LayerCombo,
    ScrollPanel,
    Section,
    TaskRunner,
    hbox,
    show_error,
    show_info,
    show_warning,
)
from napari_cryomat.widgets.spectrum._model import MODES, SpectrumModel, is_reference_image, is_spectrum_image
from napari_cryomat.widgets.spectrum.eds_jobs import unexplained_text
from napari_cryomat.widgets.spectrum.eds_panel import EdsQuantPanel
from napari_cryomat.widgets.spectrum.eels_panel import EelsPanel
from napari_cryomat.widgets.spectrum.export_panel import ExportPanel
from napari_cryomat.widgets.spectrum.maps_panel import MapsPanel
from napari_cryomat.widgets.spectrum.pca_panel import PcaPanel
from napari_cryomat.widgets.spectrum.periodic_table import PeriodicTableDialog
from napari_cryomat.widgets.spectrum.spectrum_plot import SpectrumPlot

if TYPE_CHECKING:
    import napari

    from napari_cryomat.core.eds import Identification

__all__ = ["SpectrumImagingWidget", "identification_text"]

#: widest the dock asks to be, px (1366x768 laptops)
MAX_DOCK_WIDTH = 420

#: the link in the identification summary that opens the reasons
WHY_LINK = "#eds-reasons"
#: ambiguous peaks listed in the summary (the rest are counted; the reasons say more)
MAX_AMBIGUOUS = 3

#: background-fit methods as the combo shows them -> core names
METHODS = {"least squares": "lsq", "two-area (Egerton)": "two_area"}


def identification_text(found: Identification, notes=()) -> str:
    """What an identification found, as rich text: elements, ambiguous peaks, unexplained peaks (with the
    spectrum image's own notes on them, :func:`.eds_jobs.unexplained_text`), and a "why?" link to the
    reasons (shown in the EDS section)."""
    # a light link colour: the palette's default blue is unreadable on napari's dark theme
    why = f' <a href="{WHY_LINK}"><span style="color: #7fb4ff;">why?</span></a>'
    if not found.elements:
        return "No element lines found above the noise." + why
    text = "Identified: " + ", ".join(found.elements) + why
    if found.ambiguous:
        items = [f"{k} could also be {', '.join(v)}" for k, v in found.ambiguous.items()]
        more = f"; and {len(items) - MAX_AMBIGUOUS} more peaks" if len(items) > MAX_AMBIGUOUS else ""
        text += "<br>Ambiguous: " + "; ".join(items[:MAX_AMBIGUOUS]) + more
    if found.unexplained:
        text += "<br>Unexplained peaks at " + unexplained_text(found, notes)
    return text


class SpectrumImagingWidget(ScrollPanel):
    """Dock widget "Spectrum imaging" (see README, Spectrum imaging).

    Parts: ``model`` (:class:`SpectrumModel`), ``plot`` (live spectrum), ``maps`` (maps,
    quantification, ratio, profile), ``eels`` (EELS atomic %, low loss; EELS mode), ``eds`` (EDS
    identification and quantification; EDS mode), ``pca``, ``export``, ``runner`` (progress and Cancel).
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: QWidget | None = None):
        from napari.layers import Image

        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = model = SpectrumModel(napari_viewer)
        self.links = EventLinks(self)
        self.runner = TaskRunner("Spectrum imaging")

        self.si_combo = LayerCombo(
            napari_viewer, (Image,), predicate=is_spectrum_image, placeholder="open an EDS or EELS file",
            why="No spectrum image in the viewer: open one (File > Open: .emd, .bcf, .dm4, .msa, ...) or a sample "
                "(File > Open Sample > Cryo-EM of materials: the EDS or EELS spectrum image).")
        self.ref_combo = LayerCombo(
            napari_viewer, (Image,), predicate=is_reference_image, placeholder="optional: no 2D image",
            why="Optional: a HAADF or other 2D image of the scanned area, shown dimmed under the maps. "
                "None is open; the maps are made without it.")
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(list(MODES))
        self.elements_edit = QLineEdit()
        self.elements_edit.setPlaceholderText("e.g. C, N, O  or  Fe, Pt, Cu")
        self.table_button = QPushButton("Table…")
        self.identify_button = QPushButton("Identify")
        self.identify_button.setToolTip("EDS: find the elements of the sum spectrum (of the ROI, if drawn), each "
                                        "fitted with its whole line families at the beam energy set in 'EDS "
                                        "identification and quantification'; they replace Elements, with the "
                                        "reasons for each candidate shown there")
        self.method_combo = QComboBox()
        self.method_combo.addItems(list(METHODS))
        self.fwhm_spin = QDoubleSpinBox()
        self.fwhm_spin.setRange(40.0, 400.0)
        self.fwhm_spin.setValue(model.fwhm)
        self.fwhm_spin.setSuffix(" eV")
        self.identify_label = QLabel("")
        self.identify_label.setWordWrap(True)
        self.identify_label.setTextFormat(Qt.RichText)
        self.identify_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # wraps, never widens
        self.identify_label.setVisible(False)

        self.plot = SpectrumPlot(napari_viewer, model)
        self.maps = MapsPanel(napari_viewer, model, self.runner)
        self.eels = EelsPanel(napari_viewer, model, self.runner)
        self.eds = EdsQuantPanel(napari_viewer, model, self.runner)
        self.pca = PcaPanel(model, self.runner)
        self.export = ExportPanel(model, self.runner)
        self._lay_out()
        self._connect()
        self._on_mode_changed(model.mode)
        self._on_si_chosen()
        self._on_reference_chosen()

    def _lay_out(self) -> None:
        inputs = QWidget()
        form = QFormLayout(inputs)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Spectrum image", self.si_combo)
        form.addRow("Reference (HAADF)", self.ref_combo)
        form.addRow("Signal", self.mode_combo)
        # the elements on a row of their own, the dock's whole width: beside two buttons the field showed 6 of the 9
        # elements Identify found on a Bruker map ("K, Ca, Na, Fe, Mg, Ti", its main Si, Al, O scrolled away)
        form.addRow("Elements", hbox(self.table_button, self.identify_button, stretch_last=False))
        form.addRow(self.elements_edit)
        self.method_label, self.fwhm_label = QLabel("Background"), QLabel("FWHM at Mn Kα")
        form.addRow(self.method_label, self.method_combo)
        form.addRow(self.fwhm_label, self.fwhm_spin)
        self.add(inputs)
        self.add(self.identify_label)
        self.add(self.plot, stretch=2)
        self.maps_section = Section("Maps and quantification", expanded=True)
        self.maps_section.add(self.maps)
        self.add(self.maps_section, stretch=1)
        self.eels_section = Section("EELS quantification and low loss", expanded=False)
        self.eels_section.add(self.eels)
        self.add(self.eels_section)
        self.eds_section = Section("EDS identification and quantification", expanded=False)
        self.eds_section.add(self.eds)
        self.add(self.eds_section)
        self.pca_section = Section("PCA denoising", expanded=False)
        self.pca_section.add(self.pca)
        self.add(self.pca_section)
        self.export_section = Section("Export", expanded=False)
        self.export_section.add(self.export)
        self.add(self.export_section)
        self.add_footer(self.runner)

    def _connect(self) -> None:
        model = self.model
        self.si_combo.currentIndexChanged.connect(self._on_si_chosen)
        self.ref_combo.currentIndexChanged.connect(self._on_reference_chosen)
        self.mode_combo.currentTextChanged.connect(lambda mode: self._show_errors(model.set_mode(mode)))
        self.elements_edit.textChanged.connect(lambda text: setattr(model, "elements_text", text))
        self.elements_edit.editingFinished.connect(lambda: self.set_elements(self.elements_edit.text()))
        self.table_button.clicked.connect(self.open_table)
        self.maps.line_button.clicked.connect(self._show_profile)
        self.identify_button.clicked.connect(self.identify)
        self.identify_label.linkActivated.connect(self.show_reasons)
        self.method_combo.currentTextChanged.connect(lambda text: setattr(model, "method", METHODS[text]))
        self.fwhm_spin.valueChanged.connect(lambda value: self._show_errors(model.set_fwhm(value)))
        self.eds.beam_spin.valueChanged.connect(self.plot.set_beam_energy)  # EDS: the energy axis ends there
        self.plot.set_beam_energy(self.eds.beam_spin.value())
        self.links.connect(model.mode_changed, self._on_mode_changed)
        self.links.connect(model.elements_changed, self._on_elements_changed)
        self.links.connect(model.identification_changed, self._on_identification)
        self.links.connect(self.viewer.layers.events.removed, self._on_layer_removed)
        self.links.on_close(model.overlays.close)
        DockVisibility(self, self._on_front_changed)

    def _show_profile(self) -> None:
        """Scroll the profile plot into view as the user starts drawing its line: on a 768 px screen the dock's
        content (EELS sample: 837 px, 749 at the least) is taller than its 643 px, and the plot sat below the
        bottom edge, its top strip showing."""
        self.scroll.ensureWidgetVisible(self.maps.profile, 0, 4)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """420 px wide: the dock shares a 1366 px laptop screen (the sections fit 380 px), and the spectrum plot
        and its line labels take all of it (the rows' own hints ask ~350 px since Elements has a row of its own)."""
        hint = super().sizeHint()
        return QSize(MAX_DOCK_WIDTH, hint.height())

    # -- user actions ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A computation runs, or its layers are still being written."""
        return self.runner.busy or self.maps.steps.busy

    @property
    def mode(self) -> str:
        return self.model.mode

    def elements(self) -> list[str]:
        return self.model.elements()

    def set_elements(self, text: str) -> None:
        """Type elements (as a user would, then Enter): markers and windows follow."""
        self._show_errors(self.model.set_elements(text))

    def open_table(self) -> None:
        try:
            current = [el.split("_")[0] for el in self.model.elements()]
        except ValueError:
            current = []
        dialog = PeriodicTableDialog(current, self)
        if dialog.exec_():
            self.set_elements(", ".join(dialog.selected()))

    def identify(self):
        """EDS: identify the elements of the ROI's (or the whole SI's) summed spectrum (a worker); they
        replace Elements, the reasons show in the EDS section (:meth:`EdsQuantPanel.identify`)."""
        return self.eds.identify()

    def show_reasons(self, *_args) -> None:
        """Open the EDS section and bring the reasons of the last identification into view."""
        self.eds_section.set_expanded(True)
        QTimer.singleShot(0, lambda: self.scroll.ensureWidgetVisible(self.eds.found_label, 0, 40))

    @staticmethod
    def _show_errors(errors: list[str]) -> None:
        if errors:
            show_error(" ".join(errors))

    # -- model and viewer events ----------------------------------------------------------------
    def _on_si_chosen(self, *_args) -> None:
        previous = self.model.si_layer
        self.model.set_si_layer(self.si_combo.layer())
        if self.model.si_layer is not None:
            try:
                self.model.source()
            except ValueError as exc:  # a 3D image without an energy axis
                show_warning(str(exc))
            if self.model.si_layer is not previous:
                self._start_from_acquisition(self.model.si_layer)

    def _start_from_acquisition(self, layer) -> None:
        """Set the beam energy, the EDS detector's resolution and take-off angle and the EELS angles to what
        the file recorded (``metadata["acquisition"]``, :mod:`napari_cryomat.io._acquisition`), and say so:
        identification at the dock's 200 kV on a 10 kV SEM spectrum expects lines the beam cannot excite.
        What the file does not record stays as the user set it; every value can still be changed. Also said:
        a signal type the reader inferred from the energy axis (FEI TIA), and a micro-XRF spectrum, which
        Identify and Quantify refuse (:meth:`SpectrumModel.refuse_xray_excited`)."""
        metadata = getattr(layer, "metadata", None) or {}
        recorded = metadata.get("acquisition") or {}
        si_info = metadata.get("spectrum_image") or {}
        if si_info.get("signal_type_from") == "energy axis":  # FEI TIA files do not say EDS or EELS
            axis = si_info.get("energy_axis") or {}
            end_kev = (axis.get("offset", 0.0) + axis.get("scale", 0.0) * (axis.get("size", 1) - 1)) / 1000.0
            show_info(f"{layer.name}: taken as {si_info['signal_type']} by its energy axis ({axis.get('scale', 0):.3g} eV "
                      f"channels to {end_kev:.3g} keV); the file does not say which. Change Signal if it is not.")
        controls = {  # key -> (spin boxes it sets, how it is said)
            "beam_energy_kev": ((self.eds.beam_spin, self.eels.e0_spin), "beam {:g} kV"),
            "eds_fwhm_mn_ka_ev": ((self.fwhm_spin,), "detector FWHM {:.1f} eV at Mn Kα"),
            "eds_take_off_deg": ((self.eds.toa_spin,), "take-off {:.1f}°"),
            "eels_convergence_mrad": ((self.eels.alpha_spin,), "convergence {:g} mrad"),
            "eels_collection_mrad": ((self.eels.beta_spin,), "collection {:g} mrad"),
        }
        said = []
        for key, (spins, text) in controls.items():
            value = recorded.get(key)
            if value is None:
                continue
            usable = [spin for spin in spins if spin.minimum() <= value <= spin.maximum()]
            for spin in usable:
                spin.setValue(value)
            if usable:
                said.append(text.format(value))
        if said:
            show_info(f"{layer.name}: {', '.join(said)}, as the file records (change them in the dock if need be).")
        tube_kv = recorded.get("xray_tube_kv")
        if tube_kv is not None:
            show_warning(f"{layer.name} is a micro-XRF spectrum (X-ray tube at {tube_kv:g} kV, as the file records): "
                         "Identify and Quantify model electron-excited EDS and refuse it; type its elements "
                         "in Elements to see their lines and maps.")

    def _on_reference_chosen(self, *_args) -> None:
        self.model.reference = self.ref_combo.layer()

    def _on_mode_changed(self, mode: str) -> None:
        if self.mode_combo.currentText() != mode:
            self.mode_combo.blockSignals(True)
            self.mode_combo.setCurrentText(mode)
            self.mode_combo.blockSignals(False)
        eels = mode == "EELS"
        self.eels_section.setVisible(eels)
        self.eds_section.setVisible(not eels)
        for widget in (self.method_label, self.method_combo):
            widget.setVisible(eels)
        for widget in (self.fwhm_label, self.fwhm_spin, self.identify_button):
            widget.setVisible(not eels)

    def _on_elements_changed(self, text: str) -> None:
        if self.elements_edit.text() != text:
            self.elements_edit.setText(text)
            self.elements_edit.setCursorPosition(0)  # a list longer than the field shows its start: the strongest
        self.elements_edit.setToolTip(text)  # ... and the whole of it on hover

    def _on_identification(self) -> None:
        self.identify_label.setText(identification_text(self.model.identification, self.model.not_lines()))
        self.identify_label.setVisible(True)

    def _on_layer_removed(self, event) -> None:
        self.model.layer_removed(event.value)
        self.plot.update_live()
        self.maps.profile.update_live()

    def _on_front_changed(self, in_front: bool) -> None:
        """Helper layers exist only while the tool is in front; the live views catch up."""
        self.model.overlays.set_in_front(in_front)
        if in_front:
            self.plot.update_live()
            self.maps.profile.update_live()
