"""Spectrum imaging (transitional re-export of the old module while the package is built)."""
from napari_cryomat.widgets.spectrum._legacy import (  # noqa: F401
    PeriodicTableDialog,
    SpectrumImagingWidget,
    _table_position,
    parse_k_factors,
)
