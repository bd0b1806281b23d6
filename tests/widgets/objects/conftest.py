"""Test data of the Objects and classes tool: disks and rods of known size, and a growth series."""

import numpy as np
import pytest

from napari_cryomat.core.synthetic.particles import make_growth, shape_field

PS = 2.0
CAL = dict(scale=(PS, PS), units=("angstrom", "angstrom"))


def shapes(n: int = 4, step: int = 80):
    """Disks (radius 20 px) and rods (radius 30, aspect 3) on an n x n grid, rods where i + j is
    even. Returns labels and {label: 1 disk / 2 rod}."""
    size = n * step
    lab = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size].astype(float)
    kinds = {}
    k = 0
    for i in range(n):
        for j in range(n):
            k += 1
            rod = (i + j) % 2 == 0
            centre = (step // 2 + step * i, step // 2 + step * j)
            f = shape_field(yy, xx, kind="ellipse", center=centre, radius=30 if rod else 20,
                            aspect=3.0 if rod else 1.0, angle=0.3 * k)
            lab[f < 1] = k
            kinds[k] = 2 if rod else 1
    return lab, kinds


@pytest.fixture(scope="session")
def disks_and_rods():
    return shapes()


@pytest.fixture(scope="session")
def growth():
    """(movie, truth labels, info) of 5 frames of 6 growing crystals."""
    return make_growth(n_frames=5)


@pytest.fixture
def add_shapes(disks_and_rods):
    """``add_shapes(viewer)``: the shapes as a labels layer "objects" over an image "img" (darker
    inside), 2 Å/pixel; returns (image layer, labels layer)."""

    def add(viewer):
        lab, _ = disks_and_rods
        image = viewer.add_image(np.where(lab > 0, 0.3, 1.0).astype(np.float32), name="img", **CAL)
        layer = viewer.add_labels(lab, name="objects", **CAL)
        return image, layer

    return add
