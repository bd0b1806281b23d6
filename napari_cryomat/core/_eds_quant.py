"""EDS quantification (private; public surface :mod:`napari_cryomat.core.eds`): Cliff–Lorimer
with user or theoretical k-factors, zeta-factors with dose, thin-film absorption correction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_cryomat.core import _eds_physics as phys
from napari_cryomat.core._eds_lines import _PRINCIPAL_NAMES, Line, _beam, eds_lines
from napari_cryomat.core._validate import nonnegative, number, positive, real_array
from napari_cryomat.core.spectral import _z, parse_elements


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


def _detector_args(detector, si_thickness_um) -> tuple[str, float]:
    detector = str(detector)
    if detector not in phys.DETECTOR_WINDOWS:
        raise ValueError(f"detector must be one of {', '.join(map(repr, phys.DETECTOR_WINDOWS))} (the window in front "
                         f"of the Si crystal); got {detector!r}.")
    return detector, positive(si_thickness_um, "si_thickness_um", unit="µm", high=10000.0)


def theoretical_zeta_factors(lines: Sequence[str] | str, *, beam_energy_kev: float = 200.0,
                             solid_angle_sr: float = 0.7, detector: str = "polymer",
                             si_thickness_um: float = 450.0) -> dict[str, float]:
    """Theoretical zeta-factors (kg/m², exSpy's unit) of the given lines.

    ``ζ = A / (N_A σ ω a ε · Ω/4π)``: atomic weight over the X-rays one atom sends into the detector
    and the detector records, per incident electron: relativistic Bethe ionisation cross-section σ
    (with Coster–Kronig transfer), xraylib fluorescence yield ω and radiative rate a, detector
    efficiency ε (``detector`` window "polymer" (0.3 µm polyimide + 30 nm Al), "beryllium" (8 µm)
    or "windowless", 0.1 µm Si dead layer, Si crystal ``si_thickness_um`` thick; xraylib μ/ρ) and
    solid angle Ω. ``lines``: "Fe, Pt_La" or a list; a bare symbol takes its most energetic
    principal line below 25 keV.
    """
    beam = _beam(beam_energy_kev)
    omega = positive(solid_angle_sr, "solid_angle_sr", unit="sr", high=4 * np.pi)
    detector, si_um = _detector_args(detector, si_thickness_um)
    try:
        keys = parse_elements(lines)
    except ValueError as exc:
        raise ValueError(f"lines: {exc}") from None
    chosen = _resolve_lines(keys, None, beam)
    return {k: phys.zeta_factor(_z(k), ln.name, beam) * 4 * np.pi / omega
            / phys.detector_efficiency(ln.energy, detector, si_um) for k, ln in chosen.items()}


def theoretical_k_factors(lines: Sequence[str] | str, *, beam_energy_kev: float = 200.0, detector: str = "polymer",
                          si_thickness_um: float = 450.0) -> dict[str, float]:
    """Theoretical Cliff–Lorimer k-factors (weight basis, relative to Fe Kα = 1) of the lines:
    ratios of :func:`theoretical_zeta_factors` (same detector model), so ``C_i ∝ k_i I_i``.
    Computed, not measured: K lines of Na–Zn typically within 10–20 % of measured factors, L/M
    lines and light elements (window, ice, absorption in the sample) worse."""
    beam = _beam(beam_energy_kev)
    detector, si_um = _detector_args(detector, si_thickness_um)
    zeta = theoretical_zeta_factors(lines, beam_energy_kev=beam, detector=detector, si_thickness_um=si_um)
    fe_ka = {n: e for n, e, _w, _s in phys.grouped_lines(26, beam)}["Ka"]
    ref = phys.zeta_factor(26, "Ka", beam) / phys.detector_efficiency(fe_ka, detector, si_um)
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
                     "(Bethe cross-sections, xraylib yields and rates, SDD with polymer window): ±10–20 %, "
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
