"""Element data behind :mod:`napari_cryomat.core.eds`: complete X-ray line families, electron
ionisation cross-sections, theoretical zeta-factors and X-ray absorption, all from :mod:`xraylib`.

Private: the public functions in ``eds.py`` check their arguments and call these.

Line weights. Every IUPAC transition xraylib knows (K L3, L3 M5, M5 N7, ...) gets the weight
``n(shell, E0) · ω(shell) · RadRate(line)``: vacancies in its initial shell at the beam energy
(electron ionisation cross-section by the relativistic Bethe formula with Powell's constants, as
Williams & Carter eq. 35.6 and Zaluzec 1984, plus Coster–Kronig transfer from lower subshells),
fluorescence yield and radiative rate. Transitions are grouped under
the Siegbahn names users know (Kα = KL2 + KL3, Lα = L3M4 + L3M5, Mα = M5N6 + M5N7, Mζ = M5N3 +
M4N2, ...); a transition without a Siegbahn name keeps its IUPAC name (M2N4, M3O4...). A line's
``weight`` is relative to its family's principal line (Kα, Lα, Mα). L and M ratios are good to
~20 %.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

# Siegbahn name of each IUPAC transition (exSpy's names where it has them)
_SIEGBAHN = {
    "KL3": "Ka", "KL2": "Ka", "KM3": "Kb", "KM2": "Kb", "KN3": "Kb2", "KN2": "Kb2",
    "L3M5": "La", "L3M4": "La", "L2M4": "Lb1", "L3N5": "Lb2", "L3N4": "Lb2", "L1M3": "Lb3",
    "L1M2": "Lb4", "L3O45": "Lb5", "L3O4": "Lb5", "L3O5": "Lb5", "L3N1": "Lb6", "L2N4": "Lg1", "L1N2": "Lg2",
    "L1N3": "Lg3", "L1O3": "Lg4", "L1O2": "Lg4", "L2N1": "Lg5", "L2O4": "Lg6", "L3M1": "Ll", "L2M1": "Ln",
    "M5N7": "Ma", "M5N6": "Ma", "M4N6": "Mb", "M3N5": "Mg", "M5N3": "Mz", "M4N2": "Mz",
}
_PRINCIPAL = {"K": "Ka", "L": "La", "M": "Ma"}
# electrons in a full subshell (Bethe's n_s)
_ELECTRONS = {"K": 2, "L1": 2, "L2": 2, "L3": 4, "M1": 2, "M2": 2, "M3": 4, "M4": 4, "M5": 6}
_IUPAC = re.compile(r"^(K|L[1-3]|M[1-5])([LMNOPQ][0-9]+)_LINE$")
_BETHE_B, _BETHE_C = 0.9, 1.0  # Powell's b_K; c = 1 keeps σ >= 0 down to threshold (U = 1), as SEM beams need
_MIN_WEIGHT = 0.005  # transitions weaker than this (of the family's principal line) are left out
_AVOGADRO = 6.02214076e23
ELECTRON_MASS_KEV = 510.99895


@dataclass(frozen=True)
class Transition:
    shell: str  # initial vacancy: "K", "L3", "M5"...
    iupac: str  # "KL3", "M2N4"
    name: str  # Siegbahn group name or the IUPAC name
    energy: float  # eV
    strength: float  # σ ω RadRate at the beam energy, cm² (arbitrary scale within an element)


def family_of(name: str) -> str:
    return name[0]


def _iupac_lines() -> list[tuple[str, str, int]]:
    import xraylib

    out = []
    for attr in dir(xraylib):
        m = _IUPAC.match(attr)
        if m:
            out.append((m.group(1), m.group(1) + m.group(2), getattr(xraylib, attr)))
    return out


def ionisation_cross_section(edge_kev: float, n_electrons: int, beam_energy_kev: float) -> float:
    """Electron impact ionisation cross-section of one subshell, cm² (relativistic Bethe form,
    Zaluzec 1984): ``6.51e-20 n b / (U E_c²) [ln(c U) − ln(1 − β²) − β²]`` with U = T/E_c and
    T = m v²/2; zero when the beam cannot ionise the shell."""
    gamma = 1.0 + beam_energy_kev / ELECTRON_MASS_KEV
    beta2 = 1.0 - 1.0 / gamma**2
    t = 0.5 * ELECTRON_MASS_KEV * beta2  # m0 v^2 / 2, keV
    if beam_energy_kev <= edge_kev or edge_kev <= 0:
        return 0.0
    u = max(t / edge_kev, 1.0 + 1e-9)
    return max(0.0, 6.51e-20 * n_electrons * _BETHE_B / (u * edge_kev**2)
               * (np.log(_BETHE_C * u) - np.log(1.0 - beta2) - beta2))


def _vacancies(z: int, beam_energy_kev: float) -> dict[str, float]:
    """Vacancies per atom and electron in each subshell (cm²): direct ionisation plus Coster–Kronig
    transfer from the subshells below it (L1 -> L2 -> L3, M1 -> ... -> M5), xraylib's probabilities."""
    import xraylib

    out = {}
    for shell in _ELECTRONS:
        try:
            edge = xraylib.EdgeEnergy(z, getattr(xraylib, f"{shell}_SHELL"))
        except ValueError:
            edge = 0.0
        out[shell] = ionisation_cross_section(edge, _ELECTRONS[shell], beam_energy_kev) if edge > 0 else 0.0
    for fam, n in (("L", 3), ("M", 5)):
        for j in range(2, n + 1):
            for i in range(1, j):
                try:
                    f = xraylib.CosKronTransProb(z, getattr(xraylib, f"F{fam}{i}{j}_TRANS"))
                except (ValueError, AttributeError):
                    f = 0.0
                out[f"{fam}{j}"] += f * out[f"{fam}{i}"]
    return out


