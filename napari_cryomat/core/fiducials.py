"""Tilt-series alignment on gold fiducials: find beads, track them through the tilts, fit the model.

What IMOD's ``beadtrack`` and ``tiltalign`` do for a single-axis series, for when gold beads were
put on the grid: fiducial-free alignment (:func:`napari_cryomat.core.tilt.align_tilt_series`) works
on any specimen, beads give an alignment that does not depend on the specimen's contrast.

Model
-----
Bead ``j`` at ``(x_j, y_j, z_j)`` (pixels, from the volume's centre) appears on tilt ``i`` at::

    p_ij = c + R(α) · (y_j, x_j cos θ_i + z_j sin θ_i) + s_i

with ``c`` the image centre, ``R(α)`` the rotation taking the image Y axis to the tilt axis
(counter-clockwise on screen by ``α``), and ``s_i`` the shift of tilt ``i``: the geometry and the
shift convention of :class:`napari_cryomat.core.tilt.TiltAlignment`. For a fixed ``α`` the model is
linear in the shifts and the bead coordinates, so it is solved in closed form (least squares); ``α``
is found by a scan and a bounded search over the residual, as IMOD's ``tiltalign`` solves for
rotation. Magnification and tilt-angle refinement per tilt are not modelled.

Tracking goes from the tilt nearest zero outwards, on both sides: each tilt's beads are predicted
from the model fitted so far, the shift of the new tilt is found by a vote over all detection -
prediction differences (robust to shifts far larger than the bead spacing), and beads are matched
one to one (Hungarian assignment) within a tolerance. A final pass re-matches every tilt against the
full model, which fills gaps and drops mismatches, and points that the model cannot explain
(residual beyond 4 robust standard deviations) are left out of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, ndimage, optimize, sparse
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree
from threadpoolctl import threadpool_limits

from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core._tilt_align import rotation
from napari_cryomat.core._validate import choice, integer, number, positive, real_array, vector
from napari_cryomat.core.tilt import TiltAlignment, check_tilt_angles, check_tilt_series

__all__ = ["BeadModel", "find_beads", "track_beads", "fit_bead_model"]

#: Points further from the model than this many robust standard deviations are left out of the fit.
OUTLIER_SIGMAS = 4.0


# -------------------------------------------------------------------------------------------------
# detection
# -------------------------------------------------------------------------------------------------
def _blob_response(image: np.ndarray, radius_px: float, polarity: str) -> np.ndarray:
    """Scale-normalised Laplacian of Gaussian tuned to a disc of ``radius_px``, beads positive."""
    sigma = max(radius_px / np.sqrt(2), 0.8)
    log = ndimage.gaussian_laplace(image.astype(np.float32), sigma) * sigma**2
    return log if polarity == "dark" else -log


def _polarity(image: np.ndarray, radius_px: float) -> str:
    """Gold is denser than anything else on the grid: the stronger LoG extreme tells its sign."""
    log = _blob_response(image, radius_px, "dark")
    hi, lo = np.percentile(log, [99.95, 0.05])
    return "dark" if hi >= -lo else "bright"


def _subpixel(resp: np.ndarray, r: int, c: int) -> tuple[float, float]:
    """Peak centre from the parabola through the log of the response (exact for a Gaussian)."""
    out = []
    for axis, (i, n) in enumerate(((r, resp.shape[0]), (c, resp.shape[1]))):
        if i == 0 or i == n - 1:
            out.append(float(i))
            continue
        trio = resp[i - 1:i + 2, c] if axis == 0 else resp[r, i - 1:i + 2]
        v = np.log(trio) if np.all(trio > 0) else trio
        den = v[0] - 2 * v[1] + v[2]
        off = 0.5 * (v[0] - v[2]) / den if den < 0 else 0.0
        out.append(i + float(np.clip(off, -0.5, 0.5)))
    return out[0], out[1]


def _detect(image: np.ndarray, radius_px: float, polarity: str, min_score: float) -> np.ndarray:
    """(K, 3) rows ``(y, x, score)`` of bead-like peaks, strongest first."""
    resp = _blob_response(image, radius_px, polarity)
    med = float(np.median(resp))
    sigma = 1.4826 * float(np.median(np.abs(resp - med))) or 1e-12
    score = (resp - med) / sigma
    size = max(3, int(round(2 * radius_px)) | 1)
    peaks = (score == ndimage.maximum_filter(score, size=size)) & (score >= min_score)
    rows, cols = np.nonzero(peaks)
    if rows.size == 0:
        return np.empty((0, 3))
    order = np.argsort(-score[rows, cols])
    rows, cols = rows[order], cols[order]
    shifted = score - score.min() + 1e-6  # positive for the log-parabola
    out = [(*_subpixel(shifted, r, c), score[r, c]) for r, c in zip(rows, cols, strict=True)]
    return np.array(out, dtype=float)


def find_beads(image, *, bead_diameter: float, pixel_size: float = 1.0, polarity: str = "auto",
               min_score: float = 4.5) -> np.ndarray:
    """Gold beads in one image: ``(K, 3)`` rows ``(y, x, score)``, strongest first.

    Parameters
    ----------
    image : (Y, X) array
    bead_diameter : float
        Bead diameter, Å (e.g. 100 for 10 nm gold).
    pixel_size : float
        Å per pixel.
    polarity : {"auto", "dark", "bright"}
        Beads dark (bright-field TEM) or bright (HAADF STEM); "auto" takes the sign of the strongest
        blob-filter extremes.
    min_score : float
        Threshold on the blob filter in robust standard deviations of its response over the image.
    """
    img = real_array(image, "image", ndim=2, what="image")
    px = positive(pixel_size, "pixel_size", unit="Å")
    radius = positive(bead_diameter, "bead_diameter", unit="Å") / px / 2
    if radius < 0.5 or radius > min(img.shape) / 4:
        raise ValueError(f"bead_diameter must be between 1 pixel and half the image ({px:g} to "
                         f"{px * min(img.shape) / 2:g} Å at pixel_size {px:g} Å); got {2 * radius * px:g} Å.")
    pol = choice(polarity, "polarity", ("auto", "dark", "bright"))
    thr = number(min_score, "min_score", low=0.5, high=1e3)
    pol = _polarity(img, radius) if pol == "auto" else pol
    return _detect(img, radius, pol, thr)


# -------------------------------------------------------------------------------------------------
# the linear model
# -------------------------------------------------------------------------------------------------
def _design(mask: np.ndarray, theta: np.ndarray, alpha: float) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Sparse design matrix of the observed points for the unknowns ``(s_0..s_N-1, (x, y, z)_0..M-1)``,
    rows ``(row, column)`` of each point in turn, and the (tilt, bead) index of each point."""
    n, m = mask.shape
    rot = rotation(alpha)
    ii, jj = np.nonzero(mask)
    k = ii.size
    cos, sin = np.cos(theta[ii]), np.sin(theta[ii])
    rows, cols, vals = [], [], []
    for d in range(2):  # image row, image column
        r = 2 * np.arange(k) + d
        base = 2 * n + 3 * jj
        for col, val in ((2 * ii + d, np.ones(k)), (base, rot[d, 1] * cos), (base + 1, np.full(k, rot[d, 0])),
                         (base + 2, rot[d, 1] * sin)):
            rows.append(r)
            cols.append(col)
            vals.append(val)
    a = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(2 * k, 2 * n + 3 * m))
    return a, np.stack([ii, jj], axis=1)


