"""Shoulder candidates for identification (private; used by :mod:`._eds_identify`).

A line 1.5–3 FWHM beside a peak a hundred times bigger (Si Kα at 1.74 keV beside Y Lα at 1.92 keV, Ba Lα beside
La Lα) makes no local maximum of the clipped spectrum, so its element is never a candidate. Once the elements found
are fitted, such a line stands out in the fit's residual. Peaks of the residual (counts in ±0.6 FWHM above the side
bands 1.5–2.5 FWHM away, over the Poisson noise plus a model error: 3 % of the principal lines, 20 % of the other
lines, whose xraylib weights are good to ~20 %) name new candidates: elements with a principal line (Kα, Lα, Mα)
within a quarter FWHM of one. A residual peak is also where stand-ins come from (Xe L for a Ba L shoulder, Sr Lα for
W Mα, Re Mα for a generous Zr Lη, P Kα for a continuum misfit), so a shoulder candidate is chosen (the one lowering
χ² most first, one at a time, the residual recomputed after each) only when

- it adds >= ``min_snr`` σ to the joint fit and its families agree (:func:`._eds_checks.family_check`);
- its own fitted counts at the residual peak are >= ``min_snr`` × the noise there (with the model error) and
  >= 40 % of the lines there; below 1.5 keV it also stands above the counts on either side (as a detected peak);
- it wins against every rival: each element not chosen with a line (weight >= 0.02) within one FWHM of its line is
  fitted in its place; the candidate must fit better by >= ``min_snr`` σ (the lines the two do not share decide:
  Ba Lβ1/Lγ against Xe's) or still add >= ``min_snr`` σ beside the rival;
- it still adds >= ``min_snr`` σ when the chosen elements' secondary lines within 1.5 FWHM, a low-energy tail of
  the lines (up to 10 %, incomplete charge collection), three broad continuum humps around it and, near 1.84 keV,
  the depth of the detector's Si K edge are free;
- fitted, it leaves no residual peak where it was found (it explains the peak, not a share of it).

Then an element that adds < ``min_snr`` σ beyond the others is dropped, as after forward selection.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core import _eds_physics as phys
from napari_cryomat.core._eds_artefacts import SI_K_EDGE_EV, local_excess
from napari_cryomat.core._eds_checks import LOCAL_TEST_BELOW, MIN_SHARE, family_check, z_of
from napari_cryomat.core._eds_continuum import _si_mu

LINE_SHAPE_ERROR = 0.03  # relative error of a fitted principal line's counts in a window (line shape)
WEIGHT_ERROR = 0.2  # relative error of the other lines of a family: xraylib's L and M ratios are good to ~20 %
PEAK_TOLERANCE = 0.25  # a shoulder candidate's principal line lies this close to a residual peak, FWHM
MAX_TAIL = 0.1  # share of a line's counts a detector may put in a low-energy tail (incomplete charge collection)
TAIL_LENGTH = 3.0  # decay length of that tail, FWHM
FREE_RADIUS = 1.5  # chosen elements' secondary lines this close (FWHM) to a shoulder candidate's line get free weights
BROAD_HUMP = 4.0  # FWHM of the continuum hump fitted in the free-weights test, in line FWHMs
RIVAL_MIN_WEIGHT = 0.02  # a rival's line on the shoulder is at least this strong (of its family's principal line)
EDGE_RADIUS = 3.0  # a line this close (FWHM) to the Si K edge gets the edge's depth free
MAX_ROUNDS = 3  # shoulder candidates chosen one at a time, the residual recomputed after each
_WIN, _SIDE_LO, _SIDE_HI = 0.6, 1.5, 2.5  # window and side bands, FWHM


def _window_sums(values, energy, fwhm, lo, hi):
    """Σ of ``values`` over the channels ``lo``..``hi`` FWHM away (one side, both signs) of each channel."""
    csum = np.concatenate([[0.0], np.cumsum(values)])
    de = energy[1] - energy[0]
    idx = np.arange(energy.size)
    a = np.clip(idx + np.round(lo * fwhm / de).astype(int), 0, energy.size)
    b = np.clip(idx + np.round(hi * fwhm / de).astype(int) + 1, 0, energy.size)
    return csum[np.maximum(b, a)] - csum[a], np.maximum(b - a, 0)


def principal_part(problem, fit, shift):
    """The fitted model's principal lines alone (each family column's amplitude is its principal line's counts)."""
    cols, owners, x, _chi2, lines, _continuum = fit
    out = np.zeros_like(lines)
    for (o, fam), amp in zip(owners, x):
        if fam and amp > 0:
            out += problem._gauss(_principal_energy(problem, o, fam) + shift, amp)
    return out


