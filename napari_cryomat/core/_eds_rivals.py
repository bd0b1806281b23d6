"""Stand-ins among the elements the main selection chose (private; used by :mod:`._eds_identify`).

Forward selection adds, at each step, the element that lowers χ² most *given the elements chosen so far*. When two
elements have lines at the same energy (Ce Lγ1 and Gd Lα at 6.05 keV, Ag Lα and Th Mα at 2.99 keV), the one
taken first may be the wrong one: its lines explain the shared peak, and the true owner, whose other lines sit
under bigger peaks, is then never chosen (old-generator seed 13013: Th for an Ag at 19σ; new-generator 14024: Zr
for a Y at 87σ). Once the whole set is fitted, the lines the two do not share decide. Each chosen element is
compared with its rivals: the elements not chosen with a line (weight >= 0.02) within one FWHM of one of its
principal lines (Kα, Lα, Mα) whose families agree when fitted in its place. The element is replaced by the rival
that fits best in its place (that one only) when

- the rival in its place fits better by >= ``min_snr`` σ (the lines the two do not share decide), and
- beside the rival the element is redundant: it adds < ``min_snr`` σ, or less once what the model holds only
  roughly near its line is free (the other chosen elements' secondary lines, a low-energy tail, continuum humps:
  :func:`._eds_shoulder.free_weights_test`; not the rival's own secondary lines, which would let a false rival's
  weak lines absorb a true element), and
- the rival itself wins against each of its own rivals as a shoulder candidate must (fits better by ``min_snr`` σ
  in its place or adds ``min_snr`` σ beside it): a rival may fit better only because its other lines explain the
  peak of a missed element (Ir for Cl, its Mα on a missed Y Lα).

A rival that fits *worse* in its place, or better but without making the element redundant, still replaces an element
whose Mα lies within one FWHM of the rival's Kα when the peak decides (:func:`_takes_the_peak`): the model has no
low-energy tail for big K peaks, so a heavy element's L lines gain from the misfit on their flanks and it out-fits the
light element whose Kα peak it holds (hyperspy's 10-frame Velox superalloy: Tm for Al at 1.48 keV, its Lα between Fe
Kβ and Ni Kα), or keeps adding beside it (a tailed Ni-rich matrix: Al 6.5σ better in Tm's place, Tm not redundant).

An element whose fitted counts in the channels that neither a rival nor another chosen element comes near (farther than
two FWHM from their lines, above 1.5 keV) hold >= ``min_snr`` σ beside each of its rivals cannot be redundant beside any: its rivals
are not fitted (most chosen elements; the pass then costs about half as much).

A replaced element is not brought back by this pass (it may still be found on a shoulder later); then an element
that adds < ``min_snr`` σ beyond the others is dropped, as after forward selection.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core import _eds_physics as phys
from napari_cryomat.core._eds_checks import CONSISTENT_MIN_ENERGY, family_check, peak_check, z_of
from napari_cryomat.core._eds_shoulder import RIVAL_MIN_WEIGHT, drop_weakest, free_weights_test

# an element's counts count as its own beside a rival only this far (FWHM) from the rival's and the other chosen
# elements' lines (one FWHM let the lower half of Tb Lα, 0.9 FWHM below Fe Kα, skip Tb's rivals on new-generator 18027,
# where Fe replaces it) and above the energy where the continuum's refit may take them
UNSHARED_DISTANCE = 2.0
UNSHARED_MIN_ENERGY = CONSISTENT_MIN_ENERGY
MAX_SWAPS = 4  # replacements per spectrum (each re-fits the set; a spectrum rarely holds more than one stand-in)


def principal_lines(problem, fit, el, shift):
    """[(energy, fitted counts)] of ``el``'s principal lines (Kα, Lα, Mα) with counts in ``fit``, most counts first."""
    counts = {}
    for (o, fam), amp in zip(fit[1], fit[2]):
        if o == el and fam:
            counts[fam] = counts.get(fam, 0.0) + float(amp)
    z = z_of(el)
    names = phys.family_principals(z, problem.beam_kev)
    energies = {n: e for n, e, _w, _s in phys.grouped_lines(z, problem.beam_kev)}
    out = [(energies[names[f]] + shift, a) for f, a in counts.items()
           if a > 0 and names.get(f) in ("Ka", "La", "Ma") and names[f] in energies]
    return sorted(out, key=lambda t: -t[1])


