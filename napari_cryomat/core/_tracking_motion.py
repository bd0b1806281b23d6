"""Motion models for linking: stage drift and directed motion, estimated from the data.

Frame-to-frame linking assigns each object to the detection nearest to where it is expected. For
pure diffusion the best guess is where it was (what trackpy and laptrack do): then no linker that
sees positions only can do better than the minimum total squared displacement per frame pair, and
the remaining errors are pairs whose relative step really exceeds their separation. Objects that
drift with the stage or move with a velocity of their own (directed motion) are better predicted:

- ``estimate_motion`` reads the motion off a first set of links: the stage drift per frame (median
  displacement of all links between two frames) and, for each candidate memory length ``m``, the
  gain ``g`` of the least-squares prediction ``step = drift + g * (mean of the track's last m
  drift-free steps)``, that mean shrunk towards zero as far as noise explains it (James-Stein, per
  track: a diffusing object among moving ones gets ~0). For diffusion ``g`` is ~0; for persistent
  motion ~1. (Tried and not kept: weighting each track's squared error by its own prediction variance
  made no difference on the benchmark's directed setting.)
- ``link_predicted`` links frame by frame like trackpy (minimum total squared distance, an object
  left unlinked costs ``max_distance²``, ``memory`` for missed frames) but from predicted positions,
  as one sparse assignment per frame pair (scipy's LAPJVsp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEMORY_LENGTHS = (1, 2, 4, 8)  # numbers of past steps averaged into a track's velocity


@dataclass(frozen=True)
class MotionModel:
    drift: np.ndarray  # (n_frames, ndim): displacement from frame t-1 to frame t (row 0 is 0)
    gain: float  # weight of the track's own recent velocity in the prediction
    memory: int  # number of past steps averaged into that velocity
    msd_still: float  # mean squared step when predicting "no move"
    msd_drift: float  # mean squared error when predicting the stage drift only
    msd_predicted: float  # mean squared error of the prediction, same links

    @property
    def drift_reduction(self) -> float:
        """Fraction of the squared step error that predicting the drift removes (0: none)."""
        return 1.0 - self.msd_drift / self.msd_still if self.msd_still > 0 else 0.0

    @property
    def velocity_reduction(self) -> float:
        """Fraction of the remaining squared error that the tracks' own velocities remove."""
        return 1.0 - self.msd_predicted / self.msd_drift if self.msd_drift > 0 else 0.0


def still_model(n_frames: int, ndim: int) -> MotionModel:
    """The prediction "it stays where it was" (diffusion)."""
    return MotionModel(np.zeros((n_frames, ndim)), 0.0, 1, 0.0, 0.0, 0.0)


