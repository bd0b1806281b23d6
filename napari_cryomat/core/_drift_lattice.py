"""The drift velocity that a crystal's reflections tell, blind: a coherent phase model per reflection.

Why
---
At the lowest doses (~250 counts per frame) the first trajectory of
:func:`~napari_cryomat.core.drift.estimate_drift` can come out with a wrong drift *velocity*: a
linear ramp of error of half a period to a few periods over the stack, which the later stages keep
(they search within a fraction of a cell). Pairs of frames compare one noisy frame with another,
so their information goes with the square of the per-frame signal-to-noise ratio, far below one
there; the incoherent power spectrum barely shows the reflections (1-3 sigma at 0.01 counts/px on
160² frames).

What is done here
-----------------
A reflection g of the lattice holds ``F_t(g) = A e^{-2πi φ_t} + noise`` in frame t, with the phase
``φ_t = g·s_t`` (cycles) following the drift: ``φ_{t+1} = φ_t + g·v + w_t``. Its amplitude |A|
comes from the mean power, which drift does not change; the phase of A is a choice of origin. A
hidden Markov model of φ mod 1 (a grid on the circle, the walk as a wrapped Gaussian) gives the
evidence of every phase rate ``f = g·v`` against "no reflection", with the trajectory
marginalised: a coherent test, linear in the per-frame SNR and free of self-fitting. Coherently
detected reflections (the strongest peaks of the mean power, and the bins whose coefficients turn
steadily over the frames; each refined within half a bin) tell
the velocity component along g modulo one cycle per frame; where that rate beats the first
trajectory's by MIN_MARGIN nats, the first trajectory's velocity is corrected along g, to the
alias nearest to it; a weak reflection asking for a large ramp (more than a cycle or LARGE_RAMP_PX over the
stack) takes part in that correction only beside a strong one (LARGE_RAMP_NATS) that asks for a correction
itself. The reflections then hold the smoother's velocity along them; one that asks for a large ramp only if
stronger than noise ever reaches at such ramps (LARGE_RAMP_NATS). Where fewer than two non-parallel reflections
are detected, the strongest candidates' partners are looked for where a square or hexagonal lattice holds them (a
few positions, so a partner far below the band's noise maximum stands out) and such a pair corrects the start.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from napari_cryomat.core._drift_unwrap import keeps_overlap

#: Points of the phase grid of the hidden Markov model (per cycle).
PHASE_GRID = 16
#: Random-walk step (coarse px per frame and axis) that diffuses a reflection's phase.
WALK = 0.2
#: Band of lattice periods searched for reflections (px of the correlated frames).
PERIOD_BAND = (2.5, 40.0)
#: Power peaks tried as reflections (the strongest of the smoothed mean power spectrum).
CANDIDATE_PEAKS = 40
#: ... and Fourier bins tried as reflections because their coefficients turn at a steady rate over the frames
#: (:func:`coherent_candidates`; 0 switches them off, a switch for old-vs-new comparisons).
COHERENT_PEAKS = 20
#: A reflection is detected when its coherent log-likelihood ratio exceeds this; on noise the largest of
#: the ~40 x 25 frequencies x n phase rates tried reaches ~12 nats at 0.01 counts/px.
DETECT_NATS = 14.0
#: A reflection's best phase rate replaces the first trajectory's when its evidence is higher by this many nats.
MIN_MARGIN = 6.0
#: ... and the two differ by more than this many cycles over the stack.
LINE_CYCLES = 0.25
#: A reflection farther than this many Fourier bins (of the coarse crop) from every integer combination of the
#: strongest and the first reflection not parallel to it (the lattice's basis) is no reflection of that lattice: it
#: neither corrects the start nor holds the smoother's velocity. Refined frequencies are good to ~0.1 bin, so a true
#: third reflection of index <= 3 lies within ~0.6 bin. Why: a false 15.6-nat reflection (Miller indices (2.87, -0.16),
#: 5 bins off) asked the first trajectory for 9.3 cycles over the stack of drift.py's generator seed 153 and the stack
#: was answered 7.9 px off (0.40 px without the lattice stage). inf: off (old-vs-new).
OFF_LATTICE_BINS = 1.0
#: A reflection whose rate asks the start for a LARGE ramp over the stack (more than LARGE_RAMP_CYCLES cycles, or more
#: than LARGE_RAMP_PX px along it; the start as corrected here) does not hold the smoother's velocity unless its score
#: clears LARGE_RAMP_NATS. Why: a false reflection's rate is noise, uniform over +-0.5 cycle per frame, so it asks for a
#: ramp of up to (n - 1) / 2 cycles, and the hold applies it: lone 14-16-nat reflections (just above DETECT_NATS) asked
#: 9.2 cycles on drift.py's generator seed 169 and 3.3 cycles of a 23 px period (75 px) on seed 176, answered 12.4 and
#: 22.1 px off. A true large correction comes from a strong reflection (stress 1109: 7.35 cycles at 26.7 nats). The start
#: correction is left out: there the joint margin (MIN_MARGIN) tests the reflections together, and a weak partner asking
#: a large ramp carried stress 256² 5112's true correction (applying the floor there too: 0 -> 54 % jumps).
#: LARGE_RAMP_NATS is the largest score at a large asked ramp on stacks without a lattice (Poisson noise and amorphous
#: specimens, 160² and 256², 0.01 and 0.02 counts/px: 19.5, long-period texture) plus a margin. -inf: off (old-vs-new).
LARGE_RAMP_CYCLES = 1.0
LARGE_RAMP_PX = 12.0
LARGE_RAMP_NATS = 21.0
#: Where fewer than two non-parallel reflections are detected, the partner of each of the PARTNER_CANDIDATES strongest
#: candidates is looked for at the rotations where a square (90°) or hexagonal (60°, 120°) lattice holds a reflection
#: of the same length (:func:`rotation_pair`). Why: at 0.01 counts/px on 160² frames one reflection often scores near
#: DETECT_NATS and its partner 8-12 nats, below the noise maximum over the whole band (~12) but far above the
#: maximum over a few rotated positions (below PARTNER_NATS); with one reflection the start keeps the pairs'
#: velocity error across it (stress 160² 0.01 5223: 2.2 px, 26 % jumps).
PARTNER_ANGLES = (60.0, 90.0, 120.0)
PARTNER_CANDIDATES = 5
#: A rotated partner counts when it scores PARTNER_NATS and the pair PAIR_NATS together (inf: off, old-vs-new).
#: PARTNER_NATS: the largest partner score of the 5 strongest candidates on 26 amorphous stacks (contrast 0; 160² and
#: 256², 0.01 and 0.02 counts/px), at periods below 20 px, was 7.6, and beside the lattices of the stress stacks 160²
#: 0.01 5180-5239 8.9 (5222; true partners there 9.3-19.9); at 27-44 px the isotropic amorphous texture itself scores
#: 10-21 at the rotations: a real signal that moves with the specimen (its rate is the true one), not noise.
PARTNER_NATS = 9.0
PAIR_NATS = 20.0
#: ... and a rotated pair corrects the start only where neither of its reflections asks more than this many cycles over
#: the stack of it. Why: a noise partner's rate is uniform over +-0.5 cycle per frame, so it asks up to (n - 1) / 2
#: cycles; the pairs' true velocity errors that leave one reflection undetected are 1-2 cycles (stress 160² 0.01: 5223
#: 1.19, 5210 1.21, 5215 0.94, 5219 0.93; session 16). Seen: 5212's true 11.9-nat reflection beside an 8.7-nat noise
#: partner asking 3.97 cycles (margin 8.7) would have moved a right start. A reflection asking more still takes part
#: where :func:`trusted_start` trusts it (a strong one that asks a correction itself): stress 160² 0.01 5269 (square,
#: 7.3 px), the pair 16.1 + 23.5 nats asked 2.2 and 2.3 cycles (6.04 px, 75 % jumps without it).
PAIR_MAX_CYCLES = 2.0


def coarse_frames(cspec: np.ndarray, cshape) -> np.ndarray:
    """The windowed frames (T, Y, X) from their rfft2 spectra (same Fourier units as ``cspec``)."""
    return sfft.irfft2(cspec, s=cshape, workers=-1)


def dft_at(frames: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(T, J) Fourier coefficients of real frames (T, Y, X) at frequencies g (J, 2), cycles/px."""
    ny, nx = frames.shape[1:]
    ey = np.exp(-2j * np.pi * g[:, 0, None] * np.arange(ny)[None])
    ex = np.exp(-2j * np.pi * g[:, 1, None] * np.arange(nx)[None])
    # A frame at a time, rows first as two real matrix products (BLAS): einsum over the real frames and complex
    # factors at once ran in its own loops, 17 s for 1,500 frequencies on 6 x 512² (the lattice stage of a
    # 2048² movie's Align), 0.5 s so; one frame's (J, X) products at a time keep the memory that of a frame.
    coef = np.empty((len(frames), len(g)), complex)
    for t, frame in enumerate(frames):
        rows = ey.real @ frame + 1j * (ey.imag @ frame)
        coef[t] = np.einsum("jx,jx->j", rows, ex)
    return coef


