"""Sample data: a misaligned, noisy tilt series of a catalyst-layer phantom, with its truth."""

from __future__ import annotations

import numpy as np

from napari_cryomat.core.synthetic.tilt import make_tilt_series


def tilt_series_sample():
    """128² x 41 tilts (-60° to +60°) of carbon grains with a porous ionomer film and Pt-like
    particles, 5 Å pixels, shot noise of 50 counts/pixel in vacuum (2 e/Å², bright field: dense is dark).

    Each tilt is shifted by a known random (dy, dx) of up to ±8 px and the tilt axis turned by a
    known angle. ``metadata`` holds the angles (``tilt_angles``, degrees), the pixel size and the
    truth (``truth``: shifts, tilt-axis angle, particle centres and radii); the phantom volume is in
    ``metadata["synthetic"]["volume"]``. Reconstructs in seconds with the Tilt series tool.
    """
    s = make_tilt_series(shape=(64, 128, 128), n_tilts=41, tilt_range=(-60.0, 60.0), max_shift=8.0,
                         dose=50.0, pixel_size=5.0, seed=3)
    metadata = {
        "tilt_angles": s.angles.copy(),
        "pixel_size_angstrom": s.pixel_size,
        "truth": s.truth(),
        "synthetic": {"volume": s.volume, "kinds": s.kinds.tolist(), "spheres": s.spheres},
        "sign_convention": "tilts[i](r) = rotated_i(r - truth['shifts_dy_dx_pixels'][i])",
    }
    lo, hi = np.percentile(s.tilts, [0.5, 99.5])
    kwargs = {
        "name": "tilt series",
        # the tilt axis in Å too, as an MRC stack opens: one unit per world axis, so a tomogram in Å
        # next to it keeps napari's units (mixed units on one axis make napari drop them all)
        "scale": (s.pixel_size, s.pixel_size, s.pixel_size),
        "units": ("angstrom", "angstrom", "angstrom"),
        "axis_labels": ("tilt", "y", "x"),
        "metadata": metadata,
        "colormap": "gray",
        "contrast_limits": (float(lo), float(hi)),
    }
    return [(s.tilts, kwargs, "image")]
