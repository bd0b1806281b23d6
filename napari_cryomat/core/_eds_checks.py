"""The two tests an element must pass, besides the σ it adds to the joint fit, before identification chooses it
(private; used by :mod:`._eds_identify`).

- :func:`family_check`: its families agree: a family strong enough to be seen is not missing (Pt L at 9.4 keV
  must come with Pt M's 2 keV counts).
- :func:`peak_check`: one of its strong lines sits on a detected peak that the elements chosen before it leave
  largely unexplained (in ±0.6 FWHM: >= ``min_snr`` × √(all counts there) and >= 40 % of the peak), so that it is
  not chosen for soaking up a misfit spread over the spectrum or a share of another element's peak; below 1.5 keV
  the line must also stand above the counts on either side of it (``local_excess``).
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core import _eds_physics as phys
from napari_cryomat.core._eds_artefacts import local_excess

CONSISTENT_MIN_ENERGY = 1500.0  # families above this energy are barely absorbed: must show up
LOCAL_TEST_BELOW = 1500.0  # lines below this also need a local excess over side bands
MIN_SHARE = 0.4  # what the others leave unexplained must be at least this share of the peak


def z_of(el):
    import xraylib

    return int(xraylib.SymbolToAtomicNumber(el))


def family_check(problem, el, owners, x):
    """(reason, family) to reject ``el`` when a family that should be seen is (nearly) absent, else ('', '')."""
    fams = {}
    for i, (o, fam) in enumerate(owners):  # a family's plain and absorbed columns: principal counts add up
        if o == el:
            fams[fam] = fams.get(fam, 0.0) + x[i]
    z = z_of(el)
    strengths = {n: s for n, _e, _w, s in phys.grouped_lines(z, problem.beam_kev)}
    energies = {n: e for n, e, _w, _s in phys.grouped_lines(z, problem.beam_kev)}
    principal = phys.family_principals(z, problem.beam_kev)
    if not fams or max(fams.values()) <= 0:
        return "no line of its families fits", ""
    for fam_hi, amp_hi in fams.items():
        if fam_hi not in principal or energies[principal[fam_hi]] < CONSISTENT_MIN_ENERGY:
            continue  # a family below ~1.5 keV may be absorbed: its absence proves nothing
        for fam, amp in fams.items():
            if fam == fam_hi or fam not in principal or amp <= 0 or principal[fam] not in ("Ka", "La", "Ma"):
                continue  # a family without its principal line (lanthanide M) predicts nothing
            # the other family's counts (a lower bound of its production when it is absorbed)
            expected = amp * strengths[principal[fam_hi]] / strengths[principal[fam]]
            e_f = energies[principal[fam_hi]]
            i = int(np.argmin(np.abs(problem.energy - e_f)))
            noise = 1.0 / problem.weight[i] * np.sqrt(max(1.0, 2 * problem.fwhm_of(e_f) / problem.de))
            # generous: theory ratios across families are good to a factor ~2, low-energy amplitudes
            # (absorbed, on a poorly known continuum) to less
            limit = 0.1 if energies[principal[fam]] >= CONSISTENT_MIN_ENERGY else 0.2
            if expected > 10 * noise and amp_hi < limit * expected:
                return (f"its {fam} family ({el} {principal[fam]} {energies[principal[fam]] / 1000:.2f} keV, "
                        f"{amp:.0f} counts) would come with {el} {principal[fam_hi]} at {e_f / 1000:.2f} keV "
                        f"(≥ {expected:.0f} counts expected, {amp_hi:.0f} fitted)"), fam
    return "", ""


def peak_check(problem, el, shift, model_before, model_after, min_snr, continuum_before):
    """'' when one of ``el``'s strong lines sits on a peak that the other elements leave largely
    unexplained (residual >= min_snr σ and >= 40 % of the peak), else the reason it does not."""
    best = None
    genuine = {f for f, p in phys.family_principals(z_of(el), problem.beam_kev).items() if p in ("Ka", "La", "Ma")}
    for n, e, w in problem.lines(el):
        if w < 0.3 or n[0] not in genuine:
            continue  # an element is made by a K, L or M family with its principal line, not by stray M lines
        c = e + shift
        if problem.peaks_e.size == 0 or np.min(np.abs(problem.peaks_e - c)) > 0.5 * problem.fwhm_of(c):
            continue  # only a line on a detected peak can make the element
        hw = 0.6 * problem.fwhm_of(c)
        win = problem.mask & (np.abs(problem.energy - c) <= hw)
        if win.sum() < 1:
            continue
        peak = float((problem.s - continuum_before)[win].sum())
        resid = peak - float(model_before[win].sum())
        noise = float(np.sqrt(np.maximum(problem.s[win], 1.0).sum()))
        gained = float((model_after - model_before)[win].sum())
        ok = resid >= min_snr * noise and resid >= MIN_SHARE * max(peak, 0.0) and gained >= min_snr * noise
        if ok and c < LOCAL_TEST_BELOW:
            # below ~1.5 keV the clipped continuum is unreliable (it cuts deep into the continuum's rounded
            # maximum, leaving humps the width of several lines): the line must also stand above the counts on
            # either side of it, once the other elements' lines are taken out
            excess, local_noise = local_excess(problem, c, model_before)
            if excess < min_snr * local_noise:
                local = (f"{el} {n}", excess / local_noise, c)
                best = local if best is None or best[1] < local[1] else best
                continue
        if ok:
            return ""
        if best is None or resid / noise > best[1]:
            best = (f"{el} {n}", resid / noise, c)
    if best is None:
        return "none of its strong lines (weight >= 0.3) sits on a detected peak"
    return (f"no strong line on a peak of its own: at {best[0]} ({best[2] / 1000:.2f} keV) the other elements "
            f"leave {max(best[1], 0):.1f}σ unexplained" + (" above the counts on either side" if best[2] <
                                                           LOCAL_TEST_BELOW else ""))