def peak_candidates(cspec, cshape, noise, count=CANDIDATE_PEAKS):
    """Frequencies (k, 2; cycles/px) of the strongest local maxima of the mean power spectrum (drift does not
    move it): the excess power smoothed over 3x3 bins (a grain spreads its reflection), its slow background
    (a 9x9 median) removed, in the band of lattice periods."""
    power = (cspec.real**2 + cspec.imag**2).mean(0) / noise.mean() - 1.0
    smooth = ndimage.uniform_filter(power, 3, mode="wrap")
    smooth = smooth - ndimage.median_filter(smooth, 9, mode="wrap")
    return _band_maxima(smooth, cshape, count)


def _band_maxima(score, cshape, count):
    """Frequencies (k, 2; cycles/px) of the ``count`` highest local maxima (3x3) of ``score`` over the
    half-plane spectrum of a ``cshape`` crop, within the band of lattice periods."""
    ky = sfft.fftfreq(cshape[0])[:, None]
    kx = sfft.rfftfreq(cshape[1])[None, :]
    k = np.hypot(ky, kx) * np.ones(score.shape)
    band = (k > 1.0 / PERIOD_BAND[1]) & (k < 1.0 / PERIOD_BAND[0])
    peaks = (score == ndimage.maximum_filter(score, 3, mode="wrap")) & band
    idx = np.argwhere(peaks)
    idx = idx[np.argsort(-score[peaks])][:count]
    return np.stack([ky[idx[:, 0], 0], kx[0, idx[:, 1]]], axis=1)


