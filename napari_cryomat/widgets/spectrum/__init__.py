"""Spectrum imaging (EELS/EDS): live spectrum under the cursor, elemental maps over the HAADF,
Cliff–Lorimer quantification, t/λ, element identification, PCA denoising, composition profiles
and exports.

- :mod:`._model`: :class:`SpectrumModel`, the tool's state, requests and result layers (no Qt);
- :mod:`._jobs`, :mod:`._sampling`, :mod:`._exports`: what the workers run (core calls only);
- :mod:`._overlays`: the "spectrum ROI" and "composition line" helper layers;
- views: :mod:`.widget` (the dock), :mod:`.spectrum_plot` and :mod:`.profile_plot` (live
  panels), :mod:`.maps_panel`, :mod:`.pca_panel`, :mod:`.export_panel`, :mod:`.periodic_table`,
  :mod:`._view_parts` (compact plot, input errors as messages).

The science is in :mod:`napari_cryomat.core.spectral`. A spectrum-image layer holds (E, Y, X)
(energy is the slider, see :mod:`napari_cryomat.io.spectral`); the core gets its (Y, X, E) view.
"""

from napari_cryomat.widgets.spectrum._jobs import parse_k_factors
from napari_cryomat.widgets.spectrum._model import SpectrumModel
from napari_cryomat.widgets.spectrum.periodic_table import PeriodicTableDialog, table_position
from napari_cryomat.widgets.spectrum.widget import SpectrumImagingWidget

__all__ = ["PeriodicTableDialog", "SpectrumImagingWidget", "SpectrumModel", "parse_k_factors", "table_position"]
