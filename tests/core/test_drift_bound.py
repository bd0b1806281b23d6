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


def test_four_pixel_square_lattice_at_005_counts_never_jumps(stress):
    # stress seed 4: a 4.0 px square lattice with a 1/3-order superlattice over 40 % of the field,
    # 18 frames, drift of 1.9 periods plus a 0.28 px/frame walk; it jumped on a third of its frames
    # while the B-factor prior cut the measured Bragg reflections in the refinement
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
    p_sig[10, 12] = 1.0  # 19x the noise of the 5x5-smoothed estimate: measured
    p_sig[20, 3] = 0.02  # below 5 standard errors (0.053): not measured
    w = D._measured_prior(bf, p_sig, p_noise, n)
    assert w[10, 12] == 1.0 and bf[10, 12] < 0.1
    assert w[20, 3] == bf[20, 3]
    assert np.array_equal(w[p_sig == 0], bf[p_sig == 0])
