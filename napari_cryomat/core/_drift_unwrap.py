"""First trajectory of :func:`~napari_cryomat.core.drift.estimate_drift` that cannot jump a unit cell.

Why a crystal is hard
---------------------
The correlation of two frames of a crystal has a peak at the true shift p and, almost as high, at
every p + n·a (a a lattice vector): only the aperiodic content (grain edges, amorphous texture, a
slow intensity envelope) tells them apart, and at low dose that difference drowns in the noise.
Picking the highest peak of far pairs of frames (which differ by several periods) therefore jumps.

What is done here
-----------------
1. The lattice the stack reveals, without any alignment: the signal power spectrum averaged over
   the frames (|A_i(k)|² does not depend on the shift) gives the signal autocorrelation, whose
   nearest strong secondary peak is the shortest shift that looks almost like no shift at all,
   ``alias`` (px; infinite for an amorphous specimen). Every later search window is kept below
   half of it, so no later stage can move a frame by a unit cell (:func:`lattice_alias`).
2. Per pair of frames (lags 1, 2, 3, 4, 6, 8, ... frames apart) the log-likelihood of their
   relative shift on the pixel grid, ``ℓ(d) = ½ Σ_k Re[conj(W A_i) A_j e^{2πik·d}] / N_j`` with N
   the noise power (from the outer part of the spectrum), W the Wiener filter of the noisy
   template (signal power from the frames' mean power spectrum) and the B-factor low-pass,
   divided by the overlap of the two windows (:func:`pair_loglik`). The template is as noisy as
   the frame, so the noise of ℓ grows as the square root of its peak height h; ℓ is tempered by
   ``sqrt(h/2)`` (its noise level), so that lattice-equivalent peaks whose heights differ by less
   than the noise count as equal and the motion prior decides between them.
3. Motion model of a cold stage: ``s_{i+1} - s_i = v + w_i``, w_i ~ N(0, q). The velocity v and
   the walk variance q are chosen by the evidence ``Σ_pairs log ∫ exp ℓ_ij(d) N(d; L v, L q) dd``
   (L = j - i), on a grid of v limited to the half-period cell around zero (a drift of more than
   half a period per frame is aliased by the lattice and beyond any method's reach).
4. Near pairs first, far pairs against the trajectory they imply: each pair contributes its
   likelihood's mean and variance *within the cell around the predicted shift*
   ``|d - (s_j - s_i)| < alias/2``, and only when the prediction is certain to a sixth of a period
   (3σ below half of it). The trajectory is the Gauss-Markov least-squares solution of these
   measurements and the motion prior (a batch Kalman smoother), whose covariance gives the next
   pass's prediction uncertainty; three passes.
5. Blocks of a fast drift (:func:`grouped_trajectory`): a block of g frames drifting v per frame
   tells the velocity only modulo a/g per frame, and its sum smears a lattice that moves a good
   part of a period within it. Pairs of single frames (lags 1-8) alias only at a whole lattice
   vector per frame; where their evidence picks a velocity decisively, the frames are moved back
   by that line before summing, and steps 2-4 work on the drift about the line.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from napari_cryomat.core._parallel import thread_map

#: Lags (frames apart) of the pairs that are correlated.
LAGS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
#: Candidate random-walk steps (px per frame and axis, full frame) for the evidence.
WALK_STEPS = (0.1, 0.25, 0.5, 1.0)
#: A secondary peak of the signal autocorrelation this high (relative to the zero-shift value)
#: counts as a lattice alias.
ALIAS_LEVEL = 0.15
#: Shortest alias (px of the correlated spectra): nearer maxima are the shoulder of the zero-shift peak.
MIN_ALIAS = 2.5
#: Fraction of half the alias period that search windows are kept within.
CELL_SAFETY = 0.9


def noise_power(spec: np.ndarray, shape) -> float:
    """White-noise power per Fourier coefficient of an rfft2 spectrum: median of |F|² beyond 0.35/px / ln 2.

    The median of an exponential distribution is ln 2 times its mean; sparse Bragg peaks and the
    (band-limited) specimen barely move the median of the outer annulus. Floored at 10⁻⁴ of the
    mean power: noise-free (simulated, filtered) frames would otherwise give likelihoods beyond
    floating point.
    """
    step, outer = _outer_sample(int(shape[0]), int(shape[1]))
    floor = 1e-4 * float(np.vdot(spec, spec).real) / spec.size  # 1e-4 of the mean power
    sample = spec[::step, ::step][outer]
    power = sample.real * sample.real + sample.imag * sample.imag
    return float(max(np.median(power) / np.log(2.0), floor, 1e-30))


@functools.lru_cache(maxsize=8)
def _outer_sample(ny, nx):
    """(step, mask) of :func:`noise_power`'s sample: |k| > 0.35 on every ``step``-th row and column."""
    ky = sfft.fftfreq(ny)[:, None]
    kx = sfft.rfftfreq(nx)[None, :]
    outer = np.hypot(ky, kx) > 0.35
    # every other row and column of a large spectrum: the median of ~10⁵ values is as good (0.5 %)
    # and the partial sort of all of them is a tenth of the time of a 1024² frame
    step = 2 if outer.sum() > 100_000 else 1
    mask = outer[::step, ::step]
    mask.flags.writeable = False
    return step, mask


