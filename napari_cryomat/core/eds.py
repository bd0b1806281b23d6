"""EDS: X-ray line families, windows, net-count maps, element identification, quantification.

Split out of :mod:`napari_cryomat.core.spectral`, whose conventions hold here too: energies in eV,
spectrum images ``(Y, X, E)``, windows ``(start, stop)`` in eV, ``progress`` a callable given the
fraction done. Line energies and weights come from :mod:`xraylib`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import nonnegative, number, positive, real_array
from napari_cryomat.core.spectral import (
    _MAX_EV,
    _MAX_FWHM,
    ElementMap,
    _check_si_memory,
    _energy_range,
    _nearest_listing,
    _parse_elements_arg,
    _z,
    check_counts,
    check_energy_axis,
    check_spectrum_image,
    parse_elements,
    window_slice,
)

__all__ = [
    "Line",
    "Identification",
    "eds_lines",
    "choose_line",
    "eds_fwhm",
    "eds_windows",
    "eds_net_map",
    "eds_maps",
    "identify_elements",
    "snip_background",
    "cliff_lorimer",
]




@dataclass(frozen=True)
class Line:
    """An X-ray line: ``element``, ``name`` ("Ka", "La", ...), ``energy`` (eV), ``weight``
    (intensity relative to the family's main line, from xraylib fluorescence cross sections)."""

    element: str
    name: str
    energy: float
    weight: float

    @property
    def label(self) -> str:
        return f"{self.element} {self.name}"


# (name, xraylib line, family, family's principal line)
_EDS_LINES = (
    ("Ka", "KA_LINE", "K", "KA_LINE"),
    ("Kb", "KB_LINE", "K", "KA_LINE"),
    ("La", "LA_LINE", "L", "LA_LINE"),
    ("Lb1", "LB1_LINE", "L", "LA_LINE"),
    ("Ma", "MA1_LINE", "M", "MA1_LINE"),
    ("Mb", "MB_LINE", "M", "MA1_LINE"),
)
_EXCITATION_KEV = 100.0  # excitation energy used only to weigh lines within a family


def eds_lines(element: str, *, energy_range: tuple[float, float] | None = None) -> list[Line]:
    """X-ray lines (Ka, Kb, La, Lb1, Ma, Mb) of ``element``, energies from ``xraylib.LineEnergy``.

    Weights are ``xraylib.CS_FluorLine_Kissel`` relative to the family's main line (Kα, Lα,
    Mα). Lines below 100 eV are left out (not detectable by EDS).

    Parameters
    ----------
    element : str
        Chemical symbol.
    energy_range : (float, float), optional
        Keep lines inside this range, eV.
    """
    _z(element)
    energy_range = _energy_range(energy_range)
    lines = _all_eds_lines(element.split("_")[0])
    if energy_range is None:
        return list(lines)
    return [ln for ln in lines if energy_range[0] <= ln.energy <= energy_range[1]]


@functools.lru_cache(maxsize=256)
def _all_eds_lines(element: str) -> tuple[Line, ...]:
    """All lines of one element (cached: xraylib is called once per element)."""
    import xraylib

    z = _z(element)
    sym = element.split("_")[0]
    out = []
    for name, line, _family, main in _EDS_LINES:
        try:
            e = 1000.0 * xraylib.LineEnergy(z, getattr(xraylib, line))
        except ValueError:
            continue
        if e < 100.0:
            continue
        try:
            w_main = xraylib.CS_FluorLine_Kissel(z, getattr(xraylib, main), _EXCITATION_KEV)
            w = xraylib.CS_FluorLine_Kissel(z, getattr(xraylib, line), _EXCITATION_KEV) / w_main
        except (ValueError, ZeroDivisionError):
            w = 1.0 if line == main else 0.1
        out.append(Line(sym, name, e, float(w)))
    return tuple(sorted(out, key=lambda ln: ln.energy))


def choose_line(element: str, *, energy: np.ndarray, fwhm_mn_ka: float = 130.0) -> Line:
    """The line used to map ``element``: the highest-energy family (K, then L, then M) whose
    main line, with its background windows, fits in the recorded range.

    "Pt_Ma" / "Fe_Kb" choose a given line. Raises ValueError listing nearest lines when
    none fits.
    """
    _z(element)
    energy = check_energy_axis(energy)
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    sym, _, want = element.partition("_")
    lines = eds_lines(sym)
    e_lo, e_hi = energy[0], energy[-1]

    def fits(ln: Line) -> bool:
        w = eds_windows(ln.energy, fwhm_mn_ka=fwhm_mn_ka)
        return w["background_low"][0] >= e_lo and w["background_high"][1] <= e_hi

    if want:
        cand = [ln for ln in lines if ln.name.lower() == want.lower() or (len(want) == 1 and ln.name[0].lower() == want.lower() and ln.weight == 1.0)]
    else:
        cand = [ln for ln in lines if ln.name in ("Ka", "La", "Ma")]
        cand = sorted(cand, key=lambda ln: -ln.energy)
    for ln in cand:
        if fits(ln):
            return ln
    raise ValueError(
        f"{sym} has no X-ray line{(' ' + want) if want else ''} in the recorded range "
        f"{e_lo / 1000:.2f}–{e_hi / 1000:.2f} keV (with room for background windows). Nearest lines: "
        f"{_nearest_listing(lines, energy, lambda ln: ln.energy)}."
    )


def eds_fwhm(line_energy, *, fwhm_mn_ka: float = 130.0):
    """Detector resolution (FWHM, eV) at ``line_energy`` (eV, scalar or array) from the FWHM
    at Mn Kα.

    Fiori & Newbury scaling: ``FWHM(E)² = FWHM(MnKα)² + 2.5 (E − E(MnKα))`` with energies in eV
    and E(MnKα) from xraylib.
    """
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    if np.ndim(line_energy):
        e = real_array(line_energy, "line_energy", dtype=np.float64, min_size=0)
        if np.any(np.abs(e) > _MAX_EV):
            raise ValueError(f"line_energy must lie within ±{_MAX_EV:g} eV.")
    else:
        e = np.float64(number(line_energy, "line_energy", low=-_MAX_EV, high=_MAX_EV, unit="eV"))
    f = np.sqrt(np.maximum(fwhm_mn_ka**2 + 2.5 * (e - _mn_ka_energy()), 1.0))
    return float(f) if f.ndim == 0 else f


@functools.cache
def _mn_ka_energy() -> float:
    import xraylib

    return 1000.0 * xraylib.LineEnergy(25, xraylib.KA_LINE)


def eds_windows(
    line_energy: float,
    *,
    fwhm_mn_ka: float = 130.0,
    integration_width: float = 2.0,
    background_offset: float = 2.0,
    background_width: float = 1.0,
) -> dict[str, tuple[float, float]]:
    """Integration and background windows (eV) for an EDS line, in units of the local FWHM.

    Integration: ``line ± integration_width/2 · FWHM``; background: windows of
    ``background_width · FWHM`` starting ``background_offset · FWHM`` from the line on both
    sides (the HyperSpy/exSpy defaults).

    Returns ``{"integration": (lo, hi), "background_low": (lo, hi), "background_high": (lo, hi)}``.
    """
    e = positive(line_energy, "line_energy", unit="eV", high=_MAX_EV)
    integration_width = positive(integration_width, "integration_width", unit="FWHM", high=100)
    background_offset = nonnegative(background_offset, "background_offset", unit="FWHM", high=100)
    background_width = positive(background_width, "background_width", unit="FWHM", high=100)
    f = eds_fwhm(e, fwhm_mn_ka=fwhm_mn_ka)
    return {
        "integration": (e - 0.5 * integration_width * f, e + 0.5 * integration_width * f),
        "background_low": (e - (background_offset + background_width) * f, e - background_offset * f),
        "background_high": (e + background_offset * f, e + (background_offset + background_width) * f),
    }


def eds_net_map(si, *, energy, windows: Mapping[str, Sequence[float]]) -> np.ndarray:
    """Net line counts: counts in the integration window minus a linear background
    interpolated between the means of the two background windows (counts per channel).

    ``windows`` as returned by :func:`eds_windows` (eV). Either background window may be
    omitted (then the other one is used as a flat background). Returns float32 (leading shape).
    """
    if np.iscomplexobj(si):
        raise ValueError("The spectra (si) hold complex numbers; counts must be real.")
    _check_si_memory(si)
    energy = check_energy_axis(energy, np.shape(si)[-1])
    if not isinstance(windows, Mapping) or "integration" not in windows:
        raise ValueError("windows must be a dict with an 'integration' window (and optional background windows), "
                         "as made by eds_windows.")
    isl = window_slice(energy, windows["integration"], what="integration window")
    peak = np.asarray(si[..., isl], dtype=np.float32).sum(axis=-1, dtype=np.float32)
    n = isl.stop - isl.start
    c_int = float(energy[isl].mean())
    means, centres = [], []
    for key in ("background_low", "background_high"):
        w = windows.get(key)
        if w is None:
            continue
        bsl = window_slice(energy, w, what=key.replace("_", " ") + " window")
        means.append(np.asarray(si[..., bsl], dtype=np.float32).mean(axis=-1, dtype=np.float32))
        centres.append(float(energy[bsl].mean()))
    if not means:
        return peak
    if len(means) == 1:
        bg = means[0]
    else:
        t = (c_int - centres[0]) / (centres[1] - centres[0])
        bg = means[0] + (means[1] - means[0]) * np.float32(t)
    return (peak - n * bg).astype(np.float32)


def eds_maps(
    si,
    *,
    energy,
    elements: Sequence[str] | str,
    fwhm_mn_ka: float = 130.0,
    windows: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    progress: ProgressCallback = None,
) -> dict[str, ElementMap]:
    """Net-count EDS maps of several elements.

    Parameters
    ----------
    si : array (Y, X, E)
        EDS spectrum image, counts.
    energy : array (E,)
        Channel energies, eV.
    elements : list of str or str
        "Fe, Pt, Cu"; "Pt_Ma" forces a line.
    fwhm_mn_ka : float
        Detector resolution at Mn Kα, eV (default 130 eV).
    windows : dict, optional
        ``{element: eds_windows(...)-like dict}`` overriding the defaults.
    """
    check_spectrum_image(si)
    energy = check_energy_axis(energy, si.shape[-1])
    check_counts(si, what="spectrum image (si)")
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    elements = _parse_elements_arg(elements)
    windows = dict(windows or {})
    plan = []
    for el in elements:
        ln = choose_line(el, energy=energy, fwhm_mn_ka=fwhm_mn_ka)
        w = windows.get(el) or windows.get(el.split("_")[0]) or eds_windows(ln.energy, fwhm_mn_ka=fwhm_mn_ka)
        for k, v in w.items():
            window_slice(energy, v, what=f"{el} {k.replace('_', ' ')} window")
        plan.append((el, ln, dict(w)))
    out = {}
    report(progress, 0.0)
    for i, (el, ln, w) in enumerate(plan):
        m = eds_net_map(si, energy=energy, windows=w)
        out[el] = ElementMap(element=el, kind="eds", feature=ln.label, energy=ln.energy, data=m, windows=w)
        report(progress, (i + 1) / len(plan))
    return out


def snip_background(spectrum, *, width) -> np.ndarray:
    """Continuum under the peaks of a spectrum by SNIP peak clipping (Ryan et al. 1988).

    ``width`` (channels, scalar or one per channel, e.g. 2 × the local FWHM) is the widest
    clipping half-window; the spectrum is clipped on the LLS scale ``log(log(√(y+1)+1)+1)``
    with half-windows shrinking from ``max(width)`` to 1, each channel only up to its own width.
    """
    y = real_array(spectrum, "spectrum", ndim=1, min_size=3, dtype=np.float64, copies=6)
    n = y.size
    wa = np.asarray(width)
    if wa.dtype == object or np.iscomplexobj(wa) or not np.issubdtype(wa.dtype, np.number) \
            or not np.all(np.isfinite(wa)) or np.any(wa < 1) or wa.ndim > 1 or (wa.ndim == 1 and wa.size != n):
        raise ValueError(
            f"width must be a number of channels >= 1 (one value, or one per channel: {n}); got {width!r}."
        )
    # a half-window wider than half the spectrum clips nothing more: bounding it by the data keeps
    # the loop as short as the spectrum (width=1e9 used to run for hours)
    w = np.minimum(np.broadcast_to(np.round(wa), (n,)), n // 2).astype(int)
    v = np.log(np.log(np.sqrt(np.maximum(y, 0) + 1) + 1) + 1)
    idx = np.arange(n)
    for p in range(int(w.max()), 0, -1):
        ok = (w >= p) & (idx >= p) & (idx < n - p)
        if not ok.any():
            continue
        i = idx[ok]
        mean = 0.5 * (v[i - p] + v[i + p])
        v[i] = np.minimum(v[i], mean)
    return (np.exp(np.exp(v) - 1) - 1) ** 2 - 1


@dataclass
class Identification:
    """Result of :func:`identify_elements`.

    ``elements``: identified symbols, strongest first; ``peaks``: list of
    ``(energy_eV, height, [candidate line labels])`` for every detected peak; ``ambiguous``:
    ``{peak label: [alternative line labels]}`` for peaks that more than one element explains;
    ``unexplained``: energies (eV) of peaks no identified element explains.
    """

    elements: list[str]
    peaks: list[tuple[float, float, list[str]]]
    ambiguous: dict[str, list[str]]
    unexplained: list[float]


def identify_elements(
    spectrum,
    *,
    energy,
    fwhm_mn_ka: float = 130.0,
    candidates: Iterable[str] | None = None,
    min_snr: float = 5.0,
    min_energy: float = 200.0,
) -> Identification:
    """Identify elements from an EDS (sum) spectrum: peaks matched to xraylib lines.

    Peaks are found on the spectrum minus its continuum (:func:`snip_background` with
    half-windows of twice the local FWHM), with significance ``height / sqrt(background) >= min_snr``. Each peak is
    matched to lines within ±0.5 FWHM. An element is a candidate only if its most energetic
    main line in range (Kα, else Lα, else Mα) is matched. Elements are then chosen greedily: the element whose
    matched lines explain the most peak height (minus the height its missing strong lines
    would have had) wins, its peaks are removed, and so on. Peaks that other elements also
    explain are listed as ambiguous.

    Parameters
    ----------
    spectrum : array (E,)
        Sum spectrum, counts.
    energy : array (E,)
        Channel energies, eV.
    fwhm_mn_ka : float
        Detector resolution at Mn Kα, eV.
    candidates : iterable of str, optional
        Elements to consider (default: Be–Pu, Z 4–94).
    min_snr : float
        Minimum peak significance.
    min_energy : float
        Ignore peaks below this energy, eV (noise peak, low-energy cut-off).
    """
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import find_peaks

    s = np.asarray(spectrum)
    if s.ndim != 1:
        raise ValueError("identify_elements needs a single (sum) spectrum; sum the SI over Y and X first.")
    s = real_array(s, "spectrum", ndim=1, min_size=4, dtype=np.float64, copies=8)
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    min_snr = nonnegative(min_snr, "min_snr", high=1e12)
    min_energy = nonnegative(min_energy, "min_energy", unit="eV", high=_MAX_EV)
    energy = check_energy_axis(energy, s.size)
    check_counts(s, what="spectrum")
    de = energy[1] - energy[0]
    fw = eds_fwhm(np.clip(energy, 100, None), fwhm_mn_ka=fwhm_mn_ka)
    sm = uniform_filter1d(s, max(1, int(round(0.3 * fwhm_mn_ka / de))))
    bg = snip_background(sm, width=np.maximum(1, np.round(2.0 * fw / de)).astype(int))
    net = sm - bg
    n_smooth = max(1, int(round(0.3 * fwhm_mn_ka / de)))
    sigma = np.sqrt(np.maximum(bg, 1.0) / n_smooth)  # Poisson noise of the smoothed background
    idx, _ = find_peaks(net, distance=max(1, int(0.5 * fwhm_mn_ka / de)))
    idx = [i for i in idx if net[i] >= min_snr * sigma[i] and energy[i] >= min_energy]
    # significance of the whole peak, on the raw counts: counts within ±0.6 FWHM minus the
    # continuum interpolated from side bands 1.5–2.5 FWHM away (unbiased, unlike the clipped
    # background), against the Poisson noise of both
    csum = np.concatenate([[0.0], np.cumsum(s)])

    def band(lo, hi):
        lo, hi = max(0, lo), min(s.size, hi)
        return (csum[hi] - csum[lo], hi - lo) if hi > lo else (0.0, 0)

    area = {}
    for i in idx:
        f = fw[i] / de
        hw = max(1, int(round(0.6 * f)))
        peak, n = band(i - hw, i + hw + 1)
        left, nl = band(i - int(round(2.5 * f)), i - int(round(1.5 * f)))
        right, nr = band(i + int(round(1.5 * f)) + 1, i + int(round(2.5 * f)) + 1)
        if nl and nr:
            per = 0.5 * (left / nl + right / nr)
            var_per = 0.25 * (left / nl**2 + right / nr**2)
        elif nl or nr:
            per = (left + right) / (nl + nr)
            var_per = (left + right) / (nl + nr) ** 2
        else:
            per, var_per = float(bg[i]), float(bg[i])
        net_counts = peak - n * per
        noise = np.sqrt(max(peak + n * n * var_per, 1.0))
        area[i] = (net_counts, noise)
    idx = [i for i in idx if area[i][0] >= min_snr * area[i][1]]
    if idx:
        # a real line is as wide as the detector makes it: drop broad humps (absorption
        # cut-off of the continuum) and single-channel spikes
        from scipy.signal import peak_widths

        widths = peak_widths(net, idx, rel_height=0.5)[0] * de
        expect = fw[idx]
        idx = [i for i, w, f in zip(idx, widths, expect) if 0.4 * f - de <= w <= 2.5 * f + de]
    peaks_e = np.array([energy[i] for i in idx])
    heights = np.array([area[i][0] for i in idx])  # net peak counts

    import xraylib

    if candidates is None:
        cand = [xraylib.AtomicNumberToSymbol(z) for z in range(4, 95)]
    else:
        cand = [c.split("_")[0] for c in parse_elements(list(candidates))]
    e_range = (max(energy[0], min_energy), energy[-1])
    matches: dict[str, dict[int, Line]] = {}
    missing: dict[str, float] = {}
    for el in cand:
        lines = [ln for ln in eds_lines(el, energy_range=e_range)]
        if not lines:
            continue
        got: dict[int, Line] = {}
        for ln in lines:
            if peaks_e.size == 0:
                break
            tol = 0.5 * eds_fwhm(ln.energy, fwhm_mn_ka=fwhm_mn_ka)
            k = int(np.argmin(np.abs(peaks_e - ln.energy)))
            if abs(peaks_e[k] - ln.energy) <= tol:
                if k not in got or ln.weight > got[k].weight:
                    got[k] = ln
        if not got or not any(ln.weight >= 0.99 for ln in got.values()):
            continue  # an element is only credible when a family's main line is seen
        # ... and its most energetic main line in range (Kα before Lα before Mα), which a
        # 100–300 kV beam excites best, must be there: Ti is not "Ti Lα" without Ti Kα
        principal = max((ln for ln in lines if ln.weight >= 0.99), key=lambda ln: ln.energy)
        if principal not in got.values():
            continue
        # height the missing strong lines should have had (relative to the matched main line)
        main_h = max(heights[k] for k, ln in got.items() if ln.weight >= 0.99)
        miss = 0.0
        matched_names = {ln.name for ln in got.values()}
        fams_seen = {ln.name[0] for ln in got.values() if ln.weight >= 0.99}
        for ln in lines:
            if ln.name in matched_names or ln.name[0] not in fams_seen:
                continue
            if ln.weight >= 0.3:
                miss += ln.weight * main_h
        matches[el] = got
        missing[el] = miss

    remaining = set(range(len(idx)))
    chosen: list[str] = []
    while remaining:
        best, best_score = None, 0.0
        for el, got in matches.items():
            if el in chosen:
                continue
            score = sum(heights[k] for k in got if k in remaining) - missing[el]
            if score > best_score:
                best, best_score = el, score
        if best is None:
            break
        chosen.append(best)
        remaining -= set(matches[best])

    peaks_out = []
    ambiguous: dict[str, list[str]] = {}
    for k in range(len(idx)):
        labels = sorted((ln.label for el, got in matches.items() for kk, ln in got.items() if kk == k))
        peaks_out.append((float(peaks_e[k]), float(heights[k]), labels))
        owners = [el for el in chosen if k in matches[el]]
        if owners:
            alternatives = [lab for lab in labels if lab.split()[0] != owners[0]]
            if alternatives:
                own = [ln.label for ln in [matches[owners[0]][k]]][0]
                ambiguous[f"{own} ({peaks_e[k] / 1000:.2f} keV)"] = alternatives
    unexplained = [float(peaks_e[k]) for k in sorted(remaining)]
    return Identification(elements=chosen, peaks=peaks_out, ambiguous=ambiguous, unexplained=unexplained)


def cliff_lorimer(
    intensities: Mapping[str, np.ndarray],
    *,
    k_factors: Mapping[str, float],
    atomic: bool = True,
    min_total: float = 0.0,
) -> dict[str, np.ndarray]:
    """Cliff–Lorimer quantification: composition maps from net line intensities.

    ``C_i = k_i I_i / Σ_j k_j I_j`` gives weight fractions (k-factors relative to a common
    reference, as exSpy uses them); with ``atomic=True`` they are converted to atomic
    fractions with xraylib atomic weights. Results are in percent; pixels with total
    ``Σ k_j I_j <= min_total`` or negative intensities clipped to zero give NaN.

    Parameters
    ----------
    intensities : dict element -> array
        Net counts per element (e.g. ``{el: m.data for el, m in eds_maps(...).items()}``).
    k_factors : dict element -> float
        Cliff–Lorimer k-factor of each element (weight basis). Every element needs one.
    atomic : bool
        Return atomic % (default) rather than weight %.
    """
    import xraylib

    els = list(intensities)
    if len(els) < 2:
        raise ValueError("Cliff–Lorimer quantification needs at least two elements.")
    missing = [el for el in els if el not in k_factors and el.split("_")[0] not in k_factors]
    if missing:
        raise ValueError(f"Give a k-factor for {', '.join(missing)} (e.g. 'Fe: 1.0, Pt: 1.8').")
    ks = {el: positive(k_factors.get(el, k_factors.get(el.split("_")[0])), f"k_factors[{el!r}]", high=1e6)
          for el in els}
    min_total = nonnegative(min_total, "min_total", high=None)
    arrays = {el: real_array(intensities[el], f"intensities[{el!r}]", dtype=np.float64, finite=False, min_size=0)
              for el in els}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1:
        raise ValueError(f"intensities must all have the same shape; got {sorted(shapes)}.")
    w = {el: ks[el] * np.clip(np.nan_to_num(arrays[el], nan=0.0, posinf=0.0, neginf=0.0), 0, None)
         for el in els}
    if atomic:
        w = {el: w[el] / xraylib.AtomicWeight(_z(el)) for el in els}
    total = sum(w.values())
    ok = total > max(min_total, 0.0)
    out = {}
    bad = np.zeros(total.shape, bool)
    for a in arrays.values():
        bad |= ~np.isfinite(a)
    ok &= ~bad  # NaN/inf intensities give NaN (no composition), never a made-up one
    for el in els:
        frac = np.full(total.shape, np.nan)
        np.divide(w[el], total, out=frac, where=ok)
        out[el] = (100.0 * frac).astype(np.float32)
    return out
