"""Drift of a region of interest and of a time series of volumes, with the whole-frame engine.

- :func:`estimate_roi_drift`: the drift of a user-drawn rectangle only (a particle, a grain, a
  feature that moves differently from the rest of the field): the frames are cropped lazily to
  the rectangle and aligned there, so the rest of the field does not pull the estimate.
- :func:`estimate_volume_drift`: a (T, Z, Y, X) series of volumes (in-situ tomography, 4D
  STEM-depth series): (dy, dx) from the projections along Z and (dz, dx) from the projections
  along Y, each aligned with :func:`~napari_cryomat.core.drift.estimate_drift` (unit-cell safe,
  motion prior), dx the precision-weighted mean of the two. Apply the result with
  :func:`~napari_cryomat.core.drift_apply.apply_shifts_lazy` and three ``spatial_axes``.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core._validate import integer, positive
from napari_cryomat.core.drift import DriftResult, estimate_drift

__all__ = ["estimate_roi_drift", "estimate_volume_drift"]


def estimate_roi_drift(frames, roi, **kwargs) -> DriftResult:
    """Drift of the content inside ``roi`` = (y0, y1, x0, x1) (px, end exclusive) of a (T, Y, X) stack.

    The frames are cropped (a view, or lazily for dask) and passed to
    :func:`~napari_cryomat.core.drift.estimate_drift` with ``kwargs``. The rectangle must be at
    least 16 px on each side; choose it a little larger than the feature plus its drift.
    """
    shape = tuple(getattr(frames, "shape", np.shape(frames)))
    if len(shape) != 3:
        raise ValueError(f"frames must be a (T, Y, X) stack; got shape {shape}.")
    vals = np.asarray(roi, dtype=object).ravel()
    if vals.size != 4:
        raise ValueError(f"roi must be (y0, y1, x0, x1) in px; got {roi!r}.")
    y0 = integer(vals[0], "roi", low=0, high=shape[1] - 16)
    y1 = integer(vals[1], "roi", low=y0 + 16, high=shape[1])
    x0 = integer(vals[2], "roi", low=0, high=shape[2] - 16)
    x1 = integer(vals[3], "roi", low=x0 + 16, high=shape[2])
    return estimate_drift(frames[:, y0:y1, x0:x1], **kwargs)


def _projections(volumes, progress: ProgressCallback = None) -> tuple[np.ndarray, np.ndarray]:
    """(T, Y, X) sums along Z and (T, Z, X) sums along Y, reading each volume once (a lazy one is
    computed volume by volume, so the series never sits in memory whole)."""
    along_z, along_y = [], []
    for i in range(len(volumes)):
        v = volumes[i]
        v = np.asarray(v.compute() if hasattr(v, "compute") else v, np.float32)
        along_z.append(v.sum(axis=0))
        along_y.append(v.sum(axis=1))
        report(progress, (i + 1) / len(volumes))
    return np.stack(along_z), np.stack(along_y)


def estimate_volume_drift(volumes, *, pixel_size: float = 1.0, progress: ProgressCallback = None,
                          **kwargs) -> np.ndarray:
    """(T, 3) shifts (dz, dy, dx) in voxels of a (T, Z, Y, X) series of volumes; shifts[0] = 0.

    ``kwargs`` go to :func:`~napari_cryomat.core.drift.estimate_drift` (both projections).
    Each axis needs at least 16 voxels. ``progress`` runs once from 0 to 1 over reading the volumes
    (each once) and the two alignments; a :class:`~napari_cryomat.core._progress.Cancelled` it raises
    goes through.
    """
    shape = tuple(getattr(volumes, "shape", np.shape(volumes)))
    if len(shape) != 4:
        raise ValueError(f"volumes must be a (T, Z, Y, X) series; got shape {shape}.")
    if min(shape[1:]) < 16 or shape[0] < 2:
        raise ValueError(f"volumes of shape {shape} are too small to align (need 2 volumes of at least 16 voxels "
                         "on each axis).")
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    along_z, along_y = _projections(volumes, sub_progress(progress, 0.0, 0.2))
    try:
        yx = estimate_drift(along_z, pixel_size=pixel_size, progress=sub_progress(progress, 0.2, 0.6), **kwargs)
        zx = estimate_drift(along_y, pixel_size=pixel_size, progress=sub_progress(progress, 0.6, 1.0), **kwargs)
    except ValueError as exc:
        text = str(exc)
        if not any(name in text for name in ("pixel_size", *kwargs)):
            text = "volumes: " + text.replace("Frame", "volume").replace("frame", "volume")
        raise ValueError(text) from None
    # dx is measured twice: weight each by its pairwise quality (significance squared)
    wa, wb = max(yx.quality, 1e-3) ** 2, max(zx.quality, 1e-3) ** 2
    dx = (wa * yx.shifts[:, 1] + wb * zx.shifts[:, 1]) / (wa + wb)
    out = np.stack([zx.shifts[:, 0], yx.shifts[:, 0], dx], axis=1)
    return out - out[0]
