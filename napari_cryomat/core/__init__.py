"""The science of napari-cryomat: pure numpy / scipy / scikit-image, no Qt and no napari.

Conventions (see DESIGN.md):

- axes: image (Y, X); movie (T, Y, X); tomogram (Z, Y, X); spectrum image (Y, X, E);
- lengths in angstrom, energies in eV, doses in e/Å²;
- long functions take an optional ``progress`` callable, called with a fraction in [0, 1].
  A caller cancels by raising :class:`Cancelled` from inside that callback.
"""

from napari_cryomat.core._progress import Cancelled, report

__all__ = ["Cancelled", "report"]
