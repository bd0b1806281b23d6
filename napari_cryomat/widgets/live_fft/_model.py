"""Live FFT state: the image, its ROI, the lattice, the picked spots and the results; the jobs that
compute them and the layers that show them. No Qt here: views subscribe to the signals.

A view asks the model for a :class:`Job` on the GUI thread (``model.gpa_job(radius)``): the model
reads the layer and ROI into a plain :class:`~._jobs.Region` then, and raises ValueError with what to
do when it cannot. ``job.run`` is pure (it runs in a worker); ``job.apply`` stores the result and
updates the layers on the GUI thread. ``job()`` does both at once, for scripts and tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from napari_cryomat.core import fourier as F
from napari_cryomat.core.units import INVERSE_ANGSTROM
from napari_cryomat.widgets._base.layers import (
    HelperLayer,
    camera_of,
    image_data,
    pixel_size_of,
    real_layer,
    upsert_layer,
)
from napari_cryomat.widgets.live_fft._jobs import (
    BraggRun,
    Detection,
    GPARun,
    PLDRun,
    RadialProfile,
    Region,
    SeriesRun,
    compute_bragg,
    compute_detect,
    compute_gpa,
    compute_pick,
    compute_pld,
    compute_radial,
    compute_series,
    labelled_satellites,
    spot_index,
    spot_label,
)

if TYPE_CHECKING:
    import napari

__all__ = ["DEFAULT_ROI_SIZE", "FILTER_MODES", "RECIPROCAL_TITLE", "ROI_LAYER_NAME", "SPECTRUM_MODES", "SPOT_MARKER_FRACTION",
           "Job", "LiveFFTModel"]

ROI_LAYER_NAME = "FFT ROI"
DEFAULT_ROI_SIZE = 512
FILTER_MODES = ("lattice", "superlattice", "picked spots")
#: what the live spectrum shows (:class:`~napari_cryomat.core.fourier.LiveSpectrum` modes), as the
#: dock names them
SPECTRUM_MODES = {
    "auto": "Auto",
    "single": "Single (crystals: spots)",
    "averaged": "Averaged (micrographs: Thon rings)",
}
_SPOT_COLOURS = {"lattice": "cyan", "superlattice": "magenta"}
#: where a spot's label sits in the reciprocal-space window, as in the dock's spectrum: lattice labels above-right
#: of their spot, satellite labels below-left (a satellite lies next to a lattice spot)
_LABEL_ANCHORS = {"lattice": "upper_left", "superlattice": "lower_right"}
#: ... moved off the spot's centre along the ring's diagonal, to its edge (text from the centre crossed the
#: ring once the user zoomed in and the rings grew), as (y, x) in units of the ring's radius
_LABEL_OFFSETS = {"lattice": (-0.7, 0.7), "superlattice": (0.7, -0.7)}
#: title of the window that holds the detection's spectrum and spots, in 1/Å
RECIPROCAL_TITLE = "Live FFT: reciprocal space (1/Å)"
#: diameter of a spot marker in the reciprocal-space window, as a fraction of the spectrum's side (2 Nyquist):
#: 17 screen pixels when the spectrum fills a laptop's 700-pixel-high canvas
SPOT_MARKER_FRACTION = 0.025
#: napari's text size of the spot labels there, in points
SPOT_LABEL_POINTS = 9


def _label_em_px(viewer, points: float = SPOT_LABEL_POINTS) -> float:
    """Screen pixels of one em of napari's text of ``points`` size: vispy's text draws ``points / 72 * dpi``
    times the length of its pixel-scale vector (1, -1), i.e. times √2 (measured in a 1366x768 window: digits
    10 px apart at 9 pt, 100 dpi; OpenSans digits are 0.572 em). The dpi is the canvas' (96 without one)."""
    try:  # a napari Viewer's window; a ViewerModel (scripts, tests) has none
        dpi = float(viewer.window._qt_viewer.canvas._scene_canvas.dpi)
    except AttributeError:
        dpi = 96.0
    return points / 72.0 * dpi * np.sqrt(2.0)


