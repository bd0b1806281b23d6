"""Bad-input cases for napari_cryomat.core.fiducials (read by benchmarks/core_api_fuzz.py)."""

import numpy as np


def _series():
    from napari_cryomat.core.synthetic.beads import bead_tilt_series

    return bead_tilt_series((64, 64), np.linspace(-50.0, 50.0, 11), n_beads=5, bead_diameter_px=5.0,
                            thickness_px=16.0, max_shift=3.0, dose=50.0, seed=3)


def _points():
    """Exact bead positions of the series above (what a tracker would hand over)."""
    from napari_cryomat.core._tilt_align import rotation

    _, truth = _series()
    th = np.deg2rad(truth["angles"])
    b = truth["beads"]
    u = b[:, 0][None] * np.cos(th)[:, None] + b[:, 2][None] * np.sin(th)[:, None]
    v = np.broadcast_to(b[:, 1][None], u.shape)
    return 31.5 + np.stack([v, u], axis=-1) @ rotation(0.0).T + truth["shifts"][:, None, :]


def specs(Spec, Factory):
    tilts = Factory(lambda: _series()[0])
    angles = Factory(lambda: np.linspace(-50.0, 50.0, 11))
    return [
        Spec("fiducials.find_beads", {"image": Factory(lambda: _series()[0][5]), "bead_diameter": 10.0,
                                      "pixel_size": 2.0, "polarity": "dark", "min_score": 5.0},
             {"image": "array", "bead_diameter": "len", "pixel_size": "len", "polarity": "choice",
              "min_score": "len"}, pos=("image",)),
        Spec("fiducials.track_beads",
             {"tilts": tilts, "angles": angles, "bead_diameter": 10.0, "pixel_size": 2.0, "tilt_axis_angle": 0.0,
              "polarity": "dark", "max_beads": 10, "max_shift": 20.0, "min_score": 5.0},
             {"tilts": "array", "angles": "energy", "bead_diameter": "len", "pixel_size": "len",
              "tilt_axis_angle": "real", "polarity": "choice", "max_beads": "count", "max_shift": "len",
              "min_score": "len"}, pos=("tilts", "angles")),
        Spec("fiducials.fit_bead_model",
             {"points": Factory(_points), "angles": angles, "shape": (64, 64), "tilt_axis_angle": 0.0,
              "pixel_size": 2.0},
             {"angles": "energy", "shape": "vec2", "tilt_axis_angle": "real", "pixel_size": "len"},
             pos=("points", "angles")),
    ]
