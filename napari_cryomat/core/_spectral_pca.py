"""PCA of a spectrum image (Poisson-weighted, out of core) and its reconstruction.

Conventions: :mod:`napari_cryomat.core.spectral`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._spectral_base import (
    CHUNK_BYTES,
    _read_band,
    check_counts,
    check_spectrum_image,
    is_lazy,
    rows_per_chunk,
)
from napari_cryomat.core._validate import (
    check_memory,
    fraction,
    integer,
    real_array,
)


@dataclass
class PCAResult:
    """A truncated PCA of a spectrum image (in the Poisson-normalised space when ``poisson``).

    ``scores`` (Y*X, k) and ``factors`` (k, E) with singular values folded into the scores;
    ``explained_variance`` the leading eigenvalues (variance per component) for the scree
    plot; ``total_variance`` the variance summed over all components; ``mean`` (E,) subtracted before the decomposition; ``g`` (Y*X,) and ``h`` (E,)
    the Poisson weights (ones when not ``poisson``); ``shape`` the SI shape.
    """

    scores: np.ndarray
    factors: np.ndarray
    explained_variance: np.ndarray
    mean: np.ndarray
    g: np.ndarray
    h: np.ndarray
    shape: tuple
    poisson: bool
    total_variance: float = 0.0

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        total = self.total_variance or float(self.explained_variance.sum())
        return self.explained_variance / max(total, 1e-30)


def _orthonormal(y: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the columns of a tall matrix: CholeskyQR2 (two passes of
    ``Y (chol(YᵀY))⁻ᵀ``), matmul-only and much faster than Householder QR on tall float32
    blocks; falls back to numpy's QR when the Gram matrix is singular."""
    q = y
    try:
        for _ in range(2):
            gram = (q.T @ q).astype(np.float64)
            gram[np.diag_indices_from(gram)] += 1e-10 * max(np.trace(gram), 1e-30)
            low = np.linalg.cholesky(gram)
            q = q @ np.linalg.inv(low).T.astype(q.dtype)
        if not np.all(np.isfinite(q)):
            raise np.linalg.LinAlgError
        return q
    except np.linalg.LinAlgError:
        return np.linalg.qr(y)[0]


def pca(
    si,
    *,
    poisson: bool = True,
    max_components: int = 32,
    oversample: int = 16,
    n_iter: int = 2,
    seed: int = 0,
    max_bytes: int = CHUNK_BYTES,
    progress: ProgressCallback = None,
) -> PCAResult:
    """PCA of a spectrum image by (randomised) SVD, with Poisson normalisation.

    The data matrix ``D`` (pixels × channels) is scaled to ``D / sqrt(g ⊗ h)`` with ``g`` the
    total counts per pixel and ``h`` the mean spectrum (Keenan & Kotula 2004), which makes
    Poisson noise uniform so that the scree plot separates signal from a flat noise floor.
    The mean spectrum is removed and the leading ``max_components + oversample`` singular
    vectors are found by a randomised range finder with ``n_iter`` power iterations (Halko,
    Martinsson & Tropp 2011), in float32 bands of whole rows (``max_bytes`` each): the
    normalised matrix is never stored whole, and a memory-mapped or dask SI larger than RAM is
    read band by band (the scores, pixels × components, stay in memory).

    Parameters
    ----------
    si : array (Y, X, E)
        Counts (must not be negative when ``poisson``).
    poisson : bool
        Apply the Poisson normalisation (default True).
    max_components : int
        Number of components kept for reconstruction.
    oversample, n_iter : int
        Extra random vectors and power iterations of the range finder.
    seed : int
        Seed of the random test matrix (results are deterministic).

    Returns
    -------
    PCAResult
        ``explained_variance`` holds the ``max_components + oversample`` leading eigenvalues
        (for the scree plot), ``total_variance`` the variance of all components.
    """
    check_spectrum_image(si, lazy=True)
    max_components = integer(max_components, "max_components", low=1, high=4096)
    oversample = integer(oversample, "oversample", low=0, high=4096)
    n_iter = integer(n_iter, "n_iter", low=0, high=50)
    seed = integer(seed, "seed", low=0, high=2**32 - 1)
    ny, nx, ne = (int(v) for v in si.shape)
    npx = ny * nx
    # bands of whole rows, read one at a time (a memory map or dask SI is never loaded whole;
    # an in-memory float32 SI is only viewed)
    step = rows_per_chunk(si, max_bytes=max_bytes)
    bands = [(y * nx, min(ny, y + step) * nx, slice(y, min(ny, y + step))) for y in range(0, ny, step)]
    in_memory = not is_lazy(si)

    def band(rows: slice) -> np.ndarray:
        blk = np.asarray(si[rows], dtype=np.float32) if in_memory else _read_band(si, rows)
        return blk.reshape(-1, ne)

    n_passes = 3 + 2 * n_iter + 2
    done = [0]

    def tick():
        done[0] += 1
        report(progress, done[0] / n_passes)

    g = np.zeros(npx, np.float64)
    h = np.zeros(ne, np.float64)
    for i, j, rows in bands:  # first pass: checks and the Poisson weights
        blk = band(rows)
        if poisson:
            check_counts(blk, what="spectrum image (si)")
        elif not np.all(np.isfinite(blk)):
            raise ValueError("The spectrum image (si) contains NaN or inf values; replace them first.")
        g[i:j] = blk.sum(axis=1, dtype=np.float64)
        h += blk.sum(axis=0, dtype=np.float64)
    tick()
    if poisson:
        if g.sum() <= 0:
            raise ValueError("The spectrum image (si) is empty (all counts zero).")
        g = np.sqrt(g / g.mean()).astype(np.float32)
        h = np.sqrt(h / h.mean()).astype(np.float32)
        g[g == 0] = 1.0
        h[h == 0] = 1.0
    else:
        g = np.ones(npx, np.float32)
        h = np.ones(ne, np.float32)
    inv_g, inv_h = (1.0 / g).astype(np.float32), (1.0 / h).astype(np.float32)
    # The normalised, centred matrix X = G⁻¹ D H⁻¹ − 1 μᵀ is never formed: its products with
    # thin matrices are diagonal scalings of products with D, which BLAS does at full speed.
    col = np.zeros(ne, np.float64)
    sq = np.zeros(ne, np.float64)
    for i, j, rows in bands:
        blk = band(rows)
        col += inv_g[i:j].astype(np.float64) @ blk
        sq += (inv_g[i:j] ** 2).astype(np.float64) @ (blk * blk)
    mean = inv_h * col / npx  # mean normalised spectrum
    sumsq = float(sq @ (inv_h.astype(np.float64) ** 2))
    total_variance = max(sumsq - npx * float(mean @ mean), 0.0) / max(npx - 1, 1)
    mean32 = mean.astype(np.float32)
    tick()

    def x_times(m):  # X @ m, m (E, l)
        out = np.empty((npx, m.shape[1]), np.float32)
        mh = (inv_h[:, None] * m).astype(np.float32)
        mm = (mean32 @ m).astype(np.float32)
        for i, j, rows in bands:
            out[i:j] = inv_g[i:j, None] * (band(rows) @ mh) - mm
        tick()
        return out

    def xt_times(q):  # X.T @ q, q (P, l)
        out = np.zeros((ne, q.shape[1]), np.float32)
        for i, j, rows in bands:
            out += band(rows).T @ (inv_g[i:j, None] * q[i:j])
        out = inv_h[:, None].astype(np.float64) * out - np.outer(mean, q.sum(axis=0, dtype=np.float64))
        tick()
        return out.astype(np.float32)

    k = int(min(max_components, ne, npx))
    ell = int(min(k + oversample, ne, npx))
    rng = np.random.default_rng(seed)
    y = x_times(rng.standard_normal((ne, ell)).astype(np.float32))
    for _ in range(n_iter):
        q = _orthonormal(y)
        z = _orthonormal(xt_times(q))
        y = x_times(z)
    q = _orthonormal(y)
    b = xt_times(q).T  # (l, E) = Q.T (X - mean)
    ub, s, vt = np.linalg.svd(b.astype(np.float64), full_matrices=False)
    factors = vt[:k].astype(np.float32)
    scores = (q @ (ub[:, :k] * s[:k]).astype(np.float32)).astype(np.float32)
    evals = s**2 / max(npx - 1, 1)
    report(progress, 1.0)
    return PCAResult(
        scores=scores,
        factors=factors,
        explained_variance=evals.astype(np.float64),
        mean=mean32,
        g=g,
        h=h,
        shape=(ny, nx, ne),
        poisson=poisson,
        total_variance=float(total_variance),
    )


