"""Drift of a (T, Z, Y, X) time series of volumes: the worker and what one run keeps. No Qt.

The core does the work: :func:`~napari_cryomat.core.drift_regions.estimate_volume_drift` gives
(dz, dy, dx) per volume from the projections along Z and Y (unit-cell safe, motion prior), and
:func:`~napari_cryomat.core.drift_apply.apply_shifts_lazy` moves each volume back (linear, periodic
edges, counts conserved). A lazy source (dask, memory map) gives a lazy aligned series, computed
volume by volume when napari shows it; an in-memory source is aligned here, volume by volume, so
Cancel stops it between volumes. Dose weighting, local motion, region tracking, FRC and the
frame-range sums are for (T, Y, X) stacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_cryomat.core import drift_apply
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core.drift_regions import estimate_volume_drift
from napari_cryomat.widgets.drift._run import METHODS, AlignRequest

__all__ = ["VolumeRun", "check_volume_params", "run_volume_alignment"]

AXES = ("dz", "dy", "dx")


@dataclass(frozen=True)
class VolumeRun:
    """The result of aligning a series of volumes, with the request it was computed from."""

    request: AlignRequest
    shifts: np.ndarray  # (T, 3) voxels, (dz, dy, dx); shifts[0] = 0
    voxel_size: tuple[float, float, float]  # Å (z, y, x)
    aligned: Any  # (T, Z, Y, X) float32, numpy (or lazy dask for lazy input)

    @property
    def params(self):
        return self.request.params

    @property
    def n_frames(self) -> int:
        return int(self.shifts.shape[0])

    @property
    def shifts_angstrom(self) -> np.ndarray:
        return self.shifts * np.asarray(self.voxel_size)[None, :]

    def summary(self) -> str:
        total = np.abs(self.shifts_angstrom[-1] - self.shifts_angstrom[0])
        largest = np.abs(self.shifts_angstrom).max(0)
        lazy = " (lazy: computed as shown)" if hasattr(self.aligned, "compute") else ""
        return (f"{self.request.source_name}: {self.n_frames} volumes{lazy}; drift first to last "
                + ", ".join(f"{a} {v:.1f}" for a, v in zip(AXES, total)) + " Å; largest "
                + ", ".join(f"{a} {v:.1f}" for a, v in zip(AXES, largest)) + " Å")


def check_volume_params(params) -> None:
    """ValueError naming the control that (T, Z, Y, X) series do not support."""
    if params.patches is not None:
        raise ValueError("Drift correction: local motion (patches) works on (T, Y, X) stacks only; set Local motion "
                         "to 'Global only' for a series of volumes.")
    if params.region is not None:
        raise ValueError("Drift correction: 'Track a region' works on (T, Y, X) stacks only; uncheck it for a "
                         "series of volumes.")


def run_volume_alignment(request: AlignRequest, progress: ProgressCallback = None) -> VolumeRun:
    """Worker: (dz, dy, dx) per volume and the aligned series. ValueError for input the core rejects."""
    p, volumes = request.params, request.frames
    check_volume_params(p)
    z_ratio = float(request.scale[-3]) / float(request.scale[-1]) if len(request.scale) == 4 else 1.0
    voxel = (p.pixel_size * z_ratio, p.pixel_size, p.pixel_size)
    report(progress, 0.0)
    shifts = estimate_volume_drift(volumes, pixel_size=p.pixel_size, bfactor=p.bfactor, max_shift=p.max_shift,
                                   group=p.group, progress=sub_progress(progress, 0.0, 0.7),
                                   **METHODS[p.method])
    aligned = drift_apply.apply_shifts_lazy(volumes, shifts, frame_axis=0, spatial_axes=(1, 2, 3))
    if isinstance(volumes, np.ndarray) and not isinstance(volumes, np.memmap):  # in memory: align it now
        out = np.empty(aligned.shape, np.float32)
        for i in range(out.shape[0]):
            out[i] = aligned[i].compute()
            report(progress, 0.7 + 0.3 * (i + 1) / out.shape[0])
        aligned = out
    report(progress, 1.0)
    return VolumeRun(request=request, shifts=np.asarray(shifts, float), voxel_size=voxel, aligned=aligned)
