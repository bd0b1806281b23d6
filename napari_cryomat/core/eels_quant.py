"""EELS quantification: hydrogenic K and L cross-sections, atomic ratios, linear model fit.

Cross-sections follow Egerton's SIGMAK3 / SIGMAL3 models (R. F. Egerton, *Electron
Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed., Springer 2011, sec. 3.6 and
appendix B): the generalised oscillator strength (GOS) of a hydrogen-like atom with a
Slater-screened charge, relativistic kinematics, integrated over the scattering vector allowed
by the collection angle ``beta``; a convergence angle ``alpha`` enters through Egerton's
effective collection angle. Written here from the published formulas (numpy, vectorised).

Units: energies in eV, beam energy ``e0`` in keV, angles in mrad, cross-sections in barn
(1 barn = 1e-24 cm² = 1e-10 nm²), per atom.

Atomic ratios from edge integrals (Egerton eq. 4.65): ``N_a / N_b = (I_a / σ_a(β, Δ)) /
(I_b / σ_b(β, Δ))`` with the same integration width Δ or each edge's own.

The linear model fit (:func:`fit_edges`) models every spectrum as a power law with a fixed
exponent ``r0`` times a quadratic in ``ln E`` (which absorbs the pixel-to-pixel variation of the
exponent) plus the differential cross-section of each edge. All terms are linear in their
coefficients, so one weighted least-squares projection solves every pixel at once, in closed
form, as HyperSpy's ``multifit(optimizer="lstsq")`` does with fixed non-linear parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from napari_cryomat.core import spectral as sp
from napari_cryomat.core._progress import ProgressCallback, sub_progress
from napari_cryomat.core._validate import nonnegative, number, positive, real_array, window

__all__ = [
    "EdgeFit",
    "effective_collection_angle",
    "differential_cross_section",
    "edge_cross_section",
    "atomic_ratios",
    "quantify_maps",
    "fit_edges",
]

_RYDBERG = 13.606  # eV
_MC2 = 511.06  # electron rest energy, keV
_FOUR_PI_A0_SQ = 3.5166e8  # 4 π a0² in barn
#: Egerton's empirical exponent of the L-shell correction for Z = 11 .. 36 (SIGMAL3); 0.1 above.
_L_CORRECTION = (0.82, 0.52, 0.52, 0.42, 0.30, 0.29, 0.22, 0.30, 0.22, 0.16, 0.12, 0.13, 0.13,
                 0.14, 0.16, 0.18, 0.19, 0.22, 0.14, 0.11, 0.12, 0.12, 0.12, 0.10, 0.10, 0.10)
_GAUSS = np.polynomial.legendre.leggauss(96)


def _beam(e0: float, beta: float, alpha: float):
    e0 = positive(e0, "e0", unit="keV", high=5000.0)
    beta = positive(beta, "beta", unit="mrad", high=1000.0)
    alpha = nonnegative(alpha, "alpha", unit="mrad", high=1000.0)
    return e0, beta, alpha


def effective_collection_angle(energy_loss, *, e0: float, alpha: float, beta: float) -> np.ndarray:
    """Egerton's effective collection angle (mrad) for convergence ``alpha`` and collection
    ``beta`` (mrad) at ``energy_loss`` (eV) and beam energy ``e0`` (keV): the angle that, with a
    parallel beam, collects the same fraction of the inelastic scattering (Egerton 2011, appendix
    B, program CONCOR2). Equals ``beta`` when ``alpha`` is 0."""
    e0, beta, alpha = _beam(e0, beta, alpha)
    e = real_array(np.atleast_1d(energy_loss), "energy_loss", ndim=1, dtype=np.float64)
    if np.any(e <= 0):
        raise ValueError("energy_loss must be positive (eV) for an effective collection angle.")
    if alpha == 0:
        return np.full(e.shape, beta)
    tgt = e0 * (1.0 + e0 / 1022.0) / (1.0 + e0 / 511.0)  # γ m v² / 2 in keV... times 2 in eV/mrad units
    theta_e = e / tgt  # mrad (e in eV, tgt in keV)
    a2, b2, t2 = alpha**2 * 1e-6, beta**2 * 1e-6, theta_e**2 * 1e-6
    eta1 = np.sqrt((a2 + b2 + t2) ** 2 - 4.0 * a2 * b2) - a2 - b2 - t2
    eta2 = 2.0 * b2 * np.log(0.5 / t2 * (np.sqrt((a2 + t2 - b2) ** 2 + 4.0 * b2 * t2) + a2 + t2 - b2))
    eta3 = 2.0 * a2 * np.log(0.5 / t2 * (np.sqrt((b2 + t2 - a2) ** 2 + 4.0 * a2 * t2) + b2 + t2 - a2))
    f1 = (eta1 + eta2 + eta3) / 2.0 / a2 / np.log(1.0 + b2 / t2)
    f2 = f1 * a2 / b2 if alpha > beta else f1
    return theta_e * np.sqrt(np.exp(f2 * np.log(1.0 + b2 / t2)) - 1.0)


def _k_gos(e: np.ndarray, qa02: np.ndarray, z: int) -> np.ndarray:
    """Hydrogenic K-shell GOS per eV per atom, df/dE(E, q²a0²) (both electrons)."""
    zs, electrons = (1.0, 1) if z == 1 else (z - 0.5, 2)
    q = qa02 / zs**2
    kh2 = e / (_RYDBERG * zs**2) - 1.0  # (k a0 / zs)² of the ejected electron; < 0 below the hydrogenic edge
    akh = np.maximum(np.sqrt(np.abs(kh2)), 0.01)
    s = q - kh2 + 1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        c_above = np.exp(-2.0 / akh * np.arctan2(2.0 * akh, s))
        d_above = 1.0 - np.exp(-2.0 * np.pi / akh)
        c_below = np.exp(-1.0 / akh * np.log((s + 2.0 * akh) / (s - 2.0 * akh)))
    c = np.where(kh2 >= 0, c_above, c_below)
    d = np.where(kh2 >= 0, d_above, 1.0)
    a = (s**2 + 4.0 * kh2) ** 3
    return 128.0 * electrons * e / (_RYDBERG * zs**4) * c / d * (q + kh2 / 3.0 + 1.0 / 3.0) / (a * _RYDBERG)


def _l_gos(e: np.ndarray, qa02: np.ndarray, z: int, onset_l3: float, onset_l1: float) -> np.ndarray:
    """Hydrogenic L-shell GOS per eV per atom (2p below the L1 onset, 2s + 2p above), with
    Egerton's empirical near-edge correction."""
    zs = z - 0.35 * 7 - 1.7
    u = _L_CORRECTION[z - 11] if 0 <= z - 11 < len(_L_CORRECTION) else 0.1
    q = qa02 / zs**2
    kh2 = e / (_RYDBERG * zs**2) - 0.25
    akh = np.maximum(np.sqrt(np.abs(kh2)), 1e-3)
    s = q - kh2 + 0.25
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        c_above = np.exp(-2.0 / akh * np.arctan2(akh, s))
        d_above = 1.0 - np.exp(-2.0 * np.pi / akh)
        c_below = np.exp(-1.0 / akh * np.log((s + akh) / (s - akh)))
    c = np.where(kh2 >= 0, c_above, c_below)
    d = np.where(kh2 >= 0, d_above, 1.0)
    g_2p = (2.25 * q**4 - (0.75 + 3 * kh2) * q**3 + (0.59375 - 0.75 * kh2 - 0.5 * kh2**2) * q**2
            + (0.11146 + 0.85417 * kh2 + 1.8833 * kh2**2 + kh2**3) * q
            + 0.0035807 + kh2 / 21.333 + kh2**2 / 4.5714 + kh2**3 / 2.4 + kh2**4 / 4)
    a_2p = (s**2 + kh2) ** 5
    g_2s = (q**3 - (5 / 3 * kh2 + 11 / 12) * q**2 + (kh2**2 / 3 + 1.5 * kh2 + 65 / 48) * q
            + kh2**3 / 3 + 0.75 * kh2**2 + 23 / 48 * kh2 + 5 / 64)
    a_2s = (s**2 + kh2) ** 4
    below_l1 = e <= onset_l1
    ga = np.where(below_l1, g_2p / a_2p, g_2s / a_2s)
    rf = np.power(np.maximum(e + 0.1 - onset_l3, 1e-6) / 1.8 / z**2, u)
    return rf * 32.0 * ga * c / d * e / _RYDBERG**2 / zs**4


