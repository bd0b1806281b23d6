"""What napari shows of the browsed tomogram: the lazily binned / low-passed display layer, the slab
as napari's thick slicing, the contrast shared with the orthogonal views, and 3D rendering.

:class:`DisplayLayers` is part of :class:`~napari_cryomat.widgets.browser._model.BrowserModel`
(``model.display``); it reads the model's parameters and emits the model's signals. No Qt widgets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_cryomat.core import tomo as core_tomo
from napari_cryomat.widgets._base.layers import upsert_layer

if TYPE_CHECKING:
    from napari_cryomat.widgets.browser._model import BrowserModel

__all__ = [
    "BINNINGS", "RENDERINGS", "ContrastJob", "DisplayJob", "DisplayLayers", "compute_contrast", "compute_display",
    "is_browsable",
]

BINNINGS = (1, 2, 4, 8)
RENDERINGS = {"volume (MIP)": "mip", "volume (attenuated MIP)": "attenuated_mip", "isosurface": "iso"}
MAX_3D_VOXELS = 1 << 25  # auto-binning above this when switching to 3D (128 MB of float32)
DERIVED_KEY = "tomo_browser_source"  # metadata of our binned / low-passed display layer
# A binned / low-passed display volume up to this size is computed in a worker and shown from memory:
# napari slices a lazy (dask) layer on the GUI thread, at every Z step and slab change. Bigger ones
# stay lazy (the user sees them at once, each section read as it is shown).
MAX_IN_MEMORY_BYTES = 1 << 30


def is_browsable(layer) -> bool:
    """Image layers the browser offers: not our own derived (binned / low-passed) display layers."""
    return DERIVED_KEY not in getattr(layer, "metadata", {})


@dataclass(frozen=True)
class ContrastJob:
    """What a contrast preset reads, gathered on the GUI thread (see :func:`compute_contrast`)."""

    data: Any  # the displayed volume (lazy or in memory)
    index: int  # central Z slice of the slab, in the displayed volume's voxels
    thickness: int  # slab thickness in the displayed volume's slices
    percentiles: tuple[float, float]


def compute_contrast(job: ContrastJob, *, progress=None) -> tuple[float, float]:
    """Display limits from percentiles of the visible slab (strided subsample). Worker-safe."""
    return core_tomo.slab_contrast(job.data, job.index, thickness=job.thickness, percentiles=job.percentiles)


@dataclass(frozen=True)
class DisplayJob:
    """A binned / low-passed display volume to compute in a worker (see :func:`compute_display`)."""

    source: Any  # the browsed layer it was made from
    binning: int
    sigma_angstrom: float
    data: Any  # the lazy display volume


def compute_display(job: DisplayJob, *, progress=None) -> np.ndarray:
    """The display volume in memory (float32), section by section. Worker-safe."""
    return core_tomo.compute_slices(job.data, progress=progress)


class DisplayLayers:
    """The display layer (source or derived), its contrast and its 3D rendering."""

    def __init__(self, model: "BrowserModel"):
        self.model = model
        self.viewer = model.viewer
        self.derived = None  # our binned / low-passed display layer, or None
        self.levels: tuple[float, float] | None = None  # shared by napari and the orthogonal views
        self.rendering = next(iter(RENDERINGS))
        self.max_3d_voxels = MAX_3D_VOXELS
        self.max_in_memory_bytes = MAX_IN_MEMORY_BYTES
        self._computed = None  # (source, binning, σ, array): the display volume held in memory

    @property
    def layer(self):
        """The layer napari shows: the derived layer, or the source itself."""
        return self.derived if self.derived is not None else self.model.source

    def set_source(self, layer) -> None:
        """Leave the old source as it was; take the new one's contrast and show its slab mean."""
        self.drop_derived()
        self._computed = None
        self.watch_contrast(self.model.source, False)
        if layer is not None:
            self.levels = tuple(float(v) for v in layer.contrast_limits)
            self.watch_contrast(layer, True)
            layer.projection_mode = "mean"  # napari's thick slicing shows the slab's mean

    def forget(self, layer) -> bool:
        """``layer`` left the viewer; True if it was the derived layer (the source is shown again)."""
        if layer is not self.derived:
            return False
        self.watch_contrast(layer, False)
        self.derived, self._computed = None, None
        source = self.model.source
        if source is not None and source in self.viewer.layers:
            source.visible = True
        return True

    # ----------------------------------------------------------------------- derived layer ----
    def lazy_volume(self, binning: int, sigma_angstrom: float):
        """The lazy display volume for ``binning`` and low-pass σ (Å), or None (the source as it is).
        ValueError if the volume is too small to bin."""
        model = self.model
        if binning == 1 and sigma_angstrom == 0:
            return None
        data = core_tomo.bin_volume(model.source.data, binning)
        if sigma_angstrom > 0:
            vs = model.voxel_size * binning
            data = core_tomo.lowpass_slices(data, sigma_A=sigma_angstrom, pixel_size_A=(vs[1], vs[2]))
        return data

    def display_job(self, binning: int, sigma_angstrom: float) -> DisplayJob | None:
        """What a worker computes before napari shows ``binning`` and σ, or None when there is
        nothing to compute: the source as it is, the volume already in memory, or one too big to
        hold (shown lazily). ValueError (naming the binning) when the volume is too small."""
        model = self.model
        model.require_source()
        data = self.lazy_volume(int(binning), float(sigma_angstrom))
        if data is None or self._held(binning, sigma_angstrom) is not None:
            return None
        if float(np.prod(data.shape)) * 4 > self.max_in_memory_bytes:
            return None
        return DisplayJob(model.source, int(binning), float(sigma_angstrom), data)

    def _held(self, binning, sigma_angstrom):
        held = self._computed
        if held is not None and held[0] is self.model.source and held[1:3] == (binning, sigma_angstrom):
            return held[3]
        return None

    def apply(self, volume: np.ndarray | None = None) -> None:
        """Show the model's binning and low-pass as a derived layer (``volume`` when computed for
        them, else the one held in memory, else lazily) and the slab as napari's thick slicing
        (mean over the slab). ValueError if the volume is too small to bin."""
        model = self.model
        if model.source is None:
            return
        f, sigma = model.binning, model.sigma_angstrom
        if f == 1 and sigma == 0:
            self.drop_derived()
        else:
            if volume is not None:
                self._computed = (model.source, f, sigma, volume)
            data = self._held(f, sigma)
            self._show_derived(self.lazy_volume(f, sigma) if data is None else data)
        self._apply_slab()

    def derived_name(self) -> str:
        """E.g. "tomo [2x, σ 8 Å]": the source and what was done to it."""
        model = self.model
        parts = ([f"{model.binning}x"] if model.binning > 1 else []) + (
            [f"σ {model.sigma_angstrom:g} Å"] if model.sigma_angstrom > 0 else [])
        return f"{model.source.name} [{', '.join(parts)}]"

    def _show_derived(self, data) -> None:
        model, src, name = self.model, self.model.source, self.derived_name()
        fresh = self.derived is None or self.derived not in self.viewer.layers
        if not fresh and self.derived.name != name:
            self.derived.name = name  # so that upsert updates it in place
        scale, translate = core_tomo.binned_scale_translate(src.scale[-3:], src.translate[-3:], model.binning)
        self.derived = upsert_layer(
            self.viewer, data, name=name, scale=scale, translate=translate, units=model.units(3),
            colormap=src.colormap.name, contrast_limits=self.levels, projection_mode="mean",
            rendering=RENDERINGS[self.rendering],
            metadata={DERIVED_KEY: src.name, "binning": model.binning, "lowpass_sigma_angstrom": model.sigma_angstrom},
        )
        if fresh:
            self.watch_contrast(self.derived, True)
            layers = self.viewer.layers  # just above the source, so picks and distances stay on top
            layers.move(layers.index(self.derived), layers.index(src) + 1)
            src.visible = False
            layers.selection.active = self.derived

    def drop_derived(self) -> None:
        """Remove the derived layer and show the source again."""
        derived, self.derived, self._computed = self.derived, None, None
        source = self.model.source
        if source is not None and source in self.viewer.layers:
            source.visible = True
        if derived is not None:
            self.watch_contrast(derived, False)
            if derived in self.viewer.layers:
                self.viewer.layers.remove(derived)

    def _apply_slab(self) -> None:
        """napari's thick slicing: the mean over the slab around the current Z (world units)."""
        dims = self.viewer.dims
        axis, n = dims.ndim - 3, self.model.thickness_slices()
        vz = float(self.model.source.scale[-3])
        left, right = list(dims.margin_left), list(dims.margin_right)
        left[axis], right[axis] = (n - 1) // 2 * vz, n // 2 * vz
        left, right = tuple(left), tuple(right)
        if left != tuple(dims.margin_left) and right != tuple(dims.margin_right):
            # Both change: re-slice once, not twice (a 2048² slab mean is tens of ms). Whoever
            # listens to the margins (the viewer, the dims sliders) reads both on margin_right.
            with dims.events.margin_left.blocker():
                dims.margin_left = left
        dims.margin_left, dims.margin_right = left, right

    # ---------------------------------------------------------------------------- contrast ----
    def contrast_job(self, percentiles=(0.5, 99.5)) -> ContrastJob:
        """What :func:`compute_contrast` reads for the visible slab; ValueError without a tomogram."""
        model = self.model
        model.require_source()
        f = model.binning if self.derived is not None else 1
        n = max(1, int(round(model.thickness_slices() / f)))
        return ContrastJob(self.layer.data, int(model.cursor[0]) // f, n, tuple(percentiles))

    def set_levels(self, levels) -> None:
        """Display limits (lo, hi) on the shown layer and the source (their ranges widened to fit)."""
        lo, hi = (float(v) for v in levels)
        self.levels = (lo, hi)
        for layer in {id(layer): layer for layer in (self.layer, self.model.source)}.values():
            rng = layer.contrast_limits_range
            layer.contrast_limits_range = (min(rng[0], lo), max(rng[1], hi))
            layer.contrast_limits = (lo, hi)
        self.model.levels_changed.emit(self.levels)

    def apply_contrast(self, percentiles=(0.5, 99.5)) -> tuple[float, float]:
        """Percentile contrast of the visible slab, computed here (scripts; the view uses a worker)."""
        levels = compute_contrast(self.contrast_job(percentiles))
        self.set_levels(levels)
        return levels

    def watch_contrast(self, layer, on: bool) -> None:
        if layer is None:
            return
        if on:
            layer.events.contrast_limits.connect(self._on_layer_contrast)
        else:
            layer.events.contrast_limits.disconnect(self._on_layer_contrast)

    def _on_layer_contrast(self, event=None) -> None:
        """napari's contrast slider moved on the shown layer: the orthogonal views follow."""
        shown = self.layer
        if shown is None or (event is not None and getattr(event, "source", shown) is not shown):
            return
        self.levels = tuple(float(v) for v in shown.contrast_limits)
        self.model.levels_changed.emit(self.levels)

    # ---------------------------------------------------------------------------------- 3D ----
    def binning_for_3d(self) -> int | None:
        """The binning that keeps a 3D rendering under ``max_3d_voxels``; None if the current one does."""
        nvox = float(math.prod(self.model.source.data.shape))
        if nvox / self.model.binning**3 <= self.max_3d_voxels:
            return None
        return next((b for b in BINNINGS if nvox / b**3 <= self.max_3d_voxels), BINNINGS[-1])

    def volume_to_compute(self, binning: int, sigma_angstrom: float):
        """The lazy display volume for ``binning`` and σ that napari would compute on the GUI thread
        to render it in 3D, or None: the source itself, or a volume already in memory."""
        if self._held(binning, sigma_angstrom) is not None:
            return None
        return self.lazy_volume(binning, sigma_angstrom)

    def set_3d(self, on: bool) -> None:
        self.viewer.dims.ndisplay = 3 if on else 2
        self.set_rendering(self.rendering)

    def set_rendering(self, name: str) -> None:
        """3D rendering by its label in :data:`RENDERINGS`; an isosurface starts at 60 % of the contrast."""
        self.rendering = name
        shown = self.layer
        if shown is None:
            return
        shown.rendering = RENDERINGS[name]
        if shown.rendering == "iso":
            lo, hi = shown.contrast_limits
            shown.iso_threshold = lo + 0.6 * (hi - lo)
