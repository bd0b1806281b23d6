"""Calibrated reciprocal space: power spectra (single and tile-averaged), sub-pixel peaks, lattice indexing, Bragg filtering,
geometric phase analysis (GPA), periodic-lattice-displacement (PLD) maps and Bragg-peak decay.

Conventions
-----------
- Images are (Y, X) arrays; stacks are (T, Y, X). Pixel sizes are in Å.
- Reciprocal vectors are ``(gy, gx)`` in Å⁻¹ with ``g = k / (N * pixel_size)`` for FFT index ``k``;
  an image ``cos(2π g·r)`` with ``r = (y, x)`` in Å has its peaks at ``±g``.
- Angles of reciprocal vectors are in degrees, measured from +X towards -Y, i.e. counter-clockwise
  *on screen* (Y points down in an image display), as in DigitalMicrograph.
- FFTs use :mod:`scipy.fft` on float32 with ``workers=-1``.

No Qt and no napari here: the "Live FFT" widget only calls :class:`LiveSpectrum` and the
functions below.
"""

from __future__ import annotations

from napari_cryomat.core._fourier_base import MIN_SIZE, WINDOWS, periodic_smooth_decomposition, validate_image
from napari_cryomat.core._fourier_lattice import Lattice, find_lattice, refine_basis_on_image
from napari_cryomat.core._fourier_maps import GPAResult, PLDResult, bragg_filter, gpa, pld_map
from napari_cryomat.core._fourier_peaks import Peak, find_peaks, refine_peak, refine_spot
from napari_cryomat.core._fourier_series import BraggSeries, bragg_intensity_series
from napari_cryomat.core._fourier_spectrum import (
    LIVE_MODES,
    LiveSpectrum,
    PowerSpectrum,
    averaged_power_spectrum,
    default_tile,
    power_spectrum,
    radial_profile,
)

__all__ = [
    "LIVE_MODES",
    "MIN_SIZE",
    "WINDOWS",
    "BraggSeries",
    "GPAResult",
    "Lattice",
    "LiveSpectrum",
    "PLDResult",
    "Peak",
    "PowerSpectrum",
    "averaged_power_spectrum",
    "bragg_filter",
    "default_tile",
    "bragg_intensity_series",
    "find_lattice",
    "find_peaks",
    "gpa",
    "periodic_smooth_decomposition",
    "pld_map",
    "power_spectrum",
    "radial_profile",
    "refine_basis_on_image",
    "refine_peak",
    "refine_spot",
    "validate_image",
]

# the implementations live in private modules; this is where users (and the docs, and the bad-input
# fuzzing in tests/core/test_validation.py) find them
for _name in __all__:
    if hasattr(globals()[_name], "__module__"):  # functions and classes, not the constants
        globals()[_name].__module__ = __name__
del _name
