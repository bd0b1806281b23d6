"""Trajectory smoother of :func:`~napari_cryomat.core.drift.estimate_drift`: random walk plus drift, grid posterior.

Private: functions take the estimator's internal spectra.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core._drift_fourier import _bfilter, _dft_kernels, _freq_grid
from napari_cryomat.core._drift_lattice import held_velocity, lattice_coherence
from napari_cryomat.core._drift_refine import _aligned_spectra, _measured_prior, _spectral_snr, _within_reach

# ---------------------------------------------------------------------------------------------
# trajectory smoother (random walk plus linear drift, grid posterior)
# ---------------------------------------------------------------------------------------------
# Spectra of the smoother are Fourier-cropped to at most this size: the frames it is run on
# (low dose) carry no usable signal at higher frequencies, and it keeps the grid DFTs cheap.
SMOOTH_SIZE = 512
# The smoother is skipped when one frame alone already gives its shift to better than this (px,
# full frame): the trajectory prior then adds nothing the measurement does not already have.
SMOOTH_MIN_SIGMA = 0.08
# Candidate random-walk steps (px per frame and axis, full frame) among which the smoother picks
# the one of largest evidence (marginal likelihood of the data).
SMOOTH_STEPS = (0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.0)
# Corrections of the drift velocity (px per frame, full frame) searched around the slope of the
# current trajectory, by the same evidence.
SMOOTH_DVELOCITY = tuple(0.05 * np.arange(-4, 5))
# Evidence margin (nats) by which the unwrapped first trajectory must beat the line as the smoother's start.
SMOOTH_PREFER = 2.0
# Hold the drift velocity's components along the low-dose lattice stage's reflections at their own phase rates
# and search only the rest (_held_velocity; False: the switch for old-vs-new comparisons) ...
HOLD_VELOCITY = True
# ... and the start's slope along them, where it is off by more than HOLD_START_CYCLES (cycles over the stack).
HOLD_START = True
HOLD_START_CYCLES = 0.5
# Both hold only along reflections of at least this fraction of the highest detected frequency (0: all). A rate is
# measured to ~0.1-0.3 cycle whatever the period, so a long period holds the velocity to that many periods: on
# benchmarks/drift.py's 0.01 stack 101 a 43.5 px reflection (amorphous texture; the lattice's is 8 px), 0.12 cycle
# off, held the velocity 5 px off over the stack (RMS 0.612 -> 0.743 px), where the smoother's own was 0.0 off.
HOLD_MIN_FREQUENCY = 0.5
# Where those reflections are explained better by this many nats along one of the smoother's two results than
# along the other, they choose between them (_drift_lattice.lattice_coherence; inf: the switch for old-vs-new).
LATTICE_PREFER = 2.0
# Largest deviation (px, full frame) of the refined trajectory from its straight-line fit for
# which the smoother starts from the line (within reach of its ±3 px coarse grid).
SMOOTH_LINE_REACH = 2.0


def _frame_loglik(aligned, total, p_sig, p_noise, bf, centers, half, step):
    """Log-likelihood of each frame's residual shift on a grid, given the sum of the others.

    Frame i is modelled as ``A_i = S e^{-2πik·u} + N_i`` with Gaussian noise of power
    ``P_i(k)`` and the specimen estimated from the sum ``R`` of the other (aligned) frames by its
    Wiener estimate ``T = R p_sig / (m p_sig + p_noise)`` (m = N - 1 frames). Then

        ℓ_i(u) = Σ_k Re[conj(T) A_i e^{2πik·u}] / P_i(k) + const,

    evaluated with a matrix DFT on a (K, K) grid ``centers[i] + step * (j - K//2)`` (px) for
    j = 0..K-1. ``bf`` (B-factor) down-weights high frequencies whose signal the smoothed
    spectral estimate cannot resolve from the noise. The aligned frames' residual shift is
    ``u``: ``A_i(r) ≈ R(r - u) / m``.
    """
    n = len(aligned)
    shape = (aligned.shape[1], 2 * (aligned.shape[2] - 1))
    m = n - 1
    # per-frame noise power follows the frame's total power (dose may change along the stack)
    power = np.array([float(np.sum(np.abs(a) ** 2)) for a in aligned])
    power /= power.mean()
    base = (_measured_prior(bf, p_sig, p_noise, n) * p_sig / ((m * p_sig + p_noise) * p_noise)).astype(np.float32)
    k = 2 * int(round(half / step)) + 1
    maps = np.empty((n, k, k))
    for i in range(n):
        x = np.conj(total - aligned[i]) * aligned[i] * (base / np.float32(power[i]))
        ey, ex, _, _ = _dft_kernels(*shape, centers[i, 0], centers[i, 1], k, step)
        maps[i] = ((ey @ x) @ ex).real  # ex carries the weights of the half-plane: full-plane sum
    offsets = step * (np.arange(k) - k // 2)
    return maps, offsets


def _plug_in_tempers(aligned, total, p_sig, p_noise, bf):
    """Per frame, the factor that makes :func:`_frame_loglik` as confident as its data allow.

    ℓ_i treats the sum R of the other frames as the noise-free specimen, but R carries noise of
    power ``m p_noise`` per coefficient: the score of ℓ_i then varies by ``Var_A + Var_R`` (the
    frame's own noise against R, R's noise against the frame) while its curvature is that of
    ``Var_A`` alone. Scaled by ``Var_A / (Var_A + Var_R)``, its curvature equals its score variance
    again (the magnitude adjustment of a misspecified likelihood): about 1/2 where both are noise
    (the lowest doses), ``1 - 1/m`` where the signal dominates.
    """
    n = len(aligned)
    m = n - 1
    shape = (aligned.shape[1], 2 * (aligned.shape[2] - 1))
    power = np.array([float(np.sum(np.abs(a) ** 2)) for a in aligned])
    power /= power.mean()
    base = _measured_prior(bf, p_sig, p_noise, n) * p_sig / ((m * p_sig + p_noise) * p_noise)
    ky, kx = _freq_grid(*shape)
    alpha = np.full(aligned.shape[2], 2.0, np.float32)  # rfft half-plane: interior columns count twice
    alpha[0] = alpha[-1] = 1.0
    score_w = ((ky**2 + kx**2) * alpha**2 * (base * base * p_noise)).astype(np.float32)
    out = np.empty(n)
    for i in range(n):
        var_a = float(np.sum(score_w * np.abs(total - aligned[i]) ** 2)) / power[i] ** 2
        var_r = float(np.sum(score_w * np.abs(aligned[i]) ** 2)) * m / power[i] ** 2
        out[i] = var_a / max(var_a + var_r, 1e-300)
    return out


def _frame_sigma(aligned, total, p_sig, p_noise, bf):
    """Expected per-frame shift precision (px) of :func:`_frame_loglik`: 1/sqrt(Fisher information).

    The expected curvature of ℓ_i is ``Σ_k (2πk)² m p_sig · w(k)``, w the weight of ℓ_i.
    """
    n = len(aligned)
    m = n - 1
    ny = aligned.shape[1]
    nx = 2 * (aligned.shape[2] - 1)
    ky, kx = _freq_grid(ny, nx)
    alpha = np.full(aligned.shape[2], 2.0)  # rfft half-plane: interior columns count twice
    alpha[0] = 1.0
    alpha[-1] = 1.0
    w = bf * p_sig / ((m * p_sig + p_noise) * p_noise) * m * p_sig * alpha[None, :]
    info = min(float(np.sum(w * (2 * np.pi * ky) ** 2)), float(np.sum(w * (2 * np.pi * kx) ** 2)))
    return 1.0 / np.sqrt(max(info, 1e-30))


def _forward_backward(maps, offsets, centers, velocity, q):
    """Posterior mean of a random walk with drift observed through grid log-likelihoods.

    State of frame i: its residual ``u_i`` on the grid ``centers[i] + offsets`` (per axis); the
    motion model is ``(c_{i+1} + u_{i+1}) - (c_i + u_i) ~ N(velocity, q)`` per axis, i.e. a random
    walk of step variance ``q`` on top of a constant drift. The transition is separable in y and x,
    so one step of the forward (or backward) recursion is two small matrix products.

    Returns the posterior mean of ``u`` (n, 2) and the log evidence (up to a constant that does
    not depend on ``q``), used to choose ``q``.
    """
    n = len(maps)

    def transition(i, a):
        d = (centers[i + 1, a] + offsets[:, None]) - (centers[i, a] + offsets[None, :]) - velocity[a]
        t = np.exp(-0.5 * d * d / q)
        return t / np.maximum(t.sum(0, keepdims=True), 1e-300)  # column j: p(u_{i+1} | u_i = j)

    trans = [(transition(i, 0), transition(i, 1)) for i in range(n - 1)]
    lik = np.exp(maps - maps.max(axis=(1, 2), keepdims=True))
    log_evidence = float(maps.max(axis=(1, 2)).sum())
    fwd = np.empty_like(maps)
    a = lik[0] / lik[0].sum()
    log_evidence += float(np.log(lik[0].sum()))
    fwd[0] = a
    for i in range(1, n):
        ty, tx = trans[i - 1]
        a = (ty @ fwd[i - 1] @ tx.T) * lik[i]
        z = a.sum()
        log_evidence += float(np.log(max(z, 1e-300)))
        fwd[i] = a / max(z, 1e-300)
    post = np.empty_like(maps)
    post[-1] = fwd[-1]
    beta = np.ones(maps.shape[1:])
    for i in range(n - 2, -1, -1):
        ty, tx = trans[i]
        beta = ty.T @ (beta * lik[i + 1]) @ tx
        beta /= max(beta.sum(), 1e-300)
        p = fwd[i] * beta
        post[i] = p / max(p.sum(), 1e-300)
    mean = np.stack([post.sum(2) @ offsets, post.sum(1) @ offsets], axis=1)
    return mean, log_evidence


def _smooth_trajectory(spectra, shape, shifts, *, bfactor_px2, window_taper, px, passes=3, reach=3.0,
                       first=None, jump=np.inf, cell=np.inf, lattice=None):
    """Bayesian smoothing of the trajectory: random walk plus linear drift, grid posterior mean.

    The refinement aligns each frame (or sliding group) independently to the sum of the others;
    at the lowest doses every frame's measurement is then noisy, and grouping averages the
    trajectory only crudely. Here the per-frame likelihood of the shift (:func:`_frame_loglik`,
    evaluated on a grid, so a likelihood with several peaks is used as it is) is combined with
    the motion model of a cold stage, a random walk on top of a constant drift, by the
    forward-backward recursion of a hidden Markov model; the shift is the posterior mean.
    The random-walk step (among ``SMOOTH_STEPS``) and the drift velocity (around the slope of
    the current trajectory) are chosen by the evidence of the data (type-II maximum likelihood),
    so nothing about the motion is assumed beyond its form. A coarse pass (±3 px at 1/8 px)
    captures, a fine pass (±1 px at 1/16 px around the coarse posterior mean) gives the
    precision; the reference is rebuilt with the new trajectory and the whole repeated
    ``passes`` times, starting from the straight-line fit of ``shifts`` where ``shifts`` stays
    within ``SMOOTH_LINE_REACH`` of it (else from ``shifts``).

    Parameters
    ----------
    spectra : (N, Y, X//2+1) complex64
        Unwindowed rfft2 spectra (mean removed).
    shape : (int, int)
        Image shape of ``spectra``.
    shifts : (N, 2)
        Current trajectory, px of ``spectra``.
    bfactor_px2 : float
        B-factor in px² of ``spectra``.
    window_taper : float
    px : float
        Size of one pixel of ``spectra`` in full-frame pixels (the grids and thresholds are in
        full-frame pixels).
    reach : float
        Largest move (full-frame px) of any frame away from the start, a fraction of the lattice alias.
    first, jump : optional
        A second start (the unwrapped first trajectory, px of ``spectra``) and the distance (px of
        ``spectra``) between the two results beyond which the second is taken without asking the
        evidence.
    cell : float
        The lattice alias (full-frame px; inf for none). Where the refined trajectory strays more
        than ``cell / 4`` from its line, it is also tried as a start (see ``_line_or_refined``);
        where it strays beyond the line's reach and its result needs a walk step above ``cell / 8``
        (one that makes unit-cell jumps plausible), the line's result is taken if its step does not.
    lattice : (g, coef, noise, rates), optional
        Reflections the low-dose lattice stage detected: frequencies (J, 2; cycles per px of ``spectra``), the
        frames' coefficients there (T, J), their noise power (T,) and their coherent phase rates (J,; cycles per
        frame). The drift velocity along them is held at their rates (:func:`_held_velocity`), and their
        coherence along the two results chooses between them where it differs by more than ``LATTICE_PREFER``.

    Returns
    -------
    shifts : (N, 2) array, or None when the smoother does not apply (too few frames, or each
    frame alone already precise to ``SMOOTH_MIN_SIGMA``).
    step : float
        Chosen random-walk step, full-frame px per frame and axis (nan when skipped).
    log_evidence : float
        Of the motion model and the data for the returned trajectory (-inf when skipped).
    """
    n = len(spectra)
    if n < 4:
        return None, float("nan"), -np.inf
    bf = _bfilter(*shape, bfactor_px2)
    shifts = np.asarray(shifts, float)
    aligned = _aligned_spectra(spectra, shape, shifts, window_taper)
    total = aligned.sum(0)
    p_sig, p_noise = _spectral_snr(total, aligned)
    if _frame_sigma(aligned, total, p_sig, p_noise, bf) * px < SMOOTH_MIN_SIGMA:
        return None, float("nan"), -np.inf
    # Start from the straight-line fit of the refined trajectory (the constant-drift part of the
    # motion model) where the trajectory stays within reach of it. At the lowest doses the
    # refinement's errors are correlated in time; a reference aligned with them is blurred in
    # the same way and keeps them, while the line's reference carries no such errors, and the
    # smoother then recovers the walk from the data. A drift far from a line (a settling stage)
    # keeps the refined start: the coarse grid of ±3 px could not reach it from the line.
    t = np.arange(n, dtype=float)
    slope, offset = np.polyfit(t, shifts, 1)
    line = t[:, None] * slope + offset
    start = line if np.abs(shifts - line).max() * px <= min(SMOOTH_LINE_REACH, reach) else shifts
    starts = [start] if first is None else [start, np.asarray(first, float)]
    runs = [_smooth_from(spectra, shape, st - st[0], bf=bf, window_taper=window_taper, px=px, passes=passes,
                         reach=reach, lattice=lattice) for st in starts]
    if start is line and np.abs(shifts - line).max() * px > cell / 4.0:
        runs[0] = _line_or_refined(runs[0], spectra, shape, shifts, bf=bf, window_taper=window_taper, px=px,
                                   passes=passes, reach=reach, cell=cell, lattice=lattice)
    elif start is not line and runs[0][1] > cell / 8.0:
        # the refined start (beyond the line's reach) needed a walk that makes unit-cell jumps
        # plausible: the line's result, if its walk does not
        from_line = _smooth_from(spectra, shape, line - line[0], bf=bf, window_taper=window_taper, px=px,
                                 passes=passes, reach=reach, lattice=lattice)
        if from_line[1] <= cell / 8.0:
            runs[0] = from_line
    if len(runs) == 1:
        return runs[0]
    coherence = [_lattice_coherence(lattice, r[0]) for r in runs]
    if abs(coherence[1] - coherence[0]) > LATTICE_PREFER:
        # the reflections, which build no reference from the trajectory they judge, tell the two results apart
        return runs[int(coherence[1] > coherence[0])]
    # The two results differ by a sizeable part of a unit cell: the line's may have jumped, the
    # unwrapped one is built not to (and the evidence, whose reference moves with the trajectory,
    # cannot be trusted to tell). Otherwise the unwrapped start replaces the line only when clearly
    # more probable: by more than SMOOTH_PREFER nats (smaller differences are noise).
    apart = np.hypot(*((runs[0][0] - runs[0][0].mean(0)) - (runs[1][0] - runs[1][0].mean(0))).T).max()
    if apart > jump or runs[1][2] > runs[0][2] + SMOOTH_PREFER:
        return runs[1]
    return runs[0]


def _line_or_refined(from_line, spectra, shape, shifts, *, bf, window_taper, px, passes, reach, cell, lattice=None):
    """The smoother's result from the refined trajectory where it is clearly more probable than from the line.

    The line is a safe start only where every refined frame lies well within its lattice cell
    around it: a fast random walk on a fine lattice strays beyond a quarter period, where the
    smoother's search around the line reaches the neighbouring cell's pull. The refined start
    wins by more than ``SMOOTH_PREFER`` nats, and only with a walk step below ``cell / 8``: a
    larger step makes a half-period move in one frame plausible (4 steps), and its evidence can
    then be won by fitting unit-cell jumps.
    """
    own = _smooth_from(spectra, shape, shifts - shifts[0], bf=bf, window_taper=window_taper, px=px, passes=passes,
                       reach=reach, lattice=lattice)
    if own[2] > from_line[2] + SMOOTH_PREFER and own[1] <= cell / 8.0:
        return own
    return from_line


def _smooth_from(spectra, shape, shifts, *, bf, window_taper, px, passes, reach=3.0, lattice=None):
    """``passes`` passes of the smoother from the trajectory ``shifts`` (see :func:`_smooth_trajectory`).

    Returns the trajectory, the chosen walk step (full-frame px) and the log evidence of the
    last pass, its maps tempered for the reference's noise (:func:`_plug_in_tempers`): it is
    compared with the evidence of other starts, whose references carry other noise. ``lattice``: see
    :func:`_smooth_trajectory`.
    """
    n = len(spectra)
    t = np.arange(n, dtype=float)
    shifts = np.array(shifts, float)
    if HOLD_START and lattice is not None:
        # the start's slope along the reflections at their rates too (_held_velocity), where it is off by more than
        # HOLD_START_CYCLES over the stack: a start ramped by a cycle builds a reference that keeps the ramp, while
        # a rate is itself measured to ~0.1-0.25 cycle (stress stack 4065 at 0.02: a start within 0.06 cycle of the
        # truth moved to the rate's 0.23 cycle off gave 0.60 -> 0.70 px RMS)
        slope = np.polyfit(t, shifts, 1)[0]
        held = _held_velocity(slope, lattice)[0]
        if np.abs(np.asarray(lattice[0]) @ (held - slope)).max() * (n - 1) > HOLD_START_CYCLES:
            shifts += t[:, None] * (held - slope)
    anchor = shifts.copy()
    for p in range(passes):
        aligned = _aligned_spectra(spectra, shape, shifts, window_taper)
        total = aligned.sum(0)
        p_sig, p_noise = _spectral_snr(total, aligned)
        velocity, free = _held_velocity(np.polyfit(t, shifts, 1)[0], lattice)
        # coarse pass: ±3 px (less than half of any lattice period that the wide search could
        # confuse), so it can pull a frame by a fraction of a unit cell but never by one cell
        maps, offsets = _frame_loglik(aligned, total, p_sig, p_noise, bf, np.zeros((n, 2)), reach / px,
                                      min(0.125, reach / 12) / px)

        def evidence(st, v):
            return _forward_backward(maps, offsets, shifts, v, (st / px) ** 2)[1]

        # type-II maximum likelihood of the motion model: the walk step, then the drift velocity
        # axis by axis (a wrong slope of the current trajectory would otherwise be imposed on the
        # result by a small step), then the step again for that velocity
        step = max(SMOOTH_STEPS, key=lambda st: evidence(st, velocity))
        for direction in free:  # the axes, or the direction the reflections leave free (_held_velocity)
            cands = [velocity + dv / px * direction for dv in SMOOTH_DVELOCITY]
            velocity = max(cands, key=lambda v: evidence(step, v))
        step = max(SMOOTH_STEPS, key=lambda st: evidence(st, velocity))
        coarse, _ = _forward_backward(maps, offsets, shifts, velocity, (step / px) ** 2)
        if p == passes - 1:
            # the evidence that compares this trajectory with others (other starts): each trajectory's
            # reference carries its own noise, which the plain maps reward as if it were specimen
            tempered = maps * _plug_in_tempers(aligned, total, p_sig, p_noise, bf)[:, None, None]
            log_evidence = _forward_backward(tempered, offsets, shifts, velocity, (step / px) ** 2)[1]
        maps, offsets = _frame_loglik(aligned, total, p_sig, p_noise, bf, coarse, 1.0 / px, 0.0625 / px)
        fine, _ = _forward_backward(maps, offsets, shifts + coarse, velocity, (step / px) ** 2)
        shifts = _within_reach(shifts + coarse + fine, anchor, reach / px)
        shifts -= shifts[0]
    return shifts, step, log_evidence


def _lattice_coherence(lattice, shifts):
    """:func:`~napari_cryomat.core._drift_lattice.lattice_coherence` of the trajectory ``shifts`` (0 without ``lattice``)."""
    if lattice is None or not np.isfinite(LATTICE_PREFER):
        return 0.0
    return lattice_coherence(*lattice[:3], shifts)


def _held_velocity(velocity, lattice):
    """The velocity held along the lattice stage's reflections, and the directions left to the smoother's search
    (:func:`~napari_cryomat.core._drift_lattice.held_velocity`; the two axes without ``lattice``), along the
    reflections of HOLD_MIN_FREQUENCY of the highest frequency and up.

    Why: the smoother's evidence comes from maps against a reference built from the current trajectory, and its
    velocity search follows a ramp that reference already holds (stress stack 4048 at 160², 0.01 counts/px: the
    result 0.73 cycle off along its (0,1) reflection, detected at 22 nats, whose own rate is 0.03 cycle off).
    """
    if lattice is None or not HOLD_VELOCITY:
        return velocity, np.eye(2)
    g, rates = np.asarray(lattice[0], float), np.asarray(lattice[3], float)
    norm = np.hypot(*g.T)
    keep = norm >= HOLD_MIN_FREQUENCY * norm.max()
    return held_velocity(velocity, g[keep], rates[keep])
