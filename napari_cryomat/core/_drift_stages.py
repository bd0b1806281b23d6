"""The refinement-then-smoother stage of :func:`~napari_cryomat.core.drift.estimate_drift`, from one start.

Private: takes the estimator's internal spectra (moved out of ``drift.py``, unchanged).
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core._drift_fourier import _crop_shape, _fourier_crop
from napari_cryomat.core._drift_refine import COARSE_GROUP_BFACTOR, WIDE_RADIUS_PX, _refine
from napari_cryomat.core._drift_smooth import SMOOTH_SIZE, _smooth_trajectory

#: The capture pass of the refinement keeps its coarse filter only where that filter passes at least this
#: fraction of the lattice's first reflection (frequency 1/alias).
CAPTURE_LATTICE_FRACTION = 0.05


def _capture_keeps_lattice(bfactor_wide, alias_angstrom):
    """Whether the capture filter exp(-B k²/4) passes the lattice (k = 1/alias) at ``CAPTURE_LATTICE_FRACTION``.

    On a fine lattice (4-5 px) the coarse filter of the capture pass removes the lattice itself and
    leaves the capture to the noise of the aperiodic rest: frames are pulled by up to the capture
    radius at random, which the later passes cannot undo. There the capture releases the filter
    where the stack measures the signal (as the other passes do).
    """
    if not np.isfinite(alias_angstrom):
        return True
    return bool(np.exp(-bfactor_wide / (4.0 * alias_angstrom**2)) >= CAPTURE_LATTICE_FRACTION)


def _refine_and_smooth(start, *, spectra, crop, full, bfactor, pixel_size, group, iterations, refine_radius, upsample,
                       progress, span, window_taper, reach, smooth, alias, lattice=None):
    """Refinement (:func:`_refine`) and smoother (:func:`_smooth_trajectory`) from the trajectory ``start``.

    Returns (shifts, walk step, log evidence of the smoother; -inf when it did not run).
    """
    (ny, nx), pix_y, pix_x = full, full[0] / crop[0], full[1] / crop[1]
    pix = pixel_size * pix_x
    shifts = start.copy()
    if iterations > 0:
        shifts = _refine(
            spectra, crop, shifts / (pix_y, pix_x), bfactor_px2=bfactor / pix**2, group=group,
            iterations=iterations, radius=min(refine_radius, reach / pix_x), upsample=upsample, progress=progress,
            span=span, window_taper=window_taper,
            wide_radius=(min(WIDE_RADIUS_PX, reach) / pix_x) if group > 1 else None,
            wide_bfactor_px2=COARSE_GROUP_BFACTOR(bfactor, group) / pix**2, reach=reach / pix_x,
            wide_release=not _capture_keeps_lattice(COARSE_GROUP_BFACTOR(bfactor, group), alias * pixel_size),
        ) * (pix_y, pix_x)
    shifts = shifts - shifts[0]
    if not (iterations > 0 and smooth):
        return shifts, float("nan"), -np.inf
    scrop = _crop_shape(*crop, SMOOTH_SIZE)
    sbin = np.array([ny / scrop[0], nx / scrop[1]])
    smoothed, walk_step, evidence = _smooth_trajectory(
        _fourier_crop(spectra, crop, scrop), scrop, shifts / sbin,
        bfactor_px2=bfactor / (pixel_size * sbin[1]) ** 2, window_taper=window_taper, px=float(sbin[1]),
        reach=min(3.0, reach), first=start / sbin, cell=alias,
        lattice=None if lattice is None else (lattice[0] * sbin,) + tuple(lattice[1:]))
    if smoothed is None:
        return shifts, float("nan"), -np.inf
    return smoothed * sbin - smoothed[0] * sbin, walk_step, evidence