def coherent_candidates(cspec, cshape, noise, count=None):
    """Frequencies (k, 2; cycles/px) of the Fourier bins whose coefficients turn most steadily over the frames:
    the largest periodogram along time (phase rates j/(2n), per-frame noise whitened) in the band of periods.

    Why: a sharp reflection (a crystal of coherent extent) lies within a bin, and the 3x3 smoothing of
    :func:`peak_candidates` dilutes it nine-fold under the noise maxima of the incoherent power (stress stack
    1107, 160², 0.02 counts/px: both reflections outside the 40 power peaks, yet first and second of 6459 bins
    here). Coherent over the frames, the test gains the frame count where the mean power gains its square root.
    """
    count = COHERENT_PEAKS if count is None else count
    if count <= 0:
        return np.zeros((0, 2))
    n = len(cspec)
    per = (np.abs(sfft.fft(cspec / np.sqrt(noise)[:, None, None], n=2 * n, axis=0, workers=-1)) ** 2).max(0)
    return _band_maxima(per, cshape, count)


def rate_evidence(coef, noise, g, rates, walk=WALK, m=PHASE_GRID):
    """(K, R) log-likelihood ratio (reflection vs none) of each reflection's coefficients ``coef`` (T, K) for each
    phase rate ``rates`` (K, R; cycles per frame), by the forward algorithm on the phase circle."""
    n = len(coef)
    amp = np.sqrt(np.clip((np.abs(coef) ** 2).mean(0) - noise.mean(), 1e-12, None))
    c = np.arange(m) / m
    ll = 2.0 * np.real(coef[:, :, None] * np.exp(2j * np.pi * c)) * amp[None, :, None] / noise[:, None, None]
    ll -= (amp**2)[None, :, None] / noise[:, None, None]  # (T, K, m)
    h = np.fft.fftfreq(m, 1.0 / m)
    sd = np.maximum(np.hypot(*g.T) * walk, 1.0 / m)  # phase diffusion per frame, cycles
    step = np.exp(-2.0 * (np.pi * sd[:, None, None] * h) ** 2 - 2j * np.pi * rates[:, :, None] * h)  # (K, R, m)
    top = ll.max(axis=2)
    like = np.exp(ll - top[..., None])
    alpha = np.repeat(like[0][:, None, :] / m, rates.shape[1], axis=1)
    logz = np.log(alpha.sum(-1)) + top[0][:, None]
    alpha /= alpha.sum(-1, keepdims=True)
    for t in range(1, n):
        alpha = np.clip(np.fft.ifft(np.fft.fft(alpha, axis=-1) * step, axis=-1).real, 0.0, None) * like[t][:, None]
        z = alpha.sum(-1)
        logz += np.log(z) + top[t][:, None]
        alpha /= z[..., None]
    return logz