def _principal_energy(problem, el, fam):
    z = z_of(el)
    name = phys.family_principals(z, problem.beam_kev)[fam]
    return {n: e for n, e, _w, _s in phys.grouped_lines(z, problem.beam_kev)}[name]


def low_energy_tail(problem, lines, length=TAIL_LENGTH):
    """``lines`` spread into an exponential tail below each channel (``length`` FWHM long, unit area)."""
    fw = problem.fwhm_of(np.clip(problem.energy, 100.0, None)) * problem.width_scale
    decay = np.exp(-problem.de / (length * fw))
    out, acc = np.zeros_like(lines), 0.0
    for i in range(lines.size - 1, -1, -1):
        out[i] = acc
        acc = acc * decay[i] + lines[i] * (1.0 - decay[i])
    return out


def model_error(problem, fit, shift):
    """Per-channel error scale of the fitted lines: 3 % of the principal lines, 20 % of the others."""
    principal = principal_part(problem, fit, shift)
    return LINE_SHAPE_ERROR * principal + WEIGHT_ERROR * np.maximum(fit[4] - principal, 0.0)


def residual_peaks(problem, fit, shift, min_snr):
    """Energies (eV) and significance of line-wide peaks in the residual of the fit."""
    lines, continuum = fit[4], fit[5]
    e, m = problem.energy, problem.mask
    fw = problem.fwhm_of(np.clip(e, 100.0, None)) * problem.width_scale
    expected = np.maximum(lines + continuum, 1e-9)
    r = np.where(m, problem.s - expected, 0.0)
    var = np.where(m, np.maximum(problem.s, 1.0), 0.0)
    win, n_win = _window_sums(r, e, fw, -_WIN, _WIN)
    v_win, _ = _window_sums(var, e, fw, -_WIN, _WIN)
    err = np.where(m, model_error(problem, fit, shift), 0.0)
    l_win, _ = _window_sums(err, e, fw, -_WIN, _WIN)
    left, n_l = _window_sums(r, e, fw, -_SIDE_HI, -_SIDE_LO)
    right, n_r = _window_sums(r, e, fw, _SIDE_LO, _SIDE_HI)
    v_l, _ = _window_sums(var, e, fw, -_SIDE_HI, -_SIDE_LO)
    v_r, _ = _window_sums(var, e, fw, _SIDE_LO, _SIDE_HI)
    l_l, _ = _window_sums(err, e, fw, -_SIDE_HI, -_SIDE_LO)
    l_r, _ = _window_sums(err, e, fw, _SIDE_LO, _SIDE_HI)
    n_side = np.maximum(n_l + n_r, 1)
    per = (left + right) / n_side  # the residual's level beside the window (a continuum misfit, not a line)
    excess = win - n_win * per
    noise = np.sqrt(v_win + n_win**2 * (v_l + v_r) / n_side**2 + l_win**2 + (n_win * (l_l + l_r) / n_side) ** 2)
    z = np.where(m & (n_l > 0) & (n_r > 0), excess / np.maximum(noise, 1e-9), 0.0)
    from scipy.signal import find_peaks

    idx, _ = find_peaks(z, height=min_snr, distance=max(1, int(0.5 * fw.min() / problem.de)))
    return e[idx], z[idx]


