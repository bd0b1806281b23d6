"""EELS edges (xraylib onsets), detected onsets and background / integration windows that respect the spectrum.

Conventions: :mod:`napari_cryomat.core.spectral`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_cryomat.core._spectral_base import (
    _MAX_EV,
    _energy_range,
    _parse_elements_arg,
    _z,
    check_energy_axis,
    window_slice,
)
from napari_cryomat.core._validate import (
    nonnegative,
    number,
    positive,
    real_array,
)


@dataclass(frozen=True)
class Edge:
    """An EELS ionisation edge: ``element``, ``name`` ("K", "L2,3", "M4,5"), ``onset`` in eV."""

    element: str
    name: str
    onset: float

    @property
    def label(self) -> str:
        return f"{self.element} {self.name}"


# edge name -> xraylib shell whose binding energy is the onset (the lower of the pair)
_EELS_SHELLS = (("K", "K_SHELL"), ("L2,3", "L3_SHELL"), ("M4,5", "M5_SHELL"))


def eels_edges(element: str, *, energy_range: tuple[float, float] | None = None) -> list[Edge]:
    """EELS edges (K, L2,3, M4,5) of ``element`` with onsets from ``xraylib.EdgeEnergy``.

    Parameters
    ----------
    element : str
        Chemical symbol, e.g. "Fe".
    energy_range : (float, float), optional
        Keep only edges with onset in this range, eV.

    Returns
    -------
    list of Edge, sorted by onset (eV).
    """
    import xraylib

    z = _z(element)
    energy_range = _energy_range(energy_range)
    sym = element.split("_")[0]
    edges = []
    for name, shell in _EELS_SHELLS:
        try:
            onset = 1000.0 * xraylib.EdgeEnergy(z, getattr(xraylib, shell))
        except ValueError:
            continue
        if onset < 10.0:  # below the plasmons: not an edge anyone maps
            continue
        if energy_range is None or energy_range[0] <= onset <= energy_range[1]:
            edges.append(Edge(sym, name, onset))
    return sorted(edges, key=lambda e: e.onset)


def _nearest_listing(items, energy: np.ndarray, key) -> str:
    items = sorted(items, key=lambda it: min(abs(key(it) - energy[0]), abs(key(it) - energy[-1])))[:4]
    return ", ".join(f"{it.label} at {key(it):.0f} eV" for it in items) or "none known"


def choose_edge(element: str, *, energy: np.ndarray, min_pre_edge: float = 5.0) -> Edge:
    """The edge of ``element`` to map within ``energy``: the lowest-onset one with room for a
    pre-edge window (``min_pre_edge`` eV) and a post-edge window.

    ``element`` may name the edge: "Fe_L" / "Fe_L2,3", "O_K", "Ce_M".
    Raises ValueError listing the element's nearest edges when none is in range.
    """
    _z(element)
    energy = check_energy_axis(energy)
    min_pre_edge = nonnegative(min_pre_edge, "min_pre_edge", unit="eV", high=_MAX_EV)
    sym, _, want = element.partition("_")
    edges = eels_edges(sym)
    if want:
        w = want.upper().replace(" ", "")
        edges = [e for e in edges if e.name.replace(",", "").startswith(w.replace(",", "")[:2]) or e.name[0] == w[0]]
    lo = energy[0] + min_pre_edge
    hi = energy[-1] - 2 * (energy[1] - energy[0])
    usable = [e for e in edges if lo < e.onset < hi]
    if not usable:
        raise ValueError(
            f"{sym} has no EELS edge in the recorded range {energy[0]:.0f}–{energy[-1]:.0f} eV "
            f"(with room for a background window). Nearest edges: "
            f"{_nearest_listing(eels_edges(sym), energy, lambda e: e.onset)}."
        )
    return usable[0]


def default_eels_windows(onset: float, *, energy: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Default (background, integration) windows in eV for an edge at ``onset`` eV.

    Background: width ``clip(0.2*onset, 10, 100)`` eV, ending ``clip(0.02*onset, 2, 10)`` eV
    before the onset. Integration: from the onset, width ``clip(0.2*onset, 10, 100)`` eV.
    Both are clipped to the recorded range.
    """
    onset = positive(onset, "onset", unit="eV", high=_MAX_EV)
    energy = check_energy_axis(energy)
    width = float(np.clip(0.2 * onset, 10.0, 100.0))
    gap = float(np.clip(0.02 * onset, 2.0, 10.0))
    step = energy[1] - energy[0]
    b1 = onset - gap
    b0 = max(energy[0], b1 - width)
    i1 = min(energy[-1] + step, onset + width)
    return (float(b0), float(b1)), (float(onset), float(i1))


