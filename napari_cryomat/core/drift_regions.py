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

from napari_cryomat.core._validate import integer
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


def _projection(volumes, axis):
    """(T, ...) sums over one spatial axis, one volume in memory at a time."""
    out = []
    for i in range(len(volumes)):
        v = volumes[i]
        v = v.compute() if hasattr(v, "compute") else v
        out.append(np.asarray(v, np.float32).sum(axis=axis))
    return np.stack(out)


def estimate_volume_drift(volumes, *, pixel_size: float = 1.0, **kwargs) -> np.ndarray:
    """(T, 3) shifts (dz, dy, dx) in voxels of a (T, Z, Y, X) series of volumes; shifts[0] = 0.

    ``kwargs`` go to :func:`~napari_cryomat.core.drift.estimate_drift` (both projections).
    Each axis needs at least 16 voxels.
    """
    shape = tuple(getattr(volumes, "shape", np.shape(volumes)))
    if len(shape) != 4:
        raise ValueError(f"volumes must be a (T, Z, Y, X) series; got shape {shape}.")
    if min(shape[1:]) < 16 or shape[0] < 2:
        raise ValueError(f"volumes of shape {shape} are too small to align (need 2 volumes of at least 16 voxels "
                         "on each axis).")
    try:
        yx = estimate_drift(_projection(volumes, 0), pixel_size=pixel_size, **kwargs)  # along Z: (T, Y, X)
        zx = estimate_drift(_projection(volumes, 1), pixel_size=pixel_size, **kwargs)  # along Y: (T, Z, X)
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
