"""Physics of drift estimation: known shifts, sign convention, dose weighting, FRC, bad input."""

import numpy as np
import pytest
import scipy.fft as sfft

from napari_cryomat.core import drift as D
from napari_cryomat.core.synthetic.movie import drifting_movie


def rms_error(est, truth):
    e = np.asarray(est) - np.asarray(truth)
    return float(np.sqrt((e**2).sum(1).mean()))


@pytest.fixture(scope="module")
def movie_hi():
    return drifting_movie((128, 128), 10, counts_per_pixel=2.0, seed=11)


def test_sign_convention_on_known_integer_shift():
    rng = np.random.default_rng(1)
    from scipy import ndimage

    base = ndimage.gaussian_filter(rng.standard_normal((96, 96)), 2).astype(np.float32)
    # frame_1(r) = frame_0(r - s) with s = (+3, -5): content moves down 3 and left 5
    f1 = np.roll(base, (3, -5), axis=(0, 1))
    res = D.estimate_drift(np.stack([base, f1]), group=1)
    assert np.allclose(res.shifts[0], 0)
    assert np.allclose(res.shifts[1], (3, -5), atol=0.05)
    # applying the shifts aligns frame 1 back onto frame 0
    al = D.apply_drift(np.stack([base, f1]), res.shifts)
    assert np.abs(al[1] - base)[10:-10, 10:-10].max() < 0.05 * np.abs(base).max()


def test_known_subpixel_trajectory_recovered(movie_hi):
    m = movie_hi
    res = D.estimate_drift(m.frames, pixel_size=m.pixel_size)
    assert res.shifts.shape == (10, 2)
    assert np.all(res.shifts[0] == 0)
    assert rms_error(res.shifts, m.shifts) < 0.3
    assert res.residuals.shape == (10,)
    assert 0.5 <= res.inlier_fraction <= 1.0
    assert np.allclose(res.shifts_angstrom, res.shifts * m.pixel_size)


def test_pixel_size_only_changes_units(movie_hi):
    m = movie_hi
    a = D.estimate_drift(m.frames, pixel_size=1.0, bfactor=150.0, group=1)
    b = D.estimate_drift(m.frames, pixel_size=2.0, bfactor=600.0, group=1)  # same filter in px
    assert np.allclose(a.shifts, b.shifts, atol=1e-3)
    assert np.allclose(b.shifts_angstrom, 2 * b.shifts)


def test_low_dose_no_unit_cell_jump_with_wide_search():
    m = drifting_movie((192, 192), 16, counts_per_pixel=0.1, period=8.0, seed=5)
    res = D.estimate_drift(m.frames, max_shift=40.0)  # search wider than the 8 px lattice period
    err = np.abs(res.shifts - m.shifts)
    assert err.max() < m.period / 2  # no jump of one period
    assert rms_error(res.shifts, m.shifts) < 0.6


def test_dask_input_gives_same_shifts_and_lazy_apply(movie_hi):
    da = pytest.importorskip("dask.array")
    m = movie_hi
    lazy = da.from_array(m.frames, chunks=(2, 128, 128))
    a = D.estimate_drift(m.frames, group=1)
    b = D.estimate_drift(lazy, group=1)
    assert np.allclose(a.shifts, b.shifts, atol=1e-4)
    al = D.apply_drift(lazy, b.shifts)
    assert hasattr(al, "compute")
    assert np.allclose(al[3].compute(), D.apply_drift(m.frames, b.shifts)[3], atol=1e-4)


def test_aligned_sum_sharper_than_plain_sum(movie_hi):
    m = movie_hi
    res = D.estimate_drift(m.frames)
    clean = drifting_movie((128, 128), 10, counts_per_pixel=2.0, seed=11, noise=False).frames
    truth_sum = D.apply_drift(clean, m.shifts).sum(0)
    s_al = D.aligned_sum(m.frames, res.shifts)
    s_plain = m.frames.sum(0)
    c = lambda a, b: np.corrcoef(a[16:-16, 16:-16].ravel(), b[16:-16, 16:-16].ravel())[0, 1]
    assert c(s_al, truth_sum) > c(s_plain, truth_sum) + 0.05