def signal_power(cspec: np.ndarray, noise: np.ndarray, *, significant: bool = False) -> np.ndarray:
    """Mean signal power per coefficient from the frames' power spectra (alignment-free), smoothed 3×3.

    With ``significant``, coefficients whose excess over the noise is below 5 standard errors of
    the (smoothed, frame-averaged) power are set to zero: otherwise the positive half of the noise
    of the estimate, summed over all coefficients, would swamp a weak lattice at the lowest doses
    (and a lower threshold lets a few of the ~10⁵ noise coefficients through, which fake peaks).
    """
    n = len(cspec)
    nbar = float(np.mean(noise))
    mean_power = ndimage.uniform_filter(np.mean(np.abs(cspec) ** 2, axis=0), 3, mode=("wrap", "nearest")) - nbar
    if significant:
        mean_power = np.where(mean_power > 5.0 * nbar / np.sqrt(9.0 * n), mean_power, 0.0)
    return np.clip(mean_power, 0.0, None)


def lattice_aliases(p_sig: np.ndarray, cshape, norm: np.ndarray, px: float) -> np.ndarray:
    """(k, 2) shifts (dy, dx, full-frame px) that the signal autocorrelation nearly repeats at.

    The autocorrelation of the signal (high-passed below 1/40 px⁻¹, which removes envelopes and
    the window's own hump) normalised by the windows' overlap; its local maxima beyond ``MIN_ALIAS`` px
    whose height is at least ``ALIAS_LEVEL`` of the zero-shift value. Empty for an amorphous specimen.
    """
    ky = sfft.fftfreq(cshape[0])[:, None] / px
    kx = sfft.rfftfreq(cshape[1])[None, :] / px
    highpass = 1.0 - np.exp(-(ky**2 + kx**2) / (2 * (1 / 40.0) ** 2))
    acf = sfft.irfft2(p_sig * highpass, s=cshape, workers=-1)
    acf = sfft.fftshift(np.where(np.isfinite(norm), acf / np.where(np.isfinite(norm), norm, 1.0), -np.inf))
    cy, cx = cshape[0] // 2, cshape[1] // 2
    zero = acf[cy, cx]
    if not zero > 0:
        return np.zeros((0, 2))
    peaks = (acf == ndimage.maximum_filter(acf, 3, mode="nearest")) & (acf >= ALIAS_LEVEL * zero)
    shifts = np.argwhere(peaks) - (cy, cx)
    return shifts[np.hypot(*shifts.T) >= MIN_ALIAS] * px


def lattice_alias(p_sig: np.ndarray, cshape, norm: np.ndarray, px: float) -> float:
    """Length (full-frame px) of the shortest of the :func:`lattice_aliases`; inf when there is none."""
    aliases = lattice_aliases(p_sig, cshape, norm, px)
    return float(np.hypot(*aliases.T).min()) if len(aliases) else float("inf")


def pair_loglik(a_i, a_j, weight, cshape, norm, radius, workers=-1):
    """ℓ(d) of the shift of frame j against frame i on the integer grid |d| <= radius (coarse px).

    Returns a (2ry+1, 2rx+1) float array (row r is dy = r - ry); -inf where the windows overlap too
    little.
    """
    x = np.conj(a_i) * a_j * weight
    ry, rx = radius
    cc = _cc_window(x, cshape, ry, rx, workers)
    iy = np.r_[cshape[0] - ry : cshape[0], 0 : ry + 1]
    ix = np.r_[cshape[1] - rx : cshape[1], 0 : rx + 1]
    nm = norm[np.ix_(iy, ix)]
    cc = cc * (0.5 * cshape[0] * cshape[1])  # scaled after the crop: the map is a fraction
    return np.where(np.isfinite(nm), cc / np.where(np.isfinite(nm), nm, 1.0), -np.inf).astype(np.float32)


