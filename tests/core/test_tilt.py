"""Physics checks for napari_cryomat.core.tilt: geometry, reconstruction error, alignment, readers."""

import numpy as np
import pytest

from napari_cryomat.core import tilt
from napari_cryomat.core._tilt_align import remove_gauge, rotation
from napari_cryomat.core.synthetic.tilt import make_tilt_series, project_spheres, seen_region


def _nrmse(rec, truth, region):
    return float(np.linalg.norm((rec - truth)[region]) / np.linalg.norm(truth[region]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_projects_to_x_cos_plus_z_sin(seed):
    """The stated geometry: a point at (z, y, x) from the centres lands at u = x cosθ + z sinθ, row y."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = 24, 12, 40
    iz, iy, ix = rng.integers(4, nz - 4), rng.integers(2, ny - 2), rng.integers(8, nx - 8)
    vol = np.zeros((nz, ny, nx), np.float32)
    vol[iz, iy, ix] = 1.0
    angles = np.sort(rng.uniform(-70, 70, 9))
    proj = tilt.project_volume(vol, angles)
    z, x = iz - (nz - 1) / 2, ix - (nx - 1) / 2
    u = np.arange(nx) - (nx - 1) / 2
    for p, th in zip(proj, np.deg2rad(angles)):
        assert p.sum() == pytest.approx(1.0, abs=1e-5)  # line integrals: the mass is conserved
        assert np.argmax(p.sum(axis=1)) == iy  # the tilt axis is Y: rows do not move
        centre = (p.sum(axis=0) * u).sum() / p.sum()
        assert centre == pytest.approx(x * np.cos(th) + z * np.sin(th), abs=0.1)


def test_bead_reconstructs_where_it_was():
    """An off-centre bead, projected analytically and back-projected, comes back at its voxel."""
    spheres = np.array([[5.0, -3.0, 9.0, 2.0, 1.0]])  # z, y, x from the centre, radius, density
    angles = np.linspace(-60, 60, 41)
    proj = project_spheres(spheres, angles, (32, 48))
    for method in ("wbp", "sirt"):
        rec = tilt.reconstruct(proj, angles, method=method, iterations=20, thickness=32)
        peak = np.unravel_index(np.argmax(rec), rec.shape)
        assert np.allclose(np.array(peak) - (np.array(rec.shape) - 1) / 2, spheres[0, :3], atol=1.0)


def test_sirt_error_bound_and_better_than_wbp():
    s = make_tilt_series(shape=(48, 40, 56), n_tilts=41, seed=3)
    region = seen_region(s.volume.shape, s.angles, margin=1)
    sirt = tilt.reconstruct(s.projections, s.angles, method="sirt", iterations=40, thickness=48, positivity=True)
    wbp = tilt.reconstruct(s.projections, s.angles, method="wbp", thickness=48)
    assert sirt.shape == s.volume.shape and sirt.dtype == np.float32
    e_sirt, e_wbp = _nrmse(sirt, s.volume, region), _nrmse(wbp, s.volume, region)
    assert e_sirt < 0.4
    assert e_sirt < e_wbp < 0.75


def test_thickness_in_angstrom_and_out_array():
    s = make_tilt_series(shape=(20, 24, 24), n_tilts=21, seed=4)
    out = np.zeros((10, 24, 24), np.float32)
    got = tilt.reconstruct(s.projections, s.angles, method="wbp", thickness=50.0, pixel_size=5.0, out=out)
    assert got is out and np.any(out != 0)
    with pytest.raises(ValueError, match="out"):
        tilt.reconstruct(s.projections, s.angles, method="wbp", thickness=40.0, pixel_size=5.0, out=out)


def test_alignment_apply_undoes_the_known_misalignment():
    """The convention: raw_i(r) = rotated_i(r - shift_i); applying the truth gives the aligned tilts."""
    s = make_tilt_series(shape=(32, 48, 48), n_tilts=21, max_shift=4, tilt_axis_angle=23.0, seed=5)
    raw = project_spheres(s.spheres, s.angles, (48, 48), alpha=23.0, shifts=s.shifts)
    truth = tilt.TiltAlignment(shifts=s.shifts, tilt_axis_angle=23.0, residuals=np.zeros(21), angles=s.angles,
                               shape=(48, 48))
    aligned = truth.apply(raw)
    inner = (slice(None), slice(10, 38), slice(10, 38))
    err = np.abs(aligned - s.projections)[inner]
    assert err.mean() < 0.02 * s.projections.max()
    # a shift of 1 px in the wrong direction is clearly worse
    wrong = tilt.TiltAlignment(shifts=s.shifts + 1.0, tilt_axis_angle=23.0, residuals=np.zeros(21),
                               angles=s.angles, shape=(48, 48)).apply(raw)
    assert np.abs(wrong - s.projections)[inner].mean() > 3 * err.mean()


@pytest.mark.parametrize("seed,alpha", [(11, 8.0), (12, -61.0)])
def test_alignment_recovers_random_shifts(seed, alpha):
    """Random shifts of up to ±5 px on a 64-px phantom with shot noise (50 counts/px), known axis angle."""
    s = make_tilt_series(shape=(48, 64, 64), n_tilts=41, max_shift=5.0, dose=50.0, tilt_axis_angle=alpha, seed=seed)
    al = tilt.align_tilt_series(s.tilts, s.angles, tilt_axis_angle=alpha, thickness=48.0)
    assert al.shifts.shape == (41, 2) and al.residuals.shape == (41,)
    assert al.tilt_axis_angle == pytest.approx(alpha)
    err = al.shifts - s.shifts
    assert np.sqrt(np.mean(np.sum(err ** 2, axis=1))) < 0.5
    assert np.sqrt(np.mean(np.sum(s.shifts ** 2, axis=1))) > 2.0  # the misalignment was real
    # aligned and reconstructed, the raw noisy series gives the phantom back
    region = seen_region(s.volume.shape, s.angles, margin=1)
    rec = tilt.reconstruct(-s.line_integrals(), s.angles, alignment=al, method="wbp", thickness=48, lowpass=0.5)
    ref = tilt.reconstruct(-s.line_integrals(), s.angles, method="wbp", thickness=48, lowpass=0.5)
    assert np.corrcoef(-rec[region], s.volume[region])[0, 1] > np.corrcoef(-ref[region], s.volume[region])[0, 1] + 0.1


def test_gauge_of_synthetic_shifts_is_the_one_alignment_reports():
    s = make_tilt_series(shape=(16, 32, 32), n_tilts=21, max_shift=6, tilt_axis_angle=40.0, seed=6)
    t = s.shifts @ rotation(40.0)
    assert np.allclose(remove_gauge(t, s.angles), t, atol=1e-9)


def test_without_drops_tilts_and_imod_xf_is_a_rotation():
    s = make_tilt_series(shape=(16, 32, 32), n_tilts=11, max_shift=2, tilt_axis_angle=10.0, seed=7)
    al = tilt.TiltAlignment(shifts=s.shifts, tilt_axis_angle=10.0, residuals=np.arange(11.0), angles=s.angles,
                            shape=(32, 32))
    kept = al.without([0, 10])
    assert len(kept.angles) == 9 and kept.residuals[0] == 1.0
    xf = al.to_imod_xf()
    a = xf[:, :4].reshape(-1, 2, 2)
    assert np.allclose(a @ a.transpose(0, 2, 1), np.eye(2))


# -------------------------------------------------------------------------------------------------
# bad input
# -------------------------------------------------------------------------------------------------
def _small():
    return np.random.default_rng(0).random((5, 16, 16)).astype(np.float32), np.linspace(-40, 40, 5)


@pytest.mark.parametrize("fn", [tilt.reconstruct, tilt.align_tilt_series, tilt.check_tilt_series])
def test_bad_input_names_the_parameter(fn):
    stack, angles = _small()
    with pytest.raises(ValueError, match="angles must hold one tilt angle per tilt"):
        fn(stack, angles[:4])
    with pytest.raises(ValueError, match="angles must be strictly monotonic"):
        fn(stack, angles[[0, 2, 1, 3, 4]])
    with pytest.raises(ValueError, match="tilts must hold at least 2 tilts"):
        fn(stack[:1], angles[:1])
    bad = stack.copy()
    bad[2, 3, 4] = np.nan
    with pytest.raises(ValueError, match="tilts.*NaN"):
        fn(bad, angles)
    with pytest.raises(ValueError, match="angles must span at least 20 degrees"):
        fn(stack, np.linspace(-8, 8, 5))


def test_bad_method_and_iterations():
    stack, angles = _small()
    with pytest.raises(ValueError, match="method"):
        tilt.reconstruct(stack, angles, method="art")
    with pytest.raises(ValueError, match="iterations"):
        tilt.reconstruct(stack, angles, iterations=0)


def test_mbir_follows_the_same_geometry():
    pytest.importorskip("svmbir")
    spheres = np.array([[5.0, -3.0, 9.0, 2.0, 1.0], [-6.0, 4.0, -10.0, 2.5, 1.0]])
    angles = np.linspace(-60, 60, 31)
    proj = project_spheres(spheres, angles, (16, 40))
    rec = tilt.reconstruct(proj, angles, method="mbir", thickness=28, iterations=20)
    assert rec.shape == (28, 16, 40)
    for z, y, x, _r, _d in spheres:
        i = np.round(np.array([z, y, x]) + (np.array(rec.shape) - 1) / 2).astype(int)
        local = rec[i[0] - 1:i[0] + 2, i[1] - 1:i[1] + 2, i[2] - 1:i[2] + 2]
        assert local.max() > 0.5 * rec.max()
