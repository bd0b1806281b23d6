"""Sample: a low-SNR cryo-ET tomogram of particles and a membrane in a slab of ice."""

from __future__ import annotations

from napari_cryomat.core.synthetic.tomogram import make_tomogram
from napari_cryomat.io.mrc import strided_contrast_limits


def tomogram_sample():
    """LayerData for File > Open Sample > napari-cryomat > Cryo-ET tomogram."""
    tomo = make_tomogram()
    v = tomo.voxel_size
    return [
        (
            tomo.volume,
            {
                "name": "tomogram (synthetic)",
                "scale": (v, v, v),
                "units": ("angstrom",) * 3,
                "axis_labels": ("z", "y", "x"),  # as a tomogram read from MRC (io/mrc.py)
                "contrast_limits": strided_contrast_limits(tomo.volume, low=1, high=99.8),
                "metadata": {"truth": tomo.truth()},
            },
            "image",
        )
    ]
