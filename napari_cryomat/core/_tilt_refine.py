"""Last alignment stage for count data: each tilt matched in count space, by Poisson likelihood, to its
reprojection from a positivity-constrained SIRT of the tilts outside its fold.

Why (measured on the benchmark generator, 256², 61 tilts, 1 count/px; ``benchmarks/tilt.py --oracle``):
matching each noisy tilt to its TRUE projection gives 0.22-0.29 px RMS (the Cramér-Rao bound of a
Poisson shift is 0.21-0.29 px), so 0.5 px is not a limit of the data. The earlier stages leave
0.7-1.7 px because of their reference: started from the TRUE shifts, one pass of correlation against
the leave-one-out weighted back-projection (WBP) lands at 0.47 px, and Poisson matching against it at
2x binning at 0.34 px but 0.54 and 0.68 px after 2 and 3 passes: a WBP reference of a tilt is made
mostly of its noisy neighbours, so the shifts follow their neighbours' errors and the noise adds up
from pass to pass (slowly varying error modes have almost no restoring force). A SIRT with positivity
on line integrals with the right zero level pools every tilt through the prior (most of the volume is
empty) and reprojects 0.975 correlated with the truth instead of 0.92: from the truth it stays at 0.40
px over passes, and from the earlier stages' 0.74 px (benchmark seed) it converges to 0.44 in 3-4
passes (0.431 in the benchmark; within 0.02-0.08 px of what this reference gives started from the
truth on 11 phantoms). Folds (every ``FOLDS``-th tilt held out together) keep a tilt out of its own
reference at the cost of ``FOLDS`` SIRTs per pass.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_cryomat.core._progress import report, sub_progress
from napari_cryomat.core._tilt_align import remove_gauge, resample, rotation
from napari_cryomat.core._tilt_projector import SliceProjector
from napari_cryomat.core._tilt_sirt import Sirt

#: tilts held out together (a tilt and every FOLDS-th one from it): FOLDS SIRTs per pass
FOLDS = 6
#: folds of the finer pass's reference (:func:`finer_pass`): each tilt's reference from 11/12 of the tilts
#: (one pass only, so the extra SIRTs are paid once)
FINER_FOLDS = 12
#: SIRT iterations per fold (λ = 1.9, positivity); the one with the least held-out residual is used
SIRT_ITERATIONS = 15
#: the shift stages' references (:func:`refine`, :func:`finer_pass`) may run to REFERENCE_ITERATIONS, stopping
#: REFERENCE_PATIENCE iterations after the held-out residual's last fall. Why: capped at 15 the residual was
#: still falling at the 15th iteration in every fold (seen seeds 223 and 230 of the benchmark generator); the
#: uncapped stop lay at 15-25 (from the true shifts, 2x pass: 0.472 -> 0.459 and 0.492 -> 0.484 px)
REFERENCE_ITERATIONS = 30
REFERENCE_PATIENCE: int | None = 3
#: matching passes at most (fewer once the corrections are below PASS_TOLERANCE binned px RMS). Why 8: where
#: the pair solve leaves a large slowly varying error (seen seed 223: 1.19 px), 4 passes left it at 0.44 px
#: (0.622 px in all; 4 more: 0.563). With the references above, decided on never-run seeds 249-264 (256³, 61
#: tilts, ±20 px, 1 count/px, blind, vs 15 iterations and 4 passes): mean shift RMS 0.511 -> 0.498 px, <= 0.5 px on
#: 5 -> 7 of 16, no seed worse by more than 0.005 px, axis unchanged (8/16 within 0.3°); CPU 35.6 -> 45.7 s
PASSES = 8
PASS_TOLERANCE = 0.005
#: the stage runs only where the finest level's frame is at most this many px (low doses: 256² at 1
#: count/px is matched 4x binned, 64 px; 5 SIRTs of 15 iterations per pass cost ~2 CPU s there, 8x more
#: at twice the size); higher doses keep the finest level's correlation matching
MAX_SIZE = 96


def applies(stack: np.ndarray, finest_bin: int, shape) -> bool:
    """The stage runs on count data at low dose, where the finest level had to be binned to reach ~16
    counts per pixel (at higher doses correlation matching at full resolution is kept, unmeasured
    against this stage), on frames of at most ``MAX_SIZE`` px (its cost grows with the cube of the size)."""
    counts = float(np.min(stack[:: max(1, len(stack) // 8)])) >= 0
    return counts and finest_bin > 1 and max(shape) <= MAX_SIZE


def zero_level(counts: np.ndarray) -> float:
    """Counts per pixel where nothing is in the beam: the mode of the histogram of all tilts smoothed
    by σ = 2 px (vacuum is the commonest level; benchmark phantoms: 0.994-0.998 of the true dose at 1
    count/px, 4x binned). Too high a zero puts a positive background everywhere that positivity cannot
    remove (a 3 % error cost 0.05-0.07 px RMS)."""
    smooth = ndimage.gaussian_filter(np.asarray(counts, np.float32), (0, 2, 2))
    lo, hi = np.percentile(smooth, [1, 99.9])
    if not hi > lo:
        return float(hi)
    hist, edges = np.histogram(smooth, bins=200, range=(lo, hi))
    i = int(np.argmax(ndimage.gaussian_filter1d(hist.astype(np.float64), 2)))
    return float(0.5 * (edges[i] + edges[i + 1]))


def line_integrals(counts: np.ndarray) -> np.ndarray:
    """``-log(counts / zero level)``; a pixel without counts is not infinitely dense."""
    return -np.log((counts + 0.05 * max(float(counts.mean()), 1e-12)) / max(zero_level(counts), 1e-12))


def to_aligned(logs: np.ndarray, alpha: float, t: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The raw line integrals ``logs`` in the aligned frame ``shape`` at axis ``alpha`` and shifts ``t``; outside
    a raw frame nothing is known, and 0 (vacuum) lets positivity keep the volume empty there."""
    return np.stack([resample(v, alpha, ti, shape, order=3, cval=0.0) for v, ti in zip(logs, t)])


