"""napari-cryomat: cryo-EM of materials in napari.

The science lives in :mod:`napari_cryomat.core` (numpy/scipy/scikit-image only, importable in a
notebook or a batch job); file formats in :mod:`napari_cryomat.io`; dock widgets in
:mod:`napari_cryomat.widgets`.
"""

__version__ = "0.1.0"
