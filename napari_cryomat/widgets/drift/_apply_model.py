"""Apply the shifts of the last run to another stack of the same frame count (spectrum-image frames).

No Qt here: :func:`apply_request` checks the chosen layer against the run and builds an
:class:`ApplyRequest`; :func:`apply_shifts` (worker) computes the drift-corrected sum or stack
lazily with :mod:`napari_cryomat.core.drift_apply`; :func:`write_applied` adds the result layer.
The view is :class:`~napari_cryomat.widgets.drift._apply.ApplyPanel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from napari_cryomat.core import drift_apply
from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.widgets._base.layers import image_data, real_layer, upsert_layer

__all__ = ["ApplyRequest", "apply_request", "apply_shifts", "write_applied"]


@dataclass
class ApplyRequest:
    """Everything the worker needs: the target's data, the shifts in its pixels, how to write it."""

    data: Any
    shifts: np.ndarray  # (T, 2) px of the target's last two axes; (T, 3) of its last three for volumes
    summed: bool
    name: str
    scale: tuple
    translate: tuple  # the target's origin: a Velox SI's energy offset and its frame's place beside the HAADF
    units: Optional[tuple]
    metadata: dict


def apply_request(run, layer, *, summed: bool = True) -> ApplyRequest:
    """The request to apply ``run``'s shifts to ``layer``; ValueError saying what does not match.

    The frame axis is the layer's first axis, the spatial axes its last two (napari shows a
    spectrum image as (T, E, Y, X)), or its last three for the (dz, dy, dx) of a series of volumes.
    A target binned relative to the aligned frames gets the shifts scaled by the ratio of the sizes.
    """
    if run is None:
        raise ValueError("Apply shifts: align a stack first; its shifts are then applied to the chosen layer.")
    if layer is None:
        raise ValueError("Apply shifts: choose the layer to apply the shifts to.")
    layer = real_layer(layer)
    data = image_data(layer)
    shape = tuple(np.shape(data))
    k = run.shifts.shape[1]  # spatial axes: 2, or 3 for volumes
    if len(shape) < k + 1 or shape[0] != run.n_frames:
        raise ValueError(f"Apply shifts: {layer.name!r} has shape {shape}; it needs {run.n_frames} frames along "
                         f"its first axis and {k} spatial axes, like the aligned {'series' if k == 3 else 'stack'}.")
    ratio = np.asarray(shape[-k:], float) / np.asarray(run.aligned.shape[-k:], float)
    shifts = run.shifts * ratio[None, :]
    scale = tuple(layer.scale[1:]) if summed else tuple(layer.scale)
    translate = tuple(layer.translate[1:]) if summed else tuple(layer.translate)
    units = getattr(layer, "units", None)
    units = None if units is None else tuple(str(u) for u in (units[1:] if summed else units))
    suffix = "drift-corrected sum" if summed else "drift-corrected"
    metadata = {k: v for k, v in (layer.metadata or {}).items()}
    metadata["shifts_px"] = shifts
    if summed and isinstance(metadata.get("spectrum_image"), dict):  # the sum is one spectrum image, no frames
        metadata["spectrum_image"] = {k: v for k, v in metadata["spectrum_image"].items() if k != "frames"}
    return ApplyRequest(data=data, shifts=shifts, summed=summed, name=f"{layer.name} {suffix}", scale=scale,
                        translate=translate, units=units, metadata=metadata)


def apply_shifts(request: ApplyRequest, progress: ProgressCallback = None):
    """Worker: the drift-corrected sum (computed, frame by frame) or the lazy aligned stack."""
    k = request.shifts.shape[1]
    spatial = tuple(range(-k, 0))
    if request.summed:
        total = drift_apply.aligned_sum_lazy(request.data, request.shifts, frame_axis=0, spatial_axes=spatial)
        out = np.asarray(total.compute(), np.float32)
    else:
        out = drift_apply.apply_shifts_lazy(request.data, request.shifts, frame_axis=0, spatial_axes=spatial)
    report(progress, 1.0)
    return request, out


def write_applied(viewer, result) -> Any:
    """GUI thread: add (or update) the result layer."""
    request, data = result
    kwargs = dict(scale=request.scale, translate=request.translate, metadata=request.metadata, colormap="gray")
    if request.units is not None:
        kwargs["units"] = request.units
    # overview: big frames (or their sum) binned as the reader shows them; a spectrum image is left as it is
    return upsert_layer(viewer, data, name=request.name, overview=True, **kwargs)


