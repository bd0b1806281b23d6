"""Live FFT: calibrated power spectrum of a moving ROI, lattice and superlattice indexing, picked
spots, Bragg filter, GPA strain, PLD maps, radial profile and Bragg-peak decay with dose.

- :mod:`._model`: :class:`LiveFFTModel`, the state (image, ROI, lattice, picks, results), the jobs
  and the layers; no Qt. :mod:`._jobs`: the regions, runs and pure compute functions.
- :mod:`.spectrum_view`: the live spectrum (a LivePanel) with hover readout and click-to-pick.
- :mod:`.lattice_panel`, :mod:`.gpa_panel`, :mod:`.series_panel`: the analysis forms.
- :mod:`.dock`: :class:`LiveFFTWidget`, the dock that puts them together (named in napari.yaml).
"""

from napari_cryomat.widgets.live_fft._jobs import describe_g
from napari_cryomat.widgets.live_fft._model import (
    FILTER_MODES,
    RECIPROCAL_TITLE,
    ROI_LAYER_NAME,
    SPOT_MARKER_FRACTION,
    Job,
    LiveFFTModel,
)
from napari_cryomat.widgets.live_fft.dock import LiveFFTWidget

__all__ = ["FILTER_MODES", "RECIPROCAL_TITLE", "ROI_LAYER_NAME", "SPOT_MARKER_FRACTION", "Job", "LiveFFTModel",
           "LiveFFTWidget", "describe_g"]