@functools.lru_cache(maxsize=512)
def transitions(z: int, beam_energy_kev: float = 200.0) -> tuple[Transition, ...]:
    """Every radiative transition of element ``z`` above 100 eV that the beam can excite."""
    import xraylib

    vacancies = _vacancies(z, beam_energy_kev)
    out = []
    for shell, iupac, code in _iupac_lines():
        try:
            e = 1000.0 * xraylib.LineEnergy(z, code)
            rate = xraylib.RadRate(z, code)
            omega = xraylib.FluorYield(z, getattr(xraylib, f"{shell}_SHELL"))
        except ValueError:
            continue
        if e < 100.0 or rate <= 0 or iupac[len(shell)] == shell[0]:
            continue  # intra-shell (Coster–Kronig-like, e.g. M2M4) lines are left out
        if vacancies[shell] > 0:
            out.append(Transition(shell, iupac, _SIEGBAHN.get(iupac, iupac), e, vacancies[shell] * omega * rate))
    return tuple(sorted(out, key=lambda t: t.energy))


@functools.lru_cache(maxsize=512)
def grouped_lines(z: int, beam_energy_kev: float = 200.0) -> tuple[tuple[str, float, float, float], ...]:
    """(name, energy eV, weight within the family, strength cm²) of the named lines of ``z``: the
    transitions of one name summed (energy: strength-weighted mean), weights relative to the
    family's principal line; lines below ``_MIN_WEIGHT`` left out."""
    groups: dict[str, list[Transition]] = {}
    for t in transitions(z, beam_energy_kev):
        groups.setdefault(t.name, []).append(t)
    strength = {n: sum(t.strength for t in ts) for n, ts in groups.items()}
    energy = {n: sum(t.energy * t.strength for t in ts) / strength[n] for n, ts in groups.items()}
    out = []
    for fam, principal in _PRINCIPAL.items():
        names = [n for n in groups if family_of(n) == fam]
        if not names:
            continue
        ref = strength.get(principal) or max(strength[n] for n in names)
        for n in names:
            w = strength[n] / ref
            if w >= _MIN_WEIGHT:
                out.append((n, energy[n], w, strength[n]))
    return tuple(sorted(out, key=lambda r: r[1]))


