"""Tilt-axis angle by the held-out Poisson likelihood of the count-space stage (:mod:`._tilt_refine`).

At each trial angle the raw tilts are turned into the aligned frame, every tilt is reprojected from a
positivity SIRT of the tilts outside its fold (a contiguous quarter of the tilt range,
:func:`axis_reprojections`), the shifts are re-fitted by Poisson likelihood against that reference, and
the counts' log-likelihood under the fitted model is summed over pixels that every trial angle sees,
each tilt weighted by ``sin²θ`` (:func:`tilt_weights`). A wrong angle turns each tilt slightly about
its centre, which no shift can undo; the held-out reference cannot follow the tilt's own noise, so the
likelihood is an honest score.

Honest about noise, but biased by the phantom: on noise-free counts the criterion peaks 0.1-0.3° (at 256², 64-px
frames) from the axis that made them, the same for every noise realisation and axis angle. The blind angle found
is therefore corrected by (a fixed fraction, :data:`BIAS_SCALE`, of) that offset as measured on counts simulated
from our own model at the angle found (:func:`criterion_bias`).
"""

from __future__ import annotations

import warnings

import numpy as np

from napari_cryomat.core._progress import report, sub_progress
from napari_cryomat.core._tilt_align import aligned_shape, remove_gauge, rotation
from napari_cryomat.core._tilt_refine import fold_reprojections, line_integrals, poisson_shift, to_aligned, zero_level
from napari_cryomat.core._tilt_sirt import Sirt

#: shift-matching passes at the angle found (its nearest trial's shifts, fitted once there, are the start)
FINAL_PASSES = 2
#: how far (degrees) the search follows a likelihood still rising at an end of its trials. The first estimate
#: (:func:`._tilt_align.scan_axis_angle`, on a 64-px copy) was 16.0°, 15.2° and 21.1° off on seeds 61, 67
#: and 70 of the benchmark generator (256², 1 count/px; true axes -15° to -22°, first estimates -6° to 0°);
#: with 10° the search stopped at its edge and the alignment ended +5.0°, +4.2° and +10.1° off; with 25° the
#: search reaches +0.98°, +0.30° and +0.62° (14-21 more trials, ~15-30 CPU-s). A search that stops within
#: 10° is unchanged.
MAX_OFFSET = 25.0
#: the reference of a tilt is a SIRT without its whole quarter of the tilt range (contiguous folds), not
#: without every sixth tilt as for the shifts (:func:`._tilt_refine.fold_reprojections`)
AXIS_FOLDS = 4


def axis_reprojections(aligned, proj):
    """Each tilt's reprojection from a positivity SIRT of the tilts outside its contiguous block of
    ``1 / AXIS_FOLDS`` of the range. Why contiguous: a wrong axis angle turns every tilt by the same
    angle, and what no volume can fit is only the part that differs between distant tilts (``z sinθ``
    along the axis, ``y (1 - cosθ)`` across it); a reference made mostly of a tilt's next neighbours
    turns with it. Held-out likelihood against the interleaved folds of the shift stage fell by 0.8-1.1
    per deg² around its peak on seeds 0-1 of the benchmark generator; against contiguous quarters by
    2.3-3.9, and the far trials 3-4x more steeply."""
    n = len(aligned)
    return fold_reprojections(aligned, proj, folds=AXIS_FOLDS, block=int(np.ceil(n / AXIS_FOLDS)))


def evaluate(counts, logs, angles, alpha, t, proj, *, passes: int = 1):
    """Shifts re-fitted at ``alpha`` (``passes`` passes from ``t``) and the expected counts of the last."""
    shape = aligned_shape(counts.shape[1:], alpha)
    mu = None
    for _ in range(passes):
        aligned = to_aligned(logs, alpha, t, shape)
        rep = axis_reprojections(aligned, proj)
        fits = [poisson_shift(c, r, alpha, ti, model=True) for c, r, ti in zip(counts, rep, t)]
        t = remove_gauge(np.stack([f[0] for f in fits]), angles)
        mu = np.stack([f[1] for f in fits])
    return t, mu


def log_likelihood(counts, mu, mask, weights) -> float:
    """Poisson log-likelihood of each tilt over ``mask``, summed with the tilts' ``weights``."""
    k, m = counts.astype(np.float64), np.where(mask, mu, 1.0)
    per_tilt = np.sum(np.where(mask, k * np.log(np.maximum(m, 1e-300)) - m, 0.0), axis=(1, 2))
    return float(per_tilt @ weights)