def _solve(points: np.ndarray, mask: np.ndarray, theta: np.ndarray, alpha: float, centre: np.ndarray):
    """Least-squares shifts (N, 2), beads (M, 3) as (x, y, z), and the residual sum of squares.

    Normal equations (a few hundred unknowns) with the gauge as a penalty: the beads' mean position
    is the volume's centre, since a shift of the whole volume is no data. Unknowns no point touches
    (a tilt or a bead never seen) come out zero through a tiny ridge."""
    n, m = mask.shape
    a, idx = _design(mask, theta, alpha)
    b = (points[idx[:, 0], idx[:, 1]] - centre).ravel()
    ata = (a.T @ a).toarray()
    atb = a.T @ b
    gauge = np.zeros((3, 2 * n + 3 * m))
    for g in range(3):
        gauge[g, 2 * n + g::3] = 1.0
    scale = max(float(np.trace(ata)) / ata.shape[0], 1.0)
    ata += scale * (gauge.T @ gauge) + 1e-9 * scale * np.eye(ata.shape[0])
    sol = linalg.solve(ata, atb, assume_a="pos")
    rss = float(np.sum((a @ sol - b) ** 2))
    return sol[:2 * n].reshape(n, 2), sol[2 * n:].reshape(m, 3), rss


def _predict(beads: np.ndarray, shifts: np.ndarray, theta: np.ndarray, alpha: float,
             centre: np.ndarray) -> np.ndarray:
    """Model positions (N, M, 2) of every bead on every tilt."""
    rot = rotation(alpha)
    x, y, z = beads[:, 0], beads[:, 1], beads[:, 2]
    u = x[None, :] * np.cos(theta)[:, None] + z[None, :] * np.sin(theta)[:, None]
    v = np.broadcast_to(y[None, :], u.shape)
    return centre + np.stack([v, u], axis=-1) @ rot.T + shifts[:, None, :]


