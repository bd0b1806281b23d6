"""The engine of :func:`napari_cryomat.core.eds.identify_elements` (private; arguments are checked
there).

Each element is one set of columns of a linear model of the spectrum: one column per line
family (K, L, M; a family without Kα/Lα/Mα, such as Sn or Ce M, scaled by its strongest line) holding
every line of the family at xraylib's relative weights, as Gaussians of the detector's width (Fiori
scaling from the FWHM at Mn Kα); a family whose lines lie where absorption differs between them (L of the 3d
metals, M of the lanthanides) gets a second column with its lines absorbed as exp(−(1 keV/E)³), so that their
non-negative mixture lets the ratios tilt as the specimen and window tilt them. The continuum is a few smooth
physical columns fitted with the lines (Kramers × absorption × detector, :mod:`._eds_continuum`). Three more columns model detector
artefacts from the spectrum itself: pile-up (the net spectrum convolved with itself: sum peaks such
as Al Kα + Al Kα at 2.97 keV; low-energy pulses in a column of their own) and Si escape (the net
spectrum 1.74 keV lower), their amplitudes bounded by what a detector does (:mod:`._eds_artefacts`).
The fit is non-negative least squares weighted by the Poisson noise.

Candidates: elements with a strong line on a detected peak. Selection: forward (each step adds the
element that lowers χ² most — a likelihood-ratio test on the joint fit — if it adds >= ``min_snr``
σ, its families are consistent — a family strong enough to be seen is not missing; a low-energy
family that contradicts the others is left out as absorbed — and one of its lines stands on a peak
of its own: :mod:`._eds_checks`; when a runner-up on the same peak lowers χ² nearly as much, the lines of the
step's choice that the runner-up does not share decide, each with its line width free: :mod:`._eds_pairs`), then backward
elimination: an element that adds < ``min_snr`` σ once the others are fitted is dropped; then a chosen element is
replaced by a rival with a line on its principal line that fits >= ``min_snr`` σ better in its place, beside which it
is redundant (:mod:`._eds_rivals`: Ag for a Th that held Ag Lα), and elements whose lines are shoulders of bigger
peaks are looked for in the fit's residual (:mod:`._eds_shoulder`). A family
member is therefore never taken for another element: Pt M2N4 at 2.70 keV is already in the Pt M
column, so Rh gains nothing. A global energy offset and the resolution scale are fitted from the two
most significant elements with a principal line above 1 keV.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from napari_cryomat.core import _eds_physics as phys
from napari_cryomat.core._eds_artefacts import artefact_columns, bounded_nnls, si_fluorescence_note
from napari_cryomat.core._eds_checks import CONSISTENT_MIN_ENERGY, family_check, peak_check, z_of
from napari_cryomat.core._eds_continuum import continuum_columns, smooth_absorber
from napari_cryomat.core._eds_pairs import contest
from napari_cryomat.core._eds_regions import add_from_regions
from napari_cryomat.core._eds_rivals import replace_stand_ins
from napari_cryomat.core._eds_shoulder import WEIGHT_ERROR, add_shoulders
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress

_MIN_LINE_WEIGHT = 0.01
_ROUND_SHARE = 0.8  # forward_select's progress: what is left of its bar after each round (see there)
_CALIBRATION_MIN_ENERGY = 1000.0  # lines that fix the detector's offset lie above this
_WIDTH_RANGE = (0.75, 1.3)  # the detector's real FWHM / the given one, searched by best_width
# Kβ/Kα ratios are known far better than L and M ratios (theory and measurements agree to ~5-10 %); counted as
# 20 % the misfit of Cr Kβ hid Mn Kα beside it (session-2 generator seed 14: 45 % of Cr Kβ's counts)
_K_WEIGHT_ERROR = 0.1
# the chosen elements' lines that can share a merged peak with a new element's line: weight >= 0.1 (Pb M5O3, 1 %
# of Pb Mα, holds no share worth splitting)
_APART_LINE_WEIGHT = 0.1


@dataclass
class Fit:
    """What the engine found (converted to :class:`eds.Identification` by the caller)."""

    elements: list[str]
    significance: dict[str, float]
    reasons: dict[str, str]
    families: dict[str, dict[str, float]]  # element -> family -> fitted counts of its principal line
    shift: float
    artefacts: dict[str, float]
    model: np.ndarray
    continuum: np.ndarray  # the fitted continuum, counts per channel
    labels: dict[int, list[str]] = field(default_factory=dict)


class _Problem:
    """The spectrum, its noise and the columns of every candidate at a calibration shift."""

    def __init__(self, s, energy, fw, net, bg, mask, fwhm_of, beam_kev):
        self.s, self.energy, self.fw, self.net, self.bg, self.mask = s, energy, fw, net, bg, mask
        self.fwhm_of = fwhm_of
        self.beam_kev = beam_kev
        self.de = float(energy[1] - energy[0])
        pos = np.maximum(net, 0.0)
        self.weight = 1.0 / np.sqrt(np.maximum(s, 1.0))  # Poisson
        # detector artefacts made from the spectrum itself, with the largest amplitude a detector gives them
        self.artefacts, self.artefact_caps = artefact_columns(energy, pos, mask)
        # the continuum is fitted with the lines: a few smooth physical columns (:mod:`._eds_continuum`)
        self.continuum = continuum_columns(energy, beam_kev, mask)
        self._cache = {}  # never emptied: _fit_set's memo names column sets by these arrays' ids
        self.solved = {}  # _fit_set's memo: ids of the columns -> (amplitudes, χ²)
        self.own_ids = {id(c) for c in [*self.continuum, *self.artefacts.values()]}  # (the element columns: _cache)
        self._lines = {}
        self.width_scale = 1.0  # fitted: the detector's real FWHM / the given one
        # (element, family) pairs left out of the fit: low-energy families whose fitted counts contradict
        # the element's higher families (absorbed lines on a poorly known continuum)
        self.excluded: set[tuple[str, str]] = set()
        self.calibrated = False  # the offset and width are fitted from the elements found (run's calibration loop)

    def lines(self, el):
        """(name, energy eV, weight) of the element's lines within the spectrum (cached: asked some 4000 times)."""
        if el not in self._lines:
            self._lines[el] = tuple((n, e, w) for n, e, w, _s in phys.grouped_lines(z_of(el), self.beam_kev)
                                    if w >= _MIN_LINE_WEIGHT and self.energy[0] - 2 * self.fwhm_of(e) <= e <= self.energy[-1])
        return self._lines[el]

    def columns(self, el, shift):
        """{family: column} of an element, the principal line's counts = 1 per unit amplitude
        (cached per element and shift)."""
        key = (el, round(float(shift), 3), round(self.width_scale, 4))
        if key not in self._cache:
            self._cache[key] = self._columns(el, shift)
        return {f: c for f, c in self._cache[key].items() if (el, f.rstrip(_ABSORBED)) not in self.excluded}

    def _columns(self, el, shift):
        z = z_of(el)
        kept = {n for n, _e, _w in self.lines(el)}
        strengths = {n: s for n, _e, _w, s in phys.grouped_lines(z, self.beam_kev)}
        out = {}
        for fam, principal in phys.family_principals(z, self.beam_kev).items():
            if principal not in kept:
                continue
            # a family without its principal line (M of In, Sn, the light lanthanides: Mζ, Mγ) still gets a column,
            # its strongest line's counts as amplitude, so its lines are not taken for N, O or F Kα; it cannot make
            # the element (see _eds_checks.peak_check) nor contradict its other families (family_check)
            col, absorbed = np.zeros_like(self.energy), np.zeros_like(self.energy)
            lines = [t for t in phys.transitions(z, self.beam_kev) if t.name in kept and t.name[0] == fam]
            e_p = {n: e for n, e, _w in self.lines(el)}.get(principal, max(t.energy for t in lines))
            for t in lines:  # each transition at its own energy
                col += self._gauss(t.energy + shift, t.strength / strengths[principal])
                absorbed += self._gauss(t.energy + shift, t.strength / strengths[principal]
                                        * _transmission(t.energy) / _transmission(e_p))
            if np.any(col[self.mask] > 1e-3 * col.max()):
                out[fam] = col
                # a family spread over energies absorbed differently (L of the 3d metals, M of the lanthanides: the
                # specimen and the window absorb its lower lines more): a second, absorbed column; their
                # non-negative mixture lets the lines' ratios tilt the way absorption tilts them
                energies = [t.energy for t in lines if t.energy >= self.energy[self.mask][0]]
                if energies and _transmission(min(energies)) < 0.9 * _transmission(max(energies)):
                    out[fam + _ABSORBED] = absorbed
        return out

    def _gauss(self, centre, area):
        f = self.fwhm_of(centre) * self.width_scale
        sig = f / 2.3548
        return area * self.de * np.exp(-0.5 * ((self.energy - centre) / sig) ** 2) / (sig * np.sqrt(2 * np.pi))

    def solve(self, cols, upper=None):
        """Weighted NNLS of the net spectrum on ``cols`` (list of arrays), amplitudes at most ``upper`` (one
        per column, inf for none): (amplitudes, χ², model)."""
        x, chi2, _design, model = self._solve(cols, upper)
        return x, chi2, model

    def _solve(self, cols, upper=None):
        """:meth:`solve`, with the design matrix (channels × columns, unweighted) as the third item."""
        m, w = self.mask, self.weight[self.mask]
        b = self.s[m] * w
        if not cols:
            return np.zeros(0), float(b @ b), np.zeros((self.s.size, 0)), np.zeros_like(self.s)
        design = np.stack(cols, axis=1)  # stacked once: the weighted rows and the model both come from it
        a = design[m] * w[:, None]
        upper = np.full(len(cols), np.inf) if upper is None else np.asarray(upper, dtype=np.float64)
        x = bounded_nnls(a, b, upper)
        r = b - a @ x
        return x, float(r @ r), design, design @ x