def shoulder_candidates(problem, peaks, pool, chosen, shift):
    """{element: (its line's energy, the residual peak's)} of not-chosen elements with a principal line (Kα, Lα,
    Mα) within a quarter FWHM of a residual peak (a missing line's peak sits where the line is: TM002's residual
    0.33 FWHM above O Kα is Mn Ll's misfit, not O; a secondary line on a residual peak, Y Lβ1 on a Ta M misfit,
    names no element)."""
    out = {}
    if peaks.size == 0:
        return out
    for el in pool:
        if el in chosen:
            continue
        for n, e, _w in problem.lines(el):
            if n not in ("Ka", "La", "Ma"):
                continue
            c = e + shift
            k = int(np.argmin(np.abs(peaks - c)))
            if abs(peaks[k] - c) <= PEAK_TOLERANCE * problem.fwhm_of(c) and (el not in out or abs(peaks[k] - c) < abs(
                    out[el][1] - out[el][0])):
                out[el] = (c, float(peaks[k]))
    return out


def _own_counts_test(problem, fit, el, c, min_snr, shift):
    """'' when ``el``'s own fitted counts in ±0.6 FWHM of ``c`` are >= min_snr × noise and >= 40 % of the lines
    fitted there, else the reason."""
    cols, owners, x, _chi2, lines, continuum = fit
    own = sum((xi * col for (o, _f), xi, col in zip(owners, x, cols) if o == el), np.zeros_like(lines))
    win = problem.mask & (np.abs(problem.energy - c) <= _WIN * problem.fwhm_of(c))
    mine, all_lines = float(own[win].sum()), float(lines[win].sum())
    rest = float((lines + continuum)[win].sum()) - mine
    others = (o != el for o, _f in owners)
    err = model_error(problem, (cols, owners, np.where(list(others), x, 0.0), 0.0, lines - own, continuum), shift)
    noise = np.sqrt(max(rest, 1.0) + float(err[win].sum()) ** 2)
    if mine >= min_snr * noise and mine >= MIN_SHARE * max(all_lines, 1e-9):
        return ""
    return f"at its shoulder ({c / 1000:.2f} keV) it fits {mine / noise:.1f}σ, {mine / max(all_lines, 1e-9):.0%} of the lines"


def rivals(problem, el, c, pool, chosen, shift):
    """Elements, not chosen, with a line (weight >= RIVAL_MIN_WEIGHT) within one FWHM of ``c``: a weak line of a
    missed element stands in too (Cs Lα on Ce Ll when Ce itself was not chosen)."""
    f = problem.fwhm_of(c)
    return [r for r in pool if r != el and r not in chosen
            and any(w >= RIVAL_MIN_WEIGHT and abs(e + shift - c) <= f for _n, e, w in problem.lines(r))]


def _si_dead_layer_depth(energy):
    """Optical depth of the detector's Si dead layer at ``energy`` (eV), as in the continuum model."""
    de = float(energy[1] - energy[0])
    mu = _si_mu((round(float(energy[0]), 6), round(de, 9), energy.size))
    return mu * phys.SI_DENSITY * phys.SI_DEAD_LAYER_UM * 1e-4


