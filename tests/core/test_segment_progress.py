"""Segment particles tells how far it is: on a 4k micrograph the dock's bar stood at 0 % for 40 s (the settings
estimate) and at 50 % for 60 s (splitting the mask into particles)."""

import pytest

from napari_cryomat.core._progress import Cancelled
from napari_cryomat.core.segment import segment_particles
from napari_cryomat.core.synthetic.particles import make_particles


def _image():
    img, _, _ = make_particles(shape=(384, 384), pixel_size=2.0, n_particles=25, seed=11)
    return img


def test_progress_moves_through_the_estimate_and_the_split():
    seen = []
    segment_particles(_image(), pixel_size=2.0, progress=seen.append)
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0
    assert len(set(seen)) >= 8, seen
    assert any(0.0 < f < 0.3 for f in seen), seen  # inside the settings estimate
    assert any(0.5 < f < 1.0 for f in seen), seen  # inside the split


def test_cancel_from_inside_the_split_stops_the_run():
    def cancel_late(fraction):
        if 0.5 < fraction < 1.0:
            raise Cancelled()

    with pytest.raises(Cancelled):
        segment_particles(_image(), pixel_size=2.0, progress=cancel_late)


def test_progress_moves_through_the_detector_of_faint_particles():
    # a real EPU micrograph went from 16 % to 100 % in one step after ~110 s: the detector path reported nothing
    from napari_cryomat.core.synthetic.particles import make_particle_field

    img, _, _ = make_particle_field(diameter=9.0, shape_kind="round", polarity="dark", contrast=0.15, dose=20.0,
                                    gradient=0.0, undulation=0.0, seed=3)
    seen = []
    _, settings = segment_particles(img, pixel_size=1.0, return_settings=True, progress=seen.append)
    assert settings.threshold == "detect"
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert any(0.3 < f < 1.0 for f in seen) and any(0.5 < f < 1.0 for f in seen), seen
