"""Sample data: a dose series of a beam-sensitive crystal (known critical dose per Bragg spacing)."""

from __future__ import annotations

from napari_cryomat.core.synthetic.dose import beam_damage_series


def dose_series_sample():
    """40 frames of 384² at 2 e/Å² per frame (80 e/Å² in all) of a hexagonal crystal grain.

    Its 3.0 Å spots fade with a critical dose of 12 e/Å², its 5.2 Å spots with 36 e/Å² and its
    outline (mass) hardly at all; the truth is in ``metadata``. Open "Beam damage" and press Run.
    """
    s = beam_damage_series((384, 384), 40, seed=11)
    metadata = {
        "pixel_size_angstrom": s.pixel_size,
        "dose_per_frame_e_per_A2": s.dose_per_frame,
        "true_critical_dose_e_per_A2": {f"{shell.d_spacing:.2f} Å": shell.critical_dose for shell in s.shells},
        "true_spots_per_A": {f"{shell.d_spacing:.2f} Å": shell.g.tolist() for shell in s.shells},
        "shape_critical_dose_e_per_A2": s.shape_critical_dose,
    }
    kwargs = {
        "name": "dose series",
        "scale": (1.0, s.pixel_size, s.pixel_size),
        "units": ("pixel", "angstrom", "angstrom"),
        "axis_labels": ("t", "y", "x"),
        "metadata": metadata,
        "colormap": "gray",
    }
    return [(s.frames, kwargs, "image")]