def tilt_weights(angles) -> np.ndarray:
    """``sin²θ``: what no volume can fit of a wrong axis angle grows with the tilt (along the axis as
    ``z sinθ``, across it as ``y (1 - cosθ)``), while every tilt adds the same noise to the score.
    Summed with equal weights, the low tilts' noise moved the peak 0.5-0.7° off on seeds 3 and 5 of the
    benchmark generator (trials 0.5° apart around the truth); weighted by ``sin²θ`` 0.24° and 0.15°
    (seed 0: +0.25° -> -0.09°)."""
    return np.sin(np.deg2rad(np.asarray(angles, float))) ** 2


def to_angle(t, alpha_from, alpha_to):
    """Rotated-frame shifts at one axis angle re-expressed at another (the raw shifts kept)."""
    return (t @ rotation(alpha_from).T) @ rotation(alpha_to)


def scan(counts, angles, alpha, t, proj, *, offsets, passes: int = 1, cache=None):
    """Log-likelihood at ``alpha + offsets`` (each trial started from the shifts of the nearest angle
    already done; the first from ``t`` at ``alpha``). Returns {angle: (loglik-ready mu, shifts)} merged
    into ``cache`` and the log-likelihoods over the pixels all of them see."""
    cache = {} if cache is None else cache
    logs = line_integrals(counts) if len(offsets) else None
    done = dict(cache)
    for off in sorted(offsets, key=abs):
        a = round(float(alpha + off), 6)
        if a in done:
            continue
        if done:
            near = min(done, key=lambda b: abs(b - a))
            start = to_angle(done[near][1], near, a)
        else:
            start = t
        t_a, mu = evaluate(counts, logs, angles, a, start, proj, passes=passes)
        done[a] = (mu, t_a)
    cache.update(done)
    mask = np.logical_and.reduce([np.isfinite(v[0]) for v in cache.values()])
    w = tilt_weights(angles)
    return {a: log_likelihood(counts, v[0], mask, w) for a, v in sorted(cache.items())}, cache


def find_angle(counts, angles, alpha, t, projector, *, step: float = 1.0, span: float = 4.0, passes: int = 1,
               max_offset: float | None = None, window: int = 2, progress=None):
    """Axis angle of the best held-out log-likelihood: trials ``step`` apart within ``span`` of ``alpha``
    (more on the side of the best while it is within ``window`` steps of an end, up to ``max_offset``),
    then the vertex of the least-squares parabola through the best and ``window`` trials each side.
    Returns (angle, shifts at the nearest trial, scores). ``max_offset`` None: :data:`MAX_OFFSET`."""
    max_offset = MAX_OFFSET if max_offset is None else max_offset

    def run(offsets, cache):
        for off in offsets:
            a = alpha + off
            scan(counts, angles, a, t, projector(aligned_shape(counts.shape[1:], a)), offsets=[0.0],
                 passes=passes, cache=cache)
            report(progress, min(1.0, len(cache) / (2 * span / step + 3)))
        ll, _ = scan(counts, angles, alpha, t, None, offsets=[], passes=passes, cache=cache)
        return ll

    cache: dict = {}
    offsets = np.arange(-span, span + step / 2, step)
    ll = run(offsets[np.argsort(np.abs(offsets))], cache)
    while True:
        grid = np.array(sorted(ll))
        i = int(np.argmax([ll[a] for a in grid]))
        if i < window and alpha - grid[0] < max_offset:
            ll = run([grid[0] - step - alpha], cache)
        elif i > len(grid) - 1 - window and grid[-1] - alpha < max_offset:
            ll = run([grid[-1] + step - alpha], cache)
        else:
            break
    grid = np.array(sorted(ll))
    values = np.array([ll[a] for a in grid])
    i = int(np.argmax(values))
    lo, hi = max(0, i - window), min(len(grid), i + window + 1)
    best = parabola_vertex(grid[lo:hi], values[lo:hi])
    near = min(cache, key=lambda b: abs(b - best))
    return best, to_angle(cache[near][1], near, best), ll