def _genuine_lines(problem, el):
    """``el``'s lines in families with their principal line (Kα, Lα, Mα): the families that can make an element (the
    L lines of K at 0.26 keV, a family without Lα, are no evidence of potassium; see :func:`._eds_checks.peak_check`)."""
    genuine = {f for f, p in phys.family_principals(z_of(el), problem.beam_kev).items() if p in ("Ka", "La", "Ma")}
    return [(n, e, w) for n, e, w in problem.lines(el) if n[0] in genuine]


def _rivals(problem, pool, chosen, lines, shift):
    """Not chosen elements with a line (weight >= RIVAL_MIN_WEIGHT) of a genuine family within one FWHM of one of
    ``lines``."""
    return [r for r in pool if r not in chosen and any(
        w >= RIVAL_MIN_WEIGHT and abs(e + shift - c) <= problem.fwhm_of(c) for _n, e, w in _genuine_lines(problem, r)
        for c, _a in lines)]


def _best_replacement(problem, fit_set, el, chosen, final, shift, pool, min_snr, banned):
    """(rival, its fit, reason) of the best-fitting rival beside which ``el`` is redundant, or None."""
    lines = principal_lines(problem, final, el, shift)
    if not lines:
        return None
    others = [c for c in chosen if c != el]
    rivals = [r for r in _rivals(problem, pool, chosen, lines, shift) if (el, r) not in banned]
    kept = _unshared_mask(problem, others, shift)
    if all(_unshared_significance(problem, final, el, kept & _unshared_mask(problem, [r], shift)) >= min_snr
           for r in rivals):
        # beside each rival, its lines that neither the rival nor another chosen element shares hold it: no rival can
        # make it redundant, and none need be fitted (the best-fitting one must be known to try it alone)
        return None
    trials, worse = [], []
    for r in rivals:
        fit_r = fit_set(problem, others + [r], shift)
        if family_check(problem, r, fit_r[1], fit_r[2])[0]:
            continue  # a rival whose own families disagree (Br L without Br K) stands in for nothing
        if final[3] - fit_r[3] < min_snr**2:
            # the lines the two do not share must decide by >= min_snr σ (Zr Lα and Pt Mα, 2.04 keV, are a coin flip
            # at 2-4σ either way); such a rival may still take the peak by its own line (below)
            worse.append((fit_r[3], r, fit_r))
            continue
        trials.append((fit_r[3], r, fit_r))
    # the best-fitting rival only: when the element still holds lines of its own beside it, a worse-fitting rival
    # it is redundant beside explains less of it (old-generator 11001: Gd adds 5.9σ beside Ce, 143σ better in its
    # place; beside Nd, 63σ better, it adds 2.4σ — but Nd is no more in the sample than Gd)
    for chi2_r, r, fit_r in sorted(trials, key=lambda t: t[0])[:1]:
        why = _redundant(problem, fit_set, el, [r], others, lines, fit_r, shift, min_snr)
        if why and not _loses_to_a_rival(problem, fit_set, r, el, others, fit_r, pool, shift, min_snr):
            better = np.sqrt(max(final[3] - chi2_r, 0.0))
            return r, fit_r, (f"a stand-in for {r}: with {r} in its place at {lines[0][0] / 1000:.2f} keV the fit "
                                f"is better by {better:.1f}σ, and {why}")
    # the peak decides also for a rival that fits better in its place but beside which the element is not redundant
    # (its L lines still hold the tails' misfit: Al 6.5σ better in Tm's place, Tm not redundant beside Al)
    for _chi2_r, r, fit_r in sorted(worse + trials, key=lambda t: t[0]):
        if not _k_line_on_m_family(problem, r, el):
            continue
        why = _takes_the_peak(problem, fit_set, el, r, others, final, fit_r, shift, min_snr)
        if why and not _loses_to_a_rival(problem, fit_set, r, el, others, fit_r, pool, shift, min_snr):
            return r, fit_r, f"a stand-in for {r}: {why}"
    return None


