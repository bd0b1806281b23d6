"""Bad-input cases for :mod:`napari_cryomat.core.dose` (collected by benchmarks/core_api_fuzz.py)."""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def _series_frames():
    from napari_cryomat.core.synthetic.dose import beam_damage_series

    return beam_damage_series((64, 64), 8, seed=3).frames


@functools.cache
def _series():
    from napari_cryomat.core.dose import dose_series

    return dose_series(_series_frames(), pixel_size=1.0, dose_per_frame=2.0)


def _noise(seed):
    return np.random.default_rng(seed).poisson(4.0, (64, 64)).astype(np.float32)


def specs(Spec, Factory) -> list:
    L = Factory
    frames = L(lambda: _series_frames().copy())
    a, b = L(lambda: _noise(1)), L(lambda: _noise(2))
    dose = L(lambda: np.arange(10, dtype=float) * 2.0 + 1.0)
    inten = L(lambda: 100.0 * np.exp(-(np.arange(10) * 2.0 + 1.0) / 12.0) + np.linspace(-1, 1, 10))
    # NaN/inf are documented results: resolution NaN without signal, dc_high inf without decay
    return [
        Spec("dose.ring_comparison", {"a": a, "b": b, "pixel_size": 1.0, "n_rings": 16},
             {"a": "array", "b": "array", "pixel_size": "len", "n_rings": "count"}, pos=("a", "b")),
        Spec("dose.frpr", {"a": a, "b": b, "pixel_size": 1.0, "n_rings": 16},
             {"a": "array", "b": "array", "pixel_size": "len", "n_rings": "count"}, pos=("a", "b")),
        Spec("dose.fit_critical_dose", {"dose": dose, "intensity": inten, "confidence": 0.95},
             {"dose": "array", "intensity": "array", "confidence": "frac"}, pos=("dose", "intensity"),
             allow_nan=True),
        Spec("dose.dose_series", {"frames": frames, "pixel_size": 1.0, "dose_per_frame": 2.0,
                                  "frames_per_point": 2, "min_snr": 30.0, "confidence": 0.95,
                                  "peaks": L(lambda: np.array([[0.1, 0.05], [0.0, 0.2]]))},
             {"frames": "array", "pixel_size": "len", "dose_per_frame": "len", "frames_per_point": "count",
              "min_snr": "len", "confidence": "frac", "peaks": "points"}, pos=("frames",), allow_nan=True),
        Spec("dose.dose_budget", {"series": L(_series), "resolution": 5.0, "criterion": "FRC 0.143"},
             {"resolution": "len", "criterion": "choice"}, pos=("series",), allow_nan=True),
    ]
