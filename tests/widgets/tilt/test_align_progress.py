"""The Align progress bar moves through every long stage of a fiducial-free alignment: the axis-position
scan (centre_axis, 41 trial WBPs) once held the bar at 82 % for most of the run."""

import numpy as np
import pytest

from napari_cryomat.core import _tilt_centre
from napari_cryomat.sample_data.tilt import tilt_series_sample
from napari_cryomat.widgets.tilt._model import run_align
from napari_cryomat.widgets.tilt._run import AlignRequest


def test_progress_moves_through_the_axis_position_scan(monkeypatch):
    """With the axis angle given (the blind run's coarse scan has its own test below, and each blind start runs
    this same stage)."""
    [(tilts, kwargs, _)] = tilt_series_sample()
    meta = kwargs["metadata"]
    reported, inside = [], []
    centre_axis = _tilt_centre.centre_axis

    def watched(*args, **kw):  # the values the bar shows while the scan runs
        inside.append(len(reported))
        out = centre_axis(*args, **kw)
        inside.append(len(reported))
        return out

    monkeypatch.setattr(_tilt_centre, "centre_axis", watched)
    axis = float(meta["truth"]["tilt_axis_angle_degrees"])
    request = AlignRequest(tilts=tilts, angles=meta["tilt_angles"], pixel_size=meta["pixel_size_angstrom"],
                           source_name="tilt series", tilt_axis_angle=axis)
    run = run_align(request, progress=reported.append)
    assert np.isfinite(run.alignment.tilt_axis_angle)
    values = np.array(reported)
    assert np.all(np.diff(values) >= -1e-12) and values[0] <= 0.2 and values[-1] == 1.0
    during = values[inside[0]:inside[1]]
    # the scan is a third to a half of the demo's time: the bar crosses about that share, step by step
    assert len(during) >= 20 and during[-1] - during[0] >= 0.3
    assert values[inside[1] - 1] <= 0.95  # and the run's last stage still has room to move


def _reports_inside(monkeypatch, module, name, log):
    """Wrap ``module.name`` so that ``log[name]`` counts the progress reports made while it runs."""
    function = getattr(module, name)

    def watched(*args, progress=None, **kw):
        def counted(value):
            log[name] = log.get(name, 0) + 1
            if progress is not None:
                progress(value)
        return function(*args, progress=counted, **kw)

    monkeypatch.setattr(module, name, watched)


def test_the_blind_scan_reports_each_trial_and_cancel_stops_it(monkeypatch):
    """The coarse axis scan held the bar at 0 % for 18 % of a blind run (5.5 s of 34 s under load); Cancel
    waited for its end. Now it reports each trial angle, and a Cancel stops it at the next one."""
    from napari_cryomat.core import _tilt_scan
    from napari_cryomat.core._progress import Cancelled

    [(tilts, kwargs, _)] = tilt_series_sample()
    meta = kwargs["metadata"]
    log = {}
    _reports_inside(monkeypatch, _tilt_scan, "scan_axis_candidates", log)
    cancel_at = 5

    def progress(value):
        if log.get("scan_axis_candidates", 0) >= cancel_at:
            raise Cancelled()

    request = AlignRequest(tilts=tilts, angles=meta["tilt_angles"], pixel_size=meta["pixel_size_angstrom"],
                           source_name="tilt series", tilt_axis_angle=None)
    with pytest.raises(Cancelled):
        run_align(request, progress=progress)
    assert log["scan_axis_candidates"] == cancel_at  # stopped at the report after the Cancel, inside the scan


def test_count_stage_steps_report_inside(monkeypatch):
    """At low dose the count-space stage runs: criterion_bias (a SIRT volume, a fit per tilt, 7 trial angles) and
    finer_pass (12 fold references, a fit per tilt) held the bar for up to 8.6 s under load; now each reports.
    120 px frames (30 px at the count stage's 4x binning) run every one of these stages, as 160 px did, in
    half the time (the SIRTs grow with the cube of the size)."""
    from napari_cryomat.core import _tilt_axis, _tilt_refine, _tilt_scan
    from napari_cryomat.core.synthetic.tilt import make_tilt_series

    s = make_tilt_series(shape=(48, 120, 120), n_tilts=41, tilt_range=(-60.0, 60.0), max_shift=6.0, dose=1.0,
                         pixel_size=5.0, seed=11)
    log = {}
    for module, name in ((_tilt_scan, "scan_axis_candidates"), (_tilt_axis, "criterion_bias"),
                         (_tilt_refine, "finer_pass")):
        _reports_inside(monkeypatch, module, name, log)
    reported = []
    request = AlignRequest(tilts=s.tilts, angles=s.angles, pixel_size=5.0, source_name="tilts", tilt_axis_angle=None)
    run_align(request, progress=reported.append)
    assert np.all(np.diff(reported) >= -1e-12) and reported[-1] == 1.0
    assert log["scan_axis_candidates"] >= 19  # 12 grid angles and 7 around the start at least
    assert log["criterion_bias"] >= 30 + 41 + 7  # SIRT iterations, fits per tilt, trial offsets
    assert log["finer_pass"] >= 12 + 41  # fold references, fits per tilt


def test_the_scan_share_is_chosen_by_the_count_stage_that_will_run():
    """A blind run's coarse scan takes a third of the time without the count-space stage and a sixth with it,
    so its share of the bar is chosen before the scan, by the same test the alignment makes after it (at any
    angle: the aligned frame only swaps its sides)."""
    from napari_cryomat.core import _tilt_align, _tilt_refine

    rng = np.random.default_rng(2614)  # a fixed draw: a failure can be replayed
    seen = set()
    for _ in range(80):  # a sixth are low-dose counts small enough for the count stage: both kinds drawn
        h, w = (int(v) for v in rng.integers(48, 500, 2))
        dose = float(rng.choice([0.5, 1.0, 4.0, 30.0, 300.0]))
        stack = rng.poisson(dose, size=(3, h, w)).astype(np.float32)
        if rng.random() < 0.25:
            stack -= dose  # not counts
        finest = _tilt_align._levels(stack, 256)[-1]
        alpha = float(rng.uniform(-90, 90))
        shape = _tilt_align.aligned_shape(_tilt_align.prepare(stack[:1], finest).shape[1:], alpha)
        runs = bool(_tilt_refine.applies(stack, finest, shape))  # what _align_at decides, after the scan
        assert _tilt_align._count_stage_runs(stack, finest, True) == runs, (h, w, dose, alpha)
        assert not _tilt_align._count_stage_runs(stack, finest, False)
        seen.add(runs)
    assert seen == {True, False}  # both kinds were drawn
    assert _tilt_align._SCAN_SHARE[False] > _tilt_align._SCAN_SHARE[True]