def _best_alpha(points, mask, theta, centre, alpha0: float | None) -> float:
    """The axis angle of least residual: a 4° scan (or ±6° about a given angle), then a bounded search."""
    def rss(alpha):
        return _solve(points, mask, theta, alpha, centre)[2]

    if alpha0 is None:
        grid = np.arange(-90.0, 90.0, 4.0)
        start = float(grid[int(np.argmin([rss(a) for a in grid]))])
        span = 4.0
    else:
        start, span = float(alpha0), 6.0
    res = optimize.minimize_scalar(rss, bounds=(start - span, start + span), method="bounded",
                                   options={"xatol": 1e-3})
    return float(((res.x + 90) % 180) - 90)


def _usable(mask: np.ndarray) -> np.ndarray:
    """Tilts with at least two beads and beads seen on at least three tilts carry the fit."""
    keep = mask.copy()
    keep[:, keep.sum(axis=0) < 3] = False
    keep[keep.sum(axis=1) < 2, :] = False
    return keep


def _fit(points, mask, theta, centre, alpha0, fit_alpha: bool):
    """Fit with the axis angle (searched from ``alpha0``, scanned when None, or fixed) and outliers
    left out; returns ``(alpha, shifts, beads, used)``."""
    used = _usable(mask)
    alpha = alpha0
    for _ in range(4):
        if fit_alpha:
            alpha = _best_alpha(points, used, theta, centre, alpha)
        alpha = 0.0 if alpha is None else alpha
        shifts, beads, _ = _solve(points, used, theta, alpha, centre)
        resid = np.linalg.norm(points - _predict(beads, shifts, theta, alpha, centre), axis=-1)
        limit = max(OUTLIER_SIGMAS * 1.4826 * float(np.median(resid[used])), 0.75)
        bad = used & (resid > limit)
        if not bad.any():
            break
        used = _usable(used & ~bad)
    return alpha, shifts, beads, used


# -------------------------------------------------------------------------------------------------
# tracking
# -------------------------------------------------------------------------------------------------
def _vote_shift(found: np.ndarray, predicted: np.ndarray, tol: float, max_shift: float) -> np.ndarray | None:
    """The common displacement of predictions onto detections that most pairs agree on."""
    diffs = (found[:, None, :] - predicted[None, :, :]).reshape(-1, 2)
    diffs = diffs[np.linalg.norm(diffs, axis=1) <= max_shift]
    if len(diffs) == 0:
        return None
    votes = cKDTree(diffs).query_ball_point(diffs, r=tol, return_length=True)
    best = int(np.argmax(votes))
    if votes[best] < min(3, len(predicted)):
        return None
    near = np.linalg.norm(diffs - diffs[best], axis=1) <= tol
    return np.median(diffs[near], axis=0)


