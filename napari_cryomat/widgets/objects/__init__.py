"""Objects and classes: measure labelled objects in physical units (written to the layer's
``features``), a sortable table that selects objects in the viewer, colour by a property or class,
histograms, shape classes, tracking over time with growth curves, CSV export.

- :mod:`._model`: :class:`ObjectsModel`, the state (no Qt); scripts call it directly;
- :mod:`._jobs`: requests and the pure computations run in workers;
- :mod:`.table_model`: the Qt table model over the features DataFrame;
- panels: :mod:`.measure_panel` (measure, colour, histogram), :mod:`.table_panel`,
  :mod:`.classes_panel`, :mod:`.tracking_panel`, :mod:`.export_panel`; :mod:`.widget` composes them.
"""

from napari_cryomat.widgets.objects._model import ObjectsModel
from napari_cryomat.widgets.objects.widget import ObjectTableWidget

__all__ = ["ObjectTableWidget", "ObjectsModel"]
