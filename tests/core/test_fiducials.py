"""Gold-bead alignment: known shifts, axis angle and bead positions recovered; the geometry agrees
with the reconstruction; bad input is refused by name."""

import numpy as np
import pytest

from napari_cryomat.core.fiducials import _remove_gauge, find_beads, fit_bead_model, track_beads
from napari_cryomat.core.synthetic.beads import bead_tilt_series
from napari_cryomat.core.tilt import reconstruct


def _truth_shifts(truth):
    """The true shifts in the alignment's gauge (a translation of the volume is no data)."""
    th = np.deg2rad(truth["angles"])
    return _remove_gauge(truth["shifts"], truth["beads"], th, truth["tilt_axis_angle"])


def _axis_error(found, true):
    return ((found - true + 90) % 180) - 90


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_blind_tracking_recovers_shifts_and_axis(seed):
    """Random axis angle, bead size, count and dose; shifts of up to ±20 px per tilt; axis not given."""
    rng = np.random.default_rng(seed)
    alpha = float(rng.uniform(-85, 85))
    diam = float(rng.uniform(5, 10))
    tilts, truth = bead_tilt_series((160, 160), n_beads=int(rng.integers(8, 14)), bead_diameter_px=diam,
                                    tilt_axis_angle=alpha, dose=float(rng.choice([10.0, 50.0])),
                                    thickness_px=50.0, seed=seed)
    model = track_beads(tilts, truth["angles"], bead_diameter=2 * diam, pixel_size=2.0)
    ref_shifts, ref_beads = _truth_shifts(truth)
    err = model.shifts - ref_shifts
    assert np.sqrt(np.mean(err**2)) < 0.3
    assert abs(_axis_error(model.tilt_axis_angle, alpha)) < 0.3
    assert model.rms_px < 0.5
    assert model.used.sum() > 0.6 * model.used.size
    # every tracked bead is a true bead at the right 3D place
    tracked = model.beads[np.isfinite(model.beads[:, 0])]
    d = np.linalg.norm(tracked[:, None, :] - ref_beads[None, :, :], axis=-1).min(axis=1)
    assert np.all(d < 1.5)


def test_bright_beads_and_a_given_axis():
    """HAADF contrast (beads bright) and the axis from the microscope, a few degrees off."""
    tilts, truth = bead_tilt_series((160, 160), n_beads=10, bead_diameter_px=6.0, tilt_axis_angle=-12.0,
                                    dose=30.0, seed=4)
    bright = tilts.max() - tilts
    model = track_beads(bright, truth["angles"], bead_diameter=6.0, tilt_axis_angle=-9.0)
    assert abs(model.tilt_axis_angle + 12.0) < 0.3
    assert np.sqrt(np.mean((model.shifts - _truth_shifts(truth)[0]) ** 2)) < 0.3


def test_fit_from_given_points_is_exact_with_gaps():
    """Exact bead positions (an imported fiducial model) with a third of them missing: the fit is exact."""
    _, truth = bead_tilt_series((200, 240), n_beads=9, tilt_axis_angle=70.0, seed=2, dose=1.0)
    th = np.deg2rad(truth["angles"])
    b = truth["beads"]
    a = np.deg2rad(70.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    u = b[:, 0][None] * np.cos(th)[:, None] + b[:, 2][None] * np.sin(th)[:, None]
    v = np.broadcast_to(b[:, 1][None], u.shape)
    points = np.array([99.5, 119.5]) + np.stack([v, u], -1) @ rot.T + truth["shifts"][:, None, :]
    gaps = np.random.default_rng(0).random(points.shape[:2]) < 0.3
    points[gaps] = np.nan
    model = fit_bead_model(points, truth["angles"], shape=(200, 240))
    ref_shifts, ref_beads = _truth_shifts(truth)
    assert abs(_axis_error(model.tilt_axis_angle, 70.0)) < 1e-3
    np.testing.assert_allclose(model.shifts, ref_shifts, atol=1e-3)
    np.testing.assert_allclose(model.beads, ref_beads, atol=1e-3)
    assert model.rms_px < 1e-3
    assert np.all(np.isnan(model.residuals[gaps]))


def test_reconstruction_puts_beads_where_the_model_says():
    """The alignment's geometry is the reconstruction's: WBP of the aligned series has its densest
    spots at the fitted bead positions (x, y, z from the volume centre)."""
    from scipy import ndimage

    tilts, truth = bead_tilt_series((128, 128), n_beads=8, bead_diameter_px=6.0, thickness_px=40.0,
                                    tilt_axis_angle=30.0, dose=50.0, seed=5)
    model = track_beads(tilts, truth["angles"], bead_diameter=6.0)
    vol = reconstruct(-tilts, truth["angles"], alignment=model.to_alignment(), method="wbp", thickness=64)
    smooth = ndimage.gaussian_filter(vol, 1.5)
    centre = (np.array(vol.shape) - 1) / 2
    for x, y, z in model.beads[np.isfinite(model.beads[:, 0])]:
        zyx = np.round(centre + (z, y, x)).astype(int)
        lo, hi = np.maximum(zyx - 6, 0), zyx + 7
        box = smooth[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        peak = np.array(np.unravel_index(np.argmax(box), box.shape)) + lo
        assert np.linalg.norm(peak - (centre + (z, y, x))) < 1.5


def test_find_beads_counts_and_places_them():
    tilts, truth = bead_tilt_series((160, 160), n_beads=12, bead_diameter_px=8.0, max_shift=0.0, dose=20.0,
                                    seed=8)
    zero = int(np.argmin(np.abs(truth["angles"])))
    found = find_beads(tilts[zero], bead_diameter=16.0, pixel_size=2.0)
    true_yx = 79.5 + truth["beads"][:, [1, 0]]
    d = np.linalg.norm(found[:, None, :2] - true_yx[None], axis=-1)
    assert len(found) == 12
    assert np.all(d.min(axis=1) < 0.5)


def test_messages_name_the_parameter():
    tilts, truth = bead_tilt_series((96, 96), n_beads=6, seed=1)
    flat = np.random.default_rng(0).poisson(20.0, tilts.shape).astype(np.float32)
    with pytest.raises(ValueError, match="bead_diameter"):
        track_beads(flat, truth["angles"], bead_diameter=6.0)
    with pytest.raises(ValueError, match="bead_diameter"):
        track_beads(tilts, truth["angles"], bead_diameter=80.0)
    with pytest.raises(ValueError, match="angles"):
        track_beads(tilts, truth["angles"][:-1], bead_diameter=6.0)
    pts = np.zeros((len(truth["angles"]), 4, 2))
    with pytest.raises(ValueError, match="points"):
        fit_bead_model(pts[..., :1], truth["angles"], shape=(96, 96))
    with pytest.raises(ValueError, match="points"):
        fit_bead_model(pts.astype(complex), truth["angles"], shape=(96, 96))
    with pytest.raises(ValueError, match="points"):
        fit_bead_model(pts + np.inf, truth["angles"], shape=(96, 96))
    with pytest.raises(ValueError, match="points must hold at least 3 beads"):
        fit_bead_model(np.full_like(pts, np.nan), truth["angles"], shape=(96, 96))