def _subgrid(centres, half, cshape):
    """Every centre (k, 2; cycles/px) on a 5x5 grid of +-``half`` bin, (25k, 2)."""
    d = np.linspace(-half, half, 5)
    offs = np.stack(np.meshgrid(d / cshape[0], d / cshape[1], indexing="ij"), -1).reshape(-1, 2)
    return (np.reshape(centres, (-1, 1, 2)) + offs[None]).reshape(-1, 2)


def detect_reflections(frames, cspec, cshape, noise, at_least=0):
    """Coherently detected reflections: (g (J, 2) cycles/px, score (J,) nats, best rate (J,) cycles/frame),
    strongest first, duplicates (within 1.5 bins, or of -g) removed: those scoring DETECT_NATS, and the strongest
    candidates below it until there are ``at_least``."""
    n = len(frames)
    # a grain's smoothed power peak lies up to a bin off its reflection; a coherent bin holds its reflection
    # within half a bin, and the score falls by a quarter a quarter-bin off (stack 1107: 16.8 -> 12.8 nats)
    g = np.vstack([_subgrid(peak_candidates(cspec, cshape, noise), 1.0, cshape),
                   _subgrid(coherent_candidates(cspec, cshape, noise), 0.5, cshape)])
    if len(g) == 0:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0)
    rates = np.broadcast_to((np.arange(n) / n + 0.5) % 1.0 - 0.5, (len(g), n))
    ev = rate_evidence(dft_at(frames, g), noise, g, rates)
    score, rate = ev.max(1), rates[np.arange(len(g)), ev.argmax(1)]
    out = []
    for i in np.argsort(-score):
        if score[i] < DETECT_NATS and len(out) >= at_least:
            break
        near = [np.minimum(np.hypot(*(g[i] - g[j])), np.hypot(*(g[i] + g[j]))) for j, _, _ in out]
        if not near or min(near) * min(cshape) > 1.5:
            out.append((i, score[i], rate[i]))
    idx = np.array([o[0] for o in out], int)
    return g[idx], np.array([o[1] for o in out]), np.array([o[2] for o in out])