#: trial offsets (degrees) of the criterion's own-bias measurement (:func:`criterion_bias`): its parabola's span
BIAS_OFFSETS = np.arange(-1.5, 1.51, 0.5)
#: SIRT iterations of the all-tilts volume that simulates the noise-free counts (λ = 1.9, positivity)
BIAS_SIRT_ITERATIONS = 30
#: :func:`criterion_bias`'s steps on its progress bar: the SIRT volume, the simulated counts (a fit per tilt) and
#: the trial offsets, by their measured shares of its time (192², 41 tilts, 1 count/px: 0.2, 0.27 and 4.8 s of
#: 5.3 s; notes/gui25_scratch/tilt_progress25.md)
_BIAS_STEPS = {"volume": (0.0, 0.04), "simulate": (0.04, 0.1), "trials": (0.1, 1.0)}
#: a measured bias beyond this (degrees) is not applied: on the benchmark generator's phantoms (256², seen seeds
#: 250, 255, 258, 261) the criterion's offset was +0.28 and +0.14° on noise-free expected counts and -0.16 to +0.19°
#: on counts simulated from our model; one far larger says the simulation, not the criterion, went wrong
MAX_BIAS = 1.0
#: fraction of the measured bias that is subtracted: the measurement carries its own noise (~0.1-0.15°), so a full
#: correction pushes good landings out. On the 25 seen seeds (244-248, 265-280, 250/255/258/261) 0.75 of it gave
#: 14/25 within 0.3° (uncorrected 12/25, full 14/25) with no seed worse by more than 0.20° (full: 0.27°, seed 276)
BIAS_SCALE = 0.75
#: whether :func:`._tilt_align.align` corrects the blind angle by :func:`criterion_bias` (off: session 15's path)
CORRECT_BIAS = True


def criterion_bias(counts, angles, alpha, t, projector, progress=None) -> float:
    """How far (degrees) the held-out criterion of :func:`find_angle` puts its peak from the axis angle of counts
    that are exactly consistent with ``alpha``: noise-free counts simulated from our own model at ``alpha`` and
    shifts ``t`` (a positivity SIRT of all tilts, reprojected and fitted to each tilt's counts), scored at
    ``alpha + BIAS_OFFSETS`` as :func:`find_angle` scores a trial, peak of the parabola through the best and
    two trials each side.

    Why: the criterion is biased by the phantom itself. On the noise-free expected counts of seen seeds 250 and
    255 (benchmark generator, 256², 1 count/px) its peak lies +0.28° and +0.14° from the truth, for every noise
    realisation the same while the noise adds ±0.25°. The same measurement on counts simulated from our own
    estimate (HEAD's landing) gave +0.19, +0.03, +0.01 and -0.16° on seen 250, 255, 258, 261 (where the angle
    found was +0.71, +0.63, +0.59 and -0.44° off): subtracting it left +0.52, +0.60, +0.58 and -0.28°.

    ``progress`` moves through its three steps by their measured shares (:data:`_BIAS_STEPS`)."""
    steps = {name: sub_progress(progress, *span) for name, span in _BIAS_STEPS.items()}
    logs = line_integrals(counts)
    shape = aligned_shape(counts.shape[1:], alpha)
    aligned = to_aligned(logs, alpha, t, shape)
    proj = projector(shape)
    n, h, w = aligned.shape
    p = np.ascontiguousarray(aligned.transpose(0, 2, 1)).reshape(n * w, h)
    sirt = Sirt(proj, relaxation=1.9, positivity=True)
    x = sirt.start(p, False)
    for i in range(BIAS_SIRT_ITERATIONS):
        sirt.step(x, p)
        report(steps["volume"], (i + 1) / BIAS_SIRT_ITERATIONS)
    rep = np.ascontiguousarray(proj.forward(x).reshape(n, w, h).transpose(0, 2, 1))
    mu = []
    for k, (c, r, ti) in enumerate(zip(counts, rep, t)):
        mu.append(poisson_shift(c, r, alpha, ti, model=True)[1])
        report(steps["simulate"], (k + 1) / n)
    mu = np.stack(mu)
    simulated = np.where(np.isfinite(mu), mu, zero_level(counts)).astype(np.float32)  # vacuum where no model
    sim_logs = line_integrals(simulated)
    mus = {}
    for off in BIAS_OFFSETS:
        a = float(alpha + off)
        mus[a] = evaluate(simulated, sim_logs, angles, a, to_angle(t, alpha, a),
                          projector(aligned_shape(counts.shape[1:], a)))[1]
        report(steps["trials"], len(mus) / len(BIAS_OFFSETS))
    mask = np.logical_and.reduce([np.isfinite(m) for m in mus.values()])
    grid = np.array(sorted(mus))
    values = np.array([log_likelihood(simulated, mus[a], mask, tilt_weights(angles)) for a in grid])
    i = int(np.argmax(values))
    return parabola_vertex(grid[max(0, i - 2):i + 3], values[max(0, i - 2):i + 3]) - alpha


