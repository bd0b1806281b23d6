"""Batch work on many files, on one machine or a dask.distributed cluster. No Qt, no napari.

- ``cryomat align`` (:mod:`.align`): drift correction of many movies.
- ``cryomat batch segment`` (:mod:`.engine`, :mod:`.segment`): segment, measure and classify every
  image of a folder; :func:`segment_folder` is the same engine from Python::

      from napari_cryomat.batch import segment_folder
      result = segment_folder(["run1/"], "out/", pixel_size=1.2)   # a LocalCluster by default
      result.objects        # one row per object (Å, Å²) with its shape class
      result.summary        # one row per file, failures with their message

- :func:`load_results` reads an output folder back (the Batch results dock uses it).
"""

from napari_cryomat.batch.align import (
    align_file,
    align_main,
    read_movie,
    write_image_mrc,
    write_shifts_csv,
    write_stack_mrc,
)
from napari_cryomat.batch.command import segment_main
from napari_cryomat.batch.engine import BatchError, BatchResult, segment_folder
from napari_cryomat.batch.results import BatchResults, load_results
from napari_cryomat.batch.segment import SegmentSettings, segment_file

__all__ = [
    "align_main", "align_file", "read_movie", "write_stack_mrc", "write_image_mrc", "write_shifts_csv",
    "segment_folder", "segment_file", "segment_main", "SegmentSettings", "BatchError", "BatchResult",
    "BatchResults", "load_results",
]
