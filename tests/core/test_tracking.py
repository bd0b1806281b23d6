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
