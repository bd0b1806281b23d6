"""The parallel-beam projector of single-axis tomography, as one sparse matrix per slice geometry.

Geometry (see :mod:`napari_cryomat.core.tilt`): the tilt axis is the image Y axis, and the projection
at tilt θ of a volume ``V(z, y, x)`` is ``P_θ(y, u) = ∫∫ V(z, y, x) δ(u - x cosθ - z sinθ) dx dz``,
coordinates measured from the centres (voxel ``j`` of ``n`` sits at ``j - (n - 1) / 2``).

Every Y slice (Z, X) is projected by the same matrix ``A`` of shape ``(n_tilts * n_u, n_z * n_x)``;
the volume is held as a dense ``(n_z * n_x, n_y)`` matrix (one column per Y slice), so projecting all
slices is one sparse-times-dense product. Each voxel is a unit square whose shadow on the detector is
the convolution of two boxes of widths ``|cos θ|`` and ``|sin θ|`` (a trapezoid of unit area): the
matrix holds the exact overlap of that shadow with each detector bin (at most three), so the line
integrals are in pixel units and a voxel's weights sum to one at every tilt.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.sparse as sparse


def _trapezoid_cdf(s: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CDF at ``s`` of the sum of two centred uniform variables of widths ``a >= b > 0``."""
    h1, h2 = (a + b) / 2, (a - b) / 2

    def q(v):
        v = np.maximum(v, 0.0)
        return v * v / 2

    return (q(s + h1) - q(s + h2) - q(s - h2) + q(s - h1)) / (a * b)


def _tilt_weights(t: np.ndarray, theta: float, n_u: int) -> tuple[np.ndarray, np.ndarray]:
    """Detector bins (int) and overlap weights, each of shape ``t.shape + (3,)``, for voxels whose
    centres project to ``t`` (pixels from the detector centre) at tilt ``theta`` (radians)."""
    c, s = abs(np.cos(theta)), abs(np.sin(theta))
    a, b = max(c, s), max(min(c, s), 1e-4)  # b > 0 keeps the closed form finite at 0° and 90°
    pos = t + (n_u - 1) / 2  # detector coordinate: bin m covers [m - 0.5, m + 0.5]
    first = np.floor(pos - (a + b) / 2 + 0.5).astype(np.int64)
    bins = first[..., None] + np.arange(3)
    rel = bins - pos[..., None]  # bin centres relative to the voxel's shadow centre
    w = _trapezoid_cdf(rel + 0.5, a, b) - _trapezoid_cdf(rel - 0.5, a, b)
    w[(bins < 0) | (bins >= n_u)] = 0.0
    w[w < 1e-7] = 0.0
    return bins, w


