"""State of the Spectrum imaging tool, without Qt.

:class:`SpectrumModel` holds the chosen spectrum image, the signal type (EELS/EDS), the elements
and their energy windows, and the results of the runs (maps, identification, PCA, the spectra
under the cursor and in the ROI, the composition profile). It builds the plain requests the
workers run (:mod:`._jobs`, :mod:`._sampling`), turns results into layers, and owns the two
helper layers (:mod:`._overlays`). Views subscribe to its psygnal signals.
Errors a user can cause are ``ValueError`` with a message saying what to do; views show them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from napari_cryomat.core import eds
from napari_cryomat.core import spectral as core
from napari_cryomat.core.units import angstrom_units
from napari_cryomat.io.spectral import si_from_layer
from napari_cryomat.widgets._base.layers import real_layer, upsert_layer
from napari_cryomat.widgets.spectrum._exports import ExportSpectrum
from napari_cryomat.widgets.spectrum._jobs import (
    DenoiseRequest,
    MapsRequest,
    MapsResult,
    PcaRequest,
    PcaRun,
    RatioRequest,
    RatioResult,
    SpectrumImage,
    ThicknessResult,
    map_colour,
    parse_k_factors,
)
from napari_cryomat.widgets.spectrum._overlays import Overlays
from napari_cryomat.widgets.spectrum._sampling import Profile, ProfileRequest, SpectrumRequest, SpectrumResult
from napari_cryomat.widgets.spectrum.eds_jobs import EdsIdentifyRequest

if TYPE_CHECKING:
    import napari

__all__ = ["MAP_KEY", "MODES", "ShownSlice", "Spectra", "SpectrumModel", "is_reference_image", "is_spectrum_image"]

MODES = ("EELS", "EDS")
MAP_KEY = "spectrum_map"  # metadata key marking the layers this tool made
_NO_SI = "Open a spectrum image first (File > Open, or File > Open Sample > napari-cryomat)."


def is_spectrum_image(layer) -> bool:
    """Offered as a spectrum image: a 3D layer with an energy axis in its spectrum-image metadata
    (a tomogram or a movie is 3D too, and is not offered: choosing one could only give an error; the
    (T, E, Y, X) frames of a spectrum image are summed by the Drift correction dock first)."""
    return layer.ndim == 3 and "spectrum_image" in (layer.metadata or {})


def is_reference_image(layer) -> bool:
    """Offered as the reference (HAADF): a 2D image that is not one of this tool's maps."""
    return layer.ndim == 2 and MAP_KEY not in (layer.metadata or {})


@dataclass(frozen=True)
class ShownSlice:
    """The energy slice the canvas shows of a spectrum image: ``energy`` in eV, the SI's ``channel`` (None when
    the slider stands outside the SI's range, whose image is then blank), its ``size`` and ``span`` (eV), the
    ``layer``'s name and whether it is ``visible`` (a hidden SI's slice is not on the canvas: the EELS sample opens
    with both SIs hidden under the HAADF)."""

    energy: float
    channel: int | None
    size: int
    span: tuple[float, float]
    layer: str = "Image"
    visible: bool = True

    def text(self, unit: str = "eV") -> str:
        """The note, in ``unit`` ("eV" or "keV", the plot's)."""
        factor, digits = (1000.0, 3) if unit == "keV" else (1.0, 2)
        energy = f"{self.energy / factor:.{digits}f} {unit}"
        if self.channel is not None:
            text = f"{self.layer} slice: {energy} (channel {self.channel} of {self.size})"
        else:
            low, high = (f"{e / factor:.{digits - 1}f}" for e in self.span)
            text = f"{self.layer} slice: {energy}, outside its {low}–{high} {unit} (its image is blank)"
        return text if self.visible else f"{text}; hidden: show it to see the slice"


@dataclass(eq=False)
class Spectra:
    """What the spectrum plot last showed: the spectrum at ``pixel`` and the ROI sum of ``source``."""

    source: SpectrumImage
    pixel: tuple[int, int] | None
    result: SpectrumResult