def _cc_window(x, cshape, ry, rx, workers=-1):
    """The correlation map of the cross-spectrum ``x`` (rfft2 half-plane) at shifts |dy| <= ry, |dx| <= rx.

    Row r is dy = r - ry, column c is dx = c - rx. The inverse FFT is pruned to the rows it needs:
    along y for every column, then along x only for the 2 ry + 1 rows kept (the same numbers as
    ``irfft2``; about half its time when the search covers half the frame). ``x`` is overwritten.
    """
    cy, cx = cshape
    if 2 * ry + 1 >= cy:
        cc = sfft.irfft2(x, s=cshape, workers=workers, overwrite_x=True)
        return cc[np.r_[cy - ry : cy, 0 : ry + 1]][:, np.r_[cx - rx : cx, 0 : rx + 1]]
    col = sfft.ifft(x, axis=0, workers=workers, overwrite_x=True)
    cc = sfft.irfft(np.concatenate([col[cy - ry :], col[: ry + 1]]), n=cx, axis=1, workers=workers)
    return np.concatenate([cc[:, cx - rx :], cc[:, : rx + 1]], axis=1)


def _log_smoothed(m: np.ndarray, sigma: float) -> np.ndarray:
    """log ∫ exp m(d') N(d - d'; 0, sigma²) dd' on the grid (m finite where the map is valid)."""
    m = np.asarray(m, np.float64)  # float32 would underflow to log(0) a few hundred nats below the top
    finite = np.isfinite(m)
    top = float(m[finite].max())
    e = np.where(finite, np.exp(np.where(finite, m, top) - top), 0.0)
    sm = ndimage.gaussian_filter(e, max(sigma, 0.5), mode="constant", truncate=3.0)
    return np.log(np.maximum(sm, 1e-300)) + top


def _evidence_grid(maps, lag_of, radius, walk_steps, gy, gx):
    """Evidence ``Σ_pairs log ∫ exp ℓ_ij(d) N(d; L v, L q) dd`` at the velocities (gy, gx), per walk step.

    Velocities in coarse px per map step; returns an array (len(walk_steps),) + gy.shape.
    """
    ry, rx = radius
    vmax = (float(np.abs(gy).max()), float(np.abs(gx).max()))
    lags = sorted(set(lag_of))

    def one_step(w):
        q = w * w
        out = np.zeros(gy.shape)
        for lag in lags:
            sel = [k for k, ll in enumerate(lag_of) if ll == lag]
            # only the part of the maps that the velocity grid reaches (plus the walk's spread and
            # the smoothing kernel's 3σ) enters the evidence: smoothing the rest is wasted work
            margin = lag * np.asarray(vmax) + 3.0 * np.sqrt(lag * max(walk_steps) ** 2) + 4.0
            cy, cx = int(min(ry, np.ceil(margin[0]))), int(min(rx, np.ceil(margin[1])))
            logsum = sum(_log_smoothed(maps[k][ry - cy : ry + cy + 1, rx - cx : rx + cx + 1], np.sqrt(lag * q))
                         for k in sel)
            coords = np.stack([gy * lag + cy, gx * lag + cx])
            inside = (coords[0] >= 0) & (coords[0] <= 2 * cy) & (coords[1] >= 0) & (coords[1] <= 2 * cx)
            vals = ndimage.map_coordinates(logsum, coords, order=1, mode="nearest")
            out += np.where(inside, vals, np.median(logsum))  # beyond the map: uninformative
        return out

    return np.stack(thread_map(one_step, walk_steps))


def _velocity_grid(vmax, step=0.25):
    vy = np.arange(-vmax[0], vmax[0] + 1e-9, step)
    vx = np.arange(-vmax[1], vmax[1] + 1e-9, step)
    return np.meshgrid(vy, vx, indexing="ij")


def _evidence_velocity(maps, lag_of, radius, walk_steps, vmax):
    """(v, q) of the largest evidence; v in coarse px per frame, q in coarse px²."""
    gy, gx = _velocity_grid(vmax)
    total = _evidence_grid(maps, lag_of, radius, walk_steps, gy, gx)
    iw = int(np.unravel_index(int(np.argmax(total)), total.shape)[0])
    k = int(np.argmax(total[iw]))
    return np.array([gy.flat[k], gx.flat[k]]), walk_steps[iw] ** 2


