"""Call every public function of ``napari_cryomat.core`` with bad inputs and tabulate what happens.

For each function a good call is declared (small synthetic data, finite result); then each of its
parameters in turn gets the bad values of its kind, the others staying good:

- lengths, sizes, doses: NaN, ±inf, 0, negative, absurdly large (1e300), complex;
- counts and indices: 0, -1, 10**12, NaN, non-integer;
- arrays: a NaN pixel, an inf pixel, complex, one dimension too few or too many, empty, constant,
  and a huge (virtual) array whose copy would not fit in memory;
- vectors, windows, choices, energy axes, tables, paths: NaN/inf entries, wrong length, reversed,
  unknown names, empty tables, a folder or a FIFO instead of a file.

Calls run one after another in forked worker processes with a memory cap; a call that does not
answer within ``--timeout`` seconds is a hang (the worker is killed and a new one carries on).
Outcomes per call:

- ``clean``    ValueError whose message names the parameter (its code name, or the same words
               with spaces, e.g. "pixel size");
- ``ok``       a result with no NaN/inf where the good call had none;
- ``unclear``  ValueError that does not name the parameter;
- ``nan``      returned NaN/inf silently;
- ``obscure``  another exception type (ZeroDivisionError, AxisError, TypeError from deep inside...);
- ``memory``   MemoryError;
- ``hang``     no answer within the timeout;
- ``crash``    the worker died by a signal.

    python benchmarks/core_api_fuzz.py                 # the table
    python benchmarks/core_api_fuzz.py --only fourier.gpa --verbose

Issue #11 target: no hang, nan, obscure, memory or crash; every bad parameter ``clean`` (or a
correct finite result).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import resource
import select
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

OUTCOMES = ("clean", "ok", "unclear", "nan", "obscure", "memory", "hang", "crash")
BAD = ("unclear", "nan", "obscure", "memory", "hang", "crash")

# -------------------------------------------------------------------------------------------------
# good data (built lazily in the worker, cached; every use gets a fresh copy)
# -------------------------------------------------------------------------------------------------


@functools.lru_cache(None)
def _lattice():
    from napari_cryomat.core import fourier as F
    from napari_cryomat.core.synthetic.lattice import lattice_image

    img = lattice_image((64, 64), pixel_size=0.5, noise=0.05)
    lat = F.find_lattice(img, 0.5, fit_image=False, superlattice_snr=None)
    return img, lat


@functools.lru_cache(None)
def _movie():
    from napari_cryomat.core.synthetic.movie import drifting_movie

    m = drifting_movie((48, 48), 4, counts_per_pixel=20.0, seed=1)
    return np.asarray(m.frames, np.float32)


@functools.lru_cache(None)
def _particles():
    from napari_cryomat.core.synthetic.particles import make_particles

    img, lab, _ = make_particles(shape=(96, 96), n_particles=5, seed=0)
    return img.astype(np.float32), lab.astype(np.int32)


@functools.lru_cache(None)
def _growth():
    from napari_cryomat.core.synthetic.particles import make_growth

    mov, lab, _ = make_growth(n_frames=3, shape=(96, 96), n_crystals=3)
    return mov.astype(np.float32), lab.astype(np.int32)


@functools.lru_cache(None)
def _eels():
    from napari_cryomat.core.synthetic.spectral import eels_spectrum_image

    d = eels_spectrum_image(shape=(4, 5))
    return d["si"].astype(np.float32), d["energy"]


@functools.lru_cache(None)
def _eds():
    from napari_cryomat.core.synthetic.spectral import eds_spectrum_image

    d = eds_spectrum_image(shape=(6, 6), n_particles=2)
    return d["si"].astype(np.float32), d["energy"], d["k_factors"]


@functools.lru_cache(None)
def _lowloss():
    from napari_cryomat.core.synthetic.spectral import eels_lowloss_image

    d = eels_lowloss_image(t_over_lambda=np.full((3, 4), 0.5), size=240)
    return d["si"].astype(np.float32), d["energy"]


@functools.lru_cache(None)
def _volume():
    rng = np.random.default_rng(3)
    return rng.normal(size=(12, 20, 22)).astype(np.float32)


@functools.lru_cache(None)
def _table():
    from napari_cryomat.core.measure import measure

    img, lab = _particles()
    return measure(lab, img, pixel_size=2.0)


@functools.lru_cache(None)
def _tracks():
    from napari_cryomat.core.tracking import track_objects

    mov, lab = _growth()
    return track_objects(lab, pixel_size=2.0, max_distance=100.0)


@functools.lru_cache(None)
def _classifier_inputs():
    img, lab = _particles()
    scr = np.zeros(img.shape, np.int32)
    scr[lab > 0] = 0
    ys, xs = np.nonzero(lab)
    scr[ys[::40], xs[::40]] = 2
    scr[:3, :] = 1
    return img, scr


@functools.lru_cache(None)
def _classifier():
    from napari_cryomat.core.segment import train_pixel_classifier

    img, scr = _classifier_inputs()
    return train_pixel_classifier(img, scr, n_estimators=5, num_sigma=2, sigma_max=4.0, cache=False)


@functools.lru_cache(None)
def _pca():
    from napari_cryomat.core.spectral import pca

    si, _ = _eels()
    return pca(si, max_components=4, oversample=2)


def _middle(a):
    """The middle section of a (lazy) array, computed: what a viewer reads first."""
    return np.asarray(a[a.shape[0] // 2]) if getattr(a, "ndim", 0) >= 3 else np.asarray(a)


def _copy(x):
    if isinstance(x, np.ndarray):
        return x.copy()
    if hasattr(x, "copy"):
        return x.copy()
    return x


def _tmpdir() -> str:
    d = os.environ.get("CRYOMAT_FUZZ_TMP") or tempfile.gettempdir()
    os.makedirs(d, exist_ok=True)
    return d


# -------------------------------------------------------------------------------------------------
# bad values by kind
# -------------------------------------------------------------------------------------------------
def _huge(good: np.ndarray, dtype=np.float32):
    """A virtual array of the good one's dimensionality with 2**34 elements (64 GiB as float32), the
    size in its last two axes (one frame or plane alone does not fit in memory)."""
    shape = [min(2, s) for s in good.shape]
    if len(shape) <= 1:
        return np.broadcast_to(np.asarray(0, dtype=dtype), (2**34,))
    lead = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    side = int(math.ceil(math.sqrt(2**34 / lead)))
    shape[-2:] = [side, side]
    return np.broadcast_to(np.asarray(0, dtype=dtype), tuple(shape))


def _with(good: np.ndarray, value, where=None):
    a = np.array(good, dtype=np.result_type(good.dtype, np.float32) if np.isnan(value) or np.isinf(value) else good.dtype)
    idx = tuple(s // 2 for s in a.shape) if where is None else where
    a[idx] = value
    return a


def bad_values(kind: str, good) -> list[tuple[str, Callable[[], Any]]]:
    """(label, factory) pairs of bad values of ``kind``; ``good`` is the good value."""
    nan, inf = float("nan"), float("inf")
    num = [("nan", lambda: nan), ("inf", lambda: inf), ("complex", lambda: 1 + 1j)]
    if kind == "len":  # finite > 0
        return num + [("-inf", lambda: -inf), ("zero", lambda: 0.0), ("negative", lambda: -1.0),
                      ("huge", lambda: 1e300)]
    if kind == "len0":  # finite >= 0
        return num + [("negative", lambda: -1.0), ("huge", lambda: 1e300)]
    if kind == "real":  # any finite
        return num + [("huge", lambda: 1e300)]
    if kind == "frac":
        return [("nan", lambda: nan), ("negative", lambda: -0.5), ("above 1", lambda: 1.5), ("inf", lambda: inf)]
    if kind == "count":  # int >= 1
        return [("zero", lambda: 0), ("negative", lambda: -1), ("huge", lambda: 10**12), ("nan", lambda: nan),
                ("fraction", lambda: 2.5)]
    if kind == "count0":  # int >= 0
        return [("negative", lambda: -1), ("huge", lambda: 10**12), ("nan", lambda: nan), ("fraction", lambda: 2.5)]
    if kind == "index":
        return [("negative huge", lambda: -(10**12)), ("huge", lambda: 10**12), ("nan", lambda: nan)]
    if kind == "axis":
        return [("negative", lambda: -5), ("too large", lambda: 7), ("nan", lambda: nan)]
    if kind in ("array", "labels", "mask"):
        g = np.asarray(good)
        out = [
            ("ndim-1", lambda: np.asarray(good)[0]),
            ("ndim+1", lambda: np.asarray(good)[None].repeat(2, axis=0)),
            ("empty", lambda: np.asarray(good)[:0]),
            ("huge", lambda: _huge(g, g.dtype if kind != "array" else np.float32)),
        ]
        if kind == "array":
            out = [("nan pixel", lambda: _with(g, nan)), ("inf pixel", lambda: _with(g, inf)),
                   ("complex", lambda: g.astype(np.complex64) * (1 + 0.5j)),
                   ("constant", lambda: np.full(g.shape, 3.0, np.float32))] + out
        elif kind == "labels":
            out = [("float nan", lambda: _with(g.astype(np.float32), nan)),
                   ("negative", lambda: g.astype(np.int32) - 1),
                   ("complex", lambda: g.astype(np.complex64))] + out
        else:
            out = [("complex", lambda: g.astype(np.complex64)), ("float nan", lambda: _with(g.astype(np.float32), nan))] + out
        return out
    if kind == "vec2":  # a short vector of the good one's length (2 unless given)
        n = int(np.size(good)) if good is not None else 2
        return [("nan", lambda: np.array([nan] + [0.1] * (n - 1))), ("inf", lambda: np.array([inf] + [0.0] * (n - 1))),
                ("zero", lambda: np.zeros(n)), ("wrong length", lambda: np.ones(n + 1) * 0.1),
                ("complex", lambda: np.array([0.1 + 1j] + [0.1] * (n - 1))), ("huge", lambda: np.full(n, 1e300))]
    if kind == "window":
        lo, hi = (float(v) for v in good)
        return [("nan", lambda: (nan, hi)), ("inf", lambda: (lo, inf)), ("reversed", lambda: (hi, lo)),
                ("length 1", lambda: (lo,)), ("complex", lambda: (lo + 1j, hi)), ("huge", lambda: (-1e300, 1e300))]
    if kind == "choice":
        return [("unknown", lambda: "bogus"), ("number", lambda: 3)]
    if kind == "energy":
        e = np.asarray(good, float)
        return [("nan", lambda: _with(e, nan)), ("reversed", lambda: e[::-1].copy()), ("wrong length", lambda: e[:-3]),
                ("2D", lambda: e[None]), ("complex", lambda: e.astype(complex)), ("constant", lambda: np.full(e.shape, 5.0))]
    if kind == "table":
        import pandas as pd

        def with_nan():
            t = good.copy()
            num_cols = [c for c in t.columns if np.issubdtype(t[c].dtype, np.floating)]
            t.loc[t.index[0], num_cols] = np.nan
            return t

        return [("empty", lambda: good.iloc[:0].copy()), ("nan row", with_nan), ("not a table", lambda: np.zeros((3, 3))),
                ("no columns", lambda: pd.DataFrame({"x": [1, 2, 3]}))]
    if kind == "path_in":
        def fifo():
            p = os.path.join(_tmpdir(), f"fifo-{os.getpid()}-{time.monotonic_ns()}.csv")
            os.mkfifo(p)
            return p

        return [("folder", lambda: _tmpdir()), ("fifo", fifo), ("missing", lambda: "/nonexistent/x.csv"),
                ("device", lambda: "/dev/zero")]
    if kind == "key":
        return [("path traversal", lambda: "../../escaped"), ("slash", lambda: "a/b"), ("empty", lambda: ""),
                ("nul", lambda: "a\x00b")]
    if kind == "points":
        g = np.asarray(good, float)
        return [("nan", lambda: _with(g, float("nan"), where=(0, 0))), ("inf", lambda: _with(g, float("inf"), where=(0, 0))),
                ("outside", lambda: g + 1e9), ("wrong width", lambda: g[:, :1]), ("complex", lambda: g.astype(complex))]
    if kind == "shifts":
        g = np.asarray(good, float)
        return [("nan", lambda: _with(g, float("nan"), where=(0, 0))), ("inf", lambda: _with(g, float("inf"), where=(0, 0))),
                ("huge", lambda: g + 1e12), ("wrong shape", lambda: g[:-1]), ("complex", lambda: g.astype(complex))]
    if kind == "str":
        return [("none", lambda: None), ("number", lambda: 5), ("empty", lambda: "")]
    raise KeyError(kind)


# -------------------------------------------------------------------------------------------------
# the functions and their good calls
# -------------------------------------------------------------------------------------------------
@dataclass
class Spec:
    name: str                         # "module.function" under napari_cryomat.core
    good: dict                        # parameter -> value or zero-argument factory
    kinds: dict                       # parameter -> kind of bad values
    pos: tuple = ()                   # parameters passed positionally, in order
    allow_nan: bool | tuple = False   # NaN/inf are part of the documented result (or of these fields)
    call: Callable | None = None      # custom caller f(**kwargs) instead of the function itself


class _Factory:
    """Marks a good value that is built afresh for every call."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self):
        return self.fn()


