"""Segmentation: annotation with classes that autosaves, automatic particles, a scribble-trained
pixel classifier, and click to segment.

- :mod:`._model`: :class:`SegmentationModel`, the tool's state and core calls (no Qt), with
  :mod:`._classes` (class table), :mod:`._autosave` (autosave bookkeeping) and :mod:`._clicks`
  (click sessions);
- views: :mod:`._widget` (the dock) and its panels :mod:`._classes_panel`, :mod:`._tools_panel`,
  :mod:`._classifier_panel`, :mod:`._particles_panel`, :mod:`._autosave_panel`.
"""

from napari_cryomat.widgets.segmentation._model import SegmentationModel
from napari_cryomat.widgets.segmentation._widget import SegmentationWidget

__all__ = ["SegmentationModel", "SegmentationWidget"]
