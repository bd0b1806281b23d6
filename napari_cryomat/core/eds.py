"""EDS: X-ray line families, windows, net-count maps, element identification, quantification.

Conventions of :mod:`napari_cryomat.core.spectral` hold here too: energies in eV, spectrum images
``(Y, X, E)``, windows ``(start, stop)`` in eV, ``progress`` a callable given the fraction done.
Line energies, weights, cross-sections and absorption come from :mod:`xraylib`
(see :mod:`._eds_physics`). A beam energy is in keV (``beam_energy_kev``), as microscopes show it.

- Lines: complete K, L and M families (Kα, Kβ, Lα, Lβ1–6, Lγ1–6, Ll, Lη, Mα, Mβ, Mγ, Mζ, M2N4,
  ...), weights from electron ionisation cross-section × fluorescence yield × radiative rate.
- Windows: exSpy's (integration ±1 FWHM, background 2–3 FWHM away), moved away from other
  lines (:func:`clean_windows`); the background is the width-weighted mean of the side windows
  as exSpy computes it.
- Maps: band by band over the SI rows (numpy, memory map or dask), never loaded whole.
- Identification: each element is fitted with its whole families (:mod:`._eds_identify`).
- Quantification: Cliff–Lorimer with user or theoretical k-factors, zeta-factors with dose,
  thin-film absorption correction from the thickness.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_cryomat.core import _eds_physics as phys
from napari_cryomat.core._progress import ProgressCallback
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
    map_si_blocks,
    parse_elements,
    window_slice,
)

__all__ = [
    "Line",
    "Identification",
    "Quantification",
    "eds_lines",
    "choose_line",
    "eds_fwhm",
    "eds_windows",
    "clean_windows",
    "eds_net_map",
    "eds_maps",
    "identify_elements",
    "snip_background",
    "cliff_lorimer",
    "theoretical_k_factors",
    "theoretical_zeta_factors",
    "absorption_correction",
    "quantify",
]

_MAX_BEAM_KEV = 3000.0
_PRINCIPAL_NAMES = ("Ka", "La", "Ma")


@dataclass(frozen=True)
class Line:
    """An X-ray line: ``element``, ``name`` ("Ka", "Lg1", "Mz", "M2N4"...), ``energy`` (eV),
    ``weight`` (intensity relative to the family's principal line Kα, Lα or Mα)."""

    element: str
    name: str
    energy: float
    weight: float

    @property
    def label(self) -> str:
        return f"{self.element} {self.name}"

    @property
    def family(self) -> str:
        return self.name[0]


def _beam(beam_energy_kev) -> float:
    return positive(beam_energy_kev, "beam_energy_kev", unit="keV", high=_MAX_BEAM_KEV)


def eds_lines(element: str, *, energy_range: tuple[float, float] | None = None,
              beam_energy_kev: float = 200.0) -> list[Line]:
    """X-ray lines of ``element``: its complete K, L and M families, sorted by energy.

    Energies from ``xraylib.LineEnergy``; each named line sums its IUPAC transitions (Kα = KL2 +
    KL3, Lγ1 = L2N4, Mζ = M5N3 + M4N2, ...; transitions without a Siegbahn name keep their
    IUPAC name, e.g. "M2N4"). Weights: electron ionisation cross-section at ``beam_energy_kev``
    × fluorescence yield × radiative rate, relative to the family's principal line. Lines below
    100 eV, weaker than 0.5 % of their principal line, or of shells the beam cannot ionise are
    left out.

    Parameters
    ----------
    element : str
        Chemical symbol ("Fe"; "Fe_Ka" is read as "Fe").
    energy_range : (float, float), optional
        Keep lines inside this range, eV.
    beam_energy_kev : float
        Beam energy, keV (default 200).
    """
    z = _z(element)
    energy_range = _energy_range(energy_range)
    lines = _all_eds_lines(z, element.split("_")[0], _beam(beam_energy_kev))
    if energy_range is None:
        return list(lines)
    return [ln for ln in lines if energy_range[0] <= ln.energy <= energy_range[1]]


@functools.lru_cache(maxsize=512)
def _all_eds_lines(z: int, symbol: str, beam_energy_kev: float) -> tuple[Line, ...]:
    return tuple(Line(symbol, n, float(e), float(w)) for n, e, w, _s in phys.grouped_lines(z, beam_energy_kev))


def choose_line(element: str, *, energy: np.ndarray, fwhm_mn_ka: float = 130.0) -> Line:
    """The line used to map ``element``: the highest-energy family (K, then L, then M) whose
    principal line, with its background windows, fits in the recorded range.

    "Pt_Ma" / "Fe_Kb" choose a given line; "Pt_M" the principal line of a family. Raises
    ValueError naming the element, the range and its nearest lines when none fits.
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
        cand = [ln for ln in lines if ln.name.lower() == want.lower()
                or (len(want) == 1 and ln.name.lower() == want.lower() + "a")]
        if not cand:
            raise ValueError(f"{sym} has no X-ray line {want!r}; its lines are "
                             f"{', '.join(ln.name for ln in lines if ln.weight >= 0.05)}.")
    else:
        cand = sorted((ln for ln in lines if ln.name in _PRINCIPAL_NAMES), key=lambda ln: -ln.energy)
    for ln in cand:
        if fits(ln):
            return ln
    raise ValueError(
        f"{sym} has no X-ray line{(' ' + want) if want else ''} in the recorded range "
        f"{e_lo / 1000:.2f}–{e_hi / 1000:.2f} keV (with room for background windows). Nearest lines: "
        f"{_nearest_listing([ln for ln in lines if ln.name in _PRINCIPAL_NAMES], energy, lambda ln: ln.energy)}. "
        f"Remove {sym} from the elements or record a wider energy range."
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


def clean_windows(
    element: str,
    *,
    energy,
    elements: Sequence[str] | str = (),
    fwhm_mn_ka: float = 130.0,
    integration_width: float = 2.0,
    background_offset: float = 2.0,
    background_width: float = 1.0,
    max_offset: float = 8.0,
    clearance: float = 1.2,
) -> dict[str, tuple[float, float]]:
    """Windows of ``element``'s mapping line (:func:`choose_line`) whose background windows
    avoid the lines of ``elements`` (and the element's own other lines).

    Each background window starts at exSpy's place (``background_offset`` FWHM from the line,
    ``background_width`` FWHM wide) and moves outwards in quarter-FWHM steps until no line of
    weight >= 5 % lies within ``clearance`` × its FWHM of it, at most ``max_offset`` FWHM
    away, inside the recorded range. A side with no clean place is dropped (the background is
    then the other side's mean); when neither side is clean a ValueError names the element,
    the lines in the way and what to change.
    """
    energy = check_energy_axis(energy)
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    max_offset = positive(max_offset, "max_offset", unit="FWHM", high=100)
    clearance = nonnegative(clearance, "clearance", unit="FWHM", high=100)
    others = _parse_elements_arg(elements) if (isinstance(elements, str) and elements.strip()) or \
        (not isinstance(elements, str) and len(elements)) else []
    line = choose_line(element, energy=energy, fwhm_mn_ka=fwhm_mn_ka)
    w = eds_windows(line.energy, fwhm_mn_ka=fwhm_mn_ka, integration_width=integration_width,
                    background_offset=background_offset, background_width=background_width)
    f = eds_fwhm(line.energy, fwhm_mn_ka=fwhm_mn_ka)
    avoid = []
    for el in dict.fromkeys([element.split("_")[0]] + [o.split("_")[0] for o in others]):
        for ln in eds_lines(el, energy_range=(energy[0] - 1000.0, energy[-1] + 1000.0)):
            if ln.weight >= 0.05 and abs(ln.energy - line.energy) > 0.5 * f:
                avoid.append((ln, clearance * eds_fwhm(ln.energy, fwhm_mn_ka=fwhm_mn_ka)))
    width = background_width * f
    out = {"integration": w["integration"]}
    blocked = {}
    for key, sign in (("background_low", -1.0), ("background_high", 1.0)):
        offset = background_offset
        while offset <= max_offset + 1e-9:
            near = line.energy + sign * offset * f
            lo, hi = (near - width, near) if sign < 0 else (near, near + width)
            inside = lo >= energy[0] and hi <= energy[-1]
            hit = [ln for ln, gap in avoid if lo - gap < ln.energy < hi + gap]
            if inside and not hit:
                out[key] = (lo, hi)
                break
            blocked[key] = hit[0].label if hit else "the end of the recorded range"
            offset += 0.25
    if "background_low" not in out and "background_high" not in out:
        raise ValueError(
            f"No clean background window for {line.label} ({line.energy / 1000:.2f} keV) within {max_offset:g} FWHM: "
            f"below it {blocked.get('background_low')}, above it {blocked.get('background_high')} are in the way. "
            f"Give {element}'s windows by hand, map another line (e.g. '{line.element}_"
            f"{'La' if line.family == 'K' else 'Ma' if line.family == 'L' else 'La'}'), or fit a model."
        )
    return out


def _net_counts(block: np.ndarray, slices: dict[str, slice]) -> np.ndarray:
    """Integration-window counts minus the width-weighted mean of the background windows times
    the integration width (exSpy's ``get_lines_intensity`` with ``background_windows``)."""
    isl = slices["integration"]
    peak = block[..., isl].sum(axis=-1, dtype=np.float64)
    bsl = [slices[k] for k in ("background_low", "background_high") if k in slices]
    if not bsl:
        return peak.astype(np.float32)
    bg_sum = sum(block[..., s].sum(axis=-1, dtype=np.float64) for s in bsl)
    n_bg = sum(s.stop - s.start for s in bsl)
    return (peak - bg_sum * ((isl.stop - isl.start) / n_bg)).astype(np.float32)


def _window_slices(energy, windows, element: str) -> dict[str, slice]:
    if not isinstance(windows, Mapping) or "integration" not in windows:
        raise ValueError(f"windows of {element} must be a dict with an 'integration' window (and optional "
                         "'background_low' / 'background_high'), as made by eds_windows or clean_windows.")
    out = {}
    for key in ("integration", "background_low", "background_high"):
        if windows.get(key) is not None:
            out[key] = window_slice(energy, windows[key], what=f"{element} {key.replace('_', ' ')} window")
    return out


class _ChannelBands:
    """Bands of rows of an SI restricted to the channels the windows use (``lo:hi``): a dask or h5py
    SI reads only those; a ``numpy.memmap`` touches only their pages and hands them back to the OS
    after each band (``madvise(MADV_DONTNEED)``), so resident memory stays about one band even for a
    file larger than RAM (touched pages of a mapping otherwise stay resident)."""

    def __init__(self, si, lo: int, hi: int):
        self.si, self.lo, self.hi = si, int(lo), int(hi)
        self.shape = tuple(int(n) for n in si.shape[:-1]) + (self.hi - self.lo,)
        self.ndim, self.dtype = 3, np.dtype(getattr(si, "dtype", np.float32))

    def __getitem__(self, rows):
        block = self.si[rows, :, self.lo:self.hi]
        if isinstance(self.si, np.memmap):
            block = np.array(block)
            _release_pages(self.si, rows)
        return block


def _release_pages(mm: np.memmap, rows: slice) -> None:
    """Drop the pages of rows ``rows`` of a C-ordered memmap from the process (they are re-read from the
    file if needed again); silently nothing where madvise is not available."""
    import mmap

    base = mm.base
    if not isinstance(base, mmap.mmap) or not mm.flags.c_contiguous or not hasattr(base, "madvise"):
        return
    start, stop, _ = rows.indices(mm.shape[0])
    row_bytes = mm.strides[0]
    in_map = int(mm.offset) % mmap.ALLOCATIONGRANULARITY  # where the array starts inside the mapping
    first = in_map + start * row_bytes
    aligned = first - first % mmap.PAGESIZE
    length = in_map + stop * row_bytes - aligned
    try:
        base.madvise(mmap.MADV_DONTNEED, aligned, min(length, len(base) - aligned))
    except (OSError, ValueError, AttributeError):
        pass


def eds_net_map(si, *, energy, windows: Mapping[str, Sequence[float]]) -> np.ndarray:
    """Net line counts of one line: counts in the integration window minus the background,
    the mean of both background windows together (each weighted by its width, as exSpy does)
    times the integration window's width. Either background window may be omitted.

    ``windows`` as returned by :func:`eds_windows` / :func:`clean_windows` (eV). Returns float32
    of the leading shape.
    """
    if np.iscomplexobj(si):
        raise ValueError("The spectra (si) hold complex numbers; counts must be real.")
    _check_si_memory(si)
    energy = check_energy_axis(energy, np.shape(si)[-1])
    slices = _window_slices(energy, windows, "the line's")
    return _net_counts(np.asarray(si, dtype=np.float32), slices)


def eds_maps(
    si,
    *,
    energy,
    elements: Sequence[str] | str,
    fwhm_mn_ka: float = 130.0,
    windows: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    progress: ProgressCallback = None,
) -> dict[str, ElementMap]:
    """Net-count EDS maps of several elements, read band by band (out of core).

    Parameters
    ----------
    si : array (Y, X, E)
        EDS spectrum image, counts: numpy array, ``numpy.memmap`` or dask array. Only one band
        of rows is in memory at a time (:func:`spectral.map_si_blocks`), so an SI larger than
        RAM can be mapped; the result equals the in-memory one.
    energy : array (E,)
        Channel energies, eV.
    elements : list of str or str
        "Fe, Pt, Cu"; "Pt_Ma" forces a line.
    fwhm_mn_ka : float
        Detector resolution at Mn Kα, eV (default 130 eV).
    windows : dict, optional
        ``{element: windows}`` overriding the defaults, which are :func:`clean_windows`
        (background windows clear of the other elements' lines).
    progress : callable, optional
        Fraction done; raising :class:`Cancelled` from it stops the run.
    """
    check_spectrum_image(si, lazy=True)
    energy = check_energy_axis(energy, si.shape[-1])
    fwhm_mn_ka = positive(fwhm_mn_ka, "fwhm_mn_ka", unit="eV", high=_MAX_FWHM)
    elements = _parse_elements_arg(elements)
    windows = dict(windows or {})
    plan = []
    for el in elements:
        ln = choose_line(el, energy=energy, fwhm_mn_ka=fwhm_mn_ka)
        w = windows.get(el) or windows.get(el.split("_")[0]) or clean_windows(
            el, energy=energy, elements=[e for e in elements if e != el], fwhm_mn_ka=fwhm_mn_ka)
        plan.append((el, ln, dict(w), _window_slices(energy, w, el)))
    # read only the channels the windows use; slices relative to that span
    lo = min(sl.start for *_r, sls in plan for sl in sls.values())
    hi = max(sl.stop for *_r, sls in plan for sl in sls.values())
    plan = [(el, ln, w, {k: slice(sl.start - lo, sl.stop - lo) for k, sl in sls.items()}) for el, ln, w, sls in plan]

    def block_maps(block):
        if not np.all(np.isfinite(block)):  # only the channels the windows use are read and checked
            raise ValueError("The spectrum image (si) contains NaN or inf values; replace them first.")
        if block.size and block.min() < 0:
            raise ValueError(f"The spectrum image (si) has negative counts (minimum {block.min():.3g}); it was "
                             "probably background-subtracted. Add a constant offset or clip at zero.")
        return {el: _net_counts(block, sl) for el, _ln, _w, sl in plan}

    # a memmap band touches whole rows of pages (all channels): keep bands small so that stays modest
    band = 2**24 if isinstance(si, np.memmap) else 2**26
    data = map_si_blocks(block_maps, _ChannelBands(si, lo, hi), max_bytes=band, progress=progress)
    return {el: ElementMap(element=el, kind="eds", feature=ln.label, energy=ln.energy, data=data[el], windows=w)
            for el, ln, w, _sl in plan}


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
    attributed to pile-up (sum peaks) and Si escape peaks.
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
    min_energy: float = 200.0,
    beam_energy_kev: float = 200.0,
    max_shift: float = 40.0,
) -> Identification:
    """Identify the elements of an EDS (sum) spectrum, each explained by its whole line families.

    The continuum is clipped away (:func:`snip_background`); the net spectrum is then fitted
    by weighted non-negative least squares with one column per line family of each element
    (all its lines at xraylib's relative weights, Gaussians of the detector's width), plus
    pile-up and Si-escape columns made from the spectrum itself. Elements are added one at a
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
        Elements to consider (default: Be–Pu, Z 4–94).
    min_snr : float
        Minimum significance (σ) of a peak and of an element.
    min_energy : float
        Ignore the spectrum below this energy, eV (noise peak, low-energy cut-off).
    beam_energy_kev : float
        Beam energy, keV: shells it cannot ionise give no lines.
    max_shift : float
        Largest energy-calibration offset to fit, eV.
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

        pool = [xraylib.AtomicNumberToSymbol(z) for z in range(4, 95)]
    else:
        pool = list(dict.fromkeys(c.split("_")[0] for c in parse_elements(list(candidates))))
    mask = energy >= max(min_energy, energy[0])
    fit = engine.run(s, energy, fwhm_of=lambda e: eds_fwhm(np.clip(e, 100, None), fwhm_mn_ka=fwhm_mn_ka),
                     net=s - bg, bg=bg, mask=mask, peaks_e=peaks_e, pool=pool, min_snr=min_snr, beam_kev=beam,
                     max_shift=max_shift)
    return _describe_peaks(fit, idx, area, energy, fw, beam, pool)


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
                          fit.families, fit.shift, fit.artefacts)


def cliff_lorimer(
    intensities: Mapping[str, np.ndarray],
    *,
    k_factors: Mapping[str, float],
    atomic: bool = True,
    min_total: float = 0.0,
    absorption: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Cliff–Lorimer quantification: composition maps from net line intensities.

    ``C_i = k_i A_i I_i / Σ_j k_j A_j I_j`` gives weight fractions (k-factors relative to a
    common reference, as exSpy uses them; ``A_i`` the absorption correction factors, 1 when not
    given); with ``atomic=True`` they are converted to atomic fractions with xraylib atomic
    weights. Results are in percent; pixels with total ``<= min_total``, or NaN/inf
    intensities, give NaN; negative intensities count as zero.

    Parameters
    ----------
    intensities : dict element -> array
        Net counts per element (e.g. ``{el: m.data for el, m in eds_maps(...).items()}``).
    k_factors : dict element -> float
        Cliff–Lorimer k-factor of each element (weight basis). Every element needs one; see
        :func:`theoretical_k_factors` or :func:`quantify` when you have none.
    atomic : bool
        Return atomic % (default) rather than weight %.
    absorption : dict element -> array, optional
        Absorption correction factors (>= 1), e.g. from :func:`absorption_correction`.
    """
    els = list(intensities)
    if len(els) < 2:
        raise ValueError("Cliff–Lorimer quantification needs at least two elements.")
    missing = [el for el in els if el not in k_factors and el.split("_")[0] not in k_factors]
    if missing:
        raise ValueError(f"Give a k-factor for {', '.join(missing)} (e.g. 'Fe: 1.0, Pt: 1.8'), or leave all "
                         "k-factors empty to use theoretical ones (quantify).")
    ks = {el: positive(k_factors.get(el, k_factors.get(el.split("_")[0])), f"k_factors[{el!r}]", high=1e6)
          for el in els}
    min_total = nonnegative(min_total, "min_total", high=None)
    arrays = _intensity_arrays(intensities)
    acf = _absorption_arrays(absorption, els, next(iter(arrays.values())).shape)
    w = {el: ks[el] * acf[el] * np.clip(np.nan_to_num(arrays[el], nan=0.0, posinf=0.0, neginf=0.0), 0, None)
         for el in els}
    return _percent(w, arrays, atomic, min_total)


def _intensity_arrays(intensities) -> dict[str, np.ndarray]:
    if not isinstance(intensities, Mapping) or not intensities:
        raise ValueError("intensities must be a dict {element: net counts (array or number)}.")
    arrays = {el: real_array(intensities[el], f"intensities[{el!r}]", dtype=np.float64, finite=False, min_size=0)
              for el in intensities}
    for el in arrays:
        _z(el)
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1:
        raise ValueError(f"intensities must all have the same shape; got {sorted(shapes)}.")
    return arrays


def _absorption_arrays(absorption, els, shape) -> dict[str, np.ndarray]:
    if absorption is None:
        return {el: np.ones(shape) for el in els}
    missing = [el for el in els if el not in absorption]
    if missing:
        raise ValueError(f"absorption has no factor for {', '.join(missing)}; give one per element or none.")
    out = {}
    for el in els:
        a = np.broadcast_to(real_array(absorption[el], f"absorption[{el!r}]", dtype=np.float64, min_size=0), shape)
        if np.any(a <= 0):
            raise ValueError(f"absorption[{el!r}] must be > 0 (a factor >= 1 that corrects for absorption).")
        out[el] = a
    return out


def _percent(w, arrays, atomic, min_total):
    els = list(w)
    if atomic:
        w = {el: w[el] / phys.atomic_weight(_z(el)) for el in els}
    total = sum(w.values())
    ok = total > max(min_total, 0.0)
    for a in arrays.values():
        ok &= np.isfinite(a)  # NaN/inf intensities give NaN (no composition), never a made-up one
    out = {}
    for el in els:
        frac = np.full(total.shape, np.nan)
        np.divide(w[el], total, out=frac, where=ok)
        out[el] = (100.0 * frac).astype(np.float32)
    return out


def _resolve_lines(keys: Iterable[str], lines: Mapping[str, str] | None, beam: float) -> dict[str, Line]:
    """The line each intensity key stands for: "Pt_Ma" names it; else ``lines[el]`` ("La");
    else the principal line of the most energetic family below 25 keV the beam excites."""
    out = {}
    lines = dict(lines or {})
    for key in keys:
        sym, _, name = str(key).partition("_")
        _z(sym)
        name = name or lines.get(key) or lines.get(sym) or ""
        known = {ln.name: ln for ln in eds_lines(sym, beam_energy_kev=beam)}
        if name:
            name = name.split()[-1]
            if name not in known:
                raise ValueError(f"{sym} has no line {name!r} (at {beam:g} keV); its lines are "
                                 f"{', '.join(n for n, ln in known.items() if ln.weight >= 0.05)}.")
            out[key] = known[name]
            continue
        usable = [known[n] for n in _PRINCIPAL_NAMES if n in known and known[n].energy <= 25000.0]
        if not usable:
            raise ValueError(f"{sym} has no K, L or M line below 25 keV at {beam:g} keV; name the line, e.g. "
                             f"'{sym}_La'.")
        out[key] = max(usable, key=lambda ln: ln.energy)
    return out


def theoretical_zeta_factors(lines: Sequence[str] | str, *, beam_energy_kev: float = 200.0,
                             solid_angle_sr: float = 0.7) -> dict[str, float]:
    """Theoretical zeta-factors (kg/m², exSpy's unit) of the given lines.

    ``ζ = A / (N_A σ ω a · Ω/4π)``: atomic weight over the X-rays one atom emits into the
    detector per incident electron (relativistic Bethe ionisation cross-section σ, xraylib
    fluorescence yield ω and radiative rate a, detector solid angle Ω; detector efficiency 1,
    so light-element lines are optimistic). ``lines``: "Fe, Pt_La" or a list; a bare symbol
    takes its most energetic principal line below 25 keV.
    """
    beam = _beam(beam_energy_kev)
    omega = positive(solid_angle_sr, "solid_angle_sr", unit="sr", high=4 * np.pi)
    try:
        keys = parse_elements(lines)
    except ValueError as exc:
        raise ValueError(f"lines: {exc}") from None
    chosen = _resolve_lines(keys, None, beam)
    return {k: phys.zeta_factor(_z(k), ln.name, beam) * 4 * np.pi / omega for k, ln in chosen.items()}


def theoretical_k_factors(lines: Sequence[str] | str, *, beam_energy_kev: float = 200.0) -> dict[str, float]:
    """Theoretical Cliff–Lorimer k-factors (weight basis, relative to Fe Kα = 1) of the lines:
    ratios of :func:`theoretical_zeta_factors`, so ``C_i ∝ k_i I_i``. Computed, not measured:
    typically within 10–20 % of measured K-line factors, worse for L/M lines and light elements."""
    beam = _beam(beam_energy_kev)
    zeta = theoretical_zeta_factors(lines, beam_energy_kev=beam)
    ref = phys.zeta_factor(26, "Ka", beam)
    return {k: z * 0.7 / (4 * np.pi) / ref for k, z in zeta.items()}


def absorption_correction(weight_fractions: Mapping[str, np.ndarray], *, lines: Mapping[str, str] | None = None,
                          mass_thickness, take_off_angle: float = 22.0,
                          beam_energy_kev: float = 200.0) -> dict[str, np.ndarray]:
    """Thin-film absorption correction factors ``χρt / (1 − exp(−χρt))`` per element (>= 1).

    ``χ_i = Σ_j w_j (μ/ρ)_j(E_i) · csc(take-off angle)``, mass attenuation coefficients from
    xraylib at each element's line energy ``E_i``; ``mass_thickness`` ρt in kg/m² (scalar or
    per pixel; 1e-3 kg/m² = 100 nm at 10 g/cm³); ``weight_fractions`` in 0..1 or percent (each
    pixel is normalised). Multiply the intensities by the factors (exSpy's ``get_abs_corr_zeta``).
    """
    beam = _beam(beam_energy_kev)
    toa = number(take_off_angle, "take_off_angle", low=0.1, high=90.0, unit="degrees")
    arrays = _intensity_arrays(weight_fractions)
    rho_t = _real_values(mass_thickness, "mass_thickness")
    if np.any(rho_t < 0) or np.any(rho_t > 1e4):
        raise ValueError("mass_thickness must be >= 0 and <= 1e4 kg/m² (ρt; 1e-3 kg/m² = 100 nm at 10 g/cm³).")
    chosen = _resolve_lines(arrays, lines, beam)
    total = sum(np.clip(a, 0, None) for a in arrays.values())
    frac = {el: np.divide(np.clip(a, 0, None), total, out=np.zeros_like(total), where=total > 0)
            for el, a in arrays.items()}
    csc = 1.0 / np.sin(np.radians(toa))
    out = {}
    for el, ln in chosen.items():
        mu = sum(frac[j] * phys.mass_attenuation(_z(j), ln.energy) for j in arrays)
        out[el] = phys.absorption_factor(mu * csc, rho_t)
    return out


@dataclass
class Quantification:
    """Result of :func:`quantify`: ``atomic_percent`` and ``weight_percent`` maps per element,
    ``mass_thickness`` (kg/m², zeta method or given thickness × density, else None),
    ``factors`` (k- or zeta-factor per element) with ``factor_source`` "user" or "theoretical",
    ``lines`` used ("Fe Ka"), ``absorption`` factors (None without correction), ``iterations``
    of the absorption loop, ``notes`` to show with the numbers."""

    method: str
    atomic_percent: dict[str, np.ndarray]
    weight_percent: dict[str, np.ndarray]
    factors: dict[str, float]
    factor_source: str
    lines: dict[str, str]
    mass_thickness: np.ndarray | None = None
    absorption: dict[str, np.ndarray] | None = None
    iterations: int = 0
    notes: list[str] = field(default_factory=list)


def quantify(
    intensities: Mapping[str, np.ndarray],
    *,
    method: str = "cliff_lorimer",
    k_factors: Mapping[str, float] | None = None,
    zeta_factors: Mapping[str, float] | None = None,
    dose=None,
    lines: Mapping[str, str] | None = None,
    beam_energy_kev: float = 200.0,
    thickness: float | None = None,
    density: float | None = None,
    take_off_angle: float = 22.0,
    solid_angle_sr: float = 0.7,
    max_iter: int = 30,
    min_total: float = 0.0,
) -> Quantification:
    """Composition from net line intensities, by Cliff–Lorimer or the zeta-factor method, with
    an optional thin-film absorption correction.

    - ``method="cliff_lorimer"``: ``k_factors`` as given (``factor_source="user"``); when none
      are given, :func:`theoretical_k_factors` (``factor_source="theoretical"``, said in
      ``notes``). Absorption: give ``thickness`` (Å); ``density`` (g/cm³) defaults to the
      mixture's ``1 / Σ w_i/ρ_i`` from xraylib element densities, updated each iteration.
    - ``method="zeta"``: ``ρt C_i = ζ_i I_i A_i / dose`` (exSpy's ``quantification_zeta_factor``),
      ``dose`` the number of electrons (scalar or per pixel), ``zeta_factors`` in kg/m² (default
      :func:`theoretical_zeta_factors`). The mass thickness comes out of it; the absorption
      correction (``take_off_angle`` given) is iterated with it, as exSpy does.

    The absorption loop runs until compositions change by < 1e-4 or ``max_iter`` iterations.
    Pixels whose summed net counts are ``<= min_total`` (no particle, only noise) give NaN.
    """
    method = str(method)
    if method not in ("cliff_lorimer", "zeta"):
        raise ValueError(f"method must be 'cliff_lorimer' or 'zeta'; got {method!r}.")
    beam = _beam(beam_energy_kev)
    arrays = _intensity_arrays(intensities)
    els = list(arrays)
    if len(els) < 2 and method == "cliff_lorimer":
        raise ValueError("Cliff–Lorimer quantification needs at least two elements.")
    chosen = _resolve_lines(els, lines, beam)
    toa = number(take_off_angle, "take_off_angle", low=0.1, high=90.0, unit="degrees")
    max_iter = int(number(max_iter, "max_iter", low=0, high=1000))
    min_total = nonnegative(min_total, "min_total", high=None)
    given = k_factors if method == "cliff_lorimer" else zeta_factors
    notes = []
    if given:
        missing = [el for el in els if el not in given and el.split("_")[0] not in given]
        if missing:
            kind = "k-factor" if method == "cliff_lorimer" else "zeta-factor"
            raise ValueError(f"Give a {kind} for {', '.join(missing)} too, or give none to use theoretical ones.")
        factors = {el: positive(given.get(el, given.get(el.split("_")[0])), f"factors[{el!r}]", high=1e12)
                   for el in els}
        source = "user"
    else:
        keys = [f"{el.split('_')[0]}_{chosen[el].name}" for el in els]
        theo = (theoretical_k_factors(keys, beam_energy_kev=beam) if method == "cliff_lorimer"
                else theoretical_zeta_factors(keys, beam_energy_kev=beam, solid_angle_sr=solid_angle_sr))
        factors = dict(zip(els, theo.values()))
        source = "theoretical"
        notes.append(f"theoretical {'k' if method == 'cliff_lorimer' else 'zeta'}-factors at {beam:g} keV "
                     "(Bethe cross-sections, xraylib yields and rates, detector efficiency 1): ±10–20 %, "
                     "worse for light elements; measure them on a standard for accurate numbers")
    clean = {el: np.clip(np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0), 0, None) for el, a in arrays.items()}
    shape = next(iter(arrays.values())).shape
    if method == "zeta":
        if dose is None:
            raise ValueError("The zeta-factor method needs the dose (electrons: beam current × dwell time / e).")
        dose_a = np.broadcast_to(_real_values(dose, "dose"), shape)
        if np.any(dose_a <= 0):
            raise ValueError("dose must be > 0 electrons (beam current × dwell time / e).")
    else:
        t_m = None if thickness is None else positive(thickness, "thickness", unit="Å") * 1e-10
        rho = None if density is None else positive(density, "density", unit="g/cm³", high=30.0) * 1000.0
    acf = {el: np.ones(shape) for el in els}
    rho_t = None
    absorb = method == "zeta" and thickness is None or (method == "cliff_lorimer" and thickness is not None)
    it = 0
    for it in range(max_iter + 1):
        w = {el: factors[el] * acf[el] * clean[el] for el in els}
        total = sum(w.values())
        wt = {el: np.divide(w[el], total, out=np.full(shape, np.nan), where=total > 0) for el in els}
        if method == "zeta":
            rho_t = total / dose_a
        elif t_m is not None:
            rho_t = t_m * (rho if rho is not None else _mixture_density(wt))
        if not absorb or it == max_iter:
            break
        new = absorption_correction({el: np.nan_to_num(wt[el]) for el in els},
                                    lines={el: chosen[el].name for el in els}, mass_thickness=np.nan_to_num(rho_t),
                                    take_off_angle=toa, beam_energy_kev=beam)
        change = max(float(np.nanmax(np.abs(new[el] - acf[el]))) for el in els)
        acf = new
        if change < 1e-4:
            break
    empty = sum(clean.values()) <= min_total
    weight = {el: np.where(empty, np.nan, 100.0 * wt[el]).astype(np.float32) for el in els}
    atomic = _percent({el: np.nan_to_num(wt[el]) for el in els}, arrays, True, 0.0)
    for el in els:
        atomic[el][~np.isfinite(wt[el]) | empty] = np.nan
    return Quantification(method, atomic, weight, factors, source, {el: chosen[el].label for el in els},
                          None if rho_t is None else np.asarray(rho_t, dtype=np.float64),
                          acf if absorb else None, it, notes)


def _real_values(value, name: str) -> np.ndarray:
    """A number or array of finite real numbers (float64), else ValueError naming ``name``."""
    if np.iscomplexobj(value):
        raise ValueError(f"{name} must be real (a number or one per pixel); got complex values.")
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers; got {type(value).__name__}.") from None
    return real_array(a, name, dtype=np.float64, min_size=0)


def _mixture_density(weight_fractions) -> np.ndarray:
    """Density of a mixture, kg/m³: ``1 / Σ w_i / ρ_i`` with xraylib element densities."""
    import xraylib

    inv = sum(np.nan_to_num(w) / (1000.0 * xraylib.ElementDensity(_z(el))) for el, w in weight_fractions.items())
    return np.divide(1.0, inv, out=np.full(np.shape(inv), np.nan), where=inv > 0)
