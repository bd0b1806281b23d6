"""Shared by the tomogram browser's model and view tests."""

import numpy as np
import pytest


@pytest.fixture
def volume():
    """A small (20, 32, 48) tomogram whose every voxel says where it is: 100 z + 10 y + x (+ noise)."""
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(np.arange(20), np.arange(32), np.arange(48), indexing="ij")
    return (100.0 * z + 10.0 * y + x + rng.normal(0, 1, (20, 32, 48))).astype(np.float32)
