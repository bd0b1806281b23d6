"""Tomogram browser: orthogonal views on one cursor, slabs, binning, contrast, 3D, picks, distances.

- :mod:`._model`: :class:`BrowserModel`, the state (layer, cursor, slab, binning, low-pass,
  contrast, 3D) and the layers it shows; no Qt widgets.
- :mod:`._picks`: :class:`Annotations`, picks (CSV / RELION STAR in file voxel indices) and
  distances in Å.
- :mod:`.orthoviews`: the XZ / YZ views, a live panel (request, compute in a worker, draw).
- :mod:`.display_panel`, :mod:`.picks_panel`: the controls; :mod:`.widget`: the dock.
"""

from napari_cryomat.widgets.browser._model import BrowserModel
from napari_cryomat.widgets.browser.widget import TomogramBrowser

__all__ = ["BrowserModel", "TomogramBrowser"]