class SpectrumModel:
    """The Spectrum imaging tool's state and actions (see the module docstring)."""

    si_changed = Signal()  # another spectrum image (mode, k-factors may have followed it)
    mode_changed = Signal(str)
    elements_changed = Signal(str)  # the elements' text, set by the table or identification
    windows_changed = Signal()  # windows reset (elements, mode, FWHM or SI changed)
    window_moved = Signal(str)  # one element's window set by hand
    spectra_changed = Signal()
    maps_changed = Signal()
    identification_changed = Signal()
    pca_changed = Signal()
    profile_changed = Signal()

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self.viewer = viewer
        self.si_layer = None
        self.reference = None  # the HAADF under the maps
        self.mode = "EELS"
        self.elements_text = ""
        self.windows: dict[str, dict[str, tuple[float, float]]] = {}
        self.moved_windows: set[str] = set()  # elements whose windows the user set by hand
        self.profile_width = 15.0  # width of the band averaged across the profile line, Å
        self.fwhm = 130.0  # EDS detector resolution at Mn Kα, eV
        self.method = "lsq"  # EELS background fit: "lsq" or "two_area"
        self.k_text = ""  # Cliff–Lorimer k-factors as typed
        self.spectra: Spectra | None = None
        self.maps: MapsResult | None = None
        self.identification: eds.Identification | None = None
        self._identified_on = None  # the spectrum-image layer the identification read
        self.pca: PcaRun | None = None
        self.profile: Profile | None = None
        self._source: tuple[object, SpectrumImage] | None = None
        self.overlays = Overlays(viewer, lambda: self._placement(self.source()), self._line_placement)

    # -- the spectrum image -----------------------------------------------------------------------
    def source(self) -> SpectrumImage:
        """The chosen spectrum image as the core sees it (cached while its data stay the same)."""
        layer = self.si_layer
        if layer is None:
            raise ValueError(_NO_SI)
        if self._source is not None and self._source[0] is layer.data and self._source[1].name == layer.name:
            return self._source[1]
        si, energy, px, signal_type = si_from_layer(layer)
        energy = core.check_energy_axis(energy, si.shape[-1])
        translate = tuple(float(t) for t in layer.translate[-2:])
        src = SpectrumImage(layer.name, si, energy, px, signal_type, translate)
        self._source = (layer.data, src)
        return src

    def not_lines(self) -> list[dict]:
        """Energy ranges the chosen spectrum image's metadata says hold no element line, with why
        (``metadata["not_lines"]``: ``{"from_eV", "to_eV", "why"}``; the EDS demo's continuum roll-off)."""
        layer = self._identified_on or self.si_layer
        return list(((layer.metadata or {}) if layer is not None else {}).get("not_lines", ()))

    def set_si_layer(self, layer) -> None:
        """Choose the spectrum image; its signal type sets the mode, its k-factors fill an empty field."""
        layer = real_layer(layer) if layer is not None else None
        if layer is self.si_layer:
            return
        self.si_layer, self._source, self.spectra = layer, None, None
        info = (layer.metadata or {}) if layer is not None else {}
        signal_type = str((info.get("spectrum_image") or {}).get("signal_type", ""))
        if signal_type in MODES and signal_type != self.mode:
            self.mode = signal_type
            self.mode_changed.emit(signal_type)
        if info.get("k_factors") and not self.k_text.strip():
            self.k_text = ", ".join(f"{el}: {v:g}" for el, v in info["k_factors"].items())
        self.reset_windows()
        self.si_changed.emit()

    def pixel_at(self, world_position) -> tuple[int, int] | None:
        """(y, x) pixel of the SI under a world position, or None outside it."""
        if self.si_layer is None or len(world_position) < 2:
            return None
        try:
            ny, nx = self.source().spatial_shape
        except ValueError:
            return None
        data_position = self.si_layer.world_to_data(world_position)
        iy, ix = int(np.floor(data_position[-2] + 0.5)), int(np.floor(data_position[-1] + 0.5))
        return (iy, ix) if 0 <= iy < ny and 0 <= ix < nx else None

    def _energy_axis_of_si(self) -> int | None:
        """The viewer's dims axis the chosen SI's energy runs along (its first data axis, "EYX"), or None
        when there is none or the canvas displays it (3D view, transposed axes): then no slice is shown."""
        layer = self.si_layer
        info = ((getattr(layer, "metadata", None) or {}).get("spectrum_image") or {}) if layer is not None else {}
        if layer is None or layer.ndim != 3 or info.get("axes", "EYX") != "EYX":
            return None
        axis = self.viewer.dims.ndim - layer.ndim
        return None if axis < 0 or axis in self.viewer.dims.displayed else axis

    def shown_slice(self) -> ShownSlice | None:
        """The energy of the slice the canvas shows of the chosen SI (napari's slider counts steps of the
        finest layer's grid, not eV nor this SI's channels), or None when no energy slice is shown."""
        axis = self._energy_axis_of_si()
        if axis is None:
            return None
        try:
            energy = self.source().energy
        except ValueError:
            return None
        point = np.asarray(self.viewer.dims.point, dtype=float)
        coordinate = float(self.si_layer.world_to_data(point)[0])
        channel = int(np.round(coordinate))  # as napari picks the plane it draws
        step = float(energy[1] - energy[0]) if energy.size > 1 else 1.0
        inside = 0 <= channel < energy.size
        shown = float(energy[channel]) if inside else float(energy[0] + coordinate * step)
        return ShownSlice(shown, channel if inside else None, int(energy.size), (float(energy[0]), float(energy[-1])),
                          self.si_layer.name, bool(self.si_layer.visible))

    def show_slice_at(self, energy_ev: float) -> None:
        """Move the viewer's energy slider to the chosen SI's channel nearest ``energy_ev``."""
        axis = self._energy_axis_of_si()
        if axis is None:
            return
        energy = self.source().energy
        channel = int(np.clip(np.argmin(np.abs(energy - energy_ev)), 0, energy.size - 1))
        data_point = np.zeros(self.si_layer.ndim)
        data_point[0] = channel
        world = self.si_layer.data_to_world(data_point)
        self.viewer.dims.set_point(axis, float(world[0]))

    # -- mode, elements, windows ------------------------------------------------------------------
    def set_mode(self, mode: str) -> list[str]:
        if mode not in MODES:
            raise ValueError(f"The signal is EELS or EDS, not {mode!r}.")
        self.mode = mode
        self.mode_changed.emit(mode)
        return self.reset_windows()

    def set_fwhm(self, fwhm: float) -> list[str]:
        self.fwhm = float(fwhm)
        return self.reset_windows() if self.mode == "EDS" else []

    def elements(self) -> list[str]:
        """The typed elements (ValueError for an unknown symbol or none)."""
        return core.parse_elements(self.elements_text)

    def set_elements(self, text: str) -> list[str]:
        """Take the elements' text and reset their windows; returns the messages of elements
        that have no edge or line in range (the others get their windows)."""
        self.elements_text = text
        self.elements_changed.emit(text)
        return self.reset_windows()

    def reset_windows(self) -> list[str]:
        """Default windows of the typed elements; returns the messages of those that have none
        (and, for EELS, of edges with no clean background window between other edges)."""
        self.windows, errors = {}, []
        self.moved_windows = set()
        if self.elements_text.strip():
            try:
                energy, elements = self.source().energy, self.elements()
            except ValueError as exc:
                energy, elements, errors = None, [], [str(exc)]
            usable = []
            for el in elements:  # one element out of range does not hide the others
                try:
                    if self.mode == "EELS":
                        core.choose_edge(el, energy=energy)
                        usable.append(el)
                    else:
                        self.windows[el] = self._default_windows(el, energy)
                except ValueError as exc:
                    errors.append(str(exc))
            if usable:  # EELS: windows clear of every listed edge (onsets in the data: in the worker)
                for el, plan in core.plan_eels_windows(usable, energy=energy).items():
                    self.windows[el] = {"background": plan.background, "integration": plan.integration}
                    if plan.message:
                        errors.append(plan.message)
        self.windows_changed.emit()
        return errors

    def _default_windows(self, element: str, energy: np.ndarray) -> dict[str, tuple[float, float]]:
        line = eds.choose_line(element, energy=energy, fwhm_mn_ka=self.fwhm)
        return dict(eds.eds_windows(line.energy, fwhm_mn_ka=self.fwhm))

    def set_window(self, element: str, name: str, window: tuple[float, float]) -> None:
        """Set one window (eV) of an element, as dragging its region on the plot does."""
        if element not in self.windows:
            raise ValueError(f"{element} is not among the elements.")
        self.windows[element][name] = (float(window[0]), float(window[1]))
        self.moved_windows.add(element)
        self.window_moved.emit(element)

    def markers(self) -> list[tuple[str, float, tuple[int, int, int]]]:
        """(label, energy eV, RGB) of the typed elements' edges (EELS) or main lines (EDS) in range,
        in the order their labels claim room on the plot: every element's strongest line (or
        first edge) before any element's second, and so on."""
        try:
            energy, elements = self.source().energy, self.elements()
        except ValueError:
            return []
        energy_range = (energy[0], energy[-1])
        per_element = []
        for i, el in enumerate(elements):
            symbol, rgb = el.split("_")[0], map_colour(i)[1]
            if self.mode == "EELS":
                features = [(e.label, e.onset) for e in core.eels_edges(symbol, energy_range=energy_range)]
            else:
                lines = sorted(eds.eds_lines(symbol, energy_range=energy_range),
                               key=lambda ln: (-ln.weight, -ln.energy))  # K before L before M at a tie
                features = [(ln.label, ln.energy) for ln in lines if ln.weight >= 0.1]
            per_element.append([(label, float(e), rgb) for label, e in features])
        return [m for rank in itertools.zip_longest(*per_element) for m in rank if m is not None]

    # -- maps, ratio, thickness -------------------------------------------------------------------
    def maps_request(self) -> MapsRequest:
        src, elements = self.source(), self.elements()
        k_factors = parse_k_factors(self.k_text) if self.mode == "EDS" else {}
        missing = [el for el in elements if k_factors and el.split("_")[0] not in k_factors]
        if missing:
            raise ValueError(f"Give a k-factor for {', '.join(missing)} too, or clear the k-factors field.")
        # EELS: windows set by hand are kept, the others are planned in the worker, clear of the
        # onsets found in the sum spectrum too
        keep = self.moved_windows if self.mode == "EELS" else set(self.windows)
        windows = {el: dict(w) for el, w in self.windows.items() if el in elements and el in keep}
        return MapsRequest(src, self.mode, tuple(elements), windows, self.method, self.fwhm, k_factors)

    def show_maps(self, result: MapsResult) -> None:
        """One additive colour layer per map over the (dimmed) reference; at.% layers hidden."""
        for step in self.maps_steps(result):
            step()

    def maps_steps(self, result: MapsResult) -> list[Callable[[], None]]:
        """:meth:`show_maps` as steps that write one layer each, the last one recording the run.

        A view runs them one per event-loop turn: napari spends about 0.1 s of GUI time on every
        layer it adds, whatever its size, and a run of eight maps must not freeze the window.
        """
        place = self._placement(result.request.source)
        steps = [self._dim_reference]
        for i, (el, m) in enumerate(result.maps.items()):
            info = {"element": el, "feature": m.feature, "kind": m.kind, "windows": m.windows, "rgb": map_colour(i)[1]}
            steps.append(partial(upsert_layer, self.viewer, m.data, name=f"{el} map", colormap=map_colour(i)[0],
                                 blending="additive", contrast_limits=result.limits[el], metadata={MAP_KEY: info},
                                 **place))
        for el, q in (result.quant or {}).items():
            steps.append(partial(upsert_layer, self.viewer, q, name=f"{el} at.%", colormap="viridis",
                                 contrast_limits=(0.0, 100.0), visible=False, blending="translucent",
                                 metadata={MAP_KEY: {"element": el, "kind": "at.%"}}, **place))
        steps.append(partial(self._maps_shown, result))
        return steps

    def _dim_reference(self) -> None:
        """The maps add light on top of the reference: show it dimmed so the colours stay readable."""
        if self.reference is not None and self.reference in self.viewer.layers:
            self.reference.visible = True
            self.reference.opacity = min(self.reference.opacity, 0.5)

    def _maps_shown(self, result: MapsResult) -> None:
        self.maps, self.profile = result, None
        if result.request.mode == "EELS" and result.request.source is self._source_or_none():
            for el, m in result.maps.items():  # the plot shows the windows the maps were made with
                if el not in self.moved_windows and not core.is_multi_window(m.windows["background"]):
                    self.windows[el] = {"background": m.windows["background"], "integration": m.windows["integration"]}
            self.windows_changed.emit()
        self.maps_changed.emit()

    def _source_or_none(self):
        return self._source[1] if self._source is not None else None

    def map_limits(self) -> dict[str, tuple[float, float]]:
        """Contrast limits of the map layers as the user left them (for the RGB composite)."""
        names = {f"{el} map": el for el in (self.maps.maps if self.maps else {})}
        return {el: tuple(self.viewer.layers[n].contrast_limits) for n, el in names.items() if n in self.viewer.layers}

    def ratio_request(self, numerator: str, denominator: str) -> RatioRequest:
        maps = self.maps.maps if self.maps else {}
        if numerator not in maps or denominator not in maps or numerator == denominator:
            raise ValueError("Make maps first and pick two different elements for the ratio.")
        return RatioRequest(self.maps, numerator, denominator)

    def show_ratio(self, result: RatioResult) -> None:
        req = result.request
        upsert_layer(self.viewer, result.data, name=f"{req.numerator}/{req.denominator} ratio", colormap="turbo",
                     contrast_limits=result.limits, metadata={MAP_KEY: {"element": req.numerator + "/" +
                                                                        req.denominator, "kind": "ratio"}},
                     **self._placement(req.maps.request.source))

    def show_thickness(self, result: ThicknessResult) -> None:
        info = {"kind": "t/lambda", "zlp_threshold_eV": result.zlp_threshold}
        upsert_layer(self.viewer, result.t_over_lambda, name=f"t/λ ({result.source.name})", colormap="inferno",
                     contrast_limits=result.limits, metadata={MAP_KEY: info}, **self._placement(result.source))

    def _line_placement(self) -> dict:
        return self._placement(self.maps.request.source if self.maps is not None else self.source())

    def layer_removed(self, layer) -> None:
        """A layer left the viewer: forget it if it was the reference or a helper layer."""
        self.overlays.layer_removed(layer)
        if layer is self.reference:
            self.reference = None

    @staticmethod
    def _placement(src: SpectrumImage) -> dict:
        """scale, translate and units of a map of ``src`` (it lies on the SI and the HAADF)."""
        return {"scale": (src.pixel_size, src.pixel_size), "translate": src.translate, "units": angstrom_units(2)}

    # -- identification, PCA ----------------------------------------------------------------------
    def identify_request(self, beam_energy_kev: float = 200.0) -> EdsIdentifyRequest:
        """The ROI's summed spectrum if an ROI is drawn, else the whole SI's (summed in the worker)."""
        src = self.source()
        self.refuse_xray_excited("Identify")
        return EdsIdentifyRequest(src, self.roi_spectrum, self.fwhm, float(beam_energy_kev))

    def xray_tube_kv(self) -> float | None:
        """The tube voltage where the chosen file records a micro-XRF spectrum (excited by an X-ray tube),
        else None (:mod:`napari_cryomat.io._acquisition`)."""
        recorded = ((getattr(self.si_layer, "metadata", None) or {}).get("acquisition") or {})
        return recorded.get("xray_tube_kv")

    def refuse_xray_excited(self, action: str) -> None:
        """Identification and quantification model electron-excited EDS (ionisation by the beam, its
        bremsstrahlung, Cliff-Lorimer/zeta factors); on a micro-XRF spectrum they report elements and
        amounts that are not there (hyperspy's M6 Jetstream file: Eu, Ho, In, Ir, Sc, with 23 of its 32
        elements missed), so they refuse, and say what still works."""
        kv = self.xray_tube_kv()
        if kv is not None:
            raise ValueError(
                f"{action}: '{self.si_layer.name}' is a micro-XRF spectrum (excited by an X-ray tube at {kv:g} kV, "
                "as its file records), and identification and quantification here model electron-excited EDS. "
                "Type its elements in Elements: their lines, windows and maps still work.")

    def apply_identification(self, found: eds.Identification) -> list[str]:
        self.identification, self._identified_on = found, self.si_layer
        errors = self.set_elements(", ".join(found.elements)) if found.elements else []
        self.identification_changed.emit()
        return errors

    def pca_request(self, max_components: int = 32) -> PcaRequest:
        return PcaRequest(self.source(), max_components)

    def set_pca(self, run: PcaRun) -> None:
        self.pca = run
        self.pca_changed.emit()

    def denoise_request(self, n_components: int) -> DenoiseRequest:
        if self.pca is None:
            raise ValueError("Run PCA first.")
        return DenoiseRequest(self.pca, int(n_components))

    def add_denoised(self, layer_data) -> None:
        data, kwargs, _kind = layer_data
        kwargs = dict(kwargs)
        upsert_layer(self.viewer, data, name=kwargs.pop("name"), **kwargs)

    # -- live spectrum and profile ----------------------------------------------------------------
    def spectrum_request(self, pixel: tuple[int, int] | None, fit_element: str = "") -> SpectrumRequest:
        src = self.source()
        fit = dict(self.windows[fit_element]) if self.mode == "EELS" and fit_element in self.windows else None
        return SpectrumRequest(src, pixel, self.overlays.roi_region(src), fit)

    def set_spectra(self, request: SpectrumRequest, result: SpectrumResult) -> None:
        self.spectra = Spectra(request.source, request.pixel, result)
        self.spectra_changed.emit()

    @property
    def last_pixel(self) -> tuple[int, int] | None:
        return self.spectra.pixel if self.spectra else None

    @property
    def last_spectrum(self) -> np.ndarray | None:
        return self.spectra.result.pixel_spectrum if self.spectra else None

    @property
    def roi_spectrum(self) -> np.ndarray | None:
        return self.spectra.result.roi_spectrum if self.spectra else None

    @property
    def identified_spectrum(self) -> np.ndarray | None:
        """The summed spectrum the last identification read, while its spectrum image is the one chosen (the
        whole map's sum unless an ROI was drawn): what its lines are to be checked against."""
        found = self.identification
        if (found is None or found.spectrum is None or self.mode != "EDS"
                or self._identified_on is not self.si_layer):
            return None
        try:
            size = self.source().energy.size
        except ValueError:
            return None
        return found.spectrum if found.spectrum.size == size else None

    def profile_request(self) -> ProfileRequest | None:
        """The profile along the line layer's last line over the maps, or None (no maps or line)."""
        ends = self.overlays.line_ends(self.maps.request.source) if self.maps is not None else None
        if not ends:
            return None
        width_px = max(1, int(round(self.profile_width / self.maps.request.source.pixel_size)))
        return ProfileRequest(self.maps, *ends, width=width_px)

    def set_profile(self, profile: Profile | None) -> None:
        self.profile = profile
        self.profile_changed.emit()

    # -- exports ----------------------------------------------------------------------------------
    def spectrum_to_export(self) -> ExportSpectrum:
        """The ROI sum if an ROI is drawn, else the spectrum under the cursor."""
        counts = self.roi_spectrum if self.roi_spectrum is not None else self.last_spectrum
        if counts is None:
            raise ValueError("Move the cursor over the spectrum image or draw an ROI first.")
        src = self.spectra.source
        what = "ROI sum" if self.roi_spectrum is not None else f"pixel {self.last_pixel}"
        return ExportSpectrum(src.energy, counts, src.name, src.signal_type, what)

    def maps_to_export(self) -> MapsResult:
        if self.maps is None:
            raise ValueError("Make maps first.")
        return self.maps

    def profile_to_export(self) -> Profile:
        if self.profile is None:
            raise ValueError("Draw a profile line over the maps first.")
        return self.profile
