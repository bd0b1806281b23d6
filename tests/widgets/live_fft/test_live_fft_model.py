"""The Live FFT model without Qt widgets: ROI helper layer, regions, frames, jobs, layers, errors."""

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_cryomat.core.fourier import validate_image
from napari_cryomat.core.synthetic.lattice import decaying_lattice_stack, superlattice_image
from napari_cryomat.widgets.live_fft import ROI_LAYER_NAME, SPOT_MARKER_FRACTION, LiveFFTModel, describe_g


def _shown(viewer, name: str) -> bool:
    """A helper layer is shown: present and visible (hidden, not removed, while its tool is behind)."""
    return name in viewer.layers and bool(viewer.layers[name].visible)

def _rect(y0, x0, s):
    return np.array([[y0, x0], [y0, x0 + s], [y0 + s, x0 + s], [y0 + s, x0]], float)


@pytest.fixture(scope="module")
def lattice_data():
    return superlattice_image((384, 384), strain_radius=20.0, strain_centre=(40.0, 40.0), seed=7)


@pytest.fixture
def model(lattice_data):
    img, truth = lattice_data
    viewer = ViewerModel()
    p = truth["pixel_size"]
    layer = viewer.add_image(img.copy(), name="lattice", scale=(p, p), units=("angstrom", "angstrom"))
    model = LiveFFTModel(viewer)
    model.set_layer(layer)
    model.show_roi()
    return model


def test_roi_is_a_helper_layer_that_comes_back_where_left(model, lattice_data):
    viewer, p = model.viewer, lattice_data[1]["pixel_size"]
    roi = viewer.layers[ROI_LAYER_NAME]
    assert roi.scale[-1] == pytest.approx(p) and str(roi.units[-1]) == "angstrom"
    assert model.roi_bounds() == ((0, 384, 0, 384), "")  # default: min(512, image) centred
    moved = []
    model.roi_changed.connect(lambda: moved.append(1))
    roi.data = [_rect(100, 50, 200)]
    assert moved and model.roi_bounds()[0] == (100, 300, 50, 250)
    model.hide_roi()  # the tool went behind another tab
    assert not _shown(viewer, ROI_LAYER_NAME)
    assert model.live_region() is None
    model.show_roi()
    assert model.roi_bounds()[0] == (100, 300, 50, 250)  # where the user left it
    model.close()
    assert not _shown(viewer, ROI_LAYER_NAME)


def test_roi_bounds_clip_and_refuse(model):
    roi = model.viewer.layers[ROI_LAYER_NAME]
    roi.data = [_rect(300, 300, 200)]  # partly outside
    bounds, note = model.roi_bounds()
    assert bounds == (300, 384, 300, 384) and "clipped" in note
    roi.data = [_rect(10, 10, 8)]  # too small
    with pytest.raises(ValueError, match="at least 16"):
        model.roi_bounds()
    model.reset_roi()
    assert model.roi_bounds()[0] == (0, 384, 0, 384)
    assert model.viewer.layers.selection.active.name == ROI_LAYER_NAME  # ready to drag


def test_region_is_read_in_the_worker_and_placed_over_the_image(model, lattice_data):
    img, truth = lattice_data
    p = truth["pixel_size"]
    model.viewer.layers[ROI_LAYER_NAME].data = [_rect(128, 64, 256)]
    region = model.region()
    assert region.bounds == (128, 384, 64, 320) and region.index == ()
    np.testing.assert_array_equal(region.read(), img[128:384, 64:320])
    place = region.placement()
    assert place["translate"] == pytest.approx((128 * p, 64 * p)) and place["units"] == ("angstrom", "angstrom")
    assert "256×256 px of 'lattice'" in region.describe()
    assert model.region(whole=True).bounds == (0, 384, 0, 384)


