"""Tracking labelled objects through a time series, and their growth curves.

Two linkers, chosen per call (``method``):

- ``"trackpy"`` (default): `trackpy <https://soft-matter.github.io/trackpy/>`_'s linker (Crocker-Grier with
  an adaptive search and ``memory`` for missed frames). The fast choice for plain linking, where every
  object continues as one object: 300 objects over 200 frames link in about a second. Where a crowd is
  too dense for trackpy's subnet solver, the same assignment is solved by scipy's sparse LAP solver.
- ``"laptrack"``: `laptrack <https://github.com/yfukai/laptrack>`_, the linear-assignment-problem
  tracker of Jaqaman et al. (2008) (TrackMate's LAP tracker), globally optimal per frame pair with
  gap closing, and the one that follows **merges and splits** (coalescing or dividing particles,
  ``merges_splits=True``): the tracks of one family share a ``tree_id``. 2-3x trackpy's time.

Both link each object to the detection nearest to where it is expected (``motion``): where it was
(diffusion), moved by the stage drift, or also by its own recent velocity (directed motion, trackpy
only); ``"auto"`` reads the drift and the persistence of the motion off a first linking
(``_tracking_motion.py``). For diffusion the frame-pair assignment of least total squared step is
the maximum-likelihood linking, so errors left there are objects that really swap places.

Distances in Å, areas in Å², time in frames. No Qt, no napari.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._tracking_laptrack import link_laptrack
from napari_cryomat.core._validate import choice, integer, labels_array, positive


def _check_table(table, name: str, columns=()):
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame (from measure_series / track_objects); "
                         f"got {type(table).__name__}.")
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"{name} has no {', '.join(repr(c) for c in missing)} column; "
                         f"available: {list(table.columns)}.")
    return table


def _check_frames_labels(tracks, lab, name: str = "labels") -> None:
    frames = tracks["frame"].to_numpy()
    labs = tracks["label"].to_numpy()
    if len(frames) and (not np.all(np.isfinite(frames.astype(float))) or frames.min() < 0
                        or frames.max() >= lab.shape[0]):
        raise ValueError(f"tracks refer to frames outside 0..{lab.shape[0] - 1} of {name}.")
    if len(labs) and (not np.all(np.isfinite(labs.astype(float))) or labs.min() < 0):
        raise ValueError("tracks hold negative or non-finite labels.")

__all__ = ["track_objects", "link_table", "relabel_by_track", "growth_curves", "link_accuracy", "LINKERS"]

# trackpy's pure-Python subnet solver: its numba one ("auto") costs seconds of compilation in every new
# process (a batch worker, a napari session) to save little on the small subnets of segmented objects
_LINK_STRATEGY = "recursive"

# where an object is expected in the next frame (see link_table)
MOTIONS = ("auto", "none", "drift", "directed")

# what each linker suits, for the user (the Objects widget shows these)
LINKERS = {
    "trackpy": "fast; plain linking: each object stays one object (growth, drift, diffusion)",
    "laptrack": "2-3x slower; global assignment, and merges and splits (coalescence, fragmentation)",
}


def track_objects(labels, *, pixel_size: float, max_distance: float = 60.0, gap_frames: int = 1,
                  image=None, method: str = "trackpy", merges_splits: bool = False, motion: str = "auto",
                  progress: ProgressCallback = None):
    """Link the objects of a labelled time series (T, Y, X) frame to frame.

    Parameters
    ----------
    labels : int array (T, Y, X) (or (T, Z, Y, X))
        One labelled frame per time point, e.g. from :func:`~napari_cryomat.core.segment.segment_particles`.
    pixel_size : float
        Pixel size in Å.
    max_distance : float
        Largest displacement in Å of an object's centroid between linked frames (stage drift included).
    gap_frames : int
        How many missing frames a track may bridge (0 switches gap closing off).
    image : array, optional
        Intensities, passed to :func:`~napari_cryomat.core.measure.measure`.
    method : {"trackpy", "laptrack"}
        The linker (see the module notes and :data:`LINKERS`).
    merges_splits : bool
        Follow objects that merge or split (laptrack only).
    motion : {"auto", "none", "drift", "directed"}
        Motion model for the prediction of the next position (see :func:`link_table`).
    progress : callable, optional

    Returns
    -------
    pandas.DataFrame
        One row per object and frame, with ``track_id`` (1..), ``frame``, ``label`` (the object's
        label in that frame) and the columns of :func:`measure` (centroids in Å, ``area`` in Å²...).
    """
    from napari_cryomat.core.measure import measure_series

    lab = labels_array(labels, "labels", copies=6)
    if lab.ndim not in (3, 4):
        raise ValueError("Tracking needs a time series of labels (T, Y, X): one labelled frame per time point.")
    if lab.shape[0] < 2:
        raise ValueError(f"Tracking needs at least two frames; the labels have shape {lab.shape}.")
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    max_distance = positive(max_distance, "max_distance", unit="Å")
    gap_frames = integer(gap_frames, "gap_frames", low=0, high=lab.shape[0])
    method = _check_method(method, merges_splits)
    motion = choice(motion, "motion", MOTIONS)

    def sub(f):
        report(progress, 0.7 * f)

    table = measure_series(lab, image, pixel_size=pixel_size, progress=sub)
    out = link_table(table, max_distance=max_distance, gap_frames=gap_frames, method=method,
                     merges_splits=merges_splits, motion=motion)
    report(progress, 1.0)
    return out


def _check_method(method, merges_splits) -> str:
    method = choice(method, "method", tuple(LINKERS))
    if merges_splits and method != "laptrack":
        raise ValueError("merges_splits needs method='laptrack' (trackpy links one object to one object).")
    return method


def link_table(table, *, max_distance: float = 60.0, gap_frames: int = 1, method: str = "trackpy",
               merges_splits: bool = False, motion: str = "auto"):
    """Link the rows of a per-frame object table (``frame`` and ``centroid_*`` columns in Å, as
    made by :func:`~napari_cryomat.core.measure.measure_series`) into tracks.

    Parameters
    ----------
    table : pandas.DataFrame
    max_distance : float
        Largest displacement between linked frames, Å.
    gap_frames : int
        Missed frames a track may bridge.
    method : {"trackpy", "laptrack"}
        trackpy for plain linking (fast); laptrack for merges and splits.
    merges_splits : bool
        laptrack only: link an object to two in the next frame (split) or two to one (merge); the
        tracks of a family share a ``tree_id`` column, and the events are in ``result.attrs["splits"]``
        and ``["merges"]`` (parent and child track ids).
    motion : {"auto", "none", "drift", "directed"}
        Where an object is expected in the next frame. ``"none"``: where it was (diffusion).
        ``"drift"``: moved by the stage drift, the median step of all objects per frame, measured
        from a first linking. ``"directed"`` (trackpy only): the drift plus the object's own recent
        velocity, weighted by a gain fitted on the first links (0 for diffusion, ~1 for steady
        motion). ``"auto"``: measure both on a first linking and use what reduces the squared step
        error (drift by >= 5 %, velocity by >= 10 % more); for diffusion this is the plain result.
        What was assumed is in ``result.attrs["motion"]``.

    Returns the table with a ``track_id`` column (1..), sorted by track and frame.
    """
    max_distance = positive(max_distance, "max_distance", unit="Å")
    gap_frames = integer(gap_frames, "gap_frames", low=0, high=1_000_000)
    method = _check_method(method, merges_splits)
    motion = choice(motion, "motion", MOTIONS)
    if motion == "directed" and method != "trackpy":
        raise ValueError("motion='directed' needs method='trackpy' (laptrack follows the drift only: "
                         "use motion='drift' or 'auto').")
    if table is None or len(table) == 0:
        raise ValueError("No objects in any frame (the table is empty): segment the frames first.")
    _check_table(table, "table")
    if "frame" not in table:
        raise ValueError("The table has no 'frame' column: measure a time series (T, Y, X).")
    coords = [c for c in ("centroid_z", "centroid_y", "centroid_x") if c in table]
    if not coords:
        raise ValueError("The table has no centroid_y / centroid_x columns: measure the objects first.")
    values = np.asarray(table[coords + ["frame"]], dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError("The table holds NaN or inf centroids or frames; drop those rows first.")
    if not np.all(values[:, -1] == np.round(values[:, -1])) or values[:, -1].min() < 0:
        raise ValueError("The table's 'frame' column must hold whole frame numbers >= 0.")
    table = table.drop(columns=[c for c in ("track_id", "tree_id") if c in table]).reset_index(drop=True)
    track_df = _link_with_motion(table, coords, max_distance, gap_frames, method, merges_splits, motion)
    cols = ["track_id", "frame", "label"] + [c for c in table.columns if c not in ("frame", "label")]
    if "tree_id" in track_df:
        cols.insert(1, "tree_id")
    out = track_df[cols].sort_values(["track_id", "frame"]).reset_index(drop=True)
    out.attrs.update(track_df.attrs)
    return out


def _link_with_motion(table, coords, max_distance, gap_frames, method, merges_splits, motion):
    """Link once as asked; where the motion model says so, estimate drift / velocity from those links
    and link again from predicted positions (twice: the second estimate uses better links)."""
    from napari_cryomat.core._tracking_motion import estimate_motion, link_predicted, still_model

    frames = table["frame"].to_numpy().astype(np.int64)
    xyz = np.asarray(table[coords], dtype=float)
    n_frames = int(frames.max()) + 1

    def link(shift):  # the chosen linker on drift-corrected positions
        if method == "trackpy":
            return table.assign(track_id=_ranked(_trackpy_ids(frames, xyz - shift, max_distance, gap_frames)))
        moved = table.assign(**{c: xyz[:, k] - shift[:, k] for k, c in enumerate(coords)})
        out = link_laptrack(moved, coords, max_distance, gap_frames, merges_splits)
        return out.assign(**{c: table[c].to_numpy() for c in coords})

    no_shift = np.zeros_like(xyz)
    # laptrack with a motion model: estimate the motion on the exact frame-pair assignment (the same
    # links as trackpy's, ~5x faster), then run laptrack once, on the positions that model predicts
    first_method = "exact" if method == "laptrack" and motion != "none" else method
    linked = link(no_shift) if first_method == method else table.assign(
        track_id=_ranked(link_predicted(frames, xyz, max_distance, gap_frames, still_model(n_frames, xyz.shape[1]))))
    used = "none"
    model = None
    for _ in range(2 if motion != "none" else 0):
        model = estimate_motion(frames, xyz, linked["track_id"].to_numpy(), n_frames)
        use_velocity = motion == "directed" or (motion == "auto" and method == "trackpy"
                                                and model.velocity_reduction >= 0.10)
        use_drift = use_velocity or motion == "drift" or (motion == "auto" and model.drift_reduction >= 0.05)
        if use_velocity:
            used = "directed"
            linked = table.assign(track_id=_ranked(link_predicted(frames, xyz, max_distance, gap_frames, model)))
        elif use_drift:
            used = "drift"
            linked = link(np.cumsum(model.drift, axis=0)[frames])
        else:
            break
    if used == "none" and first_method != method:  # "auto" found no motion: the asked linker as is
        linked = link(no_shift)
    linked.attrs["motion"] = _motion_summary(used, model)
    return linked


def _motion_summary(used: str, model) -> dict:
    summary = dict(model=used)
    if model is not None:
        summary.update(drift_per_frame=float(np.mean(np.linalg.norm(model.drift[1:], axis=1)))
                       if len(model.drift) > 1 else 0.0,
                       velocity_gain=model.gain, velocity_memory=model.memory,
                       drift_reduction=model.drift_reduction, velocity_reduction=model.velocity_reduction)
    return summary


def _ranked(particle) -> np.ndarray:
    """Track ids 1.. in order of first appearance (rows in table order, sorted by frame)."""
    _, first = np.unique(particle, return_index=True)
    keys = np.unique(particle)
    rank = np.empty(len(keys), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(1, len(keys) + 1)
    return rank[np.searchsorted(keys, particle)]


def _trackpy_ids(frames, xyz, max_distance: float, gap_frames: int) -> np.ndarray:
    """trackpy's frame-by-frame linker on plain coordinate arrays (its ``link_iter``: the DataFrame
    front end, ``trackpy.link``, copies and sorts the whole table and costs about twice as much)."""
    import logging

    import trackpy
    from trackpy.linking import link_iter

    logging.getLogger("trackpy").setLevel(logging.WARNING)  # no per-frame chatter
    trackpy.quiet()
    order = np.argsort(frames, kind="stable")
    sorted_xyz = xyz[order]
    starts = np.flatnonzero(np.r_[True, np.diff(frames[order]) != 0])
    bounds = list(zip(starts, np.r_[starts[1:], len(order)]))
    per_frame = ((int(frames[order][s]), sorted_xyz[s:e]) for s, e in bounds)
    particle = np.empty(len(order), np.int64)
    try:
        linked = link_iter(per_frame, float(max_distance), memory=int(gap_frames), link_strategy=_LINK_STRATEGY,
                           adaptive_stop=0.5 * float(max_distance), adaptive_step=0.9)
        for (s, e), (_t, ids) in zip(bounds, linked):
            particle[order[s:e]] = ids
    except trackpy.SubnetOversizeException:
        # a crowd too dense for trackpy's subnet solver: the same assignment (least total squared
        # step, max_distance² for an object left unlinked) by scipy's sparse LAP solver, no size limit
        from napari_cryomat.core._tracking_motion import link_predicted, still_model

        return link_predicted(frames, xyz, max_distance, gap_frames, still_model(int(frames.max()) + 1, xyz.shape[1]))
    return particle


def relabel_by_track(labels, tracks) -> np.ndarray:
    """Relabel every frame so that an object's label is its track id (colours follow the object)."""
    lab = labels_array(labels, "labels", copies=2)
    _check_table(tracks, "tracks", ("frame", "label", "track_id"))
    _check_frames_labels(tracks, lab)
    out = np.zeros(lab.shape, dtype=np.int32)
    for t, grp in tracks.groupby("frame"):
        lut = np.zeros(max(int(lab[t].max()), int(grp["label"].max())) + 1, dtype=np.int32)
        lut[grp["label"].to_numpy(int)] = grp["track_id"].to_numpy(int)
        out[t] = lut[lab[t]]
    return out


