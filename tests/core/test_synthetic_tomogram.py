"""The synthetic tomogram: deterministic, physically arranged, with a missing wedge."""

import numpy as np

from napari_cryomat.core.synthetic.tomogram import make_tomogram, missing_wedge_mask


def test_deterministic_and_particles_in_ice():
    a = make_tomogram(shape=(40, 96, 96), n_particles=8, seed=3)
    b = make_tomogram(shape=(40, 96, 96), n_particles=8, seed=3)
    assert np.array_equal(a.volume, b.volume)
    assert a.volume.dtype == np.float32
    z0, z1 = a.ice_bounds
    assert len(a.particle_centers) == 8
    assert np.all((a.particle_centers[:, 0] > z0) & (a.particle_centers[:, 0] < z1))


def test_missing_wedge_removes_steep_kz():
    mask = missing_wedge_mask((32, 8, 32), 60.0)
    # kz = 0.25, kx = 0.25: |kz| <= tan60 |kx| -> sampled; kx = 0, kz != 0 -> missing
    assert mask[8, 0, 8]
    assert not mask[8, 0, 0]
    fraction_missing = 1 - mask.mean()
    assert 0.1 < fraction_missing < 0.5


def test_missing_wedge_elongates_particles_along_z():
    t = make_tomogram(shape=(64, 96, 96), n_particles=10, noise_sigma=0.0, seed=1)
    profiles_z, profiles_x = [], []
    for (z, y, x) in np.round(t.particle_centers).astype(int):
        if 10 < z < 54 and 10 < x < 86:
            profiles_z.append(t.volume[z - 10:z + 11, y, x])
            profiles_x.append(t.volume[z, y, x - 10:x + 11])

    def width(profile):  # full width at half maximum, in voxels (density is 0 outside objects)
        return np.count_nonzero(profile > 0.5 * profile[10])

    wz = np.mean([width(p) for p in profiles_z])
    wx = np.mean([width(p) for p in profiles_x])
    assert wz > 1.3 * wx  # elongated along Z, as in a real reconstruction
