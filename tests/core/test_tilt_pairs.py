"""The robust global solve of tilt-pair shifts (coarse step of fiducial-free alignment), and the refusal
of shifts beyond the field.

Pair measurements follow the flat-specimen model ``t_j,y - t_i,y = d_y``, ``t_j,x - (cos θ_j / cos θ_i)
t_i,x = d_x`` (``i`` the tilt nearer zero); shifts are compared after removing the gauge."""

import numpy as np
import pytest
from scipy import ndimage

from napari_cryomat.core import _tilt_align as engine
from napari_cryomat.core import _tilt_pairs as pairs_mod
from napari_cryomat.core import _tilt_xcorr as xc
from napari_cryomat.core import tilt


def _measured_pairs(t, angles, rng, *, separations, noise):
    cos = np.cos(np.deg2rad(angles))
    out = []
    for k in range(1, separations + 1):
        for a in range(len(angles) - k):
            i, j = (a, a + k) if abs(angles[a]) <= abs(angles[a + k]) else (a + k, a)
            d = np.array([t[j, 0] - t[i, 0], t[j, 1] - cos[j] / cos[i] * t[i, 1]]) + rng.normal(0, noise, 2)
            out.append((i, j, d, float(rng.uniform(5, 9))))
    return out


def _rms(a, b, angles):
    e = engine.remove_gauge(a, angles) - engine.remove_gauge(b, angles)
    return float(np.sqrt(np.mean(np.sum(e ** 2, axis=1))))


