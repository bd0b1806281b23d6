"""Drift correction without Qt: the worker functions and the tool's state and layers.

The GUI thread turns the chosen layer and the parameters into an :class:`AlignRequest`
(:meth:`DriftModel.request`); a worker runs :func:`run_alignment` on it (pure core calls); the GUI
thread hands the :class:`AlignRun` back to :meth:`DriftModel.accept`, which writes the layers.
The same three steps serve the sum of a frame range (:meth:`DriftModel.sum_request`,
:func:`sum_frames`, :meth:`DriftModel.accept_sum`) and saving (:func:`save_run`).

One Align leaves one aligned stack, one aligned sum (the sum of the chosen frame range; all
frames at first) and, with a dose, one dose-weighted sum; the next Align updates the same layers.
A (T, Z, Y, X) series of volumes (:mod:`._volume`) leaves the aligned series only, with the
source layer's scale and units.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from psygnal import Signal

from napari_cryomat.batch import write_shifts_csv, write_stack_mrc
from napari_cryomat.core import drift as core
from napari_cryomat.core._progress import Cancelled, ProgressCallback, report, sub_progress
from napari_cryomat.core.drift_regions import estimate_roi_drift
from napari_cryomat.core.units import PIXEL
from napari_cryomat.io.mrc import strided_contrast_limits
from napari_cryomat.widgets._base.layers import frame_stack, image_data, pixel_size_of, real_layer, upsert_layer
from napari_cryomat.widgets.drift._run import (
    ANGSTROM,
    DOSE_KEY,
    METHODS,
    AlignParams,
    AlignRequest,
    AlignRun,
    SumRequest,
)
from napari_cryomat.widgets.drift._volume import VolumeRun, check_volume_params, run_volume_alignment

if TYPE_CHECKING:
    import napari

__all__ = ["DriftModel", "run_alignment", "save_run", "sum_frames"]


# ---------------------------------------------------------------------------------------------
# worker functions: pure core calls, no viewer
# ---------------------------------------------------------------------------------------------
def run_alignment(request: AlignRequest, progress: ProgressCallback = None) -> AlignRun | VolumeRun:
    """Everything one Align computes: shifts, aligned stack, sums (with contrast limits), FRC.

    Runs in a worker. Raises ValueError for input the core rejects (shown to the user). A
    (T, Z, Y, X) series of volumes gives a :class:`VolumeRun` (:func:`run_volume_alignment`).
    """
    if np.ndim(request.frames) == 4:
        return run_volume_alignment(request, progress)
    p, frames = request.params, request.frames
    options = dict(pixel_size=p.pixel_size, bfactor=p.bfactor, max_shift=p.max_shift, group=p.group,
                   patches=p.patches, progress=sub_progress(progress, 0.0, 0.6), **METHODS[p.method])
    if p.roi is not None:  # the drift of the region only; the whole frames are then aligned with it
        drift = estimate_roi_drift(frames, p.roi, **options)
    else:
        drift = core.estimate_drift(frames, **options)
    aligned = core.apply_drift(frames, drift.shifts, local=drift.local)
    if hasattr(aligned, "compute"):  # lazy: stream the sum, one frame in memory at a time
        total = core.aligned_sum(frames, drift.shifts, local=drift.local, progress=sub_progress(progress, 0.6, 0.75))
    else:
        total = aligned.sum(0, dtype=np.float32)
        report(progress, 0.75)
    # the aligned frames need no further shift: sums and FRC below use zero shifts
    zero = np.zeros_like(drift.shifts)
    dose_weighted = None
    if p.dose_per_frame:
        dose_weighted = core.dose_weighted_sum(aligned, zero, pixel_size=p.pixel_size,
                                               dose_per_frame=p.dose_per_frame,
                                               progress=sub_progress(progress, 0.75, 0.88))
    frc = core.frc_vs_dose(aligned, zero, pixel_size=p.pixel_size, dose_per_frame=p.dose_per_frame,
                           progress=sub_progress(progress, 0.88, 1.0))
    return AlignRun(request=request, drift=drift, aligned=aligned, total=total,
                    total_limits=strided_contrast_limits(total), dose_weighted=dose_weighted,
                    dose_weighted_limits=None if dose_weighted is None else strided_contrast_limits(dose_weighted),
                    frc=frc)


def sum_frames(request: SumRequest) -> tuple[np.ndarray, tuple[float, float]]:
    """The aligned sum of the requested frames and its contrast limits (runs in a worker)."""
    run, start, stop = request.run, request.start, request.stop
    if start == 0 and stop == run.n_frames:
        return run.total, run.total_limits
    part = run.aligned[start:stop].sum(0, dtype=np.float32)
    if hasattr(part, "compute"):
        part = part.compute()
    part = np.asarray(part, np.float32)
    return part, strided_contrast_limits(part)


def save_run(run: AlignRun, path: str | Path, progress: ProgressCallback = None) -> tuple[Path, Path]:
    """Write ``run``'s aligned stack as MRC (voxel size kept) and its shifts as CSV next to it.

    The viewer shows rows top-down, MRC stores them bottom-up (3dmod's convention, as the plugin's
    MRC writers do). So the stack is written with its rows reversed and the table gives dy along
    the file's rows: both then match what ``cryomat align`` writes for the same movie, and the
    stack opens in IMOD (and here) looking as it did on screen.

    Returns
    -------
    (Path, Path)
        The MRC file (suffix .mrc unless .mrc/.mrcs was given) and ``<stem>_shifts.csv``.
    """
    path = Path(path)
    if path.suffix.lower() not in (".mrc", ".mrcs"):
        path = path.with_suffix(".mrc")
    try:
        write_stack_mrc(path, run.aligned[..., ::-1, :], run.drift.pixel_size, progress=progress)
    except Cancelled:  # no half-written stack left behind
        path.unlink(missing_ok=True)
        raise
    table = path.with_name(path.stem + "_shifts.csv")
    write_shifts_csv(table, dataclasses.replace(run.drift, shifts=run.drift.shifts * np.array([-1.0, 1.0])))
    return path, table


# ---------------------------------------------------------------------------------------------
# state and layers (GUI thread)
# ---------------------------------------------------------------------------------------------
def _set_visible(layer, visible: bool) -> None:
    # napari refreshes a layer made visible even when it already was (a slice and a thumbnail)
    if layer.visible != bool(visible):
        layer.visible = bool(visible)


def _time_calibration(layer) -> tuple[float, str]:
    units = getattr(layer, "units", None)
    return float(layer.scale[0]), (str(units[0]) if units is not None else PIXEL)


class DriftModel:
    """State of the drift tool: the source of the last run, the run, the summed frame range.

    Signals
    -------
    run_changed(AlignRun)
        A new run was accepted and its layers written.
    sum_changed(int, int)
        The aligned sum layer now holds frames ``start:stop``.
    """

    run_changed = Signal(object)
    sum_changed = Signal(int, int)

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self.viewer = viewer
        self.run: Optional[AlignRun] = None
        self.source = None  # the layer the run was computed from
        self.frame_range: tuple[int, int] = (0, 0)
        self._sum_name: Optional[str] = None  # name the aligned-sum layer has now
        self._hidden_by_before: set[int] = set()  # ids of result layers hidden by show_aligned(False)
        self._jobs = itertools.count(1)
        self._pending: dict[int, Any] = {}  # job -> source layer, until accepted

    # -- defaults from a layer ---------------------------------------------------------------
    @staticmethod
    def defaults_for(layer) -> dict:
        """Calibration a layer carries: ``pixel_size`` (Å, if its units are lengths) and
        ``dose_per_frame`` (e/Å², if its metadata say)."""
        out = {}
        try:
            out["pixel_size"] = pixel_size_of(layer)
        except ValueError:  # not a length unit: the user sets the pixel size by hand
            pass
        metadata = getattr(layer, "metadata", None) or {}
        if DOSE_KEY in metadata:
            out["dose_per_frame"] = float(metadata[DOSE_KEY])
        return out

    # -- align ---------------------------------------------------------------------------------
    def request(self, layer, params: AlignParams) -> AlignRequest:
        """The request for aligning ``layer``; ValueError with what to do if it cannot be aligned."""
        if layer is None:
            raise ValueError("Drift correction: open or choose a (T, Y, X) image stack or a (T, Z, Y, X) series first.")
        layer = real_layer(layer)
        if getattr(layer, "rgb", False):
            raise ValueError("Drift correction: this is an RGB image; it needs a grey-level stack of frames.")
        frames = frame_stack(image_data(layer))
        if np.ndim(frames) not in (3, 4):
            raise ValueError(f"Drift correction: {layer.name!r} is not a (T, Y, X) stack or a (T, Z, Y, X) series "
                             "of volumes; choose a stack of frames.")
        if np.ndim(frames) == 4:
            check_volume_params(params)
        time_scale, time_unit = _time_calibration(layer)
        units = getattr(layer, "units", None)
        if params.region is not None:
            params = dataclasses.replace(params, roi=self._region_box(layer, params.region, np.shape(frames)))
        job = next(self._jobs)
        self._pending = {job: layer}  # only the newest request can be accepted
        return AlignRequest(job=job, frames=frames, source_name=layer.name, time_scale=time_scale,
                            time_unit=time_unit, contrast_limits=tuple(layer.contrast_limits), params=params,
                            scale=tuple(float(v) for v in layer.scale),
                            units=() if units is None else tuple(str(u) for u in units))

    def _region_box(self, layer, region: str, shape) -> tuple[int, int, int, int]:
        """Bounding box (y0, y1, x0, x1), px of ``layer``, of the first shape of the Shapes layer ``region``."""
        shapes = self.viewer.layers[region] if region in self.viewer.layers else None
        if shapes is None or not len(getattr(shapes, "data", [])):
            raise ValueError(f"Drift correction: draw a rectangle in the Shapes layer {region!r} around the feature "
                             "to track, or choose the whole frame.")
        world = np.array([shapes.data_to_world(v) for v in np.asarray(shapes.data[0])])
        pix = np.array([layer.world_to_data(np.r_[np.zeros(layer.ndim - w.size), w]
                                            if w.size < layer.ndim else w) for w in world])[:, -2:]
        y0, x0 = np.floor(pix.min(0)).astype(int)
        y1, x1 = np.ceil(pix.max(0)).astype(int)
        y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, shape[1]), min(x1, shape[2])
        if y1 - y0 < 16 or x1 - x0 < 16:
            raise ValueError(f"Drift correction: the region in {region!r} covers {max(y1 - y0, 0)}×{max(x1 - x0, 0)} "
                             "px of the stack; draw it at least 16×16 px (the feature plus its drift).")
        return int(y0), int(y1), int(x0), int(x1)

    def accept(self, run: AlignRun) -> None:
        """Keep ``run`` and write its layers (GUI thread). A run whose request is not the newest is ignored."""
        for _ in self.accept_steps(run):
            pass

    def accept_steps(self, run: AlignRun | VolumeRun) -> Iterator[str]:
        """:meth:`accept` one layer at a time: yields after each layer it writes, so that a view can
        let the event loop turn in between (napari takes about a tenth of a second to add a layer)."""
        source = self._pending.pop(run.request.job, None)
        if source is None:
            return
        names = run.request.names
        previous_sum = self._sum_name if self.run is not None and self.run.request.names == names else None
        self.run, self.source = run, source
        self._write_stack(run)
        _set_visible(source, False)
        yield names.stack
        if isinstance(run, VolumeRun):  # no sums of volumes: the aligned series is the result
            self.frame_range, self._sum_name = (0, run.n_frames), None
            self.show_aligned(True)
            self.run_changed.emit(run)
            return
        if run.dose_weighted is not None:
            px = run.drift.pixel_size
            upsert_layer(self.viewer, run.dose_weighted, name=names.dose_weighted, scale=(px, px),
                         translate=self._yx_origin(), units=(ANGSTROM, ANGSTROM), colormap="gray",
                         contrast_limits=run.dose_weighted_limits, overview=True)
            yield names.dose_weighted
        # the sum last, so on top: a new frame range shows at once
        self.frame_range = (0, run.n_frames)
        self._write_sum(run.total, run.total_limits, 0, run.n_frames, previous_name=previous_sum)
        yield self._sum_name
        self.show_aligned(True)  # layers hidden by "before" come back with the new result
        self.run_changed.emit(run)

    def _write_stack(self, run: AlignRun | VolumeRun) -> None:
        req, source = run.request, self.source
        if isinstance(run, VolumeRun):  # the source's own scale, origin and units on all four axes
            kwargs = dict(units=req.units) if req.units else {}
            if source is not None:
                kwargs["translate"] = tuple(float(t) for t in source.translate)
            upsert_layer(self.viewer, run.aligned, name=req.names.stack, scale=req.scale, colormap="gray",
                         contrast_limits=req.contrast_limits, metadata={"shifts_px": run.shifts,
                                                                        "voxel_size_angstrom": run.voxel_size},
                         **kwargs)
            return
        px = run.drift.pixel_size
        aligned, scale, units = run.aligned, (req.time_scale, px, px), (req.time_unit, ANGSTROM, ANGSTROM)
        translate = (float(source.translate[0]) if source is not None else 0.0, *self._yx_origin())
        if source is not None and source.ndim == 4:  # (T, 1, Y, X) frames beside an SI: keep the singleton axis
            aligned = aligned[:, None]
            scale = (scale[0], float(source.scale[1]), px, px)
            translate = (translate[0], float(source.translate[1]), *translate[1:])
            units = (units[0], str(source.units[1]), *units[1:])
        # overview: 4k frames binned as the reader shows the source, not their aliased pixel noise
        upsert_layer(self.viewer, aligned, name=req.names.stack, scale=scale, translate=translate, units=units,
                     contrast_limits=req.contrast_limits, colormap="gray", overview=True,
                     metadata={"shifts_px": run.drift.shifts, "pixel_size_angstrom": px})

    def _write_sum(self, image, limits, start: int, stop: int, *, previous_name: Optional[str]) -> None:
        run = self.run
        name = run.request.names.partial_sum(start, stop, run.n_frames)
        # the sum layer is renamed with its range: follow it under the name it has now
        layers = self.viewer.layers
        if previous_name and previous_name != name and previous_name in layers and name not in layers:
            layers[previous_name].name = name
        px = run.drift.pixel_size
        upsert_layer(self.viewer, image, name=name, scale=(px, px), translate=self._yx_origin(),
                     units=(ANGSTROM, ANGSTROM), colormap="gray", contrast_limits=limits, overview=True,
                     metadata={"frames": (start, stop)})
        self._sum_name = name

    def _yx_origin(self) -> tuple[float, float]:
        """Where the source's first pixel lies (Å): results are drawn over the source, not beside it (a Velox
        file's images start at their stage offset)."""
        return tuple(float(t) for t in self.source.translate[-2:]) if self.source is not None else (0.0, 0.0)

    # -- sum of a frame range ------------------------------------------------------------------
    def sum_request(self, start: int, stop: int) -> Optional[SumRequest]:
        """The request for the aligned sum of frames ``start:stop``; None if there is no run or the
        range is empty or already shown."""
        if self.run is None or isinstance(self.run, VolumeRun) or not (0 <= start < stop <= self.run.n_frames):
            return None
        if (start, stop) == self.frame_range and self._sum_name in self.viewer.layers:
            return None
        return SumRequest(run=self.run, start=int(start), stop=int(stop))

    def accept_sum(self, request: SumRequest, result: tuple[np.ndarray, tuple[float, float]]) -> None:
        """Show the sum computed for ``request`` (ignored if a newer Align replaced its run)."""
        if request.run is not self.run:
            return
        image, limits = result
        self.frame_range = (request.start, request.stop)
        self._write_sum(image, limits, request.start, request.stop, previous_name=self._sum_name)
        self.sum_changed.emit(request.start, request.stop)

    # -- before / after, save --------------------------------------------------------------------
    def result_layers(self) -> list:
        """The layers of the last run that are in the viewer: stack, dose-weighted sum, sum."""
        if self.run is None:
            return []
        names = self.run.request.names
        return [real_layer(self.viewer.layers[name]) for name in (names.stack, names.dose_weighted, self._sum_name)
                if name and name in self.viewer.layers]

    def show_aligned(self, aligned: bool) -> None:
        """Show the result and hide the source (``aligned``), or show the source alone.

        The sums lie above both stacks, so "before" hides every result layer that is shown and
        "after" brings back those it hid (a layer the user hid stays hidden).
        """
        if self.run is None:
            return
        if aligned:
            for layer in self.result_layers():
                if id(layer) in self._hidden_by_before:
                    _set_visible(layer, True)
            self._hidden_by_before = set()
        else:
            shown = [layer for layer in self.result_layers() if layer.visible]
            self._hidden_by_before |= {id(layer) for layer in shown}
            for layer in shown:
                _set_visible(layer, False)
        if self.source is not None and self.source in self.viewer.layers:
            _set_visible(self.source, not aligned)

    def save(self, path: str | Path, progress: ProgressCallback = None) -> tuple[Path, Path]:
        """Write the last run's aligned stack (MRC) and shifts (CSV); see :func:`save_run`."""
        if self.run is None:
            raise ValueError("Nothing to save yet: run the alignment first.")
        if isinstance(self.run, VolumeRun):
            raise ValueError("Save writes (T, Y, X) stacks as MRC; save a series of volumes with File > Save Selected Layers...")
        return save_run(self.run, path, progress=progress)
