"""Faint small particles: found by a scanning detector (whitened residual against a centre-surround disk, its
significance against the noise's own maxima) and grown to the half-way level, where the blob search finds too few
blobs to read a scale from and a threshold cuts the noise into specks."""

import numpy as np

from napari_cryomat.core import _particle_detect as pd
from napari_cryomat.core.measure import match_labels
from napari_cryomat.core.segment import segment_particles
from napari_cryomat.core.synthetic.particles import make_particle_field


def test_detector_significance_holds_on_noise_and_finds_known_disks():
    """On white noise alone the detector's significance keeps false detections to strays; disks of radius 4 px at
    a matched-filter significance of about 6 are nearly all found, at their radius, with few false ones."""
    rng = np.random.default_rng(5)
    noise = rng.standard_normal((256, 256)).astype(np.float32)
    found = pd.detect(noise, 4.0)
    assert found is None or len(found[1]) < pd.MIN_DETECTIONS
    yy, xx = np.mgrid[0:256, 0:256]
    centres = [(y, x) for y in range(20, 240, 24) for x in range(20, 240, 24)]
    disks = np.zeros((256, 256), np.float32)
    truth = np.zeros((256, 256), np.int32)
    for k, (y, x) in enumerate(centres, start=1):
        inside = (yy - y) ** 2 + (xx - x) ** 2 <= 16
        disks[inside] = 6.0 / np.sqrt(np.count_nonzero(inside))  # sum / sqrt(area) = 6 deviations
        truth[inside] = k
    r, ys, xs, z, _ = pd.detect(disks + noise)
    hit = truth[ys, xs]
    assert 3.0 <= r <= 5.5
    assert len(np.unique(hit[hit > 0])) >= 0.9 * len(centres)
    assert np.count_nonzero(hit == 0) <= 0.1 * len(ys)


def test_faint_small_particles_are_detected_not_thresholded():
    """Ø12 particles at 15 % contrast and 20 counts/px (a particle's own contrast is 0.7 pixel-noise deviations),
    both polarities, seeded draws: the blob search finds 3-6 blobs, and the threshold reached F1 0.49-0.79; the
    detector reads polarity and size and reaches 0.77-0.88."""
    f1 = []
    for seed in range(300, 304):
        polarity = ("dark", "bright")[seed % 2]
        img, truth, _ = make_particle_field(diameter=12, contrast=0.15, dose=20, size=(256, 256),
                                            polarity=polarity, seed=seed)
        labels, settings = segment_particles(img, pixel_size=1.0, return_settings=True)
        assert settings.threshold == "detect" and settings.polarity == polarity
        assert 9 <= settings.diameter <= 15
        f1.append(match_labels(labels, truth)["f1"])
        if seed == 300:  # the settings shown reproduce the labels
            again = segment_particles(img, pixel_size=1.0, **settings.options())
            assert match_labels(again, labels)["f1"] >= 0.95
    assert np.mean(f1) >= 0.8 and min(f1) >= 0.72, np.round(f1, 3)
