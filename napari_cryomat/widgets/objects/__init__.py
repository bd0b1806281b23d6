"""Objects and classes (transitional re-export while the package is built)."""
from napari_cryomat.widgets.object_table import ObjectTableWidget  # noqa: F401
