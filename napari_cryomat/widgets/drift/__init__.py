"""Drift correction tool: align the frames of a (T, Y, X) stack and view the result.

- :mod:`._run`: what a run is (parameters, request, result, layer names; frozen dataclasses).
- :mod:`._model`: :class:`DriftModel` (state, layers; no Qt) and the worker functions
  :func:`run_alignment`, :func:`sum_frames`, :func:`save_run` (pure core calls).
- :mod:`._params`: the parameter form; :mod:`._results` and :mod:`._plots`: the result panel.
- :mod:`._widget`: :class:`DriftCorrectionWidget`, the dock widget the manifest names.
"""

from napari_cryomat.widgets.drift._model import DriftModel, run_alignment, save_run, sum_frames
from napari_cryomat.widgets.drift._run import AlignParams, AlignRequest, AlignRun, LayerNames
from napari_cryomat.widgets.drift._widget import DriftCorrectionWidget

__all__ = [
    "AlignParams",
    "AlignRequest",
    "AlignRun",
    "DriftCorrectionWidget",
    "DriftModel",
    "LayerNames",
    "run_alignment",
    "save_run",
    "sum_frames",
]