def _rotated(g, degrees):
    """Frequencies ``g`` (..., 2; (y, x) cycles/px) rotated by ``degrees``."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.stack([c * g[..., 0] + s * g[..., 1], -s * g[..., 0] + c * g[..., 1]], -1)


def rotation_pair(frames, noise, cshape, g, score):
    """The best pair (g (2, 2), score (2,)) of a candidate ``g`` (K, 2; cycles/px; coherent ``score`` (K,)) and its
    partner at one of PARTNER_ANGLES (on a 5x5 grid of +-0.5 bin about the rotated frequency: the candidate is good
    to a fraction of a bin), by their summed score, where the partner scores PARTNER_NATS and the pair PAIR_NATS;
    None where none does."""
    n = len(frames)
    g, score = np.asarray(g, float).reshape(-1, 2), np.asarray(score, float)
    if not len(g) or not np.isfinite(PAIR_NATS):
        return None
    rotated = np.stack([_rotated(g, a) for a in PARTNER_ANGLES], 1).reshape(-1, 2)  # (K * angles, 2)
    sub = _subgrid(rotated, 0.5, cshape)  # (K * angles * 25, 2)
    rates = np.broadcast_to((np.arange(n) / n + 0.5) % 1.0 - 0.5, (len(sub), n))
    ev = rate_evidence(dft_at(frames, sub), noise, sub, rates).max(1).reshape(len(g), -1)
    best = ev.argmax(1)
    partner, partner_score = sub.reshape(len(g), -1, 2)[np.arange(len(g)), best], ev[np.arange(len(g)), best]
    total = np.where(partner_score >= PARTNER_NATS, score + partner_score, -np.inf)
    k = int(np.argmax(total))
    if not total[k] >= PAIR_NATS:
        return None
    return np.stack([g[k], partner[k]]), np.array([score[k], partner_score[k]])


def _refined(frames, noise, g, cshape, n):
    """Each reflection's frequency refined on a 5x5 grid of +-0.25 bin (the coherent score, rates 1/(2n))."""
    d = np.linspace(-0.25, 0.25, 5)
    offs = np.stack(np.meshgrid(d / cshape[0], d / cshape[1], indexing="ij"), -1).reshape(-1, 2)
    grid = (g[:, None, :] + offs[None]).reshape(-1, 2)
    rates = np.broadcast_to((np.arange(2 * n) / (2 * n) + 0.5) % 1.0 - 0.5, (len(grid), 2 * n))
    ev = rate_evidence(dft_at(frames, grid), noise, grid, rates).max(1).reshape(len(g), len(offs))
    return grid.reshape(len(g), len(offs), 2)[np.arange(len(g)), ev.argmax(1)]


def reflection_rates(coef, noise, g):
    """Each reflection's phase rate (cycles per frame) of largest coherent evidence: on a grid of 1/(2n), then
    within +-1/(4n) of its best in steps of 1/(32n) (1/32 of a cycle over the stack)."""
    n = len(coef)
    grid = (np.arange(2 * n) / (2 * n) + 0.5) % 1.0 - 0.5
    ev = rate_evidence(coef, noise, g, np.broadcast_to(grid, (len(g), 2 * n)))
    best = grid[ev.argmax(1)][:, None] + np.linspace(-1.0, 1.0, 17) / (4 * n)
    return best[np.arange(len(g)), rate_evidence(coef, noise, g, best).argmax(1)]


def on_lattice(g, cshape) -> np.ndarray:
    """Whether each reflection ``g`` (J, 2; cycles per coarse px) lies within OFF_LATTICE_BINS of an integer combination
    of ``g[0]`` and the first row not parallel to it (sine > 0.5); both of those, and every row where no such basis
    exists, count as on it."""
    g = np.asarray(g, float)
    ok = np.ones(len(g), bool)
    sin = np.abs(g[0, 0] * g[:, 1] - g[0, 1] * g[:, 0]) / (np.hypot(*g[0]) * np.hypot(*g.T) + 1e-30)
    partner = np.nonzero(sin > 0.5)[0]
    if not len(partner) or not np.isfinite(OFF_LATTICE_BINS):
        return ok
    basis = g[[0, partner[0]]]
    index = np.round(np.linalg.solve(basis.T, g.T).T)
    off_bins = np.hypot(*((g - index @ basis) * np.asarray(cshape, float)).T)
    ok[off_bins > OFF_LATTICE_BINS] = False
    ok[[0, partner[0]]] = True
    return ok