_ABSORBED = "*"  # key suffix of a family's absorbed column
_ABSORBER_DEPTH_1KEV = 1.0  # optical depth at 1 keV of the absorbed column (μ ∝ E⁻³, as the continuum's absorber)


def _transmission(energy_ev):
    return float(smooth_absorber(max(energy_ev, 100.0), _ABSORBER_DEPTH_1KEV))


def _strength(el, name, beam_kev):
    return {n: s for n, _e, _w, s in phys.grouped_lines(z_of(el), beam_kev)}[name]


def candidate_elements(problem: _Problem, peaks_e: np.ndarray, pool, max_shift: float) -> list[str]:
    """Elements with a line of weight >= 0.2 on a candidate peak (within half a FWHM + the shift)."""
    out = []
    for el in pool:
        for n, e, w in problem.lines(el):
            if w < 0.2 or peaks_e.size == 0:
                continue
            tol = 0.5 * problem.fwhm_of(e) + max_shift
            if np.min(np.abs(peaks_e - e)) <= tol:
                out.append(el)
                break
    return out


def _fit_set(problem, chosen, shift):
    """Columns and fit of the artefacts plus the chosen elements' families."""
    cols, owners, upper = list(problem.continuum), [("continuum", None)] * len(problem.continuum), \
        [np.inf] * len(problem.continuum)
    for name, c in problem.artefacts.items():
        cols.append(c)
        owners.append((name, ""))
        upper.append(problem.artefact_caps[name])
    for el in chosen:
        for fam, c in problem.columns(el, shift).items():
            cols.append(c)
            owners.append((el, fam.rstrip(_ABSORBED)))
            upper.append(np.inf)
    # the selections fit the same set again and again (the last selection repeats the calibrated one; the
    # significance, shoulder and region passes refit the chosen set): each set is solved once. Its columns are then
    # the problem's own arrays, alive as long as it is, so their ids name the set; the shoulder and region tests'
    # free columns are made anew each time (a freed array's id is reused), so a set holding them is not remembered.
    key = tuple(map(id, cols)) if all(id(c) in problem.own_ids for c in problem.artefacts.values()) else None
    if key in problem.solved:
        x, chi2 = problem.solved[key][0].copy(), problem.solved[key][1]
        design = np.stack(cols, axis=1)
        model = design @ x
    else:
        x, chi2, design, model = problem._solve(cols, upper)
        if key is not None:
            problem.solved[key] = x.copy(), chi2
    n = len(problem.continuum)
    continuum = design[:, :n] @ x[:n] if n else np.zeros_like(model)
    return cols, owners, x, chi2, model - continuum, continuum


