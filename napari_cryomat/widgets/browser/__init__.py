"""Tomogram browser (transitional re-export while the package is built)."""
from napari_cryomat.widgets.tomo_browser import TomogramBrowser  # noqa: F401
