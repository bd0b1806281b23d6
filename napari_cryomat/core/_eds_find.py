"""EDS element identification: continuum, peaks, result (private; public surface
:mod:`napari_cryomat.core.eds`; the fitting engine is :mod:`._eds_identify`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from napari_cryomat.core._eds_lines import _beam, _mn_ka_energy, eds_fwhm, eds_lines
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core._validate import nonnegative, positive, real_array
from napari_cryomat.core.spectral import _MAX_EV, _MAX_FWHM, check_counts, check_energy_axis, parse_elements


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

    ``elements``: identified symbols, most significant first; ``reasons``: one sentence per
    candidate element saying why it was chosen or rejected; ``significance``: σ each chosen
    element adds beyond all the others; ``families``: fitted counts of each chosen element's
    principal lines per family; ``peaks``: ``(energy_eV, net counts, [labels of the chosen
    elements' lines and artefacts on it])`` per detected peak; ``ambiguous``: ``{peak label:
    [other candidates' lines on it]}``; ``unexplained``: energies (eV) of detected peaks the
    fitted model does not explain; ``calibration_shift``: fitted energy offset of the detector
    (eV, the lines sit this much higher than their xraylib energies); ``artefacts``: counts
    attributed to pile-up (sum peaks) and Si escape peaks; ``continuum``: the fitted continuum
    (Kramers' law × absorption × detector, counts per channel, fitted with the lines); ``spectrum``: the
    counts identified (what was given, as float), to show the lines against.
    """

    elements: list[str]
    peaks: list[tuple[float, float, list[str]]]
    ambiguous: dict[str, list[str]]
    unexplained: list[float]
    reasons: dict[str, str] = field(default_factory=dict)
    significance: dict[str, float] = field(default_factory=dict)
    families: dict[str, dict[str, float]] = field(default_factory=dict)
    calibration_shift: float = 0.0
    artefacts: dict[str, float] = field(default_factory=dict)
    continuum: np.ndarray | None = None
    spectrum: np.ndarray | None = None


# elements with no stable isotope and none lasting on Earth's time scale in amounts a specimen holds (Tc, Pm,
# Po–Ac, Pa, Np, Pu): left out of the default candidates (name them in ``candidates`` to consider them);
# Th and U stay
#: identification ignores the spectrum below this energy (eV): the detector's noise (zero-strobe) peak
MIN_ENERGY_EV = 200.0
_SHORT_LIVED = frozenset({43, 61, 84, 85, 86, 87, 88, 89, 91, 93, 94})


def _detect_peaks(s, energy, fw, net, bg, n_smooth, min_snr, min_energy):
    """Indices and (net counts, noise) of significant peaks as wide as the detector makes them."""
    from scipy.signal import find_peaks, peak_widths

    de = energy[1] - energy[0]
    sigma = np.sqrt(np.maximum(bg, 1.0) / n_smooth)
    idx, _ = find_peaks(net, distance=max(1, int(0.5 * fw.min() / de)))
    idx = [i for i in idx if net[i] >= min_snr * sigma[i] and energy[i] >= min_energy]
    csum = np.concatenate([[0.0], np.cumsum(s)])

    def band(lo, hi):
        lo, hi = max(0, lo), min(s.size, hi)
        return (csum[hi] - csum[lo], hi - lo) if hi > lo else (0.0, 0)

    area = {}
    for i in idx:  # counts within ±0.6 FWHM minus the side bands 1.5–2.5 FWHM away
        f = fw[i] / de
        hw = max(1, int(round(0.6 * f)))
        peak, n = band(i - hw, i + hw + 1)
        left, nl = band(i - int(round(2.5 * f)), i - int(round(1.5 * f)))
        right, nr = band(i + int(round(1.5 * f)) + 1, i + int(round(2.5 * f)) + 1)
        if nl + nr:
            per = (left + right) / (nl + nr)
            var_per = (left + right) / (nl + nr) ** 2
        else:
            per, var_per = float(bg[i]), float(bg[i])
        area[i] = (peak - n * per, np.sqrt(max(peak + n * n * var_per, 1.0)))
    idx = [i for i in idx if area[i][0] >= min_snr * area[i][1]]
    if idx:  # a line is as wide as the detector makes it: no broad humps, no single-channel spikes
        widths = peak_widths(net, idx, rel_height=0.5)[0] * de
        idx = [i for i, w, f in zip(idx, widths, fw[idx]) if 0.4 * f - de <= w <= 2.5 * f + de]
    return idx, area