def test_gain_and_defect_mask():
    m = drifting_movie((96, 96), 6, counts_per_pixel=3.0, seed=2)
    rng = np.random.default_rng(0)
    gain = rng.uniform(0.5, 2.0, (96, 96)).astype(np.float32)
    raw = m.frames / gain  # detector applied the inverse gain
    mask = np.zeros((96, 96), bool)
    mask[40, :] = True
    raw[:, 40, :] = 1e6  # hot row
    res = D.estimate_drift(raw, gain=gain, defect_mask=mask)
    assert rms_error(res.shifts, m.shifts) < 0.3
    with pytest.raises(ValueError, match="gain reference"):
        D.estimate_drift(raw, gain=gain[:10])


def test_critical_exposure_formula():
    k = np.array([0.05, 0.1, 0.25, 0.5])
    assert np.allclose(D.critical_exposure(k), 0.245 * k**-1.665 + 2.81)
    assert np.isinf(D.critical_exposure(np.array([0.0]))[0])


def test_dose_weights_match_grant_grigorieff():
    n, shape, px, dose = 8, (64, 64), 1.5, 2.0
    w = D.dose_weights(n, shape, pixel_size=px, dose_per_frame=dose)
    assert w.shape == (n, 64, 33)
    ky = sfft.fftfreq(64)[:, None]
    kx = sfft.rfftfreq(64)[None, :]
    k = np.hypot(ky, kx) / px
    y, x = 10, 7
    ne = 0.245 * k[y, x] ** -1.665 + 2.81
    q = np.exp(-((np.arange(n) + 0.5) * dose) / (2 * ne))
    expected = q * np.sqrt(n / np.sum(q**2))
    assert np.allclose(w[:, y, x], expected, rtol=1e-5)
    # DC: no damage, all weights 1; noise power normalised at every frequency
    assert np.allclose(w[:, 0, 0], 1.0)
    assert np.allclose((w.astype(float) ** 2).sum(0), n, rtol=1e-4)
    # later frames are down-weighted at high frequency
    assert w[-1, 0, 32] < w[0, 0, 32]


def test_dose_weighted_sum_equals_plain_sum_for_tiny_dose(movie_hi):
    m = movie_hi
    dw = D.dose_weighted_sum(m.frames, m.shifts, pixel_size=1.0, dose_per_frame=1e-6)
    s = D.aligned_sum(m.frames, m.shifts)
    assert np.allclose(dw, s, atol=1e-3 * np.abs(s).max())


def test_frc_vs_dose_improves_with_dose(movie_hi):
    m = movie_hi
    fr = D.frc_vs_dose(m.frames, m.shifts, pixel_size=1.0, dose_per_frame=2.0, steps=4)
    assert fr.curves.shape[0] == len(fr.n_frames) == len(fr.dose)
    assert fr.n_frames[-1] == 10
    assert np.all(np.diff(fr.dose) > 0)
    assert fr.frequency.max() <= 0.5
    # more dose, better (smaller) resolution; the lattice (8 Å) is resolved in the full sum
    r = fr.resolution
    assert np.isfinite(r[-1]) and r[-1] < 8.0
    assert r[-1] <= np.nanmax(r[:-1]) + 1e-6


def test_local_motion_recovers_non_uniform_drift():
    # a stack with a global drift plus a linear-in-x shear of the y shift
    m = drifting_movie((256, 256), 8, counts_per_pixel=5.0, seed=4, noise=False)
    from scipy import ndimage

    frames = []
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    truth = []
    for i, f in enumerate(m.frames):
        amp = 0.25 * i  # local y shift grows across x, 0 at x=128
        dy = amp * (xx - 128) / 128
        frames.append(ndimage.map_coordinates(f, [yy - dy, xx], order=3, mode="nearest"))
        truth.append(amp)
    frames = np.random.default_rng(0).poisson(np.clip(np.stack(frames), 0, None)).astype(np.float32)
    res = D.estimate_drift(frames, patches=(3, 3), group=1)
    assert res.local is not None
    fld = res.local.field(7)
    grad = (fld[0][:, 200] - fld[0][:, 56]).mean() / (144 / 128)
    # recovered within ~15% (the patch model is smoothed in time and space; patch trajectories
    # refined to convergence: with 2 passes only the gradient came out 10-20% too small)
    assert grad == pytest.approx(truth[7], abs=0.25)
    # and the left and right halves move in opposite directions, as in the truth
    assert fld[0][:, 220].mean() > 0 > fld[0][:, 36].mean()


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros((64, 64)), "needs a stack of frames"),
        (np.zeros((1, 64, 64)), "at least 2 frames"),
        (np.ones((3, 64, 64)), "constant"),
        ([np.ones((64, 64)), np.ones((60, 64))], "differ in size"),
    ],
)
def test_bad_input_messages(data, match):
    with pytest.raises(ValueError, match=match):
        D.estimate_drift(data)


