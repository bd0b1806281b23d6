"""Batch results: an output folder of ``cryomat batch segment`` in napari (files, objects by shape
class, click an object to see it in its image)."""

from napari_cryomat.widgets.batch_results.widget import BatchResultsWidget

__all__ = ["BatchResultsWidget"]
