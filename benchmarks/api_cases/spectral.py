"""Bad-input cases of the newer public functions of napari_cryomat.core.spectral (EELS windows,
out-of-core helpers, profiles with errors); the older ones are in benchmarks/core_api_fuzz.py."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(None)
def _eels():
    from napari_cryomat.core.synthetic.spectral import eels_spectrum_image

    d = eels_spectrum_image(shape=(6, 8), seed=2)
    return d["si"].astype(np.float32), d["energy"]


@functools.lru_cache(None)
def _maps():
    from napari_cryomat.core.spectral import eels_maps

    si, e = _eels()
    return eels_maps(si, energy=e, elements="C, O")


def _raw_file() -> str:
    import os
    import tempfile

    path = os.path.join(os.environ.get("CRYOMAT_FUZZ_TMP") or tempfile.gettempdir(), f"raw-si-{os.getpid()}.bin")
    _eels()[0].tofile(path)
    return path


def specs(Spec, Factory) -> list:
    si = Factory(lambda: _eels()[0].copy())
    energy = Factory(lambda: _eels()[1].copy())
    spec1 = Factory(lambda: _eels()[0].sum(axis=(0, 1)).astype(np.float64))
    cmap = Factory(lambda: np.random.default_rng(0).poisson(100.0, (30, 40)).astype(np.float32))
    maps = Factory(lambda: dict(_maps()))
    S = Spec
    return [
        S("spectral.RawSpectrumImage", {"path": Factory(_raw_file), "shape": (6, 8, 1200), "dtype": "float32",
                                        "offset": 0},
          {"path": "path_in", "shape": "vec2", "offset": "count0"}, pos=("path",),
          call=lambda **kw: __import__("napari_cryomat.core.spectral", fromlist=["x"]).RawSpectrumImage(**kw)[2:4]),
        S("spectral.is_lazy", {"si": si}, {"si": "array"}, pos=("si",)),
        S("spectral.rows_per_chunk", {"si": si, "max_bytes": 4096}, {"si": "array", "max_bytes": "count"}, pos=("si",)),
        S("spectral.iter_si_chunks", {"si": si, "max_bytes": 8 * 1200 * 4 * 2}, {"si": "array", "max_bytes": "count"},
          pos=("si",), call=lambda **kw: [b.sum() for _, b in
                                          __import__("napari_cryomat.core.spectral", fromlist=["x"]).iter_si_chunks(**kw)],
          allow_nan=True),  # the bands are passed through as read: checking them is the caller's work
        S("spectral.map_si_blocks", {"fn": lambda b: b.sum(axis=-1), "si": si, "max_bytes": 8 * 1200 * 4 * 2},
          {"si": "array", "max_bytes": "count"}, pos=("fn", "si"), allow_nan=True),
        S("spectral.sum_spectrum", {"si": si, "max_bytes": 8 * 1200 * 4 * 2}, {"si": "array", "max_bytes": "count"},
          pos=("si",)),
        S("spectral.detect_edge_onsets", {"spectrum": spec1, "energy": energy, "min_snr": 8.0, "min_jump": 0.02,
                                          "width": 5.0, "min_energy": 30.0},
          {"spectrum": "array", "energy": "energy", "min_snr": "len", "min_jump": "len0", "width": "len",
           "min_energy": "real"}, pos=("spectrum",)),
        S("spectral.plan_eels_windows", {"elements": "C, O", "energy": energy, "spectrum": spec1, "min_width": 10.0},
          {"elements": "str", "energy": "energy", "spectrum": "array", "min_width": "len"}, pos=("elements",)),
        S("spectral.is_multi_window", {"window": (250.0, 280.0)}, {"window": "window"}, pos=("window",)),
        S("spectral.background_channels", {"energy": energy, "window": (250.0, 280.0)},
          {"energy": "energy", "window": "window"}, pos=("energy", "window")),
        S("spectral.profile_with_errors", {"image": cmap, "start": (15.0, 2.0), "end": (15.0, 37.0), "pixel_size": 2.0,
                                           "width_angstrom": 8.0},
          {"image": "array", "start": "vec2", "end": "vec2", "pixel_size": "len", "width_angstrom": "len"},
          pos=("image",), allow_nan=True),  # a NaN pixel of a map (e.g. a ratio) stays NaN where it is sampled
        S("spectral.composition_profile", {"maps": maps, "start": (3.0, 0.0), "end": (3.0, 7.0), "pixel_size": 5.0,
                                           "width_angstrom": 10.0, "cross_sections": {"C": 1.0, "O": 2.0}},
          {"start": "vec2", "end": "vec2", "pixel_size": "len", "width_angstrom": "len"}, pos=("maps",),
          allow_nan=True),
    ]