def test_nan_and_one_constant_frame():
    m = drifting_movie((64, 64), 4, counts_per_pixel=1.0, seed=1)
    f = m.frames.copy()
    f[2, 5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        D.estimate_drift(f)
    f = m.frames.copy()
    f[1] = 0
    with pytest.raises(ValueError, match=r"Frame\(s\) \[1\] are constant"):
        D.estimate_drift(f)


def test_cancel_through_progress():
    from napari_cryomat.core import Cancelled

    m = drifting_movie((64, 64), 4, counts_per_pixel=1.0, seed=1)
    seen = []

    def progress(f):
        seen.append(f)
        if f > 0.3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        D.estimate_drift(m.frames, progress=progress)
    assert all(0 <= f <= 1 for f in seen)


def test_time_series_neighbours_only_follows_changing_specimen():
    """A slowly changing specimen (growing crystals): compare neighbouring frames only."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    n, size = 12, 128
    truth = np.cumsum(rng.normal(0.4, 0.3, (n, 2)), axis=0)
    truth -= truth[0]
    seeds = rng.integers(20, 108, (6, 2))
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    frames = []
    for i in range(n):
        radius = 4 + 1.5 * i  # the crystals grow: frame 0 and frame 11 look different
        img = np.zeros((size, size))
        for sy, sx in seeds:
            img += 1.0 / (1 + np.exp((np.hypot(yy - sy - truth[i, 0], xx - sx - truth[i, 1]) - radius) / 1.0))
        img += 0.3 * ndimage.gaussian_filter(rng.standard_normal((size, size)), 1)
        frames.append(img)
    frames = np.stack(frames).astype(np.float32)
    res = D.estimate_drift(frames, pair_band=2, iterations=0, group=1)
    assert rms_error(res.shifts, truth) < 0.3


def test_trajectory_smoother_lowers_error_at_low_dose():
    """Random-walk-plus-drift smoother: lower error than the per-frame refinement at low dose.

    0.1 counts/px/frame, 20 frames: each frame alone gives its shift to about 0.2 px, so the
    motion model (random walk of 0.25 px/frame/axis plus a linear drift) carries information
    the refinement alone does not use. The step of the walk is estimated from the data.
    """
    m = drifting_movie((256, 256), 20, counts_per_pixel=0.1, period=8.0, step=0.25, seed=100)
    plain = D.estimate_drift(m.frames, smooth=False)
    smoothed = D.estimate_drift(m.frames)
    e_plain = rms_error(plain.shifts - plain.shifts.mean(0), m.shifts - m.shifts.mean(0))
    e_smooth = rms_error(smoothed.shifts - smoothed.shifts.mean(0), m.shifts - m.shifts.mean(0))
    assert e_smooth < 0.75 * e_plain
    assert e_smooth < 0.22
    assert np.all(smoothed.shifts[0] == 0)
    # the random-walk step chosen by the evidence is of the order of the true one
    assert 0.1 <= smoothed.walk_step <= 0.45
    assert np.isnan(plain.walk_step)


def test_trajectory_smoother_lowers_error_at_lowest_dose():
    """0.01 counts/px/frame (about 650 counts per 256² frame): the smoother, started from the
    straight-line part of the refined trajectory, removes most of the refinement's correlated
    errors."""
    m = drifting_movie((256, 256), 20, counts_per_pixel=0.01, period=8.0, step=0.25, seed=102)
    plain = D.estimate_drift(m.frames, smooth=False)
    smoothed = D.estimate_drift(m.frames)
    e_plain = rms_error(plain.shifts - plain.shifts.mean(0), m.shifts - m.shifts.mean(0))
    e_smooth = rms_error(smoothed.shifts - smoothed.shifts.mean(0), m.shifts - m.shifts.mean(0))
    assert e_smooth < 0.7 * e_plain
    assert e_smooth < 0.6
    err = np.abs(smoothed.shifts - m.shifts)
    assert np.all(np.abs(err - np.median(err, 0)) < m.period / 2)  # no unit-cell jump


def test_lowest_dose_row_is_not_ramped_by_an_amorphous_reflection():
    """benchmarks/drift.py's 0.01 stack 101: beside the 8 px lattice the lattice stage detects a 43.5 px reflection
    of the amorphous texture; its rate, 0.12 cycle off like the lattice's, held the velocity 5 px off over the stack
    (RMS 0.743 px; 0.612 without the hold). Only reflections of at least half the highest frequency hold it."""
    m = drifting_movie((256, 256), 20, counts_per_pixel=0.01, period=8.0, step=0.25, seed=101)
    r = D.estimate_drift(m.frames)
    e = rms_error(r.shifts - r.shifts.mean(0), m.shifts - m.shifts.mean(0))
    assert e < 0.65
    err = r.shifts - m.shifts
    assert np.all(np.abs(err - np.median(err, 0)) < m.period / 2)


def test_trajectory_smoother_skipped_when_frames_are_precise():
    """At high dose one frame already fixes its shift: the smoother leaves the result alone."""
    m = drifting_movie((256, 256), 8, counts_per_pixel=20.0, seed=4)
    a = D.estimate_drift(m.frames)
    b = D.estimate_drift(m.frames, smooth=False)
    assert np.isnan(a.walk_step)
    assert np.allclose(a.shifts, b.shifts)


@pytest.mark.parametrize("lam", [0.01, 1.0, 100.0])
def test_frames_of_pure_shot_noise_are_said_to_be_no_measurement(lam):
    """No specimen: a trajectory is still returned (10-53 px on these stacks), fitted to the noise. The aligned sum
    holds no power above the shot noise at low frequencies, so the result says so (measured False) and warns."""
    frames = np.random.default_rng(0).poisson(lam, (20, 128, 128)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="no structure above the shot noise"):
        r = D.estimate_drift(frames)
    assert not r.measured and r.structure < D.STRUCTURE_Z


def test_a_specimen_at_the_lowest_dose_is_a_measurement(benchmark_module, recwarn):
    """A seen stress stack (160², 0.01 counts/px/frame, oblique lattice over half the field, 17 frames) whose
    trajectory is poor (6 px RMS) still shows its specimen in the aligned sum: the guard is about the specimen,
    not the trajectory's accuracy, and leaves it unflagged with the shifts unchanged."""
    stress = benchmark_module("drift_stress")
    case = stress.draw_case(5211)
    m = stress.make_movie(case, 160, 0.01)
    r = D.estimate_drift(m.frames)
    assert r.measured and r.structure >= D.STRUCTURE_Z
    assert not [w for w in recwarn if "shot noise" in str(w.message)]


def test_frames_too_small_for_the_structure_test_are_not_flagged(recwarn):
    """16 x 16 frames (a Velox SI's HAADF frames) leave no coefficient in the structure band: untested, so neither
    'not measured' nor warned about (it warned with 'nan standard deviations')."""
    m = drifting_movie((16, 16), 5, counts_per_pixel=50.0, seed=1)
    r = D.estimate_drift(m.frames)
    assert np.isnan(r.structure) and r.measured
    assert not [w for w in recwarn if "shot noise" in str(w.message)]


def test_frames_too_bright_for_float32_spectra_are_refused_by_name():
    frames = np.random.default_rng(0).poisson(5.0, (8, 64, 64)).astype(np.float32)
    assert np.allclose(D.estimate_drift(frames * 1e12).shifts, D.estimate_drift(frames).shifts, atol=1e-3)
    with pytest.raises(ValueError, match="Frame 0 holds values up to .*Divide the frames by a constant"):
        D.estimate_drift(frames * 1e17)
