"""Candidates from where the fit falls short (private; used by :mod:`._eds_identify`).

Candidates come from detected peaks (forward selection) and from line-wide peaks of the fit's residual (the shoulder
pass). An element whose lines make neither (a weak Al Kα 0.3 FWHM from a fitted Br Lα, a Y Lα on the side of a big
Si Kα, Mg Kα under a fitted Ge Lβ1 with room to spare) was never tried, although, tried beside what was found, it
adds >= ``min_snr`` σ. After the shoulder pass every pool element not chosen and not already tried by it or replaced
by the rival pass is a candidate when the residual of the final fit is positive over a FWHM around the principal
line (Kα, Lα, Mα) of its family that explains the residual best. Its gain in χ² is first bounded from the residual
alone (each family's column fitted to the residual, the rest held: a lower bound of the refitted gain) and only
elements within reach (half of ``min_snr`` σ) are refitted. A candidate is chosen (the one lowering χ² most first,
one at a time, the residual recomputed after each) only when

- its family at the region adds >= ``min_snr`` σ alone (its other families may only soak up misfit elsewhere);
- found by an L or M family below 1.5 keV (on the continuum's poorly known rise), its highest family also adds
  >= ``min_snr`` σ alone and passes the free-weights test below;
- it passes the tests of a shoulder candidate (:func:`._eds_shoulder.candidate_tests`: family, own counts, rivals,
  free weights, no residual peak left at its line);
- it still adds >= ``min_snr`` σ beside every element with a line within 1.5 FWHM of its line, that element fitted
  beside the chosen ones and, where it can take their place within ``min_snr`` σ, in place of the chosen elements
  standing in for it (Cd Lα on Ag Lβ1 while Ar Kα holds Ag Lα);
- its family alone still adds >= ``min_snr`` σ with the chosen elements' lines near its lines free (principal ones
  too), each element's low-energy tail and a short tail free, the big nearby lines' widths free by 10 %, and, for Si,
  the detector's own Si Kα (internal fluorescence, up to 2 % of the counts above the Si K edge: not an element for
  Velox and DM users; FePt's 1.1 %);

then an element that adds < ``min_snr`` σ beyond the others is dropped, as after forward selection.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from napari_cryomat.core import _eds_physics as phys
from napari_cryomat.core._eds_artefacts import MAX_SI_FLUORESCENCE, SI_K_EDGE_EV
from napari_cryomat.core._eds_checks import LOCAL_TEST_BELOW, family_check, z_of
from napari_cryomat.core._eds_shoulder import (
    FREE_RADIUS,
    MAX_TAIL,
    PEAK_TOLERANCE,
    RIVAL_MIN_WEIGHT,
    candidate_tests,
    free_weights_test,
    greedy_add,
    low_energy_tail,
)

REACH = 0.5  # an element is refitted when the residual alone bounds its gain at >= (REACH × min_snr)²
HALF_WINDOW = 0.5  # the residual is summed over ± this many FWHM around a line ("over a FWHM")
SHORT_TAIL = 1.0  # decay length (FWHM) of the second, short low-energy tail freed for a candidate
WIDTH_MIN_WEIGHT = 0.05  # lines at least this strong (of their family's principal line) get the width freedom
WIDTH_FREEDOM = 0.1  # a big nearby line's width is free by this fraction in the free-weights test
OFF_CENTRE = 0.5  # centres tried for the residual's excess, ± FWHM around the line


def _family_lines(problem, el, shift):
    """{family column key: energy of its principal line (Kα, Lα, Mα)}; families without one cannot make an element."""
    z = z_of(el)
    names = phys.family_principals(z, problem.beam_kev)
    energies = {n: e for n, e, _w, _s in phys.grouped_lines(z, problem.beam_kev)}
    out = {}
    for key in problem.columns(el, shift):
        fam = key.rstrip("*")
        if names.get(fam) in ("Ka", "La", "Ma") and names[fam] in energies:
            out[key] = energies[names[fam]] + shift
    return out


def region_candidates(problem, final, pool, skip, shift, min_snr):
    """{element: (energy of its line, its family)} of the elements (not in ``skip``) whose best-fitting family, fitted to the
    residual of ``final`` alone, gains >= (REACH × min_snr)² and whose principal line lies where that residual is
    positive over a FWHM."""
    m, w = problem.mask, problem.weight[problem.mask]
    resid = problem.s - final[4] - final[5]
    r = resid[m] * w
    out = {}
    for el in pool:
        if el in skip:
            continue
        best = None
        for key, c in _family_lines(problem, el, shift).items():
            col = problem.columns(el, shift)[key][m] * w
            cc, rc = float(col @ col), float(col @ r)
            if cc <= 0 or rc <= 0:
                continue
            gain = rc * rc / cc
            if best is None or gain > best[0]:
                best = (gain, c, key.rstrip("*"))
        if best is None or best[0] < (REACH * min_snr) ** 2:
            continue
        c = best[1]
        win = m & (np.abs(problem.energy - c) <= HALF_WINDOW * problem.fwhm_of(c) * problem.width_scale)
        if win.any() and float(resid[win].sum()) > 0 and _centred(problem, r, c):
            out[el] = (c, best[2])
    return out


def _centred(problem, r, c):
    """True when a line-wide Gaussian fits the weighted residual ``r`` best within PEAK_TOLERANCE FWHM of ``c`` (of
    centres up to OFF_CENTRE FWHM away): the excess is at the line, not beside it (TM002's residual 0.33 FWHM above O
    Kα is Mn Ll's misfit, not O)."""
    m, w = problem.mask, problem.weight[problem.mask]
    f = problem.fwhm_of(c) * problem.width_scale
    offsets = np.linspace(-OFF_CENTRE, OFF_CENTRE, 21)
    gains = []
    for d in offsets:
        g = problem._gauss(c + d * f, 1.0)[m] * w
        rg = float(g @ r)
        gains.append(rg * abs(rg) / max(float(g @ g), 1e-30))
    k = int(np.argmax(gains))
    best = offsets[k]
    if 0 < k < offsets.size - 1:  # parabola through the maximum: the grid's step is a fifth of the tolerance
        g0, g1, g2 = gains[k - 1], gains[k], gains[k + 1]
        den = g0 - 2 * g1 + g2
        if den < 0:
            best += 0.5 * (offsets[1] - offsets[0]) * (g0 - g2) / den
    return abs(best) <= PEAK_TOLERANCE


def _line_columns(problem, chosen, near, shift):
    """{name: column} of each of the chosen elements' lines (principal ones too) within FREE_RADIUS FWHM of ``near``:
    each line's weight free, as the generator's and a real detector's ratios are good to ~20 % line by line (old
    generator 101: Nd Ll on a big La Lα)."""
    out = {}
    for o in chosen:
        for n, en, _w in problem.lines(o):
            c = en + shift
            if any(abs(c - a) <= FREE_RADIUS * problem.fwhm_of(a) for a in near):
                out[f"free {o} {n}"] = problem._gauss(c, 1.0)
    return out


def _width_columns(problem, chosen, final, near, shift):
    """{name: column} of each fitted line (weight >= WIDTH_MIN_WEIGHT of its family's principal line; a 271k-count V
    Kα's Kβ is itself big: old generator 11001, Sm Lα 1.5 FWHM above it) of the chosen elements within FREE_RADIUS FWHM of
    ``near``, made WIDTH_FREEDOM narrower and wider (the change of the line at its fitted counts): one detector width
    for all lines, fitted without tails, is off by a few % at a line holding 300 times the candidate (old generator
    13026: a Ca Kα 490σ fitted 10 % wide leaves 6σ per 4 channels 2 FWHM below it, where Sn Lα lies)."""
    out = {}
    amps = {}
    for (o, fam), xi in zip(final[1], final[2]):
        if fam and o in chosen and xi > 0:
            amps[(o, fam)] = amps.get((o, fam), 0.0) + float(xi)
    for (o, fam), amp in amps.items():
        for n, e, w, _s in phys.grouped_lines(z_of(o), problem.beam_kev):
            c = e + shift
            if n[0] != fam[0] or w < WIDTH_MIN_WEIGHT or not any(
                    abs(c - a) <= FREE_RADIUS * problem.fwhm_of(a) for a in near):
                continue
            base = problem._gauss(c, amp * w)
            keep = problem.width_scale
            for sign, label in ((-1, "narrower"), (1, "wider")):
                problem.width_scale = keep * (1 + sign * WIDTH_FREEDOM)
                try:
                    out[f"free {o} {n} {label}"] = problem._gauss(c, amp * w) - base
                finally:
                    problem.width_scale = keep
    return out


@contextmanager
def _only_family(problem, el, fam, shift):
    """``el`` fitted with its family ``fam`` alone while inside."""
    others = {(el, f.rstrip("*")) for f in problem.columns(el, shift)} - {(el, fam)} - problem.excluded
    problem.excluded |= others
    try:
        yield
    finally:
        problem.excluded -= others


def _family_alone(problem, fit_set, el, fam, chosen, final, shift, min_snr):
    """'' when the family of ``el`` whose line lies in the region adds >= min_snr σ by itself, else the reason: the
    element is found by that line, and its other families may only soak up misfit elsewhere (the M family of a light
    lanthanide at 0.9 keV, on the continuum's poorly known rise)."""
    with _only_family(problem, el, fam, shift):
        gain = final[3] - fit_set(problem, chosen + [el], shift)[3]
    if gain >= min_snr**2:
        return ""
    return f"its {fam} family alone adds only {np.sqrt(max(gain, 0.0)):.1f}σ"


def _confirmed_by_higher_family(problem, fit_set, el, fam, c, chosen, final, shift, min_snr):
    """'' unless ``el`` was found by an L or M family below LOCAL_TEST_BELOW and its family with the highest principal
    line adds < min_snr σ alone: a 3d metal's L lines (0.4-0.7 keV) or a lanthanide's M lines sit on the continuum's
    poorly known rise, where misfit of the other elements' low-energy lines gathers (old generator 9022: Cr L and
    Mn L at 0.56-0.63 keV, neither present); a present element shows its K (L) lines, which lie clear of that rise."""
    if fam == "K" or c >= LOCAL_TEST_BELOW:
        return ""
    fams = _family_lines(problem, el, shift)
    higher = [(e, key.rstrip("*")) for key, e in fams.items() if key.rstrip("*") != fam and e > c]
    if not higher:
        return ""
    e_top, top = max(higher)
    with _only_family(problem, el, top, shift):
        gain = final[3] - fit_set(problem, chosen + [el], shift)[3]
    if gain < min_snr**2:
        return (f"found by its {fam} family below {LOCAL_TEST_BELOW / 1000:.1f} keV, its {top} family alone adds only "
                f"{np.sqrt(max(gain, 0.0)):.1f}σ")
    # and holds its own where the chosen elements' lines near it are free (Cr Kα between Nd Lα and Lβ1 takes their misfit)
    why = _free_family_test(problem, fit_set, el, top, e_top, chosen, final, shift, min_snr)
    return f"found by its {fam} family below {LOCAL_TEST_BELOW / 1000:.1f} keV; its {top} family: {why}" if why else ""


def _free_family_test(problem, fit_set, el, fam, c, chosen, final, shift, min_snr, fluorescence=True):
    """:func:`._eds_shoulder.free_weights_test` of ``el``'s family ``fam`` alone (principal line at ``c``), with every
    line of the chosen elements within FREE_RADIUS FWHM of that family's lines free, principal lines too (weights
    good to ~20 % line by line: old generator 101, Nd Ll on a big La Lα), and a short low-energy tail."""
    near = [e + shift for n, e, _w in problem.lines(el) if n[0] == fam[0]]
    extra = _line_columns(problem, chosen, near, shift)
    # a detector's tail is no single exponential (a shelf and a short tail): a short one is free too
    extra["free short low-energy tail"] = low_energy_tail(problem, np.maximum(final[4], 0.0), SHORT_TAIL)
    caps = {"free short low-energy tail": MAX_TAIL}
    for o in chosen:
        # each element's tail on its own (the lines' tails are one column in the shoulder test)
        own = sum((xi * col for (ow, _f), xi, col in zip(final[1], final[2], final[0]) if ow == o),
                  np.zeros_like(problem.energy))
        extra[f"free {o} low-energy tail"] = low_energy_tail(problem, np.maximum(own, 0.0))
        caps[f"free {o} low-energy tail"] = MAX_TAIL
    for name, col in _width_columns(problem, chosen, final, near, shift).items():
        extra[name], caps[name] = col, 1.0
    if el == "Si" and fluorescence:
        # the detector's own Si Kα is no element (Velox and DM do not list it): Si must exceed it
        si_col, si_cap = _si_fluorescence_column(problem, shift)
        extra.update(si_col)
        caps.update(si_cap)
    with _only_family(problem, el, fam, shift):
        return free_weights_test(problem, fit_set, el, c, chosen, shift, min_snr, final[4], final[5], near=near,
                                 extra=extra, extra_caps=caps)


def _principal_energies(problem, el, shift):
    return [e + shift for n, e, _w in problem.lines(el) if n in ("Ka", "La", "Ma")]


def _rival_test(problem, fit_set, pool, chosen, final, fit, el, c, shift, min_snr):
    """'' when ``el`` (line at ``c``, fitted beside ``chosen`` in ``fit``) still adds >= min_snr σ beside each rival, else
    the reason. A rival: an element not chosen with a line (weight >= RIVAL_MIN_WEIGHT) within FREE_RADIUS FWHM of
    ``c`` (a region is a broad excess: S Kα 1.3 FWHM above Hg Mα may own it). Each rival is fitted beside ``chosen``
    and, when chosen elements have a line within one FWHM of the rival's principal lines (its stand-ins: Ar Kα on Ag
    Lα, new generator 18006), also in their place: Cd Lα on Ag Lβ1 adds nothing once Ag holds its own Lα."""
    f = problem.fwhm_of(c)
    for r in pool:
        if r == el or r in chosen or not any(w >= RIVAL_MIN_WEIGHT and abs(e + shift - c) <= FREE_RADIUS * f
                                              for _n, e, w in problem.lines(r)):
            continue
        principals = _principal_energies(problem, r, shift)
        stand_ins = [o for o in chosen if any(w >= RIVAL_MIN_WEIGHT and abs(e + shift - p) <= problem.fwhm_of(p)
                                              for _n, e, w in problem.lines(o) for p in principals)]
        variants = [chosen] + ([[o for o in chosen if o not in stand_ins]] if stand_ins else [])
        for others in variants:
            fit_r = fit_set(problem, others + [r], shift)
            if family_check(problem, r, fit_r[1], fit_r[2])[0]:
                continue  # a rival whose families disagree stands in for nothing
            if others is chosen and fit_r[3] - fit[3] >= min_snr**2:
                continue  # the candidate fits better by >= min_snr σ (the lines the two do not share decide)
            if others is not chosen and fit_r[3] - final[3] >= min_snr**2:
                continue  # the rival cannot take its stand-ins' place (it fits worse than they do by >= min_snr σ)
            # in its stand-ins' place the rival need not fit worse than stand-in + candidate by min_snr σ: two
            # elements face one there (18006: Ar + Cd fit better than Ag by 13σ, Ag fits 4.9σ worse than Ar alone)
            c_re = fit_set(problem, others + [r, el], shift)[3]
            if fit_r[3] - c_re < min_snr**2:
                place = f" in place of {', '.join(stand_ins)}" if others is not chosen else ""
                return (f"with {r}{place} fitted at {c / 1000:.2f} keV it adds only "
                        f"{np.sqrt(max(fit_r[3] - c_re, 0.0)):.1f}σ")
    return ""


def _si_fluorescence_column(problem, shift):
    """{name: column} and {name: cap} of the detector's own Si Kα (internal fluorescence: up to MAX_SI_FLUORESCENCE of
    the counts above the Si K edge, FePt's 1.1 %), which Si in the specimen must exceed by >= min_snr σ."""
    above = float(problem.s[problem.mask & (problem.energy > SI_K_EDGE_EV)].sum())
    e = next(e for n, e, _w in problem.lines("Si") if n == "Ka")
    name = "free detector Si Kα (internal fluorescence)"
    return {name: problem._gauss(e + shift, 1.0)}, {name: MAX_SI_FLUORESCENCE * max(above, 0.0)}


def add_from_regions(problem, fit_set, significance, pool, chosen, final, shift, min_snr, skip):
    """Candidates from positive residual regions chosen one at a time (the best Δχ² first) while one passes; then
    backward elimination. ``skip``: elements already tried (shoulder pass) or replaced (rival pass). Returns (chosen,
    significance, {element: reason}, final fit)."""
    regions = {}  # element -> (energy of its line, its family)

    def propose(chosen, final, tried):
        cands = region_candidates(problem, final, pool, tried | set(chosen), shift, min_snr)
        regions.update(cands)
        trials = []
        for el in cands:
            fit = fit_set(problem, chosen + [el], shift)
            trials.append((final[3] - fit[3], el, fit))
        return sorted(trials, key=lambda t: -t[0])

    def judge(el, gain, chosen, final, fit):
        c, fam = regions[el]
        why = _family_alone(problem, fit_set, el, fam, chosen, final, shift, min_snr)
        why = why or _confirmed_by_higher_family(problem, fit_set, el, fam, c, chosen, final, shift, min_snr)
        why = why or candidate_tests(problem, fit_set, pool, chosen, final, fit, el, c, c, shift, min_snr)
        why = why or _rival_test(problem, fit_set, pool, chosen, final, fit, el, c, shift, min_snr)
        if not why:
            # its other lines may sit on misfits of the chosen elements' lines too (Nd Lβ1 on La Lγ1 beside Nd Lα
            # on La Lβ1/Lβ2); and its other families stay out (a light lanthanide's M family at 0.9 keV soaks up
            # misfit of the continuum's rise)
            why = _free_family_test(problem, fit_set, el, fam, c, chosen, final, shift, min_snr)
            if why and el == "Si" and not _free_family_test(problem, fit_set, el, fam, c, chosen, final, shift,
                                                            min_snr, fluorescence=False):
                why = ("its Kα is what the detector's own Si internal fluorescence gives (up to "
                       f"{MAX_SI_FLUORESCENCE:.0%} of the counts above the Si K edge): a detector artefact, "
                       "not Si in the specimen")
        if why:
            return f"rejected (candidate from the fit's residual at {c / 1000:.2f} keV): {why}", ""
        return "", (f"found where the fit fell short: the residual is positive around {c / 1000:.2f} keV and "
                    f"it adds {np.sqrt(gain):.1f}σ there")

    return greedy_add(problem, fit_set, significance, chosen, final, shift, min_snr, propose, judge, tried=skip)
