"""Bad-input cases of ``napari_cryomat.core.denoise`` for ``benchmarks/core_api_fuzz.py`` (issue #16)."""

from __future__ import annotations

import numpy as np


def _counts():
    return np.random.default_rng(0).poisson(2.0, (64, 72)).astype(np.float32)


def _half(seed):
    rng = np.random.default_rng(seed)
    return (np.ones((48, 40)) + rng.normal(0, 0.3, (48, 40))).astype(np.float32)


def specs(Spec, Factory) -> list:
    counts = Factory(_counts)
    return [
        Spec("denoise.split_counts", {"image": counts, "seed": 3}, {"image": "array", "seed": "count0"},
             pos=("image",)),
        Spec("denoise.frc_wiener", {"a": Factory(lambda: _half(1)), "b": Factory(lambda: _half(2)), "pixel_size": 0.5},
             {"a": "array", "b": "array", "pixel_size": "len"}, pos=("a", "b")),
        Spec("denoise.destripe", {"image": counts, "axis": "rows"}, {"image": "array", "axis": "choice"},
             pos=("image",)),
        Spec("denoise.denoise", {"image": counts, "method": "gaussian", "strength": 1.2, "destripe": "auto",
                                 "noise": "auto", "tile": 64},
             {"image": "array", "method": "choice", "strength": "len", "destripe": "choice", "noise": "choice",
              "tile": "count"}, pos=("image",)),
        Spec("denoise.denoise", {"image": counts}, {}, pos=("image",)),  # the default "auto" call
    ]
