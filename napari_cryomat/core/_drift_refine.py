"""Refinement stage of :func:`~napari_cryomat.core.drift.estimate_drift`: each frame against the sum of the others.

Also the pairwise helpers that pick the group size (:func:`_auto_group`) and the outlier-frame test.
Private: functions take the estimator's internal spectra.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft as sfft

from napari_cryomat.core._drift_fourier import (
    _bfilter,
    _cc_map,
    _freq_grid,
    _local_peak,
    _peak_search,
    _phase_ramp_factors,
    _solve_trajectory,
    tukey,
)
from napari_cryomat.core._parallel import core_threads, thread_map
from napari_cryomat.core._progress import report


def _subpixel_pairs(blocks, pairs, d_c, s_c, bf, cshape, upsample):
    """Pair shifts refined to 1/upsample px near their unwrapped values, and the trajectory they imply."""
    d = np.array([_local_peak(np.conj(blocks[i]) * blocks[j] * bf, cshape, d0, radius=1.0, upsample=upsample)[0]
                  for (i, j), d0 in zip(pairs, d_c)]).reshape(-1, 2)
    s, _ = _solve_trajectory(len(blocks), pairs, d, np.ones(len(pairs)), floor=0.5)
    return s, d


# A frame is an outlier when its agreement with the others lies this many robust standard
# deviations below the median agreement and below OUTLIER_FRACTION of it.
OUTLIER_SIGMAS = 6.0
OUTLIER_FRACTION = 0.6


def _outlier_frames(spectra, shape, shifts, bfactor_px2):
    """Frames whose normalised correlation with the sum of the other aligned frames is far below the rest.

    The agreement of frame i is ``Re Σ_k conj(R_i) A_i w / sqrt(Σ|R_i|² w Σ|A_i|² w)`` (R_i the
    sum of the others, w the B-factor low-pass) at the estimated shifts. Noise lowers every
    frame's value alike; a frame of other content (a blank, a torn scan, a foreign image) falls
    far below: median - OUTLIER_SIGMAS × 1.4826 MAD and under OUTLIER_FRACTION of the median.
    """
    n = len(spectra)
    if n < 5:
        return np.zeros(n, bool)
    w = _bfilter(*shape, bfactor_px2)
    aligned = _aligned_spectra(spectra, shape, shifts, 0.1)
    total = aligned.sum(0)
    agree = np.empty(n)
    for i, a in enumerate(aligned):
        ref = total - a
        num = float(np.sum((np.conj(ref) * a).real * w))
        den = np.sqrt(float(np.sum(np.abs(ref) ** 2 * w)) * float(np.sum(np.abs(a) ** 2 * w)))
        agree[i] = num / den if den > 0 else 0.0
    med = float(np.median(agree))
    mad = 1.4826 * float(np.median(np.abs(agree - med)))
    return (agree < med - OUTLIER_SIGMAS * max(mad, 1e-3 * abs(med))) & (agree < OUTLIER_FRACTION * med)

def _blocks(cspec, n, group):
    if group == 1:  # no copy of the stack
        return cspec, np.arange(n, dtype=float)
    nb = int(np.ceil(n / group))
    blocks = np.stack([cspec[b * group : (b + 1) * group].sum(0) for b in range(nb)])
    centers = np.array([(b * group + min(n, (b + 1) * group) - 1) / 2.0 for b in range(nb)])
    return blocks, centers


def _coarse_pairs(n, group, pair_band, *, cspec, cshape, cbin, bf, norm, radius, progress=None, upsample=None):
    """Pairwise shifts between blocks of ``group`` frames (full-size px) and their significance.

    With ``upsample`` the peak is refined by a matrix DFT (used when no refinement stage follows).
    """
    blocks, centers = _blocks(cspec, n, group)
    nb = len(blocks)
    pairs = np.array([(i, j) for i in range(nb) for j in range(i + 1, min(nb, i + 1 + pair_band))], int)
    pairs = pairs.reshape(-1, 2)

    def measure(pair):
        i, j = pair
        x = np.conj(blocks[i]) * blocks[j] * bf
        d, sg = _peak_search(_cc_map(x, cshape, workers=1), norm, radius)
        if upsample:
            d, _ = _local_peak(x, cshape, np.round(d), radius=1.0, upsample=upsample)
        return d * cbin, sg

    done = None if progress is None else (lambda k: report(progress, 0.35 + 0.3 * (k + 1) / len(pairs)))
    got = thread_map(measure, pairs, done)
    d_meas = np.array([d for d, _ in got]).reshape(-1, 2)
    sig = np.array([sg for _, sg in got])
    return pairs, d_meas, sig, centers


# search radius (px) of the capture pass of the refinement when frames are grouped (lowest doses)
WIDE_RADIUS_PX = 6.0


def COARSE_GROUP_BFACTOR(bfactor, group):
    """B-factor (Å²) of the pairwise stage when frames are grouped: 3x stronger (coarser features)."""
    return 3.0 * bfactor


# median disagreement (px) of the pairwise shifts with their robust solution below which a group
# size is accepted: above it the pairwise correlations are dominated by noise
AUTO_GROUP_RESIDUAL = 2.0


def _auto_group(n, *, cspec, cshape, cbin, bf, norm, radius, aliases=None):
    """Smallest group size whose pairwise shifts agree with one trajectory (within 2 px).

    ``aliases`` ((k, 2) coarse px, :func:`lattice_aliases`): on a crystal a pair's correlation peak may sit a
    lattice vector off without any noise (the peaks at d and d + a are nearly equal); such a pair agrees
    with the trajectory modulo the lattice, which the unwrapping stage resolves. Single frames whose pairs
    agree modulo the lattice (within a sixth of the shortest alias; random residuals lie about a third of a
    cell from the nearest lattice point) are kept single: grouping answers noise, not the lattice (a
    hexagonal crystal filling the field at 10 counts/px/frame was grouped by 3 and jumped a cell on 57 % of
    its frames). Groups of 2 or more keep the plain test: there the modulo test also passed on noise (a 4.6 px
    square lattice at 0.05 counts, grouped 3 instead of 5, jumped on 44 % of its frames).
    """
    tolerance = AUTO_GROUP_RESIDUAL
    if aliases is not None and len(aliases):
        aliases = np.vstack([np.zeros((1, 2)), aliases])
        tolerance = min(AUTO_GROUP_RESIDUAL, float(np.hypot(*aliases[1:].T).min()) / 6.0)
    best = 1
    for g in (1, 2, 3, 4, 5, 6, 8, 10, 12):
        if g > max(1, n // 3):
            break
        best = g
        nb = int(np.ceil(n / g))
        pairs, d, sig, _ = _coarse_pairs(n, g, min(nb, 4), cspec=cspec, cshape=cshape, cbin=cbin, bf=bf,
                                         norm=norm, radius=radius)
        if len(pairs) < 3:
            break
        s, _ = _solve_trajectory(nb, pairs, d, np.clip(sig, 1.0, None) ** 2)
        e = d - (s[pairs[:, 1]] - s[pairs[:, 0]])
        r = np.hypot(*e.T)
        if np.median(r) <= AUTO_GROUP_RESIDUAL:
            break
        if g == 1 and aliases is not None and len(aliases) > 1 and \
                _agree_modulo_lattice(nb, pairs, d, sig, aliases, tolerance):
            break
    return best


def _agree_modulo_lattice(nb, pairs, d, sig, aliases, tolerance, passes=4):
    """Do the pair shifts ``d`` agree with one trajectory once each is moved by its nearest alias? Each pass
    takes every pair to the alias nearest its disagreement and solves again (the first solution is pulled by
    the pairs that sit a cell off)."""
    moved = d
    for _ in range(passes):
        s, _ = _solve_trajectory(nb, pairs, moved, np.clip(sig, 1.0, None) ** 2)
        e = d - (s[pairs[:, 1]] - s[pairs[:, 0]])
        nearest = np.argmin(np.hypot(*(e[:, None, :] - aliases[None, :, :]).transpose(2, 0, 1)), axis=1)
        moved = d - aliases[nearest]
    r = np.hypot(*(moved - (s[pairs[:, 1]] - s[pairs[:, 0]])).T)
    return bool(np.median(r) <= tolerance)


def _sliding_groups(n: int, group: int, frames=None):
    """(frame i, group start, group end) for each frame (of ``frames``, default all)."""
    h = group // 2
    for i in range(n) if frames is None else frames:
        lo = max(0, min(i - h, n - group))
        yield i, lo, lo + group


def _power_sum(aligned):
    """``Σ_j |A_j|²`` (float64), which a phase ramp of any frame leaves unchanged."""
    # float32 sums of squares (relative error ~1e-6, far below the 1e-3 excess that signals a frequency)
    p_each = np.zeros(aligned.shape[1:], np.float32)
    for a in aligned:
        re, im = a.real, a.imag
        p_each += re * re
        p_each += im * im
    return p_each.astype(np.float64)


def _spectral_snr(total, aligned, signal_size=5, p_each=None):
    """Per-frequency signal and noise power of one frame, from the aligned spectra.

    For independent noise, ``E|Σ A_j|² - Σ E|A_j|² = N(N-1)|S|²``; the noise power is the rest.
    Both are smoothed over 5×5 Fourier pixels (keeping sharp Bragg peaks, unlike a radial average);
    the signal power over ``signal_size``² pixels. ``p_each``: :func:`_power_sum` of ``aligned`` if known.
    """
    from scipy import ndimage

    n = aligned.shape[0]
    if p_each is None:
        p_each = _power_sum(aligned)
    p_tot = total.real.astype(np.float64) ** 2 + total.imag.astype(np.float64) ** 2
    p_sig = (p_tot - p_each) / (n * (n - 1))
    p_noise = p_each / n - p_sig
    mode = ("wrap", "nearest")
    p_sig = np.clip(ndimage.uniform_filter(p_sig, signal_size, mode=mode), 0, None)
    p_noise = np.clip(ndimage.uniform_filter(p_noise, 5, mode=mode), 1e-30, None)
    return p_sig, p_noise


# A frequency whose signal power the aligned stack measures this many (nominal) standard errors
# above zero is weighted by its Wiener filter alone, without the B-factor prior. Nominal: the
# window correlates neighbouring Fourier coefficients, so the 25 averaged by the 5×5 smoothing are
# fewer independent ones and the true standard error is larger (5 nominal let noise through: the
# lowest-dose smoother and small regions of interest lost precision).
SIGNIFICANT_SIGMAS = 10.0


def _measured_prior(bf, p_sig, p_noise, n):
    """The B-factor low-pass ``bf`` where the stack does not measure the signal, 1 where it does.

    The B-factor is a prior on where the signal lies, needed where the spectral SNR estimate of
    :func:`_spectral_snr` is noise. Where the aligned stack itself measures the signal power
    significantly (``SIGNIFICANT_SIGMAS`` nominal standard errors: under noise alone the 5×5-smoothed
    estimate has a standard error of about ``p_noise / (5 (n - 1))`` for independent coefficients), the prior would only
    down-weight measured information: at high dose the Bragg reflections of a fine lattice lie
    where a B of 150 Å² has cut them to a tenth, and the shift precision then falls well short of
    the bound (RMS/BCRB 1.8-2.0 on 4-6 px lattices at 10 counts/px/frame, 1.2-1.4 without the prior).
    """
    significant = p_sig > SIGNIFICANT_SIGMAS * p_noise / (5.0 * max(n - 1, 1))
    return np.where(significant, np.float32(1.0), bf).astype(np.float32)


def _aligned_spectra(spectra, shape, shifts, window_taper, out=None):
    """Spectra of the frames shifted by ``-shifts`` (aligned), then windowed in the common frame.

    The window is applied after the shift: a window that moved with each frame would pull every
    estimate towards zero shift. Its taper covers the spread of the shifts, so the wrapped-around
    edges of the Fourier-shifted frames lie in the tapered border. ``out``: a buffer to fill.
    """
    ky, kx = _freq_grid(*shape)
    span_px = float(np.abs(shifts - shifts.mean(0)).max()) + 2.0
    taper = min(0.3, max(window_taper, span_px / min(shape)))
    win = tukey(*shape, taper)
    aligned = np.empty_like(spectra) if out is None else out

    def frames(chunk):
        x = np.empty_like(spectra[0])  # one buffer: a fresh full-size array per frame costs its page faults
        for j in chunk:
            ey, ex = _phase_ramp_factors(shifts[j], ky, kx)
            np.multiply(spectra[j], ey, out=x)
            x *= ex  # the separable ramp applied factor by factor: no full-size ramp array
            a = sfft.irfft2(x, s=shape, workers=1, overwrite_x=True)  # x is scratch: refilled next frame
            a *= win
            aligned[j] = sfft.rfft2(a, workers=1)

    n, k = len(spectra), core_threads()
    thread_map(frames, [range(c, n, k) for c in range(k)])
    return aligned


#: The refinement re-windows its frames (an inverse and a forward FFT each) only once some frame has
#: moved this far (px, about the mean) from where its window was placed; smaller moves are phase ramps
#: on the windowed spectra. The window then moves with the frame by that much, which pulls the estimate
#: towards the placement by a small fraction of the move (the window's overlap curvature over the
#: correlation's): at 0.25 px the shifts change by at most 0.003 px on the stress suite and drift.py's
#: stacks (0.013 px at 1 px), and 40 x 1024² needs two full passes instead of three.
REWINDOW_PX = 0.25


def _move_aligned(aligned, shape, delta):
    """In place: each aligned spectrum moved by ``-delta[j]`` px more (a phase ramp; its window moves too)."""
    ky, kx = _freq_grid(*shape)
    for a, d in zip(aligned, delta):
        if d[0] or d[1]:
            ey, ex = _phase_ramp_factors(d, ky, kx)
            a *= ey
            a *= ex


def _within_reach(shifts, anchor, reach):
    """``shifts`` moved back to within ``reach`` (px) of ``anchor`` frame by frame, up to a common offset.

    Keeps every stage after the first trajectory inside the half-period cell it started in, so no
    accumulation of small moves over iterations can add up to a unit-cell jump.
    """
    if anchor is None or not np.isfinite(reach):
        return shifts
    dev = shifts - anchor
    dev -= np.median(dev, axis=0)
    size = np.hypot(*dev.T)
    dev *= np.minimum(1.0, reach / np.maximum(size, 1e-12))[:, None]
    return anchor + dev


def _group_residuals(aligned, total, weight, shape, frames, *, group, capture, radius, upsample):
    """Residual shift (px) of the sliding group of each frame in ``frames`` (a range) against the sum of the others.

    ``capture`` (lowest doses, first pass): dict(bf, ones, radius) of the full-map search with a
    coarser filter before the local sub-pixel search.
    """
    n = len(aligned)
    ref_buf, x_buf = np.empty_like(total), np.empty_like(total)
    out = np.zeros((len(frames), 2))
    g, prev = None, None
    for k, (i, lo, hi) in enumerate(_sliding_groups(n, group, frames)):
        # running sum of the group (one add/subtract per step, no copy of the stack)
        if g is None:
            g = aligned[lo:hi].sum(0)
        elif (lo, hi) != prev:
            g += aligned[hi - 1] - aligned[lo - 1]
        prev = (lo, hi)
        ref = np.subtract(total, g, out=ref_buf)
        # g is aligned; its residual shift d: g(r) ≈ ref(r - d)
        x = np.conj(ref, out=x_buf)
        x *= g
        x *= weight
        if capture is not None:
            # capture pass (lowest doses): full correlation map against the sum of the others,
            # coarser filter, searched within its radius; then the local sub-pixel search
            cc = _cc_map(np.conj(ref) * g * capture["bf"], shape, workers=1)
            d0, _ = _peak_search(cc, capture["ones"], (capture["radius"], capture["radius"]))
            out[k], _ = _local_peak(x, shape, d0, radius=0.75, upsample=upsample)
        else:
            out[k], _ = _local_peak(x, shape, (0.0, 0.0), radius=radius, upsample=upsample)
    return out


def _refine(spectra, shape, shifts, *, bfactor_px2, group, iterations, radius, upsample, progress, span,
            wiener=True, window_taper=0.1, wide_radius=None, wide_bfactor_px2=None, reach=np.inf,
            wide_release=False):
    """Iteratively align each (grouped) frame to the sum of all the others.

    The cross-spectrum is weighted by the B-factor low-pass and, with ``wiener``, by the Wiener
    filter of the reference estimated from the stack itself (:func:`_spectral_snr`), which keeps
    the lattice reflections and suppresses the frequencies that only carry noise. With
    ``wide_release`` the capture pass releases its coarse filter where the stack measures the
    signal (:func:`_measured_prior`), as the other passes do: needed when the coarse filter would
    remove the lattice itself (see :func:`~napari_cryomat.core._drift_stages._capture_keeps_lattice`).
    """
    n = spectra.shape[0]
    bf = _bfilter(*shape, bfactor_px2)
    bf_wide = ones = None
    if wide_radius:
        bf_wide = _bfilter(*shape, wide_bfactor_px2 if wide_bfactor_px2 is not None else bfactor_px2)
        ones = np.ones(shape, np.float32)
    shifts = np.asarray(shifts, float).copy()
    anchor = shifts.copy()
    aligned, placed, at = None, None, None
    for it in range(iterations):
        # shift the unwindowed frames, then window them in the common (aligned) frame: a window
        # that moved with each frame would pull every estimate towards zero shift. Small moves
        # since the window was placed are phase ramps (REWINDOW_PX).
        if placed is None or np.abs(shifts - placed).max() > REWINDOW_PX:
            aligned = _aligned_spectra(spectra, shape, shifts, window_taper, out=aligned)
            placed, p_each = shifts.copy(), None
        else:
            _move_aligned(aligned, shape, shifts - at)
        at = shifts.copy()
        total = aligned.sum(0)
        weight = bf
        if wiener:
            if p_each is None:
                p_each = _power_sum(aligned)
            p_sig, p_noise = _spectral_snr(total, aligned, p_each=p_each)
            m = n - group  # frames in the reference
            wiener_f = (m * p_sig / (m * p_sig + p_noise)).astype(np.float32)
            weight = _measured_prior(bf, p_sig, p_noise, n) * wiener_f
            if it == 0 and wide_radius and wide_release:
                bf_wide = _measured_prior(bf_wide, p_sig, p_noise, n) * wiener_f
        capture = dict(bf=bf_wide, ones=ones, radius=wide_radius) if it == 0 and wide_radius else None
        measure = functools.partial(_group_residuals, aligned, total, weight, shape, group=group, capture=capture,
                                    radius=radius if it == 0 else min(radius, 1.0), upsample=upsample)
        # contiguous chunks of frames on the cores; progress reported here as each chunk is done
        size = -(-n // (2 * core_threads()))  # frames per chunk, rounded up
        chunks = [range(a, min(n, a + size)) for a in range(0, n, size)]
        done = (lambda k: report(progress, span[0] + (span[1] - span[0]) * (it * n + chunks[k].stop) / (iterations * n)))
        residual = np.concatenate(thread_map(measure, chunks, done))
        new = shifts.copy()
        for i, lo, hi in _sliding_groups(n, group):
            # the residual is that of the group's mean position. Frame i's position: the group mean
            # plus the local linear drift from the group centre to frame i (unbiased at the ends)
            t = np.arange(lo, hi, dtype=float)
            mean = shifts[lo:hi].mean(0)
            if hi - lo > 2:
                vel = np.polyfit(t, shifts[lo:hi], 1)[0]
            else:
                vel = np.zeros(2)
            new[i] = mean + residual[i] + (i - t.mean()) * vel
        new = _within_reach(new, anchor, reach)
        new -= new.mean(0)  # gauge: mean position; the frame-0 convention is applied at the end
        delta = np.abs(new - shifts).max()
        shifts = new
        if delta < 0.02:  # converged to well below the precision at any dose
            break
    return shifts - shifts[0]
