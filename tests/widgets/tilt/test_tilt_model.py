"""Tilt series model without a window: requests, workers, layers written, kept tilts, quantification."""

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_cryomat.core.synthetic.tilt import make_tilt_series
from napari_cryomat.core.tilt import TiltAlignment
from napari_cryomat.widgets.tilt import (
    ANGLES_KEY,
    AlignRun,
    TiltModel,
    angles_of,
    run_quantify,
    run_reconstruct,
    run_threshold,
)
from napari_cryomat.widgets.tilt._run import AlignRequest


@pytest.fixture(scope="module")
def series():
    return make_tilt_series(shape=(24, 48, 48), n_tilts=31, max_shift=3.0, dose=50.0, pixel_size=4.0, seed=5)


def truth_run(s, residuals=None) -> AlignRun:
    """An alignment equal to the truth (what a perfect align_tilt_series returns)."""
    n = len(s.angles)
    alignment = TiltAlignment(shifts=s.shifts.copy(), tilt_axis_angle=s.tilt_axis_angle,
                              residuals=np.full(n, 0.1) if residuals is None else residuals,
                              angles=s.angles.copy(), shape=s.tilts.shape[1:], pixel_size=s.pixel_size)
    request = AlignRequest(tilts=s.tilts, angles=s.angles, pixel_size=s.pixel_size, source_name="tilts")
    return AlignRun(request=request, alignment=alignment)


@pytest.fixture
def model(series):
    viewer = ViewerModel()
    viewer.add_image(series.tilts, name="tilts", scale=(1, 4.0, 4.0), units=("pixel", "angstrom", "angstrom"),
                     metadata={ANGLES_KEY: series.angles})
    return TiltModel(viewer)


def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_angles_from_metadata_and_bad_counts(model, series):
    layer = model.viewer.layers["tilts"]
    angles, origin = angles_of(layer)
    np.testing.assert_allclose(angles, series.angles)
    assert origin == "layer metadata"
    with pytest.raises(ValueError, match="31 tilts but 30 angles"):
        model.align_request(layer, series.angles[:-1], 4.0)
    with pytest.raises(ValueError, match="pixel size"):
        model.align_request(layer, series.angles, 0.0)
    layer.metadata.pop(ANGLES_KEY)
    with pytest.raises(ValueError, match="No tilt angles"):
        angles_of(layer)