def asked_ramp(g, rates, velocity, n, px=1.0):
    """The ramp (cycles, px) over ``n`` frames that each reflection ``g`` (J, 2; cycles per coarse px) asks of a
    trajectory of drift ``velocity`` (coarse px per frame) with its phase rate ``rates`` (J,; the alias nearest to
    ``g·velocity``); ``px``: full-frame px per coarse px."""
    g = np.asarray(g, float)
    cycles = np.abs((np.asarray(rates, float) - g @ np.asarray(velocity, float) + 0.5) % 1.0 - 0.5) * (n - 1)
    return cycles, cycles * px / np.hypot(*g.T)


def trusted_ramp(g, rates, score, velocity, n, px=1.0) -> np.ndarray:
    """Whether each reflection may act: it asks no large ramp (:func:`asked_ramp`; LARGE_RAMP_CYCLES, LARGE_RAMP_PX)
    or its ``score`` (nats) clears LARGE_RAMP_NATS."""
    cycles, ramp_px = asked_ramp(g, rates, velocity, n, px)
    large = (cycles > LARGE_RAMP_CYCLES) | (ramp_px > LARGE_RAMP_PX)
    return ~large | (np.asarray(score, float) >= LARGE_RAMP_NATS)


def trusted_start(g, rates, score, velocity, n, px=1.0) -> np.ndarray:
    """Whether each reflection may take part in correcting the first trajectory (of drift ``velocity``): as
    :func:`trusted_ramp`, and a weak one asking a large ramp also where a strong one (``score`` >= LARGE_RAMP_NATS)
    itself asks the start for more than LINE_CYCLES (the pairs then missed the velocity: a large error is plausible),
    and beside a strong one in any case where it asks at most PAIR_MAX_CYCLES.

    Why: a false reflection asks for a noise ramp of up to (n - 1) / 2 cycles, and the joint margin (MIN_MARGIN) does
    not test it, since the ramp it asks is fitted to its own noise: alone (drift.py generator seed 185, two 17-18-nat
    reflections: 9.5 cycles, 9.0 px RMS) or beside a strong reflection that confirms the start (stress 256² 5095: a
    15.4-nat one asked 9.6 cycles of a 15 px period beside a 21.7-nat lattice reflection asking 0.1; 44 px RMS). A
    true weak partner asks beside a strong reflection that asks too (stress 256² 5112: 1.45 cycles at 14.7 nats beside
    0.89 at 23.9), and a true large correction alone is strong (stress 1109: 7.35 cycles at 26.7 nats). A noise
    reflection's ask is uniform up to (n - 1) / 2 cycles, a true weak partner's error 1-2 cycles (PAIR_MAX_CYCLES):
    beside a strong one that confirms the start (asks nothing), a weak one asking that little counts, the joint margin
    tests them (stress 160² 0.01 5292, oblique: 15.7 nats asking 1.49 cycles beside 25.3 asking 0.06; 5.2 px, 66 %
    jumps without it)."""
    cycles, _ = asked_ramp(g, rates, velocity, n, px)
    strong = np.asarray(score, float) >= LARGE_RAMP_NATS
    strong_asks = bool((strong & (cycles > LINE_CYCLES)).any())
    trusted = trusted_ramp(g, rates, score, velocity, n, px)
    return trusted | strong_asks | (strong.any() & (cycles <= PAIR_MAX_CYCLES))


