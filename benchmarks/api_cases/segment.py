"""Bad-input cases of the public functions added to ``core.segment`` for issue #14 (automatic
particle settings, classifier files); read by ``benchmarks/core_api_fuzz.py``."""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np


@functools.lru_cache(None)
def _particles():
    from napari_cryomat.core.synthetic.particles import make_particle_field

    img, lab, _ = make_particle_field(diameter=10.0, size=(96, 96), dose=300.0, seed=0)
    return img.astype(np.float32), lab.astype(np.int32)


@functools.lru_cache(None)
def _settings():
    from napari_cryomat.core.segment import estimate_particle_settings

    return estimate_particle_settings(_particles()[0], pixel_size=2.0)


@functools.lru_cache(None)
def _model_file() -> str:
    from napari_cryomat.core.segment import train_pixel_classifier

    img, lab = _particles()
    scr = np.zeros(lab.shape, np.int32)
    scr[lab > 0] = 2
    scr[::3, ::3][lab[::3, ::3] == 0] = 1
    scr[(np.arange(96)[:, None] + np.arange(96)) % 5 != 0] = 0
    model = train_pixel_classifier(img, scr, n_estimators=3, num_sigma=2, sigma_max=4.0, cache=False)
    return model.save(os.path.join(tempfile.mkdtemp(prefix="fuzz-clf-"), "model.skops"))


def specs(Spec, Factory) -> list:
    image = Factory(lambda: _particles()[0].copy())
    return [
        Spec("segment.estimate_particle_settings",
             {"image": image, "pixel_size": 2.0, "polarity": "auto", "diameter": 20.0, "smoothing": 2.0,
              "threshold": "auto", "local_block": 80.0, "min_size": 50.0, "split_distance": 5.0},
             {"image": "array", "pixel_size": "len", "polarity": "choice", "diameter": "len", "smoothing": "len0",
              "threshold": "choice", "local_block": "len", "min_size": "len0", "split_distance": "len0"},
             pos=("image",)),
        Spec("segment.ParticleSettings.with_overrides",
             {"polarity": "dark", "diameter": 20.0, "smoothing": 2.0, "threshold": "local", "local_block": 80.0,
              "min_size": 50.0, "split_distance": 5.0},
             {"polarity": "choice", "diameter": "len", "smoothing": "len0", "threshold": "choice",
              "local_block": "len", "min_size": "len0", "split_distance": "len0"},
             call=lambda **kw: _settings().with_overrides(**kw).options()),
        Spec("segment.PixelClassifier.load", {"path": Factory(_model_file)}, {"path": "path_in"},
             call=lambda path: __import__("napari_cryomat.core.segment", fromlist=["x"]).PixelClassifier.load(path)
             .predict(_particles()[0])),
    ]
