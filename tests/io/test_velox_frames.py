"""A real Velox spectrum image recorded in frames (hyperspy's test file, 20 frames of 50 x 10 px with HAADF):
it opens summed, as Velox shows it, and with its frames as hidden lazy layers, so that the Drift correction
dock can correct the EDS frames with the shifts of the HAADF frames before summing."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from corpus import corpus_file  # noqa: E402

NAME = "fei_SI_SuperX-HAADF_20frames_10x50.emd"


@pytest.fixture(scope="module")
def velox():
    path = corpus_file(NAME)
    import npe2
    from napari.components import ViewerModel

    manager = npe2.PluginManager.instance()
    if "napari-cryomat" not in manager:
        manager.discover(include_npe1=False)
    viewer = ViewerModel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        viewer.open(str(path), plugin="napari-cryomat")
    return viewer


def test_frames_open_hidden_next_to_the_summed_signals(velox):
    layers = velox.layers
    # the layers with the most axes first (the frames, then the SI), the HAADF last: on top, and selected
    assert [layer.name for layer in layers] == ["HAADF frames", "EDS frames", "EDS", "HAADF"]
    assert list(velox.layers.selection) == [layers["HAADF"]]
    # every axis opens at its middle, next to the plane the SI's contrast was taken from (the energy slider
    # opened at 0 eV, on the zero peak, when the HAADF came first: napari starts a later layer's new axis at 0)
    eds = layers["EDS"]
    shown = int(np.round(eds.world_to_data(velox.dims.point)[0]))
    assert abs(shown - (eds.data.shape[0] - 1) // 2) <= 1  # first_shown_plane's (half a step of the singleton)
    assert velox.dims.current_step[0] == (velox.dims.nsteps[0] - 1) // 2
    # the HAADF shows; one energy channel of the SI drawn on top would hide it (the dock reads it hidden)
    assert layers["HAADF"].visible and not layers["EDS"].visible
    assert not layers["HAADF frames"].visible and not layers["EDS frames"].visible
    frames, summed = np.asarray(layers["EDS frames"].data), np.asarray(layers["EDS"].data)
    assert frames.shape == (20,) + summed.shape  # (T, E, Y, X) next to (E, Y, X)
    np.testing.assert_array_equal(frames.sum(axis=0, dtype=np.int64), summed)  # Velox's sum, count for count
    # (T, 1, Y, X): napari aligns trailing axes, so (T, Y, X) frames put their time on the SI's energy axis
    haadf = np.asarray(layers["HAADF frames"].data)
    assert haadf.shape == (20, 1, 50, 10)
    np.testing.assert_array_equal(haadf[0, 0], layers["HAADF"].data)  # the summed file shows the first image
    assert velox.dims.nsteps[:2] == (20, 4096)  # the sliders step by frame and by energy channel
    # the singleton spans the energy axis, so the frames show at every energy
    energy = layers["EDS frames"]
    singleton = layers["HAADF frames"]
    assert singleton.scale[0] == energy.scale[0] and singleton.scale[1] == pytest.approx(4096 * energy.scale[1])
    for channel in (0, 2047, 4095):
        world = energy.translate[1] + channel * energy.scale[1]
        assert round((world - singleton.translate[1]) / singleton.scale[1]) == 0
    assert layers["EDS frames"].metadata["spectrum_image"]["frames"] == 20
    assert tuple(layers["EDS frames"].scale[-2:]) == tuple(layers["EDS"].scale[-2:])


def test_spectrum_dock_offers_the_sum_and_drift_apply_makes_one(velox):
    """The Spectrum imaging dock offers the summed SI, not the frames; applying drift shifts to the frames
    (as the Drift correction dock does) gives a spectrum image it offers, with every count kept."""
    from napari_cryomat.widgets.drift._apply_model import apply_request, apply_shifts, write_applied
    from napari_cryomat.widgets.spectrum._model import is_spectrum_image

    layers = velox.layers
    assert is_spectrum_image(layers["EDS"]) and not is_spectrum_image(layers["EDS frames"])
    rng = np.random.default_rng(0)
    shifts = np.vstack([[0, 0], rng.integers(-2, 3, (19, 2))]).astype(float)  # whole pixels: exact
    run = SimpleNamespace(shifts=shifts, n_frames=20, aligned=np.zeros((20, 50, 10), np.float32))
    request, out = apply_shifts(apply_request(run, layers["EDS frames"], summed=True))
    frames = np.asarray(layers["EDS frames"].data, np.float64)
    assert out.shape == layers["EDS"].data.shape
    assert out.sum() == pytest.approx(frames.sum(), rel=1e-6)  # counts conserved (periodic edges)
    by_hand = sum(np.roll(frame, (-int(dy), -int(dx)), axis=(-2, -1)) for frame, (dy, dx) in zip(frames, shifts))
    np.testing.assert_allclose(out, by_hand, rtol=1e-5, atol=1e-3)
    result = SimpleNamespace(ndim=out.ndim, metadata=request.metadata)
    assert is_spectrum_image(result) and "frames" not in request.metadata["spectrum_image"]
    # the corrected sum lies where the summed SI lies: same energy offset, same place beside the HAADF
    corrected = write_applied(velox, (request, out))
    try:
        assert tuple(corrected.translate) == pytest.approx(tuple(layers["EDS"].translate))
        assert tuple(corrected.scale) == pytest.approx(tuple(layers["EDS"].scale))
    finally:
        velox.layers.remove(corrected)