def lattice_start(s0, cspec, cshape, noise, px=1.0):
    """The first trajectory ``s0`` (coarse px) with its drift velocity corrected by the coherently detected
    reflections, where their joint evidence at the corrected velocity beats that at the first trajectory's
    by MIN_MARGIN nats; a weak reflection asking a large ramp takes part only beside a strong one that asks a
    correction too (:func:`trusted_start`). Where fewer than two non-parallel reflections are detected, a candidate
    and its partner at a square or hexagonal rotation (:func:`rotation_pair`) take their place, each asking at most
    PAIR_MAX_CYCLES or trusted as detected ones are. A reflection asking a large ramp of the returned start holds the
    smoother's velocity only above LARGE_RAMP_NATS (:func:`trusted_ramp`; ``px``: full-frame px per coarse px).
    Returns (start, diagnostics dict)."""
    n = len(s0)
    t = np.arange(n, dtype=float)
    v0 = np.polyfit(t, s0, 1)[0]
    frames = coarse_frames(cspec, cshape)
    g_all, score_all, _ = detect_reflections(frames, cspec, cshape, noise, at_least=PARTNER_CANDIDATES)
    detected = score_all >= DETECT_NATS
    g, score = g_all[detected], score_all[detected]
    info = dict(g=g, score=score)
    start, v_start = s0, v0
    # the strongest reflection and up to two more not parallel to it (a hexagonal net shows three)
    sin = np.abs(g[0, 0] * g[:, 1] - g[0, 1] * g[:, 0]) / (np.hypot(*g[0]) * np.hypot(*g.T) + 1e-30) if len(g) else []
    use = [0] + [j for j in range(1, len(g)) if sin[j] > 0.5] if len(g) else []
    g_use, score_use, pair = g[use[:3]], score[use[:3]], None
    if len(use) < 2:  # one reflection fixes one component only: its partner where a square or hexagonal net has it
        pair = rotation_pair(frames, noise, cshape, g_all[:PARTNER_CANDIDATES], score_all[:PARTNER_CANDIDATES])
        if pair is not None:
            g_use, score_use = pair
            info.update(pair=pair)
    if len(g_use) >= 2:  # else the other component is left to the pairs
        gu = _refined(frames, noise, g_use, cshape, n)
        grid = (np.arange(2 * n) / (2 * n) + 0.5) % 1.0 - 0.5
        coef = dft_at(frames, gu)
        ev = rate_evidence(coef, noise, gu, np.broadcast_to(grid, (len(gu), 2 * n)))
        best = grid[ev.argmax(1)][:, None] + np.linspace(-1.0, 1.0, 9) / (4 * n)
        ev_fine = rate_evidence(coef, noise, gu, best)
        f_best = best[np.arange(len(gu)), ev_fine.argmax(1)]
        keep = np.nonzero(on_lattice(gu, cshape))[0]
        if pair is None:
            keep = keep[trusted_start(gu[keep], f_best[keep], score_use[keep], v0, n, px)] if len(keep) else keep
        else:  # a rotated pair (above the noise: PAIR_NATS): each within PAIR_MAX_CYCLES, or trusted as detected ones
            small = asked_ramp(gu, f_best, v0, n, px)[0] <= PAIR_MAX_CYCLES
            keep = keep[(small | trusted_start(gu, f_best, score_use, v0, n, px))[keep]]
        if len(keep) >= 2:
            gu, coef, f_best = gu[keep], coef[:, keep], f_best[keep]
            f0 = gu @ v0
            d = (f_best - f0 + 0.5) % 1.0 - 0.5  # the alias of each rate nearest to the first trajectory's
            dv = np.linalg.lstsq(gu, d, rcond=None)[0]
            check = rate_evidence(coef, noise, gu, np.stack([f0, gu @ (v0 + dv)], axis=1))
            margin = float((check[:, 1] - check[:, 0]).sum())
            info.update(used=gu, cycles=d * (n - 1), margin=margin, change=(gu @ dv) * (n - 1))
            # a rate tells g·v modulo a cycle per frame: the alias nearest to the first trajectory is the right one
            # only while that trajectory is off by less than half a cycle per frame. A correction that carries the
            # specimen beyond half the field (keeps_overlap) is an alias of a far-off start, not a measurement
            # (stress 160² 0.01 5208: a start 10.2 cycles, 92 px, off was moved to 153 px; 47.8 px RMS)
            if margin >= MIN_MARGIN and np.abs(gu @ dv).max() * (n - 1) > LINE_CYCLES and \
                    keeps_overlap(v0 + dv, n, cshape):
                info["dv"] = dv
                start, v_start = s0 + t[:, None] * dv, v0 + dv
    if len(g):  # the strongest three, refined, with their rates: they hold the smoother's velocity (held_velocity)
        held_g = _refined(frames, noise, g[:3], cshape, n)
        held_rate = reflection_rates(dft_at(frames, held_g), noise, held_g)
        keep = np.nonzero(trusted_ramp(held_g, held_rate, score[:3], v_start, n, px))[0]
        keep = keep[on_lattice(held_g[keep], cshape)] if len(keep) else keep
        held_g, held_rate = held_g[keep], held_rate[keep]
        if len(held_g):
            info.update(held_g=held_g, held_coef=dft_at(frames, held_g), noise=noise, held_rate=held_rate)
    return start, info



