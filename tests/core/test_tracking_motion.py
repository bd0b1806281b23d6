"""Motion models of the linkers (drift, directed motion), the exact per-frame assignment, and the
reading of laptrack's graph. Randomised, seeded cases; identities known from the generator."""

import numpy as np
import pandas as pd
import pytest

from napari_cryomat.core.tracking import link_table


def _moving(n=120, n_frames=25, side=200.0, speed=(0.0, 0.0), step=0.7, drift=0.0, seed=0):
    """``n`` objects in a ``side``² Å field: a share moving at ``speed`` Å/frame in a slowly turning
    direction (random per object; speed 0 = pure diffusion), diffusion ``step`` Å per axis, a stage
    drift of ``drift`` Å/frame in a wandering direction. Rows shuffled, labels permuted; ``true_id``."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, side, (n, 2))
    angle = rng.uniform(0, 2 * np.pi, n)
    speeds = rng.uniform(*speed, n) * (rng.random(n) < 0.6)
    drift_angle = rng.uniform(0, 2 * np.pi)
    offset, drifts, parts = np.zeros(2), [np.zeros(2)], []
    for t in range(n_frames):
        if t:
            angle += rng.normal(0, 0.05, n)
            drift_angle += rng.normal(0, 0.1)
            pos = pos + speeds[:, None] * np.c_[np.sin(angle), np.cos(angle)] + rng.normal(0, step, (n, 2))
            d = drift * np.r_[np.sin(drift_angle), np.cos(drift_angle)]
            offset = offset + d
            drifts.append(d)
        parts.append(pd.DataFrame(dict(frame=t, label=rng.permutation(n) + 1, centroid_y=pos[:, 0] + offset[0],
                                       centroid_x=pos[:, 1] + offset[1], true_id=np.arange(n))))
    table = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return table, np.array(drifts)


def _wrong_links(tracks) -> int:
    t = tracks.sort_values(["track_id", "frame"])
    link = t.track_id.to_numpy()[1:] == t.track_id.to_numpy()[:-1]
    return int(np.sum(link & (t.true_id.to_numpy()[1:] != t.true_id.to_numpy()[:-1])))


def _same_partition(a, b) -> bool:
    """True when the two id arrays group the rows identically (up to renumbering)."""
    pairs = pd.DataFrame(dict(a=a, b=b))
    return bool((pairs.groupby("a").b.nunique() == 1).all() and (pairs.groupby("b").a.nunique() == 1).all())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_directed_motion_is_predicted_and_halves_the_errors(seed):
    table, _ = _moving(speed=(3.0, 6.0), drift=2.0, seed=seed)
    plain = link_table(table, max_distance=12.0, motion="none")
    auto = link_table(table, max_distance=12.0)
    assert auto.attrs["motion"]["model"] == "directed"
    assert 0.5 < auto.attrs["motion"]["velocity_gain"] <= 1.0
    n_plain, n_auto = _wrong_links(plain), _wrong_links(auto)
    assert n_plain >= 10  # the case is hard for "where it was"
    assert n_auto <= 0.5 * n_plain
    # no precision bought by not linking: (almost) every object keeps one track
    assert auto.track_id.nunique() <= 1.1 * table.true_id.nunique()


@pytest.mark.parametrize("seed", [3, 4])
def test_diffusion_keeps_the_plain_linking(seed):
    table, _ = _moving(n=150, step=1.5, seed=seed)
    auto = link_table(table, max_distance=8.0)
    plain = link_table(table, max_distance=8.0, motion="none")
    assert auto.attrs["motion"]["model"] == "none"
    assert abs(auto.attrs["motion"]["velocity_gain"]) < 0.2
    assert _same_partition(auto.sort_values(["frame", "label"]).track_id.to_numpy(),
                           plain.sort_values(["frame", "label"]).track_id.to_numpy())


def test_exact_assignment_equals_trackpy_on_diffusion():
    from napari_cryomat.core._tracking_motion import link_predicted, still_model

    table, _ = _moving(n=200, n_frames=15, step=2.0, seed=5)
    frames = table.frame.to_numpy()
    xyz = table[["centroid_y", "centroid_x"]].to_numpy()
    exact = link_predicted(frames, xyz, 8.0, 1, still_model(int(frames.max()) + 1, 2))
    tracks = link_table(table, max_distance=8.0, motion="none")  # trackpy's subnet solver
    by_row = tracks.sort_values(["frame", "label"]).track_id.to_numpy()
    exact_by_row = pd.Series(exact, index=pd.MultiIndex.from_arrays([frames, table.label])).sort_index()
    assert _wrong_links(tracks) > 0  # ambiguous enough to matter
    assert _same_partition(by_row, exact_by_row.to_numpy())


def test_stage_drift_is_measured_and_followed():
    # a search radius barely above the drift: "where it was" loses objects, "moved by the drift" none
    table, _ = _moving(n=80, step=0.5, drift=4.0, seed=6)
    plain = link_table(table, max_distance=5.0, motion="none")
    for motion in ("drift", "auto"):
        tracks = link_table(table, max_distance=5.0, motion=motion)
        info = tracks.attrs["motion"]
        assert info["model"] == "drift"
        assert info["drift_per_frame"] == pytest.approx(4.0, abs=0.1)
        assert info["drift_reduction"] > 0.8
        assert tracks.track_id.nunique() == 80
        assert _wrong_links(tracks) <= _wrong_links(plain)
    assert plain.track_id.nunique() > 85


def test_a_crowd_too_dense_for_trackpy_is_still_linked():
    # 150 objects in 50² Å, radius 20 Å: trackpy's subnets exceed its size limit at any radius it tries
    table, _ = _moving(n=150, n_frames=6, side=50.0, step=0.2, seed=7)
    tracks = link_table(table, max_distance=20.0, motion="none")
    assert len(tracks) == len(table)
    assert _wrong_links(tracks) <= 0.01 * len(table)
    assert tracks.track_id.nunique() <= 155


def test_laptrack_graph_is_read_as_laptrack_reads_it():
    from laptrack import LapTrack

    rng = np.random.default_rng(8)
    table, _ = _moving(n=30, n_frames=8, side=120.0, step=1.0, seed=8)
    # a particle that splits, and two that come together
    rows = [(t, 100, 60.0 + rng.normal(0, 0.3), 300.0) for t in range(4)]
    rows += [(t, 101 + k, 60.0 + (3 * (t - 3) if k else -3 * (t - 3)), 301.0) for t in range(4, 8) for k in (0, 1)]
    rows += [(t, 110 + k, 200.0 + (10 - 3 * t) * (1 if k else -1), 200.0) for t in range(4) for k in (0, 1)]
    rows += [(t, 110, 200.0, 200.0 + t) for t in range(4, 8)]
    extra = pd.DataFrame(rows, columns=["frame", "label", "centroid_y", "centroid_x"]).assign(true_id=-1)
    table = pd.concat([table, extra], ignore_index=True)
    ours = link_table(table, max_distance=10.0, gap_frames=1, method="laptrack", merges_splits=True, motion="none")
    cutoff = 100.0
    lt = LapTrack(metric="sqeuclidean", cutoff=cutoff, gap_closing_metric="sqeuclidean", gap_closing_cutoff=cutoff,
                  gap_closing_max_frame_count=2, splitting_cutoff=cutoff, merging_cutoff=cutoff)
    theirs, their_splits, their_merges = lt.predict_dataframe(table.copy(), coordinate_cols=["centroid_y", "centroid_x"],
                                                              frame_col="frame", only_coordinate_cols=False)
    ours = ours.sort_values(["frame", "label"]).reset_index(drop=True)
    theirs = theirs.sort_values(["frame", "label"]).reset_index(drop=True)
    assert _same_partition(ours.track_id.to_numpy(), theirs.track_id.to_numpy())
    assert _same_partition(ours.tree_id.to_numpy(), theirs.tree_id.to_numpy())
    assert len(ours.attrs["splits"]) == len(their_splits) == 2
    assert len(ours.attrs["merges"]) == len(their_merges)
    # the events join the same tracks: map their track ids onto ours
    to_ours = dict(zip(theirs.track_id, ours.track_id))
    for mine, their in ((ours.attrs["splits"], their_splits), (ours.attrs["merges"], their_merges)):
        if len(their) == 0:
            continue
        mapped = {(to_ours[p], to_ours[c]) for p, c in their[["parent_track_id", "child_track_id"]].to_numpy()}
        assert mapped == set(map(tuple, mine[["parent_track_id", "child_track_id"]].to_numpy()))


def test_motion_bad_input():
    table, _ = _moving(n=5, n_frames=3, seed=9)
    with pytest.raises(ValueError, match="motion"):
        link_table(table, max_distance=10.0, motion="ballistic")
    with pytest.raises(ValueError, match="directed"):
        link_table(table, max_distance=10.0, method="laptrack", motion="directed")
    with pytest.raises(ValueError, match="frame"):
        link_table(table.assign(frame=table.frame + 0.5), max_distance=10.0)