def _label_box(text: str, em: float) -> tuple[float, float]:
    """(width, height) in screen pixels that napari's text ``text`` covers, a little over: OpenSans advances
    are at most 0.58 em for digits, letters and '+' (Å 0.63) and at most 0.37 em for punctuation and spaces;
    the glyphs of a line span 0.97 em from the top of Å to the foot of a bracket."""
    wide = sum(ch.isalnum() or ch == "+" for ch in text)
    return em * (0.6 * wide + 0.37 * (len(text) - wide)) + 4.0, 1.05 * em


def _labels_that_fit(anchors_px: np.ndarray, boxes_px: list[tuple[float, float]], below_left: np.ndarray) -> np.ndarray:
    """Which labels to show, in order of priority: each label whose box does not overlap the box of one shown
    before it (map labelling's greedy rule). ``anchors_px`` (N, 2) are the spots' (y, x) in screen pixels; a
    label's box (width, height) runs right of its spot and up from it (napari's "upper_left" text anchor on a
    Points layer), or left and down where ``below_left`` ("lower_right")."""
    shown = np.zeros(len(boxes_px), bool)
    placed: list[tuple[float, float, float, float]] = []  # (left, top, right, bottom)
    for i, ((y, x), (width, height)) in enumerate(zip(anchors_px, boxes_px)):
        box = (x - width, y, x, y + height) if below_left[i] else (x, y - height, x + width, y)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            continue
        placed.append(box)
        shown[i] = True
    return shown


@dataclass(frozen=True)
class Job:
    """A computation prepared on the GUI thread.

    ``run(progress=None)`` runs in a worker (core calls only); ``apply(result)`` stores the result
    and updates the layers on the GUI thread and returns what it stored; ``on_error(exc)``, if given,
    hears of a failure too (connected before the worker starts: a quick failure is not missed).
    """

    label: str
    run: Callable[..., Any]
    apply: Callable[[Any], Any]
    on_error: Callable[[BaseException], Any] | None = None

    def __call__(self):
        """Run here and now: ``apply(run())``."""
        return self.apply(self.run())


def _rectangle(y0: float, x0: float, size: float) -> np.ndarray:
    return np.array([[y0, x0], [y0, x0 + size], [y0 + size, x0 + size], [y0 + size, x0]], float)