class TiltAxisWarning(UserWarning):
    """The blind tilt-axis angle is unreliable: give ``tilt_axis_angle`` (the microscope's value).

    Besides its text, what it found, for a program to word it its own way (:meth:`worded`): ``kind``
    (``"search_at_reach"``: the likelihood search ended at its reach, still rising), ``start`` (the coarse scan's
    estimate), ``found`` (the angle returned) and ``reach`` (degrees; None where not known)."""

    def __init__(self, message: str, *, kind: str = "unreliable", start: float | None = None,
                 found: float | None = None, reach: float | None = None):
        super().__init__(message)
        self.kind, self.start, self.found, self.reach = kind, start, found, reach

    def worded(self, control: str, advice: str) -> str:
        """The text with the caller's name for the axis setting: ``control`` opens it ("Tilt axis") and ``advice``
        says how to set it ("Set 'Tilt axis' in the Align section"); the core's own text where the fields that
        word it are missing."""
        if self.kind == "search_at_reach" and None not in (self.start, self.found, self.reach):
            return _at_reach_text(self.start, self.found, self.reach, control, advice)
        return str(self)


def _at_reach_text(start: float, found: float, reach: float, control: str, advice: str) -> str:
    return (f"{control}: the blind search for the tilt axis stopped at its reach, {reach:g}° from the coarse scan's "
            f"estimate ({start:.1f}°), with the likelihood still rising: the axis angle found ({found:.1f}°) is "
            f"probably wrong, and the shifts with it. {advice} (the microscope's value, e.g. TiltAxisAngle in the "
            "SerialEM .mdoc, or IMOD's from etomo) and align again.")


def stopped_at_reach(ll: dict, start: float, *, max_offset: float | None = None, window: int = 2) -> bool:
    """Whether :func:`find_angle` from ``start`` (its scores ``ll``) ended at its reach: the best trial
    within ``window`` trials of an end that lies ``max_offset`` (None: :data:`MAX_OFFSET`) from the start,
    i.e. no maximum found."""
    max_offset = MAX_OFFSET if max_offset is None else max_offset
    grid = np.array(sorted(ll))
    i = int(np.argmax([ll[a] for a in grid]))
    return bool((i < window and start - grid[0] >= max_offset) or
                (i > len(grid) - 1 - window and grid[-1] - start >= max_offset))


def warn_at_reach(start: float, found: float) -> None:
    start, found, reach = ((start + 90) % 180) - 90, ((found + 90) % 180) - 90, float(MAX_OFFSET)
    text = _at_reach_text(start, found, reach, "tilt_axis_angle", "Give tilt_axis_angle")
    warnings.warn(TiltAxisWarning(text, kind="search_at_reach", start=start, found=found, reach=reach), stacklevel=4)


def compare_fits(counts, angles, fits, projector) -> list[float]:
    """Log-likelihood of ``counts`` under each fit ``(alpha, t)`` (rotated-frame shifts at ``alpha``), the
    shifts re-fitted once against the fold reference as :func:`find_angle` scores a trial, summed over
    the pixels every fit sees with the ``sin²θ`` weights: fits from different starts compared alike."""
    logs = line_integrals(counts)
    mus = []
    for alpha, t in fits:
        shape = aligned_shape(counts.shape[1:], alpha)
        mus.append(evaluate(counts, logs, angles, alpha, t, projector(shape))[1])
    mask = np.logical_and.reduce([np.isfinite(m) for m in mus])
    return [log_likelihood(counts, m, mask, tilt_weights(angles)) for m in mus]


def parabola_vertex(x, y) -> float:
    """Vertex of the least-squares parabola through (x, y), kept within their range."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return float(x[int(np.argmax(y))])
    c2, c1, _ = np.polyfit(x - x.mean(), y, 2)
    if c2 >= 0:
        return float(x[int(np.argmax(y))])
    return float(np.clip(x.mean() - c1 / (2 * c2), x.min(), x.max()))