def _significance(problem, chosen, shift, final=None):
    """σ each chosen element adds beyond all the others: sqrt of the χ² rise when it is left out."""
    final = final or _fit_set(problem, chosen, shift)
    return {el: float(np.sqrt(max(_fit_set(problem, [c for c in chosen if c != el], shift)[3] - final[3], 0.0)))
            for el in chosen}


def _try_add(problem, el, chosen, chi2, model, shift, min_snr, continuum, line_error=None):
    """(accepted, σ gained, fit or rejection) of adding ``el``; a low-energy family that contradicts the
    element's higher families is left out (absorbed, or soaking up continuum) and the fit redone."""
    for _attempt in range(3):
        cols, owners, x, c2, m, _cont = fit = _fit_set(problem, chosen + [el], shift)
        s = float(np.sqrt(max(chi2 - c2, 0.0)))
        if s < min_snr:
            return False, s, ("weak", s)
        why, fam = family_check(problem, el, owners, x)
        if why and fam and _principal_energy(problem, el, fam) < CONSISTENT_MIN_ENERGY \
                and len({f.rstrip(_ABSORBED) for f in problem.columns(el, shift)}) > 1:
            problem.excluded.add((el, fam))
            continue
        if why:
            return False, s, ("family", why)
        # an element's own share of a merged peak counts once the detector is calibrated: before, its lines may sit
        # 40 eV off, as far as S Kα from Pb Mα, and the split between the two free families means nothing
        own = sum((xi * col for (o, _f), xi, col in zip(owners, x, cols) if o == el), np.zeros_like(m)) \
            if problem.calibrated else None
        error = line_error
        if line_error is not None:
            # the others' secondary lines as fitted beside el: fitted without it, a family pinned only by weak or
            # absorbed principal lines swells with el's counts (La M's lines at 1.0-1.2 keV take Na Kα's), and 20 %
            # of that swollen share would hide el
            error = np.minimum(line_error, _secondary_error(problem, fit, shift, skip=el))
        # where the chosen elements' lines lie (a line beside one of them is judged by its own share only when apart)
        others_e = np.array([e + shift for o in chosen for _n, e, w in problem.lines(o) if w >= _APART_LINE_WEIGHT])
        why = peak_check(problem, el, shift, model, m, min_snr, continuum, own, error, others_e)
        if why:
            return False, s, ("peak", why)
        return True, s, fit
    return False, 0.0, ("family", "its families contradict each other")


