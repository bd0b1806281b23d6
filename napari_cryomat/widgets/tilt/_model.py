"""Tilt series without Qt: the worker functions and the tool's state and layers.

Each step has three parts, as in the other tools: the GUI thread turns the chosen layers and the
controls into a request (:meth:`TiltModel.align_request`, :meth:`~TiltModel.recon_request`,
:meth:`~TiltModel.quant_request`); a worker runs a pure function on it (:func:`run_align`,
:func:`run_reconstruct`, :func:`run_quantify`, :func:`run_threshold`); the GUI thread hands the
result back to ``accept_*``, which writes the layers. A cancelled or failed worker never reaches
``accept_*``, so the viewer stays as it was.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Optional

import numpy as np
from psygnal import Signal

from napari_cryomat.core import fiducials, morph3d, tilt
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.io.mrc import strided_contrast_limits
from napari_cryomat.io.tilt import read_tilt_angles, sidecar_angles
from napari_cryomat.widgets._base.layers import image_data, pixel_size_of, real_layer, upsert_layer
from napari_cryomat.widgets.tilt._run import (
    ANGLES_KEY,
    ANGSTROM,
    AlignNote,
    AlignRequest,
    AlignRun,
    Quantification,
    QuantRequest,
    ReconRequest,
    Reconstruction,
)

if TYPE_CHECKING:
    import napari

#: metadata key of the aligned-tilts layer (its value: the raw series' name): a view, not a series to align again
ALIGNED_KEY = "tilt_aligned_from"

__all__ = ["ALIGNED_KEY", "TiltModel", "angles_of", "run_align", "run_quantify", "run_reconstruct", "run_threshold"]


# ---------------------------------------------------------------------------------------------
# worker functions: pure core calls, no viewer
# ---------------------------------------------------------------------------------------------
def run_align(request: AlignRequest, progress: ProgressCallback = None) -> AlignRun:
    """Alignment of the whole series, on gold beads or fiducial-free (runs in a worker)."""
    if request.bead_diameter is not None:
        beads = fiducials.track_beads(np.asarray(request.tilts, np.float32), request.angles,
                                      bead_diameter=request.bead_diameter, pixel_size=request.pixel_size,
                                      tilt_axis_angle=request.tilt_axis_angle, progress=progress)
        return AlignRun(request=request, alignment=beads.to_alignment(), beads=beads)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", tilt.TiltAxisWarning)  # shown on every run, not once per process
        try:
            alignment = tilt.align_tilt_series(np.asarray(request.tilts, np.float32), request.angles,
                                               pixel_size=request.pixel_size, tilt_axis_angle=request.tilt_axis_angle,
                                               refine_tilt_axis=request.refine_tilt_axis, progress=progress)
        except tilt.ShiftBeyondFieldError as exc:  # the core names its Python function; here the dock's control
            raise exc.with_remedy("gold beads (Align: Method 'Gold beads', with the bead size)") from None
    notes = []
    for w in caught:  # the alignment's own warnings go to the user; other libraries' go on as they came
        if issubclass(w.category, tilt.TiltAxisWarning):
            notes.append(dock_note(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return AlignRun(request=request, alignment=alignment, notes=tuple(notes))


def dock_note(warning: Warning) -> AlignNote:
    """The core's warning in the dock's words: the core's advice names its Python parameter, the dock its
    "Tilt axis" control (:meth:`TiltAxisWarning.worded`, from what the core found, not by editing its text). A
    warning the core cannot word so is shown in its own words, never dropped."""
    kind = getattr(warning, "kind", "unreliable")
    if isinstance(warning, tilt.TiltAxisWarning):
        return AlignNote(kind, warning.worded("Tilt axis", "Set 'Tilt axis' in the Align section"))
    return AlignNote(kind, str(warning))


def _bin_stack(tilts: np.ndarray, factor: int) -> np.ndarray:
    n, h, w = tilts.shape
    h, w = h // factor, w // factor
    return tilts[:, :h * factor, :w * factor].reshape(n, h, factor, w, factor).mean(axis=(2, 4), dtype=np.float32)


def run_reconstruct(request: ReconRequest, progress: ProgressCallback = None) -> Reconstruction:
    """Reconstruct the kept tilts (WBP or SIRT) and the missing wedge of the result (runs in a worker)."""
    keep = np.asarray(request.keep, int)
    if keep.size < 2:
        raise ValueError("keep at least 2 tilts to reconstruct (tick them in the list of tilts).")
    tilts = np.stack([np.asarray(request.tilts[i], np.float32) for i in keep])
    # each tilt about its mean (the vacuum/offset level is no density), dense made bright if asked
    tilts -= tilts.mean(axis=(1, 2), keepdims=True)
    if request.invert:
        tilts = np.negative(tilts, out=tilts)
    angles = np.asarray(request.angles, float)[keep]
    alignment = request.alignment
    if alignment is not None:
        alignment = alignment.without(np.setdiff1d(np.arange(len(request.angles)), keep))
    b = request.binning
    if b > 1:
        tilts = _bin_stack(tilts, b)
        if alignment is not None:
            alignment = replace(alignment, shifts=alignment.shifts / b, shape=tilts.shape[1:],
                                pixel_size=alignment.pixel_size * b)
    report(progress, 0.02)
    ran: dict = {}
    volume = tilt.reconstruct(tilts, angles, alignment=alignment, method=request.method,
                              iterations=request.iterations, thickness=request.thickness,
                              pixel_size=request.voxel_size, info=ran, progress=sub_progress(progress, 0.02, 0.97))
    # central XZ section of the 3D Fourier transform = 2D transform of the projection along Y
    along_y = volume.sum(axis=1, dtype=np.float64)
    # a Hann taper: the box edges of the volume would add streaks along kz and kx of their own
    taper = np.outer(np.hanning(along_y.shape[0]), np.hanning(along_y.shape[1]))
    amplitude = np.abs(np.fft.fftshift(np.fft.fft2((along_y - along_y.mean()) * taper)))
    wedge = np.log1p(amplitude / max(float(np.median(amplitude)), 1e-12)).astype(np.float32)
    nz, _, nx = volume.shape
    spacing = (1.0 / (nz * request.voxel_size), 1.0 / (nx * request.voxel_size))
    report(progress, 1.0)
    return Reconstruction(request=request, volume=volume, contrast_limits=strided_contrast_limits(volume),
                          wedge=wedge, wedge_spacing=spacing, iterations=ran.get("iterations"))


def run_threshold(volume, progress: ProgressCallback = None) -> np.ndarray:
    """A two-phase mask of a reconstruction (uint8, 1 = the brighter phase): Gaussian smoothing of
    one voxel, then Otsu's threshold. A first segmentation to quantify; refine it in Segmentation."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    smooth = ndi.gaussian_filter(np.asarray(volume, np.float32), 1.0)
    report(progress, 0.7)
    if float(smooth.max()) <= float(smooth.min()):
        raise ValueError("the volume is constant: there is nothing to threshold.")
    return (smooth > threshold_otsu(smooth)).astype(np.uint8)


