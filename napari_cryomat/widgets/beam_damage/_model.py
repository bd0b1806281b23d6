"""Beam damage model: the request read from a layer and the form, the run, the exports. No Qt.

The run is :func:`napari_cryomat.core.dose.dose_series` on the chosen stack; the result is kept
with the request that made it, so the plots, the table and the figure always describe one run.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cryomat.core import dose as core
from napari_cryomat.io.spectral import is_spectrum_image_layer
from napari_cryomat.widgets._base.layers import frame_stack, image_data, is_frame_stack, pixel_size_of

__all__ = ["DOSE_KEY", "DamageParams", "DamageRequest", "DamageRun", "make_request", "run_damage", "write_table",
           "summary_lines"]

#: layer metadata key of the dose per frame (written by the sample data and the drift tool's input)
DOSE_KEY = "dose_per_frame_e_per_A2"


@dataclass(frozen=True)
class DamageParams:
    """What the form says. ``dose_per_frame`` 0 means unknown (dose axes in frames)."""

    dose_per_frame: float = 0.0
    frames_per_point: int = 0  # 0: automatic (about a tenth of the frames)
    min_snr: float = 30.0
    budget_resolution: float = 0.0  # Å; 0: no dose budget asked for


@dataclass(frozen=True)
class DamageRequest:
    layer_name: str
    frames: object  # (T, Y, X) array-like, read lazily in the worker
    pixel_size: float
    params: DamageParams


@dataclass
class DamageRun:
    request: DamageRequest
    series: core.DoseSeries
    budgets: dict[str, float]  # criterion -> dose at which params.budget_resolution is lost


def dose_from_metadata(layer) -> float:
    """The dose per frame stored with the layer (e/Å²), or 0.0 when it is not known."""
    value = (getattr(layer, "metadata", None) or {}).get(DOSE_KEY)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def make_request(layer, params: DamageParams) -> DamageRequest:
    """Check the layer and the form; ValueError naming what to change otherwise."""
    if layer is None:
        raise ValueError("Choose a dose series (an image stack T, Y, X) in 'Series' first.")
    if not is_frame_stack(layer):
        kind = "a spectrum image" if is_spectrum_image_layer(layer) else f"shape {tuple(layer.data.shape)}"
        raise ValueError(f"'{layer.name}' is not a (T, Y, X) stack ({kind}); pick a movie or dose series.")
    frames = frame_stack(image_data(layer))  # full resolution: a movie of big frames opens as a binned overview
    shape = tuple(frames.shape)
    if shape[0] < 4:
        raise ValueError(f"'{layer.name}' has {shape[0]} frames; following damage needs at least 4.")
    if params.frames_per_point and not 2 <= params.frames_per_point <= shape[0] // 2:
        raise ValueError(f"Frames per point must be between 2 and {shape[0] // 2} for {shape[0]} frames "
                         f"(or 0 for automatic); got {params.frames_per_point}.")
    return DamageRequest(layer.name, frames, pixel_size_of(layer), params)


def run_damage(request: DamageRequest, progress=None) -> DamageRun:
    """The worker: the dose series and, when asked, the dose budget for each criterion."""
    p = request.params
    series = core.dose_series(
        request.frames, pixel_size=request.pixel_size, dose_per_frame=p.dose_per_frame or None,
        frames_per_point=p.frames_per_point or None, min_snr=p.min_snr, progress=progress,
    )
    budgets = {}
    if p.budget_resolution > 0:
        budgets = {c: core.dose_budget(series, p.budget_resolution, criterion=c) for c in core.CRITERIA}
    return DamageRun(request, series, budgets)


def _fmt_dose(value: float, unit: str) -> str:
    if math.isinf(value):
        return "∞"
    return f"{value:.3g} {unit}"


def summary_lines(run: DamageRun) -> list[str]:
    """Plain-language lines for the summary label and the figure caption."""
    s, unit = run.series, run.series.dose_unit
    lines = []
    for shell in s.shells:
        if shell.fit is None:
            lines.append(f"{shell.d_spacing:.2f} Å spots: no fit ({shell.message})")
            continue
        f = shell.fit
        lines.append(f"{shell.d_spacing:.2f} Å spots ({len(shell.g)}): Dc = {_fmt_dose(f.dc, unit)} "
                     f"[{_fmt_dose(f.dc_low, unit)}, {_fmt_dose(f.dc_high, unit)}] ({f.confidence:.0%})")
    if run.budgets:
        r = run.request.params.budget_resolution
        parts = []
        for criterion, budget in run.budgets.items():
            if budget == 0.0:
                parts.append(f"{criterion}: never reached")
            elif math.isinf(budget):
                parts.append(f"{criterion}: kept to the end")
            else:
                parts.append(f"{criterion}: lost at {_fmt_dose(budget, unit)}")
        lines.append(f"{r:g} Å — " + "; ".join(parts))
    lines.extend(s.notes)
    return lines


def write_table(run: DamageRun, path: str | Path) -> Path:
    """The per-point table (dose, resolutions, spot intensities) and the fits, as CSV."""
    path = Path(path)
    header, rows = run.series.table()
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["# source", run.request.layer_name, "pixel_size_A", run.request.pixel_size,
                    "dose_unit", run.series.dose_unit])
        for shell in run.series.shells:
            if shell.fit is not None:
                w.writerow(["# critical_dose", f"{shell.d_spacing:.4f} A", shell.fit.dc, shell.fit.dc_low,
                            shell.fit.dc_high, f"confidence {shell.fit.confidence}"])
        w.writerow(header)
        for row in rows:
            w.writerow([f"{v:.6g}" if isinstance(v, float) and np.isfinite(v) else v for v in row])
    return path
