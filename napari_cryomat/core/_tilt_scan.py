"""The coarse scan for the tilt-axis angle when it is not given (step 1 of :mod:`._tilt_align`): at each
trial angle, the agreement of the aligned tilts with their own reprojections after a stretched neighbour
chain and two projection-matching passes, on a small copy. Good to a few degrees; the likelihood search
of :mod:`._tilt_axis` takes it from there."""

from __future__ import annotations

import numpy as np

from napari_cryomat.core._progress import report
from napari_cryomat.core._tilt_align import _parabola_max, aligned_shape, project_match, remove_gauge, resample
from napari_cryomat.core._tilt_pairs import pair_shifts, solve_pairs
from napari_cryomat.core._tilt_xcorr import bandpass, disc, round_mask, xcorr_shift

#: the coarse scan's trial angles sit this far off the pixel axes (15° grid, 2.5° steps: none within
#: 1.25° of 0° or 90°, where a noise spike of the score sits at 1 count/px). Never-seen seeds 141-160
#: (axes in ±30°), first estimate |error| at offset 0 -> 1.25: mean 3.28 -> 2.52°, within 5° 16 -> 18,
#: over 10° 2 -> 0
GRID_OFFSET = 1.25


def scan_axis_angle(work, angles, *, n_z, max_shift, lowpass) -> float:
    """Axis angle in [-90, 90) whose aligned stack agrees best with its own reprojections (after a
    stretched neighbour chain and two projection-matching passes at each angle): a 15° grid, then
    2.5° steps around the best. Good to a few degrees; the agreement changes slowly with the angle.

    Each raw tilt is first cut to the round area every rotation keeps (:func:`round_mask`): with the
    square frame, an angle near 0° or 90° keeps the frame's corners and all of every row, which other
    angles cut off, and the uncut frame agreed better whatever the true axis (seed 61, true -22.4°,
    100 counts/px: best at -5°; with the mask at -21°). At 1 count/px a narrow peak at exactly 0° (±0.7°,
    where resampling leaves the shot noise unsmoothed) drew scans there (true -12.3° and -12.9°: found
    -0.6° and -0.3°): no trial angle lies within 1.25° of 0° or 90° (``GRID_OFFSET``).

    The score is the tilts' agreement weighted by ``sin²θ``: a wrong axis shows at high tilt, while the
    low tilts' agreement drifts with the trial angle whatever the truth (seed 158, true -12.9°: their
    mean rose steadily to +4°, found +9.4° off; weighted +7.0°). Never-seen seeds 171-190 (axes in ±30°),
    |error| plain mean -> weighted: mean 2.32 -> 1.28°, within 5° 17 -> 20, over 10° 0 -> 0."""
    return scan_axis_candidates(work, angles, n_z=n_z, max_shift=max_shift, lowpass=lowpass)[0]


def scan_axis_candidates(work, angles, *, n_z, max_shift, lowpass, progress=None) -> list[float]:
    """The first estimates of :func:`scan_axis_angle`: its answer, and a second start where the 15° grid's
    second-best maximum (at least 30° from the best) scores within the noise of it (:func:`rival_maximum`),
    each refined in 2.5° steps; the second is dropped if its refinement ends within 10° of the first. The
    likelihood search reaches 25° from its start, so the two are beyond each other's reach.

    ``progress`` moves by one trial angle at a time (each costs about the same): the 12 of the grid,
    then 7 around each start, the count it moves towards (a start recentred at an end of its 2.5° steps
    takes 4 more)."""
    work = work * round_mask(work.shape[1:])[None]
    weights = np.sin(np.deg2rad(angles)) ** 2
    grid = np.arange(-90.0, 90.0, 15.0) + GRID_OFFSET
    trials = {"done": 0, "expected": len(grid) + 7, "shown": 0.0}

    def peaks(a):
        shape = aligned_shape(work.shape[1:], a)
        band, win = bandpass(shape, 0.01, lowpass), disc(shape)
        rot = np.stack([resample(w, a, (0, 0), shape, cval=0.0) for w in work])
        t = neighbour_chain(rot, angles, max_shift=max_shift, band=band, win=win)
        out = project_match(work, angles, a, t, n_z=n_z, iterations=2, max_shift=4, band=band, win=win)[1]
        trials["done"] += 1  # the bar never goes back, and waits below its end for the last trial
        trials["shown"] = max(trials["shown"], min(0.99, trials["done"] / max(trials["expected"], trials["done"] + 1)))
        report(progress, trials["shown"])
        return out

    def score(a):
        return float(weights @ peaks(a) / weights.sum())

    per_tilt = np.stack([peaks(a) for a in grid])
    values = per_tilt @ weights / weights.sum()
    starts = [float(grid[int(np.argmax(values))])]
    rival = rival_maximum(per_tilt, weights)
    if rival is not None:
        starts.append(float(grid[rival]))
    trials["expected"] = len(grid) + 7 * len(starts)
    scores: dict = {}
    found = []
    for best in starts:
        for _ in range(3):  # 2.5° steps around the best; recentred when the best is at an end
            fine = best + np.arange(-7.5, 7.6, 2.5)
            values = np.array([scores.setdefault(round(a, 6), score(a)) for a in fine])
            best = float(fine[int(np.argmax(values))])
            if 0 < int(np.argmax(values)) < len(fine) - 1:
                break
        found.append(_parabola_max(fine, values))
    if len(found) > 1 and abs((found[1] - found[0] + 90) % 180 - 90) < 10:
        found = found[:1]
    return found


#: the 15° grid's second-best maximum is a rival start when the best beats it by less than this many
#: standard errors of the tilts' weighted mean difference
RIVAL_Z = 2.0


def rival_maximum(per_tilt: np.ndarray, weights: np.ndarray) -> int | None:
    """Index of the second-best local maximum of the weighted mean of ``per_tilt`` (grid angles x tilts;
    the grid wraps around, 180° apart being the same axis) when the best beats it by less than
    ``RIVAL_Z`` standard errors: the tilts' agreements at the two angles compared pairwise, tilt by tilt,
    the standard error that of their weighted mean difference. Else None."""
    w = np.asarray(weights, float) / np.sum(weights)
    values = per_tilt @ w
    n = len(values)
    maxima = [i for i in range(n) if values[i] >= values[i - 1] and values[i] >= values[(i + 1) % n]]
    if len(maxima) < 2:
        return None
    first, second = sorted(maxima, key=lambda i: -values[i])[:2]
    d = per_tilt[first] - per_tilt[second]
    mean = float(w @ d)
    se = float(np.sqrt(np.sum(w ** 2 * (d - mean) ** 2)))
    return second if mean < RIVAL_Z * se else None


def neighbour_chain(aligned: np.ndarray, angles: np.ndarray, *, max_shift: float, band, win) -> np.ndarray:
    """Rotated-frame shifts of tilts resampled with zero shift from cosine-stretched correlations of
    neighbours alone (IMOD tiltxcorr's chain: a tree of pairs, which the least squares solve exactly)."""
    pairs = pair_shifts(aligned, angles, separations=[1], max_shift=max_shift, band=band, win=win, xcorr=xcorr_shift)
    return remove_gauge(solve_pairs(pairs, angles)[0], angles)
