"""SIRT's stopping rule (a pilot that leaves tilts out and stops where they are reprojected best) and its
slab-parallel run: on noisy tilts it stops early and beats classic SIRT run to the end; on clean tilts it
runs every iteration; the thread pool changes nothing in the result."""

import numpy as np
import pytest

from napari_cryomat.core import _tilt_sirt as engine
from napari_cryomat.core import tilt
from napari_cryomat.core.synthetic.tilt import make_tilt_series, seen_region


def _error(rec, s):
    region = seen_region(s.volume.shape, s.angles, margin=1)
    return float(np.linalg.norm((rec - s.volume)[region]) / np.linalg.norm(s.volume[region]))


@pytest.fixture
def stops(monkeypatch):
    """The iteration counts the pilot chose during the test."""
    seen = []
    choose = engine.stopping_iteration

    def spy(*args, **kwargs):
        seen.append(choose(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(engine, "stopping_iteration", spy)
    return seen


def test_held_out_tilts_skip_the_ends_and_leave_most_in():
    for n in (12, 31, 41, 61, 121):
        held = engine.held_out_tilts(n)
        assert not held[0] and not held[-1]
        assert 1 <= held.sum() <= n // 5
        assert np.all(np.diff(np.flatnonzero(held)) == engine.HOLD_EVERY)


@pytest.mark.parametrize("seed, dose", [(0, 3.0), (7, 10.0)])
def test_noisy_tilts_stop_early_and_beat_classic_sirt(seed, dose, stops):
    """Shot noise: classic SIRT's 50 iterations fit the noise; the pilot stops well before and the
    volume is closer to the truth. Random phantoms (seeded), line integrals from Poisson counts."""
    s = make_tilt_series(shape=(32, 40, 48), n_tilts=41, max_shift=0, tilt_axis_angle=0, dose=dose, seed=seed)
    data = s.line_integrals()
    ran = {}
    early = tilt.reconstruct(data, s.angles, iterations=50, thickness=32, positivity=True, info=ran)
    classic = tilt.reconstruct(data, s.angles, iterations=50, thickness=32, positivity=True, relaxation=1.0,
                               early_stop=False)
    assert len(stops) == 1 and 1 <= stops[0] < 30
    # the caller is told where it stopped
    assert ran == {"method": "sirt", "iterations": stops[0], "max_iterations": 50, "stopped_early": True}
    assert _error(early, s) < 0.9 * _error(classic, s)


def test_clean_tilts_run_every_iteration(stops):
    s = make_tilt_series(shape=(32, 40, 48), n_tilts=41, seed=5)
    ran = {}
    rec = tilt.reconstruct(s.projections, s.angles, iterations=30, thickness=32, positivity=True, info=ran)
    classic = tilt.reconstruct(s.projections, s.angles, iterations=30, thickness=32, positivity=True,
                               relaxation=1.0, early_stop=False)
    assert stops == [30] and ran["iterations"] == 30 and not ran["stopped_early"]
    assert _error(rec, s) < _error(classic, s)


def test_threads_and_slabs_do_not_change_the_volume(monkeypatch):
    """Y slices are independent: one thread with one slab at a time gives the same volume as the pool."""
    rng = np.random.default_rng(2)
    s = make_tilt_series(shape=(24, 70, 40), n_tilts=15, seed=int(rng.integers(100)))
    kw = dict(iterations=8, thickness=24, positivity=True, early_stop=False)
    pooled = tilt.reconstruct(s.projections, s.angles, **kw)
    monkeypatch.setattr(engine, "_threads", lambda: 1)
    monkeypatch.setattr(engine, "SLAB", 16)
    single = tilt.reconstruct(s.projections, s.angles, **kw)
    np.testing.assert_allclose(single, pooled, rtol=1e-4, atol=1e-5 * float(np.abs(pooled).max()))


def test_info_must_be_a_dict_and_stays_empty_when_the_run_fails():
    s = make_tilt_series(shape=(16, 16, 24), n_tilts=9, seed=1)
    with pytest.raises(ValueError, match="info must be a dict"):
        tilt.reconstruct(s.projections, s.angles, iterations=2, info=[])
    info = {}
    with pytest.raises(ValueError, match="angles"):
        tilt.reconstruct(s.projections, s.angles[:-1], iterations=2, info=info)
    assert info == {}
    tilt.reconstruct(s.projections, s.angles, method="wbp", info=info)
    assert info == {"method": "wbp"}


def test_few_tilts_run_without_a_pilot(stops):
    s = make_tilt_series(shape=(16, 16, 24), n_tilts=9, seed=1)
    rec = tilt.reconstruct(s.projections, s.angles, iterations=5, thickness=16)
    assert stops == [] and np.isfinite(rec).all()