#: Step of the per-frame velocity grid of :func:`frame_velocity_evidence`, coarse px per frame.
FRAME_VELOCITY_STEP = 0.125
#: Lags of the single-frame pairs that tell the velocity per frame (no aliasing below half a period per frame).
FRAME_LAGS = (1, 2, 3, 4, 6, 8)


def _tempered_maps(cspec, noise, weight, cshape, norm, radius, pairs, progress=None):
    """Pair log-likelihood maps tempered by their own noise, and each map's peak significance."""

    def tempered(pair):
        i, j = pair
        # float32 throughout: a float64 scalar would promote the cross-spectrum to complex128
        m = pair_loglik(cspec[i], cspec[j], weight * np.float32(1.0 / noise[j]), cshape, norm, radius, workers=1)
        fin = m[np.isfinite(m)]
        # temper by the map's own noise: with a noisy template the noise of ℓ grows as the square
        # root of its peak, and differences between lattice-equivalent peaks below it are no evidence
        m /= max(1.0, np.sqrt(max(float(fin.max() - np.median(fin)), 0.0) / 2.0))
        fin = m[np.isfinite(m)]
        sd = float(fin.std())
        return m, (float(fin.max()) - float(fin.mean())) / sd if sd > 0 else 0.0

    done = None if progress is None else (lambda k: progress((k + 1) / len(pairs)))
    got = thread_map(tempered, pairs, done)
    return [m for m, _ in got], [sg for _, sg in got]


def frame_velocity_evidence(cspec, noise, weight, cshape, norm, radius, alias_c):
    """Evidence of the drift velocity per single frame, on a grid: (gy, gx, evidence), coarse px per frame.

    Blocks of g frames tell the velocity only modulo a lattice vector per block, a/g per frame:
    with a fast drift the block pairs are ambiguous. Single frames are noisier but alias only at
    a whole lattice vector per frame; the sum of their pair evidences picks the alias of the block
    velocity (the maximum over the walk steps is kept).
    """
    n = len(cspec)
    ry, rx = int(radius[0]), int(radius[1])
    pairs = [(i, i + lag) for lag in FRAME_LAGS if lag < n for i in range(n - lag)]
    maps, _ = _tempered_maps(cspec, noise, weight, cshape, norm, (ry, rx), pairs)
    half = CELL_SAFETY * alias_c / 2.0
    gy, gx = _velocity_grid((min(half, ry / 4.0), min(half, rx / 4.0)), FRAME_VELOCITY_STEP)
    e = _evidence_grid(maps, [j - i for i, j in pairs], (ry, rx), WALK_STEPS, gy, gx).max(0)
    return gy, gx, e


#: Log evidence (tempered nats) by which the best single-frame velocity must beat no drift before the
#: frames are motion-compensated within their blocks.
DECISIVE_DRIFT = 7.0
#: Gaussian smoothing (grid steps) of the single-frame evidence before its maximum is taken.
ENVELOPE_STEPS = 1.5


def decisive_velocity(frame_evidence):
    """The single-frame velocity of the largest evidence (coarse px per frame) when it beats no drift
    decisively (:data:`DECISIVE_DRIFT`), else None.

    The evidence is smoothed first: long lags ripple it at a/L per frame (peaks that only the noise
    decides between); its envelope is what the frames tell.
    """
    gy, gx, e = frame_evidence
    k0 = int(np.argmin(np.hypot(gy, gx)))
    e = ndimage.gaussian_filter(e, ENVELOPE_STEPS, mode="nearest")
    k = int(np.argmax(e))
    if e.flat[k] - e.flat[k0] < DECISIVE_DRIFT:
        return None
    return np.array([gy.flat[k], gx.flat[k]])


def keeps_overlap(v, n, cshape) -> bool:
    """Does the line of velocity ``v`` (coarse px per frame) keep the first and last frame overlapping by at
    least half the field along each axis (``cshape``, coarse px)?

    At the lowest doses the single-frame evidence can peak on noise far out in its velocity grid (on an
    undetected lattice the grid reaches a quarter of the frame per frame): a 160² full-field crystal at
    0.01 counts/px/frame was moved by 9 px per frame, 170 px over 20 frames (RMS error 80 px; 12 px
    without the line), a 39-frame one by 85 px (RMS 34 px; 3 px without). A line that carries the
    specimen beyond half the field leaves the first and last frames too little in common to have been
    measured; it is not used. (The stress grid's fastest drifts, 5 periods of 12 px, stay within it; a
    limit at the search radius, a quarter of the field, rejected right lines of 36-49 px.)
    """
    return bool(np.all(np.abs(np.asarray(v, float)) * (n - 1) <= 0.5 * np.asarray(cshape, float)))