def _shell(element: str, edge: str | None, energy_hint: np.ndarray | None):
    """(Z, shell "K"/"L", onset, L1 onset) of ``element``'s K or L2,3 edge."""
    import xraylib

    z = sp._z(element)
    sym, _, want = element.partition("_")
    want = (edge or want or "").upper().replace(",", "").replace(" ", "")
    if not want:
        if energy_hint is not None:
            want = sp.choose_edge(sym, energy=energy_hint).name[0]
        else:
            want = "K" if z <= 20 else "L"
    if want[0] not in "KL":
        raise ValueError(
            f"Hydrogenic cross-sections exist for K and L2,3 edges only; element {element!r} was given edge "
            f"{want!r}. Pick a K or L edge (e.g. '{sym}_K' or '{sym}_L') or quantify with measured k-factors."
        )
    if want[0] == "K":
        if z < 1:
            raise ValueError(f"element {element!r} has no K edge.")
        return z, "K", 1000.0 * xraylib.EdgeEnergy(z, xraylib.K_SHELL), np.inf
    if z < 11:
        raise ValueError(
            f"element {element!r}: the hydrogenic L-shell model covers Z >= 11 (Na and heavier); use the K edge."
        )
    return z, "L", 1000.0 * xraylib.EdgeEnergy(z, xraylib.L3_SHELL), 1000.0 * xraylib.EdgeEnergy(z, xraylib.L1_SHELL)