def growth_curves(tracks, *, value: str = "area", frame_interval: float = 1.0):
    """Per-track growth: ``value`` against time, and a linear growth rate per track.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Output of :func:`track_objects`.
    value : str
        Column to follow, e.g. ``area`` (Å²), ``equivalent_diameter`` (Å) or ``volume`` (Å³).
    frame_interval : float
        Time between frames (s, or 1 for "per frame").

    Returns
    -------
    curves : pandas.DataFrame, wide: index ``time``, one column per track id
    rates : pandas.DataFrame with ``track_id``, ``n_frames``, ``rate`` (value per time unit,
        least-squares slope) and ``initial``/``final`` values.
    """
    import pandas as pd

    _check_table(tracks, "tracks", ("frame", "track_id"))
    if not isinstance(value, str) or value not in tracks:
        raise ValueError(f"Unknown property (value) {value!r}; available: {list(tracks.columns)}")
    frame_interval = positive(frame_interval, "frame_interval", unit="s", high=1e12)
    if not np.all(np.isfinite(np.asarray(tracks[value], dtype=float))):
        raise ValueError(f"The tracks' {value!r} column (value) holds NaN or inf; drop those rows first.")
    t = tracks.assign(time=tracks["frame"] * float(frame_interval))
    curves = t.pivot_table(index="time", columns="track_id", values=value)
    rows = []
    for tid, grp in t.groupby("track_id"):
        x, y = grp["time"].to_numpy(float), grp[value].to_numpy(float)
        rate = float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 else np.nan
        rows.append(dict(track_id=int(tid), n_frames=len(x), rate=rate, initial=y[0], final=y[-1]))
    return curves, pd.DataFrame(rows)


