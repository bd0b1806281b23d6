"""Which layers each dock offers, as a user opening a Velox file meets them: an EELS/EDS spectrum image (E, Y, X),
its (T, 1, Y, X) HAADF frames, a map made from it and a plain image. A spectrum image's first axis is energy: it is
no stack of frames, tilt series, volume or image to segment, denoise or measure (maps and PCA are the Spectrum
imaging dock's), though it has their number of dimensions; a map made from it is a plain image."""

import numpy as np
import pytest

from napari_cryomat.io.spectral import spectrum_image_layer

pytestmark = pytest.mark.e2e


def _offered(combo) -> list[str]:
    combo.refresh()
    return [combo.itemText(i) for i in range(combo.count())]


def test_each_dock_offers_the_layers_it_can_take(make_napari_viewer):
    viewer = make_napari_viewer()
    data, kwargs, _ = spectrum_image_layer(np.ones((24, 24, 64), np.float32), energy_offset=100.0, energy_scale=1.0,
                                           pixel_size=2.0, name="EELS SI", signal_type="EELS")
    viewer.add_image(data, **kwargs)
    viewer.add_image(np.ones((6, 1, 24, 24), np.float32), name="HAADF frames")
    viewer.add_image(np.ones((24, 24), np.float32), name="O K map", metadata={"spectrum_map": {"element": "O"}})
    viewer.add_image(np.ones((5, 24, 24), np.float32), name="movie")

    _, seg = viewer.window.add_plugin_dock_widget("napari-cryomat", "Segmentation")
    _, den = viewer.window.add_plugin_dock_widget("napari-cryomat", "Denoise")
    _, obj = viewer.window.add_plugin_dock_widget("napari-cryomat", "Objects and classes")
    _, dmg = viewer.window.add_plugin_dock_widget("napari-cryomat", "Beam damage")
    _, tilt = viewer.window.add_plugin_dock_widget("napari-cryomat", "Tilt series")
    _, drift = viewer.window.add_plugin_dock_widget("napari-cryomat", "Drift correction")
    pixel_tools = ["HAADF frames", "O K map", "movie"]
    assert _offered(seg.image_combo) == pixel_tools
    assert _offered(den.layer_combo) == pixel_tools
    assert _offered(obj.measure_panel.image_combo) == pixel_tools
    assert _offered(dmg.layer_combo) == ["HAADF frames", "movie"]
    assert _offered(tilt.source.layer_combo) == ["movie"]
    assert _offered(drift.params.layer_combo) == ["HAADF frames", "movie"]


def test_a_dock_with_nothing_to_take_says_what_it_needs(make_napari_viewer):
    """Only a 2D micrograph open: the stack and tilt-series pickers are empty, and each says what it needs (a "no image
    layer" would be false: there is one, of the wrong kind)."""
    viewer = make_napari_viewer()
    viewer.add_image(np.ones((24, 24), np.float32), name="micrograph")
    docks = {name: viewer.window.add_plugin_dock_widget("napari-cryomat", name)[1]
             for name in ("Drift correction", "Tilt series", "Beam damage")}
    combos = {"no stack of frames": docks["Drift correction"].params.layer_combo,
              "no tilt series": docks["Tilt series"].source.layer_combo,
              "no dose series": docks["Beam damage"].layer_combo}
    for text, combo in combos.items():
        assert combo.count() == 0 and not combo.isEnabled() and combo.placeholderText() == text
    assert docks["Tilt series"].source.pixel_size.text() == "unknown"  # not "0.001 Å"
    viewer.add_image(np.ones((5, 24, 24), np.float32), name="movie")
    for combo in combos.values():
        assert combo.isEnabled() and combo.currentText() == "movie"
    assert docks["Tilt series"].source.pixel_size.text() == "1.000 Å"  # the movie's (uncalibrated: 1 Å per pixel)
    viewer.layers.remove("movie")
    assert docks["Tilt series"].source.pixel_size.text() == "unknown"
