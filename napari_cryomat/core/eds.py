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

from napari_cryomat.core._eds_find import Identification, identify_elements, snip_background
from napari_cryomat.core._eds_lines import Line, choose_line, clean_windows, eds_fwhm, eds_lines, eds_windows
from napari_cryomat.core._eds_maps import eds_maps, eds_net_map
from napari_cryomat.core._eds_quant import (
    Quantification,
    absorption_correction,
    cliff_lorimer,
    quantify,
    theoretical_k_factors,
    theoretical_zeta_factors,
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

# the implementations live in private modules; this is where users (and the docs, and the bad-input
# fuzzing in tests/core/test_validation.py) find them
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