def detect_edge_onsets(
    spectrum,
    *,
    energy,
    min_snr: float = 8.0,
    min_jump: float = 0.02,
    width: float | None = None,
    min_energy: float = 30.0,
) -> np.ndarray:
    """Onsets (eV) of ionisation edges seen in a spectrum, listed or not.

    At every channel the counts of the next ``width`` eV (default 5 eV) are compared with the
    local power law extrapolated from the two preceding ``width`` windows. An onset is where the excess is more than ``min_snr`` standard deviations
    of the counting noise and more than ``min_jump`` (fraction) of the extrapolated background,
    taken at the strongest channel of each run; runs closer than ``2 width`` are one onset.
    Energies below ``min_energy`` (the plasmon region) are not searched.
    """
    energy = check_energy_axis(energy)
    spec = real_array(spectrum, "spectrum", ndim=1, dtype=np.float64, min_size=2)
    if spec.size != energy.size:
        raise ValueError(f"The spectrum has {spec.size} channels but the energy axis has {energy.size}.")
    min_snr = positive(min_snr, "min_snr", high=1e6)
    min_jump = nonnegative(min_jump, "min_jump", high=1e3)
    min_energy = number(min_energy, "min_energy", low=-_MAX_EV, high=_MAX_EV, unit="eV")
    step = float(energy[1] - energy[0])
    width = positive(width if width is not None else max(5.0, 4 * step), "width", unit="eV", high=_MAX_EV)
    n = max(2, int(round(width / step)))
    if spec.size < 3 * n + 1:
        return np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(np.maximum(spec, 0.0))])
    i = np.arange(2 * n, spec.size - n + 1)
    a0, a1, a2 = c[i - n] - c[i - 2 * n], c[i] - c[i - n], c[i + n] - c[i]
    # window centres E0 < E1 < E2; a power law gives a2 = a1 (a1/a0)^p with p = ln(E2/E1) / ln(E1/E0)
    e_mid = energy[0] + step * (np.arange(spec.size + 1) - 0.5 * n)
    e0, e1, e2 = e_mid[i - n], e_mid[i], e_mid[i + n]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where((e0 > 0), np.log(e2 / e1) / np.log(e1 / e0), 1.0)
        pred = np.where((a0 > 0) & (e0 > 0), a1 * np.power(a1 / a0, p), np.inf)
        var = a2 + pred**2 * ((1 + p) ** 2 / np.maximum(a1, 1.0) + p**2 / np.maximum(a0, 1.0))
        z = (a2 - pred) / np.sqrt(np.maximum(var, 1.0))
        jump = a2 / pred - 1.0
    hit = (z > min_snr) & (jump > min_jump) & np.isfinite(z) & (energy[np.minimum(i, energy.size - 1)] >= min_energy)
    onsets, run = [], []
    for k in np.flatnonzero(hit):
        if run and k - run[-1] > 2 * n:
            onsets.append(run[int(np.argmax(z[run]))])
            run = []
        run.append(k)
    if run:
        onsets.append(run[int(np.argmax(z[run]))])
    return np.array([energy[i[k]] for k in onsets], dtype=np.float64)


@dataclass(frozen=True)
class EdgeWindows:
    """The windows of one element's edge: ``background`` (one (start, stop) or a list of them for a
    multi-window fit) and ``integration`` in eV; ``clean`` is False when no window of the minimum
    width fits between a preceding edge and the onset (or the next edge cuts the integration),
    and ``message`` then says so and what to do."""

    element: str
    edge: Edge
    background: tuple
    integration: tuple[float, float]
    clean: bool = True
    message: str = ""


