"""3D quantification of segmented tomograms: local thickness, skeleton graphs, porosity, particle distances.

Every length is in Å and every volume in Å³; voxels may be anisotropic (``voxel_size`` is one number
or (dz, dy, dx)). No Qt, no napari.

- :func:`local_thickness`: the diameter of the largest ball inside the structure that contains each
  voxel (Hildebrand and Rüegsegger 1997), from the Euclidean distance transform;
  :func:`thickness_histogram` turns the map into a volume-weighted distribution.
- :func:`skeleton_graph`: the 3D skeleton (scikit-image) as a graph of branches, junctions, end
  points and loops, with branch lengths (crumpled membranes, fibre and pore networks).
- :func:`porosity` and :func:`particle_support_distances` (how far each particle sits from the
  support surface).

References
----------
T. Hildebrand and P. Rüegsegger, "A new method for the model-independent assessment of thickness
in three-dimensional images", J. Microsc. 185 (1997) 67-75.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._skeleton3d import SkeletonGraph, graph_of_skeleton
from napari_cryomat.core._validate import (
    MAX_LENGTH,
    check_memory,
    integer,
    labels_array,
    positive,
    real_array,
    same_shape,
    vector,
)

__all__ = [
    "local_thickness",
    "thickness_histogram",
    "skeleton_graph",
    "SkeletonGraph",
    "porosity",
    "particle_support_distances",
]

#: A voxel is not a ball centre when a neighbour's ball grows by at least this fraction of the step
#: to it: that ball (nearly) contains its own, so painting it again would only cost time.
_RIDGE_SLOPE = 0.75
#: (centre, offset) pairs painted per numpy call: bounds the temporary index arrays (~32 MB).
_PAINT_CHUNK = 4_000_000
#: The distance transform reaches the centres of outside voxels; diameter = 2 r - this x voxel.
_SURFACE_OFFSET = 0.4


# -------------------------------------------------------------------------------------------------
# argument checks
# -------------------------------------------------------------------------------------------------
def _voxel3(voxel_size) -> np.ndarray:
    """``voxel_size`` (one number or (dz, dy, dx), Å) as three positive floats."""
    if np.ndim(voxel_size) == 0:
        return np.full(3, positive(voxel_size, "voxel_size", unit="Å"))
    return vector(voxel_size, "voxel_size", length=3, all_positive=True, high=MAX_LENGTH, unit="Å")


def _mask_any(value, name: str, ndim=(2, 3), copies: float = 2.0) -> np.ndarray:
    """A 2D or 3D mask as bool: non-zero voxels are in."""
    size = getattr(value, "size", None)
    if isinstance(size, (int, np.integer)):  # before any conversion: a bool mask becomes uint8 first
        check_memory(float(size) * copies, name, f"working on it ({getattr(value, 'shape', '?')})")
    arr = real_array(value, name, ndim=ndim, dtype=None, copies=copies)
    return arr.astype(bool, copy=False) if arr.dtype == np.bool_ else arr != 0


def _mask3(value, name: str, copies: float = 16.0) -> np.ndarray:
    """A 3D (Z, Y, X) mask as bool: non-zero voxels belong to the structure."""
    return _mask_any(value, name, ndim=3, copies=copies)


# -------------------------------------------------------------------------------------------------
# local thickness
# -------------------------------------------------------------------------------------------------
def _neighbour_offsets(voxel: np.ndarray):
    """The 26 neighbour steps (dz, dy, dx) with their lengths in Å."""
    steps = [o for o in itertools.product((-1, 0, 1), repeat=3) if any(o)]
    return [(o, float(np.hypot.reduce(np.array(o) * voxel))) for o in steps]


def _shift_view(a: np.ndarray, o) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices (here, there) such that ``a[there]`` is the neighbour at step ``o`` of ``a[here]``."""
    here, there = [], []
    for d in o:
        here.append(slice(max(0, -d), a.shape[len(here)] - max(0, d)))
        there.append(slice(max(0, d), a.shape[len(there)] - max(0, -d)))
    return tuple(here), tuple(there)


