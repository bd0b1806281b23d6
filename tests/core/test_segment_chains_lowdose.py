"""Low-dose fields of touching small particles: noise specks and single members lower the share of long components
below CHAIN_FIELD_SHARE, but most components are still long without being one oval, so the chains are split at their
members' scale (``_segment_chains.CHAIN_FIELD_NOT_OVAL_SHARE``); a low-dose field of ellipses is not taken for one."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_cryomat.core import _segment_chains as sc
from napari_cryomat.core import _segment_particles as sp
from napari_cryomat.core.measure import match_labels
from napari_cryomat.core.segment import segment_particles
from napari_cryomat.core.synthetic.particles import make_particle_field

# benchmarks/segment.py lowdose_field(33494, "touching") and lowdose_field(30028, "ellipse"), development seeds of
# session 16 (notes: handoff_segment16.md)
TOUCHING = dict(diameter=5.2681381660428155, shape_kind="touching", polarity="bright", contrast=0.39851747947992455,
                dose=32.77127666239943, gradient=0.12865201153814604, undulation=0.05595834149546022, seed=652966)
# lowdose_field(33633, "touching"), a development seed of session 17 (notes: handoff_particles17.md)
CLUMPS = dict(diameter=5.709601067151313, shape_kind="touching", polarity="dark", contrast=0.4803525014844335,
              dose=40.52232761923115, gradient=0.20707501005210432, undulation=0.08437582742007751, seed=870363)
# lowdose_field(30267, "touching"), a development seed of session 17 (an all-dose field, Ø14 at 583 counts/px)
WIDE_CLUMPS = dict(diameter=13.989768073324447, shape_kind="touching", polarity="dark", contrast=0.2374530687292651,
                   dose=582.5654235344357, gradient=0.02480883908114585, undulation=0.05059887401632988, seed=959786)
ELLIPSE = dict(diameter=9.643745503749129, shape_kind="ellipse", polarity="bright", contrast=0.472098018477588,
               dose=22.601704521913078, gradient=0.26135532538488954, undulation=0.008155399694566868, seed=506633)


def _segment_seeing_the_split(image, **constants):
    """Labels of the defaults, and the labels split_chains was given (the field it judged)."""
    seen = {}
    split_chains = sc.split_chains

    def spy(image, labels, **kw):
        seen["labels"] = labels.copy()
        return split_chains(image, labels, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sp, "split_chains", spy)
        for name, value in constants.items():
            mp.setattr(sc, name, value)
        labels = segment_particles(image, pixel_size=1.0)
    return labels, seen["labels"]


def test_low_dose_touching_field_below_the_long_share_is_split_at_its_members_scale():
    """Ø5.3 pairs and chains at 33 counts/px: 0.59 of the components read long (below 0.6), so the split stayed at the
    chains' scale and more than half the particles came out merged (F1 0.34); 0.48 are long and not one oval."""
    image, truth, _ = make_particle_field(**TOUCHING)
    labels, judged = _segment_seeing_the_split(image)
    f1 = match_labels(labels, truth)["f1"]
    assert f1 >= 0.45
    components, n = ndi.label(judged > 0)
    share, long, _width, _aspect, fill = sc.chain_field_share(components, n, with_fill=True)
    assert share < sc.CHAIN_FIELD_SHARE
    assert np.mean(long[1:] & (fill[1:] < sc.CHAIN_FINE_BELOW_FILL)) >= sc.CHAIN_FIELD_NOT_OVAL_SHARE
    unsplit, _ = _segment_seeing_the_split(image, CHAIN_FIELD_NOT_OVAL_SHARE=float("inf"))
    assert f1 >= match_labels(unsplit, truth)["f1"] + 0.1


def test_low_dose_ellipse_field_is_not_taken_for_chains():
    """Ø9.6 ellipses at 23 counts/px: the low-dose ellipse field of session 16's development fields whose share of long
    components that do not fill their ellipse read highest (0.33); its labels are those of the long-share gate alone."""
    image, truth, _ = make_particle_field(**ELLIPSE)
    labels, judged = _segment_seeing_the_split(image)
    components, n = ndi.label(judged > 0)
    share, long, _width, _aspect, fill = sc.chain_field_share(components, n, with_fill=True)
    assert share < sc.CHAIN_FIELD_SHARE
    assert np.mean(long[1:] & (fill[1:] < sc.CHAIN_FINE_BELOW_FILL)) < sc.CHAIN_FIELD_NOT_OVAL_SHARE
    alone, _ = _segment_seeing_the_split(image, CHAIN_FIELD_NOT_OVAL_SHARE=float("inf"))
    assert np.array_equal(labels, alone)
    assert match_labels(labels, truth)["f1"] >= 0.9


def test_compact_clumps_of_narrow_members_are_resplit():
    """Ø5.7 pairs and triangles at 41 counts/px: half the merged objects lay in components that are not long (under
    1.5 disks of their own width: compact pairs, triangles), which the re-split at the members' scale left alone
    (117 merged objects holding 244 of 670 particles, F1 0.746). Re-split too where they hold a disk of the members'
    width without filling their ellipse as one oval (CHAIN_CLUMP_MIN_DISKS): F1 0.768."""
    image, truth, _ = make_particle_field(**CLUMPS)
    labels, _ = _segment_seeing_the_split(image)
    alone, _ = _segment_seeing_the_split(image, CHAIN_CLUMP_MIN_DISKS=float("inf"))
    assert labels.max() >= alone.max() + 10
    assert match_labels(labels, truth)["f1"] >= match_labels(alone, truth)["f1"] + 0.015


def test_compact_clumps_of_wide_members_are_resplit_too():
    """Ø14 pairs and triangles at 583 counts/px (members ~15 px wide): the clump re-split bounded to members under 8 px
    left them merged (F1 0.836); at every width 0.958 (session 17, rule L)."""
    image, truth, _ = make_particle_field(**WIDE_CLUMPS)
    labels, _ = _segment_seeing_the_split(image)
    alone, _ = _segment_seeing_the_split(image, CHAIN_CLUMP_MIN_DISKS=float("inf"))
    f1 = match_labels(labels, truth)["f1"]
    assert f1 >= 0.93
    assert f1 >= match_labels(alone, truth)["f1"] + 0.05
