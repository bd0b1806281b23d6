"""Synthetic spectrum images with known truth: an EELS SI of a layered SEI and an EDS SI of
FePt particles on carbon, each with a HAADF image. Deterministic (seeded), numpy only.

Line and edge energies come from :mod:`napari_cryomat.core.spectral` (i.e. from xraylib).
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core.eds import eds_fwhm, eds_lines
from napari_cryomat.core.spectral import eels_edges, energy_axis

__all__ = ["eels_edge_shape", "eels_spectrum_image", "eels_lowloss_image", "eds_spectrum_image"]

#: EELS edges of the SEI sample: element -> (edge name, jump ratio at full concentration)
SEI_EDGES = {"Li": ("K", 0.6), "C": ("K", 0.5), "N": ("K", 0.35), "O": ("K", 0.4)}


def eels_edge_shape(energy, onset: float, *, exponent: float = 3.5, width: float = 0.6) -> np.ndarray:
    """Idealised ionisation edge: a smoothed step at ``onset`` (eV) followed by a power-law decay
    ``(E/onset)**-exponent``; 1 just above the onset. ``width`` is the step's 10–90 % rise /
    4.4 (logistic scale), eV."""
    e = np.asarray(energy, dtype=np.float64)
    step = 0.5 * (1.0 + np.tanh((e - onset) / (2.0 * width)))
    decay = np.power(np.maximum(e, onset) / onset, -exponent)
    return (step * decay).astype(np.float64)


def _sei_layers(ny: int, nx: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Concentrations (0..1) of Li, C, N, O across a layered SEI, interfaces along Y, rough."""
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None, :].astype(np.float64)
    # rough interfaces: smooth random displacement along y
    k = np.fft.rfftfreq(ny)
    bounds = []
    for pos in (0.25, 0.5, 0.75):
        spec = (rng.normal(size=k.size) + 1j * rng.normal(size=k.size)) * np.exp(-((k / 0.05) ** 2))
        wobble = np.fft.irfft(spec, n=ny)
        wobble = 0.04 * nx * wobble / (np.abs(wobble).max() + 1e-12)
        bounds.append(pos * nx + wobble[:, None] + 0 * y)
    def band(lo, hi):
        s = 1.5
        return 1 / (1 + np.exp(-(x - lo) / s)) * (1 / (1 + np.exp((x - hi) / s)))

    b0 = np.full((ny, 1), -1e3)
    b4 = np.full((ny, 1), 1e3)
    l1 = band(b0, bounds[0])  # inorganic Li2O-like layer next to the electrode
    l2 = band(bounds[0], bounds[1])  # Li carbonate / alkyl carbonate (Li, C, O)
    l3 = band(bounds[1], bounds[2])  # N-rich polymer (C, N)
    l4 = band(bounds[2], b4)  # carbon (amorphous support)
    return {
        "Li": 0.67 * l1 + 0.33 * l2,
        "C": 0.17 * l2 + 0.6 * l3 + 0.95 * l4,
        "N": 0.35 * l3,
        "O": 0.33 * l1 + 0.5 * l2 + 0.05 * l3,
    }