def _secondary_error(problem, fit, shift, skip=None):
    """Per channel, how far the fit's secondary lines (a family's lines beside its principal one) may be off: the L
    and M weights to ~20 % (WEIGHT_ERROR, as for shoulders), Kβ/Kα to ~10 % (_K_WEIGHT_ERROR)."""
    cols, owners, x = fit[0], fit[1], fit[2]
    err = np.zeros_like(fit[4])
    for (el, fam), amp, col in zip(owners, x, cols):
        if not fam or amp <= 0 or el == skip:
            continue  # the continuum and the artefacts (and the element being tried)
        principal = problem._gauss(_principal_energy(problem, el, fam) + shift, amp)
        err += (_K_WEIGHT_ERROR if fam == "K" else WEIGHT_ERROR) * np.maximum(amp * col - principal, 0.0)
    return err


def _highest_principal(problem, el):
    """Energy (eV) of the element's highest principal line (Kα, Lα or Mα) with a column in the fit."""
    fams = problem.columns(el, 0.0)
    return max((_principal_energy(problem, el, fam.rstrip(_ABSORBED)) for fam in fams), default=0.0)


def _principal_energy(problem, el, fam):
    name = phys.family_principals(z_of(el), problem.beam_kev)[fam]
    return {n: e for n, e, _w, _s in phys.grouped_lines(z_of(el), problem.beam_kev)}[name]


