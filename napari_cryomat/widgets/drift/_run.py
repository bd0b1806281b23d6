"""What one drift-correction run is: its parameters, its request, its result, its layer names.

Plain frozen dataclasses, no Qt, no viewer: the GUI thread builds an :class:`AlignRequest`, a
worker turns it into an :class:`AlignRun`, which keeps the request (and so the parameters) it was
computed from. Plots and the summary read the run, never the controls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from napari_cryomat.core import drift as core

__all__ = ["METHODS", "PATCHES", "AlignParams", "AlignRequest", "AlignRun", "LayerNames", "SumRequest"]

#: method name -> estimate_drift options
METHODS = {
    "Low-dose movie (all pairs + sum of others)": dict(pair_band=None, iterations=None),
    "Time series (neighbouring frames only)": dict(pair_band=2, iterations=0),
}
#: local-motion choice -> patch grid (rows, columns)
PATCHES = {"Global only": None, "2 × 2 patches": (2, 2), "3 × 3 patches": (3, 3), "4 × 4 patches": (4, 4)}

ANGSTROM = "angstrom"
# "<stem> aligned" or "<stem> aligned <k>×": a stack this tool wrote
_ALIGNED_NAME = re.compile(r"^(?:(.*) )?aligned(?: (\d+)×)?$")
DOSE_KEY = "dose_per_frame_e_per_A2"


@dataclass(frozen=True)
class AlignParams:
    """The parameters of one alignment (read from the controls before the run starts).

    Attributes
    ----------
    pixel_size : float
        Å per pixel.
    bfactor : float
        B-factor of the correlation low-pass, Å².
    max_shift : float or None
        Largest drift searched, Å (None: a quarter of the frame).
    group : int or None
        Frames summed before correlating (None: chosen from the data).
    method : str
        A key of :data:`METHODS`.
    patches : (int, int) or None
        Patch grid for local motion (None: global only).
    dose_per_frame : float or None
        e/Å² per frame (None: unknown; no dose weighting, FRC against frame count).
    region : str or None
        Name of a Shapes layer whose first shape's bounding box is the region to track (None:
        the whole frame).
    roi : (int, int, int, int) or None
        That box in pixels of the stack, (y0, y1, x0, x1), filled in by the model's request.
    """

    pixel_size: float
    bfactor: float = 150.0
    max_shift: Optional[float] = None
    group: Optional[int] = None
    method: str = next(iter(METHODS))
    patches: Optional[tuple[int, int]] = None
    dose_per_frame: Optional[float] = None
    region: Optional[str] = None
    roi: Optional[tuple[int, int, int, int]] = None

    def __post_init__(self):
        if not self.pixel_size > 0:
            raise ValueError("The pixel size must be positive: set it in Å (or 1 for uncalibrated frames).")
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}; choose one of {', '.join(METHODS)}.")

    @property
    def dose_label(self) -> str:
        """Axis label of cumulative exposure for this run: e/Å² when the dose was given, else frames."""
        return "cumulative dose (e/Å²)" if self.dose_per_frame else "frames summed"

    @property
    def dose_unit(self) -> str:
        return " e/Å²" if self.dose_per_frame else " frames"

    def describe(self) -> str:
        """One line for plot titles: the settings that shape the result."""
        group = "auto" if self.group is None else str(self.group)
        local = "global" if self.patches is None else "{}×{} patches".format(*self.patches)
        dose = f"{self.dose_per_frame:g} e/Å²/frame" if self.dose_per_frame else "dose unknown"
        region = "" if self.roi is None else ", region rows {}-{} cols {}-{}".format(*self.roi)
        # in the words of the form's rows ("B-factor", "Group frames"): "B 150 Å², group auto" under a result of
        # "group 1" read as a contradiction
        return f"B-factor {self.bfactor:g} Å², group frames {group}, {local}, {dose}{region}"


@dataclass(frozen=True)
class LayerNames:
    """Names of the layers one Align writes, derived from the source layer's name.

    Aligning a stack that is itself the result of an Align counts the passes ("movie aligned 2×")
    instead of repeating the word ("movie aligned aligned"); a result never takes its source's name.
    """

    stack: str
    total: str
    dose_weighted: str

    @classmethod
    def for_source(cls, source: str) -> "LayerNames":
        stem, passes = source, 1
        match = _ALIGNED_NAME.match(source)
        if match:
            stem, passes = match.group(1) or "", int(match.group(2) or 1) + 1
        verb = "aligned" if passes == 1 else f"aligned {passes}×"

        def name(*words: str) -> str:
            return " ".join(word for word in (stem, *words) if word)

        return cls(stack=name(verb), total=name(verb, "sum"),
                   dose_weighted=name("dose-weighted sum") if passes == 1 else name(verb, "dose-weighted sum"))

    def partial_sum(self, start: int, stop: int, n_frames: int) -> str:
        """Name of the aligned sum of frames ``start:stop`` (the plain sum name for all frames)."""
        if start == 0 and stop == n_frames:
            return self.total
        return f"{self.total} (frames {start}-{stop - 1})"


@dataclass(frozen=True)
class AlignRequest:
    """Everything the worker needs: the frames (a reference to the layer's data), the source's
    calibration and the parameters. Built on the GUI thread; holds no Qt and no layer."""

    job: int
    frames: Any
    source_name: str
    time_scale: float
    time_unit: str
    contrast_limits: tuple[float, float]
    params: AlignParams
    scale: tuple = ()  # the source layer's scale and units, all axes (a series of volumes keeps them)
    units: tuple = ()

    @property
    def names(self) -> LayerNames:
        return LayerNames.for_source(self.source_name)


@dataclass(frozen=True)
class AlignRun:
    """The result of one Align, with the request (and so the parameters) it was computed from."""

    request: AlignRequest
    drift: core.DriftResult
    aligned: Any  # (T, Y, X) float32, numpy (or lazy dask for dask input)
    total: np.ndarray
    total_limits: tuple[float, float]
    dose_weighted: Optional[np.ndarray]
    dose_weighted_limits: Optional[tuple[float, float]]
    frc: core.FRCResult

    @property
    def params(self) -> AlignParams:
        return self.request.params

    @property
    def n_frames(self) -> int:
        return int(self.drift.shifts.shape[0])

    @property
    def shifts(self) -> np.ndarray:
        """(T, 2) shifts (dy, dx) in px."""
        return self.drift.shifts

    @property
    def final_resolution(self) -> float:
        res = self.frc.resolution
        return float(res[-1]) if len(res) else float("nan")

    @property
    def shares_structure(self) -> bool:
        """Do the frames hold a specimen the shifts were measured on: the core's test (``DriftResult.measured``:
        power of the aligned sum above the shot noise at low frequencies, or a lattice reflection) and the
        aligned even and odd halves' agreement at the lowest frequency (FRC of the first ring >= 0.143)?

        Why: on frames with no specimen (pure shot noise) the estimator still returns a trajectory (tens of px
        on a 128² stack), and its quality (2.5-3.5) is no lower than a right low-dose alignment's (3-5). The FRC
        alone let 7 of 27 noise stacks pass by chance (its first ring holds a few pixels: 20 x 128² at 1
        count/px, seed 0, gave "FRC 0.143 resolution 29.2 Å"); the core's test flags every noise stack measured
        (38) and no specimen stack (70 seen, 40 never-run at 0.01 counts/px/frame)."""
        return bool(self.drift.measured) and bool(np.isfinite(self.final_resolution))

    def summary(self) -> str:
        d = self.drift
        frc = (f"FRC 0.143 resolution {self.final_resolution:.1f} Å" if self.shares_structure else NO_COMMON_STRUCTURE)
        return (f"{self.request.source_name}: {self.n_frames} frames, group {d.group}; "
                f"total drift {d.total_drift:.1f} Å; pairs kept {100 * d.inlier_fraction:.0f}%; "
                f"quality {d.quality:.1f}; {frc}" + _outlier_note(d))


#: What the summary (and a warning) says when the frames show no specimen (:attr:`AlignRun.shares_structure`).
NO_COMMON_STRUCTURE = ("the frames show no common structure: the aligned sum holds no power above the shot noise "
                       "at low frequencies, or its even and odd halves do not agree even there (FRC below 0.143), "
                       "so these shifts may not be a measurement (is there a specimen in the field? raise Group "
                       "frames or the B-factor)")


def _outlier_note(drift) -> str:
    frames = np.nonzero(getattr(drift, "outliers", np.zeros(0, bool)))[0]
    if not frames.size:
        return ""
    listed = ", ".join(str(int(i)) for i in frames[:8]) + (" …" if frames.size > 8 else "")
    return f"; outlier frame(s) {listed}: shifts interpolated from their neighbours"


@dataclass(frozen=True)
class SumRequest:
    """The aligned sum of frames ``start:stop`` of one run."""

    run: AlignRun
    start: int
    stop: int
