"""Shared data of the Segmentation tests: a small particle micrograph with its truth."""

import numpy as np
import pytest

from napari_cryomat.core.synthetic.particles import make_particles


@pytest.fixture(scope="session")
def sample():
    """(image, truth labels, info) of ten touching particles, 256², 2 Å/pixel."""
    return make_particles(shape=(256, 256), n_particles=10, seed=2)


@pytest.fixture(scope="session")
def isolated(sample):
    """Index of the largest particle that touches no other (flood fill cannot tell touching twins apart)."""
    from scipy import ndimage as ndi

    truth = sample[1]
    best, size = None, 0
    for k in range(int(truth.max())):
        m = truth == k + 1
        ring = ndi.binary_dilation(m, iterations=3) & ~m
        if not np.any(truth[ring] > 0) and m.sum() > size:
            best, size = k, m.sum()
    return best
