"""Bad-input cases of napari_cryomat.core.eels_quant."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(None)
def _si():
    from napari_cryomat.core import eels_quant as q
    from napari_cryomat.core.spectral import energy_axis

    e = energy_axis(offset=450.0, scale=1.0, size=350)
    rng = np.random.default_rng(0)
    lam = 1e5 * (e / e[0]) ** -3.0 + 50.0 * q.differential_cross_section("O", energy=e, e0=200, beta=20) \
        + 40.0 * q.differential_cross_section("Mn", energy=e, e0=200, beta=20)
    return rng.poisson(np.broadcast_to(lam, (3, 4, e.size))).astype(np.float32), e


@functools.lru_cache(None)
def _maps():
    from napari_cryomat.core.spectral import eels_maps

    si, e = _si()
    return eels_maps(si, energy=e, elements="O, Mn")


def specs(Spec, Factory) -> list:
    si = Factory(lambda: _si()[0].copy())
    energy = Factory(lambda: _si()[1].copy())
    maps = Factory(lambda: dict(_maps()))
    S = Spec
    return [
        S("eels_quant.effective_collection_angle", {"energy_loss": Factory(lambda: np.array([300.0, 600.0])),
                                                    "e0": 200.0, "alpha": 10.0, "beta": 20.0},
          {"energy_loss": "array", "e0": "len", "alpha": "len0", "beta": "len"}, pos=("energy_loss",)),
        S("eels_quant.differential_cross_section", {"element": "O", "energy": energy, "e0": 200.0, "beta": 20.0,
                                                    "alpha": 5.0},
          {"element": "str", "energy": "energy", "e0": "len", "beta": "len", "alpha": "len0"}, pos=("element",)),
        S("eels_quant.edge_cross_section", {"element": "O", "width": 50.0, "e0": 200.0, "beta": 20.0, "alpha": 5.0},
          {"element": "str", "width": "len", "e0": "len", "beta": "len", "alpha": "len0"}, pos=("element",)),
        S("eels_quant.atomic_ratios", {"intensities": Factory(lambda: {"C": np.full((3, 3), 2.0), "O": np.ones((3, 3))}),
                                       "cross_sections": {"C": 1.0, "O": 2.0}}, {}, pos=("intensities",)),
        S("eels_quant.quantify_maps", {"maps": maps, "e0": 200.0, "beta": 20.0, "alpha": 5.0},
          {"e0": "len", "beta": "len", "alpha": "len0"}, pos=("maps",), allow_nan=True),
        S("eels_quant.fit_edges", {"si": si, "energy": energy, "elements": "O, Mn", "e0": 200.0, "beta": 20.0,
                                   "fit_window": (470.0, 790.0), "background_window": (460.0, 520.0)},
          {"si": "array", "energy": "energy", "elements": "str", "e0": "len", "beta": "len", "alpha": "len0",
           "fit_window": "window", "background_window": "window", "max_bytes": "count"}, pos=("si",), allow_nan=True),
    ]
