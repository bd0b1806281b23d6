"""Two candidates for one peak in a forward step (private; used by :mod:`._eds_identify`).

When the best element of a forward step and a runner-up both have a strong line on the same peak and the runner-up
lowers χ² nearly as much (Al Kα and Br Lα at 1.48 keV on TM002: 46 885 against 46 830 of 47 000), the step's choice
rests on how well each one's lines fit the shared peak at the detector's width as calibrated; any change of that
width flips it (a width 3 % narrower takes Br). Here the step's choice's lines that the runner-up does not share
decide: each of the two is fitted with the chosen elements with its own line width free (the shared peak then fits
about equally well), and the two fits are compared on the channels around the lines of the step's choice that lie
farther than one FWHM from every line of the runner-up (Br Ll 1.29 keV and Lη 1.34 keV, 4 % and 2 % of Br Lα). The
runner-up replaces it only when it fits those channels better by >= ``min_snr`` σ: the step's choice predicts counts
the spectrum does not hold there. Counts that only the runner-up's own extra lines explain decide nothing: they may
be another element's, not yet chosen (a Mo L family taking S Kα and Pb M's peaks at 2.3-2.6 keV, old-generator
23009).
"""

from __future__ import annotations

import numpy as np

NEAR_TIE = 0.8  # a runner-up is contested when it lowers χ² by at least this share of the best step's drop
SHARED_WEIGHT = 0.5  # the two must each have a line of at least this weight on the same peak (within 0.5 FWHM)
APART_FWHM = 1.0  # a line farther than this (FWHM) from every line of the other one is a line the two do not share
WINDOW_FWHM = 0.6  # channels within this of such a line are where the two are compared
WIDTH_GRID = np.arange(0.75, 1.301, 0.05)  # the free line width, × the detector's given FWHM (as best_width's grid)


def _shares_peak(problem, a, b):
    """Energy of a line of ``a`` (weight >= SHARED_WEIGHT) within 0.5 FWHM of one of ``b``, or None."""
    for _n, e, w in problem.lines(a):
        if w < SHARED_WEIGHT:
            continue
        for _m, f, v in problem.lines(b):
            if v >= SHARED_WEIGHT and abs(e - f) <= 0.5 * problem.fwhm_of(e):
                return e
    return None


def _apart(problem, a, b):
    """(name, energy) of ``a``'s lines farther than APART_FWHM from every line of ``b``."""
    others = [f for _m, f, _v in problem.lines(b)]
    return [(n, e) for n, e, _w in problem.lines(a)
            if all(abs(e - f) > APART_FWHM * problem.fwhm_of(e) for f in others)]


def _fit_free_width(problem, fit_set, chosen, el, shift):
    """Model (counts per channel) of the chosen elements + ``el`` with ``el``'s line width free (WIDTH_GRID)."""
    cols, owners, _x, _c2, _m, _cont = fit_set(problem, chosen, shift)
    upper = [problem.artefact_caps[o] if f == "" else np.inf for o, f in owners]
    best = None
    calibrated = problem.width_scale
    try:
        for g in WIDTH_GRID:
            problem.width_scale = float(g)
            own = list(problem.columns(el, shift).values())
            problem.width_scale = calibrated
            _amp, chi2, model = problem.solve(cols + own, upper + [np.inf] * len(own))
            if best is None or chi2 < best[0]:
                best = (chi2, model, float(g))
    finally:
        problem.width_scale = calibrated
    return best


def contest(problem, fit_set, chosen, best, trials, shift, min_snr):
    """(winner, note): the runner-up (an element after ``best`` in this step's ``trials``, (Δχ², element) best
    first) that shares ``best``'s peak and fits the channels of ``best``'s lines it does not share better by >=
    min_snr σ, with a note for ``best``'s reason; (best, '') when there is none."""
    ranked = [el for _g, el in trials]
    gain_best = trials[ranked.index(best)][0]
    for gain, rival in trials[ranked.index(best) + 1:]:  # the ones tried after it in this step
        if gain < NEAR_TIE * gain_best:
            break
        e_shared = _shares_peak(problem, best, rival)
        if e_shared is None:
            continue
        apart = _apart(problem, best, rival)  # the step's choice's lines the runner-up has nothing near
        window = np.zeros_like(problem.mask)
        for _n, e in apart:
            window |= np.abs(problem.energy - (e + shift)) <= WINDOW_FWHM * problem.fwhm_of(e)
        window &= problem.mask
        if not window.any():
            continue
        chi2_apart = {}
        for el in (best, rival):
            _c2, model, _g = _fit_free_width(problem, fit_set, chosen, el, shift)
            r = (problem.s - model)[window] * problem.weight[window]
            chi2_apart[el] = float(r @ r)
        margin = chi2_apart[best] - chi2_apart[rival]
        if margin >= min_snr**2:
            lines = ", ".join(f"{best} {n} ({e / 1000:.2f} keV)" for n, e in apart[:3])
            return rival, (f"shares its peak at {e_shared / 1000:.2f} keV with {rival}; with each one's line width "
                           f"free, the spectrum does not hold its lines apart from {rival}'s ({lines}): {rival} fits "
                           f"them {np.sqrt(margin):.1f}σ better")
    return best, ""
