"""Beam damage tool: FRC/FRPR resolution and Bragg critical doses against cumulative dose.

- :mod:`._model`: request, run (:func:`run_damage`, a core call) and the CSV export; no Qt.
- :mod:`._figure`: the paper figure (matplotlib, Agg).
- :mod:`._plots` and :mod:`._widget`: :class:`BeamDamageWidget`, the dock widget the manifest names.
"""

from napari_cryomat.widgets.beam_damage._model import DamageParams, DamageRun, make_request, run_damage
from napari_cryomat.widgets.beam_damage._widget import BeamDamageWidget

__all__ = ["BeamDamageWidget", "DamageParams", "DamageRun", "make_request", "run_damage"]
