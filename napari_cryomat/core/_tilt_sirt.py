"""SIRT over Y slabs on all cores, stopped where held-out tilts say the noise begins to be fitted.

SIRT from zero first fits the smooth, well-measured part of the volume and later the shot noise: on
noisy tilts the error of the volume falls, then rises again (the iteration count is the regulariser).
Where it turns depends on the dose, so no fixed count suits both clean and noisy data. The stopping
iteration is found by cross-validation on the data themselves: a pilot SIRT on a few Y slices leaves
out every sixth interior tilt and follows how well the volume reprojects onto them. Their residual
falls while the iteration adds structure the left-out views confirm, and rises once it adds noise
only the fitted views hold. Every slice, pilot slices included, is then reconstructed from all tilts
with the iteration count where that residual was lowest. On noise-free data it keeps falling, and the
full count runs.

Held-out *tilts* rather than held-out pixels: predicting a pixel from its neighbours in the same tilt
rewards denoising in the data (it stopped ~50 % later than the volume's optimum on the phantoms);
predicting a view the fit never saw needs the 3D structure right. A discrepancy stop (residual =
noise level, the noise from the median absolute diagonal wavelet detail) was measured and not kept:
shot noise turned into line integrals is heteroscedastic and heavy-tailed, and the residual at the
volume's optimum sat at 0.94 of the estimate at 100 counts/px and 1.08 at 10 counts/px (128³ phantoms),
so no factor stops well at both doses.

scipy's sparse products release the GIL, so slabs run on a thread pool (one slab per core); the
forward projection uses ``A.T``'s CSC view (its voxel-ordered scatter reads the volume sequentially,
about twice as fast as the CSR gather of ``A`` at 256³).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from napari_cryomat.core import _tilt_projector as _pj
from napari_cryomat.core._parallel import core_threads as _threads
from napari_cryomat.core._progress import report, sub_progress

#: Slices per slab: the working set of one SIRT step stays in cache.
SLAB = 64
#: Y slices the pilot runs on (spread over the volume); its held-out residual sums over these.
PILOT_SLICES = 32
#: Every HOLD_EVERY-th interior tilt is left out of the pilot.
HOLD_EVERY = 6
#: Fewest tilts for the pilot to leave some out and still reconstruct.
MIN_TILTS_TO_STOP = 12


def held_out_tilts(n_tilts: int) -> np.ndarray:
    """Boolean mask: every sixth tilt from the third, never the first or last (extrapolating to the
    end of the range would judge the missing wedge, not the noise)."""
    held = np.zeros(n_tilts, bool)
    held[HOLD_EVERY // 2:n_tilts - 1:HOLD_EVERY] = True
    return held


class Sirt:
    """``x += λ C A.T R (b - A x)`` (R, C inverse row and column sums; λ < 2 converges) on the rows
    of the kept tilts; the residual of the other tilts' rows is what :meth:`step` returns."""

    def __init__(self, proj: _pj.SliceProjector, *, relaxation: float, positivity: bool, keep=None):
        self.proj, self.positivity = proj, positivity
        n_u = proj.n_u
        rows = np.ones(proj.n_tilts, bool) if keep is None else np.asarray(keep, bool)
        self.keep = rows
        self.kept_rows = np.repeat(rows, n_u).astype(np.float32)[:, None]
        self.held_rows = np.repeat(~rows, n_u)
        self.forward = proj.matrix_t.T  # CSC view of A, no copy
        row = np.asarray(proj.matrix_t.sum(axis=0)).ravel()
        col = np.asarray(proj.matrix_t @ self.kept_rows).ravel()
        self.inv_row = (np.where(row > 1e-6, 1 / np.maximum(row, 1e-6), 0)[:, None] * self.kept_rows).astype(np.float32)
        self.inv_col = (relaxation * np.where(col > 1e-6, 1 / np.maximum(col, 1e-6), 0)).astype(np.float32)[:, None]

    def start(self, p: np.ndarray, from_wbp: bool) -> np.ndarray:
        if not from_wbp:
            return np.zeros((self.proj.n_z * self.proj.n_x, p.shape[1]), np.float32)
        x = _pj.wbp_columns(self.proj, p, keep=self.keep)
        if self.positivity:
            np.maximum(x, 0, out=x)
        return x

    def step(self, x: np.ndarray, p: np.ndarray) -> float:
        """One update of ``x`` in place; returns the squared residual on the held-out tilts (before it)."""
        r = p - self.forward @ x
        held = float(np.sum(np.square(r[self.held_rows], dtype=np.float64))) if self.held_rows.any() else 0.0
        r *= self.inv_row
        upd = self.proj.matrix_t @ r
        upd *= self.inv_col
        x += upd
        if self.positivity:
            np.maximum(x, 0, out=x)
        return held