def backprojector(angles_deg: np.ndarray, n_z: int, n_x: int, n_u: int) -> sparse.csr_matrix:
    """``A.T`` (rows: voxels ``z * n_x + x``; columns: ``tilt * n_u + bin``), built voxel row by voxel
    row so the temporaries stay small even for 2k-wide slices."""
    thetas = np.deg2rad(np.asarray(angles_deg, np.float64))
    n_t = thetas.size
    x = np.arange(n_x) - (n_x - 1) / 2
    zs = np.arange(n_z) - (n_z - 1) / 2
    rows_per_block = max(1, 2_000_000 // max(1, n_x * n_t))
    data, cols, counts = [], [], []
    for z0 in range(0, n_z, rows_per_block):
        z = zs[z0:z0 + rows_per_block]
        w_all = np.empty((z.size, n_x, n_t, 3), np.float32)
        c_all = np.empty((z.size, n_x, n_t, 3), np.int32)
        for i, th in enumerate(thetas):
            t = x[None, :] * np.cos(th) + z[:, None] * np.sin(th)
            bins, w = _tilt_weights(t, th, n_u)
            w_all[:, :, i] = w
            c_all[:, :, i] = np.clip(bins, 0, n_u - 1) + i * n_u
        keep = w_all > 0
        data.append(w_all[keep])
        cols.append(c_all[keep])
        counts.append(keep.reshape(z.size * n_x, -1).sum(axis=1))
    indptr = np.zeros(n_z * n_x + 1, np.int64)
    np.cumsum(np.concatenate(counts), out=indptr[1:])
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    mat = sparse.csr_matrix((np.concatenate(data), np.concatenate(cols), indptr), shape=(n_z * n_x, n_t * n_u))
    mat.has_sorted_indices = True  # columns grow with (tilt, bin) inside each row by construction
    return mat


class SliceProjector:
    """Forward and back projection of all Y slices at once for one geometry.

    ``forward(x)``: ``(n_z * n_x, k)`` volume columns -> ``(n_tilts * n_u, k)`` projections;
    ``back(p)``: the transpose. ``forward`` builds ``A`` from ``A.T`` on first use (WBP needs only
    ``A.T``, which halves the memory of a large back-projection).
    """

    def __init__(self, angles_deg, n_z: int, n_x: int, n_u: int):
        self.angles = np.asarray(angles_deg, np.float64)
        self.n_z, self.n_x, self.n_u = int(n_z), int(n_x), int(n_u)
        self.matrix_t = backprojector(self.angles, self.n_z, self.n_x, self.n_u)
        self._matrix = None
        self._self = None

    @property
    def matrix(self) -> sparse.csr_matrix:
        if self._matrix is None:
            self._matrix = self.matrix_t.T.tocsr()
        return self._matrix

    @property
    def n_tilts(self) -> int:
        return self.angles.size

    def forward(self, x: np.ndarray) -> np.ndarray:
        # A.T's CSC view: a voxel-ordered scatter that reads x sequentially, ~2x the CSR gather of A
        return self.matrix_t.T @ x

    def back(self, p: np.ndarray) -> np.ndarray:
        return self.matrix_t @ p

    def self_term(self, p: np.ndarray) -> np.ndarray:
        """``A_i A_i.T p_i`` for every tilt ``i``: what a tilt contributes to its own reprojection
        (subtracted for leave-one-out reprojections in projection matching). The block-diagonal
        matrix of the ``A_i A_i.T`` (each a narrow band) is built once."""
        if self._self is None:
            A, n = self.matrix, self.n_u
            blocks = [A[i * n:(i + 1) * n] @ self.matrix_t[:, i * n:(i + 1) * n] for i in range(self.n_tilts)]
            self._self = sparse.block_diag(blocks, format="csr", dtype=np.float32)
        return self._self @ p


# -------------------------------------------------------------------------------------------------
# weighting and filtering for weighted back-projection
# -------------------------------------------------------------------------------------------------
def angular_weights(angles_deg: np.ndarray) -> np.ndarray:
    """Δθ (radians) each tilt stands for: half the distance to each neighbour, the end tilts as
    much as their one neighbour (a limited range is not wrapped around)."""
    th = np.deg2rad(np.asarray(angles_deg, np.float64))
    if th.size == 1:
        return np.array([np.pi])
    d = np.abs(np.diff(th))
    w = np.empty_like(th)
    w[1:-1] = (d[:-1] + d[1:]) / 2
    w[0], w[-1] = d[0], d[-1]
    return w


def ramp_filter(n_u: int, *, cutoff: float | None = None) -> np.ndarray:
    """Real rfft-domain ramp filter for projections of ``n_u`` bins, zero-padded to ``2 * n_u`` or more.

    Built from the spatial Ram-Lak kernel (as scikit-image's ``iradon``), which keeps the zero
    frequency right on a discrete grid; equals ``2 |ν|`` (ν in cycles per pixel). ``cutoff`` (fraction
    of Nyquist) adds a Gaussian roll-off above it, to keep shot noise down.
    """
    n = max(64, int(2 ** np.ceil(np.log2(2 * n_u))))
    k = np.concatenate([np.arange(1, n // 2 + 1, 2), np.arange(n // 2 - 1, 0, -2)])
    kernel = np.zeros(n)
    kernel[0] = 0.25
    kernel[1::2] = -1 / (np.pi * k) ** 2
    filt = 2 * np.real(scipy.fft.rfft(kernel))
    if cutoff is not None:
        nu = np.fft.rfftfreq(n) / 0.5
        filt *= np.exp(-0.5 * (np.maximum(nu - cutoff, 0) / 0.1) ** 2)
    return filt.astype(np.float32)


def filter_projections(p: np.ndarray, n_u: int, filt: np.ndarray) -> np.ndarray:
    """Ramp-filter projections laid out ``(n_tilts * n_u, k)`` along the detector axis."""
    n = (filt.size - 1) * 2
    k = p.shape[1]
    stack = p.reshape(-1, n_u, k)
    spec = scipy.fft.rfft(stack, n=n, axis=1, workers=-1)
    spec *= filt[None, :, None]
    out = scipy.fft.irfft(spec, n=n, axis=1, workers=-1)[:, :n_u]
    return np.ascontiguousarray(out, dtype=np.float32).reshape(p.shape)


def wbp_columns(proj: SliceProjector, p: np.ndarray, *, cutoff: float | None = None, keep=None) -> np.ndarray:
    """Weighted back-projection of projection columns ``(n_tilts * n_u, k)`` -> ``(n_z * n_x, k)``;
    ``keep`` (a boolean per tilt) back-projects only those tilts, weighted as a series of them alone."""
    q = filter_projections(p, proj.n_u, ramp_filter(proj.n_u, cutoff=cutoff))
    if keep is None:
        weights = angular_weights(proj.angles)
    else:
        keep = np.asarray(keep, bool)
        weights = np.zeros(proj.n_tilts)
        weights[keep] = angular_weights(proj.angles[keep])
    w = np.repeat((weights / 2).astype(np.float32), proj.n_u)
    q *= w[:, None]
    return proj.back(q)