def _takes_the_peak(problem, fit_set, el, r, others, final, fit_r, shift, min_snr):
    """The reason ``el`` stands in for ``r`` on a peak, or ''. A rival that fits worse in its place, or better while
    ``el`` is not redundant beside it (``el``'s other lines soak up misfits under bigger peaks), replaces it when the
    peak decides: ``r`` has a strong line on a peak of its own without ``el``, still adds >= min_snr σ beside it (the
    peak's shape is ``r``'s), and beside ``r`` no strong line of ``el`` is left on a peak of its own. The Velox
    superalloy's Al Kα at 1.48 keV was taken by a Tm whose Mα lies 22 eV below the peak's centre and whose L lines sat
    only on the flanks of Fe Kβ and Ni Kα: Tm fitted 11.6σ better than Al in its place, but Al added 9.3σ beside Tm
    and, with Al, no line of Tm stood on a peak."""
    both = fit_set(problem, others + [r, el], shift)
    adds = float(np.sqrt(max(final[3] - both[3], 0.0)))
    if adds < min_snr:
        return ""
    before = fit_set(problem, others, shift)
    if peak_check(problem, r, shift, before[4], fit_r[4], min_snr, before[5], _own(fit_r, r)):
        return ""
    why = peak_check(problem, el, shift, fit_r[4], both[4], min_snr, fit_r[5], _own(both, el))
    if not why:
        return ""
    return f"{r} adds {adds:.1f}σ beside it and has a line on the peak of its own; beside {r} it has {why}"


def _k_line_on_m_family(problem, r, el):
    """True when ``r``'s Kα lies within one FWHM of ``el``'s Mα: a light element's K line beside a heavy element's M
    family, the one pairing :func:`_takes_the_peak` decides. The other way round (a heavy M family taking an L line's
    peak) it replaced real elements on the synthetic series (Th for Ag Lα, W for Sr Lα, seeds old 40024 and new 40025)."""
    def energy(element, name):
        return {n: e for n, e, _w, _s in phys.grouped_lines(z_of(element), problem.beam_kev)}.get(name)

    if phys.family_principals(z_of(el), problem.beam_kev).get("M") != "Ma":
        return False
    e_m, e_k = energy(el, "Ma"), energy(r, "Ka")
    return e_m is not None and e_k is not None and abs(e_m - e_k) <= problem.fwhm_of(e_m)


def _own(fit, el):
    """``el``'s fitted lines in ``fit`` (counts per channel)."""
    return sum((xi * col for (o, _f), xi, col in zip(fit[1], fit[2], fit[0]) if o == el), np.zeros_like(fit[4]))


def _unshared_mask(problem, elements, shift):
    """Channels of the fit above UNSHARED_MIN_ENERGY and farther than UNSHARED_DISTANCE FWHM from every line (weight
    >= RIVAL_MIN_WEIGHT) of ``elements``."""
    keep = problem.mask & (problem.energy >= UNSHARED_MIN_ENERGY)
    for r in elements:
        for _n, e, w in problem.lines(r):
            if w >= RIVAL_MIN_WEIGHT:
                c = e + shift
                keep &= np.abs(problem.energy - c) > UNSHARED_DISTANCE * problem.fwhm_of(c)
    return keep