class Columns:
    """Projection columns ``(n_tilts * n_u, len(idx))`` of the Y slices ``idx`` of aligned tilts."""

    def __init__(self, aligned):
        self.aligned = aligned
        self.n_y = aligned.shape[1]

    def __call__(self, idx) -> np.ndarray:
        n, _, n_u = self.aligned.shape
        sel = np.asarray(self.aligned[:, idx, :], np.float32)
        return np.ascontiguousarray(sel.transpose(0, 2, 1)).reshape(n * n_u, -1)


def _chunks(p: np.ndarray, n: int) -> list[np.ndarray]:
    """``p``'s columns in up to ``n`` contiguous pieces of at least 32 (narrower ones run slower per column)."""
    n = max(1, min(n, p.shape[1] // 32))
    bounds = np.linspace(0, p.shape[1], n + 1).astype(int)
    return [np.ascontiguousarray(p[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def stopping_iteration(pool, n_threads: int, proj, columns, *, iterations: int, relaxation: float, positivity: bool,
                       from_wbp: bool, progress=None) -> int:
    """Iterations (1..iterations) after which the pilot's held-out tilts were reprojected best.

    ``columns(idx)`` gives the projection columns of Y slices ``idx``. Stops once the held-out residual
    has not reached a new low for ``max(3, iterations // 10)`` iterations.
    """
    n_y = columns.n_y
    idx = np.unique(np.linspace(0, n_y - 1, min(n_y, PILOT_SLICES)).round().astype(int))
    sirt = Sirt(proj, relaxation=relaxation, positivity=positivity, keep=~held_out_tilts(proj.n_tilts))
    ps = _chunks(columns(idx), n_threads)
    xs = [sirt.start(p, from_wbp) for p in ps]
    patience = max(3, iterations // 10)
    history = []
    for it in range(iterations + 1):
        held = sum(pool.map(sirt.step, xs, ps))  # residual after `it` updates
        history.append(held)
        report(progress, (it + 1) / (iterations + 1))
        best = int(np.argmin(history))
        if it - best >= patience:
            break
    return max(1, int(np.argmin(history)))


def reconstruct_slabs(proj, columns, write, *, iterations: int, relaxation: float, positivity: bool,
                      from_wbp: bool, early_stop: bool, progress=None) -> int:
    """SIRT of every Y slice; ``write(y0, y1, x)`` stores a slab's ``(n_z * n_x, y1 - y0)`` columns.
    Returns the iterations run (after the pilot's choice when ``early_stop``)."""
    n_y = columns.n_y
    n_threads = _threads()
    with ThreadPoolExecutor(n_threads) as pool:
        run_to = iterations
        pilot_share = 0.0
        if early_stop and proj.n_tilts >= MIN_TILTS_TO_STOP:
            pilot_share = min(0.5, PILOT_SLICES / (n_y + PILOT_SLICES))
            run_to = stopping_iteration(pool, n_threads, proj, columns, iterations=iterations, relaxation=relaxation,
                                        positivity=positivity, from_wbp=from_wbp,
                                        progress=sub_progress(progress, 0.0, pilot_share))
        sirt = Sirt(proj, relaxation=relaxation, positivity=positivity)
        group = SLAB * n_threads
        for g0 in range(0, n_y, group):
            g1 = min(n_y, g0 + group)
            slabs = [(y0, min(g1, y0 + SLAB)) for y0 in range(g0, g1, SLAB)]
            ps = [columns(np.arange(y0, y1)) for y0, y1 in slabs]
            xs = [sirt.start(p, from_wbp) for p in ps]
            sub = sub_progress(progress, pilot_share + (1 - pilot_share) * g0 / n_y,
                               pilot_share + (1 - pilot_share) * g1 / n_y)
            for it in range(run_to):
                list(pool.map(sirt.step, xs, ps))
                report(sub, (it + 1) / run_to)
            for (y0, y1), x in zip(slabs, xs):
                write(y0, y1, x)
    return run_to