def _ball_centres(dist: np.ndarray, voxel: np.ndarray) -> np.ndarray:
    """Flat indices of the voxels whose inscribed ball is not (nearly) inside a neighbour's ball.

    A neighbour ``n`` at distance ``s`` with ``dist[n] >= dist[c] + s`` holds the whole ball of ``c``;
    we drop ``c`` already when ``dist[n] >= dist[c] + 0.75 s`` (the discrete transform rarely grows
    by the full step off the medial axis), which keeps the distance ridge of Hildebrand and Rüegsegger.
    """
    keep = dist > 0
    for o, step in _neighbour_offsets(voxel):
        if o < (0, 0, 0):
            continue  # each pair of neighbours once: the difference serves both of them
        here, there = _shift_view(dist, o)
        rise = dist[there] - dist[here]
        keep[here] &= rise < _RIDGE_SLOPE * step
        keep[there] &= rise > -_RIDGE_SLOPE * step
    return np.flatnonzero(keep)


def _ball_offsets(shape, voxel: np.ndarray, r_max: float):
    """Flat offsets of every voxel within ``r_max`` Å of a centre, sorted by length (Å)."""
    reach = [int(math.ceil(r_max / v)) for v in voxel]
    grids = np.meshgrid(*[np.arange(-n, n + 1) for n in reach], indexing="ij")
    length = np.sqrt(sum((g * v) ** 2 for g, v in zip(grids, voxel))).ravel()
    flat = (grids[0] * (shape[1] * shape[2]) + grids[1] * shape[2] + grids[2]).ravel()
    inside = length < r_max
    order = np.argsort(length[inside], kind="stable")
    return flat[inside][order], length[inside][order]


def _refined_radius(dist: np.ndarray, centres: np.ndarray, voxel: np.ndarray) -> np.ndarray:
    """Ball radius at each centre with the sub-voxel peak of the distance transform added: a parabola
    through the centre and its two neighbours along each axis (a ridge between voxel centres)."""
    flat = dist.ravel()
    strides = (dist.shape[1] * dist.shape[2], dist.shape[2], 1)
    f0 = flat[centres].astype(np.float64)
    radius = f0.copy()
    for stride, v in zip(strides, voxel):
        lo, hi = flat[centres - stride], flat[centres + stride]
        curv = 2 * f0 - lo - hi
        ok = (curv > 0) & (lo > 0) & (hi > 0)
        gain = np.where(ok, (hi - lo) ** 2 / (8 * np.where(ok, curv, 1.0)), 0.0)
        radius += np.minimum(gain, 0.5 * v)
    return radius