def run_quantify(request: QuantRequest, progress: ProgressCallback = None) -> Quantification:
    """Local thickness, its histogram, porosity and particle-to-support distances (runs in a worker)."""
    mask = np.asarray(request.mask) != 0
    thickness = morph3d.local_thickness(mask, voxel_size=request.voxel_size,
                                        progress=sub_progress(progress, 0.0, 0.85))
    fractions, edges = morph3d.thickness_histogram(thickness, bins=40)
    porosity = morph3d.porosity(mask)
    distances = None
    if request.particles is not None:
        distances = morph3d.particle_support_distances(np.asarray(request.particles), mask,
                                                       voxel_size=request.voxel_size)
    report(progress, 1.0)
    return Quantification(request=request, thickness=thickness, fractions=fractions, edges=edges,
                          porosity=porosity, distances=distances)


# ---------------------------------------------------------------------------------------------
# angles and calibration of a layer
# ---------------------------------------------------------------------------------------------
def angles_of(layer) -> tuple[np.ndarray, str]:
    """The tilt angles of a layer and where they came from: ``metadata["tilt_angles"]``, else the
    ``.tlt``/``.rawtlt``/``.mdoc`` next to the file it was opened from, else that file's extended
    header. Raises ValueError when none is found."""
    meta = getattr(layer, "metadata", {}) or {}
    if meta.get(ANGLES_KEY) is not None:
        return np.asarray(meta[ANGLES_KEY], float), "layer metadata"
    path = getattr(getattr(layer, "source", None), "path", None)
    if path and os.path.isfile(path):
        src = sidecar_angles(path) or path
        try:
            return read_tilt_angles(src), os.path.basename(src)
        except ValueError:
            pass
    raise ValueError(f"No tilt angles for {layer.name!r}: choose a .tlt, .rawtlt or .mdoc file.")


