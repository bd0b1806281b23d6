"""``python -m napari_cryomat.batch`` runs ``cryomat align`` as it did when batch was one module."""

import sys

from napari_cryomat.batch.align import align_main

sys.exit(align_main(sys.argv[1:]))
