"""Bad-input cases for :mod:`napari_cryomat.core.drift_regions` (collected by benchmarks/core_api_fuzz.py)."""

from __future__ import annotations

import numpy as np


def _frames():
    from napari_cryomat.core.synthetic.movie import drifting_movie

    return np.asarray(drifting_movie((48, 48), 4, counts_per_pixel=20.0, seed=1).frames, np.float32)


def _volumes():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    base = ndimage.gaussian_filter(rng.standard_normal((16, 20, 20)), 1.5)
    return np.stack([ndimage.shift(base, (0.5 * i, -0.3 * i, 0.4 * i), mode="grid-wrap")
                     for i in range(4)]).astype(np.float32) + 5.0


def specs(Spec, Factory) -> list:
    L = Factory
    fast = {"max_size": 64, "coarse_size": 32, "iterations": 1, "smooth": False, "upsample": 10}
    return [
        Spec("drift_regions.estimate_roi_drift", {"frames": L(_frames), "roi": (8, 40, 4, 44)} | fast,
             {"frames": "array", "roi": "vec2", "pixel_size": "len", "bfactor": "len"}, pos=("frames", "roi"),
             allow_nan=("walk_step",)),
        Spec("drift_regions.estimate_volume_drift", {"volumes": L(_volumes), "pixel_size": 1.0} | fast,
             {"volumes": "array", "pixel_size": "len", "bfactor": "len"}, pos=("volumes",)),
    ]
