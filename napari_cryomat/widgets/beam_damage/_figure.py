"""A figure of one beam-damage run for a paper: resolution and spot intensity against dose.

Drawn with matplotlib's Agg canvas (no window, any thread), as PNG or any format matplotlib writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_cryomat.core.dose import CRITERIA
from napari_cryomat.widgets.beam_damage._model import DamageRun

__all__ = ["write_figure"]

STYLES = {"FRC 0.5": ("#1f77b4", "o"), "FRC 0.143": ("#2ca02c", "s"), "FRPR 45°": ("#d62728", "^")}


def write_figure(run: DamageRun, path: str | Path, *, dpi: int = 200) -> Path:
    """Two panels side by side: resolution vs dose (each criterion), normalised spot intensity vs
    dose with the fitted decays; the critical doses in the caption."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = run.series
    unit = "e/Å²" if s.dose_unit == "e/Å²" else "frames"
    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_res, ax_int = fig.subplots(1, 2)
    for criterion in CRITERIA:
        colour, marker = STYLES[criterion]
        ax_res.plot(s.dose, s.resolution[criterion], marker=marker, color=colour, label=criterion, lw=1.2, ms=4)
    if run.request.params.budget_resolution > 0:
        ax_res.axhline(run.request.params.budget_resolution, color="grey", ls="--", lw=0.8)
    ax_res.set_xlabel(f"cumulative dose ({unit})")
    ax_res.set_ylabel("resolution (Å)")
    ax_res.legend(frameon=False, fontsize=8)
    for i, shell in enumerate(s.shells):
        colour = f"C{i}"
        norm = shell.fit.i0 if shell.fit is not None and shell.fit.i0 > 0 else max(shell.intensity.max(), 1e-30)
        ax_int.plot(s.frame_dose, shell.intensity / norm, ".", color=colour, ms=3)
        if shell.fit is not None:
            d = np.linspace(0, s.frame_dose[-1], 200)
            f = shell.fit
            ax_int.plot(d, f.curve(d) / norm, "-", color=colour, lw=1.2,
                        label=f"{shell.d_spacing:.2f} Å: Dc {f.dc:.3g} [{f.dc_low:.3g}, {f.dc_high:.3g}]")
    ax_int.axhline(np.exp(-1), color="grey", ls=":", lw=0.8)
    ax_int.set_xlabel(f"cumulative dose ({unit})")
    ax_int.set_ylabel("Bragg intensity / I0")
    if s.shells:
        ax_int.legend(frameon=False, fontsize=8)
    level = s.shells[0].fit.confidence if s.shells and s.shells[0].fit is not None else 0.95
    ax_int.set_title(f"critical dose Dc ({unit}) [{level:.0%} interval]", fontsize=8)
    fig.suptitle(f"Beam damage of '{run.request.layer_name}'", fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path
