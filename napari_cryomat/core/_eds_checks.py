"""The two tests an element must pass, besides the σ it adds to the joint fit, before identification chooses it
(private; used by :mod:`._eds_identify`).

- :func:`family_check`: its families agree: a family strong enough to be seen is not missing (Pt L at 9.4 keV
  must come with Pt M's 2 keV counts).
- :func:`peak_check`: one of its strong lines sits on a detected peak that the elements chosen before it leave
  largely unexplained (in ±0.6 FWHM: >= ``min_snr`` × √(all counts there) and >= 40 % of the peak), so that it is
  not chosen for soaking up a misfit spread over the spectrum or a share of another element's peak; below 1.5 keV
  the line must also stand above the counts on either side of it (``local_excess``). The noise counts how far the
  others' secondary lines may be off (their weights) beside √counts. At a principal line 0.4 FWHM
  beside a bigger family's line (S Kα beside Pb Mα), where the others leave >= 2 × ``min_snr`` σ, its own share of
  the peak in the joint fit (>= 20 %) stands for the residual's share.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core import _eds_physics as phys
from napari_cryomat.core._eds_artefacts import local_excess

CONSISTENT_MIN_ENERGY = 1500.0  # families above this energy are barely absorbed: must show up
LOCAL_TEST_BELOW = 1500.0  # lines below this also need a local excess over side bands
MIN_SHARE = 0.4  # what the others leave unexplained must be at least this share of the peak
# or, at a principal line, its own share in the joint fit, when what the others leave is at least this many times
# min_snr σ: how two free families split a merged peak bends with line shape and weights (±20 %), so the residual must
# be a clear line, not a misfit (seen: S beside Pb Mα 24-46σ; a false Sr Lα at 6σ on new-generator 26028)
OWN_SHARE_SNR = 2.0
# the share of the peak its own line must hold on that path: the joint fit splits a merged peak by the lines' positions
# and widths, known far better than a residual's share (seen: S Kα at 23 % of the S Kα + Pb Mα peak, 1690 of 7420
# counts drawn, own share 23 % at 15.8σ on new-generator 9029; a residual's 40 % rejected it)
OWN_MIN_SHARE = 0.2
# ... when the others' lines lie at least this many FWHM from it: lines closer than that split a merged peak by noise
# and line shape, not by position (a false Th: Mα 12 eV, 0.14 FWHM, above Ag Lα, 20-40 % own share on new-generator
# 31013; S Kα lies 0.4 FWHM below Pb Mα). Below MIN_SHARE only: a larger own share was enough before
OWN_MIN_APART = 0.25


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


def peak_check(problem, el, shift, model_before, model_after, min_snr, continuum_before, own_after=None,
               line_error=None, others_e=None):
    """'' when one of ``el``'s strong lines sits on a peak that the other elements leave largely
    unexplained (residual >= min_snr σ and >= 40 % of the peak), else the reason it does not. ``own_after``: ``el``'s
    own lines in the joint fit; where the others fitted alone leave >= ``OWN_SHARE_SNR`` × min_snr σ at one of its
    principal lines (Kα, Lα, Mα), its own share of the peak there in the joint fit (>= ``OWN_MIN_SHARE``) may stand
    for the residual's share: a principal line 0.4 FWHM beside a bigger family's line (S Kα beside Pb Mα) leaves a
    small residual, since that family's free amplitude takes the merged peak until ``el`` is fitted. Not a secondary line: Br Lβ1 on the
    high side of TM002's Al Kα peak (its Lα on the peak's centre, which Al explains) took 40 % of it.
    ``line_error``: per channel, how far the others' fitted lines may be off (their secondary lines' weights: Kβ/Kα to
    ~10 %, L and M ratios to ~20 %), counted as noise beside the counting noise in all three tests: a residual or a
    gain that small beside a secondary line is no line of its own (La Ll's 11 % misfit at 4.12 keV is not Xe Lα; Re Mβ
    beside Pb Mζ). ``others_e``: energies (eV, shifted) of the chosen elements' lines; an own share below 40 % counts
    only where none lies within ``OWN_MIN_APART`` FWHM of the line."""
    best = None
    principals = {p for p in phys.family_principals(z_of(el), problem.beam_kev).values() if p in ("Ka", "La", "Ma")}
    genuine = {p[0] for p in principals}
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
        misfit = float(line_error[win].sum()) if line_error is not None else 0.0
        noise = float(np.sqrt(np.maximum(problem.s[win], 1.0).sum() + misfit**2))
        gained = float((model_after - model_before)[win].sum())
        ok = resid >= min_snr * noise and resid >= MIN_SHARE * max(peak, 0.0) and gained >= min_snr * noise
        if not ok and own_after is not None and n in principals and resid >= OWN_SHARE_SNR * min_snr * noise:
            own = float(own_after[win].sum())
            apart = others_e is None or others_e.size == 0 or \
                np.min(np.abs(others_e - c)) >= OWN_MIN_APART * problem.fwhm_of(c)
            share = OWN_MIN_SHARE if apart else MIN_SHARE
            ok = own >= min_snr * noise and own >= share * max(peak, 0.0)
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
