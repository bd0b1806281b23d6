"""The Align progress bar moves through every long stage of a fiducial-free alignment: the axis-position
scan (centre_axis, 41 trial WBPs) once held the bar at 82 % for most of the run."""

import numpy as np
import pytest

from napari_cryomat.core import _tilt_centre
from napari_cryomat.sample_data.tilt import tilt_series_sample
from napari_cryomat.widgets.tilt._model import run_align
from napari_cryomat.widgets.tilt._run import AlignRequest


@pytest.mark.parametrize("blind", [True, False])
def test_progress_moves_through_the_axis_position_scan(monkeypatch, blind):
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
    axis = None if blind else float(meta["truth"]["tilt_axis_angle_degrees"])
    request = AlignRequest(tilts=tilts, angles=meta["tilt_angles"], pixel_size=meta["pixel_size_angstrom"],
                           source_name="tilt series", tilt_axis_angle=axis)
    run = run_align(request, progress=reported.append)
    assert np.isfinite(run.alignment.tilt_axis_angle)
    values = np.array(reported)
    assert np.all(np.diff(values) >= -1e-12) and values[0] <= 0.2 and values[-1] == 1.0
    during = values[inside[0]:inside[1]]
    # the scan is ~40 % of the demo's time: the bar crosses about that share of its length, step by step
    assert len(during) >= 20 and during[-1] - during[0] >= 0.3
    assert values[inside[1] - 1] <= 0.95  # and the run's last stage still has room to move
