"""Denoise tool: self-supervised denoising of a low-dose image or stack (issue #16).

- :mod:`._model`: :class:`DenoiseModel` (state, layers; no Qt), the requests and the worker
  functions :func:`run_preview` and :func:`run_apply` (pure core calls).
- :mod:`._widget`: :class:`DenoiseWidget`, the dock widget the manifest names (live preview of the
  view, calibration curves, apply to the whole layer).
"""

from napari_cryomat.widgets.denoise._model import (
    ApplyRequest,
    DenoiseModel,
    DenoiseParams,
    PreviewRequest,
    run_apply,
    run_preview,
)
from napari_cryomat.widgets.denoise._widget import DenoiseWidget

__all__ = ["ApplyRequest", "DenoiseModel", "DenoiseParams", "DenoiseWidget", "PreviewRequest", "run_apply",
           "run_preview"]