def link_accuracy(tracks, labels, truth) -> dict:
    """Accuracy of the frame-to-frame links against true labels whose ids are constant along time
    (as in the synthetic growth series).

    Each detection (a ``label`` in a ``frame`` of ``labels``) is identified with the true object it
    overlaps most. A link between consecutive detections of one track is correct when both are the
    same true object.

    Returns
    -------
    dict with ``precision`` (correct links / links made), ``recall`` (correct links between
    consecutive frames / true links; a missed detection costs recall), ``n_links``,
    ``n_true_links``, ``perfect_tracks`` (fraction of true objects whose detections all lie on one
    track that holds nothing else: the identity is kept across missed frames too).
    """
    lab = labels_array(labels, "labels", copies=3)
    tru = labels_array(truth, "truth", copies=3)
    if lab.shape != tru.shape:
        raise ValueError(f"labels and truth must have the same shape; got {lab.shape} and {tru.shape}.")
    _check_table(tracks, "tracks", ("frame", "label", "track_id"))
    _check_frames_labels(tracks, lab)
    ident = {}
    for f in np.unique(tracks["frame"].to_numpy(int)):
        a = lab[f].ravel().astype(np.int64)
        b = tru[f].ravel().astype(np.int64)
        nb = int(b.max()) + 1
        # a table row whose label is hidden in the frame (overwritten by a neighbour) identifies nothing
        na = max(int(a.max()), int(tracks["label"].max())) + 1
        m = np.bincount(a * nb + b, minlength=na * nb).reshape(-1, nb)
        m[:, 0] = 0  # overlap with background does not identify anything
        best = np.where(m.max(1) > 0, m.argmax(1), 0)
        ident[f] = best
    tid = np.array([ident[f][l] for f, l in zip(tracks["frame"].to_numpy(int), tracks["label"].to_numpy(int))])
    t = tracks.assign(true_id=tid).sort_values(["track_id", "frame"])
    n_links = correct = correct_consecutive = 0
    for _, grp in t.groupby("track_id"):
        ids = grp["true_id"].to_numpy()
        fr = grp["frame"].to_numpy()
        for k in range(len(ids) - 1):
            n_links += 1
            ok = ids[k] > 0 and ids[k] == ids[k + 1]
            correct += ok
            correct_consecutive += ok and fr[k + 1] == fr[k] + 1
    present = np.stack([np.bincount(tru[f].ravel(), minlength=int(tru.max()) + 1) > 0 for f in range(tru.shape[0])])
    present[:, 0] = False
    n_true_links = int(np.sum(present[:-1] & present[1:]))
    perfect = 0
    ids_true = np.flatnonzero(present.any(0))
    for i in ids_true:
        rows = t[t["true_id"] == i]
        if len(rows) and rows["track_id"].nunique() == 1:
            whole = t[t["track_id"] == rows["track_id"].iloc[0]]
            perfect += bool((whole["true_id"] == i).all())
    return dict(
        precision=float(correct / n_links) if n_links else 0.0,
        recall=float(correct_consecutive / n_true_links) if n_true_links else 0.0,
        n_links=int(n_links), n_true_links=n_true_links,
        perfect_tracks=perfect / len(ids_true) if len(ids_true) else 0.0,
    )
