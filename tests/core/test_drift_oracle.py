"""The oracle bound of benchmarks/drift_oracle.py: its posterior is exact where the answer is known, and its
specimen is the stress generator's own.

The oracle (the estimator given the true specimen) lower-bounds the jump rate and RMS any drift method can
reach on the stress suite; a wrong posterior or a specimen that is not the generator's would make that bound
meaningless.
"""


import numpy as np
import pytest


@pytest.fixture(scope="module")
def oracle(benchmark_module):
    return benchmark_module("drift_oracle")


def test_grid_posterior_matches_the_kalman_smoother(benchmark_module):
    # Gaussian frame likelihoods: the exact posterior is the Kalman smoother's, with the velocity known and
    # with a flat velocity prior, for a walk step above and below the grid spacing
    lines = benchmark_module("drift_oracle_checks").selftest()
    assert len(lines) == 8


@pytest.mark.parametrize("seed", [4, 107])
def test_rerendered_specimen_is_the_generators(oracle, seed):
    case = oracle.stress.draw_case(seed)
    movie = oracle.stress.make_movie(case, 64, 0.05)
    spec = oracle.case_specimen(case, 64, 0.05)
    for s, clean in zip(movie.shifts[::5], movie.clean[::5]):
        assert np.abs(spec.render(s) - clean).max() < 1e-4 * 0.05
    # the extended field at an integer shift k is the frame the generator renders there
    reach, k = 6, np.array([3, -2])
    ext = spec.extended(reach, (0.0, 0.0))
    frame = ext[reach - k[0]: reach - k[0] + 64, reach - k[1]: reach - k[1] + 64]
    assert np.abs(frame - spec.render(k.astype(float))).max() < 1e-4 * 0.05


def test_loglik_map_peaks_at_the_true_shift_at_high_dose(oracle):
    case = oracle.stress.draw_case(4)
    movie = oracle.stress.make_movie(case, 64, 10.0)
    spec = oracle.case_specimen(case, 64, 10.0)
    ll, lo = oracle.loglik_maps(spec, movie.frames[-2:], 3 + int(np.abs(movie.shifts).max()), 0.5)
    for i, truth in zip((0, 1), movie.shifts[-2:]):
        a, b = np.unravel_index(np.argmax(ll[i]), ll[i].shape)
        assert np.hypot(lo + 0.5 * a - truth[0], lo + 0.5 * b - truth[1]) <= 0.36  # the nearest grid point
