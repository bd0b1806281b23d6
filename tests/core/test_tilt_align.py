"""Fiducial-free alignment on phantoms with a known misalignment: shifts at low dose, the blind axis angle.

The phantoms, their tilt-axis angles and their shifts are random (seeded); the truth carries no gauge
(mean along the axis, ``x0 cosθ + z0 sinθ`` across it), so the recovered shifts are compared as they are.
"""

import numpy as np
import pytest

from napari_cryomat.core import _tilt_align as engine
from napari_cryomat.core import tilt
from napari_cryomat.core.synthetic.tilt import make_tilt_series


def _rms(a, b):
    return float(np.sqrt(np.mean(np.sum((np.asarray(a) - np.asarray(b)) ** 2, axis=1))))


def _axis_error(found, truth):
    return abs((found - truth + 90) % 180 - 90)


@pytest.mark.parametrize("seed", [20, 23])
def test_low_dose_shifts_with_the_axis_given(seed):
    """4 counts/px, ±8 px on a 96² phantom at a random axis angle: within 0.65 px RMS (0.49 and 0.47 px
    with the count-space stage of ``_tilt_refine``; 0.80 and 0.82 px without it)."""
    alpha = float(np.random.default_rng(seed).uniform(-80, 80))
    s = make_tilt_series(shape=(64, 96, 96), n_tilts=41, max_shift=8.0, dose=4.0, tilt_axis_angle=alpha, seed=seed)
    assert _rms(np.zeros_like(s.shifts), s.shifts) > 5.0  # the misalignment is real
    al = tilt.align_tilt_series(s.tilts, s.angles, tilt_axis_angle=alpha)
    err = _rms(al.shifts, s.shifts)
    assert err < 0.65
    assert err < 0.3 * _rms(np.zeros_like(s.shifts), s.shifts)
    # the residuals are those of the alignment returned (not of an earlier stage's shifts): the
    # correlation of each tilt with its reprojection at the returned shifts, on the finest level (2x);
    # those of the last projection-matching pass (reported before) differed by up to 0.010 on seed 20
    work = engine.prepare(s.tilts, 2)
    shape = engine.aligned_shape(work.shape[1:], alpha)
    t = al.shifts @ engine.rotation(alpha) / 2
    _, peaks = engine.match_once(work, s.angles, alpha, t, engine.Matcher(s.angles, shape, 48), max_shift=3,
                                 band=engine.bandpass(shape, 0.003, 0.3), win=engine._match_window(shape), order=3)
    assert np.allclose(al.residuals, 1 - peaks, atol=1e-3)


def test_levels_follow_the_dose():
    """Count data is binned until ~16 counts per pixel (1 count/px: 4x), never below 24 pixels."""
    rng = np.random.default_rng(0)
    assert engine._levels(rng.poisson(1.0, (5, 256, 256)).astype(np.float32), 256) == [16, 8, 4][1:]
    assert engine._levels(rng.poisson(50.0, (5, 64, 64)).astype(np.float32), 256)[-1] == 1
    assert engine._levels(rng.normal(size=(5, 512, 512)).astype(np.float32), 256)[-1] == 2  # not counts


def test_blind_axis_angle_at_moderate_dose():
    """Axis found from the data (random angle, 50 counts/px, 64²): within 2.5° (the #15 target, 0.3°,
    is not met yet) and the shifts as good as with the axis given."""
    rng = np.random.default_rng(31)
    alpha = float(rng.uniform(-80, 80))
    s = make_tilt_series(shape=(48, 64, 64), n_tilts=41, max_shift=5.0, dose=50.0, tilt_axis_angle=alpha, seed=31)
    al = tilt.align_tilt_series(s.tilts, s.angles)
    assert _axis_error(al.tilt_axis_angle, alpha) < 2.5
    assert _rms(al.shifts, s.shifts) < 1.0


def test_chain_drops_to_a_finer_level_when_the_coarse_copy_holds_only_noise():
    """A thin specimen whose only shared content is small gold beads: on the coarsest copy the beads
    average away and a neighbour chain of noise walked 146 px RMS off (256² field). The chain now runs
    on the coarsest level whose correlations are significant."""
    from napari_cryomat.core.fiducials import _remove_gauge
    from napari_cryomat.core.synthetic.beads import bead_tilt_series

    rng = np.random.default_rng(1050)
    alpha, diam = float(rng.uniform(-85, 85)), float(rng.uniform(5, 12))
    tilts, truth = bead_tilt_series((256, 256), n_beads=int(rng.integers(8, 30)), bead_diameter_px=diam,
                                    tilt_axis_angle=alpha, dose=5.0, seed=50)
    al = tilt.align_tilt_series(tilts, truth["angles"], tilt_axis_angle=alpha)
    ref, _ = _remove_gauge(truth["shifts"], truth["beads"], np.deg2rad(truth["angles"]), alpha)
    assert np.sqrt(np.mean((al.shifts - ref) ** 2)) < 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_axis_position_from_the_sharpest_back_projection(seed):
    """Every tilt moved by the same random offset across the axis (the axis off the image centre, the
    mode projection matching barely sees): the sharpness scan finds it within 0.8 px at 20 counts/px."""
    from napari_cryomat.core._tilt_centre import centre_axis
    from napari_cryomat.core.synthetic.tilt import project_spheres

    rng = np.random.default_rng(seed)
    s = make_tilt_series(shape=(48, 64, 64), n_tilts=41, max_shift=0, tilt_axis_angle=0, seed=seed + 30)
    offset = rng.uniform(-3, 3)
    raw = project_spheres(s.spheres, s.angles, (64, 64), shifts=np.tile([0.0, offset], (41, 1)))
    counts = rng.poisson(20 * np.exp(-s.contrast * raw)).astype(np.float32)
    t = centre_axis(engine.prepare(counts, 1), s.angles, 0.0, np.zeros((41, 2)), n_z=48)
    assert np.all(t[:, 0] == 0) and np.ptp(t[:, 1]) == 0
    assert abs(t[0, 1] - offset) < 0.8