def compensate(cspec, cshape, v):
    """Spectra of the frames moved back by i·v (frame i; coarse px): what is left is the drift about the line.

    Summing frames into blocks smears a lattice that drifts a good part of a period per block; the
    compensated frames sum into sharp blocks whose residual motion is small (no alias to choose).
    """
    ky = sfft.fftfreq(cshape[0])[:, None]
    kx = sfft.rfftfreq(cshape[1])[None, :]
    out = np.empty_like(cspec)
    for i, a in enumerate(cspec):
        ramp = np.exp(2j * np.pi * (ky * (i * v[0]) + kx * (i * v[1]))).astype(np.complex64)
        out[i] = a * ramp
    return out


def _cell_measurement(m, pred, cell_radius, radius):
    """Mean and variance (per axis, coarse px²) of exp ℓ within |d - pred| < cell_radius; None if empty."""
    ry, rx = radius
    # only the box around the cell: the maps span the whole search range, the cell a few px
    y0, y1 = (int(np.clip(np.floor(pred[0] - cell_radius), -ry, ry + 1)),
              int(np.clip(np.ceil(pred[0] + cell_radius) + 1, -ry, ry + 1)))
    x0, x1 = (int(np.clip(np.floor(pred[1] - cell_radius), -rx, rx + 1)),
              int(np.clip(np.ceil(pred[1] + cell_radius) + 1, -rx, rx + 1)))
    m = m[y0 + ry : y1 + ry, x0 + rx : x1 + rx]
    dy = np.arange(y0, y1)[:, None]
    dx = np.arange(x0, x1)[None, :]
    inside = ((dy - pred[0]) ** 2 + (dx - pred[1]) ** 2 < cell_radius**2) & np.isfinite(m)
    if inside.sum() < 3:
        return None
    v = np.where(inside, m, -np.inf)
    p = np.exp(v - v.max())
    p /= p.sum()
    my, mx = float((p * dy).sum()), float((p * dx).sum())
    var = 0.5 * float((p * ((dy - my) ** 2 + (dx - mx) ** 2)).sum())
    return np.array([my, mx]), max(var, 0.05)


def _gauss_markov(n, pairs, meas, var, v, q):
    """Least squares of pair measurements plus the motion prior; s_0 = 0. Returns s (n, 2) and cov (n, n)."""
    h = np.zeros((n, n))
    b = np.zeros((n, 2))
    for (i, j), d, w in zip(pairs, meas, 1.0 / np.asarray(var)):
        h[i, i] += w
        h[j, j] += w
        h[i, j] -= w
        h[j, i] -= w
        b[j] += w * d
        b[i] -= w * d
    for i in range(n - 1):
        h[i, i] += 1 / q
        h[i + 1, i + 1] += 1 / q
        h[i, i + 1] -= 1 / q
        h[i + 1, i] -= 1 / q
        b[i + 1] += v / q
        b[i] -= v / q
    cov = np.zeros((n, n))
    cov[1:, 1:] = np.linalg.inv(h[1:, 1:])
    s = np.zeros((n, 2))
    s[1:] = cov[1:, 1:] @ b[1:]
    return s, cov


