"""3D quantification against shapes of known size: plates, rods, rings, crosses, particles on a support."""

import numpy as np
import pytest

from napari_cryomat.core import morph3d as M


def _unit(rng):
    n = rng.normal(size=3)
    return n / np.linalg.norm(n)


def _coords(shape, voxel, rng):
    """Physical coordinates (Å) of every voxel centre relative to a jittered volume centre."""
    grid = np.indices(shape).reshape(3, -1).T.astype(float) * voxel
    centre = (np.array(shape) - 1) / 2 * voxel + rng.uniform(-1, 1, 3) * voxel
    return grid - centre


def plate(shape, voxel, thickness, rng):
    """A round plate (disc) of ``thickness`` Å with a random normal, well inside the volume."""
    g = _coords(shape, voxel, rng)
    n = _unit(rng)
    along = g @ n
    radial = np.linalg.norm(g - along[:, None] * n, axis=1)
    reach = (min(np.array(shape) * voxel) / 2) - 2 * voxel.max()
    return ((np.abs(along) < thickness / 2) & (radial < reach)).reshape(shape)


def rod(shape, voxel, diameter, rng):
    """A cylinder of ``diameter`` Å along a random direction, ends well inside the volume."""
    g = _coords(shape, voxel, rng)
    n = _unit(rng)
    along = g @ n
    radial = np.linalg.norm(g - along[:, None] * n, axis=1)
    reach = (min(np.array(shape) * voxel) / 2) - 2 * voxel.max() - diameter / 2
    return ((radial < diameter / 2) & (np.abs(along) < reach)).reshape(shape)


@pytest.mark.parametrize("seed", range(4))
def test_local_thickness_of_plates_and_rods_within_one_voxel(seed):
    rng = np.random.default_rng(seed)
    voxel = rng.uniform(1.0, 3.0)
    for make in (plate, rod):
        thickness = rng.uniform(4, 10) * voxel
        shape = (44, 44, 44)
        mask = make(shape, np.full(3, voxel), thickness, rng)
        t = M.local_thickness(mask, voxel_size=voxel)
        assert t.dtype == np.float32 and t.shape == shape
        assert np.all(t[~mask] == 0) and np.all(t[mask] > 0)
        # the value most of the structure has (the rim is thinner where the disc or rod ends)
        assert abs(np.median(t[mask]) - thickness) <= voxel, (make.__name__, thickness, voxel)


def test_local_thickness_anisotropic_voxels():
    rng = np.random.default_rng(7)
    voxel = np.array([2.0, 1.0, 1.0])  # z twice as coarse
    for _ in range(2):
        thickness = rng.uniform(8, 14)
        mask = plate((30, 56, 56), voxel, thickness, rng)
        t = M.local_thickness(mask, voxel_size=tuple(voxel))
        assert abs(np.median(t[mask]) - thickness) <= voxel.max()


def test_local_thickness_two_plates_keep_their_own_thickness():
    """A thin plate next to a thick one: voxels of each get their own plate's thickness, not the other's."""
    mask = np.zeros((60, 40, 40), bool)
    mask[5:9, 5:35, 5:35] = True      # 4 voxels
    mask[20:36, 5:35, 5:35] = True    # 16 voxels
    t = M.local_thickness(mask, voxel_size=1.5)
    assert abs(np.median(t[5:9, 15:25, 15:25]) - 4 * 1.5) <= 1.5
    assert abs(np.median(t[20:36, 15:25, 15:25]) - 16 * 1.5) <= 1.5
    fraction, edges = M.thickness_histogram(t, bins=30)
    assert fraction.sum() == pytest.approx(1.0)
    thick_share = fraction[edges[:-1] >= 12 * 1.5].sum()
    assert thick_share == pytest.approx(16 / 20, abs=0.1)   # 16 of the 20 plate layers are thick


def test_pore_size_of_spheres_in_a_block():
    """Spherical pores of known diameter: the local thickness of the pore space is their diameter."""
    rng = np.random.default_rng(3)
    solid = np.ones((48, 48, 48), bool)
    g = np.indices(solid.shape).astype(float)
    diameters = []
    for centre in ((14, 14, 14), (33, 33, 33), (14, 33, 24)):
        d = rng.uniform(8, 14)
        c = np.array(centre) + rng.uniform(-0.5, 0.5, 3)
        solid &= ((g - c[:, None, None, None]) ** 2).sum(0) >= (d / 2) ** 2
        diameters.append((centre, d))
    t = M.local_thickness(~solid, voxel_size=1.0)
    for centre, d in diameters:
        assert abs(t[centre] - d) <= 1.0
    assert M.porosity(solid) == pytest.approx((~solid).mean())