def _v(x):
    return x() if isinstance(x, _Factory) else _copy(x)


def specs() -> list[Spec]:
    """The cases written here, then those of each ``benchmarks/api_cases/<module>.py`` (a function
    ``specs(Spec, Factory)`` returning a list of :class:`Spec`), one file per newer core module."""
    return _specs_here() + _specs_from_case_files()


def _specs_from_case_files() -> list[Spec]:
    import importlib.util

    out = []
    for path in sorted((Path(__file__).parent / "api_cases").glob("[!_]*.py")):
        spec = importlib.util.spec_from_file_location(f"api_cases_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out.extend(mod.specs(Spec, _Factory))
    return out


def _specs_here() -> list[Spec]:
    L = _Factory
    img = L(lambda: _lattice()[0].copy())
    g1 = L(lambda: _lattice()[1].g1.copy())
    g2 = L(lambda: _lattice()[1].g2.copy())
    frames = L(lambda: _movie().copy())
    shifts = L(lambda: np.zeros((4, 2)))
    pimg = L(lambda: _particles()[0].copy())
    plab = L(lambda: _particles()[1].copy())
    mov = L(lambda: _growth()[0].copy())
    glab = L(lambda: _growth()[1].copy())
    si = L(lambda: _eels()[0].copy())
    energy = L(lambda: _eels()[1].copy())
    eds_si = L(lambda: _eds()[0].copy())
    eds_e = L(lambda: _eds()[1].copy())
    ll_si = L(lambda: _lowloss()[0].copy())
    ll_e = L(lambda: _lowloss()[1].copy())
    vol = L(lambda: _volume().copy())
    table = L(lambda: _table().copy())
    tracks = L(lambda: _tracks().copy())
    spec1 = L(lambda: _eds()[0].sum(axis=(0, 1)).astype(np.float64))
    pts3 = L(lambda: np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    csv_path = L(lambda: os.path.join(_tmpdir(), f"picks-{os.getpid()}.csv"))
    star_path = L(lambda: os.path.join(_tmpdir(), f"picks-{os.getpid()}.star"))

    @_Factory
    def read_csv_path():
        from napari_cryomat.core.picks import write_picks_csv

        p = os.path.join(_tmpdir(), f"read-{os.getpid()}.csv")
        write_picks_csv(p, np.array([[1.0, 2.0, 3.0]]))
        return p

    @_Factory
    def read_star_path():
        from napari_cryomat.core.picks import write_picks_star

        p = os.path.join(_tmpdir(), f"read-{os.getpid()}.star")
        write_picks_star(p, np.array([[1.0, 2.0, 3.0]]))
        return p

    S = Spec
    out = [
        # ---------------------------------------------------------------- fourier
        S("fourier.validate_image", {"image": img}, {"image": "array"}, pos=("image",)),
        S("fourier.periodic_smooth_decomposition", {"image": img}, {"image": "array"}, pos=("image",)),
        S("fourier.power_spectrum", {"image": img, "pixel_size": 0.5, "window": "hann"},
          {"image": "array", "pixel_size": "len", "window": "choice"}, pos=("image", "pixel_size")),
        S("fourier.averaged_power_spectrum", {"image": img, "pixel_size": 0.5, "tile": 32, "overlap": 0.5,
                                              "flatten": True},
          {"image": "array", "pixel_size": "len", "tile": "count", "overlap": "frac"}, pos=("image", "pixel_size")),
        S("fourier.default_tile", {"shape": (64, 64)}, {"shape": "vec2"}, pos=("shape",)),
        S("fourier.find_peaks", {"image": img, "pixel_size": 0.5, "min_snr": 25.0, "max_peaks": 20, "g_min": 0.05,
                                 "g_max": 0.8},
          {"image": "array", "pixel_size": "len", "min_snr": "len0", "max_peaks": "count", "g_min": "len0",
           "g_max": "len"}, pos=("image", "pixel_size")),
        S("fourier.find_lattice", {"image": img, "pixel_size": 0.5, "min_snr": 25.0, "strong_fraction": 0.1,
                                   "tolerance": 0.06, "max_denominator": 4, "max_peaks": 30},
          {"image": "array", "pixel_size": "len", "min_snr": "len0", "strong_fraction": "frac", "tolerance": "frac",
           "max_denominator": "count", "max_peaks": "count"}, pos=("image", "pixel_size")),
        S("fourier.refine_spot", {"image": img, "pixel_size": 0.5, "g": g1, "search": 3},
          {"image": "array", "pixel_size": "len", "g": "vec2", "search": "count0"}, pos=("image", "pixel_size", "g")),
        S("fourier.refine_peak", {"windowed": img, "ky": 5.0, "kx": 3.0},
          {"windowed": "array", "ky": "real", "kx": "real"}, pos=("windowed", "ky", "kx")),
        S("fourier.refine_basis_on_image", {"image": img, "pixel_size": 0.5, "g1": g1, "g2": g2, "hk": [(1, 0), (0, 1)],
                                            "max_iter": 5},
          {"image": "array", "pixel_size": "len", "g1": "vec2", "g2": "vec2", "max_iter": "count"},
          pos=("image", "pixel_size", "g1", "g2", "hk")),
        S("fourier.radial_profile", {"image": img, "pixel_size": 0.5, "bin_width": 0.02},
          {"image": "array", "pixel_size": "len", "bin_width": "len"}, pos=("image", "pixel_size")),
        S("fourier.bragg_filter", {"image": img, "peaks": L(lambda: np.array([_lattice()[1].g1, _lattice()[1].g2])),
                                   "radius": 0.05, "pixel_size": 0.5},
          {"image": "array", "peaks": "points", "radius": "len", "pixel_size": "len"}, pos=("image", "peaks", "radius")),
        S("fourier.gpa", {"image": img, "g1": g1, "g2": g2, "mask_radius": 0.05, "pixel_size": 0.5},
          {"image": "array", "g1": "vec2", "g2": "vec2", "mask_radius": "len", "pixel_size": "len"},
          pos=("image", "g1", "g2", "mask_radius")),
        S("fourier.pld_map", {"image": img, "q": L(lambda: _lattice()[1].g1 / 3), "lattice": L(lambda: (_lattice()[1].g1, _lattice()[1].g2)),
                              "pixel_size": 0.5, "mask_radius": 0.03},
          {"image": "array", "q": "vec2", "pixel_size": "len", "mask_radius": "len"}, pos=("image", "q")),
        S("fourier.bragg_intensity_series",
          {"stack": L(lambda: np.stack([_lattice()[0]] * 3)), "peaks": L(lambda: np.array([_lattice()[1].g1])),
           "pixel_size": 0.5, "dose_per_frame": 2.0, "radius": 0.03},
          {"stack": "array", "peaks": "points", "pixel_size": "len", "dose_per_frame": "len", "radius": "len"},
          pos=("stack", "peaks")),
        S("fourier.LiveSpectrum", {"roi": img}, {"roi": "array"},
          call=lambda roi: __import__("napari_cryomat.core.fourier", fromlist=["x"]).LiveSpectrum()(roi)),
        S("fourier.LiveSpectrum.auto", {"roi": img}, {"roi": "array"},
          call=lambda roi: __import__("napari_cryomat.core.fourier", fromlist=["x"]).LiveSpectrum(mode="auto")(roi)),
        # ---------------------------------------------------------------- drift
        S("drift.check_stack", {"frames": frames}, {"frames": "array"}, pos=("frames",)),
        S("drift.prepare_frame", {"frame": L(lambda: _movie()[0].copy()), "gain": L(lambda: np.ones((48, 48), np.float32)),
                                  "index": 0},
          {"frame": "array", "gain": "array"}, pos=("frame",)),
        S("drift.estimate_drift", {"frames": frames, "pixel_size": 1.0, "bfactor": 150.0, "max_shift": 10.0, "group": 1,
                                   "iterations": 1, "refine_radius": 2.0, "upsample": 10, "max_size": 64,
                                   "coarse_size": 32, "window_taper": 0.1, "smooth": False},
          {"frames": "array", "pixel_size": "len", "bfactor": "len0", "max_shift": "len", "group": "count",
           "iterations": "count0", "refine_radius": "len", "upsample": "count", "max_size": "count",
           "coarse_size": "count", "window_taper": "frac", "pair_band": "count", "patches": "vec2"},
          pos=("frames",), allow_nan=("walk_step",)),
        S("drift.fourier_shift", {"frame": L(lambda: _movie()[0].copy()), "shift": np.array([0.5, -1.0])},
          {"frame": "array", "shift": "vec2"}, pos=("frame", "shift")),
        S("drift.apply_drift", {"frames": frames, "shifts": shifts}, {"frames": "array", "shifts": "shifts"},
          pos=("frames", "shifts")),
        S("drift.aligned_sum", {"frames": frames, "shifts": shifts, "start": 0, "stop": 4},
          {"frames": "array", "shifts": "shifts", "start": "index", "stop": "index"}, pos=("frames", "shifts")),
        S("drift.critical_exposure", {"k": L(lambda: np.linspace(0.01, 0.5, 10))}, {"k": "array"}, pos=("k",)),
        S("drift.dose_weights", {"n_frames": 4, "shape": (32, 32), "pixel_size": 1.0, "dose_per_frame": 2.0,
                                 "pre_exposure": 0.0},
          {"n_frames": "count", "shape": "vec2", "pixel_size": "len", "dose_per_frame": "len", "pre_exposure": "len0"},
          pos=("n_frames", "shape")),
        S("drift.dose_weighted_sum", {"frames": frames, "shifts": shifts, "pixel_size": 1.0, "dose_per_frame": 2.0,
                                      "pre_exposure": 0.0},
          {"frames": "array", "shifts": "shifts", "pixel_size": "len", "dose_per_frame": "len", "pre_exposure": "len0"},
          pos=("frames", "shifts")),
        S("drift.frc", {"a": L(lambda: _movie()[0].copy()), "b": L(lambda: _movie()[1].copy()), "pixel_size": 1.0,
                        "n_rings": 10},
          {"a": "array", "b": "array", "pixel_size": "len", "n_rings": "count"}, pos=("a", "b")),
        S("drift.frc_vs_dose", {"frames": frames, "shifts": shifts, "pixel_size": 1.0, "dose_per_frame": 2.0,
                                "steps": 3, "threshold": 0.143},
          {"frames": "array", "shifts": "shifts", "pixel_size": "len", "dose_per_frame": "len", "steps": "count",
           "threshold": "frac"}, pos=("frames", "shifts"), allow_nan=True),
        # ---------------------------------------------------------------- segment
        S("segment.segment_particles", {"image": pimg, "pixel_size": 2.0, "smoothing": 4.0, "threshold": "otsu",
                                        "local_block": 400.0, "polarity": "dark", "min_size": 100.0,
                                        "split_distance": 20.0},
          {"image": "array", "pixel_size": "len", "smoothing": "len0", "threshold": "choice", "local_block": "len",
           "polarity": "choice", "min_size": "len0", "split_distance": "len0"}, pos=("image",)),
        S("defects.outlier_pixels", {"image": pimg, "z": 5.0}, {"image": "array", "z": "len"}, pos=("image",)),
        S("defects.replace_outlier_pixels", {"image": pimg, "z": 5.0}, {"image": "array", "z": "len"},
          pos=("image",)),
        S("segment.segment_series", {"movie": mov, "pixel_size": 2.0}, {"movie": "array", "pixel_size": "len"},
          pos=("movie",)),
        S("segment.split_touching", {"mask": L(lambda: _particles()[1] > 0), "pixel_size": 2.0, "split_distance": 20.0,
                                     "min_size": 0.0},
          {"mask": "mask", "pixel_size": "len", "split_distance": "len0", "min_size": "len0"}, pos=("mask",)),
        S("segment.pixel_features", {"image": pimg, "sigma_min": 1.0, "sigma_max": 4.0, "num_sigma": 2},
          {"image": "array", "sigma_min": "len", "sigma_max": "len", "num_sigma": "count"}, pos=("image",)),
        S("segment.train_pixel_classifier",
          {"image": L(lambda: _classifier_inputs()[0].copy()), "scribbles": L(lambda: _classifier_inputs()[1].copy()),
           "sigma_min": 1.0, "sigma_max": 4.0, "num_sigma": 2, "n_estimators": 5, "max_depth": 8,
           "max_samples_per_class": 1000, "tile_size": 64, "cache": False},
          {"image": "array", "scribbles": "labels", "sigma_min": "len", "sigma_max": "len", "num_sigma": "count",
           "n_estimators": "count", "max_depth": "count", "max_samples_per_class": "count", "tile_size": "count"},
          pos=("image", "scribbles")),
        S("segment.PixelClassifier.predict", {"image": pimg, "tile_size": 64},
          {"image": "array", "tile_size": "count"},
          call=lambda image, tile_size: _classifier().predict(image, tile_size=tile_size)),
        S("segment.click_segment", {"image": pimg, "points": L(lambda: [list(np.argwhere(_particles()[1] == 1)[0])]),
                                    "pixel_size": 2.0, "method": "flood", "smoothing": 4.0, "max_radius": 60.0,
                                    "split_distance": 20.0},
          {"image": "array", "points": "points", "pixel_size": "len", "method": "choice", "tolerance": "len0",
           "smoothing": "len0", "max_radius": "len", "split_distance": "len0"}, pos=("image", "points")),
        S("segment.interpolate_slices", {"labels": L(lambda: _growth()[1].copy()), "axis": 0},
          {"labels": "labels", "axis": "axis"}, pos=("labels",)),
        S("segment.iter_tiles", {"shape": (40, 50), "tile": 16, "margin": 2},
          {"shape": "vec2", "tile": "count", "margin": "count0"},
          call=lambda **kw: list(__import__("napari_cryomat.core.segment", fromlist=["x"]).iter_tiles(**kw))),
        # ---------------------------------------------------------------- measure
        S("measure.measure", {"labels": plab, "image": pimg, "pixel_size": 2.0},
          {"labels": "labels", "image": "array", "pixel_size": "len"}, pos=("labels", "image")),
        S("measure.measure_series", {"labels": glab, "image": mov, "pixel_size": 2.0},
          {"labels": "labels", "image": "array", "pixel_size": "len"}, pos=("labels", "image")),
        S("measure.instances_from_classes", {"labels": plab}, {"labels": "labels"}, pos=("labels",)),
        S("measure.match_labels", {"pred": plab, "truth": plab, "iou_threshold": 0.5},
          {"pred": "labels", "truth": "labels", "iou_threshold": "frac"}, pos=("pred", "truth")),
        S("measure.classify", {"table": table, "method": "kmeans", "n_classes": 2, "max_classes": 3},
          {"table": "table", "method": "choice", "n_classes": "count", "max_classes": "count"}, pos=("table",)),
        S("measure.classify_supervised", {"table": table, "tags": L(lambda: np.array([1, 2] + [0] * (len(_table()) - 2))),
                                          "n_estimators": 5},
          {"table": "table", "tags": "labels", "n_estimators": "count"}, pos=("table", "tags")),
        # ---------------------------------------------------------------- tracking
        S("tracking.track_objects", {"labels": glab, "pixel_size": 2.0, "max_distance": 100.0, "gap_frames": 1},
          {"labels": "labels", "pixel_size": "len", "max_distance": "len", "gap_frames": "count0"}, pos=("labels",)),
        S("tracking.link_table", {"table": L(lambda: _tracks().drop(columns=["track_id"])), "max_distance": 100.0,
                                  "gap_frames": 1},
          {"table": "table", "max_distance": "len", "gap_frames": "count0"}, pos=("table",)),
        S("tracking.relabel_by_track", {"labels": glab, "tracks": tracks}, {"labels": "labels", "tracks": "table"},
          pos=("labels", "tracks")),
        S("tracking.growth_curves", {"tracks": tracks, "value": "area", "frame_interval": 1.0},
          {"tracks": "table", "value": "str", "frame_interval": "len"}, pos=("tracks",), allow_nan=True),
        S("tracking.link_accuracy", {"tracks": tracks, "labels": glab, "truth": glab},
          {"tracks": "table", "labels": "labels", "truth": "labels"}, pos=("tracks", "labels", "truth")),
        # ---------------------------------------------------------------- tomo
        S("tomo.slab_bounds", {"index": 5, "thickness": 3, "size": 12},
          {"index": "index", "thickness": "count", "size": "count"}, pos=("index", "thickness", "size")),
        S("tomo.slices_from_angstrom", {"thickness_A": 30.0, "voxel_size_A": 8.0},
          {"thickness_A": "len0", "voxel_size_A": "len"}, pos=("thickness_A", "voxel_size_A")),
        S("tomo.slab_mean", {"volume": vol, "index": 5, "thickness": 3, "axis": 0, "step": 1},
          {"volume": "array", "index": "index", "thickness": "count", "axis": "axis", "step": "count"},
          pos=("volume", "index")),
        S("tomo.orthoslice", {"volume": vol, "index": 5, "axis": 1, "thickness": 2, "binning": 2, "step": 1},
          {"volume": "array", "index": "index", "axis": "axis", "thickness": "count", "binning": "count",
           "step": "count"}, pos=("volume", "index")),
        S("tomo.bin_image", {"image": L(lambda: _volume()[0].copy()), "factor": 2}, {"image": "array", "factor": "count"},
          pos=("image", "factor")),
        # lazy results: compute what napari would show first, the middle slice of each level
        S("tomo.bin_volume", {"volume": vol, "factor": 2}, {"volume": "array", "factor": "count"},
          pos=("volume", "factor"), call=lambda volume, factor: _middle(
              __import__("napari_cryomat.core.tomo", fromlist=["x"]).bin_volume(volume, factor))),
        S("tomo.binned_pyramid", {"volume": vol, "factors": (2, 3)}, {"volume": "array", "factors": "vec2"},
          pos=("volume",), call=lambda volume, factors: [_middle(a) for _, a in __import__(
              "napari_cryomat.core.tomo", fromlist=["x"]).binned_pyramid(volume, factors=factors)]),
        S("tomo.lowpass_slices", {"volume": vol, "sigma_A": 10.0, "pixel_size_A": 4.0},
          {"volume": "array", "sigma_A": "len0", "pixel_size_A": "len"}, pos=("volume",),
          call=lambda **kw: _middle(__import__("napari_cryomat.core.tomo", fromlist=["x"]).lowpass_slices(**kw))),
        S("tomo.binned_scale_translate", {"scale": (8.0, 8.0, 8.0), "translate": (0.0, 0.0, 0.0), "factor": 2},
          {"scale": "vec2", "translate": "vec2", "factor": "count"}, pos=("scale", "translate", "factor")),
        # a plain evaluation: NaN voxels in the data come back as they are
        S("tomo.compute_slices", {"array": vol}, {"array": "array"}, pos=("array",), allow_nan=True),
        S("tomo.percentile_contrast", {"data": vol, "percentiles": (0.5, 99.5), "max_samples": 1000},
          {"data": "array", "percentiles": "window", "max_samples": "count"}, pos=("data",)),
        S("tomo.slab_contrast", {"volume": vol, "index": 5, "thickness": 2, "axis": 0, "percentiles": (1.0, 99.0),
                                 "max_samples": 1000},
          {"volume": "array", "index": "index", "thickness": "count", "axis": "axis", "percentiles": "window",
           "max_samples": "count"}, pos=("volume", "index")),
        S("tomo.gaussian_lowpass", {"image": L(lambda: _volume()[0].copy()), "sigma_A": 10.0, "pixel_size_A": 4.0},
          {"image": "array", "sigma_A": "len0", "pixel_size_A": "len"}, pos=("image",)),
        S("tomo.distance_angstrom", {"p0": (0.0, 1.0, 2.0), "p1": (3.0, 4.0, 5.0), "voxel_size": (8.0, 8.0, 8.0)},
          {"p0": "vec2", "p1": "vec2", "voxel_size": "vec2"}, pos=("p0", "p1")),
        # ---------------------------------------------------------------- picks
        S("picks.write_picks_csv", {"path": csv_path, "points_zyx": pts3, "voxel_size": (8.0, 8.0, 8.0)},
          {"points_zyx": "points", "voxel_size": "vec2"}, pos=("path", "points_zyx")),
        S("picks.read_picks_csv", {"path": read_csv_path}, {"path": "path_in"}, pos=("path",)),
        S("picks.write_picks_star", {"path": star_path, "points_zyx": pts3, "voxel_size": (8.0, 8.0, 8.0)},
          {"points_zyx": "points", "voxel_size": "vec2"}, pos=("path", "points_zyx")),
        S("picks.read_picks_star", {"path": read_star_path}, {"path": "path_in"}, pos=("path",)),
        S("picks.read_picks", {"path": read_csv_path}, {"path": "path_in"}, pos=("path",)),
        # ---------------------------------------------------------------- spectral
        S("spectral.energy_axis", {"offset": 100.0, "scale": 0.5, "size": 100},
          {"offset": "real", "scale": "len", "size": "count"}),
        S("spectral.check_energy_axis", {"energy": energy, "n_channels": L(lambda: _eels()[1].size)},
          {"energy": "energy", "n_channels": "count"}, pos=("energy", "n_channels")),
        S("spectral.check_spectrum_image", {"si": si}, {"si": "array"}, pos=("si",)),
        S("spectral.check_counts", {"data": si, "tolerance": 0.0}, {"data": "array", "tolerance": "len0"}, pos=("data",)),
        S("spectral.window_slice", {"energy": energy, "window": (250.0, 280.0)}, {"energy": "energy", "window": "window"},
          pos=("energy", "window")),
        S("spectral.parse_elements", {"text": "Fe, Pt"}, {"text": "str"}, pos=("text",)),
        S("spectral.eels_edges", {"element": "Fe", "energy_range": (100.0, 1000.0)},
          {"element": "str", "energy_range": "window"}, pos=("element",)),
        S("spectral.choose_edge", {"element": "C", "energy": energy, "min_pre_edge": 5.0},
          {"element": "str", "energy": "energy", "min_pre_edge": "len0"}, pos=("element",)),
        S("spectral.default_eels_windows", {"onset": 284.0, "energy": energy},
          {"onset": "len", "energy": "energy"}, pos=("onset",)),
        S("spectral.fit_power_law", {"si": si, "energy": energy, "window": (250.0, 280.0), "method": "lsq"},
          {"si": "array", "energy": "energy", "window": "window", "method": "choice"}, pos=("si",)),
        S("spectral.power_law", {"energy": energy, "a": 1e6, "r": 3.0}, {"energy": "energy", "a": "real", "r": "real"},
          pos=("energy", "a", "r")),
        S("spectral.subtract_background", {"si": si, "energy": energy, "window": (250.0, 280.0)},
          {"si": "array", "energy": "energy", "window": "window", "method": "choice"}, pos=("si",)),
        S("spectral.eels_map", {"si": si, "energy": energy, "background_window": (250.0, 280.0),
                                "integration_window": (284.0, 320.0)},
          {"si": "array", "energy": "energy", "background_window": "window", "integration_window": "window",
           "method": "choice"}, pos=("si",)),
        S("spectral.eels_maps", {"si": si, "energy": energy, "elements": "C, O"},
          {"si": "array", "energy": "energy", "elements": "str", "method": "choice"}, pos=("si",)),
        S("spectral.ratio_map", {"numerator": L(lambda: np.full((4, 5), 2.0)), "denominator": L(lambda: np.full((4, 5), 4.0)),
                                 "min_denominator": 0.1},
          {"numerator": "array", "denominator": "array", "min_denominator": "real"}, pos=("numerator", "denominator"),
          allow_nan=True),
        S("spectral.thickness_log_ratio", {"si": ll_si, "energy": ll_e}, {"si": "array", "energy": "energy",
                                                                          "zlp_threshold": "real"}, pos=("si",)),
        S("eds.eds_lines", {"element": "Fe", "energy_range": (100.0, 20000.0)},
          {"element": "str", "energy_range": "window"}, pos=("element",)),
        S("eds.choose_line", {"element": "Fe", "energy": eds_e, "fwhm_mn_ka": 130.0},
          {"element": "str", "energy": "energy", "fwhm_mn_ka": "len"}, pos=("element",)),
        S("eds.eds_fwhm", {"line_energy": 6400.0, "fwhm_mn_ka": 130.0},
          {"line_energy": "len", "fwhm_mn_ka": "len"}, pos=("line_energy",)),
        S("eds.eds_windows", {"line_energy": 6400.0, "fwhm_mn_ka": 130.0, "integration_width": 2.0,
                                   "background_offset": 2.0, "background_width": 1.0},
          {"line_energy": "len", "fwhm_mn_ka": "len", "integration_width": "len", "background_offset": "len0",
           "background_width": "len"}, pos=("line_energy",)),
        S("eds.eds_net_map", {"si": eds_si, "energy": eds_e,
                                   "windows": L(lambda: __import__("napari_cryomat.core.eds", fromlist=["x"]).eds_windows(6400.0))},
          {"si": "array", "energy": "energy"}, pos=("si",)),
        S("eds.eds_maps", {"si": eds_si, "energy": eds_e, "elements": "Fe, Pt", "fwhm_mn_ka": 130.0},
          {"si": "array", "energy": "energy", "elements": "str", "fwhm_mn_ka": "len"}, pos=("si",)),
        S("eds.identify_elements", {"spectrum": spec1, "energy": eds_e, "fwhm_mn_ka": 130.0, "min_snr": 5.0,
                                         "min_energy": 200.0},
          {"spectrum": "array", "energy": "energy", "fwhm_mn_ka": "len", "min_snr": "len0", "min_energy": "len0"},
          pos=("spectrum",)),
        S("eds.snip_background", {"spectrum": spec1, "width": 20}, {"spectrum": "array", "width": "count"},
          pos=("spectrum",)),
        S("eds.cliff_lorimer", {"intensities": L(lambda: {"Fe": np.full((3, 3), 100.0), "Pt": np.full((3, 3), 50.0)}),
                                     "k_factors": {"Fe": 1.0, "Pt": 1.8}, "min_total": 0.0},
          {"min_total": "len0"}, pos=("intensities",)),
        S("spectral.pca", {"si": si, "max_components": 4, "oversample": 2, "n_iter": 1},
          {"si": "array", "max_components": "count", "oversample": "count0", "n_iter": "count0"}, pos=("si",)),
        S("spectral.pca_reconstruct", {"result": L(_pca), "n_components": 2}, {"n_components": "count"},
          pos=("result",)),
        S("spectral.suggest_components", {"explained_variance": L(lambda: np.array([10.0, 5.0, 1.0, 0.5, 0.4, 0.41, 0.39])),
                                          "noise_tail": 0.5},
          {"explained_variance": "array", "noise_tail": "frac"}, pos=("explained_variance",)),
        S("spectral.line_profile", {"image": pimg, "start": (10.0, 5.0), "end": (50.0, 60.0), "pixel_size": 2.0,
                                    "width": 3, "order": 1},
          {"image": "array", "start": "vec2", "end": "vec2", "pixel_size": "len", "width": "count", "order": "count0"},
          pos=("image",)),
        # ---------------------------------------------------------------- units
        S("units.length_to_angstrom", {"value": 2.0, "unit": "nm"}, {"value": "real", "unit": "str"}, pos=("value", "unit")),
        S("units.reciprocal_to_inverse_angstrom", {"value": 2.0, "unit": "1/nm"}, {"value": "real", "unit": "str"},
          pos=("value", "unit")),
        S("units.energy_to_ev", {"value": 2.0, "unit": "keV"}, {"value": "real", "unit": "str"}, pos=("value", "unit")),
        S("units.time_to_seconds", {"value": 2.0, "unit": "ms"}, {"value": "real", "unit": "str"}, pos=("value", "unit")),
        S("units.calibrate_axis", {"scale": 0.2, "unit": "nm"}, {"scale": "real", "unit": "str"}, pos=("scale", "unit")),
        S("units.angstrom_units", {"ndim": 3}, {"ndim": "count"}, pos=("ndim",)),
        S("units.readable_lengths", {"angstrom": 5158872.0}, {"angstrom": "real"}, pos=("angstrom",)),
        # ---------------------------------------------------------------- annotation
        S("annotation.image_key", {"data": pimg, "name": "img"}, {"data": "array"}, pos=("data",)),
        S("annotation.save_annotation", {"folder": L(lambda: os.path.join(_tmpdir(), f"ann-{os.getpid()}")),
                                         "key": "k1", "labels": plab},
          {"key": "key", "labels": "labels"}, pos=("folder", "key", "labels")),
        S("annotation.autosave_path", {"folder": L(lambda: _tmpdir()), "key": "k1"}, {"key": "key"}, pos=("folder", "key")),
    ]
    return out


# -------------------------------------------------------------------------------------------------
# outcome of one call
# -------------------------------------------------------------------------------------------------
def _nonfinite(x, depth=0) -> bool:
    """True if ``x`` (arrays, numbers, dataclasses, tables, containers) holds NaN or inf."""
    if depth > 6 or x is None or isinstance(x, (str, bytes, bool)):
        return False
    if isinstance(x, (float, complex, np.floating, np.complexfloating)):
        return not np.isfinite(x)
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "fc":
            if x.size > 50_000_000:
                return False
            return not bool(np.all(np.isfinite(x)))
        if x.dtype == object:
            return any(_nonfinite(v, depth + 1) for v in x.ravel()[:1000])
        return False
    mod = type(x).__module__
    if mod.startswith("pandas"):
        try:
            num = x.select_dtypes(include=[np.number]) if hasattr(x, "select_dtypes") else x
            return not bool(np.all(np.isfinite(np.asarray(num, dtype=float))))
        except (TypeError, ValueError):
            return False
    if mod.startswith("dask"):
        return False
    if hasattr(x, "__dataclass_fields__"):
        return any(_nonfinite(getattr(x, f), depth + 1) for f in x.__dataclass_fields__)
    if isinstance(x, dict):
        return any(_nonfinite(v, depth + 1) for v in x.values())
    if isinstance(x, (list, tuple)):
        return any(_nonfinite(v, depth + 1) for v in list(x)[:1000])
    return False


def names_param(message: str, param: str) -> bool:
    words = {param, param.replace("_", " ")}
    if param.endswith("s") and len(param) > 3:  # "frames" is named by "Frame 3 contains NaN"
        words.add(param[:-1])
    if param.endswith("_A"):
        words.add(param[:-2].replace("_", " "))
    if param == "points_zyx":
        words |= {"points", "picks"}
    for w in words:
        if re.search(r"(?<![A-Za-z0-9])" + re.escape(w) + r"(?![A-Za-z0-9])", message, flags=re.IGNORECASE):
            return True
    return False


def _resolve(name: str):
    import importlib

    parts = name.split(".")
    mod = importlib.import_module("napari_cryomat.core." + parts[0])
    obj = mod
    for p in parts[1:]:
        obj = getattr(obj, p)
    return obj


def make_call(spec: Spec, param: str | None, factory: Callable | None):
    def call():
        kwargs = {}
        for k, v in spec.good.items():
            kwargs[k] = _v(v)
        if param is not None:
            kwargs[param] = factory()
        fn = spec.call or _resolve(spec.name)
        if spec.call is not None:
            return fn(**kwargs)
        args = [kwargs.pop(p) for p in spec.pos if p in kwargs]
        return fn(*args, **kwargs)

    return call


@dataclass
class Call:
    function: str
    param: str | None
    label: str
    run: Callable
    allow_nan: bool | tuple = False


def issue_calls() -> list[Call]:
    """The calls issue #11 names: each must now end in a ValueError naming ``param`` (or, for
    snip_background with an absurd width, in the finite result of the widest useful width)."""
    from napari_cryomat.core import drift, eds, fourier, measure, segment

    def gpa_nan():
        img, lat = _lattice()
        return fourier.gpa(img, np.array([np.nan, 0.1]), lat.g2, 0.05, pixel_size=0.5)

    def snip_huge():
        spec = np.abs(np.random.default_rng(0).normal(100, 10, 512))
        a = eds.snip_background(spec, width=1e9)
        if not np.allclose(a, eds.snip_background(spec, width=256)):
            raise AssertionError("width=1e9 differs from the widest useful width")
        return a

    def classifier_nan():
        im, scr = _classifier_inputs()
        im = im.copy()
        im[50, 50] = np.nan
        return segment.train_pixel_classifier(im, scr, n_estimators=5, cache=False)

    def pld_constant():
        _, lat = _lattice()
        return fourier.pld_map(np.full((64, 64), 3.0, np.float32), lat.g1 / 3, lattice=(lat.g1, lat.g2), pixel_size=0.5)

    cases = [
        ("gpa_nan_vector", "g1", gpa_nan),
        ("snip_background_width_1e9", "width", snip_huge),
        ("predict_tile_size_1", "tile_size", lambda: _classifier().predict(_particles()[0], tile_size=1)),
        ("estimate_drift_pixel_size_nan", "pixel_size",
         lambda: drift.estimate_drift(_movie(), pixel_size=float("nan"))),
        ("measure_pixel_size_inf", "pixel_size", lambda: measure.measure(_particles()[1], pixel_size=float("inf"))),
        ("train_pixel_classifier_nan_pixel", "image", classifier_nan),
        ("bragg_filter_radius_nan", "radius",
         lambda: fourier.bragg_filter(_lattice()[0], [_lattice()[1].g1], float("nan"), pixel_size=0.5)),
        ("pld_map_constant_image", "image", pld_constant),
        ("dose_weights_pixel_size_0", "pixel_size",
         lambda: drift.dose_weights(4, (32, 32), pixel_size=0.0, dose_per_frame=1.0)),
        ("power_spectrum_complex", "image",
         lambda: fourier.power_spectrum(_lattice()[0].astype(np.complex64), 0.5)),
    ]
    return [Call(f"issue11.{name}", param, "issue", fn) for name, param, fn in cases]


def all_calls(only: str | None = None) -> list[Call]:
    calls = []
    for spec in specs():
        if only and only not in spec.name:
            continue
        calls.append(Call(spec.name, None, "good", make_call(spec, None, None), spec.allow_nan))
        for param, kind in spec.kinds.items():
            good = spec.good.get(param)
            good_value = _v(good) if good is not None else None
            try:
                values = bad_values(kind, good_value)
            except Exception as exc:  # noqa: BLE001 - a broken good value for this kind
                values = [("(spec error)", lambda exc=exc: (_ for _ in ()).throw(exc))]
            for label, factory in values:
                calls.append(Call(spec.name, param, label, make_call(spec, param, factory), spec.allow_nan))
    return calls


def classify(call: Call, good_nonfinite: bool) -> dict:
    import warnings

    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = call.run()
    except ValueError as exc:
        msg = str(exc)
        if call.param is None:
            outcome = "unclear"
        else:
            outcome = "clean" if names_param(msg, call.param) else "unclear"
        out = {"outcome": outcome, "detail": f"{type(exc).__name__}: {msg}"}
    except MemoryError as exc:
        out = {"outcome": "memory", "detail": f"MemoryError: {exc}"}
    except Exception as exc:  # noqa: BLE001 - that is the point
        out = {"outcome": "obscure", "detail": f"{type(exc).__name__}: {exc}"}
    else:
        if isinstance(call.allow_nan, tuple) and hasattr(res, "__dataclass_fields__"):
            res = {f: getattr(res, f) for f in res.__dataclass_fields__ if f not in call.allow_nan}
            bad = _nonfinite(res) and not good_nonfinite
        else:
            bad = _nonfinite(res) and not call.allow_nan and not good_nonfinite
        out = {"outcome": "nan" if bad else "ok", "detail": ""}
    out["seconds"] = round(time.perf_counter() - t0, 3)
    out["detail"] = out["detail"][:300]
    return out


# -------------------------------------------------------------------------------------------------
# workers
# -------------------------------------------------------------------------------------------------
def _vm_kb(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


_GOOD_NONFINITE: dict[str, bool] = {}  # function -> its good call returned NaN/inf (kept by the parent)


def _worker(calls: list[Call], start: int, wfd: int, mem_cap_gb: float) -> None:
    os.setpgid(0, 0)
    cap = _vm_kb("VmSize") * 1024 + int(mem_cap_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    good_nonfinite = dict(_GOOD_NONFINITE)  # inherited from the parent at fork
    for i in range(start, len(calls)):
        c = calls[i]
        os.write(wfd, (json.dumps({"start": i}) + "\n").encode())
        res = classify(c, good_nonfinite.get(c.function, False))
        if c.param is None:
            good_nonfinite[c.function] = res["outcome"] == "nan"
        res["i"] = i
        os.write(wfd, (json.dumps(res) + "\n").encode())
    os._exit(0)


def run(calls: list[Call], *, timeout: float = 20.0, mem_cap_gb: float = 3.0, verbose: bool = False) -> list[dict]:
    """Run ``calls`` in forked workers; a worker that hangs or dies is replaced by a new one that
    carries on with the next call."""
    results: list[dict | None] = [None] * len(calls)
    i = 0
    while i < len(calls):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                _worker(calls, i, w, mem_cap_gb)
            finally:
                os._exit(70)
        os.close(w)
        buf = b""
        current, t_start, eof = i, time.monotonic(), False
        while True:
            ready, _, _ = select.select([r], [], [], 0.5)
            if ready:
                chunk = os.read(r, 1 << 16)
                if not chunk:
                    eof = True
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = json.loads(line)
                    if "start" in msg:
                        current, t_start = msg["start"], time.monotonic()
                        continue
                    results[msg["i"]] = msg
                    if calls[msg["i"]].param is None:
                        _GOOD_NONFINITE[calls[msg["i"]].function] = msg["outcome"] == "nan"
                    i = msg["i"] + 1
                    if verbose:
                        c = calls[msg["i"]]
                        print(f"{c.function:<40} {c.param or '-':<22} {c.label:<14} {msg['outcome']:<8} "
                              f"{msg['seconds']:>6.2f}s {msg['detail'][:120]}", flush=True)
            if results[current] is None and time.monotonic() - t_start > timeout:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                results[current] = {"outcome": "hang", "detail": f"no answer in {timeout:.0f} s", "seconds": timeout,
                                    "i": current}
                if verbose:
                    c = calls[current]
                    print(f"{c.function:<40} {c.param or '-':<22} {c.label:<14} hang", flush=True)
                i = current + 1
                break
        _, status = os.waitpid(pid, 0)
        os.close(r)
        if eof and current < len(calls) and results[current] is None:
            how = (signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status)
                   else f"exit {os.WEXITSTATUS(status)}")
            results[current] = {"outcome": "crash", "detail": how, "seconds": 0.0, "i": current}
            if verbose:
                print(f"{calls[current].function:<40} {calls[current].param or '-':<22} crash {how}", flush=True)
            i = current + 1
    return [r if r is not None else {"outcome": "crash", "detail": "lost", "seconds": 0.0} for r in results]


def table(calls: list[Call], results: list[dict], title: str = "") -> str:
    per_mod: dict[str, Counter] = defaultdict(Counter)
    for c, r in zip(calls, results):
        if c.param is None:
            continue
        per_mod[c.function.split(".")[0]][r["outcome"]] += 1
    n_funcs = defaultdict(set)
    for c in calls:
        n_funcs[c.function.split(".")[0]].add(c.function)
    lines = [title] if title else []
    lines.append(f"{'module':<12}{'funcs':>6}" + "".join(f"{o:>9}" for o in OUTCOMES) + f"{'calls':>8}")
    tot = Counter()
    for mod in sorted(per_mod):
        c = per_mod[mod]
        tot.update(c)
        lines.append(f"{mod:<12}{len(n_funcs[mod]):>6}" + "".join(f"{c.get(o, 0):>9}" for o in OUTCOMES)
                     + f"{sum(c.values()):>8}")
    lines.append(f"{'all':<12}{sum(len(v) for v in n_funcs.values()):>6}" + "".join(f"{tot.get(o, 0):>9}" for o in OUTCOMES)
                 + f"{sum(tot.values()):>8}")
    return "\n".join(lines)


def prewarm() -> None:
    import importlib

    for m in ("drift", "fourier", "measure", "picks", "segment", "spectral", "tomo", "tracking", "units",
              "annotation"):
        importlib.import_module("napari_cryomat.core." + m)
    import dask.array  # noqa: F401
    import laptrack  # noqa: F401
    import pandas  # noqa: F401
    import scipy.ndimage  # noqa: F401
    import skimage.feature  # noqa: F401
    import skimage.filters  # noqa: F401
    import skimage.measure  # noqa: F401
    import skimage.restoration  # noqa: F401
    import skimage.segmentation  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.mixture  # noqa: F401
    import starfile  # noqa: F401
    import xraylib  # noqa: F401


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=None, help="substring of 'module.function' to run")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds before a call counts as a hang")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--issue-cases", action="store_true", help="also run the calls named in issue #11")
    args = ap.parse_args(argv)
    prewarm()
    with tempfile.TemporaryDirectory(prefix="cryomat-api-fuzz-") as tmp:
        os.environ["CRYOMAT_FUZZ_TMP"] = tmp
        calls = all_calls(args.only) + (issue_calls() if args.issue_cases else [])
        t0 = time.monotonic()
        results = run(calls, timeout=args.timeout, verbose=args.verbose)
        dt = time.monotonic() - t0
    print()
    print(table(calls, results, f"Core API with bad inputs: {sum(c.param is not None for c in calls)} bad calls over "
                                f"{len({c.function for c in calls})} functions, {dt:.0f} s"))
    broken_good = [(c.function, r) for c, r in zip(calls, results) if c.param is None and r["outcome"] != "ok"]
    if broken_good:
        print("\nGood calls that did not succeed (fix the spec or the function):")
        for f, r in broken_good:
            print(f"  {f}: {r['outcome']} {r['detail'][:150]}")
    print("\nProblems:")
    for c, r in zip(calls, results):
        if c.param is not None and r["outcome"] in BAD:
            print(f"  {r['outcome']:<8} {c.function}({c.param}={c.label}): {r['detail'][:160]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"function": c.function, "param": c.param, "label": c.label, **r} for c, r in zip(calls, results)],
                      f, indent=0)
    return 1 if any(r["outcome"] in BAD for c, r in zip(calls, results) if c.param is not None) else 0


if __name__ == "__main__":
    sys.exit(main())
