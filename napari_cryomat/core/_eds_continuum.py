"""The X-ray continuum (bremsstrahlung) of an EDS spectrum as a few physical columns of the identification's
linear model (private; used by :mod:`._eds_identify`).

Kramers' law gives the generated continuum, ``(E0 − E) / E`` per unit energy. What the detector records is
that times the transmission of everything between the emitting volume and the detector's active Si: the
specimen itself (self-absorption), a film or contamination layer, the detector window, and the Si dead
layer. The dead layer is known (xraylib μ/ρ of Si, 0.1 µm). The rest is a mixture of unknown matter and
thicknesses, so it is a non-negative mixture of columns ``exp(−d (1 keV / E)³)`` over a grid of optical
depths ``d`` at 1 keV: photoelectric absorption goes as E⁻³ between edges, and a mixture of elements blurs
their edges. (A mixture of such exponentials also represents any stretched absorption ``exp(−c E^−p)``,
p < 3.) A second shape, Kramers × E / E0 (flatter, as thin films give at E ≪ E0), lets the slope follow the
data.

A polyimide absorber with real C, N, O edges (a windowed detector) was tried in place of the smooth one and
turned TM002's Al Kα into Br Lα; a grid of the smooth absorber alone cannot follow a continuum absorbed below
the C K edge, which the smooth one can.

SNIP clipping, which these columns replace inside the fit, erodes a continuum's rounded (concave) maximum
below ~1.5 keV and cuts under weak lines: the humps it leaves were fitted as light-element lines. These columns
are smooth over many detector widths, so they cannot take a line's counts, nor bend into a hump.
"""

from __future__ import annotations

import functools

import numpy as np

from napari_cryomat.core import _eds_physics as phys

# optical depths at 1 keV of the absorber (μ ∝ E^-3): transmission at 1 keV from 1 down to 0.04, at 300 eV
# down to e^-120; each step about doubles the depth (neighbouring columns stay distinct, a mixture fills in)
_CRYSTAL_UM = 300.0
_DEPTH_1KEV = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


def smooth_absorber(energy_ev, depth_1kev: float):
    """Transmission ``exp(−d (1 keV / E)³)`` of an absorber of optical depth ``d`` at 1 keV (photoelectric
    absorption goes as E⁻³ between edges); ``energy_ev`` an array or a number."""
    return np.exp(-depth_1kev * (1000.0 / np.maximum(energy_ev, 50.0)) ** 3)


@functools.lru_cache(maxsize=64)
def _si_mu(energy_key: tuple[float, float, int]) -> np.ndarray:
    """Mass attenuation (cm²/g) of Si at the channel energies (cached per energy axis)."""
    import xraylib

    e0, de, n = energy_key
    kev = np.clip((e0 + de * np.arange(n)) / 1000.0, 0.1, 500.0)
    return np.array([xraylib.CS_Total(14, float(k)) for k in kev])


def continuum_columns(energy: np.ndarray, beam_kev: float, mask: np.ndarray) -> list[np.ndarray]:
    """Columns of the continuum model at the channel ``energy`` (eV), each scaled to a maximum of 1 inside
    ``mask``: Kramers' (E0 − E)/E and (E0 − E)/E0, each times the Si dead layer's transmission and an
    absorber's, exp(−d (1 keV/E)³), for each optical depth d of the grid."""
    energy = np.asarray(energy, dtype=np.float64)
    de = float(energy[1] - energy[0])
    mu_si = _si_mu((round(float(energy[0]), 6), round(de, 9), energy.size))
    e = np.maximum(energy, 50.0)
    e0 = 1000.0 * beam_kev
    kramers = np.clip(e0 - e, 0.0, None) / e
    dead_layer = np.exp(-mu_si * phys.SI_DENSITY * phys.SI_DEAD_LAYER_UM * 1e-4)
    # the Si crystal stops fewer hard X-rays: 300 µm records 40 % of 17 keV (FePt's continuum falls above 15 keV);
    # a mixture with the full-efficiency columns covers thicker crystals
    crystal = -np.expm1(-mu_si * phys.SI_DENSITY * _CRYSTAL_UM * 1e-4)
    cols = []
    for shape in (kramers * dead_layer, kramers * e / e0 * dead_layer, kramers * dead_layer * crystal):
        for depth in _DEPTH_1KEV:
            c = shape * smooth_absorber(e, depth)
            top = float(c[mask].max()) if mask.any() else 0.0
            if top > 0:
                cols.append(c / top)
    return cols