def _after_edge_margin(onset: float) -> float:
    """Energy above an edge onset taken by its near-edge structure (no power law there), eV."""
    return max(30.0, 0.06 * onset)


def _near_edge_end(onset: float, energy: np.ndarray, spectrum) -> float:
    """Where the near-edge structure of the edge at ``onset`` ends, eV: :func:`_after_edge_margin` above the
    onset, or later where ``spectrum`` still rises significantly beyond that (a near-edge peak).

    A rise counts when the mean of the next 2 eV exceeds that of the last 2 eV by 3 standard errors (the noise
    measured from channel-to-channel differences). Why: on exSpy's real MnO spectrum the O K near-edge peaks run to 570 eV, 38 eV above the onset; a Mn L2,3
    background window from 564 eV (the fixed margin) put the Mn integral 5 % below exSpy's fit over the clean
    575-632 eV window. Idealised edges (no near-edge peaks) keep the fixed margin and its wider window.
    """
    end = onset + _after_edge_margin(onset)
    if spectrum is None:
        return end
    step = float(energy[1] - energy[0])
    half = max(2, int(round(2.0 / step)))  # compare the means of two 2 eV blocks
    lo, hi = np.searchsorted(energy, [end - 5.0, onset + 2 * _after_edge_margin(onset)])
    lo, hi = max(int(lo), half), min(int(hi), spectrum.size - half)
    if hi <= lo:
        return end
    noise = 1.4826 * np.median(np.abs(np.diff(spectrum[lo - half:hi + half]))) / np.sqrt(2.0)  # per channel
    sums = np.concatenate([[0.0], np.cumsum(spectrum)])
    centres = np.arange(lo, hi)
    rise = (sums[centres + half] - sums[centres]) / half - (sums[centres] - sums[centres - half]) / half
    rising = centres[rise > 3.0 * noise * np.sqrt(2.0 / half)]
    return max(end, float(energy[rising[-1]]) + 3 * half * step) if rising.size else end  # past the peak's fall


def _obstacles(elements: list[str], energy: np.ndarray, spectrum) -> list[tuple[float, str]]:
    """(onset, label) of every edge of the listed elements in range and of the onsets detected in
    ``spectrum`` that no listed edge explains."""
    known = []
    for el in elements:
        known += [(e.onset, e.label) for e in eels_edges(el.split("_")[0]) if energy[0] < e.onset < energy[-1]]
    out = list(known)
    if spectrum is not None:
        for o in detect_edge_onsets(spectrum, energy=energy):
            # within a listed edge's near-edge region (and 10 eV past its last peak) a detection is that peak
            if not any(k - 5.0 <= o <= _near_edge_end(k, energy, spectrum) + 10.0 for k, _ in known):
                out.append((float(o), f"an unlisted edge at {o:.0f} eV"))
    return sorted(out)