def pca_reconstruct(result: PCAResult, *, n_components: int, out=None, progress: ProgressCallback = None) -> np.ndarray:
    """Denoised SI (Y, X, E) float32 from the first ``n_components`` components of ``result``.

    ``out`` (Y, X, E), e.g. a ``numpy.lib.format.open_memmap``, receives the result band by band
    when it would not fit in memory; default a new array."""
    if not isinstance(result, PCAResult):
        raise ValueError(f"result must be a PCAResult from pca(); got {type(result).__name__}.")
    k = integer(n_components, "n_components", low=1, high=result.factors.shape[0])
    ny, nx, ne = result.shape
    if out is None:
        check_memory(float(ny * nx * ne) * 4, "result", "the denoised SI (give out= a memory map)")
        out = np.empty((ny, nx, ne), np.float32)
    elif tuple(np.shape(out)) != (ny, nx, ne):
        raise ValueError(f"out must have the SI's shape {(ny, nx, ne)}; got {tuple(np.shape(out))}.")
    rows = max(1, 2**24 // max(1, nx * ne))
    # undo the Poisson scaling inside the product: (S F + μ) ⊙ (g hᵀ) = g ⊙ (S (F ⊙ h) + μ ⊙ h)
    fh = (result.factors[:k] * result.h[None, :]).astype(np.float32)
    mh = (result.mean * result.h).astype(np.float32)
    for y in range(0, ny, rows):
        y1 = min(ny, y + rows)
        i, j = y * nx, y1 * nx
        blk = result.scores[i:j, :k] @ fh
        blk += mh
        blk *= result.g[i:j, None]
        out[y:y1] = blk.reshape(y1 - y, nx, ne)
        report(progress, y1 / ny)
    return out


def suggest_components(explained_variance, *, noise_tail: float = 0.5) -> int:
    """Number of components above the noise floor of a scree plot.

    After Poisson normalisation the noise eigenvalues form a flat tail; the floor is the
    median of the last ``noise_tail`` fraction of the eigenvalues, and components more than
    ``5 × MAD`` above it count as signal (at least 1).
    """
    ev = real_array(explained_variance, "explained_variance", ndim=1, dtype=np.float64)
    noise_tail = fraction(noise_tail, "noise_tail", low_open=True)
    if ev.size < 4:
        return max(1, ev.size)
    tail = ev[int(ev.size * (1 - noise_tail)) :]
    med = np.median(tail)
    mad = np.median(np.abs(tail - med)) + 1e-12 * max(med, 1e-30)
    n = int(np.sum(ev > med + 20 * mad * 1.4826 + 0.5 * med))
    return max(1, n)