def _paint_balls(dist: np.ndarray, centres: np.ndarray, voxel: np.ndarray, progress: ProgressCallback):
    """Index (into ``centres``) of the largest ball covering each voxel, -1 outside: balls painted
    from the largest down, each voxel keeping the first ball that reaches it."""
    radius = dist.ravel()[centres]
    order = np.argsort(-radius, kind="stable")
    radius = radius[order]
    index = np.int32 if dist.size < 2**31 - 1 else np.int64  # halves the memory traffic of the gathers
    out = np.full(dist.size, -1, index)
    if centres.size == 0:
        return out.reshape(dist.shape)
    sorted_centres = centres[order].astype(index)
    order = order.astype(index)
    offsets, lengths = _ball_offsets(dist.shape, voxel, float(radius[0]) + 1e-3)
    offsets = offsets.astype(index)
    tolerance = 1e-3 * float(voxel.min())
    # groups of equal radius: inside a group the order of the writes does not matter
    starts = np.flatnonzero(np.r_[True, radius[1:] != radius[:-1]])
    ends = np.r_[starts[1:], radius.size]
    for start, end in zip(starts, ends):
        # strictly inside: the nearest outside voxel lies at exactly the radius (float32 rounding aside)
        ball = offsets[: int(np.searchsorted(lengths, radius[start] - tolerance, side="left"))]
        per_chunk = max(1, _PAINT_CHUNK // max(ball.size, 1))
        for s in range(start, end, per_chunk):
            chunk = slice(s, min(end, s + per_chunk))
            idx = (sorted_centres[chunk, None] + ball[None, :]).ravel()
            free = np.flatnonzero(out[idx] < 0)
            if free.size:
                out[idx[free]] = order[chunk][free // ball.size]
        report(progress, 0.35 + 0.6 * end / radius.size)
    return out.reshape(dist.shape)


def local_thickness(mask, *, voxel_size, progress: ProgressCallback = None) -> np.ndarray:
    """Local thickness of a 3D structure: at each voxel, the diameter (Å) of the largest ball that
    lies inside the structure and contains the voxel.

    Parameters
    ----------
    mask : (Z, Y, X) array
        The structure (non-zero voxels). Outside the volume counts as outside the structure.
        Pass ``mask == 0`` (the pores) to get a pore-size map.
    voxel_size : float or (dz, dy, dx)
        Voxel size in Å; anisotropic voxels are handled exactly by the distance transform.
    progress : callable, optional
        Called with the fraction done; raise :class:`~napari_cryomat.core.Cancelled` in it to stop.

    Returns
    -------
    (Z, Y, X) float32 map in Å, 0 outside the structure.

    Notes
    -----
    Hildebrand and Rüegsegger (1997): the Euclidean distance transform gives the radius of the
    largest ball centred at each voxel; balls centred on the distance ridge are painted in order of
    decreasing radius, each voxel keeping the first radius that reaches it. The transform measures
    to the centres of the nearest outside voxels, half a voxel beyond the surface, so the diameter
    is reported as ``2 r - voxel/2``: a plate ``n`` voxels thick measures ``n ± 0.5`` voxels.

    Examples
    --------
    >>> plate = np.zeros((30, 30, 30), bool); plate[10:20] = True
    >>> t = local_thickness(plate, voxel_size=2.0)
    >>> float(np.median(t[plate]))  # 10 voxels of 2 Å
    19.0
    """
    solid = _mask3(mask, "mask")
    voxel = _voxel3(voxel_size)
    padded = np.pad(solid, 1)
    dist = ndi.distance_transform_edt(padded, sampling=voxel).astype(np.float32)
    report(progress, 0.25)
    centres = _ball_centres(dist, voxel)
    report(progress, 0.35)
    owner = _paint_balls(dist, centres, voxel, progress)[1:-1, 1:-1, 1:-1]
    radius = np.zeros(owner.shape, np.float32)
    inside = owner >= 0
    radius[inside] = _refined_radius(dist, centres, voxel)[owner[inside]]
    # a voxel no kept ball reached (possible with very anisotropic voxels) keeps its own ball
    missed = ~inside & solid
    radius[missed] = dist[1:-1, 1:-1, 1:-1][missed]
    inside |= missed
    thickness = np.where(inside, np.maximum(2 * radius - _SURFACE_OFFSET * float(voxel.min()), voxel.min()), 0)
    report(progress, 1.0)
    return thickness.astype(np.float32)


def thickness_histogram(thickness, *, bins: int = 40, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Volume-weighted distribution of a local-thickness map.

    Parameters
    ----------
    thickness : array
        A map from :func:`local_thickness` (Å); voxels <= 0 are outside the structure.
    bins : int
        Number of bins between 0 and the largest thickness.
    mask : array, optional
        Only these voxels (same shape) are counted.

    Returns
    -------
    fraction : (bins,) float
        Fraction of the structure's volume in each thickness bin (sums to 1; zeros if empty).
    edges : (bins + 1,) float
        Bin edges in Å.
    """
    t = real_array(thickness, "thickness", ndim=(2, 3), dtype=np.float32)
    n = integer(bins, "bins", low=1, high=100_000)
    values = t[t > 0]
    if mask is not None:
        m = _mask_any(mask, "mask")
        same_shape(m, "mask", t, "thickness")
        values = t[(t > 0) & m]
    top = float(values.max()) if values.size else 1.0
    counts, edges = np.histogram(values, bins=n, range=(0.0, top))
    total = counts.sum()
    return (counts / total if total else counts.astype(float)), edges


# -------------------------------------------------------------------------------------------------
# skeleton graph
# -------------------------------------------------------------------------------------------------
def skeleton_graph(mask, *, voxel_size) -> SkeletonGraph:
    """Skeletonise a 3D structure and describe it as a graph of branches, junctions and loops.

    Parameters
    ----------
    mask : (Z, Y, X) array
        The structure (non-zero voxels): fibres, a crumpled membrane, a pore network.
    voxel_size : float or (dz, dy, dx)
        Voxel size in Å.

    Returns
    -------
    SkeletonGraph
        Branch lengths (Å) and kinds, junction and end-point positions (Å), the number of
        independent loops (cycles of the branch graph).

    Notes
    -----
    The skeleton is :func:`skimage.morphology.skeletonize` (Lee's 3D thinning). Its voxels form a
    26-connected graph: voxels with three or more skeleton neighbours are junctions (touching
    junction voxels make one junction), voxels with one are end points. A branch's length is the
    length of the minimum spanning tree of its voxels and the steps to its junctions, so the short
    cuts of 26-connectivity are not counted twice. Loops = branches - nodes + connected parts.
    """
    from skimage.morphology import skeletonize

    solid = _mask3(mask, "mask", copies=12.0)
    voxel = _voxel3(voxel_size)
    return graph_of_skeleton(skeletonize(solid).astype(bool), voxel)


# -------------------------------------------------------------------------------------------------
# porosity and particle distances
# -------------------------------------------------------------------------------------------------
def porosity(solid, *, region=None) -> float:
    """Fraction of the volume (or of ``region``) that is not ``solid``: the pore volume fraction.

    Parameters
    ----------
    solid : (Z, Y, X) array
        The solid phase (non-zero voxels).
    region : (Z, Y, X) array, optional
        Only voxels where ``region`` is non-zero count (e.g. the ionomer layer's envelope).
    """
    s = _mask3(solid, "solid", copies=4.0)
    if region is None:
        return float(1.0 - s.mean())
    r = _mask3(region, "region", copies=4.0)
    same_shape(r, "region", s, "solid")
    n = int(r.sum())
    if n == 0:
        raise ValueError("region is empty: it must contain at least one voxel.")
    return float(1.0 - np.count_nonzero(s & r) / n)


def particle_support_distances(particles, support, *, voxel_size) -> pd.DataFrame:
    """How far each particle sits from the support: one row per particle label.

    Parameters
    ----------
    particles : (Z, Y, X) integer labels
        One label per particle (0 = background).
    support : (Z, Y, X) array
        The support (non-zero voxels), e.g. the carbon.
    voxel_size : float or (dz, dy, dx)
        Voxel size in Å.

    Returns
    -------
    DataFrame with columns ``label``, ``volume_A3``, ``z_A``, ``y_A``, ``x_A`` (centroid, Å),
    ``distance_A`` (from the particle's nearest voxel to the nearest support voxel, centre to
    centre, Å: one voxel when they touch, 0 when they overlap) and ``centroid_distance_A`` (from
    the centroid to the nearest support voxel, Å).
    """
    lab = labels_array(particles, "particles", ndim=3, copies=3.0)
    sup = _mask3(support, "support", copies=8.0)
    same_shape(sup, "support", lab, "particles")
    voxel = _voxel3(voxel_size)
    if not sup.any():
        raise ValueError("support is empty: it must contain at least one voxel to measure distances to.")
    ids = np.unique(lab[lab > 0])
    columns = ["label", "volume_A3", "z_A", "y_A", "x_A", "distance_A", "centroid_distance_A"]
    if ids.size == 0:
        return pd.DataFrame({c: np.zeros(0) for c in columns}).astype({"label": int})
    dist, nearest = ndi.distance_transform_edt(~sup, sampling=voxel, return_indices=True)
    counts = ndi.sum_labels(np.ones(lab.shape), lab, ids)
    centroid = np.array(ndi.center_of_mass(np.ones(lab.shape), lab, ids)).reshape(-1, 3)
    near = np.rint(centroid).astype(int)
    nz, ny, nx = (nearest[k][tuple(near.T)] for k in range(3))
    centroid_distance = np.hypot.reduce((np.stack([nz, ny, nx], 1) - centroid) * voxel, axis=1)
    return pd.DataFrame({
        "label": ids.astype(int),
        "volume_A3": counts * float(np.prod(voxel)),
        "z_A": centroid[:, 0] * voxel[0],
        "y_A": centroid[:, 1] * voxel[1],
        "x_A": centroid[:, 2] * voxel[2],
        "distance_A": ndi.minimum(dist, lab, ids),
        "centroid_distance_A": centroid_distance,
    })