def _match(found: np.ndarray, predicted: np.ndarray, tol: float) -> np.ndarray:
    """Detection index for each prediction (-1 where none lies within ``tol``), one to one."""
    out = np.full(len(predicted), -1)
    if len(found) == 0 or len(predicted) == 0:
        return out
    cost = np.linalg.norm(predicted[:, None, :] - found[None, :, :], axis=-1)
    rows, cols = linear_sum_assignment(np.where(cost <= tol, cost, 1e6))
    ok = cost[rows, cols] <= tol
    out[rows[ok]] = cols[ok]
    return out


def _seeds(found: np.ndarray, shape, radius: float, max_beads: int) -> np.ndarray:
    """Strong, isolated beads away from the edges of the zero tilt (pairs closer than 3 radii confuse
    the matching and are dropped)."""
    if len(found) == 0:
        return found[:, :2]
    pos = found[:, :2]
    edge = 2 * radius + 2
    inside = np.all((pos >= edge) & (pos <= np.array(shape) - 1 - edge), axis=1)
    dist, _ = cKDTree(pos).query(pos, k=2) if len(pos) > 1 else (np.full((1, 2), np.inf), None)
    isolated = dist[:, 1] >= 3 * radius
    return pos[inside & isolated][:max_beads]


def _track_side(points, mask, found, side, theta, alpha, centre, tol, max_shift, step, blind: bool):
    """Follow the beads from the zero tilt (``side[0]``) through the tilts of ``side``, in place.

    Until five tilts are tracked a bead is predicted where it was on the previous tilt; from then on
    from the model fitted so far (refitted every fourth tilt). Returns the axis angle found."""
    shifts = np.zeros((len(theta), 2))
    beads, scanned_at = None, 2.5
    for count in range(1, len(side)):
        i, prev = side[count], side[count - 1]
        n_tracked = int(mask.any(axis=1).sum())
        if n_tracked >= 5 and (beads is None or count % 4 == 0):
            # a blind axis is scanned afresh each time the tracked tilts double: the first tilts
            # near zero barely constrain it
            rescan = blind and n_tracked >= 2 * scanned_at
            scanned_at = n_tracked if rescan else scanned_at
            alpha, fit_shifts, beads, _ = _fit(points, mask, theta, centre, None if rescan else alpha,
                                               fit_alpha=True)
            rows = mask.any(axis=1)
            shifts[rows] = fit_shifts[rows]
        tracked = np.nonzero(mask[prev])[0] if beads is None else np.nonzero(mask.any(axis=0))[0]
        if beads is None:
            pred = points[prev, tracked]
        else:
            pred = (_predict(beads, shifts, theta, alpha, centre)[i] - shifts[i] + shifts[prev])[tracked]
        move = _vote_shift(found[i][:, :2], pred, tol, max_shift)
        step()
        if move is None:
            continue
        pick = _match(found[i][:, :2], pred + move, tol)
        hit = pick >= 0
        points[i, tracked[hit]] = found[i][pick[hit], :2]
        mask[i, tracked[hit]] = True
        shifts[i] = shifts[prev] + move
    return alpha