def fold_reprojections(aligned: np.ndarray, proj: SliceProjector, *, folds: int = FOLDS,
                       iterations: int = SIRT_ITERATIONS, block: int = 1, patience: int | None = None,
                       progress=None) -> np.ndarray:
    """Reprojection of every tilt of the aligned line integrals ``(N, Y, U)`` from a SIRT (λ = 1.9,
    positivity) of the tilts outside its fold, stopped where the fold's own tilts are predicted best
    (within ``iterations``; with ``patience``, the SIRT ends that many iterations after the best so far).
    A fold is every ``folds``-th run of ``block`` neighbouring tilts. ``progress`` moves fold by fold."""
    n, h, w = aligned.shape
    p = np.ascontiguousarray(aligned.transpose(0, 2, 1)).reshape(n * w, h)
    rep = np.empty_like(p)
    for f in range(min(folds, n)):
        held = (np.arange(n) // block % folds) == f
        sirt = Sirt(proj, relaxation=1.9, positivity=True, keep=~held)
        x = sirt.start(p, False)
        best, best_x, since = np.inf, x.copy(), 0
        for _ in range(iterations):
            before = x.copy()
            residual = sirt.step(x, p)  # the held-out residual of ``before``
            if residual < best:
                best, best_x, since = residual, before, 0
            else:
                since += 1
                if patience is not None and since >= patience:
                    break
        rows = np.repeat(held, w)
        rep[rows] = (proj.forward(best_x))[rows]
        report(progress, (f + 1) / min(folds, n))
    return np.ascontiguousarray(rep.reshape(n, w, h).transpose(0, 2, 1))


def poisson_shift(counts: np.ndarray, reference: np.ndarray, alpha: float, t, *, iterations: int = 3,
                  margin: int = 2, model: bool = False):
    """Rotated-frame shift ``t`` of one raw tilt of ``counts`` (binned means of counts are fine: the
    likelihood only scales) fitted by Poisson likelihood, ``counts(r) ~ Poisson(A exp(-g m(r)))``,
    ``m`` the aligned-frame ``reference`` (line integrals) seen in the raw frame at ``t``: A, g and t
    by Fisher scoring from ``t``; steps of at most 1 px per iteration. With ``model``, also the expected
    counts at the fitted parameters in the raw frame (NaN where the reference does not reach)."""
    R = rotation(alpha)
    c_raw, c_al = (np.array(counts.shape) - 1) / 2, (np.array(reference.shape) - 1) / 2

    def to_raw(coefficients, t):
        return ndimage.affine_transform(coefficients, R.T, offset=c_al - t - R.T @ c_raw,
                                        output_shape=counts.shape, order=3, mode="constant", cval=np.nan,
                                        prefilter=False)

    # The images are fixed while t moves: their cubic B-spline coefficients are computed once here,
    # exactly as affine_transform's own prefilter would each call (mode "constant" pads nothing).
    def coefficients(img):
        return ndimage.spline_filter(img, order=3, output=np.float64, mode="constant")

    t, g, log_a = np.array(t, float), 1.0, None
    gy, gx = np.gradient(reference.astype(np.float64))
    reference, gy, gx = coefficients(reference), coefficients(gy), coefficients(gx)
    for _ in range(iterations):
        m, dy, dx = to_raw(reference, t), to_raw(gy, t), to_raw(gx, t)
        ok = ndimage.binary_erosion(np.isfinite(m) & np.isfinite(dy) & np.isfinite(dx), iterations=margin)
        if ok.sum() < 16:
            break
        m, k = m[ok], counts[ok].astype(np.float64)
        log_a = np.log(max(k.sum(), 1e-12) / np.exp(-g * m).sum()) if log_a is None else log_a
        mu = np.exp(log_a - g * m)
        J = np.stack([mu, -m * mu, mu * g * dy[ok], mu * g * dx[ok]], axis=1)  # ∂μ/∂(log A, g, ty, tx)
        try:
            step = np.linalg.solve((J / mu[:, None]).T @ J, J.T @ (k / mu - 1))
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        log_a, g, t = log_a + step[0], g + step[1], t + np.clip(step[2:], -1, 1)
    if not model:
        return t
    mu = np.full(counts.shape, np.nan)
    if log_a is not None:
        m = to_raw(reference, t)
        ok = ndimage.binary_erosion(np.isfinite(m), iterations=margin)
        mu[ok] = np.exp(log_a - g * m[ok])
    return t, mu


def refine(counts: np.ndarray, angles: np.ndarray, alpha: float, t: np.ndarray, shape: tuple[int, int],
           proj: SliceProjector, *, passes: int | None = None, progress=None) -> np.ndarray:
    """Rotated-frame shifts ``t`` (binned px) of binned ``counts`` refined by :func:`poisson_shift`
    against :func:`fold_reprojections` in the aligned frame ``shape`` (``proj`` its projector), the
    reference remade from the shifts of each pass. Line integrals ``-log(counts / zero level)``: the
    positivity of the reference needs the right zero."""
    logs = line_integrals(counts)
    passes = PASSES if passes is None else passes
    for k in range(passes):
        aligned = to_aligned(logs, alpha, t, shape)
        rep = fold_reprojections(aligned, proj, iterations=REFERENCE_ITERATIONS, patience=REFERENCE_PATIENCE)
        new = np.stack([poisson_shift(c, r, alpha, ti) for c, r, ti in zip(counts, rep, t)])
        new = remove_gauge(new, angles)
        moved = float(np.sqrt(np.mean((new - t) ** 2)))
        t = new
        report(progress, (k + 1) / passes)
        if moved < PASS_TOLERANCE:
            break
    return t


def finer_pass(counts: np.ndarray, finer: np.ndarray, angles: np.ndarray, alpha: float, t: np.ndarray,
               shape: tuple[int, int], proj: SliceProjector, progress=None) -> np.ndarray:
    """One last pass on ``finer``, the same raw extent as ``counts`` binned half as much: each tilt
    fitted by :func:`poisson_shift` against its fold reference of ``counts`` upsampled 2x (cubic).
    Returns the shifts in ``finer``'s pixels. Why: the fine counts carry sharper edges than the
    coarse ones (Cramér-Rao bound 0.24-0.33 px at 2x binning against 0.29-0.40 at 4x), but a fold SIRT
    of the fine counts themselves is too noisy a reference (seed 1 of the benchmark: 0.431 -> 0.586 px);
    the coarse reference upsampled gains 0.02-0.06 px (0.431 -> 0.413, seeds 0, 3, 5: 0.519 -> 0.478,
    0.570 -> 0.512, 0.576 -> 0.543); a second such pass adds at most 0.013. The reference holds out every
    ``FINER_FOLDS``-th tilt (12), not every sixth: built from more tilts it is less noisy (blind, 256², 1
    count/px, mean shift RMS: dev seeds 0-5, 11-15 0.5079 -> 0.5033 px, lower on 9 of 11; never-seen
    61-70 0.5985 -> 0.5940, lower on 8 of 10; 1-3 CPU-s more at 256² under load). Averaging the references of 5, 6
    and 7 folds did as well (0.5029) at 3x the SIRTs; a second pass did nothing (0.5091).

    ``progress`` moves fold by fold through the references, then tilt by tilt through the fits
    (:data:`_FINER_REFERENCE_SHARE`)."""
    logs = line_integrals(counts)
    aligned = to_aligned(logs, alpha, t, shape)
    rep = fold_reprojections(aligned, proj, folds=FINER_FOLDS, iterations=REFERENCE_ITERATIONS,
                             patience=REFERENCE_PATIENCE, progress=sub_progress(progress, 0.0, _FINER_REFERENCE_SHARE))
    rep = ndimage.zoom(rep, (1, 2, 2), order=3, grid_mode=True, mode="grid-constant")
    fits = sub_progress(progress, _FINER_REFERENCE_SHARE, 1.0)
    new = []
    for k, (c, r, ti) in enumerate(zip(finer, rep, t)):
        new.append(poisson_shift(c, r, alpha, 2 * ti))
        report(fits, (k + 1) / len(finer))
    return remove_gauge(np.stack(new), angles)


#: :func:`finer_pass`'s share of its progress bar that the fold references take (the rest: one fit per tilt), as
#: measured (192², 41 tilts, 1 count/px: 1.5 of 2.3 s; notes/gui25_scratch/tilt_progress25.md)
_FINER_REFERENCE_SHARE = 0.67