def test_reconstruct_with_the_true_alignment_recovers_the_phantom(model, series):
    layer = model.viewer.layers["tilts"]
    model.accept_alignment(truth_run(series))
    request = model.recon_request(layer, series.angles, 4.0, method="sirt", iterations=30,
                                  thickness=24 * 4.0, invert=True)
    assert request.alignment is not None and request.keep == tuple(range(31))
    rec = run_reconstruct(request)
    assert rec.volume.shape == series.volume.shape
    assert _corr(rec.volume, series.volume) > 0.5
    # without the alignment the same tilts give a much worse volume
    unaligned = run_reconstruct(model.recon_request(layer, series.angles, 4.0, method="sirt", iterations=30,
                                                    thickness=24 * 4.0, invert=True).__class__(
        **{**request.__dict__, "alignment": None}))
    assert _corr(unaligned.volume, series.volume) < _corr(rec.volume, series.volume) - 0.1

    vol_layer = model.accept_reconstruction(rec)
    assert vol_layer.name == "tilts tomogram"
    assert tuple(vol_layer.scale) == pytest.approx((4.0, 4.0, 4.0))
    assert tuple(str(u) for u in vol_layer.units) == ("angstrom",) * 3
    assert vol_layer.metadata["pixel_size_angstrom"] == 4.0
    # the missing wedge: along kz (no tilt beyond ±60°) the amplitude is lower than along kx
    wedge = rec.wedge
    kz, kx = np.indices(wedge.shape) - (np.array(wedge.shape)[:, None, None] // 2)
    angle = np.degrees(np.arctan2(np.abs(kz), np.abs(kx)))
    ring = (np.hypot(kz / wedge.shape[0], kx / wedge.shape[1]) > 0.05) & (np.hypot(kz / wedge.shape[0], kx / wedge.shape[1]) < 0.3)
    assert wedge[ring & (angle > 75)].mean() < wedge[ring & (angle < 45)].mean()


def test_dropped_tilts_binning_and_wbp(model, series):
    layer = model.viewer.layers["tilts"]
    residuals = np.full(31, 0.1) + np.random.default_rng(0).normal(0, 0.005, 31)
    residuals[[3, 20]] = 0.6
    model.accept_alignment(truth_run(series, residuals))
    assert model.drop_outliers() == [3, 20]
    model.set_kept(10, False)
    request = model.recon_request(layer, series.angles, 4.0, method="wbp", binning=2, invert=True)
    assert len(request.keep) == 28 and 3 not in request.keep and 10 not in request.keep
    rec = run_reconstruct(request)
    assert rec.volume.shape == (24, 24, 24)             # thickness auto = binned width
    assert rec.request.voxel_size == 8.0
    vol = model.accept_reconstruction(rec)
    assert vol.name == "tilts WBP preview" and tuple(vol.scale) == pytest.approx((8.0,) * 3)
    assert len(vol.metadata["tilt_reconstruction"]["angles"]) == 28
    with pytest.raises(ValueError, match="smaller binning"):
        model.recon_request(layer, series.angles, 4.0, method="wbp", binning=8)


def test_quantify_plates_and_particles(model):
    rng = np.random.default_rng(4)
    vox = 3.0
    mask = np.zeros((44, 40, 40), np.uint8)
    t1, t2 = rng.integers(4, 7), rng.integers(9, 13)
    mask[4:4 + t1, 5:35, 5:35] = 1
    mask[26:26 + t2, 5:35, 5:35] = 1
    particles = np.zeros_like(mask, dtype=np.int32)
    gap = int(rng.integers(2, 6))
    particles[4 + t1 + gap:4 + t1 + gap + 2, 10:12, 10:12] = 1       # floating above the thin plate
    particles[24:26, 25:27, 25:27] = 2                       # touching the thick one from below
    m = model.viewer.add_labels(mask, name="mask", scale=(vox,) * 3, units=("angstrom",) * 3)
    p = model.viewer.add_labels(particles, name="particles", scale=(vox,) * 3, units=("angstrom",) * 3)
    q = run_quantify(model.quant_request(m, p))
    assert q.porosity == pytest.approx(1 - mask.mean())
    thick = q.thickness[26 + t2 // 2, 20, 20]
    assert abs(thick - t2 * vox) <= vox and abs(q.thickness[4 + t1 // 2, 20, 20] - t1 * vox) <= vox
    d = q.distances.set_index("label")["distance_A"]
    assert d[1] == pytest.approx((gap + 1) * vox) and d[2] == pytest.approx(vox)
    layer = model.accept_quantification(q)
    assert layer.name == "mask local thickness" and tuple(layer.scale) == pytest.approx((vox,) * 3)
    points = model.viewer.layers["particles distance to support"]
    assert list(points.features["distance_A"]) == pytest.approx([d[1], d[2]])
    assert "porosity" in q.summary() and "2 particles" in q.summary()
    with pytest.raises(ValueError, match="shape"):
        model.quant_request(m, model.viewer.add_labels(np.zeros((4, 4, 4), np.int32), name="small"))


def test_threshold_finds_the_bright_phase():
    rng = np.random.default_rng(2)
    vol = rng.normal(0, 0.3, (20, 30, 30)).astype(np.float32)
    vol[5:12] += 2.0
    mask = run_threshold(vol)
    assert mask.dtype == np.uint8 and mask[6:11].mean() > 0.95 and mask[14:].mean() < 0.05
    with pytest.raises(ValueError, match="constant"):
        run_threshold(np.ones((5, 5, 5)))


def test_sample_data_carries_angles_pixel_size_and_truth():
    from napari_cryomat.sample_data.tilt import tilt_series_sample

    [(data, kwargs, kind)] = tilt_series_sample()
    assert kind == "image" and data.shape == (41, 128, 128)
    meta = kwargs["metadata"]
    assert len(meta[ANGLES_KEY]) == 41 and meta[ANGLES_KEY][0] == -60.0 and meta[ANGLES_KEY][-1] == 60.0
    assert meta["pixel_size_angstrom"] == 5.0 and kwargs["scale"][-1] == 5.0
    assert set(kwargs["units"]) == {"angstrom"}
    truth = meta["truth"]
    shifts = np.asarray(truth["shifts_dy_dx_pixels"])
    assert shifts.shape == (41, 2) and 1.0 < np.abs(shifts).max() <= 8.0 * np.sqrt(2)
    assert -90 <= truth["tilt_axis_angle_degrees"] <= 90
    assert meta["synthetic"]["volume"].shape == (64, 128, 128)
    # shot noise: counts are integers around the vacuum dose
    assert np.all(data == np.round(data)) and 30 < np.median(data) <= 50


def _warning_alignment(series, warn):
    """``align_tilt_series`` stand-in: warns by ``warn`` (and once in another category), returns the truth."""
    import warnings

    def align(tilts, angles, **kw):
        warn()
        warnings.warn("an unrelated library warning", RuntimeWarning, stacklevel=2)
        return truth_run(series).alignment
    return align


def test_the_axis_warning_reaches_the_dock_as_a_note_worded_from_what_the_core_found(series, monkeypatch):
    """The core's TiltAxisWarning carries what it found (kind, start, found, reach); the dock words its note
    from those, so the core may reword its text without the dock saying the Python parameter's name."""
    from napari_cryomat.core import _tilt_axis, tilt
    from napari_cryomat.widgets.tilt import run_align

    monkeypatch.setattr(tilt, "align_tilt_series", _warning_alignment(series, lambda: _tilt_axis.warn_at_reach(190.0, 7.0)))
    request = AlignRequest(tilts=series.tilts, angles=series.angles, pixel_size=4.0, source_name="tilts")
    with pytest.warns(RuntimeWarning, match="unrelated"):  # other warnings go on as they came
        run = run_align(request)
    [note] = run.notes
    assert note.kind == "search_at_reach"
    assert f"{_tilt_axis.MAX_OFFSET:g}° from the coarse scan's estimate (10.0°)" in note.message
    assert "found (7.0°)" in note.message and "Set 'Tilt axis' in the Align section" in note.message
    assert "tilt_axis_angle" not in note.message and note.message in run.summary()


def test_an_axis_warning_the_dock_cannot_word_is_shown_in_the_core_words(series, monkeypatch):
    """A TiltAxisWarning without the fields the dock words (another kind, or reworded in the core) is still shown."""
    import warnings

    from napari_cryomat.core import tilt
    from napari_cryomat.widgets.tilt import run_align

    text = "the tilt axis looks doubtful for a reason the dock does not know"
    monkeypatch.setattr(tilt, "align_tilt_series",
                        _warning_alignment(series, lambda: warnings.warn(tilt.TiltAxisWarning(text), stacklevel=2)))
    request = AlignRequest(tilts=series.tilts, angles=series.angles, pixel_size=4.0, source_name="tilts")
    with pytest.warns(RuntimeWarning):
        run = run_align(request)
    assert [(n.kind, n.message) for n in run.notes] == [("unreliable", text)]
