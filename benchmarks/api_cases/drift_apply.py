"""Bad-input cases for :mod:`napari_cryomat.core.drift_apply` (collected by benchmarks/core_api_fuzz.py)."""

from __future__ import annotations

import numpy as np


def _si_frames():
    rng = np.random.default_rng(0)
    return rng.poisson(0.5, (4, 16, 16, 8)).astype(np.float32)


def _shifts():
    return np.array([[0.0, 0.0], [0.5, -1.0], [1.0, -1.5], [1.2, -2.5]])


def specs(Spec, Factory) -> list:
    L = Factory
    stack = L(_si_frames)
    shifts = L(_shifts)
    out = []
    for name in ("apply_shifts_lazy", "aligned_sum_lazy"):
        out.append(Spec(f"drift_apply.{name}", {"stack": stack, "shifts": shifts, "frame_axis": 0, "spatial_axes": (1, 2)},
                        {"stack": "array", "shifts": "shifts", "frame_axis": "axis"}, pos=("stack", "shifts"),
                        call=lambda _n=name, **kw: np.asarray(
                            getattr(__import__("napari_cryomat.core.drift_apply", fromlist=["x"]), _n)(**kw).compute())))
    return out