class LiveFFTModel:
    """What the Live FFT dock shows and computes, for the image layer ``layer``."""

    layer_changed = Signal(object)  # the image layer, or None
    roi_changed = Signal()  # the ROI moved, was resized or came back
    lattice_changed = Signal(object)  # Detection or None
    picks_changed = Signal(object)  # list of Peak
    gpa_changed = Signal(object)  # GPARun
    pld_changed = Signal(object)  # PLDRun
    profile_changed = Signal(object)  # RadialProfile or SeriesRun: what the plot shows

    def __init__(self, viewer: "napari.viewer.Viewer", *, open_reciprocal: Callable | None = None):
        """``open_reciprocal(title, on_closed) -> (viewer, close)`` opens the reciprocal-space viewer
        (:meth:`reciprocal_viewer`) and calls ``on_closed(viewer)`` when the user closes it; the dock gives one
        that opens a napari window."""
        self.viewer = viewer
        self._open_reciprocal = open_reciprocal
        self.layer = None
        #: Bragg filter, GPA and PLD on the whole frame instead of the ROI
        self.whole_image = False
        #: the live spectrum: one of SPECTRUM_MODES, and whether the averaged one has its smooth
        #: radial background divided out
        self.spectrum_mode = "auto"
        self.flatten = True
        self.detection: Detection | None = None
        self.picks: list[F.Peak] = []
        self.gpa: GPARun | None = None
        self.pld: PLDRun | None = None
        self.radial: RadialProfile | None = None
        self.series: SeriesRun | None = None
        self._reciprocal = None  # the viewer of the FFT layers (reciprocal_viewer), once opened
        self._close_reciprocal: Callable[[], None] | None = None
        self.roi = HelperLayer(viewer, ROI_LAYER_NAME, "shapes", self._make_roi)
        self._roi_wanted = False  # the tool is in front: show the ROI whenever there is an image
        self._roi_stale = False  # the ROI belongs to a previous image
        # set_data: follow a drag while the button is down (data fires only when it ends)
        self.roi.on_data(lambda *_: self.roi_changed.emit(), events=("data", "set_data"))

    @property
    def lattice(self) -> F.Lattice | None:
        return self.detection.lattice if self.detection is not None else None

    # -- image and ROI -------------------------------------------------------------------------
    def set_layer(self, layer) -> None:
        """Analyse ``layer`` (an Image layer, or None): forget the lattice and picks, new ROI."""
        layer = real_layer(layer) if layer is not None else None
        if layer is self.layer:
            return
        self.layer = layer
        self.detection = None
        self.picks = []
        self.roi.hide()
        self._roi_stale = True  # it lay in the old image's pixels: back to the default at the next show
        if self._roi_wanted:
            self.show_roi()
        self.layer_changed.emit(layer)
        self.lattice_changed.emit(None)
        self.picks_changed.emit([])

    def show_roi(self) -> None:
        """The tool is in front: show the ROI where the user left it (once there is an image)."""
        self._roi_wanted = True
        if self.layer is not None:
            self.roi.show(reset=self._roi_stale)
            self._roi_stale = False
            self._keep_roi_above_image()

    def _keep_roi_above_image(self) -> None:
        """Put the ROI right above the image it lies on: where it was, the image chosen next (opened after it,
        so higher in the list) hid it, and a ROI added again (after the user deleted it) sat above all layers."""
        layers = self.viewer.layers
        if not self.roi.present or self.layer not in layers:
            return
        image, roi = layers.index(self.layer), layers.index(self.roi.layer)
        if roi != image + 1:
            layers.move(roi, image + 1)  # napari's move: the destination counts the ROI still in its place

    def hide_roi(self) -> None:
        """The tool went behind another or was hidden: remove the ROI, keeping its place."""
        self._roi_wanted = False
        self.roi.hide()

    def reset_roi(self) -> None:
        """A 512 px square in the middle of the image, selected for dragging."""
        self._image_data()
        roi = self.roi.show(reset=True)
        self.viewer.layers.selection.active = roi
        roi.mode = "select"
        self.roi_changed.emit()

    def whole_image_roi(self) -> None:
        """The ROI covers the whole image (as "FFT of the whole image" in Velox or DM): on a micrograph the averaged
        spectrum then has room for 512 px tiles, which resolve its Thon rings (a 512 px ROI allows only 128 px ones)."""
        self._image_data()
        h, w = self._image_shape()[-2:]
        roi = self.roi.show()
        roi.data = [np.array([[0, 0], [0, w], [h, w], [h, 0]], float)]
        self.viewer.layers.selection.active = roi
        roi.mode = "select"
        self.roi_changed.emit()

    def close(self) -> None:
        """The tool is closing: remove the ROI, close the reciprocal-space window."""
        self._roi_wanted = False
        self.roi.remove()
        close, self._reciprocal, self._close_reciprocal = self._close_reciprocal, None, None
        if close is not None:
            close()

    def reciprocal_viewer(self):
        """The viewer of the FFT layers (spectrum and spots in 1/Å), opened on first use and again if closed.

        Its own window: napari draws all the layers of a viewer in one system of units, and 1/Å beside the
        micrograph's Å gives "Inconsistent units across layers" and turns unit-aware drawing (and the scale
        bar's units) off for every layer. The dock opens it (``open_reciprocal``, a napari Viewer); a model
        without one (scripts, tests) gets a ``ViewerModel``.
        """
        if self._reciprocal is None:
            if self._open_reciprocal is not None:
                viewer, self._close_reciprocal = self._open_reciprocal(RECIPROCAL_TITLE, self._reciprocal_closed)
            else:
                from napari.components import ViewerModel

                viewer = ViewerModel(title=RECIPROCAL_TITLE)
            # labels keep their size in screen pixels: which of them fit changes with the zoom (not with a pan)
            camera_of(viewer).events.zoom.connect(lambda _event: self._fit_spot_labels(viewer))
            self._reciprocal = viewer
        return self._reciprocal

    def _reciprocal_closed(self, viewer) -> None:
        if viewer is self._reciprocal:
            self._reciprocal = self._close_reciprocal = None

    def _make_roi(self, kept):
        layer = self.layer
        h, w = self._image_shape()[-2:]
        if kept is None or len(kept) == 0:
            size = min(DEFAULT_ROI_SIZE, h, w)
            kept = [_rectangle((h - size) // 2, (w - size) // 2, size)]
        return [np.asarray(kept[-1])], {
            "ndim": 2,
            "shape_type": "rectangle",
            "scale": tuple(layer.scale[-2:]),
            "translate": tuple(layer.translate[-2:]),
            "units": tuple(layer.units[-2:]),
            "edge_color": "yellow",
            "face_color": "transparent",
            "edge_width": max(2.0, 0.004 * max(h, w)),
        }

    def _image_shape(self) -> tuple[int, ...]:
        layer = self.layer
        return tuple(np.shape(image_data(layer)))

    def _image_data(self):
        """The layer's full-resolution data, or ValueError saying what to do."""
        layer = self.layer
        if layer is None:
            raise ValueError("Open or select an image layer first.")
        if getattr(layer, "rgb", False):
            raise ValueError("RGB layers have no single intensity: convert to greyscale first.")
        data = image_data(layer)
        if np.iscomplexobj(np.empty(0, dtype=data.dtype)):
            raise ValueError("Complex data: take the modulus or real part first, then run the FFT.")
        return data

    def roi_bounds(self) -> tuple[tuple[int, int, int, int], str]:
        """(y0, y1, x0, x1) of the ROI in image pixels, clipped, and a note; or ValueError."""
        layer = self.layer
        if layer is None:
            raise ValueError("Open or select an image layer first.")
        if not self.roi.shown or len(self.roi.layer.data) == 0:
            raise ValueError(f"Draw a rectangle in the '{ROI_LAYER_NAME}' layer (or press Reset ROI).")
        roi = self.roi.layer
        corners = np.asarray(roi.data[-1])[:, -2:]
        world = corners * np.asarray(roi.scale[-2:]) + np.asarray(roi.translate[-2:])
        pix = (world - np.asarray(layer.translate[-2:])) / np.asarray(layer.scale[-2:])
        h, w = self._image_shape()[-2:]
        # tolerate round-off of the scale/translate round trip (768.0000001 is 768)
        y0, x0 = np.floor(pix.min(axis=0) + 1e-6).astype(int)
        y1, x1 = np.ceil(pix.max(axis=0) - 1e-6).astype(int)
        bounds = (max(y0, 0), min(y1, h), max(x0, 0), min(x1, w))
        note = "" if bounds == (y0, y1, x0, x1) else "ROI partly outside the image: clipped to the image."
        ny, nx = bounds[1] - bounds[0], bounds[3] - bounds[2]
        if ny < F.MIN_SIZE or nx < F.MIN_SIZE:
            raise ValueError(f"ROI is {max(ny, 0)}×{max(nx, 0)} px inside the image; "
                             f"make it at least {F.MIN_SIZE}×{F.MIN_SIZE} px.")
        return tuple(int(b) for b in bounds), note

    def frame_index(self) -> tuple[int, ...]:
        """Indices of the frame (slice) shown, for the axes before (Y, X)."""
        layer = self.layer
        n_lead = layer.ndim - 2
        if n_lead <= 0:
            return ()
        dims = self.viewer.dims
        if sorted(dims.displayed) != [dims.ndim - 2, dims.ndim - 1]:
            raise ValueError(
                "The Live FFT works on the (Y, X) plane of a 2D view: switch to 2D and restore the axis "
                "order (View > Axes > Reset/Roll back) to see the spectrum."
            )
        point = np.asarray(layer.world_to_data(dims.point))
        shape = self._image_shape()
        return tuple(int(np.clip(round(float(point[i])), 0, shape[i] - 1)) for i in range(n_lead))

    def region(self, *, whole: bool = False) -> Region:
        """The ROI (or the whole frame) of the frame shown, read later in a worker."""
        data = self._image_data()
        index = self.frame_index()
        if whole:
            h, w = self._image_shape()[-2:]
            bounds, note = (0, h, 0, w), ""
        else:
            bounds, note = self.roi_bounds()
        layer = self.layer
        return Region(data, index, bounds, pixel_size_of(layer), layer.name, tuple(layer.scale[-2:]),
                      tuple(layer.translate[-2:]), tuple(str(u) for u in layer.units[-2:]), note)

    def live_region(self) -> Region | None:
        """What the live spectrum shows: None without an image or while the ROI is hidden."""
        if self.layer is None or not self.roi.shown:
            return None
        return self.region()

    # -- lattice and picks ----------------------------------------------------------------------
    def detect_job(self, min_snr: float, *, as_layers: bool = False) -> Job:
        """Find and index the lattice in the ROI; ``as_layers`` also adds its spectrum and spots as
        layers in 1/Å."""
        run = partial(compute_detect, self.region(), float(min_snr), bool(as_layers))
        return Job("Detect lattice", run, self._set_detection)

    def _set_detection(self, detection: Detection) -> Detection:
        self.detection = detection
        if detection.spectrum is not None:
            self._write_reciprocal(detection)
        self.lattice_changed.emit(detection)
        return detection

    def pick_job(self, g, region: Region | None = None) -> Job:
        """Pick the spot nearest ``g`` (Å⁻¹) in the spectrum of ``region`` (default: the ROI)."""
        run = partial(compute_pick, region or self.region(), np.asarray(g, float))
        return Job("Pick spot", run, self._add_pick)

    def _add_pick(self, peak: F.Peak) -> F.Peak:
        self.picks.append(peak)
        self.picks_changed.emit(list(self.picks))
        return peak

    def clear_picks(self) -> None:
        self.picks = []
        self.picks_changed.emit([])

    def spots(self, mode: str) -> list[F.Peak]:
        """The spots of ``mode`` (one of :data:`FILTER_MODES`), or ValueError saying what to do."""
        lattice = self.lattice
        found = {
            "lattice": lattice.peaks if lattice else [],
            "superlattice": lattice.superlattice if lattice else [],
            "picked spots": self.picks,
        }
        if mode not in found:
            raise ValueError(f"Unknown spot set {mode!r}; use one of {FILTER_MODES}.")
        if not found[mode]:
            raise ValueError(f"No {mode} spots: auto-detect the lattice or click spots in the FFT first.")
        return list(found[mode])

    def basis(self) -> tuple[np.ndarray, np.ndarray]:
        """The lattice basis (g1, g2), else the first two picks."""
        if self.lattice is not None:
            return self.lattice.g1, self.lattice.g2
        if len(self.picks) >= 2:
            return self.picks[0].g, self.picks[1].g
        raise ValueError("Auto-detect the lattice (or pick two spots) first.")

    # -- filters, strain, PLD -------------------------------------------------------------------
    def bragg_job(self, mode: str, radius: float) -> Job:
        """Bragg filter through the spots of ``mode`` with a soft mask of ``radius`` Å⁻¹."""
        run = partial(compute_bragg, self.region(whole=self.whole_image), mode, self.spots(mode), float(radius))
        return Job(f"Bragg filter ({mode})", run, self._write_bragg)

    def _write_bragg(self, run: BraggRun):
        name = f"{run.region.source} Bragg-filtered ({run.mode})"
        return self._write_image(run.region, run.image, name, colormap="gray", contrast_limits=run.limits)

    def gpa_job(self, radius: float) -> Job:
        """Geometric phase analysis with the lattice basis and a mask of ``radius`` Å⁻¹."""
        g1, g2 = self.basis()
        run = partial(compute_gpa, self.region(whole=self.whole_image), g1, g2, float(radius))
        return Job("GPA", run, self._set_gpa)

    def _set_gpa(self, run: GPARun) -> GPARun:
        for name, data in run.maps().items():
            limit = run.limits[name]
            self._write_image(run.region, data, f"{run.region.source} GPA {name}", colormap="PiYG",
                              contrast_limits=(-limit, limit), visible=(name == "exx"))
        self.gpa = run
        self.gpa_changed.emit(run)
        return run

    def pld_job(self) -> Job:
        """PLD maps from the first modulation vector of the detected superlattice."""
        lattice = self.lattice
        if lattice is None or not lattice.modulation_vectors:
            raise ValueError("No superlattice found: auto-detect a lattice with superlattice spots first.")
        run = partial(compute_pld, self.region(whole=self.whole_image), lattice.modulation_vectors[0], lattice)
        return Job("PLD map", run, self._set_pld)

    def _set_pld(self, run: PLDRun) -> PLDRun:
        source = run.region.source
        self._write_image(run.region, run.result.amplitude, f"{source} PLD amplitude (Å)", colormap="magma",
                          contrast_limits=(0.0, run.amplitude_limit))
        self._write_image(run.region, run.result.direction, f"{source} PLD direction (deg)", colormap="twilight",
                          contrast_limits=(0.0, 180.0), visible=False)
        self.pld = run
        self.pld_changed.emit(run)
        return run

    # -- profile and dose series ----------------------------------------------------------------
    def radial_job(self) -> Job:
        """Rotational average of the ROI's power spectrum."""
        return Job("Radial profile", partial(compute_radial, self.region()), self._set_radial)

    def _set_radial(self, profile: RadialProfile) -> RadialProfile:
        self.radial = profile
        self.profile_changed.emit(profile)
        return profile

    def series_job(self, dose_per_frame: float | None = None) -> Job:
        """Intensity of the lattice spots (else the picks) in the ROI through the frames of a
        (T, Y, X) stack; ``dose_per_frame`` (e/Å², None or 0: unknown) fits a critical dose."""
        layer = self.layer
        if layer is None or layer.ndim != 3:
            raise ValueError("Peak intensity vs frame needs a (T, Y, X) stack layer.")
        spots = self.lattice.peaks if self.lattice is not None else self.picks
        if not spots:
            raise ValueError("Auto-detect the lattice (or pick spots) first.")
        # one of each Friedel pair: the series counts both already
        upper = [pk for pk in spots if pk.g[0] < 0 or (pk.g[0] == 0 and pk.g[1] > 0)] or spots
        dose = float(dose_per_frame) if dose_per_frame else None
        return Job("Peak intensity vs frame", partial(compute_series, self.region(), upper, dose), self._set_series)

    def _set_series(self, run: SeriesRun) -> SeriesRun:
        self.series = run
        self.profile_changed.emit(run)
        return run

    # -- layers ---------------------------------------------------------------------------------
    def _write_image(self, region: Region, data: np.ndarray, name: str, **kwargs):
        return upsert_layer(self.viewer, data, name=name, kind="image", **region.placement(), **kwargs)

    def _write_reciprocal(self, detection: Detection) -> None:
        """The detection's spectrum (Image) and spots (Points, labelled) as layers in 1/Å, in the
        reciprocal-space viewer (:meth:`reciprocal_viewer`)."""
        spectrum, lattice = detection.spectrum, detection.lattice
        dgy, dgx = spectrum.reciprocal_pixel
        units = (INVERSE_ANGSTROM, INVERSE_ANGSTROM)
        source = detection.region.source
        new_window = self._reciprocal is None
        viewer = self.reciprocal_viewer()
        # spectrum and spots on one grid, the spectrum's pixels (scale and translate put them in 1/Å): a marker's
        # size is then in spectrum pixels, not 0.03 1/Å, which napari's "point size" slider (whole numbers from 1)
        # showed as 1 and set to 33 times the marker at a touch
        placement = {"scale": (dgy, dgx), "units": units,
                     "translate": (-spectrum.centre[0] * dgy, -spectrum.centre[1] * dgx)}
        upsert_layer(viewer, spectrum.data, name=f"FFT of {source}", kind="image", colormap="gray",
                     contrast_limits=detection.limits, **placement)
        # markers a fixed fraction of the spectrum (not of a reciprocal pixel: 4 of those were a dot on a 1024² ROI),
        # in whole spectrum pixels along x (napari sizes points by their x scale; the slider shows whole numbers),
        # and never under 8 screen pixels when the user zooms out
        marker = max(1, round(SPOT_MARKER_FRACTION * max(spectrum.data.shape[0] * dgy, spectrum.data.shape[1] * dgx) / dgx))
        # labels, in order of priority: the basis spots and the satellite that names each modulation with their
        # spacing (as the dock's spectrum), then the other lattice spots by their index alone, nearest the
        # centre first; the other satellites (dozens for a modulation) never. Only those that fit at the
        # zoom are shown (_fit_spot_labels); every spot keeps its spacing and full index in the features (hover).
        named = {id(pk) for pk in labelled_satellites(lattice)}
        for what, spots in (("lattice", lattice.peaks), ("superlattice", lattice.superlattice)):
            name = f"FFT {what} spots of {source}"
            if not spots:
                if name in viewer.layers:
                    viewer.layers.remove(name)
                continue
            colour, anchor = _SPOT_COLOURS[what], _LABEL_ANCHORS[what]
            if what == "lattice":
                basis = [pk.hk in ((1, 0), (0, 1)) for pk in spots]
                tags = [spot_label(pk) if first else spot_index(pk) for pk, first in zip(spots, basis)]
                priority = [0.0 if first else 2.0 + pk.g_abs for pk, first in zip(spots, basis)]
            else:
                tags = [spot_label(pk) if id(pk) in named else "" for pk in spots]
                priority = [1.0 if tag else np.inf for tag in tags]
            upsert_layer(
                viewer, np.array([spectrum.index_of(pk.g) for pk in spots]), name=name, kind="points", **placement,
                size=marker, border_width=0.12, canvas_size_limits=(8, 10000),
                face_color="transparent", border_color=colour,
                features={"d": [pk.d for pk in spots], "label": [pk.label() for pk in spots],
                          "angle": [pk.angle for pk in spots], "tag": tags, "priority": priority,
                          "shown": [""] * len(spots)},
                text={"string": "{shown}", "color": colour, "size": SPOT_LABEL_POINTS, "anchor": anchor,
                      "translation": np.multiply(_LABEL_OFFSETS[what], marker / 2)},
            )
        if new_window:
            viewer.reset_view()
        self._fit_spot_labels(viewer)

    def _fit_spot_labels(self, viewer) -> None:
        """Show the labels of the spot layers in ``viewer`` that fit at its zoom (:func:`_labels_that_fit`, both
        layers together, by the priority written in their features)."""
        layers = [layer for layer in viewer.layers
                  if layer._type_string == "points" and {"tag", "priority", "shown"} <= set(layer.features)]
        if not layers:
            return
        tags = np.concatenate([layer.features["tag"].to_numpy(str) for layer in layers])
        priority = np.concatenate([layer.features["priority"].to_numpy(float) for layer in layers])
        # where each label starts, in 1/Å (layer data are spectrum pixels; the text's translation is in them too)
        spots = np.concatenate([(np.asarray(layer.data)[:, -2:] + np.asarray(layer.text.translation)[-2:])
                                * np.asarray(layer.scale[-2:]) + np.asarray(layer.translate[-2:]) for layer in layers])
        below_left = np.concatenate([np.full(len(layer.data), str(layer.text.anchor) == "lower_right")
                                     for layer in layers])
        order = [i for i in np.argsort(priority, kind="stable") if np.isfinite(priority[i]) and tags[i]]
        em = _label_em_px(viewer)
        fits = _labels_that_fit(spots[order] * camera_of(viewer).zoom, [_label_box(tags[i], em) for i in order],
                               below_left[order])
        shown = np.full(len(tags), "", dtype=object)
        for i in np.asarray(order, int)[fits]:
            shown[i] = tags[i]
        start = 0
        for layer in layers:
            part = list(shown[start:start + len(layer.data)])
            start += len(layer.data)
            if part != list(layer.features["shown"]):
                features = layer.features.copy()
                features["shown"] = part
                layer.features = features

