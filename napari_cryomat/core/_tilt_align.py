"""Fiducial-free alignment of a single-axis tilt series (the engine of ``tilt.align_tilt_series``).

Frames. A raw tilt ``raw_i`` relates to the aligned one (tilt axis along image Y, centred) by
``raw_i(c + R q + s_i) = aligned_i(q)``, with ``c`` the image centre, ``R`` the rotation that takes
the image Y axis to the tilt axis (counter-clockwise on screen by ``alpha``) and ``s_i`` the raw
(dy, dx) shift. In the rotated frame the shift is ``t_i = R.T s_i``; the work happens there.

Steps (each on a binned copy, ``-log`` of counts, normalised; :func:`prepare`):

1. tilt-axis angle when not given (:mod:`._tilt_scan`; rough: 0.5-2.5° at 50 counts/px, up to ~17° at 4 counts/px on
   small phantoms): the angle whose aligned stack agrees best with its own reprojections (steps 2
   and 3 at each angle of a coarse scan, on a small copy); two starts where its two best maxima
   score within the noise of each other, the likelier result kept (:func:`align`);
2. shifts, coarse: cosine-stretched cross-correlation of tilt pairs (neighbours and up to
   ``PAIR_SEPARATIONS`` apart, as IMOD tiltxcorr stretches neighbours), solved all at once by robust
   least squares (:mod:`._tilt_pairs`), on the coarsest level whose correlations are significant;
   refused when even there they stand no higher than with shuffled pixels (:mod:`._tilt_contrast`);
3. projection matching, coarse to fine (:func:`_levels`: bins 4x, 2x and 1x the finest, which keeps
   ~16 counts per pixel): each tilt correlated with its leave-one-out reprojection; the correction
   is added and the gauge (what no data can fix: a common shift along the axis and shifts
   ``x0 cosθ + z0 sinθ`` that only move the volume) removed. Why coarse to fine: the pair solve
   leaves a slowly varying error (a random walk for a plain chain), a slowly varying error that one projection-matching pass only diffuses
   away by a few neighbours (a fine level alone needed dozens of passes); on a coarse copy each
   reprojection draws on many tilts and the walk goes in a few passes;
4. (optional, experimental) tilt-axis angle: the angle that maximises the agreement of tilts and
   reprojections, at the finest level;
5. the axis position (:mod:`._tilt_centre`), then, for count data at low dose, Poisson matching in
   count space against a positivity-constrained SIRT reference (:mod:`._tilt_refine`); blind, the angle by that
   stage's held-out likelihood, less 0.75 of the criterion's own bias measured on simulated counts (:mod:`._tilt_axis`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_cryomat.core import _tilt_contrast
from napari_cryomat.core._progress import report, sub_progress
from napari_cryomat.core._tilt_pairs import pair_shifts, solve_pairs
from napari_cryomat.core._tilt_projector import (
    SliceProjector,
    angular_weights,
    filter_projections,
    ramp_filter,
)
from napari_cryomat.core._tilt_xcorr import bandpass, taper, xcorr_shift


def rotation(alpha_deg: float) -> np.ndarray:
    """2x2 matrix in (row, col) taking the image Y axis to the tilt axis (CCW on screen by alpha)."""
    a = np.deg2rad(alpha_deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def aligned_shape(shape: tuple[int, int], alpha_deg: float) -> tuple[int, int]:
    """The aligned frame keeps the picture: an axis nearer X than Y swaps the two sides."""
    h, w = shape
    a = abs(((alpha_deg + 90) % 180) - 90)
    return (w, h) if a > 45 else (h, w)


def resample(image: np.ndarray, alpha_deg: float, t, out_shape, *, order: int = 1, cval=None) -> np.ndarray:
    """``aligned(q) = image(c + R (q + t))`` for one tilt; ``t`` is the rotated-frame shift."""
    R = rotation(alpha_deg)
    c_in = (np.array(image.shape) - 1) / 2
    c_out = (np.array(out_shape) - 1) / 2
    offset = c_in + R @ np.asarray(t, float) - R @ c_out
    fill = float(np.mean(image)) if cval is None else cval
    return ndimage.affine_transform(image, R, offset=offset, output_shape=tuple(out_shape), order=order,
                                    mode="constant", cval=fill, prefilter=order > 1).astype(np.float32)


def bin_stack(stack: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return np.array(stack, np.float32)
    n, h, w = stack.shape
    h2, w2 = h // factor, w // factor
    s = stack[:, :h2 * factor, :w2 * factor].reshape(n, h2, factor, w2, factor)
    return s.mean(axis=(2, 4), dtype=np.float32)


def normalise(stack: np.ndarray) -> np.ndarray:
    m = stack.mean(axis=(1, 2), keepdims=True)
    s = stack.std(axis=(1, 2), keepdims=True)
    return ((stack - m) / np.where(s > 0, s, 1)).astype(np.float32)


def _match_window(shape) -> np.ndarray:
    """Window for matching in the aligned frame: the full frame, tapered over its outer tenth. Wider
    tapers across the axis (to down-weight where material enters and leaves the field of view) made
    the shifts worse (0.72 -> 1.15 px at a quarter, 2.2 px at 40 %, 256² benchmark series): the rows'
    full-width content is what ties distant tilts together."""
    return taper(shape, 0.1)


def frame_window(raw_shape, alpha_deg: float, t, shape, win: np.ndarray) -> np.ndarray:
    """``win`` times the raw frame of one tilt as it lands in the aligned frame (tapered to zero at its
    edges): the edges of a shifted raw frame move with the shift and would otherwise pull every
    correlation towards the shift that lines the frames up (most at axis angles near 45° and 90°)."""
    edge = taper(raw_shape, 0.08)
    return resample(edge, alpha_deg, t, shape, order=1, cval=0.0) * win


def _parabola_max(x: np.ndarray, y: np.ndarray) -> float:
    i = int(np.argmax(y))
    if 0 < i < len(y) - 1:
        m, z, p = y[i - 1], y[i], y[i + 1]
        den = m - 2 * z + p
        if den < 0:
            return float(x[i] + np.clip(0.5 * (m - p) / den, -0.5, 0.5) * (x[1] - x[0]))
    return float(x[i])


# -------------------------------------------------------------------------------------------------
# 3. projection matching
# -------------------------------------------------------------------------------------------------
def remove_gauge(t: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Remove what the data cannot fix: a common shift along the axis, and ``x0 cosθ + z0 sinθ``
    across it (a translation of the volume)."""
    th = np.deg2rad(angles)
    basis = np.stack([np.cos(th), np.sin(th)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, t[:, 1], rcond=None)
    out = t.copy()
    out[:, 0] -= t[:, 0].mean()
    out[:, 1] -= basis @ coef
    return out


class Matcher:
    """Leave-one-out reprojections of an aligned stack, for one geometry (angles, frame, thickness)."""

    def __init__(self, angles: np.ndarray, shape: tuple[int, int], n_z: int):
        self.angles = angles
        self.h, self.w = shape
        self.proj = SliceProjector(angles, n_z, self.w, self.w)
        self.filt = ramp_filter(self.w)
        self.weights = np.repeat((angular_weights(angles) / 2).astype(np.float32), self.w)[:, None]

    def reprojections(self, aligned: np.ndarray, exclude: int = 0) -> np.ndarray:
        """Reprojection of each tilt from the others: without itself (``exclude=0``), or without
        the ``exclude`` nearest tilts on each side too, so that only distant tilts predict it (that
        is what makes the agreement sensitive to the axis angle)."""
        n = aligned.shape[0]
        p = np.ascontiguousarray(aligned.transpose(0, 2, 1)).reshape(n * self.w, self.h)
        q = filter_projections(p, self.w, self.filt) * self.weights
        if exclude == 0:
            rep = self.proj.forward(self.proj.back(q)) - self.proj.self_term(q)
        else:
            rep = self._excluding(q, exclude)
        return np.ascontiguousarray(rep.reshape(n, self.w, self.h).transpose(0, 2, 1))

    def _excluding(self, q: np.ndarray, k: int) -> np.ndarray:
        n, w = self.proj.n_tilts, self.w
        AT, A = self.proj.matrix_t, self.proj.matrix
        cum = np.zeros((n + 1, AT.shape[0], q.shape[1]), np.float32)  # prefix sums of single-tilt BPs
        for j in range(n):
            cum[j + 1] = cum[j] + AT[:, j * w:(j + 1) * w] @ q[j * w:(j + 1) * w]
        rep = np.empty_like(q)
        for i in range(n):
            lo, hi = max(0, i - k), min(n, i + k + 1)
            vol = cum[n] - (cum[hi] - cum[lo])
            rep[i * w:(i + 1) * w] = A[i * w:(i + 1) * w] @ vol
        return rep


def match_once(work, angles, alpha, t, matcher: Matcher, *, max_shift, band, win, order=1, exclude=0):
    """One projection-matching pass: corrections, correlation per tilt."""
    shape = (matcher.h, matcher.w)
    aligned = np.stack([resample(work[i], alpha, t[i], shape, order=order, cval=0.0) for i in range(len(work))])
    rep = matcher.reprojections(aligned, exclude)
    d = np.zeros_like(t)
    peaks = np.zeros(len(work))
    for i in range(len(work)):
        win_i = frame_window(work.shape[1:], alpha, t[i], shape, win)
        d[i], peaks[i] = xcorr_shift(aligned[i], rep[i], max_shift=max_shift, band=band, win=win_i)
    return d, peaks


_MATCHERS: dict = {}


def _matcher(angles, shape, n_z) -> Matcher:
    """Matchers depend on the angles, frame and thickness only (not on the axis angle): kept for reuse
    within one alignment (the cache holds the last one)."""
    key = (tuple(np.round(angles, 6)), tuple(shape), int(n_z))
    if key not in _MATCHERS:
        _MATCHERS.clear()
        _MATCHERS[key] = Matcher(angles, shape, n_z)
    return _MATCHERS[key]


def project_match(work, angles, alpha, t, *, n_z, iterations, max_shift, band, win, progress=None, order=1,
                  exclude=0, tol=0.02):
    shape = aligned_shape(work.shape[1:], alpha)
    matcher = _matcher(angles, shape, n_z)
    peaks = np.zeros(len(work))
    for it in range(iterations):
        d, peaks = match_once(work, angles, alpha, t, matcher, max_shift=max_shift, band=band, win=win,
                              order=order, exclude=exclude)
        t = remove_gauge(t + d, angles)
        report(progress, (it + 1) / iterations)
        if np.sqrt(np.mean(d ** 2)) < tol:
            break
    return t, peaks


def refine_axis_angle(work, angles, alpha, t, *, n_z, span, step, max_shift, band, win, progress=None):
    """Angle (and matched shifts) with the best mean agreement of tilts and reprojections."""
    grid = alpha + np.arange(-span, span + step / 2, step)
    scores, shifts = [], []
    for k, a in enumerate(grid):
        ta, peaks = project_match(work, angles, a, t.copy(), n_z=n_z, iterations=2, max_shift=max_shift,
                                  band=band, win=win)
        scores.append(float(np.mean(peaks)))
        shifts.append(ta)
        report(progress, (k + 1) / len(grid))
    best = _parabola_max(grid, np.array(scores))
    i = int(np.argmin(np.abs(grid - best)))
    return best, shifts[i]


def prepare(stack: np.ndarray, factor: int) -> np.ndarray:
    """Binned, normalised copy to align on. Non-negative input is taken as intensities (counts) and
    turned into line integrals, ``-log``: the reprojections assume that projections add up, which
    bright-field counts ``exp(-∫V)`` do not (shifts come out ~30 % more accurate at 1 count/px)."""
    binned = bin_stack(stack, factor)
    if float(binned.min()) >= 0:
        floor = 0.05 * max(float(binned.mean()), 1e-12)  # a pixel without counts is not infinitely dense
        binned = -np.log(binned + floor)
    return normalise(binned)


def _levels(stack: np.ndarray, work_size: int) -> list[int]:
    """Bin factors, coarse to fine. The finest keeps ~16 counts per binned pixel for count data (below
    that, projection matching drifts on shot noise: at 1 count/px it is binned 4x) and at most
    ``work_size`` pixels; the coarser levels, 2x and 4x more binned, converge the slowly varying part
    of the shifts that a neighbour chain leaves (a fine level alone needs dozens of passes for it)."""
    size = max(stack.shape[1:])
    finest = max(1, int(np.ceil(size / work_size)))
    if float(np.min(stack[:: max(1, len(stack) // 8)])) >= 0:  # counts: bin until ~16 counts per pixel
        dose = max(float(np.mean(stack)), 1e-12)
        finest = max(finest, int(2 ** np.round(np.log2(max(1.0, np.sqrt(16 / dose))))))
    finest = min(finest, max(1, min(stack.shape[1:]) // 24))
    levels = [b for b in (4 * finest, 2 * finest) if min(stack.shape[1:]) // b >= 24]
    return levels + [finest]


#: median robust z-score of the neighbour correlation peaks above which a chain follows the specimen:
#: chains of noise give 2.4-3.1 (the largest of a few hundred correlated samples), the catalyst phantom
#: about 6 at every level and every dose, bead-only series 12-18 once the beads are resolved
CHAIN_SIGNIFICANCE = 4.5


#: tilt pairs up to this far apart enter the coarse global solve (:mod:`._tilt_pairs`)
PAIR_SEPARATIONS = 3


def _neighbour_chain(stack, coarse, angles, alpha, levels, max_shift):
    """Coarse shifts from cosine-stretched correlations of tilt pairs (neighbours and up to
    ``PAIR_SEPARATIONS`` apart) solved all at once by robust least squares (:mod:`._tilt_pairs`), on
    the coarsest level whose neighbour correlations are significant.

    The coarsest copy converges the slowly varying part best, but it averages away small features: a
    thin specimen whose only shared content is gold beads or fine texture correlates as noise there,
    and shifts from noise walk hundreds of pixels away. Finer levels are then tried (with a band-pass
    reaching their finer detail); the most significant one is kept. Returns (shifts, level index).

    Raises :class:`._tilt_contrast.NoSharedContrast` when even that level's neighbours correlate no
    better than noise does (pure shot noise, or a specimen too faint at this dose)."""
    best = None
    for k, b in enumerate(levels):
        work = coarse if k == 0 else prepare(stack, b)
        shape = aligned_shape(work.shape[1:], alpha)
        rot0 = np.stack([resample(work[i], alpha, (0, 0), shape, cval=0.0) for i in range(len(work))])
        kw = dict(max_shift=max_shift / b + 2, band=bandpass(shape, 0.003, 0.1 if k == 0 else 0.3),
                  win=frame_window(work.shape[1:], alpha, (0, 0), shape, _match_window(shape)), xcorr=xcorr_shift)
        pairs = pair_shifts(rot0, angles, separations=[1], **kw)
        z = float(np.median([p[3] for p in pairs]))
        if best is None or z > best[1]:
            best = (rot0, z, k, kw, pairs, work)
        if z >= CHAIN_SIGNIFICANCE:
            break
    rot0, _, k, kw, pairs, work = best
    _tilt_contrast.check_shared_contrast(work, rot0, angles, alpha, kw)
    pairs += pair_shifts(rot0, angles, separations=range(2, PAIR_SEPARATIONS + 1), **kw)
    t, _ = solve_pairs(pairs, angles)
    return remove_gauge(t, angles), k


def align(stack: np.ndarray, angles: np.ndarray, *, n_z: int | None, max_shift: float, alpha: float | None,
          refine_alpha: bool, iterations: int, work_size: int = 256, progress=None, refine_counts: bool = True):
    """Raw-frame shifts (N, 2), tilt-axis angle, per-tilt correlation with the reprojection.

    Coarse to fine (:func:`_levels`): the neighbour chain on the coarsest copy, then projection
    matching at each level (``iterations`` passes at most, fewer once the corrections are below
    0.05 px), full-width window (a disc would cut the rows whose sums all tilts share), a band-pass up
    to 0.3 cycles per binned pixel and cubic resampling.

    Blind, the coarse scan may hand over two starts beyond each other's reach (two maxima of its score
    within the noise, :func:`._tilt_scan.scan_axis_candidates`): the alignment is run from each and the
    one whose counts are the likelier (:func:`._tilt_axis.compare_fits`; for data that are not counts,
    the better ``sin²θ``-weighted agreement) is kept. Warns (:class:`._tilt_axis.TiltAxisWarning`) when
    the kept angle's search stopped at its reach with the likelihood still rising.
    """
    n, h, w = stack.shape
    levels = _levels(stack, work_size)
    nz = (n_z or max(h, w))
    kw = dict(levels=levels, nz=nz, max_shift=max_shift, refine_alpha=refine_alpha, iterations=iterations,
              refine_counts=refine_counts)
    if alpha is not None:
        report(progress, 0.0)
        out = _align_at(stack, angles, alpha, blind=False, progress=progress, **kw)
        _MATCHERS.clear()
        return out[:3]
    from napari_cryomat.core import _tilt_axis
    from napari_cryomat.core._tilt_scan import scan_axis_candidates  # it builds on this module's matching

    b_small = levels[-1]  # scan on a copy of at most 64 pixels (256² series, 5 seeds: 0.7-4.6° off; at 32 px 0.5-8.6°)
    while max(h, w) / b_small > 64:
        b_small *= 2
    scan_share = _SCAN_SHARE[_count_stage_runs(stack, levels[-1], refine_counts)]
    starts = scan_axis_candidates(prepare(stack, b_small), angles, n_z=max(8, int(round(nz / b_small))),
                                  max_shift=max_shift / b_small + 2, lowpass=0.25,
                                  progress=sub_progress(progress, 0.0, scan_share))
    report(progress, scan_share)
    share = (1.0 - scan_share) / len(starts)
    runs = [_align_at(stack, angles, a, blind=True,
                      progress=sub_progress(progress, scan_share + share * k, scan_share + share * (k + 1)), **kw)
            for k, a in enumerate(starts)]
    if len(runs) > 1:
        fits = [r[3] for r in runs]
        if all(f["counts"] is not None for f in fits):
            nz_b = max(8, int(round(nz / fits[0]["bin"])))
            scores = _tilt_axis.compare_fits(fits[0]["counts"], angles, [(f["alpha"], f["t"]) for f in fits],
                                             lambda s: _matcher(angles, s, nz_b).proj)
        else:
            wts = np.sin(np.deg2rad(angles)) ** 2
            scores = [float(wts @ r[2]) for r in runs]
        runs = [runs[int(np.argmax(scores))]]
    shifts, alpha, peaks, fit = runs[0]
    if fit["search"] is not None and _tilt_axis.stopped_at_reach(*fit["search"]):
        _tilt_axis.warn_at_reach(fit["search"][1], alpha)
    _MATCHERS.clear()
    return shifts, alpha, peaks


#: the share of a blind alignment's progress bar the coarse axis scan takes (it reports each trial angle), by whether
#: the count-space stage will run (as :data:`_PROGRESS`): without it 33-40 % of the demo series' time since the
#: axis-position scan got 2.6x faster (b63ca7c), with it 12-17 % (1 count/px, 192²; notes/gui24_scratch/tilt_progress.md)
_SCAN_SHARE = {False: 0.35, True: 0.15}
#: where each stage of :func:`_align_at` starts and ends on its progress bar, sized by the stages' measured shares
#: of the time, without the count-space stage (the demo series: 43 / 46 / 11 %) and with it (1 count/px, 192²:
#: the count stage 94 %). Before, the axis-position scan (centre) reported nothing and the bar stood at 82 % for 9
#: of the demo's 13 s.
_PROGRESS = {
    False: {"matching": (0.0, 0.43), "centre": (0.43, 0.89), "counts": (0.89, 0.89), "agreement": (0.89, 1.0)},
    True: {"matching": (0.0, 0.04), "centre": (0.04, 0.07), "counts": (0.07, 0.99), "agreement": (0.99, 1.0)},
}
#: within the count-space stage: (start, end) of each step, blind (the angle searched) and with the angle given
_COUNT_STEPS = {
    True: {"refine": (0.0, 0.25), "angle": (0.25, 0.55), "refine again": (0.55, 0.61), "bias": (0.61, 0.84),
           "refine at corrected": (0.84, 0.9), "finer": (0.9, 1.0)},
    False: {"refine": (0.0, 0.72), "finer": (0.72, 1.0)},
}


def _count_stage_runs(stack, finest_bin: int, refine_counts: bool) -> bool:
    """Whether :func:`_align_at` will run the count-space stage (as it decides, :func:`._tilt_refine.applies`),
    known before the axis angle is: the aligned frame only swaps its sides with the angle."""
    from napari_cryomat.core import _tilt_refine

    _, h, w = stack.shape
    return bool(refine_counts and _tilt_refine.applies(stack, finest_bin, (h // finest_bin, w // finest_bin)))


def _align_at(stack, angles, alpha, *, levels, nz, max_shift, refine_alpha, iterations, refine_counts, blind,
              progress):
    """:func:`align` from the axis angle ``alpha`` on (blind: a start the likelihood search may move).
    Returns raw-frame shifts, angle, per-tilt agreement and what :func:`align` compares starts by
    (the binned counts, bin, angle and rotated-frame shifts of the count stage; its search's scores)."""
    from napari_cryomat.core import _tilt_axis, _tilt_refine  # they build on this module's resampling
    from napari_cryomat.core._tilt_centre import centre_axis

    n, h, w = stack.shape
    stages = _PROGRESS[_count_stage_runs(stack, levels[-1], refine_counts)]  # the progress bar's stages
    coarse = prepare(stack, levels[0])
    t, start = _neighbour_chain(stack, coarse, angles, alpha, levels, max_shift)
    levels = levels[start:]
    coarse = coarse if start == 0 else prepare(stack, levels[0])
    previous = levels[0]
    peaks = np.zeros(n)
    for k, b in enumerate(levels):
        work = coarse if k == 0 else prepare(stack, b)
        t = t * previous / b
        previous = b
        shape = aligned_shape(work.shape[1:], alpha)
        lo, hi = stages["matching"]
        sub = sub_progress(progress, lo + (hi - lo) * k / len(levels), lo + (hi - lo) * (k + 1) / len(levels))
        if refine_alpha and k == len(levels) - 1:
            for span, step in ((1.5, 0.5), (0.375, 0.125)):
                alpha, t = refine_axis_angle(work, angles, alpha, t, n_z=max(8, round(nz / b)), span=span,
                                             step=step, max_shift=4, band=bandpass(shape, 0.003, 0.3),
                                             win=_match_window(shape))
            shape = aligned_shape(work.shape[1:], alpha)
        t, peaks = project_match(work, angles, alpha, t, n_z=max(8, int(round(nz / b))), iterations=iterations,
                                 max_shift=max(3.0, max_shift / (4 * b)), band=bandpass(shape, 0.003, 0.3),
                                 win=_match_window(shape), progress=sub, order=3, tol=0.05 / b)
    b = levels[-1]
    t = centre_axis(work, angles, alpha, t, n_z=max(8, int(round(nz / b))),
                    progress=sub_progress(progress, *stages["centre"]))
    lo, hi = stages["counts"]
    report(progress, lo)
    steps = _COUNT_STEPS[blind]

    def counts_step(name):  # progress of one step of the count-space stage
        a, z = steps[name]
        return sub_progress(progress, lo + (hi - lo) * a, lo + (hi - lo) * z)

    extent = (h // b * b, w // b * b)
    shape = aligned_shape(work.shape[1:], alpha)
    fit = dict(counts=None, bin=b, alpha=alpha, t=t, search=None)
    if refine_counts and _tilt_refine.applies(stack, b, shape):
        counts, nz_b = bin_stack(stack, b), max(8, int(round(nz / b)))
        t = _tilt_refine.refine(counts, angles, alpha, t, shape, _matcher(angles, shape, nz_b).proj,
                                progress=counts_step("refine"))
        if blind:  # the angle by the same stage's held-out likelihood, then the shifts there again
            projector = lambda s: _matcher(angles, s, nz_b).proj  # noqa: E731
            start_alpha = alpha
            alpha, t, ll = _tilt_axis.find_angle(counts, angles, alpha, t, projector,
                                                 progress=counts_step("angle"))
            shape = aligned_shape(work.shape[1:], alpha)
            t = _tilt_refine.refine(counts, angles, alpha, t, shape, _matcher(angles, shape, nz_b).proj,
                                    passes=_tilt_axis.FINAL_PASSES, progress=counts_step("refine again"))
            if _tilt_axis.CORRECT_BIAS:  # the criterion's own bias, measured on counts simulated at this angle
                report(counts_step("bias"), 0.0)
                bias = _tilt_axis.criterion_bias(counts, angles, alpha, t, projector, progress=counts_step("bias"))
                if abs(bias) <= _tilt_axis.MAX_BIAS:
                    corrected = alpha - _tilt_axis.BIAS_SCALE * bias
                    t, alpha = _tilt_axis.to_angle(t, alpha, corrected), corrected
                    shape = aligned_shape(work.shape[1:], alpha)
                    t = _tilt_refine.refine(counts, angles, alpha, t, shape, _matcher(angles, shape, nz_b).proj,
                                            passes=_tilt_axis.FINAL_PASSES,
                                            progress=counts_step("refine at corrected"))
            fit = dict(counts=counts, bin=b, alpha=alpha, t=t, search=(ll, start_alpha))
        report(counts_step("finer"), 0.0)
        if b % 2 == 0:  # the same raw extent binned half as much, against the upsampled reference
            finer = bin_stack(stack[:, :h // b * b, :w // b * b], b // 2)
            t = _tilt_refine.finer_pass(counts, finer, angles, alpha, t, shape, _matcher(angles, shape, nz_b).proj,
                                        progress=counts_step("finer"))
            b //= 2  # the extent stays that of the coarser binning
    # the per-tilt agreement reported is that of the final angle and shifts (the later stages moved them)
    report(progress, stages["agreement"][0])
    b_work, shape = levels[-1], aligned_shape(work.shape[1:], alpha)
    _, peaks = match_once(work, angles, alpha, t * b / b_work, _matcher(angles, shape, max(8, round(nz / b_work))),
                          max_shift=3, band=bandpass(shape, 0.003, 0.3), win=_match_window(shape), order=3)
    R = rotation(alpha)
    # the binned image centre sits at raw (extent - 1) / 2 when the bin does not divide the size
    offset = (np.array(extent) - np.array([h, w])) / 2
    shifts = (t @ R.T) * b + offset
    t_raw = remove_gauge(shifts @ R, angles)
    return t_raw @ R.T, alpha, peaks, fit
