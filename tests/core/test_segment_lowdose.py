"""Low-dose fields of small particles under the local threshold: where the particles' contrast was read off the few
blobs the noise lifted above the blob search's significance, the cut lies below half way (``lower_level_mask``);
fields of touching chains keep the half-way cut."""

import numpy as np
import pytest

from napari_cryomat.core import _segment_particles as sp
from napari_cryomat.core.measure import match_labels
from napari_cryomat.core.segment import segment_particles
from napari_cryomat.core.synthetic.particles import make_particle_field

# r25004 and t25003 of session 14's fields (dose 26-31 counts/px, Ø5.6-6.7)
ROUND = dict(diameter=6.689452442865847, shape_kind="round", polarity="bright", contrast=0.30489734746852315,
             dose=26.18055328079182, gradient=0.2203911785710626, undulation=0.04143102319613619, seed=337924)
TOUCHING = dict(diameter=5.5820367571844525, shape_kind="touching", polarity="dark", contrast=0.34977611792894503,
                dose=31.083187774496295, gradient=0.0018233918925447679, undulation=0.06600611286741007, seed=548072)


def _segment(image, **constants):
    with pytest.MonkeyPatch.context() as mp:
        for name, value in constants.items():
            mp.setattr(sp, name, value)
        return segment_particles(image, pixel_size=1.0, return_settings=True)


def test_low_dose_small_round_particles_are_cut_below_half_way():
    """Ø6.7 disks at 26 counts/px: 102 significant blobs for ~460 mask objects, a contrast read 1.2x the true one. Half
    way gave masks of 2/3 the true area and a diameter read 0.78x small (F1 0.63); the lower cut reads both closer."""
    image, truth, _ = make_particle_field(**ROUND)
    true_area = np.count_nonzero(truth)
    half, half_settings = _segment(image, LOWER_LEVEL_SHARE=float("inf"))
    lower, settings = _segment(image)
    assert settings.threshold == half_settings.threshold == "local"
    assert abs(np.count_nonzero(lower) / true_area - 1) < abs(np.count_nonzero(half) / true_area - 1)
    assert abs(settings.diameter / ROUND["diameter"] - 1) < abs(half_settings.diameter / ROUND["diameter"] - 1)
    assert match_labels(lower, truth)["f1"] >= match_labels(half, truth)["f1"] + 0.05
    # the options reproduce the lower cut
    again = segment_particles(image, pixel_size=1.0, **settings.options())
    assert np.array_equal(again, lower)


def test_touching_chains_keep_the_half_way_cut():
    """Touching Ø5.6 chains at 31 counts/px: at 0.42 of the contrast their members merged (F1 0.55 -> 0.32). The
    half-way mask reads as chains (LOWER_LEVEL_BELOW_CHAIN_SHARE of its components long) and its significant blobs
    are about half its objects: the cut stays half way, and the labels are those of the half-way cut."""
    image, truth, _ = make_particle_field(**TOUCHING)
    labels, _ = _segment(image)
    half, _ = _segment(image, LOWER_LEVEL_SHARE=float("inf"))
    assert np.array_equal(labels, half)
    # without those two tests the lower cut would be taken here
    unguarded, _ = _segment(image, LOWER_LEVEL_BELOW_CHAIN_SHARE=float("inf"), LOWER_LEVEL_BELOW_BLOB_SHARE=float("inf"))
    assert not np.array_equal(unguarded, half)
