"""Tilt series tool: from a tilt series to a calibrated tomogram and 3D numbers.

- :mod:`._run`: requests and results (frozen dataclasses, no Qt).
- :mod:`._model`: :class:`TiltModel` (state, layers; no Qt) and the worker functions
  :func:`run_align`, :func:`run_reconstruct`, :func:`run_threshold`, :func:`run_quantify`.
- :mod:`._panels` and :mod:`._plots`: the four sections of the dock and their plots.
- :mod:`._widget`: :class:`TiltSeriesWidget`, the dock widget the manifest names.
"""

from napari_cryomat.widgets.tilt._model import (
    TiltModel,
    angles_of,
    run_align,
    run_quantify,
    run_reconstruct,
    run_threshold,
)
from napari_cryomat.widgets.tilt._run import (
    ANGLES_KEY,
    AlignNote,
    AlignRequest,
    AlignRun,
    Quantification,
    QuantRequest,
    ReconRequest,
    Reconstruction,
)
from napari_cryomat.widgets.tilt._widget import TiltSeriesWidget

__all__ = [
    "ANGLES_KEY",
    "AlignNote",
    "AlignRequest",
    "AlignRun",
    "QuantRequest",
    "Quantification",
    "ReconRequest",
    "Reconstruction",
    "TiltModel",
    "TiltSeriesWidget",
    "angles_of",
    "run_align",
    "run_quantify",
    "run_reconstruct",
    "run_threshold",
]
