"""The graph of a 3D skeleton: branches, junctions, end points and loops (for core.morph3d).

Skeleton voxels are joined to their 26 neighbours; voxels with three or more neighbours are
junctions (touching junction voxels make one junction), voxels with one are end points, and the
chains of the other voxels are the branches. No Qt, no napari.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

__all__ = ["SkeletonGraph", "graph_of_skeleton"]


@dataclass
class SkeletonGraph:
    """A 3D skeleton as a graph. Lengths in Å, positions (z, y, x) in Å from the first voxel's centre.

    ``branch_lengths[i]`` is the length of branch ``i`` (a chain of skeleton voxels between two
    nodes: junctions or end points; a closed ring without junctions is one branch);
    ``branch_kinds[i]`` is "end-end", "junction-end", "junction-junction" or "loop".
    """

    skeleton: np.ndarray
    branch_lengths: np.ndarray
    branch_kinds: list
    junctions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    end_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    n_loops: int = 0

    @property
    def n_branches(self) -> int:
        return int(self.branch_lengths.size)

    @property
    def n_junctions(self) -> int:
        return int(len(self.junctions))

    @property
    def total_length(self) -> float:
        return float(self.branch_lengths.sum())


def _skeleton_edges(coords: np.ndarray, shape, voxel: np.ndarray):
    """Pairs (i, j) of 26-adjacent skeleton voxels (each pair once) and their lengths in Å."""
    dims = np.array(shape) + 2
    lin = np.ravel_multi_index(tuple((coords + 1).T), tuple(dims))  # +1: neighbours never wrap
    order = np.argsort(lin)
    sorted_lin = lin[order]
    pairs, lengths = [], []
    half = [o for o in itertools.product((-1, 0, 1), repeat=3) if o > (0, 0, 0)]
    for o in half:
        step = (o[0] * dims[1] + o[1]) * dims[2] + o[2]
        pos = np.searchsorted(sorted_lin, lin + step)
        pos = np.minimum(pos, lin.size - 1)
        hit = sorted_lin[pos] == lin + step
        i = np.flatnonzero(hit)
        pairs.append(np.stack([i, order[pos[hit]]], axis=1))
        lengths.append(np.full(i.size, float(np.hypot.reduce(np.array(o) * voxel))))
    return np.concatenate(pairs), np.concatenate(lengths)


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    g = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return csgraph.connected_components(g, directed=False)[1]


def _branch_nodes(n_branch, branch_of, junction_of, is_end, pairs):
    """For each branch, the node ids it joins: junction clusters (0..J-1) and end voxels (J + voxel)."""
    attach: list[set] = [set() for _ in range(n_branch)]
    a, b = pairs[:, 0], pairs[:, 1]
    for x, y in ((a, b), (b, a)):
        touch = (branch_of[x] >= 0) & (junction_of[y] >= 0)
        for br, j in set(zip(branch_of[x][touch].tolist(), junction_of[y][touch].tolist())):
            attach[br].add(("j", j))
    for v in np.flatnonzero(is_end):
        attach[branch_of[v]].add(("e", int(v)))
    return attach


def graph_of_skeleton(skel: np.ndarray, voxel: np.ndarray) -> SkeletonGraph:
    """The graph of a 3D skeleton (bool (Z, Y, X)) with voxel size ``voxel`` (dz, dy, dx) in Å."""
    coords = np.argwhere(skel)
    n = len(coords)
    empty = SkeletonGraph(skel, np.zeros(0), [])
    if n == 0:
        return empty
    pairs, lengths = _skeleton_edges(coords, skel.shape, voxel)
    degree = np.bincount(pairs.ravel(), minlength=n)
    is_junction, is_end = degree >= 3, degree == 1
    both = is_junction[pairs[:, 0]] & is_junction[pairs[:, 1]]
    neither = ~is_junction[pairs[:, 0]] & ~is_junction[pairs[:, 1]]
    junction_of = np.full(n, -1)
    junction_of[is_junction] = np.unique(_components(n, pairs[both])[is_junction], return_inverse=True)[1]
    branch_of = np.full(n, -1)
    chain = ~is_junction & (degree > 0)
    branch_of[chain] = np.unique(_components(n, pairs[neither])[chain], return_inverse=True)[1]
    n_branch = int(branch_of.max()) + 1
    n_junction = int(junction_of.max()) + 1

    # branch lengths: minimum spanning tree edges that touch the branch
    tree = csgraph.minimum_spanning_tree(
        sparse.coo_matrix((lengths, (pairs[:, 0], pairs[:, 1])), shape=(n, n))).tocoo()
    owner = np.where(branch_of[tree.row] >= 0, branch_of[tree.row], branch_of[tree.col])
    keep = owner >= 0
    branch_lengths = np.bincount(owner[keep], weights=tree.data[keep], minlength=n_branch)

    attach = _branch_nodes(n_branch, branch_of, junction_of, is_end, pairs)
    node_id = {}
    edges, kinds = [], []
    for br, nodes in enumerate(attach):
        ids = [node_id.setdefault(nd, len(node_id)) for nd in sorted(nodes)]
        if not ids:  # a closed ring with no junction: a node of its own and a self-loop
            ids = [node_id.setdefault(("ring", br), len(node_id))]
        kinds.append("loop" if len(ids) == 1 else
                     "end-end" if all(nd[0] == "e" for nd in nodes) else
                     "junction-junction" if all(nd[0] == "j" for nd in nodes) else "junction-end")
        edges.extend([(ids[0], ids[0])] if len(ids) == 1 else list(zip(ids[:-1], ids[1:])))
    n_nodes = len(node_id)
    n_parts = csgraph.connected_components(sparse.coo_matrix(
        (np.ones(len(edges)), tuple(np.array(edges, int).reshape(-1, 2).T)), shape=(n_nodes, n_nodes)),
        directed=False)[0] if n_nodes else 0
    n_loops = max(0, len(edges) - n_nodes + n_parts)

    junctions = np.zeros((n_junction, 3))
    if n_junction:
        size = np.bincount(junction_of[is_junction], minlength=n_junction)
        for axis in range(3):
            junctions[:, axis] = np.bincount(junction_of[is_junction], coords[is_junction, axis], n_junction) / size
    return SkeletonGraph(skel, branch_lengths, kinds, junctions * voxel, coords[is_end] * voxel, n_loops)
