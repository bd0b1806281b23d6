"""Bad-input cases for napari_cryomat.core.tilt (read by benchmarks/core_api_fuzz.py). The file readers
are in napari_cryomat.io.tilt; their bad-input tests are in tests/io/test_tilt_io.py."""

import numpy as np

_ANGLES = np.linspace(-50.0, 50.0, 11)


def _tilts():
    """A small tilt series of two blobs (11 tilts of 24 x 24), projections of a known volume."""
    from napari_cryomat.core.tilt import project_volume

    vol = np.zeros((12, 24, 24), np.float32)
    vol[4:7, 8:12, 6:10] = 1.0
    vol[6:9, 14:18, 13:17] = 2.0
    return project_volume(vol, _ANGLES) + 0.1


def _alignment():
    from napari_cryomat.core.tilt import align_tilt_series

    return align_tilt_series(_tilts(), _ANGLES, tilt_axis_angle=0.0, iterations=1)


def specs(Spec, Factory):
    tilts = Factory(_tilts)
    angles = Factory(lambda: _ANGLES.copy())
    volume = Factory(lambda: np.random.default_rng(0).random((8, 10, 12)).astype(np.float32))
    return [
        Spec("tilt.check_tilt_series", {"tilts": tilts, "angles": angles},
             {"tilts": "array", "angles": "energy"}, pos=("tilts", "angles")),
        Spec("tilt.check_tilt_angles", {"angles": angles, "n": 11}, {"angles": "energy"}, pos=("angles", "n")),
        Spec("tilt.align_tilt_series",
             {"tilts": tilts, "angles": angles, "pixel_size": 2.0, "tilt_axis_angle": 0.0, "max_shift": 8.0,
              "thickness": 24.0, "iterations": 1},
             {"tilts": "array", "angles": "energy", "pixel_size": "len", "tilt_axis_angle": "real",
              "max_shift": "len", "thickness": "len", "iterations": "count"}, pos=("tilts", "angles")),
        Spec("tilt.reconstruct",
             {"tilts": tilts, "angles": angles, "method": "sirt", "iterations": 3, "thickness": 24.0,
              "pixel_size": 2.0, "lowpass": 0.8, "relaxation": 1.5, "start": "wbp"},
             {"tilts": "array", "angles": "energy", "method": "choice", "iterations": "count", "thickness": "len",
              "pixel_size": "len", "lowpass": "frac", "relaxation": "frac", "start": "choice"},
             pos=("tilts", "angles")),
        Spec("tilt.reconstruct", {"tilts": tilts, "angles": angles, "method": "wbp"},
             {"tilts": "array"}, pos=("tilts", "angles")),
        Spec("tilt.project_volume", {"volume": volume, "angles": angles},
             {"volume": "array", "angles": "energy"}, pos=("volume", "angles")),
        Spec("tilt.TiltAlignment.apply", {"tilts": tilts, "order": 1},
             {"tilts": "array", "order": "count0"},
             call=lambda tilts, order: _alignment().apply(tilts, order=order)),
    ]