def _dsigma_de(e: np.ndarray, z: int, shell: str, onset: float, onset_l1: float,
               e0: float, beta: float, alpha: float) -> np.ndarray:
    """dσ/dE in barn/eV at energies ``e`` (> 0) integrated up to the (effective) angle."""
    gamma = 1.0 + e0 / _MC2
    t = 1000.0 * _MC2 * (1.0 - 1.0 / gamma**2) / 2.0  # m v² / 2, eV
    b = effective_collection_angle(e, e0=e0, alpha=alpha, beta=beta) * 1e-3
    qmin = e**2 / (4 * _RYDBERG * t) + e**3 / (8 * gamma**3 * _RYDBERG * t**2)
    p02 = t / (_RYDBERG * (1 - 2 * t / (1000.0 * _MC2)))
    pp2 = p02 - e / _RYDBERG * (gamma - e / (2000.0 * _MC2))
    qmax = qmin + 4.0 * np.sqrt(p02 * np.maximum(pp2, 0.0)) * np.sin(b / 2.0) ** 2
    x, w = _GAUSS
    lo, hi = np.log(qmin)[:, None], np.log(qmax)[:, None]
    lnq = lo + (hi - lo) * (x[None, :] + 1.0) / 2.0
    ee = e[:, None]
    gos = _k_gos(ee, np.exp(lnq), z) if shell == "K" else _l_gos(ee, np.exp(lnq), z, onset, onset_l1)
    integral = (gos * w[None, :]).sum(axis=1) * (hi - lo)[:, 0] / 2.0
    return _FOUR_PI_A0_SQ * (_RYDBERG / t) * (_RYDBERG / e) * integral


def differential_cross_section(
    element: str,
    *,
    energy,
    e0: float,
    beta: float,
    alpha: float = 0.0,
    edge: str | None = None,
    onset: float | None = None,
) -> np.ndarray:
    """Hydrogenic dσ/dE (barn/eV per atom) of ``element``'s K or L2,3 edge at the channel
    energies ``energy`` (eV); 0 below the onset (xraylib's, or ``onset`` eV to follow a chemical
    shift). ``element`` may name the edge ("Mn_L", "O_K"); by default the edge :func:`choose_edge`
    picks within ``energy``."""
    e = sp.check_energy_axis(energy)
    e0, beta, alpha = _beam(e0, beta, alpha)
    z, shell, edge_onset, onset_l1 = _shell(element, edge, e)
    if onset is not None:
        shift = number(onset, "onset", low=1.0, high=1e6, unit="eV") - edge_onset
        edge_onset, onset_l1 = edge_onset + shift, onset_l1 + shift
    out = np.zeros(e.size)
    above = e >= edge_onset
    if np.any(above):
        out[above] = _dsigma_de(e[above], z, shell, edge_onset, onset_l1, e0, beta, alpha)
    return out