def eels_spectrum_image(
    *,
    shape: tuple[int, int] = (64, 96),
    offset: float = 30.0,
    scale: float = 0.5,
    size: int = 1200,
    pixel_size: float = 5.0,
    counts_at_offset: float = 1.0e6,
    background_exponent: float = 3.0,
    elements: tuple[str, ...] = ("Li", "C", "N", "O"),
    noise: bool = True,
    seed: int = 0,
) -> dict:
    """EELS core-loss SI across a layered SEI: Li K, C K, N K, O K on a power-law background.

    Parameters
    ----------
    shape : (int, int)
        (Y, X) pixels. Layers run along Y; composition changes along X.
    offset, scale, size
        Energy axis: first channel (eV), dispersion (eV/channel), channels.
    pixel_size : float
        Å per pixel.
    counts_at_offset : float
        Mean background counts per channel at the first channel, full thickness.
    background_exponent : float
        Power-law exponent r of the background (varies ±5 % across the image).
    elements : tuple of str
        Which of Li, C, N, O to include.
    noise : bool
        Apply Poisson noise.
    seed : int
        Random seed.

    Returns
    -------
    dict with ``si`` (Y, X, E) float32 counts, ``energy`` (E,), ``offset``, ``scale``,
    ``haadf`` (Y, X) float32, ``pixel_size`` (Å), ``thickness`` (Y, X, relative),
    ``truth_amplitude`` {el: (Y, X) edge counts per channel just above the onset},
    ``truth_background`` {"A": (Y, X), "r": (Y, X)} of ``I = A E^-r`` (counts per channel),
    ``onsets`` {el: eV}, ``edge_exponent`` and ``edge_width`` of the edge shape.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    energy = energy_axis(offset=offset, scale=scale, size=size)
    conc = _sei_layers(ny, nx, rng)
    yy, xx = np.mgrid[0:ny, 0:nx]
    thickness = 0.8 + 0.2 * np.cos(2 * np.pi * yy / ny * 1.3 + 0.5) * np.sin(np.pi * xx / nx)
    r = background_exponent * (1 + 0.05 * np.sin(2 * np.pi * xx / nx) * np.cos(np.pi * yy / ny))
    a = counts_at_offset * thickness * offset**r
    onsets = {}
    amps = {}
    for el in elements:
        edge_name, jump = SEI_EDGES[el]
        onset = [e.onset for e in eels_edges(el) if e.name == edge_name][0]
        onsets[el] = onset
        bg_at_onset = a * onset ** (-r)
        amps[el] = (jump * conc[el] * bg_at_onset).astype(np.float32)
    edge_exp, edge_w = 3.5, 0.6
    shapes = {el: eels_edge_shape(energy, onsets[el], exponent=edge_exp, width=edge_w).astype(np.float32) for el in elements}
    loge = np.log(energy).astype(np.float32)
    si = np.empty((ny, nx, size), np.float32)
    a32, r32 = a.astype(np.float32), r.astype(np.float32)
    rows = max(1, int(2**23 // max(1, nx * size)))
    for i in range(0, ny, rows):
        j = min(ny, i + rows)
        lam = a32[i:j, :, None] * np.exp(-r32[i:j, :, None] * loge)
        for el in elements:
            lam += amps[el][i:j, :, None] * shapes[el]
        si[i:j] = rng.poisson(lam).astype(np.float32) if noise else lam
    zmean = sum(conc[el] * {"Li": 3, "C": 6, "N": 7, "O": 8}[el] for el in elements) / np.maximum(
        sum(conc[el] for el in elements), 1e-3
    )
    haadf = thickness * zmean**1.7
    haadf = haadf / haadf.max() * 1000.0
    if noise:
        haadf = haadf + rng.normal(0, 10.0, haadf.shape)
    return {
        "si": si,
        "energy": energy,
        "offset": float(offset),
        "scale": float(scale),
        "haadf": haadf.astype(np.float32),
        "pixel_size": float(pixel_size),
        "thickness": thickness.astype(np.float32),
        "concentration": {el: conc[el].astype(np.float32) for el in elements},
        "truth_amplitude": amps,
        "truth_background": {"A": a.astype(np.float32), "r": r.astype(np.float32)},
        "onsets": onsets,
        "edge_exponent": edge_exp,
        "edge_width": edge_w,
    }


def eels_lowloss_image(
    *,
    t_over_lambda: np.ndarray,
    offset: float = -5.0,
    scale: float = 0.25,
    size: int = 600,
    total_counts: float = 1.0e5,
    plasmon_energy: float = 22.0,
    plasmon_width: float = 6.0,
    zlp_fwhm: float = 1.0,
    seed: int = 1,
) -> dict:
    """Low-loss SI (Y, X, E) with a zero-loss peak and plural plasmon scattering.

    The n-th plasmon carries the Poisson fraction ``exp(-τ) τⁿ / n!`` of ``total_counts``
    (τ = t/λ per pixel, n ≤ 5), so the log-ratio method recovers τ exactly up to noise and the
    counts beyond the recorded range.

    Returns dict with ``si`` float32, ``energy``, ``offset``, ``scale``, ``t_over_lambda``.
    """
    rng = np.random.default_rng(seed)
    tau = np.asarray(t_over_lambda, dtype=np.float64)
    energy = energy_axis(offset=offset, scale=scale, size=size)
    sig0 = zlp_fwhm / 2.3548
    profiles = []
    for n in range(6):
        if n == 0:
            p = np.exp(-0.5 * (energy / sig0) ** 2)
        else:
            g = n * plasmon_width / 2.0
            p = g**2 / ((energy - n * plasmon_energy) ** 2 + g**2) * (energy > 0.5 * zlp_fwhm)
        profiles.append(p / p.sum())
    from math import factorial

    lam = np.zeros(tau.shape + (size,), np.float64)
    for n, p in enumerate(profiles):
        w = np.exp(-tau) * tau**n / factorial(n)
        lam += (total_counts * w)[..., None] * p
    si = rng.poisson(lam).astype(np.float32)
    return {"si": si, "energy": energy, "offset": float(offset), "scale": float(scale), "t_over_lambda": tau.astype(np.float32)}


def _gauss(energy, centre, fwhm):
    s = fwhm / 2.3548
    return np.exp(-0.5 * ((energy - centre) / s) ** 2) / (s * np.sqrt(2 * np.pi))


def eds_spectrum_image(
    *,
    shape: tuple[int, int] = (64, 64),
    offset: float = 0.0,
    scale: float = 20.0,
    size: int = 1024,
    pixel_size: float = 2.0,
    n_particles: int = 10,
    dose: float = 600.0,
    fwhm_mn_ka: float = 130.0,
    seed: int = 0,
) -> dict:
    """EDS SI of FePt-like particles on a carbon film, with Cu fluorescence from the grid.

    Each particle is a sphere with its own Fe:Pt atomic ratio (0.3–0.7 Fe). Line intensities
    follow Cliff–Lorimer: the main line of element i gets ``dose * t * w_i / k_i`` counts
    (``w_i`` weight fraction, ``k_i`` in ``k_factors``), other lines of the family in
    xraylib's proportions; Pt M gets 0.6× the Pt L counts. Continuum: Kramers ``(E0−E)/E``
    with low-energy absorption.

    Returns
    -------
    dict with ``si`` (Y, X, E) float32, ``energy``, ``offset``, ``scale``, ``haadf``,
    ``pixel_size`` (Å), ``atomic_percent`` {"Fe","Pt": (Y, X), NaN off particles},
    ``net_counts`` {el: (Y, X) expected main-line counts}, ``lines`` {el: line label},
    ``k_factors`` {el: float}, ``mask`` (Y, X) bool particle mask.
    """
    import xraylib

    rng = np.random.default_rng(seed)
    ny, nx = shape
    energy = energy_axis(offset=offset, scale=scale, size=size)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    t_part = np.zeros(shape)
    fe_frac = np.zeros(shape)
    for _ in range(n_particles):
        rad = rng.uniform(0.06, 0.11) * min(shape)
        cy, cx = rng.uniform(rad, ny - rad), rng.uniform(rad, nx - rad)
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        t = np.sqrt(np.clip(rad**2 - d2, 0, None)) / rad
        frac = rng.uniform(0.3, 0.7)
        new = t > t_part
        fe_frac = np.where(new, frac, fe_frac)
        t_part = np.maximum(t_part, t)
    mask = t_part > 0.05
    aw = {el: xraylib.AtomicWeight(xraylib.SymbolToAtomicNumber(el)) for el in ("Fe", "Pt", "Cu", "C")}
    at = {"Fe": fe_frac, "Pt": 1 - fe_frac}
    wsum = at["Fe"] * aw["Fe"] + at["Pt"] * aw["Pt"]
    wt = {el: np.where(mask, at[el] * aw[el] / np.where(wsum > 0, wsum, 1), 0.0) for el in ("Fe", "Pt")}
    k_factors = {"Fe": 1.0, "Pt": 1.6, "Cu": 1.1, "C": 3.0}
    t_part = np.where(mask, t_part, 0.0)
    main = {
        "Fe": dose * t_part * wt["Fe"] / k_factors["Fe"],
        "Pt": dose * t_part * wt["Pt"] / k_factors["Pt"],
        "Cu": np.full(shape, 0.04 * dose),
        "C": np.full(shape, 0.06 * dose),
    }
    families = {"Fe": ("K", "L"), "Pt": ("L", "M"), "Cu": ("K", "L"), "C": ("K",)}
    family_scale = {("Fe", "L"): 0.08, ("Pt", "M"): 0.6, ("Cu", "L"): 0.1}
    lam = np.zeros(shape + (size,), np.float64)
    line_label = {"Fe": "Fe Ka", "Pt": "Pt La", "Cu": "Cu Ka", "C": "C Ka"}
    for el, fams in families.items():
        spec = np.zeros(size)
        for ln in eds_lines(el, energy_range=(energy[0], energy[-1])):
            fam = ln.name[0]
            if fam not in fams:
                continue
            f = family_scale.get((el, fam), 1.0)
            spec += f * ln.weight * _gauss(energy, ln.energy, eds_fwhm(ln.energy, fwhm_mn_ka=fwhm_mn_ka)) * scale
        lam += main[el][..., None] * spec
    # Kramers continuum with absorption at low energy, proportional to mass thickness
    e0 = 200e3
    e = np.maximum(energy, 1.0)
    kramers = (e0 - e) / e * np.exp(-((400.0 / e) ** 3))
    kramers = kramers / kramers[np.searchsorted(energy, 5000)]
    mass = 0.3 + 3.0 * t_part * (wt["Fe"] * 26 + wt["Pt"] * 78) / 78
    lam += (0.02 * dose * mass)[..., None] * kramers * scale / 20.0
    si = rng.poisson(lam).astype(np.float32)
    haadf = 50 + 1000 * t_part * (at["Fe"] * 26**1.7 + at["Pt"] * 78**1.7) / 78**1.7
    haadf = (haadf + rng.normal(0, 8, shape)).astype(np.float32)
    atomic = {el: np.where(mask, 100.0 * at[el], np.nan).astype(np.float32) for el in ("Fe", "Pt")}
    return {
        "si": si,
        "energy": energy,
        "offset": float(offset),
        "scale": float(scale),
        "haadf": haadf,
        "pixel_size": float(pixel_size),
        "atomic_percent": atomic,
        "net_counts": {el: main[el].astype(np.float32) for el in main},
        "lines": line_label,
        "k_factors": k_factors,
        "mask": mask,
        "fwhm_mn_ka": float(fwhm_mn_ka),
    }