def free_weights_test(problem, fit_set, el, c, chosen, shift, min_snr, lines, continuum, free_lines_of=None,
                      near=None, extra=None, extra_caps=None):
    """'' when ``el`` still adds >= min_snr σ once what the model holds only roughly near ``c`` is free, else the
    reason: the chosen elements' secondary lines within 1.5 FWHM (weights good to ~20 %: a generous Zr Lη at
    1.88 keV is not Re Mα), the lines' low-energy tail, which the Gaussian lines lack (a tail 400 eV below Bi Mα is
    no P Kα), and a local misfit of the continuum (humps BROAD_HUMP times wider than a line, at and on either side
    of it, follow a bend or a step such as an absorption edge). ``free_lines_of``: the elements whose secondary
    lines are freed (default: all of ``chosen``); ``near``: energies (eV) whose neighbours are freed (default ``c``); ``extra``: more
    columns {name: column} freed (amplitudes at most ``extra_caps[name]``, unbounded when not given)."""
    f = problem.fwhm_of(c)
    free = dict(extra or {})
    for o in chosen if free_lines_of is None else free_lines_of:
        principals = set(phys.family_principals(z_of(o), problem.beam_kev).values())
        # every line of the family, also those too weak to be in its column (Pt Lη, 1.0 % of Pt Lα by xraylib's
        # weights, is left out of Pt L and is Hg Lα's place)
        for n, e, _w, _s in phys.grouped_lines(z_of(o), problem.beam_kev):
            if n not in principals and any(abs(e + shift - a) <= FREE_RADIUS * problem.fwhm_of(a)
                                           for a in ([c] if near is None else near)):
                free[f"free {o} {n}"] = problem._gauss(e + shift, 1.0)
    caps = {k: (extra_caps or {}).get(k, np.inf) for k in free}
    for k, at in enumerate((c - 0.5 * BROAD_HUMP * f, c, c + 0.5 * BROAD_HUMP * f)):
        hump = np.exp(-0.5 * ((problem.energy - at) / (BROAD_HUMP * f / 2.3548)) ** 2)
        free[f"free continuum hump {k}"], caps[f"free continuum hump {k}"] = hump / max(hump.sum(), 1e-12), np.inf
    free["free low-energy tail"], caps["free low-energy tail"] = low_energy_tail(problem, np.maximum(lines, 0.0)), MAX_TAIL
    if abs(c - SI_K_EDGE_EV) <= EDGE_RADIUS * f:
        # the detector's Si dead layer, whose thickness is known only roughly: its K edge (a 7 % step at 0.1 µm in the
        # continuum model) may be shallower than modelled, which leaves a step just above 1.84 keV (Y Lα)
        above = (problem.energy > SI_K_EDGE_EV) * _si_dead_layer_depth(problem.energy) * continuum
        free["free Si edge depth"], caps["free Si edge depth"] = above, np.inf
    problem.artefacts.update(free)
    problem.artefact_caps.update(caps)
    try:
        gain = fit_set(problem, chosen, shift)[3] - fit_set(problem, chosen + [el], shift)[3]
    finally:
        for k in free:
            del problem.artefacts[k], problem.artefact_caps[k]
    if gain >= min_snr**2:
        return ""
    names = ", ".join(k[5:] for k in free)
    return f"with the weights of {names} free it adds only {np.sqrt(max(gain, 0.0)):.1f}σ"


def add_shoulders(problem, fit_set, significance, pool, chosen, final, shift, min_snr):
    """Shoulder candidates chosen one at a time (the best Δχ² first) while one passes; then backward elimination.
    Returns (chosen, significance, {element: rejection reason}, final fit)."""
    lines_at = {}  # element -> (its line's energy, the residual peak's)

    def propose(chosen, final, tried):
        peaks, _z = residual_peaks(problem, final, shift, min_snr)
        found = {el: v for el, v in shoulder_candidates(problem, peaks, pool, chosen, shift).items() if el not in tried}
        lines_at.update(found)
        return sorted(((final[3] - fit_set(problem, chosen + [el], shift)[3], el, None) for el in found),
                      key=lambda t: t[:2], reverse=True)

    def judge(el, gain, chosen, final, fit):
        c, p = lines_at[el]
        why = candidate_tests(problem, fit_set, pool, chosen, final, fit, el, c, p, shift, min_snr)
        if why:
            return f"rejected (shoulder candidate): {why}", ""
        return "", (f"found on a shoulder at {c / 1000:.2f} keV (a peak of the fit's residual, "
                    f"{(p - c) / problem.fwhm_of(c):+.2f} FWHM from the line)")

    return greedy_add(problem, fit_set, significance, chosen, final, shift, min_snr, propose, judge)