def lattice_coherence(g, coef, noise, shifts) -> float:
    """Nats by which reflections ``g`` (J, 2; cycles per px of ``shifts``) are explained along the trajectory
    ``shifts`` (T, 2): per reflection, the log-likelihood ratio of a fixed reflection in the frames moved back along
    it, its complex amplitude profiled, ``|Σ_t z_t/σ_t²|² / Σ_t 1/σ_t²`` with ``z_t = F_t(g) e^{2πi g·s_t}`` (``coef``
    (T, J) the frames' coefficients, ``noise`` (T,) their noise power), summed (noise alone: ~1 nat each).

    Why: a trajectory that ramps or wanders by part of a cell turns each reflection's phase by that part of a cycle
    and loses the coherent sum; unlike the smoother's evidence it builds no reference from the trajectory it judges.
    """
    z = coef * np.exp(2j * np.pi * (np.asarray(shifts, float) @ np.asarray(g, float).T))
    w = 1.0 / np.asarray(noise, float)
    return float((np.abs((z * w[:, None]).sum(0)) ** 2 / w.sum()).sum())


def held_velocity(velocity, g, rates):
    """The drift velocity (px per frame) with its components along the reflections ``g`` (J, 2; cycles per px) set to
    their phase rates ``rates`` (J,; each its alias nearest to ``g·velocity``), and the directions (rows, unit
    vectors) they leave free: the perpendicular of the strongest (``g[0]``) where no other is non-parallel to it
    (sine > 0.5), none where one is.

    Why: a reflection turns at ``g·v`` cycles per frame, and its coherent rate (:func:`reflection_rates`) is measured
    without any reference built from a trajectory, so it cannot follow a trajectory's own ramp.
    """
    g, rates, velocity = np.asarray(g, float), np.asarray(rates, float), np.asarray(velocity, float)
    norm = np.hypot(*g.T)
    sin = np.abs(g[0, 0] * g[:, 1] - g[0, 1] * g[:, 0]) / (norm[0] * norm + 1e-30)
    target = rates + np.round(g @ velocity - rates)
    if not (sin > 0.5).any():
        held = velocity + g[0] * (target[0] - g[0] @ velocity) / norm[0] ** 2
        return held, np.array([[-g[0, 1], g[0, 0]]]) / norm[0]
    use = np.nonzero((sin > 0.5) | (np.arange(len(g)) == 0))[0]
    return velocity + np.linalg.lstsq(g[use], target[use] - g[use] @ velocity, rcond=None)[0], np.zeros((0, 2))
