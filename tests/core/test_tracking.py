import numpy as np
import pytest

from napari_cryomat.core.segment import segment_particles
from napari_cryomat.core.synthetic.particles import make_growth
from napari_cryomat.core.tracking import growth_curves, link_accuracy, relabel_by_track, track_objects


@pytest.fixture(scope="module")
def growth():
    movie, truth, info = make_growth(n_frames=5)
    return movie, truth, info


def test_tracks_follow_true_crystals(growth):
    movie, truth, info = growth
    ps = info["pixel_size"]
    labels = np.stack([segment_particles(f, pixel_size=ps) for f in movie])
    tracks = track_objects(labels, pixel_size=ps, max_distance=60.0)
    acc = link_accuracy(tracks, labels, truth)
    assert acc["precision"] == 1.0 and acc["recall"] == 1.0 and acc["perfect_tracks"] == 1.0
    assert tracks.track_id.nunique() == truth.max()


def test_growth_rates_in_square_angstrom_per_frame(growth):
    _, truth, info = growth
    # shuffle the label ids per frame: tracking must not rely on ids
    rng = np.random.default_rng(0)
    shuffled = np.zeros_like(truth)
    for t in range(truth.shape[0]):
        perm = np.r_[0, rng.permutation(truth.max()) + 1]
        shuffled[t] = perm[truth[t]]
    tracks = track_objects(shuffled, pixel_size=info["pixel_size"], max_distance=60.0)
    curves, rates = growth_curves(tracks, value="area")
    true_areas = np.asarray(info["area_A2"])
    true_rates = np.sort([np.polyfit(np.arange(len(a)), a, 1)[0] for a in true_areas.T])
    assert np.allclose(np.sort(rates.rate), true_rates, rtol=1e-6)
    assert curves.shape == (truth.shape[0], truth.max())
    relabelled = relabel_by_track(shuffled, tracks)
    # each track's label is constant: the identity of crystal 1 follows it through the frames
    first = relabelled[0][truth[0] == 1][0]
    assert all(np.all(relabelled[t][truth[t] == 1] == first) for t in range(truth.shape[0]))


def test_gap_closing_bridges_a_missing_frame(growth):
    _, truth, info = growth
    holey = truth.copy()
    holey[2][holey[2] == 3] = 0  # crystal 3 missed in frame 2
    tracks = track_objects(holey, pixel_size=info["pixel_size"], max_distance=60.0, gap_frames=1)
    assert tracks.track_id.nunique() == truth.max()
    no_gap = track_objects(holey, pixel_size=info["pixel_size"], max_distance=60.0, gap_frames=0)
    assert no_gap.track_id.nunique() == truth.max() + 1


def test_tracking_bad_input():
    with pytest.raises(ValueError, match="time series"):
        track_objects(np.zeros((5, 5), int), pixel_size=1.0)
    with pytest.raises(ValueError, match="No objects"):
        track_objects(np.zeros((3, 5, 5), int), pixel_size=1.0)


def _walks(n=40, n_frames=20, step=1.5, seed=0):
    """Diffusing objects: a table with per-frame shuffled labels and the true identity of each row."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    # on a jittered 40 Å grid: neighbours never come within the search radius of each other
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"), -1).reshape(-1, 2)[:n] * 40.0
    pos = grid + rng.uniform(-5, 5, size=(n, 2))
    rows = []
    for t in range(n_frames):
        pos = pos + rng.normal(0, step, pos.shape)
        perm = rng.permutation(n)
        rows += [(t, k + 1, pos[i, 0], pos[i, 1], i) for k, i in enumerate(perm)]
    return pd.DataFrame(rows, columns=["frame", "label", "centroid_y", "centroid_x", "true_id"])


@pytest.mark.parametrize("method", ["trackpy", "laptrack"])
def test_both_linkers_follow_diffusing_objects(method):
    from napari_cryomat.core.tracking import link_table

    table = _walks()
    tracks = link_table(table, max_distance=10.0, gap_frames=0, method=method)
    assert len(tracks) == len(table)
    assert tracks.track_id.nunique() == 40
    # every track holds one true object, and every object one track
    assert (tracks.groupby("track_id")["true_id"].nunique() == 1).all()
    assert (tracks.groupby("true_id")["track_id"].nunique() == 1).all()
    assert tracks.frame.dtype == table.frame.dtype


def test_trackpy_bridges_a_missed_frame():
    from napari_cryomat.core.tracking import link_table

    table = _walks(n=10, n_frames=8)
    holey = table[~((table.frame == 4) & (table.true_id == 3))]
    assert link_table(holey, max_distance=10.0, gap_frames=1).track_id.nunique() == 10
    assert link_table(holey, max_distance=10.0, gap_frames=0).track_id.nunique() == 11


def test_laptrack_follows_a_split_and_trackpy_says_it_cannot():
    import pandas as pd

    from napari_cryomat.core.tracking import link_table

    # one particle at (100, 100) for 3 frames, then two fragments moving apart; another far away
    rows = [(t, 1, 100.0, 100.0 + t) for t in range(3)]
    rows += [(t, 1, 100.0 - 3 * (t - 2), 102.0) for t in range(3, 6)]
    rows += [(t, 2, 100.0 + 3 * (t - 2), 102.0) for t in range(3, 6)]
    rows += [(t, 3, 300.0, 300.0) for t in range(6)]
    table = pd.DataFrame(rows, columns=["frame", "label", "centroid_y", "centroid_x"])
    tracks = link_table(table, max_distance=10.0, gap_frames=0, method="laptrack", merges_splits=True)
    splits = tracks.attrs["splits"]
    assert splits.iloc[:, 0].nunique() == 1 and len(splits) == 2  # one parent, two children
    family = tracks[tracks.centroid_x < 200]
    assert family.tree_id.nunique() == 1 and family.track_id.nunique() == 3
    assert tracks[tracks.centroid_x > 200].tree_id.nunique() == 1
    with pytest.raises(ValueError, match="laptrack"):
        link_table(table, max_distance=10.0, method="trackpy", merges_splits=True)
    with pytest.raises(ValueError, match="method"):
        link_table(table, max_distance=10.0, method="nearest")