@functools.lru_cache(maxsize=512)
def family_principals(z: int, beam_energy_kev: float = 200.0) -> dict[str, str]:
    """{family: name of its reference line}: Kα, Lα, Mα, or the family's strongest line when the
    principal one is missing (Ce has no Mα worth the name: its 4f shell is nearly empty)."""
    out = {}
    for name, _e, w, _s in grouped_lines(z, beam_energy_kev):
        fam = family_of(name)
        if name == _PRINCIPAL[fam] or (fam not in out and w >= 0.999):
            out[fam] = name
    return out


def atomic_weight(z: int) -> float:
    import xraylib

    return float(xraylib.AtomicWeight(z))


def zeta_factor(z: int, line: str, beam_energy_kev: float) -> float:
    """Theoretical zeta-factor of a line (kg/m² per count per electron; exSpy's unit): the mass
    thickness of pure element that gives one count per incident electron, ``A / (N_A σ ω a)``,
    for a detector of unit efficiency and solid angle 4π · 1 (scale by the detector's Ω/4π)."""
    lines = {name: s for name, _e, _w, s in grouped_lines(z, beam_energy_kev)}
    if line not in lines:
        raise KeyError(line)
    produced_per_atom_m2 = lines[line] * 1e-4  # cm² -> m²
    return atomic_weight(z) * 1e-3 / (_AVOGADRO * produced_per_atom_m2)


def mass_attenuation(z: int, energy_ev: float) -> float:
    """Mass attenuation coefficient of element ``z`` at ``energy_ev``, m²/kg (xraylib CS_Total)."""
    import xraylib

    return 0.1 * float(xraylib.CS_Total(z, energy_ev / 1000.0))


def absorption_factor(mu_rho_csc: np.ndarray, mass_thickness: np.ndarray) -> np.ndarray:
    """Thin-film absorption correction ``χρt / (1 − exp(−χρt))`` (≥ 1), χ = (μ/ρ) csc(take-off)."""
    x = np.asarray(mu_rho_csc, dtype=np.float64) * np.asarray(mass_thickness, dtype=np.float64)
    small = np.abs(x) < 1e-6
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = np.where(small, 1.0 + 0.5 * x, x / -np.expm1(-np.where(small, 1.0, x)))
    return out


# Detector windows of silicon drift detectors: (layers of (xraylib material, density g/cm³, thickness µm)).
# "polymer": an AP3.3-like ultra-thin window, 0.3 µm polyimide + 30 nm Al (its Si support grid blocks
# the same fraction at every energy, so it cancels in k-factor ratios); "beryllium": 8 µm Be (older
# Si(Li) and SEM detectors); "windowless": none (TEM detectors such as Super-X).
DETECTOR_WINDOWS = {
    "polymer": (("C22H10N2O5", 1.42, 0.3), ("Al", 2.70, 0.03)),
    "beryllium": (("Be", 1.85, 8.0),),
    "windowless": (),
}
SI_DEAD_LAYER_UM = 0.1  # inactive Si at the entrance of the crystal (SDDs: 0.03–0.1 µm)
SI_DENSITY = 2.33


def _mu_rho_cm2_g(material: str, energy_kev: float) -> float:
    import xraylib

    try:
        return float(xraylib.CS_Total(xraylib.SymbolToAtomicNumber(material), energy_kev))
    except ValueError:
        return float(xraylib.CS_Total_CP(material, energy_kev))


@functools.lru_cache(maxsize=4096)
def detector_efficiency(energy_ev: float, window: str = "polymer", si_thickness_um: float = 450.0) -> float:
    """Fraction of X-rays of ``energy_ev`` a Si drift detector records: transmission of its window
    layers and of the Si dead layer, times the absorption in the Si crystal ``si_thickness_um`` thick
    (xraylib mass attenuation coefficients; Beer–Lambert at normal incidence)."""
    e = energy_ev / 1000.0
    t = 1.0
    for material, rho, um in DETECTOR_WINDOWS[window] + (("Si", SI_DENSITY, SI_DEAD_LAYER_UM),):
        t *= np.exp(-_mu_rho_cm2_g(material, e) * rho * um * 1e-4)
    return float(t * -np.expm1(-_mu_rho_cm2_g("Si", e) * SI_DENSITY * si_thickness_um * 1e-4))
