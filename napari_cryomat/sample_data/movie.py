"""Sample data: a low-dose movie of a superlattice crystal drifting along a known path."""

from __future__ import annotations

from napari_cryomat.core.synthetic.movie import drifting_movie


def drifting_movie_sample():
    """Low-dose (0.3 e/Å² = 0.3 counts/px/frame) 256² × 24-frame movie of a crystal with a 1/3-order superlattice.

    Drift: random walk plus linear; the true shifts (dy, dx) in px, the pixel size in Å and the
    dose per frame in e/Å² are in ``metadata``.
    """
    m = drifting_movie((256, 256), 24, counts_per_pixel=0.3, pixel_size=1.0, seed=7)
    metadata = {
        "true_shifts_px": m.shifts,
        "pixel_size_angstrom": m.pixel_size,
        "dose_per_frame_e_per_A2": m.dose_per_frame,
        "counts_per_pixel_per_frame": m.counts_per_pixel,
        "lattice_period_px": m.period,
        "sign_convention": "frame_i(r) = frame_0(r - true_shifts_px[i])",
    }
    kwargs = {
        "name": "drifting movie",
        "scale": (1.0, m.pixel_size, m.pixel_size),
        "units": ("pixel", "angstrom", "angstrom"),
        "axis_labels": ("t", "y", "x"),
        "metadata": metadata,
        "colormap": "gray",
        "contrast_limits": (0.0, 2.0),
    }
    return [(m.frames, kwargs, "image")]