def forward_select(problem, candidates, shift, min_snr, progress: ProgressCallback = None):
    """Forward selection (each step adds the element that lowers χ² most, if it adds >= min_snr σ and is
    self-consistent, then re-fits all), then backward elimination: while the weakest chosen element
    adds < min_snr σ beyond all the others (its lines are explained by elements chosen after it), it
    is dropped and the rest re-fitted.

    ``progress``: the number of rounds is not known ahead (one per element added, 10 on a Bruker map of 9
    elements), so round k covers 1 - r^k to 1 - r^(k+1) of it (``_ROUND_SHARE`` r = 0.8: the 10th round
    still moves the bar by 2 %; halves left rounds 5-10 in the last 3 %): its first half one step per
    candidate fitted, its second half one step per candidate checked (pairs, families: as slow)."""
    chosen, rejected = [], {}
    before = _fit_set(problem, chosen, shift)
    _cols, _owners, _x, chi2, model, continuum = before
    for round_ in itertools.count():
        def step(done: float, round_=round_) -> None:  # ``done``: the fraction of this round
            report(progress, 1.0 - _ROUND_SHARE**round_ * (1.0 - (1.0 - _ROUND_SHARE) * done))

        trials = []
        tried = [el for el in candidates if not (el in chosen or el in rejected and rejected[el][0] == "family")]
        for i, el in enumerate(tried):
            c2 = _fit_set(problem, chosen + [el], shift)[3]
            trials.append((chi2 - c2, el))
            step(0.5 * (i + 1) / len(tried))
        trials.sort(key=lambda t: -t[0])
        added = False
        line_error = _secondary_error(problem, before, shift)
        for checked, (gain, el) in enumerate(trials):
            step(0.5 + 0.5 * checked / len(trials))
            if gain < min_snr**2:
                rejected[el] = ("weak", float(np.sqrt(max(gain, 0.0))))
                continue
            # a runner-up on the same peak, nearly as good: the lines the two do not share decide (_eds_pairs)
            winner, note = contest(problem, _fit_set, chosen, el, trials, shift, min_snr)
            ok = False
            if winner != el:
                ok, s, info = _try_add(problem, winner, chosen, chi2, model, shift, min_snr, continuum, line_error)
                if ok:
                    rejected[el], el = ("pair", note), winner
                else:
                    rejected[winner] = info
            if not ok:
                ok, s, info = _try_add(problem, el, chosen, chi2, model, shift, min_snr, continuum, line_error)
            if not ok:
                rejected[el] = info
                continue
            chosen.append(el)
            rejected.pop(el, None)
            before = info
            chi2, model, continuum = info[3], info[4], info[5]
            added = True
            break
        if not added:
            break
    final = _fit_set(problem, chosen, shift)
    sig = _significance(problem, chosen, shift, final)
    while chosen and min(sig.values()) < min_snr:
        weakest = min(chosen, key=lambda el: sig[el])
        chosen.remove(weakest)
        rejected[weakest] = ("backward", sig[weakest])
        final = _fit_set(problem, chosen, shift)
        sig = _significance(problem, chosen, shift, final)
    return chosen, sig, rejected, final


