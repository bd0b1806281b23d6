"""Bad-input cases of napari_cryomat.core.lowloss."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(None)
def _ll():
    from napari_cryomat.core.synthetic.spectral import eels_lowloss_image

    d = eels_lowloss_image(t_over_lambda=np.full((3, 4), 0.6), size=300, total_counts=5e4)
    return d["si"].astype(np.float32), d["energy"]


@functools.lru_cache(None)
def _core():
    e = np.arange(250.0, 325.0, 0.25)
    return (1e3 * (e > 284) * (np.maximum(e, 284) / 284) ** -3.0)[None].repeat(4, 0).reshape(1, 4, -1)


def specs(Spec, Factory) -> list:
    si = Factory(lambda: _ll()[0].copy())
    energy = Factory(lambda: _ll()[1].copy())
    one = Factory(lambda: _ll()[0][0].astype(np.float64).copy())
    core = Factory(lambda: _core()[0].copy())
    S = Spec
    return [
        S("lowloss.zlp_positions", {"si": si, "energy": energy, "search_window": (-3.0, 3.0)},
          {"si": "array", "energy": "energy", "search_window": "window", "max_bytes": "count"}, pos=("si",)),
        S("lowloss.align_zlp", {"si": si, "energy": energy, "search_window": (-3.0, 3.0)},
          {"si": "array", "energy": "energy", "search_window": "window", "max_bytes": "count"},
          pos=("si",)),
        S("lowloss.mean_free_path", {"e0": 200.0, "beta": 20.0, "alpha": 5.0, "density": 2.2},
          {"e0": "len", "beta": "len", "alpha": "len0", "density": "len", "method": "choice"}),
        S("lowloss.thickness_map", {"si": si, "energy": energy, "mean_free_path_nm": 120.0},
          {"si": "array", "energy": "energy", "zlp_threshold": "real", "mean_free_path_nm": "len",
           "max_bytes": "count"}, pos=("si",)),
        S("lowloss.zero_loss_parameters", {"si": si, "energy": energy},
          {"si": "array", "energy": "energy"}, pos=("si",)),
        S("lowloss.fourier_log_deconvolve", {"si": si, "energy": energy, "fwhm": 1.0},
          {"si": "array", "energy": "energy", "zlp_threshold": "real", "fwhm": "len", "max_bytes": "count"},
          pos=("si",)),
        S("lowloss.fourier_ratio_deconvolve", {"core_loss": core, "low_loss": one, "energy_low_loss": energy,
                                               "fwhm": 1.0},
          {"core_loss": "array", "low_loss": "array", "energy_low_loss": "energy", "fwhm": "len",
           "zlp_threshold": "real"}, pos=("core_loss", "low_loss")),
    ]