def test_skeleton_graph_ring_cross_and_frame():
    g = np.indices((30, 64, 64)).astype(float)
    z, y, x = g[0] - 15, g[1] - 32, g[2] - 32
    ring = (np.hypot(x, y) - 20) ** 2 + z**2 < 9
    s = M.skeleton_graph(ring, voxel_size=2.0)
    assert (s.n_branches, s.n_loops, s.n_junctions, len(s.end_points)) == (1, 1, 0, 0)
    assert s.branch_kinds == ["loop"]
    assert s.total_length == pytest.approx(2 * np.pi * 20 * 2.0, rel=0.08)

    cross = (np.abs(z) < 3) & (((np.abs(y) < 3) & (np.abs(x) < 25)) | ((np.abs(x) < 3) & (np.abs(y) < 25)))
    s = M.skeleton_graph(cross, voxel_size=1.0)
    assert (s.n_branches, s.n_loops, s.n_junctions, len(s.end_points)) == (4, 0, 1, 4)
    assert sorted(s.branch_kinds) == ["junction-end"] * 4
    np.testing.assert_allclose(s.junctions[0], [15, 32, 32], atol=1.5)
    assert np.all(np.abs(s.branch_lengths - 22) <= 4)   # arms of 24 voxels, shortened at the tips

    # two squares sharing a side: two independent loops, two junctions
    frame = (np.abs(z) < 3) & (((np.abs(np.abs(y) - 15) < 3) | (np.abs(y) < 3)) & (np.abs(x) < 18)
                               | (np.abs(np.abs(x) - 15) < 3) & (np.abs(y) < 18))
    s = M.skeleton_graph(frame, voxel_size=1.0)
    assert s.n_loops == 2 and s.n_junctions == 2 and len(s.end_points) == 0


def test_particle_support_distances_known_gaps():
    rng = np.random.default_rng(11)
    voxel = (2.0, 1.5, 1.5)
    support = np.zeros((40, 32, 32), bool)
    support[:6] = True
    particles = np.zeros(support.shape, np.int32)
    gaps = {}
    for label, (y, x) in enumerate(((8, 8), (8, 22), (22, 8), (22, 22)), start=1):
        gap = int(rng.integers(0, 12))                 # empty voxel layers between support and particle
        z0 = 6 + gap
        particles[z0:z0 + 3, y:y + 3, x:x + 3] = label
        gaps[label] = (gap + 1) * voxel[0]             # centre to centre, along z
    table = M.particle_support_distances(particles, support, voxel_size=voxel)
    assert list(table["label"]) == [1, 2, 3, 4]
    np.testing.assert_allclose(table["distance_A"], [gaps[k] for k in table["label"]])
    np.testing.assert_allclose(table["volume_A3"], 27 * np.prod(voxel))
    np.testing.assert_allclose(table["centroid_distance_A"] - table["distance_A"], 1 * voxel[0])
    with pytest.raises(ValueError, match="support"):
        M.particle_support_distances(particles, np.zeros_like(support), voxel_size=1.0)


@pytest.mark.parametrize("bad", [float("nan"), 0.0, -1.0, (1.0, 2.0), (1.0, float("inf"), 1.0), "1"])
def test_bad_voxel_size_is_named(bad):
    with pytest.raises(ValueError, match="voxel_size"):
        M.local_thickness(np.ones((4, 4, 4), bool), voxel_size=bad)


def test_bad_masks_are_named():
    with pytest.raises(ValueError, match="mask"):
        M.local_thickness(np.ones((4, 4), bool), voxel_size=1.0)
    with pytest.raises(ValueError, match="mask"):
        M.skeleton_graph(np.full((4, 4, 4), np.nan), voxel_size=1.0)
    with pytest.raises(ValueError, match="region"):
        M.porosity(np.ones((4, 4, 4)), region=np.zeros((4, 4, 4)))