def shrunk_velocity(mean_step, count, noise: float):
    """A track's recent mean step, shrunk towards zero by how much of it noise explains (positive-part
    James-Stein: a diffusing object's mean step, ~``noise / count`` in square, goes to ~0; a steadily
    moving one's is kept)."""
    power = np.sum(mean_step**2, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = np.clip(1.0 - noise / (np.maximum(count, 1) * power), 0.0, 1.0)
    return np.where(power > 0, keep * mean_step, 0.0)


def _recent_mean(steps, track, m: int):
    """Mean of the ``m`` previous steps of the same track (rows sorted by track and frame) and how
    many steps it averages; rows with no previous step get zero."""
    n = len(steps)
    csum = np.vstack([np.zeros((1, steps.shape[1])), np.cumsum(steps, axis=0)])
    idx = np.arange(n)
    start_of_track = np.r_[0, np.flatnonzero(np.diff(track) != 0) + 1]
    first = start_of_track[np.searchsorted(start_of_track, idx, side="right") - 1]
    lo = np.maximum(first, idx - m)
    count = (idx - lo)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (csum[idx] - csum[lo]) / count
    return np.where(count > 0, mean, 0.0), count


def estimate_motion(frames, xyz, track_id, n_frames: int) -> MotionModel:
    """Drift and directed motion from linked rows (``frames`` 0..n_frames-1, positions, track ids)."""
    ndim = xyz.shape[1]
    order = np.lexsort((frames, track_id))
    f, p, tr = frames[order], xyz[order], track_id[order]
    # links between consecutive frames of one track
    nxt = np.flatnonzero((tr[1:] == tr[:-1]) & (f[1:] == f[:-1] + 1))
    steps, step_frame, step_track = p[nxt + 1] - p[nxt], f[nxt + 1], tr[nxt]
    drift = np.zeros((n_frames, ndim))
    if len(steps) == 0:
        return MotionModel(drift, 0.0, 1, 0.0, 0.0, 0.0)
    by_frame = np.argsort(step_frame, kind="stable")
    bounds = np.r_[0, np.flatnonzero(np.diff(step_frame[by_frame])) + 1, len(by_frame)]
    for s, e in zip(bounds[:-1], bounds[1:]):
        drift[step_frame[by_frame[s]]] = np.median(steps[by_frame[s:e]], axis=0)
    still = float(np.mean(np.sum(steps**2, 1)))
    free = steps - drift[step_frame]  # the steps of the objects themselves
    drift_only = float(np.mean(np.sum(free**2, 1)))
    best = MotionModel(drift, 0.0, 1, still, drift_only, drift_only)
    for m in MEMORY_LENGTHS:
        mean_step, count = _recent_mean(free, step_track, m)
        velocity = shrunk_velocity(mean_step, count, drift_only)
        norm = float(np.sum(velocity**2))
        gain = float(np.clip(np.sum(velocity * free) / norm, 0.0, 1.0)) if norm > 0 else 0.0
        err = float(np.mean(np.sum((free - gain * velocity) ** 2, 1)))
        if err < best.msd_predicted:
            best = MotionModel(drift, gain, m, still, drift_only, err)
    return best


def link_predicted(frames, xyz, max_distance: float, gap_frames: int, model: MotionModel) -> np.ndarray:
    """Track id (0..) of every row, linking each frame to the positions ``model`` predicts."""
    from scipy.spatial import cKDTree

    order = np.argsort(frames, kind="stable")
    f_sorted = frames[order]
    bounds = np.r_[0, np.flatnonzero(np.diff(f_sorted)) + 1, len(order)]
    cum_drift = np.cumsum(model.drift, axis=0)
    out = np.empty(len(frames), np.int64)
    # the state of every track: last position, last frame, recent steps (drift removed)
    last_pos = np.empty((0, xyz.shape[1]))
    last_frame = np.empty(0, np.int64)
    history = np.zeros((0, model.memory, xyz.shape[1]))
    n_hist = np.zeros(0, np.int64)
    r2 = float(max_distance) ** 2
    for s, e in zip(bounds[:-1], bounds[1:]):
        t = int(f_sorted[s])
        det = xyz[order[s:e]]
        alive = np.flatnonzero(t - last_frame <= gap_frames + 1)
        gap = (t - last_frame[alive])[:, None]
        count = n_hist[alive][:, None]
        velocity = shrunk_velocity(history[alive].sum(1) / np.maximum(count, 1), count, model.msd_drift)
        pred = last_pos[alive] + cum_drift[t] - cum_drift[last_frame[alive]] + model.gain * velocity * gap
        match = _assign(pred, det, max_distance, r2, cKDTree) if len(alive) else np.full(len(det), -1)
        ids = np.empty(len(det), np.int64)
        linked = match >= 0
        ids[linked] = alive[match[linked]]
        new = np.arange(len(last_pos), len(last_pos) + int((~linked).sum()))
        ids[~linked] = new
        # update the tracks
        tracks = ids[linked]
        step = (det[linked] - last_pos[tracks] - (cum_drift[t] - cum_drift[last_frame[tracks]])[:, :]) / \
            (t - last_frame[tracks])[:, None]
        history[tracks] = np.roll(history[tracks], 1, axis=1)
        history[tracks, 0] = step
        n_hist[tracks] = np.minimum(n_hist[tracks] + 1, model.memory)
        last_pos = np.vstack([last_pos, det[~linked]])
        last_frame = np.r_[last_frame, np.full(len(new), t)]
        history = np.concatenate([history, np.zeros((len(new),) + history.shape[1:])])
        n_hist = np.r_[n_hist, np.zeros(len(new), np.int64)]
        last_pos[tracks] = det[linked]
        last_frame[tracks] = t
        out[order[s:e]] = ids
    return out


def _assign(pred, det, max_distance: float, r2: float, kdtree) -> np.ndarray:
    """For each detection, the index of the predicted position it is linked to (-1: none), minimising
    the total squared distance with ``r2`` for every object left unlinked on either side."""
    from scipy.sparse import coo_matrix, csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    pairs = kdtree(pred).sparse_distance_matrix(kdtree(det), max_distance, output_type="coo_matrix")
    p, q = len(pred), len(det)
    match = np.full(q, -1)
    if pairs.nnz == 0:
        return match
    i, j, d = pairs.row, pairs.col, pairs.data
    # augmented problem (Jaqaman et al. 2008): rows = predictions + "born" slots, columns = detections
    # + "ended" slots; every full matching has p + q edges, so the +1 on every cost (kept > 0 so that
    # scipy sees the edge) changes no choice
    rows = np.r_[i, np.arange(p), p + np.arange(q), p + j]
    cols = np.r_[j, q + np.arange(p), np.arange(q), q + i]
    cost = np.r_[d**2, np.full(p, r2 / 2), np.full(q, r2 / 2), np.zeros(len(i))] + 1.0
    graph = csr_matrix(coo_matrix((cost, (rows, cols)), shape=(p + q, q + p)))
    row_to_col = min_weight_full_bipartite_matching(graph)[1]
    linked = np.flatnonzero(row_to_col[:p] < q)
    match[row_to_col[linked]] = linked
    return match
