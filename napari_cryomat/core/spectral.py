"""Spectrum imaging: energy axes, EELS edge maps, PCA denoising, profiles (EDS lines and maps: :mod:`.eds`).

Pure numpy / scipy; element data (edge onsets, X-ray line energies, line weights, atomic
weights) come from :mod:`xraylib`, never from tables typed by hand.

Conventions
-----------
- A spectrum image (SI) has axes ``(Y, X, E)``; a single spectrum is ``(E,)``.
- Energies are in eV everywhere (xraylib works in keV: converted here).
- An energy axis is given as the array of channel energies ``energy`` (eV, strictly
  increasing, one per channel); :func:`energy_axis` builds it from offset / scale / size.
- Windows are ``(start, stop)`` in eV; a channel belongs to a window when its energy lies in
  ``[start, stop)``.
- Long functions take ``progress=None``: a callable given the fraction done in [0, 1].
- Out of core: maps, PCA and the sum spectrum read a spectrum image in bands of whole rows
  (:func:`iter_si_chunks`, :func:`map_si_blocks`), so a ``numpy.memmap``, dask array, h5py dataset
  or :class:`RawSpectrumImage` larger than RAM is never loaded whole; results equal the in-memory ones.
- EELS windows: :func:`plan_eels_windows` keeps background windows clear of the listed elements'
  edges and of onsets detected in the data (:func:`detect_edge_onsets`) and says when it cannot.
"""

from __future__ import annotations

from napari_cryomat.core._eels_maps import (
    ElementMap,
    eels_map,
    eels_maps,
    fit_power_law,
    power_law,
    ratio_map,
    subtract_background,
    sum_spectrum,
    thickness_log_ratio,
)
from napari_cryomat.core._eels_windows import (  # noqa: F401
    Edge,
    EdgeWindows,
    _nearest_listing,
    background_channels,
    choose_edge,
    default_eels_windows,
    detect_edge_onsets,
    eels_edges,
    is_multi_window,
    plan_eels_windows,
)

# with private names that other core modules import from here
from napari_cryomat.core._spectral_base import (  # noqa: F401
    _MAX_EV,
    _MAX_FWHM,
    CHUNK_BYTES,
    RawSpectrumImage,
    _check_si_memory,
    _energy_range,
    _parse_elements_arg,
    _z,
    check_counts,
    check_energy_axis,
    check_spectrum_image,
    energy_axis,
    is_lazy,
    iter_si_chunks,
    map_si_blocks,
    parse_elements,
    rows_per_chunk,
    window_slice,
)
from napari_cryomat.core._spectral_pca import PCAResult, pca, pca_reconstruct, suggest_components
from napari_cryomat.core._spectral_profiles import composition_profile, line_profile, profile_with_errors

__all__ = [
    "Edge",
    "ElementMap",
    "PCAResult",
    "energy_axis",
    "check_energy_axis",
    "check_spectrum_image",
    "check_counts",
    "window_slice",
    "parse_elements",
    # out of core
    "RawSpectrumImage",
    "is_lazy",
    "rows_per_chunk",
    "iter_si_chunks",
    "map_si_blocks",
    # EELS
    "eels_edges",
    "choose_edge",
    "default_eels_windows",
    "detect_edge_onsets",
    "EdgeWindows",
    "plan_eels_windows",
    "is_multi_window",
    "background_channels",
    "fit_power_law",
    "power_law",
    "subtract_background",
    "eels_map",
    "eels_maps",
    "sum_spectrum",
    "ratio_map",
    "thickness_log_ratio",
    # PCA
    "pca",
    "pca_reconstruct",
    "suggest_components",
    # profiles
    "line_profile",
    "profile_with_errors",
    "composition_profile",
]

# the implementations live in private modules; this is where users (and the docs, and the bad-input
# fuzzing in tests/core/test_validation.py) find them
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