def identify_elements(
    spectrum,
    *,
    energy,
    fwhm_mn_ka: float = 130.0,
    candidates: Iterable[str] | None = None,
    min_snr: float = 5.0,
    min_energy: float = MIN_ENERGY_EV,
    beam_energy_kev: float = 200.0,
    max_shift: float = 40.0,
    progress: ProgressCallback = None,
) -> Identification:
    """Identify the elements of an EDS (sum) spectrum, each explained by its whole line families.

    The spectrum is fitted by weighted non-negative least squares with one column per line
    family of each element (all its lines at xraylib's relative weights, Gaussians of the
    detector's width), the continuum (Kramers' law × the Si dead layer × a mixture of
    absorbers, a few smooth columns fitted with the lines), plus pile-up and Si-escape
    columns made from the spectrum itself. Candidate peaks are found over the clipped
    continuum (:func:`snip_background`) and again over the fitted one. Elements are added one at a
    time, the one lowering χ² most first, while one adds at least ``min_snr`` σ and its
    families are consistent (see :mod:`._eds_identify`); a global energy offset of the
    detector (up to ``max_shift`` eV) is fitted. Every candidate (an element with a strong line
    on a detected peak) gets a reason in ``Identification.reasons``.

    Parameters
    ----------
    spectrum : array (E,)
        Sum spectrum, counts.
    energy : array (E,)
        Channel energies, eV.
    fwhm_mn_ka : float
        Detector resolution at Mn Kα, eV.
    candidates : iterable of str, optional
        Elements to consider (default: Be–Pu, Z 4–94, without the short-lived Tc, Pm, Po–Ac, Pa, Np, Pu).
    min_snr : float
        Minimum significance (σ) of a peak and of an element.
    min_energy : float
        Ignore the spectrum below this energy, eV (noise peak, low-energy cut-off).
    beam_energy_kev : float
        Beam energy, keV: shells it cannot ionise give no lines.
    max_shift : float
        Largest energy-calibration offset to fit, eV.
    progress : callable(fraction), optional
        Called as the selections go (10-20 s on a 2048-channel Bruker map); raising
        :class:`~napari_cryomat.core._progress.Cancelled` from it stops the run.
    """
    from scipy.ndimage import uniform_filter1d

    from napari_cryomat.core import _eds_identify as engine

    s = np.asarray(spectrum)
    if s.ndim != 1:
        raise ValueError("identify_elements needs a single (sum) spectrum; sum the SI over Y and X first.")
    s = real_array(s, "spectrum", ndim=1, min_size=4, dtype=np.float64, copies=8)
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    min_snr = nonnegative(min_snr, "min_snr", high=1e12)
    min_energy = nonnegative(min_energy, "min_energy", unit="eV", high=_MAX_EV)
    beam = _beam(beam_energy_kev)
    max_shift = nonnegative(max_shift, "max_shift", unit="eV", high=1000.0)
    energy = check_energy_axis(energy, s.size)
    check_counts(s, what="spectrum")
    de = energy[1] - energy[0]
    fw = eds_fwhm(np.clip(energy, 100, None), fwhm_mn_ka=fwhm_mn_ka)
    n_smooth = max(1, int(round(0.3 * fwhm_mn_ka / de)))
    sm = uniform_filter1d(s, n_smooth)
    bg = snip_background(sm, width=np.maximum(1, np.round(2.0 * fw / de)).astype(int))
    net = sm - bg
    idx, area = _detect_peaks(s, energy, fw, net, bg, n_smooth, min_snr, min_energy)
    peaks_e = np.array([energy[i] for i in idx])
    if candidates is None:
        import xraylib

        pool = [xraylib.AtomicNumberToSymbol(z) for z in range(4, 95) if z not in _SHORT_LIVED]
    else:
        pool = list(dict.fromkeys(c.split("_")[0] for c in parse_elements(list(candidates))))
    mask = energy >= max(min_energy, energy[0])
    e_mn = _mn_ka_energy()

    def fwhm_of(e):  # eds_fwhm's formula without its argument checks: the engine calls it some 20 000 times
        f = np.sqrt(np.maximum(fwhm_mn_ka**2 + 2.5 * (np.clip(e, 100.0, None) - e_mn), 1.0))
        return float(f) if f.ndim == 0 else f

    # the second run below is needed only when the fitted continuum reveals new peaks: it gets the last fifth
    fit = engine.run(s, energy, fwhm_of=fwhm_of, net=s - bg, bg=bg, mask=mask, peaks_e=peaks_e, pool=pool,
                     min_snr=min_snr, beam_kev=beam, max_shift=max_shift, progress=sub_progress(progress, 0.0, 0.8))
    # peaks again over the fitted continuum: SNIP cuts under weak lines and into the continuum's rounded maximum,
    # so a weak line (N Kα on the maximum) made no peak there; new peaks make new candidates and a second run
    cont = np.maximum(uniform_filter1d(fit.continuum, n_smooth), 1e-9)
    idx2, area2 = _detect_peaks(s, energy, fw, sm - cont, cont, n_smooth, min_snr, min_energy)
    new = [i for i in idx2 if not any(abs(energy[i] - energy[j]) <= 0.5 * fw[i] for j in idx)]
    if new:
        idx, area = sorted(idx + new), {**area2, **area}
        fit = engine.run(s, energy, fwhm_of=fwhm_of, net=s - bg, bg=bg, mask=mask,
                         peaks_e=np.array([energy[i] for i in idx]), pool=pool, min_snr=min_snr, beam_kev=beam,
                         max_shift=max_shift, progress=sub_progress(progress, 0.8, 1.0))
    found = _describe_peaks(fit, idx, area, energy, fw, beam, pool)
    report(progress, 1.0)
    found.spectrum = s
    return found


