"""Drift on fine lattices: no unit-cell jump at 0.05 counts/px/frame, precision near the Bayesian bound at high dose.

Cases drawn by ``benchmarks/drift_stress.py`` (seeded), reduced to what the tests can afford.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

from napari_cryomat.core import drift as D


@pytest.fixture(scope="module")
def stress():
    path = pathlib.Path(__file__).parents[2] / "benchmarks" / "drift_stress.py"
    spec = importlib.util.spec_from_file_location("drift_stress_for_bound_tests", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.xfail(strict=True, reason=(
    "known failure (issue 12): the default B-factor (150 Å²) cuts the 4 px reflections to a tenth; releasing "
    "it where the stack measures them at 5 nominal standard errors fixes this stack but lets window-correlated "
    "noise through at 0.01 counts (smoother test and benchmarks/drift.py 0.01 row worse); at 10 it stays"))
def test_four_pixel_square_lattice_at_005_counts_never_jumps(stress):
    # stress seed 4: a 4.0 px square lattice with a 1/3-order superlattice over 40 % of the field,
    # 18 frames, drift of 1.9 periods plus a 0.28 px/frame walk; it jumps on a third of its frames
    case = stress.draw_case(4)
    assert case["lattice"] == "square" and case["period"] < 4.1
    m = stress.make_movie(case, 160, 0.05)
    r = D.estimate_drift(m.frames)
    rms, jump = stress.errors(r.shifts, m.shifts, case["period"])
    assert jump == 0.0, rms
    assert rms < 0.8


def test_fine_lattice_at_high_dose_within_1_5_times_the_bayesian_bound(stress):
    # stress seed 3: 5.5 px square lattice; at 10 counts/px/frame every frame is precise alone and the
    # refinement gives the result. With the B-factor applied to the measured reflections RMS/BCRB was 1.8
    # (1.2 with the prior released where the stack measures the signal)
    case = stress.draw_case(3)
    m = stress.make_movie(case, 160, 10.0)
    r = D.estimate_drift(m.frames)
    rms, jump = stress.errors(r.shifts, m.shifts, case["period"])
    bound = stress.bayes_crb_rms(m.clean, case["step"])
    assert jump == 0.0
    assert rms >= bound * 0.9  # a bound: nothing beats it (by more than the noise of one stack)
    assert rms <= 1.5 * bound, (rms, bound)


def test_measured_prior_keeps_the_b_factor_only_where_the_stack_does_not_measure_signal():
    shape = (64, 64)
    bf = D._bfilter(*shape, 400.0)
    n = 20
    p_noise = np.ones(bf.shape)
    p_sig = np.zeros(bf.shape)
    # nominal standard error of the 5x5-smoothed estimate under noise alone: 1 / (5 * 19) = 0.0105
    p_sig[10, 12] = 1.0  # 95 standard errors: measured
    p_sig[20, 3] = 0.08  # 7.6 standard errors: below SIGNIFICANT_SIGMAS (10), not measured
    w = D._measured_prior(bf, p_sig, p_noise, n)
    assert w[10, 12] == 1.0 and bf[10, 12] < 0.1
    assert w[20, 3] == bf[20, 3] and bf[20, 3] < 1.0
    assert np.array_equal(w[p_sig == 0], bf[p_sig == 0])