@pytest.mark.parametrize("seed", range(6))
def test_wrong_links_are_outvoted_by_the_other_pairs(seed):
    """Random shifts (±20 px, 41 tilts); three neighbour links locked onto a wrong pattern with a
    confident peak (a 20-45 px error, z = 9) and a few wrong longer pairs. A neighbour chain carries every
    wrong link into all tilts beyond it; the robust solve over pairs up to 3 apart stays within noise."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(-60, 60, 41)
    t = engine.remove_gauge(rng.uniform(-20, 20, (41, 2)), angles)
    pairs = _measured_pairs(t, angles, rng, separations=3, noise=0.1)
    neighbours = [k for k, p in enumerate(pairs) if abs(p[1] - p[0]) == 1]
    far = [k for k, p in enumerate(pairs) if abs(p[1] - p[0]) > 1]
    for k in list(rng.choice(neighbours, 3, replace=False)) + list(rng.choice(far, 4, replace=False)):
        i, j, d, _ = pairs[k]
        pairs[k] = (i, j, d + rng.uniform(20, 45, 2) * rng.choice([-1, 1], 2), 9.0)
    chain, _ = pairs_mod.solve_pairs([pairs[k] for k in neighbours], angles)
    robust, weights = pairs_mod.solve_pairs(pairs, angles)
    assert _rms(chain, t, angles) > 5.0
    assert _rms(robust, t, angles) < 0.3
    wrong = np.array([np.hypot(*(p[2] - q[2])) > 1 for p, q in
                      zip(pairs, _measured_pairs(t, angles, np.random.default_rng(99), separations=3, noise=0.0))])
    assert np.all(weights[wrong] < 0.05 * np.median(weights[~wrong]))


def test_an_insignificant_link_is_bridged():
    """A neighbour pair whose peak is no higher than noise gives (z <= 3) carries no weight; the pairs
    around it tie the two halves of the series together."""
    rng = np.random.default_rng(5)
    angles = np.linspace(-54, 66, 41)
    t = engine.remove_gauge(rng.uniform(-15, 15, (41, 2)), angles)
    pairs = _measured_pairs(t, angles, rng, separations=2, noise=0.05)
    k = next(k for k, p in enumerate(pairs) if {p[0], p[1]} == {12, 13})
    pairs[k] = (pairs[k][0], pairs[k][1], np.array([30.0, -40.0]), 2.8)
    t_found, weights = pairs_mod.solve_pairs(pairs, angles)
    assert weights[k] == 0
    assert _rms(t_found, t, angles) < 0.15


def test_pair_shifts_measure_the_stretched_model_on_a_flat_texture():
    """A flat textured specimen (foreshortened by cos θ) with known per-tilt shifts: each measured pair
    matches ``t_j - c t_i`` and the solve recovers the shifts to a fraction of a pixel."""
    rng = np.random.default_rng(7)
    angles = np.linspace(-60, 60, 21)
    big = ndimage.gaussian_filter(rng.normal(size=(96, 192)), 2.0)
    t = engine.remove_gauge(rng.uniform(-4, 4, (21, 2)), angles)
    rows, cols = np.mgrid[:64, :64].astype(float)
    stack = []
    for k, th in enumerate(np.deg2rad(angles)):  # tilt(y, u) = texture(y - ty, (u - tx) / cos θ)
        y = rows - 31.5 - t[k, 0] + 47.5
        x = (cols - 31.5 - t[k, 1]) / np.cos(th) + 95.5
        stack.append(ndimage.map_coordinates(big, [y, x], order=3))
    stack = engine.normalise(np.array(stack, np.float32))
    band = xc.bandpass((64, 64), 0.003, 0.3)
    win = xc.taper((64, 64), 0.1)
    pairs = pairs_mod.pair_shifts(stack, angles, separations=range(1, 3), max_shift=12, band=band, win=win,
                                  xcorr=xc.xcorr_shift)
    t_found, _ = pairs_mod.solve_pairs(pairs, angles)
    assert min(p[3] for p in pairs) > pairs_mod.NOISE_Z
    assert _rms(t_found, t, angles) < 0.25


def test_shifts_beyond_the_field_are_refused():
    """Pure shot noise has nothing to align on: it is refused with a message pointing to gold beads
    instead of returning the shifts of a walk on noise; so is any shift beyond half the field."""
    noise = np.random.default_rng(3).poisson(2.0, (41, 64, 64)).astype(np.float32)
    with pytest.raises(tilt.ShiftBeyondFieldError, match="beyond half the 64 x 64 field.*gold-bead"):
        tilt.align_tilt_series(noise, np.linspace(-60, 60, 41), tilt_axis_angle=0.0)
    with pytest.raises(tilt.ShiftBeyondFieldError, match=r"\(33, 0\) px for tilt 1, beyond half the 64 x 64"):
        tilt._refuse_beyond_field(np.array([[0.0, 0.0], [33.0, 0.0]]), (64, 64))


def test_noise_is_refused_even_where_its_shifts_stay_in_the_field():
    """Refusing noise must not hang on how far its shifts wander: with an 8-px search, 41 tilts of
    noise were aligned (shifts up to 29 px, inside the 32 px allowed) before the explicit test that the
    neighbours' correlation peaks stand above those with one tilt's pixels shuffled."""
    noise = np.random.default_rng(0).poisson(2.0, (41, 64, 64)).astype(np.float32)
    with pytest.raises(tilt.ShiftBeyondFieldError, match="correlate no better than noise"):
        tilt.align_tilt_series(noise, np.linspace(-60, 60, 41), tilt_axis_angle=0.0, max_shift=8.0)


def test_a_faint_specimen_shares_contrast():
    """A catalyst phantom at 2 counts/px on 96² tilts: the robust z-scores of its neighbour peaks stand
    only ~0.4 above those with shuffled pixels (no test), its correlation peaks above every shuffled one."""
    from napari_cryomat.core import _tilt_contrast as contrast
    from napari_cryomat.core.synthetic.tilt import make_tilt_series

    s = make_tilt_series(shape=(96, 96, 96), n_tilts=61, max_shift=7.5, dose=2.0, seed=5)
    alpha, b = s.tilt_axis_angle, engine._levels(s.tilts, 256)[0]

    def chain_inputs(stack):  # the coarsest level as the chain sees it
        work = engine.prepare(stack, b)
        shape = engine.aligned_shape(work.shape[1:], alpha)
        rot0 = np.stack([engine.resample(w, alpha, (0, 0), shape, cval=0.0) for w in work])
        win = engine.frame_window(work.shape[1:], alpha, (0, 0), shape, engine._match_window(shape))
        kw = dict(max_shift=96 / 4 / b + 2, band=xc.bandpass(shape, 0.003, 0.1), win=win, xcorr=xc.xcorr_shift)
        return work, rot0, s.angles, alpha, kw

    real, null = contrast.neighbour_peaks(*chain_inputs(s.tilts))
    assert real.min() > null.max()
    assert contrast.check_shared_contrast(*chain_inputs(s.tilts)) < 1e-9
    noise = np.random.default_rng(1).poisson(2.0, s.tilts.shape).astype(np.float32)
    with pytest.raises(contrast.NoSharedContrast, match="no better than noise"):
        contrast.check_shared_contrast(*chain_inputs(noise))