def pixel_size_for(layer) -> float:
    """Å per pixel of a tilt-series layer (its metadata, else its scale)."""
    meta = getattr(layer, "metadata", {}) or {}
    if meta.get("pixel_size_angstrom"):
        return float(meta["pixel_size_angstrom"])
    return pixel_size_of(layer)


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
class TiltModel:
    """State of the tool: the last alignment, which tilts are kept, the last volume and numbers.

    Signals: ``aligned(AlignRun)``, ``kept_changed()``, ``reconstructed(Reconstruction)``,
    ``quantified(Quantification)``.
    """

    aligned = Signal(object)
    kept_changed = Signal()
    reconstructed = Signal(object)
    quantified = Signal(object)

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self.viewer = viewer
        self.run: Optional[AlignRun] = None
        self.kept: Optional[np.ndarray] = None  # bool per tilt of the aligned series
        self.reconstruction: Optional[Reconstruction] = None
        self.quantification: Optional[Quantification] = None

    # -- alignment ---------------------------------------------------------------------------
    def align_request(self, layer, angles, pixel_size: float, *, tilt_axis_angle: Optional[float] = None,
                      refine_tilt_axis: bool = False, bead_diameter: Optional[float] = None) -> AlignRequest:
        layer = self._tilt_layer(layer)
        angles = np.asarray(angles, float)
        if angles.ndim != 1 or angles.size != layer.data.shape[0]:
            raise ValueError(f"{layer.name!r} has {layer.data.shape[0]} tilts but {angles.size} angles were given.")
        if not pixel_size or not np.isfinite(pixel_size) or pixel_size <= 0:
            raise ValueError("The pixel size must be a positive number of Å.")
        if bead_diameter is not None and not (np.isfinite(bead_diameter) and bead_diameter > 0):
            raise ValueError("The bead diameter must be a positive number of Å (e.g. 100 for 10 nm gold).")
        # image_data: a stack of big frames opens as a binned overview; the alignment takes its full resolution
        return AlignRequest(tilts=image_data(layer), angles=angles, pixel_size=float(pixel_size), source_name=layer.name,
                            tilt_axis_angle=tilt_axis_angle, refine_tilt_axis=bool(refine_tilt_axis),
                            bead_diameter=None if bead_diameter is None else float(bead_diameter))

    def accept_alignment(self, run: AlignRun) -> None:
        self.run = run
        self.kept = np.ones(len(run.alignment.angles), bool)
        if run.beads is not None:
            self._show_beads(run)
        else:  # a bead model from an earlier run would no longer describe this alignment
            stale = f"{run.request.source_name} beads"
            if stale in self.viewer.layers:
                self.viewer.layers.remove(stale)
        self._show_aligned(run)
        self.aligned.emit(run)

    def _show_aligned(self, run: AlignRun) -> None:
        """The aligned tilts as a layer to step through before reconstructing, as IMOD's aligned stack (.ali)
        in 3dmod: each tilt shifted and rotated so the tilt axis runs along the image Y axis, centred on the
        raw series. Lazy, one tilt per chunk, computed when napari shows it: a 61 x 4096² series aligned at
        once would hold 4 GB. Shown directly above the raw series; hidden after a bead alignment, whose bead
        model (like 3dmod's fiducial model) marks the raw tilts."""
        import dask
        import dask.array as da

        src = self.viewer.layers[run.request.source_name] if run.request.source_name in self.viewer.layers else None
        if src is None:
            return
        src = real_layer(src)
        alignment, tilts = run.alignment, run.request.tilts
        n, shape = len(alignment.angles), tuple(alignment.aligned_shape)

        def one_tilt(i: int) -> np.ndarray:
            # linear interpolation: for the eye (a 4k² tilt in well under a second); the reconstruction resamples
            # the raw tilts itself
            alone = alignment.without([j for j in range(n) if j != i])
            return alone.apply(np.asarray(tilts[i:i + 1], np.float32), order=1)[0]

        stack = da.stack([da.from_delayed(dask.delayed(one_tilt)(i), shape, np.float32) for i in range(n)])
        scale = tuple(float(v) for v in src.scale[-3:])
        offset = (np.asarray(alignment.shape, float) - np.asarray(shape, float)) / 2 * np.asarray(scale[1:])
        translate = (float(src.translate[-3]), *(float(t) for t in np.asarray(src.translate[-2:]) + offset))
        name = f"{src.name} aligned"
        layer = upsert_layer(self.viewer, stack, name=name, kind="image", scale=scale, translate=translate,
                             units=tuple(src.units[-3:]), axis_labels=tuple(src.axis_labels[-3:]),
                             contrast_limits=tuple(src.contrast_limits), colormap="gray",
                             visible=run.beads is None,
                             metadata={ANGLES_KEY: np.asarray(alignment.angles, float), ALIGNED_KEY: src.name})
        layers = self.viewer.layers
        at, above_source = layers.index(layer), layers.index(src) + 1
        if at > above_source:
            layers.move(at, above_source)

    def _show_beads(self, run: AlignRun) -> None:
        """The bead model over the tilt series, as 3dmod shows a fiducial model: where the fit puts each
        bead on each tilt (points on tilt i are (i, y, x)), with its residual in the features."""
        src = self.viewer.layers[run.request.source_name] if run.request.source_name in self.viewer.layers else None
        if src is None:
            return
        b = run.beads
        tilt_index, bead = np.nonzero(np.isfinite(b.fitted[..., 0]))
        coords = np.column_stack([tilt_index, b.fitted[tilt_index, bead]])
        residual = b.residuals[tilt_index, bead]
        upsert_layer(self.viewer, coords, name=f"{src.name} beads", kind="points", scale=tuple(src.scale),
                     translate=tuple(src.translate), size=max(4.0, 2.0 * run.request.bead_diameter / b.pixel_size),
                     face_color="transparent", border_color="yellow",
                     features={"bead": bead, "residual_px": np.nan_to_num(residual, nan=-1.0)})

    def set_kept(self, index: int, keep: bool) -> None:
        if self.kept is not None and 0 <= index < self.kept.size and self.kept[index] != keep:
            self.kept[index] = bool(keep)
            self.kept_changed.emit()

    def drop_outliers(self, k: float = 3.0) -> list[int]:
        """Untick tilts whose residual is above median + k x 1.4826 x MAD; returns their indices."""
        if self.run is None:
            return []
        r = self.run.alignment.residuals
        known = np.isfinite(r)  # NaN: a tilt on which no bead was found has no measured shift
        med = float(np.median(r[known])) if known.any() else 0.0
        spread = 1.4826 * float(np.median(np.abs(r[known] - med))) if known.any() else 0.0
        spread = spread or 1e-6
        bad = [int(i) for i in np.flatnonzero(~known | (np.where(known, r, 0) > med + k * spread))]
        for i in bad:
            self.kept[i] = False
        self.kept_changed.emit()
        return bad

    # -- reconstruction -----------------------------------------------------------------------
    def recon_request(self, layer, angles, pixel_size: float, *, method: str, iterations: int = 50,
                      thickness: Optional[float] = None, binning: int = 1, invert: bool = False) -> ReconRequest:
        layer = self._tilt_layer(layer)
        angles = np.asarray(angles, float)
        n = layer.data.shape[0]
        if angles.size != n:
            raise ValueError(f"{layer.name!r} has {n} tilts but {angles.size} angles were given.")
        alignment, keep = None, tuple(range(n))
        run = self.run
        if run is not None and run.request.source_name == layer.name and len(run.alignment.angles) == n:
            alignment, keep = run.alignment, tuple(int(i) for i in np.flatnonzero(self.kept))
        if min(layer.data.shape[1:]) // binning < 8:
            raise ValueError(f"Binning {binning} leaves images under 8 pixels; choose a smaller binning.")
        return ReconRequest(tilts=image_data(layer), angles=angles, keep=keep, alignment=alignment, method=method,
                            iterations=int(iterations), thickness=thickness, binning=int(binning),
                            pixel_size=float(pixel_size), source_name=layer.name, invert=bool(invert))

    def accept_reconstruction(self, rec: Reconstruction):
        """Add (or update) the volume layer, calibrated in Å so the tomogram browser can open it."""
        req = rec.request
        v = req.voxel_size
        layer = upsert_layer(
            self.viewer, rec.volume, name=req.layer_name, kind="image", scale=(v, v, v), units=(ANGSTROM,) * 3,
            # a volume's first axis is z: without this the slider kept the tilt series' "tilt" label
            axis_labels=("z", "y", "x"),
            contrast_limits=rec.contrast_limits, colormap="gray",
            metadata={"pixel_size_angstrom": v, "tilt_reconstruction": {
                "method": req.method, "iterations": req.iterations, "binning": req.binning,
                "angles": np.asarray(req.angles)[list(req.keep)].tolist(), "kept": list(req.keep),
                "tilt_axis_angle": None if req.alignment is None else req.alignment.tilt_axis_angle}},
        )
        self.reconstruction = rec
        self.reconstructed.emit(rec)
        return layer

    # -- segmentation and quantification ----------------------------------------------------------
    def accept_mask(self, volume_layer, mask: np.ndarray):
        src = real_layer(volume_layer)
        return upsert_layer(self.viewer, mask, name=f"{src.name} mask", kind="labels",
                            scale=tuple(src.scale), translate=tuple(src.translate), units=tuple(src.units),
                            axis_labels=tuple(src.axis_labels), metadata={"pixel_size_angstrom": float(src.scale[-1])})

    def quant_request(self, mask_layer, particles_layer=None) -> QuantRequest:
        if mask_layer is None:
            raise ValueError("Choose the structure to quantify (a 3D labels layer, e.g. from Otsu mask).")
        mask_layer = real_layer(mask_layer)
        if mask_layer.data.ndim != 3:
            raise ValueError(f"{mask_layer.name!r} is not a volume (Z, Y, X); choose a 3D labels layer.")
        voxel = tuple(pixel_size_of(mask_layer, axis) for axis in (-3, -2, -1))
        particles = None
        if particles_layer is not None:
            particles_layer = real_layer(particles_layer)
            if particles_layer.data.shape != mask_layer.data.shape:
                raise ValueError(f"Particles {particles_layer.name!r} must have the shape of "
                                 f"{mask_layer.name!r} ({mask_layer.data.shape}).")
            particles = particles_layer.data
        return QuantRequest(mask=mask_layer.data, particles=particles, voxel_size=voxel, mask_name=mask_layer.name,
                            particles_name=None if particles_layer is None else particles_layer.name,
                            scale=tuple(mask_layer.scale), translate=tuple(mask_layer.translate))

    def accept_quantification(self, q: Quantification):
        req = q.request
        top = float(q.thickness.max()) or 1.0
        layer = upsert_layer(self.viewer, q.thickness, name=f"{req.mask_name} local thickness", kind="image",
                             scale=req.scale, translate=req.translate, units=(ANGSTROM,) * 3, colormap="turbo",
                             contrast_limits=(0.0, top), opacity=0.7, blending="additive",
                             metadata={"unit": "Å", "pixel_size_angstrom": req.voxel_size[-1]})
        if q.distances is not None and len(q.distances):
            d = q.distances
            centres = np.stack([d["z_A"], d["y_A"], d["x_A"]], axis=1) / np.asarray(req.voxel_size)
            upsert_layer(self.viewer, centres, name=f"{req.particles_name} distance to support", kind="points",
                         scale=req.scale, translate=req.translate, units=(ANGSTROM,) * 3, size=3,
                         features=d.reset_index(drop=True), face_color="yellow")
        self.quantification = q
        self.quantified.emit(q)
        return layer

    @staticmethod
    def _tilt_layer(layer):
        if layer is None:
            raise ValueError("Choose a tilt-series layer (a stack of images, one per tilt).")
        layer = real_layer(layer)
        if layer.data.ndim != 3 or getattr(layer, "rgb", False):
            raise ValueError(f"{layer.name!r} is not a stack of images (tilt, Y, X).")
        return layer
