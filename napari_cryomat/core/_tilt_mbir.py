"""Model-based iterative reconstruction through svmbir (optional extra ``svmbir``, imported lazily).

svmbir's parallel-beam geometry differs from ours by a quarter turn and a mirror: its view angle
is ``π/2 - θ`` and its columns run along ``-x``; slices are our Y. Checked against
:func:`napari_cryomat.core.tilt.project_volume` on off-centre points (tests/core/test_tilt.py).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from napari_cryomat.core._progress import report


def mbir(aligned: np.ndarray, angles_deg: np.ndarray, n_z: int, *, positivity: bool = False,
         iterations: int = 100, progress=None) -> np.ndarray:
    """(Z, Y, X) float32 from aligned tilts (N, Y, X) with svmbir's qGGMRF prior (its defaults)."""
    try:
        import svmbir
    except ImportError:
        raise ValueError("method 'mbir' needs svmbir (pip install napari-cryomat[svmbir]); "
                         "use method='sirt' instead.") from None
    report(progress, 0.0)
    n, ny, nx = aligned.shape
    cache = os.path.join(tempfile.gettempdir(), "cryomat-svmbir")  # svmbir's system-matrix cache, not in $HOME
    rec = svmbir.recon(np.ascontiguousarray(aligned, np.float32), np.pi / 2 - np.deg2rad(angles_deg),
                       num_rows=int(n_z), num_cols=nx, positivity=bool(positivity), max_iterations=int(iterations),
                       verbose=0, svmbir_lib_path=cache)
    report(progress, 1.0)
    return np.ascontiguousarray(np.transpose(rec[:, :, ::-1], (1, 0, 2)), dtype=np.float32)