def unwrap_trajectory(cspec, noise, weight, cshape, norm, radius, alias_c, *, walk_scale=1.0, max_lag=None,
                      passes=3, progress=None):
    """Trajectory (n, 2) in coarse px without unit-cell jumps, and its pair measurements.

    Parameters are the coarse (Fourier-cropped, windowed) spectra ``cspec``, the per-frame noise
    power ``noise``, the cross-spectrum weight without the noise (Wiener × B-factor), the image
    shape, the window-overlap normalisation ``norm``, the search radius (coarse px, per axis) and
    the alias length ``alias_c`` in coarse px (inf for none). ``cspec`` may hold blocks of frames
    summed (``walk_scale`` = sqrt of the frames per block scales the candidate walk steps).
    ``max_lag`` limits the lags correlated (the user's ``pair_band``).
    Returns (s, pairs, meas, var, significance).
    """
    n = len(cspec)
    ry, rx = int(radius[0]), int(radius[1])
    pairs = [(i, i + lag) for lag in LAGS if lag < n and lag <= (max_lag or n) for i in range(n - lag)]
    maps, sig = _tempered_maps(cspec, noise, weight, cshape, norm, (ry, rx), pairs, progress)
    lag_of = [j - i for i, j in pairs]
    half = CELL_SAFETY * alias_c / 2.0
    vmax = (min(half, ry), min(half, rx))
    v, q = _evidence_velocity(maps, lag_of, (ry, rx), tuple(w * walk_scale for w in WALK_STEPS), vmax)
    t = np.arange(n, dtype=float)[:, None]
    s = t * v
    dt = np.abs(t - t.T)
    cov_diff = q * dt  # prior uncertainty of s_j - s_i about the straight line
    used = []
    for _ in range(passes):
        used, meas, var = [], [], []
        for (i, j), m in zip(pairs, maps):
            sp = np.sqrt(max(cov_diff[i, j], 1e-6))
            if np.isfinite(alias_c) and 3.0 * sp > half:
                continue  # the prediction cannot tell the cells apart: this pair is not used
            cell = half if np.isfinite(alias_c) else max(4.0 * sp, 2.0)
            got = _cell_measurement(m, s[j] - s[i], cell, (ry, rx))
            if got is not None:
                used.append((i, j))
                meas.append(got[0])
                var.append(got[1] * len(LAGS))  # pairs share frames: do not count a frame's noise K times
        s, cov = _gauss_markov(n, used, meas, var, v, q)
        d = np.diag(cov)
        cov_diff = d[:, None] + d[None, :] - 2 * cov
    sig_used = [sig[pairs.index(p)] for p in used]
    return s, np.array(used, int).reshape(-1, 2), np.array(meas).reshape(-1, 2), np.array(var), np.array(sig_used)


def grouped_trajectory(cspec, noise, weight, cshape, norm, radius, alias_c, group, *, max_lag=None, progress=None):
    """First trajectory of blocks of ``group`` frames; blocks of a fast drift are motion-compensated first.

    Blocks tell the drift velocity only modulo a lattice vector per block, and a lattice that moves
    a good part of a period within a block is smeared in its sum. Single frames tell the velocity
    modulo a whole lattice vector per frame (:func:`frame_velocity_evidence`); where they tell it
    decisively (:func:`decisive_velocity`), every frame is moved back by that line before summing
    (:func:`compensate`), the blocks' own residual drift corrects the line (the single-frame
    velocity is coarse) and the blocks are built once more with the corrected line.

    Returns (s_c, pairs, d_c, sig, blocks, centers, v_line): the unwrapped block positions *about
    the line* and their pair measurements (coarse px, see :func:`unwrap_trajectory`), the blocks,
    their centre frames and the line's velocity (coarse px per frame; zero when not compensated).
    """
    from napari_cryomat.core._drift_refine import _blocks

    n = len(cspec)
    v_line = np.zeros(2)
    if group > 1:
        v = decisive_velocity(frame_velocity_evidence(cspec, noise, weight, cshape, norm, radius, alias_c))
        if v is not None and keeps_overlap(v, n, cshape):
            v_line = v

    def about(v, progress=None):
        blocks, centers = _blocks(compensate(cspec, cshape, v) if v.any() else cspec, n, group)
        noise_b = np.array([noise[b * group : (b + 1) * group].sum() for b in range(len(blocks))])
        s_c, pairs, d_c, _, sig = unwrap_trajectory(blocks, noise_b, weight, cshape, norm, radius, alias_c,
                                                    walk_scale=float(np.sqrt(group)), max_lag=max_lag,
                                                    progress=progress)
        return s_c, pairs, d_c, sig, blocks, centers

    got = about(v_line, progress)
    if v_line.any():
        # the blocks' residual drift corrects the coarse single-frame line, once; the corrected line, and the one
        # the blocks then hold about it, must keep the overlap too (keeps_overlap): the blocks' evidence can peak
        # on noise far out in its velocity grid as the single frames' can (stress 160² 0.01 5208: a right line of
        # 0.9 px/frame corrected to 3.4, then held at 6.3 px/frame, 100 px over 18 frames; 47.8 px RMS)
        v_line = v_line + np.polyfit(got[5], got[0], 1)[0]
        got = about(v_line) if keeps_overlap(v_line, n, cshape) else None
        if got is None or not keeps_overlap(v_line + np.polyfit(got[5], got[0], 1)[0], n, cshape):
            v_line = np.zeros(2)
            got = about(v_line)
    return (*got, v_line)
