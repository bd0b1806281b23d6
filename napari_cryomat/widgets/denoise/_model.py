"""Denoise tool without Qt: requests, the worker functions, and the layers it writes.

Two kinds of work, both in workers:

- a *preview*: the chosen layer's current 2D slice cropped to the view (at most ``PREVIEW_SIDE``²
  pixels around the view's centre), denoised with the current settings; the result goes to one
  preview layer on top of the raw crop. Calibration curves come with it.
- an *apply*: the whole layer (every frame of a stack) denoised into a new layer
  ``"<name> denoised"``, frames read one at a time. The raw layer is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from psygnal import Signal

from napari_cryomat.core import denoise as core
from napari_cryomat.core._progress import ProgressCallback
from napari_cryomat.core._validate import memory_budget
from napari_cryomat.widgets._base.layers import HELPER_KEY, camera_of, image_data, real_layer, upsert_layer

if TYPE_CHECKING:
    import napari

__all__ = ["ApplyRequest", "DenoiseModel", "DenoiseParams", "PreviewRequest", "run_apply", "run_preview"]

PREVIEW_SIDE = 384
DESTRIPE = {"off": False, "auto": "auto", "rows": "rows", "columns": "columns", "both": "both"}


@dataclass(frozen=True)
class DenoiseParams:
    """What the form says: method, optional manual strength, destriping."""

    method: str = "auto"
    strength: Optional[float] = None
    destripe: str = "off"

    def kwargs(self) -> dict:
        out = {"method": self.method, "destripe": DESTRIPE[self.destripe]}
        if self.strength is not None and self.method != "auto":
            out["strength"] = float(self.strength)
        return out


@dataclass(frozen=True)
class PreviewRequest:
    crop: np.ndarray            # raw pixels of the crop (Y, X)
    origin: tuple               # (row, col) of the crop in the 2D slice, pixels
    source: str                 # layer name
    params: DenoiseParams
    placement: dict = field(default_factory=dict)  # scale/translate/units of the preview layer


@dataclass(frozen=True)
class ApplyRequest:
    data: Any                   # the layer's full data (numpy or dask), read lazily by the worker
    source: str
    params: DenoiseParams
    layer_kwargs: dict


def run_preview(request: PreviewRequest, progress: ProgressCallback = None) -> core.DenoiseResult:
    """Denoise the preview crop (worker)."""
    return core.denoise(request.crop, progress=progress, **request.params.kwargs())


def run_apply(request: ApplyRequest, progress: ProgressCallback = None) -> core.DenoiseResult:
    """Denoise the whole layer, frame by frame for a stack (worker). A stack whose result would not
    fit in memory becomes a lazy layer instead: each frame is denoised when napari shows it."""
    data = request.data
    too_big = np.ndim(data) == 3 and 4.0 * np.prod(np.shape(data)) > memory_budget() / 2
    return core.denoise(data, lazy=too_big, progress=progress, **request.params.kwargs())


def _grey_2d_data(layer):
    if layer is None:
        raise ValueError("Denoise: open or choose an image layer first.")
    layer = real_layer(layer)
    if getattr(layer, "rgb", False):
        raise ValueError(f"Denoise: {layer.name!r} is an RGB image; choose a grey-level image.")
    data = image_data(layer)
    if np.ndim(data) < 2:
        raise ValueError(f"Denoise: {layer.name!r} is not an image.")
    return layer, data


class DenoiseModel:
    """State of the Denoise tool: the last preview and the last applied result.

    Signals
    -------
    preview_changed(DenoiseResult)
    applied(DenoiseResult, str)
        A whole layer was denoised into the layer of that name.
    """

    preview_changed = Signal(object)
    applied = Signal(object, str)

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self.viewer = viewer
        self.preview: Optional[core.DenoiseResult] = None
        self.result: Optional[core.DenoiseResult] = None
        self.result_layer: Optional[str] = None

    @staticmethod
    def preview_name(source: str) -> str:
        return f"{source} denoise preview"

    @staticmethod
    def result_name(source: str) -> str:
        return f"{source} denoised"

    # -- preview -------------------------------------------------------------------------------
    def preview_request(self, layer, params: DenoiseParams, centre: Optional[tuple] = None) -> PreviewRequest:
        """The crop of ``layer``'s current slice around ``centre`` (data row, col; default the view's
        centre) to preview; ValueError with what to do if there is nothing to denoise."""
        layer, data = _grey_2d_data(layer)
        plane = self._current_plane(layer, data)
        ny, nx = plane.shape[-2:]
        if min(ny, nx) < 16:
            raise ValueError(f"Denoise: {layer.name!r} is too small ({ny} x {nx}) to preview.")
        cy, cx = centre if centre is not None else self._view_centre(layer)
        side = min(PREVIEW_SIDE, ny, nx)
        y0 = int(np.clip(round(cy - side / 2), 0, ny - side))
        x0 = int(np.clip(round(cx - side / 2), 0, nx - side))
        crop = np.asarray(plane[y0:y0 + side, x0:x0 + side], np.float32)
        scale = tuple(layer.scale[-2:])
        translate = (layer.translate[-2] + y0 * scale[0], layer.translate[-1] + x0 * scale[1])
        units = tuple(str(u) for u in layer.units[-2:]) if getattr(layer, "units", None) is not None else None
        placement = {"scale": scale, "translate": translate}
        if units:
            placement["units"] = units
        return PreviewRequest(crop, (y0, x0), layer.name, params, placement)

    def _current_plane(self, layer, data):
        if np.ndim(data) == 2:
            return data
        step = self.viewer.dims.current_step
        lead = tuple(int(np.clip(step[i - np.ndim(data) + len(step)], 0, data.shape[i] - 1))
                     for i in range(np.ndim(data) - 2))
        return data[lead]

    def _view_centre(self, layer) -> tuple:
        centre = np.asarray(camera_of(self.viewer).center)[-2:]
        data = layer.world_to_data(tuple(np.r_[np.zeros(layer.ndim - 2), centre]))
        return float(data[-2]), float(data[-1])

    def accept_preview(self, request: PreviewRequest, result: core.DenoiseResult) -> None:
        """Show the preview over the raw crop (GUI thread)."""
        self.preview = result
        source = self.viewer.layers[request.source] if request.source in self.viewer.layers else None
        limits = tuple(source.contrast_limits) if source is not None else None
        kwargs = dict(request.placement, colormap="gray", metadata={HELPER_KEY: True, "denoise": result.describe()},
                      blending="translucent_no_depth")
        if limits and limits[1] > limits[0]:
            kwargs["contrast_limits"] = _limits(result.image, limits)
        # napari selects a layer it adds; the preview must not take the selection from the user's layer
        active = self.viewer.layers.selection.active
        upsert_layer(self.viewer, result.image, name=self.preview_name(request.source), **kwargs)
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active
        self.preview_changed.emit(result)

    def remove_preview(self, source: Optional[str] = None) -> None:
        for layer in list(self.viewer.layers):
            if layer.name.endswith(" denoise preview") and (source is None or layer.name == self.preview_name(source)):
                self.viewer.layers.remove(layer)

    # -- apply ---------------------------------------------------------------------------------
    def apply_request(self, layer, params: DenoiseParams) -> ApplyRequest:
        layer, data = _grey_2d_data(layer)
        kwargs = {"scale": tuple(layer.scale), "translate": tuple(layer.translate), "colormap": "gray"}
        if getattr(layer, "units", None) is not None:
            kwargs["units"] = tuple(str(u) for u in layer.units)
        metadata = {k: v for k, v in (layer.metadata or {}).items() if k == "pixel_size_angstrom"}
        kwargs["metadata"] = metadata
        return ApplyRequest(data, layer.name, params, kwargs)

    def accept_apply(self, request: ApplyRequest, result: core.DenoiseResult) -> str:
        """Write the denoised layer next to the raw one (GUI thread); returns its name."""
        name = self.result_name(request.source)
        kwargs = dict(request.layer_kwargs)
        kwargs["metadata"] = dict(kwargs.get("metadata", {}), denoise=result.describe(),
                                  denoise_parts=[list(p) for p in result.parts])
        # overview: a denoised 4k micrograph binned as the reader shows the raw one, not its aliased pixels
        upsert_layer(self.viewer, result.image, name=name, contrast_limits=_limits(result.image, None), overview=True,
                     **kwargs)
        self.remove_preview(request.source)
        self.result, self.result_layer = result, name
        self.applied.emit(result, name)
        return name

    def show_before(self, before: bool) -> None:
        """Before/after: hide the denoised layer (and preview) to see the raw data, or show it."""
        names = [self.result_layer] if self.result_layer else []
        names += [layer.name for layer in self.viewer.layers if layer.name.endswith(" denoise preview")]
        for name in names:
            if name in self.viewer.layers:
                self.viewer.layers[name].visible = not before


def _limits(image, fallback) -> tuple:
    """Contrast limits from a strided sample (the middle frame of a stack)."""
    plane = np.asarray(image[image.shape[0] // 2] if image.ndim == 3 else image)
    step = max(1, max(plane.shape) // 512)
    lo, hi = (float(v) for v in np.percentile(plane[::step, ::step], (0.5, 99.5)))
    if not hi > lo:
        return fallback or (lo, lo + 1.0)
    return lo, hi