def edge_cross_section(
    element: str,
    *,
    width: float,
    e0: float,
    beta: float,
    alpha: float = 0.0,
    edge: str | None = None,
) -> float:
    """σ(β, Δ): the hydrogenic cross-section of ``element``'s K or L2,3 edge integrated from the
    onset over ``width`` = Δ eV, in barn per atom (Egerton's SIGMAK3 / SIGMAL3)."""
    width = positive(width, "width", unit="eV", high=1e5)
    e0, beta, alpha = _beam(e0, beta, alpha)
    z, shell, onset, onset_l1 = _shell(element, edge, None)
    n = max(64, int(np.ceil(width / 0.25)))
    e = onset + (np.arange(n) + 0.5) * (width / n)  # midpoint rule
    return float(_dsigma_de(e, z, shell, onset, onset_l1, e0, beta, alpha).sum() * width / n)


def atomic_ratios(
    intensities: Mapping[str, np.ndarray],
    *,
    cross_sections: Mapping[str, float],
) -> dict[str, np.ndarray]:
    """Atomic percent per pixel from edge integrals ``intensities`` {element: map of counts} and
    the matching integrated cross-sections ``cross_sections`` {element: σ(β, Δ) in barn}:
    ``N_i ∝ I_i / σ_i``. Pixels with a non-positive total are NaN."""
    if not isinstance(intensities, Mapping) or len(intensities) < 2:
        raise ValueError("intensities must map at least two elements to their edge integrals.")
    if not isinstance(cross_sections, Mapping):
        raise ValueError("cross_sections must map each element to its cross-section σ(β, Δ) in barn.")
    n = {}
    for el, inten in intensities.items():
        if el not in cross_sections:
            raise ValueError(f"cross_sections has no value for element {el!r}: compute it with edge_cross_section().")
        sigma = positive(cross_sections[el], f"cross_sections[{el!r}]", unit="barn", high=1e12)
        n[el] = real_array(np.atleast_1d(inten), f"intensities[{el!r}]", dtype=np.float64, finite=False) / sigma
    shapes = {v.shape for v in n.values()}
    if len(shapes) != 1:
        raise ValueError(f"The intensity maps have different shapes {sorted(shapes)}; give maps of one shape.")
    total = sum(n.values())
    with np.errstate(divide="ignore", invalid="ignore"):
        return {el: np.where(total > 0, 100.0 * v / total, np.nan).astype(np.float32) for el, v in n.items()}