def best_shift(problem, chosen, max_shift):
    """Energy offset (eV) of the detector calibration that fits the chosen elements best."""
    if not chosen or max_shift <= 0:
        return 0.0
    step = max(1.0, min(problem.de / 4, max_shift / 10))
    grid = np.arange(-max_shift, max_shift + 0.5 * step, step)
    chi = [_fit_set(problem, chosen, d)[3] for d in grid]
    k = int(np.argmin(chi))
    if 0 < k < grid.size - 1:  # parabola through the minimum
        c0, c1, c2 = chi[k - 1], chi[k], chi[k + 1]
        den = c0 - 2 * c1 + c2
        if den > 0:
            return float(grid[k] + 0.5 * step * (c0 - c2) / den)
    return float(grid[k])


def best_width(problem, chosen, shift):
    """Scale of the detector resolution (0.75–1.3 × the given FWHM) that fits the chosen elements best."""
    if not chosen:
        return 1.0
    grid = np.arange(_WIDTH_RANGE[0], _WIDTH_RANGE[1] + 0.001, 0.05)
    chi = []
    for g in grid:
        problem.width_scale = float(g)
        chi.append(_fit_set(problem, chosen, shift)[3])
    problem.width_scale = float(grid[int(np.argmin(chi))])
    return problem.width_scale


def explain(problem, el, chosen, shift):
    """Which chosen elements' lines sit on ``el``'s strongest lines (for a rejection reason)."""
    own = sorted(problem.lines(el), key=lambda t: -t[2])[:2]
    parts = []
    for n, e, _w in own:
        near = []
        for other in chosen:
            for on, oe, ow in problem.lines(other):
                if ow >= 0.02 and abs(oe - e) <= 0.5 * problem.fwhm_of(e):
                    near.append(f"{other} {on}")
        if near:
            parts.append(f"{el} {n} ({e / 1000:.2f} keV) lies on {', '.join(near[:3])}")
        else:
            parts.append(f"{el} {n} ({e / 1000:.2f} keV) has no peak of its own")
    return "; ".join(parts)


