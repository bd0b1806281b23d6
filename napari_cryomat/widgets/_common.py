"""Transitional: the shared widget pieces moved to :mod:`napari_cryomat.widgets._base`.

Removed once every tool package imports from ``_base`` directly.
"""

from napari_cryomat.core.units import angstrom_units
from napari_cryomat.widgets._base import (
    DockVisibility,
    LayerCombo,
    TaskRunner,
    pixel_size_of,
    show_error,
    show_info,
    show_warning,
)


def finite_or_raise(data, what: str = "image") -> None:
    """Raise a user-facing ValueError if ``data`` has NaN or inf."""
    import numpy as np

    if not np.all(np.isfinite(data)):
        raise ValueError(f"The {what} contains NaN or inf pixels; replace them (e.g. with the median) first.")


__all__ = ["DockVisibility", "LayerCombo", "TaskRunner", "angstrom_units", "finite_or_raise", "pixel_size_of",
           "show_error", "show_info", "show_warning"]
