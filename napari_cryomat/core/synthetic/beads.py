"""A tilt series of gold beads on a textured specimen, misaligned by known shifts and axis angle.

Beads are spheres of gold: each projects as a disc darkened by ``exp(-μ · chord)`` along the beam.
The specimen under them is a smooth random texture that changes from tilt to tilt (the way a real
specimen's projection does), and every pixel carries shot noise at the given dose. The geometry is
that of :mod:`napari_cryomat.core.tilt` and :mod:`napari_cryomat.core.fiducials`: bead ``(x, y, z)``
lands at ``c + R(α) (y, x cos θ + z sin θ) + s_i`` on tilt ``i``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_cryomat.core._tilt_align import rotation

__all__ = ["bead_tilt_series"]


def bead_tilt_series(shape=(256, 256), angles=None, *, n_beads: int = 20, bead_diameter_px: float = 6.0,
                     thickness_px: float = 80.0, tilt_axis_angle: float = 0.0, max_shift: float = 20.0,
                     dose: float = 20.0, texture: float = 0.15, seed: int = 0) -> tuple[np.ndarray, dict]:
    """``(tilts (N, Y, X) float32 counts, truth)``; truth holds angles, shifts, beads, the axis angle.

    Beads are placed at least two diameters apart, inside the central 80 % of the field at zero tilt,
    at depths within ``±thickness_px / 2``. Shifts are uniform in ``±max_shift`` per axis per tilt.
    """
    rng = np.random.default_rng(seed)
    angles = np.arange(-60.0, 61.0, 2.0) if angles is None else np.asarray(angles, float)
    h, w = shape
    r = bead_diameter_px / 2
    beads = []
    while len(beads) < n_beads:
        cand = np.array([rng.uniform(-0.4, 0.4) * w, rng.uniform(-0.4, 0.4) * h,
                         rng.uniform(-0.5, 0.5) * thickness_px])
        if all(np.hypot(*(cand[:2] - b[:2])) >= 4 * r for b in beads):
            beads.append(cand)
    beads = np.array(beads)
    shifts = rng.uniform(-max_shift, max_shift, size=(len(angles), 2))
    rot = rotation(tilt_axis_angle)
    centre = (np.array(shape, float) - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tilts = np.empty((len(angles), h, w), np.float32)
    for i, th in enumerate(np.deg2rad(angles)):
        u = beads[:, 0] * np.cos(th) + beads[:, 2] * np.sin(th)
        pos = centre + np.stack([beads[:, 1], u], axis=1) @ rot.T + shifts[i]
        chord = np.zeros(shape, np.float32)
        for py, pxx in pos:
            d2 = (yy - py) ** 2 + (xx - pxx) ** 2
            chord += 2 * np.sqrt(np.clip(r * r - d2, 0, None))
        field = ndimage.gaussian_filter(rng.standard_normal(shape), 4.0)
        field *= texture / (field.std() + 1e-12)
        mean = dose * np.exp(-0.35 * chord) * np.clip(1 + field, 0.05, None)
        tilts[i] = rng.poisson(mean).astype(np.float32)
    truth = {"angles": angles, "shifts": shifts, "beads": beads, "tilt_axis_angle": float(tilt_axis_angle),
             "bead_diameter_px": float(bead_diameter_px)}
    return tilts, truth