@dataclass(frozen=True)
class BeadModel:
    """Beads tracked through a tilt series and the alignment they give.

    Attributes
    ----------
    points : (N, M, 2) float
        Bead centres (y, x) found on each tilt, pixels; NaN where a bead was not found.
    used : (N, M) bool
        Points that entered the fit (found and explained by the model).
    fitted : (N, M, 2) float
        Model positions of every bead on every tilt.
    beads : (M, 3) float
        Bead positions (x, y, z) in the volume, pixels from its centre (z along the beam at zero tilt).
    shifts : (N, 2) float
        (dy, dx) shift of each tilt, raw pixels, with the gauge of :class:`TiltAlignment` removed.
    tilt_axis_angle : float
        Degrees counter-clockwise on screen from the image Y axis.
    angles : (N,) float
    shape : (Y, X)
    pixel_size : float
    """

    points: np.ndarray
    used: np.ndarray
    fitted: np.ndarray
    beads: np.ndarray
    shifts: np.ndarray
    tilt_axis_angle: float
    angles: np.ndarray
    shape: tuple[int, int]
    pixel_size: float = 1.0

    @property
    def residuals(self) -> np.ndarray:
        """(N, M) distance from each used point to the model, pixels (NaN where not used)."""
        d = np.linalg.norm(self.points - self.fitted, axis=-1)
        return np.where(self.used, d, np.nan)

    @property
    def rms_px(self) -> float:
        """Mean residual over the used points, pixels (IMOD's "residual error mean")."""
        r = self.residuals[self.used]
        return float(np.sqrt(np.mean(r**2))) if r.size else float("nan")

    def to_alignment(self) -> TiltAlignment:
        """The same alignment as a :class:`TiltAlignment` for :func:`~napari_cryomat.core.tilt.reconstruct`.

        Its ``residuals`` are each tilt's RMS bead residual in pixels (NaN for a tilt with no bead)."""
        r2 = np.where(self.used, self.residuals, 0.0) ** 2
        count = self.used.sum(axis=1)
        per_tilt = np.full(len(r2), np.nan)
        per_tilt[count > 0] = np.sqrt(r2.sum(axis=1)[count > 0] / count[count > 0])
        return TiltAlignment(shifts=self.shifts.copy(), tilt_axis_angle=self.tilt_axis_angle,
                             residuals=per_tilt, angles=self.angles.copy(), shape=self.shape,
                             pixel_size=self.pixel_size)


def _remove_gauge(shifts: np.ndarray, beads: np.ndarray, theta: np.ndarray, alpha: float,
                  measured: np.ndarray | None = None):
    """The shift convention of TiltAlignment (no mean along the axis, no ``x0 cosθ + z0 sinθ``
    across it), with the beads moved by what left the shifts so every model position stays put and
    the beads sit where the reconstruction puts them. Only ``measured`` tilts (those with beads)
    decide the gauge."""
    rot = rotation(alpha)
    t = shifts @ rot
    basis = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    known = np.ones(len(theta), bool) if measured is None else measured
    (x0, z0), *_ = np.linalg.lstsq(basis[known], t[known, 1], rcond=None)
    y0 = t[known, 0].mean()
    t[:, 0] -= y0
    t[:, 1] -= basis @ (x0, z0)
    return t @ rot.T, beads + np.array([x0, y0, z0])


def _model(points, mask, angles, shape, px, alpha0, fit_alpha) -> BeadModel:
    theta = np.deg2rad(angles)
    centre = (np.array(shape, float) - 1) / 2
    alpha, shifts, beads, used = _fit(points, mask, theta, centre, alpha0, fit_alpha)
    seen = used.any(axis=0)
    measured = used.any(axis=1)
    # a tilt with no bead has no shift of its own: take it from its neighbours in angle
    for d in range(2):
        shifts[~measured, d] = np.interp(angles[~measured], angles[measured], shifts[measured, d])
    shifts, beads = _remove_gauge(shifts, beads, theta, alpha, measured)
    fitted = _predict(beads, shifts, theta, alpha, centre)
    # beads seen on too few tilts carry no fit: their model positions are meaningless
    fitted[:, ~seen] = np.nan
    return BeadModel(points=np.where(mask[..., None], points, np.nan), used=used, fitted=fitted,
                     beads=np.where(seen[:, None], beads, np.nan), shifts=shifts,
                     tilt_axis_angle=alpha, angles=np.asarray(angles, float).copy(), shape=tuple(shape),
                     pixel_size=px)


