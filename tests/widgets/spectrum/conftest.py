"""What the Spectrum imaging tests share: notifications recorded, spectrum-image layers added as the
reader adds them, and a napari window with the Spectrum imaging dock (and a sample) in it."""

import numpy as np
import pytest

from napari_cryomat.io.spectral import spectrum_image_layer
from napari_cryomat.widgets.spectrum import SpectrumImagingWidget


@pytest.fixture
def add_si():
    """``add_si(viewer, si, energy, name, pixel_size=5.0, signal_type="EELS")``: a (Y, X, E) spectrum
    image (numpy or dask) on the energy axis ``energy`` (eV) added as the reader adds one ((E, Y, X),
    energy scale and offset, pixel size in Å, spectrum-image metadata); returns the layer."""

    def add(viewer, si, energy, name, *, pixel_size=5.0, signal_type="EELS"):
        energy = np.asarray(energy, float)
        data, kwargs, _ = spectrum_image_layer(si, energy_offset=float(energy[0]),
                                               energy_scale=float(energy[1] - energy[0]), pixel_size=pixel_size,
                                               name=name, signal_type=signal_type)
        return viewer.add_image(data, **kwargs)

    return add


@pytest.fixture
def spectrum_dock(make_napari_viewer):
    """``spectrum_dock(sample=None, show=False)`` -> (viewer, widget): a napari window with the plugin's
    sample ``sample`` ("eels", "eds") opened, if given, and the Spectrum imaging dock docked in it."""

    def make(sample=None, *, show=False):
        viewer = make_napari_viewer(show=show)
        if sample:
            viewer.open_sample("napari-cryomat", sample)
        widget = SpectrumImagingWidget(viewer)
        viewer.window.add_dock_widget(widget)
        return viewer, widget

    return make
