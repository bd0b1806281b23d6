"""Samples: an atomic-resolution superlattice image with strain, and vitreous/crystalline ice."""

from __future__ import annotations

from napari_cryomat.core.synthetic.lattice import ice_image, superlattice_image
from napari_cryomat.io.mrc import strided_contrast_limits


def _calibrated_image(img, truth: dict, name: str):
    """LayerData of a synthetic image in Å, its truth in the metadata."""
    p = truth["pixel_size"]
    kwargs = {
        "name": name,
        "scale": (p, p),
        "units": ("angstrom", "angstrom"),
        "colormap": "gray",
        "contrast_limits": strided_contrast_limits(img),
        "metadata": {"truth": truth, "pixel_size": p},
    }
    return [(img, kwargs, "image")]


def superlattice_sample():
    """LayerData for File > Open Sample > napari-cryomat > Superlattice with strained region.

    A 1024² HRTEM-like image (0.4 Å/px) of a hexagonal lattice (a = 4 Å, d = 3.46 Å) with a
    1/3-order charge-order superlattice (a longitudinal periodic lattice displacement of
    0.15 Å plus a 5 % intensity modulation, q = g1/3) and a disk dilated by 2 %.
    The truth is in ``layer.metadata["truth"]``.
    """
    img, truth = superlattice_image()
    return _calibrated_image(img, truth, "superlattice (synthetic)")


def ice_sample():
    """LayerData for File > Open Sample > napari-cryomat > Vitreous and crystalline ice.

    A 1024² image (1 Å/px) of vitreous ice (amorphous ring at 3.7 Å) holding a hexagonal-ice
    crystal (first-order spacing 3.91 Å) in a disk on the right. Truth in
    ``layer.metadata["truth"]``.
    """
    img, truth = ice_image()
    return _calibrated_image(img, truth, "ice (synthetic)")