def fit_bead_model(points, angles, *, shape, tilt_axis_angle: float | None = None,
                   pixel_size: float = 1.0) -> BeadModel:
    """Alignment from bead positions already tracked (e.g. from an IMOD fiducial model).

    Parameters
    ----------
    points : (N, M, 2) array
        (y, x) of bead ``j`` on tilt ``i``, pixels; NaN where not seen.
    angles : (N,) array
        Tilt angles, degrees.
    shape : (Y, X)
        Size of the tilt images.
    tilt_axis_angle : float, optional
        Known axis angle (degrees CCW on screen from Y), refined within ±6°; None searches all angles.
    pixel_size : float
        Å per pixel (kept with the result).
    """
    raw = np.asarray(points)
    if raw.ndim != 3 or raw.shape[2] != 2 or not (np.issubdtype(raw.dtype, np.integer)
                                                  or np.issubdtype(raw.dtype, np.floating)):
        raise ValueError(f"points must be a real (N tilts, M beads, 2) array of (y, x) pixels; got "
                         f"{raw.dtype} of shape {raw.shape}.")
    pts = raw.astype(float)
    n, m = pts.shape[:2]
    size = vector(shape, "shape", length=2, high=1e6, all_positive=True, unit="pixels")
    if size.min() < 8:
        raise ValueError(f"shape must be the (Y, X) size of the tilts, at least 8 x 8 pixels; got {tuple(shape)}.")
    a = check_tilt_angles(angles, n)
    if np.isinf(pts).any() or (np.abs(np.nan_to_num(pts)) > 2 * size.max()).any():
        raise ValueError(f"points must lie near the {size[0]:g} x {size[1]:g} image (NaN marks a bead not seen "
                         "on a tilt); got inf or a point far outside it.")
    px = positive(pixel_size, "pixel_size", unit="Å")
    alpha = number(tilt_axis_angle, "tilt_axis_angle", low=-360, high=360, unit="degrees", allow_none=True)
    mask = np.isfinite(pts).all(axis=-1)
    if _usable(mask).sum(axis=0).astype(bool).sum() < 3:
        raise ValueError(f"points must hold at least 3 beads each seen on 3 or more tilts; got {m} beads "
                         f"with {int(mask.sum())} positions in all.")
    with threadpool_limits(1, user_api="blas"):  # a few hundred unknowns: threads only cost
        return _model(np.nan_to_num(pts), mask, a, (int(size[0]), int(size[1])), px, alpha, True)