def plan_eels_windows(
    elements,
    *,
    energy,
    spectrum=None,
    min_width: float | None = None,
) -> dict[str, EdgeWindows]:
    """Background and integration windows for each element that never straddle another edge.

    The background window ends ``clip(0.02 onset, 2, 10)`` eV before the onset and is
    ``clip(0.2 onset, 10, 100)`` eV wide, but starts no earlier than
    ``max(30, 0.06 onset')`` eV above any preceding onset', later where the spectrum still rises there
    (near-edge peaks, :func:`_near_edge_end`): the edges of
    all ``elements`` and, when ``spectrum`` (e.g. the sum spectrum) is given, the onsets
    detected in it (:func:`detect_edge_onsets`). The integration window stops before the next
    such edge. When the clean background window is narrower than ``min_width`` (default
    ``max(10, 0.05 onset)`` eV) the plan is marked not ``clean`` with a message offering a
    multi-window fit or the linear model fit of :func:`napari_cryomat.core.eels_quant.fit_edges`.
    """
    energy = check_energy_axis(energy)
    els = _parse_elements_arg(elements)
    if spectrum is not None:
        spectrum = real_array(spectrum, "spectrum", ndim=1, dtype=np.float64, min_size=2)
        if spectrum.size != energy.size:
            raise ValueError(f"The spectrum has {spectrum.size} channels but the energy axis has {energy.size}.")
    min_width = positive(min_width, "min_width", unit="eV", high=_MAX_EV) if min_width is not None else None
    obstacles = _obstacles(els, energy, spectrum)
    step = float(energy[1] - energy[0])
    e_end = float(energy[-1] + step)
    out = {}
    for el in els:
        edge = choose_edge(el, energy=energy)
        onset = edge.onset
        width = float(np.clip(0.2 * onset, 10.0, 100.0))
        gap = float(np.clip(0.02 * onset, 2.0, 10.0))
        need = min_width if min_width is not None else max(10.0, 0.05 * onset)
        end = onset - gap
        before = [(o, lab) for o, lab in obstacles if o < onset - 2.0]
        start, limit = max(float(energy[0]), end - width), None
        for o, lab in before:
            # near-edge peaks are looked for after the listed edges only: an unlisted onset is weak, and the
            # ripple after it in a real spectrum (exSpy's MnO near 500 eV) would pass for them
            listed = not lab.startswith("an unlisted edge")
            near_edge_end = _near_edge_end(o, energy, spectrum if listed else None)
            if near_edge_end > start:
                start, limit = near_edge_end, (o, lab)
        after = [o for o, _ in obstacles if o > onset + max(10.0, 0.02 * onset)]
        stop = min([onset + width, e_end] + [o - 2.0 for o in after])
        clean, msg = True, ""
        if end - start < need:
            clean = False
            what = f"{limit[1]} ({limit[0]:.0f} eV)" if limit else f"the start of the spectrum ({energy[0]:.0f} eV)"
            msg = (f"{edge.label}: no clean background window of at least {need:.0f} eV between {what} and the onset "
                   f"({onset:.0f} eV). Fit the background over several windows (windows={{'{el}': {{'background': "
                   f"[(lo1, hi1), (lo2, hi2)]}}}}) or fit all edges with the linear model (eels_quant.fit_edges).")
            if end - start < 2 * step:  # nothing clean at all: the plain default, flagged
                start = max(float(energy[0]), end - width)
        if stop - onset < 10.0:
            clean = False
            msg += (f" {edge.label}: the next edge starts {stop + 2 - onset:.0f} eV after the onset; the integration "
                    "window is too short: fit the overlapping edges with the linear model (eels_quant.fit_edges).")
        out[el] = EdgeWindows(el, edge, (float(start), float(end)), (float(onset), float(stop)), clean, msg.strip())
    return out


def is_multi_window(window) -> bool:
    """True for a list of (start, stop) windows rather than one window."""
    try:
        arr = np.asarray(window, dtype=object)
    except Exception:  # noqa: BLE001
        return False
    return arr.ndim == 2 and arr.shape[1] == 2 or (arr.ndim == 1 and len(arr) > 0 and all(
        isinstance(w, (tuple, list, np.ndarray)) for w in window))


def background_channels(energy, window, *, what: str = "background window"):
    """Channels of one window (a slice) or of several windows (sorted unique indices) of ``energy``."""
    if not is_multi_window(window):
        return window_slice(energy, window, what=what)
    parts = list(window)
    if not 1 <= len(parts) <= 16:
        raise ValueError(f"The {what} must be one (start, stop) or 1 to 16 of them; got {len(parts)}.")
    idx = [np.arange(sl.start, sl.stop) for sl in
           (window_slice(energy, w, what=f"{what} {k + 1}") for k, w in enumerate(parts))]
    return np.unique(np.concatenate(idx))


def _window_stop(energy, window) -> int:
    ch = background_channels(energy, window)
    return int(ch.stop if isinstance(ch, slice) else ch[-1] + 1)