def run(s, energy, *, fwhm_of, net, bg, mask, peaks_e, pool, min_snr, beam_kev, max_shift,
        progress: ProgressCallback = None) -> Fit:
    """Identification: candidates, selection, calibration shift, reselection, reasons. ``progress``: the four
    selections take a fifth each (2-3 s apiece on a 2048-channel Bruker map), the checks after them the last."""
    fw = fwhm_of(np.clip(energy, 100.0, None))
    problem = _Problem(s, energy, fw, net, bg, mask, fwhm_of, beam_kev)
    problem.peaks_e = np.asarray(peaks_e, dtype=np.float64)
    cands = candidate_elements(problem, peaks_e, pool, max_shift)
    chosen, _sig, _rej, _final = forward_select(problem, cands, 0.0, min_snr, sub_progress(progress, 0.0, 0.2))
    for calibration in range(2):  # calibration (offset, resolution) of the detector from the elements found
        # the two most significant elements fix the offset (a weak, wrongly chosen one must not drag it), from
        # lines above 1 keV where there are: below, lines sit on the continuum's steep rise and a detector's
        # calibration is not linear (TM002: Mn + C instead of Mn + Zr gives −8 eV instead of −4, and Br Lα
        # then fits the Al Kα peak better than Al)
        ranked = sorted(chosen, key=lambda el: -_sig[el])
        strongest = ([el for el in ranked if _highest_principal(problem, el) >= _CALIBRATION_MIN_ENERGY] or ranked)[:2]
        shift = best_shift(problem, strongest, max_shift)
        width = best_width(problem, strongest, shift)
        shift = best_shift(problem, strongest, max_shift)
        # an offset or width at the edge of its range is no calibration but a wrong set pulling at it (new-generator
        # 14024: Pt + Y, with Nb missing, give +40 eV and 1.3x)
        problem.calibrated = abs(shift) < max_shift and _WIDTH_RANGE[0] < width < _WIDTH_RANGE[1]
        chosen, _sig, _rej, _final = forward_select(problem, cands, shift, min_snr,
                                                    sub_progress(progress, 0.2 * (calibration + 1), 0.2 * (calibration + 2)))
    chosen, sig, rejected, final = forward_select(problem, cands, shift, min_snr, sub_progress(progress, 0.6, 0.8))
    # an element chosen early may hold a peak whose true owner's other lines decide against it (Th Mα for Ag Lα)
    chosen, rival_reasons, final = replace_stand_ins(problem, _fit_set, _significance, pool, chosen, final, shift,
                                                     min_snr, sig)
    report(progress, 0.87)
    # lines on a shoulder of a much bigger peak made no peak of their own: candidates from the fit's residual
    chosen, sig, shoulder_reasons, final = add_shoulders(problem, _fit_set, _significance, pool, chosen, final,
                                                         shift, min_snr)
    report(progress, 0.93)
    # lines that made neither a detected peak nor a residual peak: candidates where the fit still falls short
    replaced = {el for el in rival_reasons if el not in chosen}
    chosen, sig, region_reasons, final = add_from_regions(problem, _fit_set, _significance, pool, chosen, final, shift,
                                                          min_snr, set(shoulder_reasons) | replaced)
    report(progress, 1.0)
    cols, owners, x, _chi2, model, continuum = final
    families: dict[str, dict[str, float]] = {}
    artefacts = {}
    for (o, fam), amp, c in zip(owners, x, cols):
        if o == "continuum":
            continue
        if fam:
            families.setdefault(o, {})[fam] = families.get(o, {}).get(fam, 0.0) + float(amp)
        else:
            artefacts[o] = float(amp * c.sum())
    reasons = {}
    for el in chosen:
        fams = families.get(el, {})
        names = phys.family_principals(z_of(el), beam_kev)
        fam_text = ", ".join(f"{f} ({a:.0f} counts in {names[f]})" for f, a in fams.items() if a > 0)
        reasons[el] = f"chosen: {sig[el]:.1f}σ beyond the other elements; families {fam_text}"
        if el == "Si":
            reasons[el] += si_fluorescence_note(energy, s, mask, fams.get("K", 0.0))
    for el in cands:
        if el in chosen:
            continue
        kind, info = rejected.get(el, ("weak", 0.0))
        if kind in ("family", "peak", "pair"):
            reasons[el] = f"rejected: {info}"
        elif kind == "backward":
            reasons[el] = (f"rejected: chosen first, then dropped: with {', '.join(chosen) or 'the continuum'} "
                           f"fitted it adds only {info:.1f}σ (< {min_snr:g}σ): {explain(problem, el, chosen, shift)}")
        else:
            reasons[el] = (f"rejected: adds only {info:.1f}σ (< {min_snr:g}σ) to "
                           f"{', '.join(chosen) or 'the continuum'}: {explain(problem, el, chosen, shift)}")
    for el, why in rival_reasons.items():
        reasons[el] = reasons[el] + "; " + why if el in chosen else why
    for el, why in shoulder_reasons.items():
        reasons[el] = reasons[el] + "; " + why if el in chosen or el in rival_reasons else why
    for el, why in region_reasons.items():
        reasons[el] = reasons[el] + "; " + why if el in reasons else why
    order = sorted(chosen, key=lambda el: -sig[el])
    fit = Fit(order, sig, reasons, families, shift, artefacts, model, continuum)
    fit.width_scale = problem.width_scale
    return fit