def track_beads(tilts, angles, *, bead_diameter: float, pixel_size: float = 1.0,
                tilt_axis_angle: float | None = None, polarity: str = "auto", max_beads: int = 60,
                max_shift: float | None = None, min_score: float = 4.5,
                progress: ProgressCallback = None) -> BeadModel:
    """Find gold beads on the tilt nearest zero, follow them through the series, fit the alignment.

    Parameters
    ----------
    tilts : (N, Y, X) array
    angles : (N,) array
        Tilt angles, degrees (strictly monotonic, as for :func:`~napari_cryomat.core.tilt.reconstruct`).
    bead_diameter : float
        Å (10 nm gold: 100).
    pixel_size : float
        Å per pixel.
    tilt_axis_angle : float, optional
        Known axis angle, degrees CCW on screen from Y (refined within ±6°); None finds it.
    polarity : {"auto", "dark", "bright"}
    max_beads : int
        Most beads followed (the strongest isolated ones on the zero tilt).
    max_shift : float, optional
        Largest change of shift between neighbouring tilts, Å (default half the image: the vote over
        all bead pairs finds large shifts as surely as small ones).
    min_score : float
        Detection threshold, robust standard deviations of the blob filter.

    Returns
    -------
    BeadModel
        ``.to_alignment()`` gives the :class:`TiltAlignment` for reconstruction.
    """
    arr, a = check_tilt_series(tilts, angles)
    px = positive(pixel_size, "pixel_size", unit="Å")
    n, h, w = arr.shape
    radius = positive(bead_diameter, "bead_diameter", unit="Å") / px / 2
    if radius < 0.5 or radius > min(h, w) / 8:
        raise ValueError(f"bead_diameter must be between 1 pixel and a quarter of the image ({px:g} to "
                         f"{px * min(h, w) / 4:g} Å at pixel_size {px:g} Å); got {2 * radius * px:g} Å.")
    alpha = number(tilt_axis_angle, "tilt_axis_angle", low=-360, high=360, unit="degrees", allow_none=True)
    pol = choice(polarity, "polarity", ("auto", "dark", "bright"))
    nmax = integer(max_beads, "max_beads", low=3, high=10_000)
    ms = positive(max_shift, "max_shift", unit="Å", allow_none=True)
    ms_px = min(h, w) / 2 if ms is None else ms / px
    thr = number(min_score, "min_score", low=0.5, high=1e3)

    zero = int(np.argmin(np.abs(a)))
    pol = _polarity(arr[zero], radius) if pol == "auto" else pol
    detect = sub_progress(progress, 0.0, 0.5)
    found = []
    for i in range(n):
        found.append(_detect(arr[i], radius, pol, thr))
        report(detect, (i + 1) / n)
    seeds = _seeds(found[zero], (h, w), radius, nmax)
    if len(seeds) < 3:
        raise ValueError(f"bead_diameter: found {len(seeds)} isolated beads of {2 * radius * px:g} Å on the "
                         f"{a[zero]:g}° tilt (3 or more needed). Check the bead size and pixel size, lower "
                         f"min_score ({thr:g}), or use fiducial-free alignment.")
    points = np.zeros((n, len(seeds), 2))
    mask = np.zeros((n, len(seeds)), bool)
    points[zero], mask[zero] = seeds, True
    order = np.argsort(a)
    pos = int(np.nonzero(order == zero)[0][0])
    up, down = list(order[pos:]), list(order[pos::-1])
    tol = max(2.0, radius)
    with threadpool_limits(1, user_api="blas"):  # the model has a few hundred unknowns: threads only cost
        return _track_and_fit(points, mask, found, (up, down), a, (h, w), px, alpha, tol, ms_px, progress, n)


def _track_and_fit(points, mask, found, sides, a, shape, px, alpha, tol, ms_px, progress, n) -> BeadModel:
    track = sub_progress(progress, 0.5, 0.95)
    done = [0]

    def step():
        done[0] += 1
        report(track, done[0] / max(n - 1, 1))

    theta = np.deg2rad(a)
    centre = (np.array(shape, float) - 1) / 2
    blind = alpha is None
    for side in sides:
        alpha = _track_side(points, mask, found, side, theta, alpha, centre, tol, ms_px, step, blind)
    # final pass: every tilt against the full model (fills gaps, replaces mismatches); a tilt the
    # tracking lost starts from the shift of the nearest tilt that has beads
    alpha, shifts, beads, used = _fit(points, mask, theta, centre, alpha, fit_alpha=True)
    if not used.any():
        raise ValueError("bead_diameter: the beads found on the zero tilt could not be followed through the "
                         "series (too few, too faint, or not beads). Check the bead size, lower min_score, or "
                         "use fiducial-free alignment.")
    pattern = _predict(beads, np.zeros_like(shifts), theta, alpha, centre)
    measured = np.nonzero(used.any(axis=1))[0]
    for i in range(n):
        near = measured[np.argmin(np.abs(a[measured] - a[i]))]
        guess = shifts[i] if used[i].any() else shifts[near]
        move = _vote_shift(found[i][:, :2], pattern[i] + guess, tol, ms_px)
        pick = _match(found[i][:, :2], pattern[i] + guess + (0 if move is None else move), tol)
        mask[i] = pick >= 0
        points[i, mask[i]] = found[i][pick[mask[i]], :2]
    report(progress, 1.0)
    return _model(points, mask, a, shape, px, alpha, True)