def test_detect_filters_gpa_pld_radial_layers(model, lattice_data):
    img, truth = lattice_data
    p = truth["pixel_size"]
    viewer = model.viewer
    viewer.layers[ROI_LAYER_NAME].data = [_rect(128, 128, 256)]
    detection = model.detect_job(25, as_layers=True)()
    lattice = model.lattice
    assert lattice.d1 == pytest.approx(truth["d1"], rel=3e-3)
    assert lattice.modulation_vectors and "superlattice" in detection.summary()
    # the detection as napari layers in reciprocal space (1/Å), in their own viewer: the image's stays in Å
    reciprocal = model.reciprocal_viewer()
    assert reciprocal is not viewer and not any(layer.name.startswith("FFT ") and layer.name != ROI_LAYER_NAME
                                                for layer in viewer.layers)
    assert [str(u) for u in reciprocal.layers.extent.units] == ["1 / angstrom"] * 2
    assert [str(u) for u in viewer.layers.extent.units] == ["angstrom"] * 2
    spots = reciprocal.layers["FFT lattice spots of lattice"]
    assert len(spots.data) == len(lattice.peaks)
    g = spots.data * spots.scale + spots.translate  # spectrum pixels -> 1/Å, as the spectrum's image
    assert np.allclose(1 / np.hypot(g[:, 0], g[:, 1]), np.array(spots.features["d"]))
    assert any(label.endswith("(1,0)") for label in spots.features["label"])
    assert any("/3" in label for label in reciprocal.layers["FFT superlattice spots of lattice"].features["label"])
    spectrum = reciprocal.layers["FFT of lattice"]
    assert spectrum.scale[-1] == pytest.approx(1 / (256 * p))
    # spots on the spectrum's grid: sizes in its pixels, whole ones (napari's point size slider shows whole numbers)
    assert tuple(spots.scale) == tuple(spectrum.scale) and tuple(spots.translate) == tuple(spectrum.translate)
    # markers a stated fraction of the spectrum's side (1/p, two Nyquist), whatever the ROI's size, to a pixel
    assert np.all(spots.size == np.round(spots.size)) and spots.size[0] > 1
    assert spots.size[0] * spectrum.scale[-1] == pytest.approx(SPOT_MARKER_FRACTION / p, abs=0.5 * spectrum.scale[-1])
    model.detect_job(25, as_layers=True)()  # again: the same viewer and layers, updated (no "... [1]" copies)
    assert model.reciprocal_viewer() is reciprocal
    assert sum(layer.name.startswith("FFT lattice spots") for layer in reciprocal.layers) == 1
    # Bragg filter -> an image layer in Å over the ROI
    out = model.bragg_job("lattice", 0.03)()
    assert out.name == "lattice Bragg-filtered (lattice)" and out.data.shape == (256, 256)
    assert tuple(out.scale) == pytest.approx((p, p)) and tuple(out.translate) == pytest.approx((128 * p, 128 * p))
    assert str(out.units[-1]) == "angstrom"
    # GPA: four maps, a diverging colormap centred on zero, no strain where there is none
    gpa = model.gpa_job(0.04)()
    exx = viewer.layers["lattice GPA exx"]
    lo, hi = exx.contrast_limits
    assert lo == pytest.approx(-hi) and exx.colormap.name == "PiYG"
    assert "lattice GPA rotation (deg)" in viewer.layers
    assert abs(np.median(exx.data[64:-64, 64:-64])) < 0.003
    assert "mask 0.04 1/Å" in gpa.summary()
    # PLD amplitude close to the truth
    pld = model.pld_job()()
    amp = viewer.layers["lattice PLD amplitude (Å)"].data
    assert np.median(amp[64:-64, 64:-64]) == pytest.approx(truth["pld_amplitude"], rel=0.2)
    assert "/3" in pld.summary() and "median amplitude" in pld.summary()
    # radial profile in Å⁻¹, up to Nyquist
    profile = model.radial_job()()
    assert profile.g[-1] <= 0.5 / p + 1e-9
    assert "256×256 px" in profile.title()
    np.testing.assert_array_equal(viewer.layers["lattice"].data, img)


def test_pick_snaps_to_the_refined_peak(model, lattice_data):
    truth = lattice_data[1]
    model.viewer.layers[ROI_LAYER_NAME].data = [_rect(128, 128, 256)]
    seen = []
    model.picks_changed.connect(seen.append)
    g1 = np.array(truth["g1"])
    peak = model.pick_job(g1 + np.array([0.004, -0.003]))()  # a click slightly off the spot
    assert np.hypot(*(peak.g - g1)) < 1.5e-3
    assert len(seen[-1]) == 1 and model.spots("picked spots") == [peak]
    assert "d = " in describe_g(peak.g)
    model.clear_picks()
    assert seen[-1] == []


def test_user_errors_are_messages(model):
    with pytest.raises(ValueError, match="No lattice spots"):
        model.bragg_job("lattice", 0.03)
    with pytest.raises(ValueError, match="pick two spots"):
        model.gpa_job(0.04)
    with pytest.raises(ValueError, match="No superlattice"):
        model.pld_job()
    with pytest.raises(ValueError, match=r"\(T, Y, X\) stack"):
        model.series_job(2.0)
    model.set_layer(None)
    with pytest.raises(ValueError, match="image layer first"):
        model.region()
    with pytest.raises(ValueError, match="complex"):
        validate_image(np.ones((64, 64), complex))


def test_nan_region_fails_in_the_worker_with_a_message():
    viewer = ViewerModel()
    nan = np.ones((64, 64), np.float32)
    nan[10, 10] = np.nan
    model = LiveFFTModel(viewer)
    model.set_layer(viewer.add_image(nan, name="nan"))
    model.show_roi()
    job = model.detect_job(25)  # described on the GUI thread: no pixels read yet
    with pytest.raises(ValueError, match="NaN"):
        job.run()
    assert model.lattice is None and np.isnan(viewer.layers["nan"].data[10, 10])


def test_frames_and_peak_series():
    viewer = ViewerModel()
    stack, truth = decaying_lattice_stack(12, (128, 128), dose_per_frame=2.0, critical_dose=10.0)
    p = truth["pixel_size"]
    model = LiveFFTModel(viewer)
    model.set_layer(viewer.add_image(stack, name="stack", scale=(1, p, p), units=("pixel", "angstrom", "angstrom")))
    model.show_roi()
    viewer.dims.set_current_step(0, 7)
    region = model.live_region()
    assert region.index == (7,)
    np.testing.assert_array_equal(region.read(), stack[7])
    viewer.dims.order = (1, 0, 2)  # a (T, X) view: no FFT, a message instead
    with pytest.raises(ValueError, match=r"\(Y, X\) plane"):
        model.live_region()
    viewer.dims.order = (0, 1, 2)
    with pytest.raises(ValueError, match="Auto-detect"):
        model.series_job(2.0)
    model.detect_job(25)()
    run = model.series_job(2.0)()
    assert run.result.critical_dose == pytest.approx(10.0, rel=0.15)
    assert "critical dose" in run.title() and "128×128 px of 'stack'" in run.title()
