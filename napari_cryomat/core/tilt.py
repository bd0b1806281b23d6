"""Cryo-electron tomography from a single-axis tilt series: alignment and reconstruction.

Reading stacks and angle files (``.tlt``, ``.rawtlt``, ``.mdoc``, FEI/SerialEM extended headers) is
in :mod:`napari_cryomat.io.tilt`.

Geometry
--------
After alignment the tilt axis is the image Y axis, and the projection at tilt θ is the line
integral of the volume ``V(z, y, x)`` along the beam after rotating it by θ about Y::

    P_θ(y, u) = ∫∫ V(z, y, x) δ(u - x cosθ - z sinθ) dx dz

with every coordinate measured from the centre of its axis (voxel ``j`` of ``n`` at ``j - (n-1)/2``).
A point at ``(z, x)`` projects to ``u = x cosθ + z sinθ``; at θ = 0 the projection is the sum over Z.
Values are line integrals in pixel units, so a reconstruction from projections has the density
per pixel of the volume that made them, whatever the pixel size.

Raw tilts relate to aligned ones by a rotation and a shift per tilt (:class:`TiltAlignment`):
``tilts[i](r) ≈ rotated_i(r - shifts[i])``, where ``rotated_i`` is the aligned tilt turned
counter-clockwise on screen by ``tilt_axis_angle`` about the image centre (shifts are (dy, dx) in
raw pixels, as for drift correction; with a zero axis angle ``tilts[i](r) ≈ aligned_i(r - shifts[i])``).

Input is taken as it comes: a bright-field stack (dense = dark) reconstructs to a volume where
dense is dark, as in IMOD without ``LOG``; pass ``-tilts`` (or ``-log`` of normalised counts) to get
density bright and positive, which is what ``positivity`` in SIRT assumes.

Methods: weighted back-projection (ramp filter, a fast preview), SIRT on all Y slices at once with
one sparse projector (:mod:`._tilt_projector`), and model-based iterative reconstruction through
svmbir when installed (optional extra ``svmbir``). Alignment (:mod:`._tilt_align`) is fiducial-free:
IMOD-style cosine-stretched cross-correlation, refined by projection matching; the tilt-axis angle is
best given (a rough scan for the best reprojection agreement otherwise).
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core import _tilt_align as _al
from napari_cryomat.core import _tilt_projector as _pj
from napari_cryomat.core import _tilt_sirt as _sirt
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress
from napari_cryomat.core._tilt_axis import TiltAxisWarning  # the warning align_tilt_series gives
from napari_cryomat.core._tilt_contrast import NoSharedContrast
from napari_cryomat.core._tilt_result import ShiftBeyondFieldError, TiltAlignment
from napari_cryomat.core._validate import (
    check_memory,
    choice,
    integer,
    number,
    positive,
    real_array,
    vector,
)

__all__ = [
    "ShiftBeyondFieldError",
    "TiltAlignment",
    "TiltAxisWarning",
    "align_tilt_series",
    "reconstruct",
    "project_volume",
    "check_tilt_series",
    "check_tilt_angles",
]

#: Smallest tilt range that carries 3D information worth reconstructing (degrees).
MIN_TILT_RANGE = 20.0
#: Largest |tilt| accepted: at 90° the beam runs along the specimen and cos θ vanishes.
MAX_TILT = 85.0


# -------------------------------------------------------------------------------------------------
# checks
# -------------------------------------------------------------------------------------------------
def check_tilt_series(tilts, angles, *, copies: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """``(tilts as float32 (N, Y, X), angles as float64 (N,))`` or a ValueError naming the parameter.

    Refuses: not 3D, a single tilt, images under 8 pixels, NaN/inf pixels, angles that are not N
    finite numbers, that are not strictly monotonic, beyond ±85°, or spanning less than 20°.
    """
    arr = real_array(tilts, "tilts", ndim=3, copies=copies, axes="(tilt, Y, X)", what="tilt series")
    n = arr.shape[0]
    if n < 2:
        raise ValueError(f"tilts must hold at least 2 tilts (a tilt series); got {n} (shape {arr.shape}).")
    if min(arr.shape[1:]) < 8:
        raise ValueError(f"tilts must be images of at least 8 x 8 pixels; got shape {arr.shape}.")
    return arr, check_tilt_angles(angles, n)


def check_tilt_angles(angles, n: int) -> np.ndarray:
    """``angles`` as float64 (n,) or a ValueError: n finite numbers, strictly monotonic, within ±85°,
    spanning at least 20° (for tilt data that come without images, e.g. tracked bead positions)."""
    a = np.asarray(angles) if not isinstance(angles, np.ndarray) else angles
    if np.ndim(a) != 1 or np.size(a) != n:
        raise ValueError(f"angles must hold one tilt angle per tilt ({n} values, degrees); got shape {np.shape(a)}.")
    a = vector(a, "angles", length=n, unit="degrees")
    d = np.diff(a)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise ValueError("angles must be strictly monotonic (tilts in order of tilt angle, no repeats); "
                         f"got {np.array2string(a, precision=1, threshold=8)}.")
    if np.max(np.abs(a)) > MAX_TILT:
        raise ValueError(f"angles must lie within ±{MAX_TILT:g} degrees; got {np.max(np.abs(a)):g}.")
    if np.ptp(a) < MIN_TILT_RANGE:
        raise ValueError(f"angles must span at least {MIN_TILT_RANGE:g} degrees to reconstruct; "
                         f"got {np.ptp(a):.3g} ({a.min():g} to {a.max():g}).")
    return a


# -------------------------------------------------------------------------------------------------
# alignment
# -------------------------------------------------------------------------------------------------
def align_tilt_series(tilts, angles, *, pixel_size: float = 1.0, tilt_axis_angle: float | None = None,
                      refine_tilt_axis: bool = False, max_shift: float | None = None,
                      thickness: float | None = None, iterations: int = 4,
                      progress: ProgressCallback = None) -> TiltAlignment:
    """Fiducial-free alignment: per-tilt shifts and the tilt-axis angle.

    Parameters
    ----------
    tilts : (N, Y, X) array
        Raw tilt series, in the order of ``angles``.
    angles : (N,) array
        Tilt angles in degrees, strictly monotonic, spanning at least 20°, within ±85°.
    pixel_size : float
        Å per pixel (for ``max_shift`` and ``thickness``, given in Å).
    tilt_axis_angle : float, optional
        Axis angle (degrees CCW on screen from Y), e.g. from the microscope or the ``.mdoc``. Give it
        when known: without it a rough estimate (a few degrees) is made by scanning angles for the best
        agreement of the aligned tilts with their reprojections, on a small copy.
    refine_tilt_axis : bool
        Refine the angle by the agreement of tilts with their reprojections (experimental: it can
        walk away from a good starting angle on weakly structured specimens).
    max_shift : float, optional
        Largest shift between neighbouring tilts, Å (default a quarter of the image).
    thickness : float, optional
        Specimen thickness for the reprojections, Å (default the image width).
    iterations : int
        Projection-matching passes per stage.

    Returns
    -------
    TiltAlignment

    Notes
    -----
    Coarse to fine on binned copies (the finest keeps ~16 counts per pixel for count data and at most
    256 pixels; then 2x and 4x coarser), on ``-log`` of the counts when the input is non-negative:
    shifts by cosine-stretched cross-correlation of tilt pairs (neighbours and up to 3 apart, as IMOD
    tiltxcorr stretches neighbours) solved all at once by robust least squares, so that one pair
    locked onto a wrong pattern is outvoted instead of moving every tilt beyond it; then projection
    matching at each level (each tilt against its leave-one-out reprojection from a weighted
    back-projection of the others, up to ``iterations`` passes per level). The shifts carry no gauge:
    their mean along the axis and any ``x0 cosθ + z0 sinθ`` across it (a translation of the volume)
    are removed. Last, the axis position across the axis (a constant shift of all tilts, which the
    data barely fix: only 18 % of it changes the projections) is set where the weighted
    back-projection is sharpest (:mod:`._tilt_centre`). At low dose (count data binned for the finest
    level, frames up to 96 px there), a last stage matches each tilt in count space, by Poisson likelihood,
    to its reprojection from a positivity-constrained SIRT of the tilts outside its fold
    (:mod:`._tilt_refine`): a reference that pools all tilts through positivity instead of echoing each
    tilt's noisy neighbours; one more pass fits the counts binned half as much against that reference
    upsampled. When the axis angle is not given, the same stage's held-out likelihood sets it
    (:mod:`._tilt_axis`: trial angles 1° apart, the shifts re-fitted at each, a parabola through the
    best; up to 25° from the first estimate), each tilt's reference made without its contiguous
    quarter of the tilt range (a reference from its next neighbours turns with a wrong axis) and each
    tilt's likelihood weighted by ``sin²θ`` (what a wrong axis leaves unfitted grows with the tilt).
    The residuals are those of the final angle and shifts. Accuracy on the benchmark phantoms (256², 61
    tilts, ±20 px, 1 count/px): axis given, 0.41-0.54 px RMS on seeds 0-5 and 0.51-0.64 px on seeds 31-35,
    never used in development (0.74-1.30 px on seeds 0-5 before the count-space stage); the Cramér-Rao
    bound of the data is 0.21-0.29 px (``benchmarks/tilt.py --oracle``). Blind, the axis comes within
    0.04-1.06° on seeds 0-4, 41-45, 51-58 (mean 0.31°, 11 of 18 within 0.3°) and 0.01-0.98° on seeds 61-70,
    never used in development (mean 0.51°, 3 of 10; the first estimate 15-21° off on three of them); the
    shifts 0.41-0.62 px where the search stayed within 10° of the first estimate. Since the first estimate
    compares the round area every rotation keeps, on trial angles off the pixel axes: 0.03-0.81° on
    never-seen seeds 161-168 (mean 0.47°, 2 of 8 within 0.3°; shifts 0.53 px). Since it weights the
    tilts' agreement by ``sin²θ``: 0.05-0.57° on never-seen seeds 191-198 (mean 0.31°, 3 of 8 within
    0.3°; shifts 0.52 px), where the plain mean had left one first estimate 70° off (seed 193: axis -70.4°,
    shifts 8.5 px; now +0.53°, 0.75 px).
    Bead-only specimens (gold on thin ice): 0.41, 0.79 and 0.50 px at 5, 20 and 100 counts/px.
    The likelihood search reaches 25° from the coarse scan's estimate: where the scan's two best maxima
    (30° or more apart) score within 2 standard errors of each other, the alignment is run from both and
    the likelier counts kept (a phantom started 70° off alone ends 73° off without a word).

    Warns :class:`TiltAxisWarning` when the blind search stopped at its reach with the likelihood still
    rising (the angle and shifts are then probably wrong: give ``tilt_axis_angle``); the warning carries
    ``kind`` (``"search_at_reach"``), ``start``, ``found`` and ``reach`` (degrees) besides its text.

    Raises :class:`ShiftBeyondFieldError` (a ValueError) when the tilts share too little detectable
    contrast, and gold-bead alignment (:func:`.fiducials.track_beads`) is the way: when neighbouring
    tilts correlate no better than they do with one tilt's pixels shuffled (a rank test over the
    neighbour pairs, :mod:`._tilt_contrast`, from 9 tilts on), or when the shifts found reach beyond
    half the field.
    """
    px = positive(pixel_size, "pixel_size", unit="Å")
    arr, a = check_tilt_series(tilts, angles, copies=3.0)
    if float(np.min(arr.std(axis=(1, 2)))) <= 0:
        raise ValueError("tilts holds a constant image (no contrast to align on); remove that tilt first.")
    alpha = number(tilt_axis_angle, "tilt_axis_angle", low=-360, high=360, unit="degrees", allow_none=True)
    h, w = arr.shape[1:]
    ms = positive(max_shift, "max_shift", unit="Å", allow_none=True)
    ms_px = min(h, w) / 4 if ms is None else min(ms / px, min(h, w) / 2 - 2)
    th = positive(thickness, "thickness", unit="Å", allow_none=True)
    nz = None if th is None else integer(max(1, round(th / px)), "thickness", low=1, high=8 * max(h, w))
    iters = integer(iterations, "iterations", low=1, high=50)
    order = np.argsort(a)
    from threadpoolctl import threadpool_limits

    try:
        # one BLAS thread: its matrix products are the small matrix DFTs of the sub-pixel peaks (21 x 256 x 129),
        # where OpenBLAS's threads only wait on each other, the longer the busier the cores (a 61-tilt 256² bead
        # series, 2 cores at load 4: 906 peaks 9.2 s with 2 threads, 0.3 s with one; the whole alignment 27 -> 12 s)
        with threadpool_limits(1, user_api="blas"):
            shifts_s, alpha_out, peaks_s = _al.align(arr[order], a[order], n_z=nz, max_shift=ms_px, alpha=alpha,
                                                     refine_alpha=bool(refine_tilt_axis),
                                                     iterations=iters, progress=progress)
    except NoSharedContrast as exc:
        raise ShiftBeyondFieldError(
            f"tilts: {exc}: the tilts share too little detectable contrast (a thin specimen with only gold "
            f"beads, or a very low dose), and shifts fitted to noise wander, up to beyond half the {h} x {w} "
            "field.") from None
    alpha_out = float(((alpha_out + 90) % 180) - 90)
    shifts = np.empty_like(shifts_s)
    peaks = np.empty_like(peaks_s)
    shifts[order], peaks[order] = shifts_s, peaks_s
    _refuse_beyond_field(shifts, (h, w))
    report(progress, 1.0)
    return TiltAlignment(shifts=shifts, tilt_axis_angle=alpha_out, residuals=1 - peaks, angles=a.copy(),
                         shape=(h, w), pixel_size=px, correlation=peaks)


def _refuse_beyond_field(shifts: np.ndarray, shape: tuple[int, int]) -> None:
    """A tilt moved by more than half the field shares too little with the others to have been aligned
    on them: such shifts come from correlations of noise (or of a repeated pattern), not the specimen."""
    over = np.abs(shifts) / (np.array(shape) / 2)
    if float(over.max()) > 1:
        i = int(np.argmax(over.max(axis=1)))
        raise ShiftBeyondFieldError(
            f"tilts: fiducial-free alignment found a shift of ({shifts[i, 0]:.0f}, {shifts[i, 1]:.0f}) px for tilt {i}, "
            f"beyond half the {shape[0]} x {shape[1]} field: the tilts share too little detectable contrast (a thin "
            "specimen with only gold beads, or a very low dose).")


# -------------------------------------------------------------------------------------------------
# reconstruction
# -------------------------------------------------------------------------------------------------
def _columns(aligned: np.ndarray, y0: int, y1: int) -> np.ndarray:
    """Projections of Y slices y0:y1 as ``(N * n_u, y1 - y0)`` columns."""
    n, _, n_u = aligned.shape
    return np.ascontiguousarray(np.asarray(aligned[:, y0:y1, :], np.float32).transpose(0, 2, 1)).reshape(n * n_u, -1)


def reconstruct(tilts, angles, *, alignment: TiltAlignment | None = None, method: str = "sirt",
                iterations: int = 50, thickness: float | None = None, pixel_size: float = 1.0,
                positivity: bool = False, lowpass: float | None = None, relaxation: float = 1.9,
                start: str = "zero", early_stop: bool = True, out=None, info: dict | None = None,
                progress: ProgressCallback = None) -> np.ndarray:
    """Reconstruct a (Z, Y, X) float32 volume from a tilt series.

    Parameters
    ----------
    tilts : (N, Y, X) array
        Projections; raw if ``alignment`` is given (it is applied first), else already aligned
        (tilt axis along Y through the centre).
    angles : (N,) array
        Tilt angles in degrees (see :func:`check_tilt_series`).
    alignment : TiltAlignment, optional
        From :func:`align_tilt_series`.
    method : {"sirt", "wbp", "mbir"}
        ``"wbp"``: weighted (ramp-filtered) back-projection, a fast preview; ``"sirt"``: the
        simultaneous iterative reconstruction technique on a sparse projector; ``"mbir"``:
        model-based iterative reconstruction with svmbir (optional extra ``svmbir``).
    iterations : int
        SIRT: the most iterations (1..10000). With ``early_stop`` (default) SIRT stops sooner on noisy
        tilts, where more iterations would fit the noise; on clean data all of them run.
    thickness : float, optional
        Z extent of the volume, Å (default the width of the aligned tilts).
    pixel_size : float
        Å per pixel.
    positivity : bool
        SIRT: clip negative densities after each iteration (for density-positive input).
    lowpass : float, optional
        WBP: Gaussian roll-off of the ramp filter above this fraction of Nyquist (0..1).
    relaxation : float
        SIRT step λ (0 < λ < 2). Default 1.9: the same path as classic SIRT (λ = 1) about twice as fast.
        Without a stop that knows the noise, λ = 1 was the safer default, since its slowness kept shot
        noise out; ``early_stop`` now decides where to stop (measurements in the Notes).
    start : {"zero", "wbp"}
        SIRT starting volume. ``"wbp"`` converges fastest on clean data but starts from the
        back-projection's full-band noise, which SIRT then never removes: keep ``"zero"`` for low-dose
        data.
    early_stop : bool
        SIRT: stop at the iteration where the volume best predicts tilts it was not fitted to (a pilot on
        32 Y slices leaves out every sixth interior tilt; then every slice is reconstructed from all
        tilts with that count). Needs at least 12 tilts; ``False`` runs all ``iterations``.
    out : array-like, optional
        Where to write the volume (e.g. a ``numpy.memmap`` of an MRC file being written), for
        volumes larger than memory; Y slabs are computed and written one at a time.
    info : dict, optional
        Filled with what the run did: ``method``; for SIRT ``iterations`` (the count it ran),
        ``max_iterations`` and ``stopped_early`` (so a caller can say where the early stop stopped).

    Returns
    -------
    (Z, Y, X) float32 array (``out`` when given).

    Notes
    -----
    Default SIRT (λ = 1.9 from zero, early stop) against classic SIRT (λ = 1 from zero, 50 iterations),
    normalised RMS error in the region every tilt sees, 128³ phantoms, 61 tilts, positivity, seeds 0 / 5:
    noise-free 0.226 / 0.245 instead of 0.293 / 0.316 (no stop: all 50 run); 100 counts/px 0.413 / 0.429
    instead of 0.414 / 0.426 (stopped after 26 / 30); 10 counts/px 0.698 / 0.664 instead of 1.081 / 1.021
    (stopped after 6: beyond that SIRT fits noise). The pilot costs up to 32 slices' worth of iterations
    (an eighth more at 256³ when nothing stops it). Slabs of Y slices run on all cores (scipy's sparse
    products release the GIL).
    """
    px = positive(pixel_size, "pixel_size", unit="Å")
    method = choice(method, "method", ("sirt", "wbp", "mbir"))
    iters = integer(iterations, "iterations", low=1, high=10_000)
    cutoff = number(lowpass, "lowpass", low=0, high=1, low_open=True, allow_none=True)
    lam = number(relaxation, "relaxation", low=0, high=2, low_open=True, high_open=True)
    start = choice(start, "start", ("zero", "wbp"))
    if info is not None and not isinstance(info, dict):
        raise ValueError(f"info must be a dict (filled with what the run did) or None; got {type(info).__name__}.")
    info = {} if info is None else info  # filled only once the run has succeeded
    arr, a = check_tilt_series(tilts, angles, copies=1.0)
    if alignment is not None:
        if not isinstance(alignment, TiltAlignment):
            raise ValueError(f"alignment must be a TiltAlignment from align_tilt_series; got {type(alignment).__name__}.")
        if len(alignment.angles) != len(a):
            raise ValueError(f"alignment is for {len(alignment.angles)} tilts but tilts holds {len(a)}.")
        arr = alignment.apply(arr)
    n, ny, nx = arr.shape
    th = positive(thickness, "thickness", unit="Å", allow_none=True)
    nz = nx if th is None else max(1, int(round(th / px)))
    nz = integer(nz, "thickness", low=1, high=8 * max(ny, nx))
    if out is None:
        check_memory(4.0 * nz * ny * nx, "thickness", f"a {nz} x {ny} x {nx} volume")
        out = np.empty((nz, ny, nx), np.float32)
    elif tuple(np.shape(out)) != (nz, ny, nx):
        raise ValueError(f"out must have shape {(nz, ny, nx)} (Z, Y, X); got {tuple(np.shape(out))}.")
    if method == "mbir":
        from napari_cryomat.core._tilt_mbir import mbir

        out[...] = mbir(arr, a, nz, positivity=bool(positivity), iterations=min(iters, 1000), progress=progress)
        info.update(method=method)
        return out
    proj = _pj.SliceProjector(a, nz, nx, nx)
    report(progress, 0.05)

    def write(y0, y1, x):
        out[:, y0:y1, :] = x.reshape(nz, nx, y1 - y0).transpose(0, 2, 1)

    if method == "sirt":
        ran = _sirt.reconstruct_slabs(proj, _sirt.Columns(arr), write, iterations=iters, relaxation=lam,
                                      positivity=bool(positivity), from_wbp=start == "wbp",
                                      early_stop=bool(early_stop), progress=sub_progress(progress, 0.05, 1.0))
        info.update(method=method, iterations=int(ran), max_iterations=iters, stopped_early=bool(ran < iters))
        return out
    # WBP: Y slabs of what 256 MB of columns allow
    step = max(1, min(ny, (256 << 20) // (4 * nz * nx)))
    for y0 in range(0, ny, step):
        y1 = min(ny, y0 + step)
        write(y0, y1, _pj.wbp_columns(proj, _columns(arr, y0, y1), cutoff=cutoff))
        report(progress, 0.05 + 0.95 * y1 / ny)
    info.update(method=method)
    return out


def project_volume(volume, angles) -> np.ndarray:
    """Projections (N, Y, X) of a (Z, Y, X) volume at ``angles`` (degrees), with the geometry of
    :func:`reconstruct` (X detector bins, tilt axis along Y): the forward model SIRT inverts."""
    vol = real_array(volume, "volume", ndim=3, axes="(Z, Y, X)")
    a = vector(angles, "angles", length=range(1, 1001), unit="degrees", high=MAX_TILT)
    nz, ny, nx = vol.shape
    check_memory(4.0 * a.size * ny * nx, "angles", f"{a.size} projections of {ny} x {nx}")
    proj = _pj.SliceProjector(a, nz, nx, nx)
    cols = np.ascontiguousarray(vol.transpose(0, 2, 1)).reshape(nz * nx, ny)
    p = proj.forward(cols)
    return np.ascontiguousarray(p.reshape(a.size, nx, ny).transpose(0, 2, 1), dtype=np.float32)