def greedy_add(problem, fit_set, significance, chosen, final, shift, min_snr, propose, judge, tried=()):
    """Candidates added one at a time, for at most MAX_ROUNDS rounds, the residual recomputed after each; then
    backward elimination (:func:`drop_weakest`). ``propose(chosen, final, tried)``: (Δχ², element, its fit beside
    ``chosen`` or None) of the candidates not yet tried, best first; each with Δχ² >= min_snr² in turn is tried (and
    not proposed again) and ``judge(el, Δχ², chosen, final, fit)`` gives (rejection reason, '') or ('', why it
    was chosen); the first one chosen ends the round. ``tried``: elements never to propose. Returns (chosen,
    significance, {element: reason}, final fit)."""
    chosen, reasons, tried = list(chosen), {}, set(tried)
    for _round in range(MAX_ROUNDS):
        added = False
        for gain, el, fit in propose(chosen, final, tried):
            if gain < min_snr**2:
                break
            tried.add(el)
            fit = fit or fit_set(problem, chosen + [el], shift)
            why, found = judge(el, gain, chosen, final, fit)
            if why:
                reasons[el] = why
                continue
            chosen.append(el)
            reasons[el] = found
            final = fit
            added = True
            break
        if not added:
            break
    chosen, sig, final = drop_weakest(problem, fit_set, significance, chosen, final, shift, min_snr, reasons)
    return chosen, sig, reasons, final


def candidate_tests(problem, fit_set, pool, chosen, final, fit, el, c, p, shift, min_snr):
    """'' when the candidate ``el`` (line at ``c``, fitted beside ``chosen`` in ``fit``; ``final`` the fit without it)
    passes the tests of a shoulder candidate (module docstring), else the reason; ``p``: the residual peak (or
    region) it was found at, which it must explain."""
    why, _fam = family_check(problem, el, fit[1], fit[2])
    why = why or _own_counts_test(problem, fit, el, c, min_snr, shift)
    if not why and c < LOCAL_TEST_BELOW:
        # as for a detected peak (:func:`._eds_checks.peak_check`): below ~1.5 keV the continuum is
        # uncertain, so the line must also stand above the counts on either side of it
        excess, local_noise = local_excess(problem, c, final[4])
        if excess < min_snr * local_noise:
            why = f"at its shoulder ({c / 1000:.2f} keV) only {excess / local_noise:.1f}σ above the counts on either side"
    if not why:
        for r in rivals(problem, el, c, pool, chosen, shift):
            fit_r = fit_set(problem, chosen + [r], shift)
            if family_check(problem, r, fit_r[1], fit_r[2])[0]:
                continue  # a rival whose own families disagree (Br L without Br K) stands in for nothing
            c_r = fit_r[3]
            if c_r - fit[3] >= min_snr**2:
                continue  # the lines the two do not share decide: the candidate fits better by >= min_snr σ
            c_re = fit_set(problem, chosen + [r, el], shift)[3]
            if c_r - c_re < min_snr**2:
                return f"with {r} in its place at {c / 1000:.2f} keV it adds only {np.sqrt(max(c_r - c_re, 0.0)):.1f}σ"
    if not why:
        why = free_weights_test(problem, fit_set, el, c, chosen, shift, min_snr, final[4], final[5])
    if not why:
        # it must explain its residual peak, not a share of it (a misfit 0.6 FWHM beside O Kα is no O)
        left, z_left = residual_peaks(problem, fit, shift, min_snr)
        near = np.abs(left - p) <= 0.5 * problem.fwhm_of(p)
        if near.any():
            why = f"fitted, it leaves {z_left[near].max():.1f}σ of the residual peak at {p / 1000:.2f} keV"
    return why


def drop_weakest(problem, fit_set, significance, chosen, final, shift, min_snr, reasons):
    """Backward elimination after a pass that changed the set: the element adding least is
    dropped (and its reason written) while it adds under ``min_snr``. Returns (chosen, sig, final)."""
    sig = significance(problem, chosen, shift, final)
    while chosen and min(sig.values()) < min_snr:
        weakest = min(chosen, key=lambda el: sig[el])
        chosen.remove(weakest)
        reasons[weakest] = f"rejected: chosen, then dropped: adds only {sig[weakest]:.1f}σ beside the others"
        final = fit_set(problem, chosen, shift)
        sig = significance(problem, chosen, shift, final)
    return chosen, sig, final