def quantify_maps(
    maps: Mapping[str, sp.ElementMap],
    *,
    e0: float,
    beta: float,
    alpha: float = 0.0,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Atomic percent maps from the EELS maps of :func:`~napari_cryomat.core.spectral.eels_maps`:
    each element's cross-section is integrated over its own integration window.
    Returns (atomic percent {element: map}, cross-sections {element: barn})."""
    if not isinstance(maps, Mapping) or len(maps) < 2:
        raise ValueError("maps must hold the EELS maps of at least two elements (from eels_maps).")
    e0, beta, alpha = _beam(e0, beta, alpha)
    sigmas = {}
    for el, m in maps.items():
        if not isinstance(m, sp.ElementMap) or m.kind != "eels":
            raise ValueError(f"maps[{el!r}] is not an EELS map from eels_maps().")
        lo, hi = window(m.windows["integration"], f"{el} integration window", unit="eV")
        z, shell, onset, onset_l1 = _shell(el.split("_")[0], m.feature.split()[-1], None)
        e = np.linspace(lo, hi, max(64, int(np.ceil((hi - lo) / 0.25))) + 1)
        e = 0.5 * (e[1:] + e[:-1])
        ds = _dsigma_de(e[e >= onset], z, shell, onset, onset_l1, e0, beta, alpha)
        sigmas[el] = float(ds.sum() * (e[1] - e[0]))
    return atomic_ratios({el: m.data for el, m in maps.items()}, cross_sections=sigmas), sigmas


@dataclass
class EdgeFit:
    """Result of :func:`fit_edges`: ``amounts`` {element: map} in atoms per barn times the
    incident counts (proportional to areal density), ``atomic_percent`` {element: map},
    ``background`` the fitted background integrated over the fit window (map), ``chi2`` the
    reduced Poisson chi² per pixel, ``r0`` the common power-law exponent, ``window`` (eV)."""

    amounts: dict
    atomic_percent: dict
    background: np.ndarray
    chi2: np.ndarray
    r0: float
    window: tuple[float, float]


def fit_edges(
    si,
    *,
    energy,
    elements: Sequence[str] | str,
    e0: float,
    beta: float,
    alpha: float = 0.0,
    fit_window: Sequence[float] | None = None,
    background_window: Sequence[float] | None = None,
    max_bytes: int = sp.CHUNK_BYTES,
    progress: ProgressCallback = None,
) -> EdgeFit:
    """Linear model fit of power law + hydrogenic edges at every pixel, in closed form.

    Model per spectrum: ``E^-r0 (b0 + b1 u + b2 u²) + Σ_k n_k dσ_k/dE ΔE`` with ``u = ln(E/E_c)``;
    ``r0`` is the power-law exponent of the sum spectrum over ``background_window`` (default: the
    clean window before the first edge), the quadratic in ``u`` follows each pixel's own exponent.
    The weights are those of Poisson noise on the sum spectrum's shape, the same for every pixel,
    so one pseudo-inverse solves the whole SI band by band (memory map / dask SI welcome).
    Overlapping edges (e.g. Mn L2,3 on the O K tail) are separated by their cross-section shapes.

    ``fit_window`` defaults to the start of the background window to the end of the spectrum.
    """
    sp.check_spectrum_image(si, lazy=True)
    energy = sp.check_energy_axis(energy, np.shape(si)[-1])
    e0, beta, alpha = _beam(e0, beta, alpha)
    els = sp._parse_elements_arg(elements)
    total = sp.sum_spectrum(si, max_bytes=max_bytes, progress=sub_progress(progress, 0.0, 0.3))
    plan = sp.plan_eels_windows(els, energy=energy, spectrum=total)
    if background_window is None:
        first = min(plan.values(), key=lambda p: p.edge.onset)
        background_window = first.background
    a, r = sp.fit_power_law(total[None], energy=energy, window=background_window)
    r0 = float(r[0])
    bg_ch = sp.background_channels(energy, background_window)
    start = energy[bg_ch.start if isinstance(bg_ch, slice) else bg_ch[0]]
    fit_window = (float(start), float(energy[-1] + (energy[1] - energy[0]))) if fit_window is None else fit_window
    sl = sp.window_slice(energy, fit_window, what="fit window")
    e = energy[sl]
    if e[0] <= 0:
        raise ValueError("The fit window (fit_window) must lie at positive energies.")
    de = float(energy[1] - energy[0])
    u = np.log(e / np.sqrt(e[0] * e[-1]))
    base = np.power(e / e[0], -r0)
    cols = [base, base * u, base * u * u]
    for el in els:
        cols.append(differential_cross_section(el, energy=e, e0=e0, beta=beta, alpha=alpha,
                                               edge=plan[el].edge.name) * de)
    design = np.stack(cols, axis=1)  # (E_fit, 3 + n_el)
    weights = 1.0 / np.sqrt(np.maximum(total[sl] / max(total[sl].mean(), 1e-30), 1e-6))
    wd = design * weights[:, None]
    scale = np.linalg.norm(wd, axis=0)
    if np.any(scale == 0):
        bad = [els[k - 3] for k in np.flatnonzero(scale == 0) if k >= 3]
        raise ValueError(f"Element(s) {bad} have no edge inside the fit window {fit_window}; widen it or drop them.")
    pinv = (np.linalg.pinv(wd / scale) / scale[:, None] * weights[None, :]).astype(np.float64)  # (k, E_fit)
    n_free = max(1, e.size - design.shape[1])

    def block_fit(block):
        y = block[..., sl].astype(np.float64)
        coef = y @ pinv.T  # (rows, X, k)
        model = coef @ design.T
        chi2 = (((y - model) ** 2) / np.maximum(model, 1.0)).sum(axis=-1) / n_free
        bg = coef[..., :3] @ design[:, :3].sum(axis=0)
        return coef.astype(np.float32), bg.astype(np.float32), chi2.astype(np.float32)

    coef, bg, chi2 = sp.map_si_blocks(block_fit, si, max_bytes=max_bytes, progress=sub_progress(progress, 0.3, 1.0))
    amounts = {el: coef[..., 3 + k] for k, el in enumerate(els)}
    pos = {el: np.maximum(v, 0.0) for el, v in amounts.items()}
    tot = sum(pos.values())
    with np.errstate(divide="ignore", invalid="ignore"):
        at = {el: np.where(tot > 0, 100.0 * v / tot, np.nan).astype(np.float32) for el, v in pos.items()}
    return EdgeFit(amounts, at, bg, chi2, r0, (float(fit_window[0]), float(fit_window[1])))