def _describe_peaks(fit, idx, area, energy, fw, beam, pool) -> Identification:
    """Label each detected peak with the chosen lines on it; list the unexplained ones."""
    peaks, ambiguous, unexplained = [], {}, []
    de = energy[1] - energy[0]
    for i in idx:
        e_obs, counts = float(energy[i]), float(area[i][0])
        tol = 0.5 * fw[i]
        own, other = [], []
        for el in fit.elements:
            for ln in eds_lines(el, beam_energy_kev=beam):
                if ln.weight >= 0.02 and abs(ln.energy + fit.shift - e_obs) <= tol:
                    own.append((ln.weight, ln.label))
        for el in fit.reasons:
            if el not in fit.elements:
                for ln in eds_lines(el, beam_energy_kev=beam):
                    if ln.weight >= 0.2 and abs(ln.energy + fit.shift - e_obs) <= tol:
                        other.append(ln.label)
        hw = max(1, int(round(0.6 * fw[i] / de)))
        explained = float(fit.model[max(0, i - hw): i + hw + 1].sum())
        labels = [lab for _w, lab in sorted(own, reverse=True)]
        if fit.artefacts.get("pile-up", 0) > 0 and not labels and explained > 0.5 * counts:
            labels.append("pile-up (sum peak)")
        if not labels and explained > 0.5 * counts and fit.artefacts.get("Si escape", 0) > 0:
            labels.append("Si escape peak")
        peaks.append((e_obs, counts, labels))
        if labels and other:
            ambiguous[f"{labels[0]} ({e_obs / 1000:.2f} keV)"] = other
        if explained < 0.5 * counts:
            unexplained.append(e_obs)
    return Identification(fit.elements, peaks, ambiguous, unexplained, fit.reasons, fit.significance,
                          fit.families, fit.shift, fit.artefacts, fit.continuum)