def _unshared_significance(problem, fit, el, keep):
    """σ of ``el``'s fitted counts in the channels ``keep`` (those no line of a rival or another chosen element comes
    near): what it holds that they cannot take. At >= ``min_snr`` σ it cannot be redundant beside that rival, which
    then need not be fitted (the rival pass cost 8-10 % of the identification's CPU)."""
    own = sum((xi * col for (o, _f), xi, col in zip(fit[1], fit[2], fit[0]) if o == el), np.zeros_like(problem.energy))
    return float(np.sqrt(np.sum((own[keep] * problem.weight[keep]) ** 2)))


def _loses_to_a_rival(problem, fit_set, r, el, others, fit_r, pool, shift, min_snr):
    """True when the replacement ``r`` is itself undecided against one of its own rivals (an element, not chosen and
    not ``el``, with a line within one FWHM of one of ``r``'s principal lines, families consistent in its place):
    ``r`` must fit better by >= min_snr σ or still add >= min_snr σ beside it, as a shoulder candidate must
    (:mod:`._eds_shoulder`). Otherwise ``r`` won against ``el`` with lines that explain another element's peak (Ir Mα
    at 1.98 keV on a missed Y Lα, reached through a weak Ir line on Cl Kα)."""
    lines = principal_lines(problem, fit_r, r, shift)
    for r2 in _rivals(problem, pool, others + [r, el], lines, shift):
        fit_2 = fit_set(problem, others + [r2], shift)
        if family_check(problem, r2, fit_2[1], fit_2[2])[0] or fit_2[3] - fit_r[3] >= min_snr**2:
            continue
        if fit_2[3] - fit_set(problem, others + [r2, r], shift)[3] < min_snr**2:
            return True
    return False


def _redundant(problem, fit_set, el, rs, others, lines, fit_r, shift, min_snr):
    """The reason ``el`` is redundant beside the rivals ``rs`` (adds < min_snr σ, or less once the nearby secondary
    lines, tail and continuum humps are free), or '' when it has lines of its own."""
    beside = np.sqrt(max(fit_r[3] - fit_set(problem, others + rs + [el], shift)[3], 0.0))
    if beside < min_snr:
        return f"beside {' + '.join(rs)} it adds only {beside:.1f}σ"
    near = [(c, a) for c, a in lines if any(abs(e + shift - c) <= problem.fwhm_of(c) for r in rs
                                            for _n, e, _w in _genuine_lines(problem, r))] or lines
    # the rivals' own secondary lines stay tied to their principal lines: freed, a false rival's weak lines absorb
    # the true element (old-generator 9016: Gd Lγ2/Lγ3 took a Cu that held 7.9σ)
    return free_weights_test(problem, fit_set, el, near[0][0], others + rs, shift, min_snr, fit_r[4], fit_r[5],
                             free_lines_of=others)


def replace_stand_ins(problem, fit_set, significance, pool, chosen, final, shift, min_snr, sig=None):
    """Each chosen element (the least significant first) replaced by a rival that explains its lines better, while one
    does; then backward elimination. ``sig``: the significance of ``chosen`` in ``final`` when known. Returns (chosen,
    {element: reason}, final fit)."""
    chosen, reasons, banned = list(chosen), {}, set()
    for _swap in range(MAX_SWAPS):
        sig = significance(problem, chosen, shift, final) if sig is None else sig
        for el in sorted(chosen, key=lambda c: sig[c]):
            found = _best_replacement(problem, fit_set, el, chosen, final, shift, pool, min_snr, banned)
            if found is None:
                continue
            r, final, why = found
            chosen = [r if c == el else c for c in chosen]
            banned |= {(el, r), (r, el)}
            reasons[el] = f"rejected: {why}"
            reasons[r] = f"chosen in place of {el}, whose lines it explains better"
            sig = None
            break
        else:
            break
    chosen, _sig, final = drop_weakest(problem, fit_set, significance, chosen, final, shift, min_snr, reasons)
    return chosen, reasons, final
