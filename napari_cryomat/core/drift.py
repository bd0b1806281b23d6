"""Low-dose frame alignment (drift correction), aligned and dose-weighted sums, half-sum FRC.

Sign convention (binding everywhere in napari-cryomat)
-------------------------------------------------------
``shifts[i] = (dy, dx)`` in pixels is the displacement of frame i's content relative to frame 0::

    frame_i(r) ≈ frame_0(r - shifts[i]),   shifts[0] == (0, 0)

so the aligned frame is ``frame_i(r + shifts[i])`` (:func:`apply_drift`).

Method (:func:`estimate_drift`)
-------------------------------
1. Each frame is gain-corrected (multiplied by the gain reference), defect pixels are replaced
   by the frame mean and the mean is removed; the spectrum (``scipy.fft.rfft2``, float32) is
   Fourier-cropped to at most ``max_size`` pixels (binning by Fourier cropping, as MotionCor2
   does for large frames). A real-space Tukey window (cosine edge taper) is applied before every
   correlation.
2. First trajectory, which cannot jump a unit cell (:mod:`napari_cryomat.core._drift_unwrap`):
   the lattice the stack reveals is found without any alignment (signal autocorrelation from
   the frames' mean power spectrum; its nearest strong secondary peak is the shortest "alias"
   shift). Frames are summed in blocks of ``group`` (``group=None`` picks the smallest group
   whose pairwise shifts agree with one trajectory). Blocks tell the drift only modulo a lattice
   vector per block and smear a lattice that moves a good part of a period within them: pairs of
   single frames tell the velocity modulo a lattice vector per *frame*, and where their evidence
   beats no drift decisively the frames are moved back by that line before summing (the blocks'
   own residual drift then corrects the line once). Pairs of blocks 1, 2, 3, 4, 6, 8, ... apart
   are cross-correlated into log-likelihood maps (B-factor low-pass ``exp(-B k²/4)``, Wiener
   filter of the noisy template, noise from the outer spectrum, window-overlap normalisation).
   The constant drift and random-walk step of the motion model are chosen by the evidence over
   all pairs, with the drift limited to half an alias per block; then near pairs first, far
   pairs only where the trajectory already predicts them to a sixth of a period, each pair's
   shift taken within the half-period cell around the prediction, all solved with the motion
   prior (Gauss-Markov least squares, i.e. a batch Kalman smoother). Every later search is
   kept within 40 % of the alias of this trajectory, so no stage can add a unit-cell jump.
3. Refinement (``iterations`` passes): each frame (a sliding group of ``group`` frames) is
   cross-correlated with the sum of all the other aligned frames. The frames are shifted first
   and windowed in the common frame (a window that moved with the content would pull the
   estimates towards zero); moves of less than a quarter pixel between passes are applied as phase
   ramps to the windowed spectra (no FFT). The cross-spectrum is weighted by the B-factor and by the Wiener
   filter of the reference, estimated per frequency from the stack itself (keeps the Bragg
   reflections of a lattice, suppresses frequencies that only carry noise). The peak is located
   near the current estimate with a matrix (upsampled) DFT to ``1/upsample`` px. When grouped,
   a first capture pass searches ±6 px on the full correlation map.
4. Trajectory smoother (``smooth=True``, where single frames are noisy): each frame's
   likelihood of a residual shift against the Wiener-filtered sum of the others is evaluated on
   a grid and combined with the motion model of a cold stage, a random walk on top of a constant
   drift, by the forward-backward recursion of a hidden Markov model (posterior mean). The walk's
   step and the drift velocity are chosen by the evidence of the data; nothing about the motion
   is assumed beyond its form (:func:`_smooth_trajectory`). Where the low-dose lattice stage
   detected reflections, their own phase rates hold the velocity along them (the search runs only
   along the direction they leave free), and their coherence along the smoother's two results
   chooses between them: the evidence's reference is built from each trajectory and can keep a
   ramp or a wander of part of a cell that it already holds.
5. Optional local motion: the same refinement on a grid of patches, each patch trajectory
   smoothed in time by a polynomial; the per-pixel field is a smooth (bi-quadratic at most)
   polynomial surface through the patches (:class:`LocalMotion`).

Everything is numpy / scipy; frames may be numpy arrays, memory-mapped arrays or dask arrays
(read one frame at a time, so a stack larger than memory is fine).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import scipy.fft as sfft

from napari_cryomat.core._drift_fourier import (  # noqa: F401 (private names kept importable from here)
    _bfilter,
    _cc_map,
    _crop_shape,
    _dft_kernels,
    _fourier_crop,
    _freq_grid,
    _local_peak,
    _parabolic,
    _peak_search,
    _phase_ramp,
    _phase_ramp_factors,
    _solve_trajectory,
    tukey,
)
from napari_cryomat.core._drift_lattice import lattice_start
from napari_cryomat.core._drift_local import _local_motion, _poly_basis
from napari_cryomat.core._drift_refine import (  # noqa: F401
    AUTO_GROUP_RESIDUAL,
    COARSE_GROUP_BFACTOR,
    OUTLIER_FRACTION,
    OUTLIER_SIGMAS,
    SIGNIFICANT_SIGMAS,
    WIDE_RADIUS_PX,
    _aligned_spectra,
    _auto_group,
    _blocks,
    _coarse_pairs,
    _measured_prior,
    _outlier_frames,
    _refine,
    _sliding_groups,
    _spectral_snr,
    _subpixel_pairs,
    _within_reach,
)
from napari_cryomat.core._drift_smooth import (  # noqa: F401
    SMOOTH_DVELOCITY,
    SMOOTH_LINE_REACH,
    SMOOTH_MIN_SIGMA,
    SMOOTH_PREFER,
    SMOOTH_SIZE,
    SMOOTH_STEPS,
    _forward_backward,
    _frame_loglik,
    _frame_sigma,
    _smooth_from,
    _smooth_trajectory,
)
from napari_cryomat.core._drift_stages import (  # noqa: F401
    CAPTURE_LATTICE_FRACTION,
    _capture_keeps_lattice,
    _refine_and_smooth,
)
from napari_cryomat.core._drift_unwrap import grouped_trajectory, lattice_aliases, noise_power, signal_power
from napari_cryomat.core._parallel import core_threads, thread_map
from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import (
    MAX_COUNT,
    check_memory,
    fraction,
    integer,
    nonnegative,
    positive,
    real_array,
    vector,
)

#: Largest shift (px) accepted anywhere: a drift beyond it is a unit mix-up, not a measurement.
_MAX_SHIFT_PX = 1e6
#: Frames beyond this value overflow the float32 squares of the spectra (measured: 5e15 counts per pixel aligns as
#: 5 does; 5e17 gave numpy's "zero-size array to reduction operation maximum" from deep inside)
_MAX_PIXEL_VALUE = 1e15
#: Whether the lattice motif's blind velocity evidence may correct the first trajectory's drift line
#: (:func:`~napari_cryomat.core._drift_lattice.lattice_start`; a switch for old-vs-new comparisons).
LATTICE_LINE = True
#: ... below this many counts per frame (at more, the pairs of frames already tell the velocity).
LATTICE_MAX_COUNTS = 1000.0
#: Band (cycles per px, DC excluded) of the structure test on the aligned sum (:func:`_aligned_structure`): a
#: specimen's envelope, thickness and illumination live there at any dose.
STRUCTURE_BAND = 0.05
#: The shifts count as a measurement (:attr:`DriftResult.measured`) where the aligned sum holds this many standard
#: deviations of power above the shot noise within STRUCTURE_BAND, or where the low-dose lattice stage finds a
#: reflection whose phase turns coherently over the frames at STRUCTURE_REFLECTION_NATS (a crystal filling the
#: field keeps its contrast in its reflections, not at low frequencies). Why: on pure shot noise the estimator
#: still returns a trajectory (10-53 px on 20 x 128² frames), fitted to the noise, and a likelihood gain over zero
#: drift does not tell it from a specimen (noise -21 to +39, right low-dose alignments -19 to +311 on seen stress
#: stacks). Measured (session 19): pure noise 20 x 128² (0.01 counts/px seeds 0-19, 0.03 and 0.1 seeds 0-2, 1 and 100
#: seeds 0-5): aligned power -1.1 to 2.6 deviations, strongest reflection <= 14.4 nats; seen stacks (stress 160² 0.01
#: counts/px 5180-5239, drift.py's generator 181-221): power 8.2-66 deviations (>= 10.9 where no reflection reaches 21
#: nats), or below 6 only on full-field crystals (5192, 5208, 5209: 4.0-4.3) whose strongest reflection scores 34-63
#: nats. 6 lies between 2.6 and 10.9 (near their geometric mean); the reflection floor is LARGE_RAMP_NATS (21), the
#: largest score seen without a lattice (19.5) plus a margin.
STRUCTURE_Z = 6.0
STRUCTURE_REFLECTION_NATS = 21.0

__all__ = [
    "DriftResult",
    "LocalMotion",
    "FRCResult",
    "estimate_drift",
    "apply_drift",
    "aligned_sum",
    "dose_weighted_sum",
    "dose_weights",
    "critical_exposure",
    "frc_vs_dose",
    "frc",
    "fourier_shift",
    "check_stack",
    "prepare_frame",
]

# Grant & Grigorieff (2015) critical exposure Ne(k) = a k^b + c (k in 1/Å, Ne in e/Å²).
GG_A, GG_B, GG_C = 0.245, -1.665, 2.81


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
@dataclass
class LocalMotion:
    """Smooth local (non-uniform) motion on top of the global shifts.

    Attributes
    ----------
    centers : (P, 2) float array
        Patch centres (y, x), px.
    patch_shifts : (P, N, 2) float array
        Residual shift of each patch per frame after global alignment (time-smoothed), px.
    coeffs : (N, 2, M) float array
        Per frame and axis, coefficients of the polynomial surface in (y, x) through the patches.
    degree : int
        Degree of the surface (0, 1 or 2).
    shape : (int, int)
        Frame shape the model refers to.
    """

    centers: np.ndarray
    patch_shifts: np.ndarray
    coeffs: np.ndarray
    degree: int
    shape: tuple[int, int]

    def field(self, index: int, shape: Optional[tuple[int, int]] = None) -> np.ndarray:
        """Local residual shift field of frame ``index``: (2, Y, X) array of (dy, dx), px."""
        ny, nx = shape or self.shape
        yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
        basis = _poly_basis(yy.ravel() / self.shape[0], xx.ravel() / self.shape[1], self.degree)
        out = (basis @ self.coeffs[index].T).T.reshape(2, ny, nx)
        return out.astype(np.float32)


@dataclass
class DriftResult:
    """Result of :func:`estimate_drift`.

    Attributes
    ----------
    shifts : (N, 2) float array
        (dy, dx) of each frame's content relative to frame 0, px; ``shifts[0] == (0, 0)``.
    residuals : (N,) float array
        RMS disagreement (px) between the accepted pairwise measurements involving each frame
        and the solved trajectory. Large values flag frames whose alignment is uncertain.
    quality : float
        Median significance of the pairwise correlation peaks (peak minus mean over standard
        deviation of the correlation within the search range). It rates single pairs, not the
        trajectory: low-dose stacks aligned to 0.1 px show 3-5, and frames of pure shot noise
        (no specimen, for which a trajectory is still returned) 2.5-3.5; the FRC of the aligned
        even and odd halves (:func:`frc_vs_dose`) tells them apart better.
    inlier_fraction : float
        Fraction of pairwise measurements kept by the robust solver.
    pixel_size : float
        Pixel size, Å.
    pair_index : (P, 2) int array
        Frame indices (i, j) of the pairwise measurements (block centres when grouped).
    pair_shifts : (P, 2) float array
        Measured shift of j relative to i, px.
    pair_inlier : (P,) bool array
    local : LocalMotion or None
        Local motion model if ``patches`` was given.
    group : int
        Frames summed per group in the pairwise stage and the refinement.
    walk_step : float
        Random-walk step (px per frame and axis, on top of the constant drift) chosen by the
        trajectory smoother from the data; nan when the smoother was not used.
    outliers : (N,) bool array
        Frames that do not look like the others (their normalised correlation with the sum of
        the other aligned frames lies far below the rest: a blanked, torn or foreign frame). Their
        shifts are interpolated from the neighbouring frames rather than trusted
        (:func:`_outlier_frames`).
    structure : float
        Power of the aligned sum above the shot noise at low frequencies (below STRUCTURE_BAND
        cycles/px), in standard deviations of that noise (:func:`_aligned_structure`); nan when not
        computed. See :attr:`measured`.
    reflection_nats : float
        Score of the strongest lattice reflection the low-dose lattice stage detected (coherent
        log-likelihood ratio of a steadily turning phase, nats); 0 when none or not searched.
    """

    shifts: np.ndarray
    residuals: np.ndarray
    quality: float
    inlier_fraction: float
    pixel_size: float = 1.0
    pair_index: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), int))
    pair_shifts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    pair_inlier: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    local: Optional[LocalMotion] = None
    group: int = 1
    walk_step: float = float("nan")
    outliers: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    structure: float = float("nan")
    reflection_nats: float = 0.0

    @property
    def measured(self) -> bool:
        """Do the frames hold a specimen the shifts were measured on: power of the aligned sum above the shot
        noise (``structure`` >= STRUCTURE_Z) or a lattice reflection (``reflection_nats`` >=
        STRUCTURE_REFLECTION_NATS)? True where not computed.

        False on pure shot noise: the trajectory is then the noise's, not the drift (estimate_drift warns)."""
        return not self.structure < STRUCTURE_Z or self.reflection_nats >= STRUCTURE_REFLECTION_NATS

    @property
    def shifts_angstrom(self) -> np.ndarray:
        """Shifts in Å."""
        return self.shifts * self.pixel_size

    @property
    def total_drift(self) -> float:
        """Path length of the trajectory, Å."""
        return float(np.sum(np.hypot(*np.diff(self.shifts, axis=0).T)) * self.pixel_size)


# ---------------------------------------------------------------------------------------------
# input checks and preparation
# ---------------------------------------------------------------------------------------------
def check_stack(frames) -> tuple[int, int, int]:
    """Validate a (T, Y, X) stack; return its shape. Raise ValueError with a user message."""
    if isinstance(frames, (list, tuple)):
        shapes = {tuple(np.shape(f)) for f in frames}
        if len(shapes) > 1:
            raise ValueError(
                f"The frames differ in size ({sorted(shapes)}); crop them to a common size first."
            )
        if any(len(s) != 2 for s in shapes):
            raise ValueError("Each frame must be a 2D image (Y, X).")
        n = len(frames)
        ny, nx = next(iter(shapes)) if shapes else (0, 0)
    else:
        shape = tuple(getattr(frames, "shape", np.shape(frames)))
        if len(shape) == 2:
            raise ValueError("Drift correction needs a stack of frames (T, Y, X); this is a single 2D image.")
        if len(shape) != 3:
            raise ValueError(
                f"Drift correction needs a stack of frames (T, Y, X); got {len(shape)} dimensions {shape}."
            )
        n, ny, nx = shape
        dtype = getattr(frames, "dtype", None)
        if dtype is not None and np.issubdtype(dtype, np.complexfloating):
            raise ValueError("The frames are complex; drift correction needs real intensities.")
    if n < 2:
        raise ValueError("Drift correction needs at least 2 frames; this stack has only one.")
    if ny < 16 or nx < 16:
        raise ValueError(f"Frames of {ny}×{nx} px are too small to align (need at least 16×16).")
    check_memory(int(ny) * int(nx) * 4 * 8, "frames", f"one {ny}×{nx} frame and its spectra")
    return int(n), int(ny), int(nx)


def _check_shifts(shifts, n: int) -> np.ndarray:
    """(n, 2) finite shifts in px (dy, dx)."""
    arr = np.asarray(shifts)
    if np.iscomplexobj(arr) or arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"shifts must be real (dy, dx) pairs in px; got dtype {arr.dtype}.")
    if arr.shape != (n, 2):
        raise ValueError(f"shifts must be ({n}, 2) for {n} frames; got {arr.shape}.")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)) or np.abs(arr).max(initial=0) > _MAX_SHIFT_PX:
        raise ValueError(f"shifts must be finite and at most {_MAX_SHIFT_PX:g} px; some are NaN, inf or larger.")
    return arr


def _frame(frames, i) -> np.ndarray:
    f = frames[i]
    if hasattr(f, "compute"):
        f = f.compute()
    return np.asarray(f, dtype=np.float32)


def prepare_frame(
    frame: np.ndarray,
    *,
    gain: Optional[np.ndarray] = None,
    defect_mask: Optional[np.ndarray] = None,
    index: int = 0,
) -> np.ndarray:
    """Gain-correct a frame and replace defect pixels; raise ValueError on NaN/inf.

    Parameters
    ----------
    frame : (Y, X) array
    gain : (Y, X) array, optional
        Gain reference, multiplied in (as in MotionCor2's ``-Gain``).
    defect_mask : (Y, X) bool array, optional
        True at defect (hot/dead) pixels; they are replaced by the mean of the good pixels.
    index : int
        Frame number, for messages.
    """
    src = np.asarray(frame)
    if np.iscomplexobj(src):
        raise ValueError(f"Frame {index} holds complex numbers; drift correction needs real intensities.")
    if src.ndim != 2 or min(src.shape) < 1:
        raise ValueError(f"Frame {index} must be a 2D image (Y, X); got shape {src.shape}.")
    check_memory(src.size * 4 * 3, "frame", f"a {src.shape[0]}×{src.shape[1]} frame")
    _check_inputs((1,) + src.shape, gain, defect_mask)
    f = np.array(src, dtype=np.float32, copy=True)  # never modify the caller's (or a read-only mmap) data
    if gain is not None:
        f = f * np.asarray(gain, dtype=np.float32)
    if defect_mask is not None:
        m = np.asarray(defect_mask, bool)
        good = f[~m]
        fill = float(good[np.isfinite(good)].mean()) if good.size else 0.0
        f = np.where(m, np.float32(fill), f)
    if not np.all(np.isfinite(f)):
        raise ValueError(
            f"Frame {index} contains NaN or inf pixels; mark them in the defect mask or replace them first."
        )
    peak = float(np.abs(f).max(initial=0.0))
    if peak > _MAX_PIXEL_VALUE:
        raise ValueError(
            f"Frame {index} holds values up to {peak:.3g}: beyond {_MAX_PIXEL_VALUE:.0e} the float32 power spectra "
            "overflow. Divide the frames by a constant first (the shifts do not depend on their scale)."
        )
    return f


def _check_inputs(shape, gain, defect_mask):
    _, ny, nx = shape
    for name, arr in (("gain reference", gain), ("defect mask", defect_mask)):
        if arr is not None and tuple(np.shape(arr)) != (ny, nx):
            raise ValueError(f"The {name} is {np.shape(arr)} but the frames are {(ny, nx)}; they must match.")
    if gain is not None and np.iscomplexobj(gain):
        raise ValueError("The gain reference is complex; it must hold real gain factors.")
    if gain is not None and not np.all(np.isfinite(np.asarray(gain, np.float32))):
        raise ValueError("The gain reference contains NaN or inf; fix it or leave it out.")


def tukey_window(ny: int, nx: int, taper: float = 0.1) -> np.ndarray:
    """Separable Tukey window, cosine taper over ``taper`` of each edge. float32 (Y, X)."""
    return tukey(ny, nx, taper)




# ---------------------------------------------------------------------------------------------
# main entry point
# ---------------------------------------------------------------------------------------------
def estimate_drift(
    frames,
    *,
    pixel_size: float = 1.0,
    bfactor: float = 150.0,
    max_shift: Optional[float] = None,
    group: Optional[int] = None,
    pair_band: Optional[int] = None,
    iterations: Optional[int] = None,
    refine_radius: float = 2.0,
    upsample: int = 50,
    max_size: int = 1024,
    coarse_size: int = 512,
    window_taper: float = 0.1,
    gain: Optional[np.ndarray] = None,
    defect_mask: Optional[np.ndarray] = None,
    patches: Optional[tuple[int, int]] = None,
    patch_bfactor: Optional[float] = None,
    smooth: bool = True,
    progress: ProgressCallback = None,
) -> DriftResult:
    """Estimate whole-frame (and optionally local) drift of a low-dose stack.

    Parameters
    ----------
    frames : (N, Y, X) array-like
        numpy, memory-mapped or dask array (read frame by frame), or a list of 2D frames.
    pixel_size : float
        Pixel size, Å. Sets the units of ``bfactor`` and ``max_shift``.
    bfactor : float
        B-factor of the low-pass ``exp(-B k²/4)`` applied to the cross-spectra, Å². Larger
        values suppress more noise (use 500–2000 Å² at the lowest doses or for patches);
        too large removes the lattice signal.
    max_shift : float, optional
        Largest drift searched between any two (grouped) frames, Å. Default: a quarter of the
        smaller frame side.
    group : int, optional
        Frames summed together before correlating (1 = none). None (default) chooses the smallest
        group whose neighbouring correlation peaks stand clearly above the noise; the lowest doses
        (about 0.01 counts/px/frame) typically need 3–6.
    pair_band : int, optional
        Correlate only pairs at most this many (grouped) frames apart. Default: pairs 1, 2, 3, 4,
        6, 8, 12, 16, 24 and 32 apart (far pairs only where the near pairs predict them to a sixth
        of a lattice period, see :mod:`napari_cryomat.core._drift_unwrap`).
    iterations : int, optional
        Refinement passes of each frame against the sum of the others (0 = pairwise only). The
        passes stop early once no shift changes by more than 0.02 px. Default: 3, or 10 when
        frames are grouped (the trajectory converges more slowly at the lowest doses).
    refine_radius : float
        Search radius of the refinement around the current estimate, px.
    upsample : int
        Sub-pixel precision of the refinement, 1/upsample px.
    max_size : int
        Frames larger than this are aligned on Fourier-cropped (binned) spectra of this size, px.
    coarse_size : int
        Size of the Fourier-cropped spectra used in the pairwise stage, px.
    window_taper : float
        Fraction of each edge tapered by the real-space window.
    gain : (Y, X) array, optional
        Gain reference (multiplied in).
    defect_mask : (Y, X) bool array, optional
        True at defect pixels, which are replaced by the frame mean.
    patches : (int, int), optional
        Grid of patches (rows, columns) for local motion, e.g. (3, 3). None = global only.
    patch_bfactor : float, optional
        B-factor for patches, Å² (default ``max(bfactor, 500)``).
    smooth : bool
        After the refinement, smooth the trajectory with its motion model (random walk plus
        constant drift, step size estimated from the data; :func:`_smooth_trajectory`). Only
        used with ``iterations > 0`` (it compares each frame with the sum of the others, so
        it assumes a static specimen) and only where single frames are noisy (it is skipped
        when one frame alone gives its shift to better than 0.08 px).
    progress : callable, optional
        Called with the fraction done; raise :class:`~napari_cryomat.core.Cancelled` from it to stop.

    Returns
    -------
    DriftResult

    Raises
    ------
    ValueError
        Not a stack, a single frame, NaN/inf pixels, constant frames, frames of different sizes,
        or mismatched gain/defect arrays.
    """
    from threadpoolctl import threadpool_limits

    # the small matrix DFTs are far faster single-threaded than fighting the FFT threads
    with threadpool_limits(1, user_api="blas"):
        return _estimate_drift(frames, pixel_size=pixel_size, bfactor=bfactor, max_shift=max_shift, group=group,
                               pair_band=pair_band, iterations=iterations, refine_radius=refine_radius,
                               upsample=upsample, max_size=max_size, coarse_size=coarse_size,
                               window_taper=window_taper, gain=gain, defect_mask=defect_mask, patches=patches,
                               patch_bfactor=patch_bfactor, smooth=smooth, progress=progress)


def _estimate_drift(frames, *, pixel_size, bfactor, max_shift, group, pair_band, iterations, refine_radius,
                    upsample, max_size, coarse_size, window_taper, gain, defect_mask, patches, patch_bfactor,
                    smooth, progress) -> DriftResult:
    n, ny, nx = check_stack(frames)
    _check_inputs((n, ny, nx), gain, defect_mask)
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    bfactor = positive(bfactor, "bfactor", unit="Å²", high=1e5)
    max_shift = positive(max_shift, "max_shift", unit="Å", allow_none=True)
    if group is not None:
        # at least two blocks: one block of all the frames has nothing to align with (zero shifts)
        group = integer(group, "group", low=1, high=max(1, n - 1))
    pair_band = integer(pair_band, "pair_band", low=1, high=MAX_COUNT, allow_none=True)
    iterations = integer(iterations, "iterations", low=0, high=100, allow_none=True)
    refine_radius = positive(refine_radius, "refine_radius", unit="px", high=max(1.0, min(ny, nx) / 4))
    upsample = integer(upsample, "upsample", low=1, high=1000)
    max_size = integer(max_size, "max_size", low=16, high=1 << 20)
    coarse_size = integer(coarse_size, "coarse_size", low=16, high=1 << 20)
    window_taper = fraction(window_taper, "window_taper", high=0.5)
    if patches is not None:
        patches = tuple(integer(v, "patches", low=1, high=64) for v in vector(patches, "patches", length=2))
    patch_bfactor = positive(patch_bfactor, "patch_bfactor", unit="Å²", high=1e5, allow_none=True)
    report(progress, 0.0)

    full = (ny, nx)
    crop = _crop_shape(ny, nx, max_size)
    win = tukey_window(ny, nx, window_taper)
    spectra = np.empty((n,) + (crop[0], crop[1] // 2 + 1), np.complex64)  # unwindowed, for refinement
    cshape = _crop_shape(*crop, coarse_size)
    cspec = np.empty((n,) + (cshape[0], cshape[1] // 2 + 1), np.complex64)  # windowed, pairwise stage
    noise = np.ones(n)  # white-noise power per coefficient of each windowed frame
    level = np.zeros(n)  # mean of each frame
    constant = []

    def transform(f):
        if float(f.std()) == 0.0:
            return None
        mean = float(f.mean())
        f -= mean
        windowed = sfft.rfft2(f * win, workers=1)
        return _fourier_crop(sfft.rfft2(f, workers=1), full, crop), noise_power(windowed, full), \
            _fourier_crop(windowed, full, cshape), mean

    # frames are read here one batch at a time (a stack may not fit in memory) and transformed on the cores
    batch = core_threads()
    for a in range(0, n, batch):
        idx = range(a, min(n, a + batch))
        got = thread_map(transform, [prepare_frame(_frame(frames, i), gain=gain, defect_mask=defect_mask, index=i)
                                     for i in idx])
        for i, g in zip(idx, got):
            if g is None:
                constant.append(i)
                spectra[i] = 0
                cspec[i] = 0
            else:
                spectra[i], noise[i], cspec[i], level[i] = g
        report(progress, 0.35 * idx.stop / n)
    if len(constant) == n:
        raise ValueError("All frames are constant (no signal); check the detector or the input file.")
    if constant:
        raise ValueError(
            f"Frame(s) {constant[:10]} are constant (blank, no counts); remove them from the stack first."
        )

    if max_shift is None:
        max_shift_px = min(ny, nx) / 4.0
    else:
        max_shift_px = max_shift / pixel_size

    lattice = None  # the low-dose lattice stage's reflections (per full px; coefficients, noise, phase rates)
    reflection_nats = 0.0  # the lattice stage's strongest detected reflection (DriftResult.measured)
    # ---- coarse stage: grouped blocks, pairwise, robust LS ------------------------------------
    cbin = (ny / cshape[0], nx / cshape[1])
    bf = _bfilter(*cshape, bfactor / (pixel_size * cbin[1]) ** 2)
    wspec = _fourier_crop(sfft.rfft2(win, workers=-1), full, cshape)
    win_acf = _cc_map(np.abs(wspec) ** 2, cshape)
    win_acf = win_acf / win_acf.max()
    # never search where the windows overlap less than 30%: the normalisation blows up noise there
    norm = np.where(win_acf > 0.3, win_acf, np.inf).astype(np.float32)
    radius = (min(max_shift_px / cbin[0], cshape[0] / 2 - 2), min(max_shift_px / cbin[1], cshape[1] / 2 - 2))
    coarse = dict(cspec=cspec, cshape=cshape, cbin=cbin, bf=bf, norm=norm, radius=radius)
    # the lattice the stack reveals (alignment-free) and a first trajectory that cannot jump a cell
    p_sig = signal_power(cspec, noise)
    aliases = lattice_aliases(signal_power(cspec, noise, significant=True), cshape, norm, cbin[1])
    alias = float(np.hypot(*aliases.T).min()) if len(aliases) else float("inf")
    if group is None:
        group = _auto_group(n, **coarse, aliases=aliases / cbin[1])
    group = int(max(1, min(group, n)))
    weight = (bf * p_sig / (p_sig + float(np.mean(noise)))).astype(np.float32)
    nb = int(np.ceil(n / group))
    if nb > 1:
        # at the lowest doses single frames are too noisy to pair: blocks of `group` frames
        s_c, pairs, d_c, sig, blocks, centers, v_line = grouped_trajectory(
            cspec, noise, weight, cshape, norm, (int(radius[0]), int(radius[1])), alias / cbin[1], group,
            max_lag=pair_band, progress=None if progress is None else (lambda f: report(progress, 0.35 + 0.3 * f)))
        if iterations == 0:  # no refinement follows: sub-pixel pair peaks (matrix DFT) and one more solve
            s_c, d_c = _subpixel_pairs(blocks, pairs, d_c, s_c, coarse["bf"], cshape, upsample)
        sb = s_c * cbin
        s0 = np.stack([np.interp(np.arange(n), centers, sb[:, a]) for a in range(2)], axis=1)
        # back from the compensated blocks: add the drift line to every frame and to the pair shifts
        s0 += np.arange(n)[:, None] * v_line * cbin
        d_c = d_c + (centers[pairs[:, 1]] - centers[pairs[:, 0]])[:, None] * v_line
        s0 -= s0[0]
        # Poisson counts per frame (gain-free: mean² / per-pixel noise variance); the lattice's velocity test
        # is for the low-dose end, where the pairs above can miss the velocity (_drift_lattice)
        counts = ny * nx * float(np.median(level**2 * float((win**2).sum()) / noise))
        if LATTICE_LINE and counts < LATTICE_MAX_COUNTS:
            cb = np.asarray(cbin, float)
            s0, found = lattice_start(s0 / cb, cspec, cshape, noise, px=float(cb.mean()))
            s0 = s0 * cb
            reflection_nats = float(np.max(found["score"], initial=0.0))
            if "held_g" in found:  # its reflections hold the smoother's velocity along them (_drift_smooth)
                lattice = (found["held_g"] / cb, found["held_coef"], found["noise"], found["held_rate"])
    else:
        s0, pairs, d_c, sig = np.zeros((n, 2)), np.zeros((0, 2), int), np.zeros((0, 2)), np.zeros(0)
        centers = np.array([(n - 1) / 2.0])
    d_meas = d_c * cbin
    inl = np.ones(len(pairs), bool)
    # no search below may move a frame by half the alias (a unit cell): keep within 40% of it
    reach = 0.4 * alias if np.isfinite(alias) else np.inf
    if iterations is None:
        iterations = 3 if group == 1 else 10
    quality = float(np.median(sig)) if len(pairs) else 0.0
    inlier_fraction = float(inl.mean()) if inl.size else 1.0

    # ---- refinement against the sum of the others, then the trajectory smoother -----------------
    stage = dict(spectra=spectra, crop=crop, full=full, bfactor=bfactor, pixel_size=pixel_size, group=group,
                 iterations=iterations, refine_radius=refine_radius, upsample=upsample, progress=progress,
                 span=(0.65, 0.9 if patches else 1.0), window_taper=window_taper, reach=reach, smooth=smooth,
                 alias=alias, lattice=lattice)
    starts = [s0]
    runs = [_refine_and_smooth(start, **stage) for start in starts]
    shifts, walk_step, _ = max(runs, key=lambda r: r[2])
    ocrop = _crop_shape(*crop, SMOOTH_SIZE)  # a coarse look is enough to tell a foreign frame
    outliers = _outlier_frames(_fourier_crop(spectra, crop, ocrop), ocrop, shifts * (ocrop[0] / ny, ocrop[1] / nx),
                               bfactor / (pixel_size * nx / ocrop[1]) ** 2)
    if outliers.any() and not outliers.all():
        good = np.nonzero(~outliers)[0]
        for a in range(2):
            shifts[outliers, a] = np.interp(np.nonzero(outliers)[0], good, shifts[good, a])
        shifts = shifts - shifts[0]

    # residuals: RMS of accepted pair disagreements per frame (pairs between block centres)
    residuals = np.zeros(n)
    if len(pairs):
        sb_final = np.stack([np.interp(centers, np.arange(n), shifts[:, a]) for a in range(2)], axis=1)
        r = np.hypot(*(d_meas - (sb_final[pairs[:, 1]] - sb_final[pairs[:, 0]])).T)
        acc = np.bincount(pairs.ravel(), np.repeat(r**2, 2), nb)
        cnt = np.bincount(pairs.ravel(), None, nb)
        residuals = np.sqrt(acc / np.maximum(cnt, 1))[np.minimum(np.arange(n) // group, nb - 1)]

    local = None
    if patches is not None:
        local = _estimate_local(
            frames,
            shifts,
            patches=patches,
            pixel_size=pixel_size,
            bfactor=patch_bfactor if patch_bfactor is not None else max(bfactor, 500.0),
            group=max(group, 3),
            gain=gain,
            defect_mask=defect_mask,
            upsample=upsample,
            window_taper=window_taper,
            progress=progress,
        )
    report(progress, 1.0)
    if not np.all(np.isfinite(shifts)):
        raise ValueError(
            "The drift could not be measured (non-finite shifts): the frames hold too little signal for "
            f"bfactor={bfactor:g} Å² and group={group}; try a larger group or a smaller bfactor."
        )
    structure = _aligned_structure(cspec, noise, shifts / np.asarray(cbin, float), cshape, cbin)
    if structure < STRUCTURE_Z and reflection_nats < STRUCTURE_REFLECTION_NATS:  # as DriftResult.measured (nan: untested)
        warnings.warn(
            f"The aligned frames hold no structure above the shot noise ({structure:.1f} standard deviations of its "
            f"power below {STRUCTURE_BAND:g} cycles/px, where a specimen gives >= {STRUCTURE_Z:g}, and no lattice "
            "reflection): these shifts fit the noise and are no measurement of the drift (is there a specimen in "
            "the field?).",
            RuntimeWarning,
            stacklevel=3,
        )
    pair_index = np.round(centers[pairs]).astype(int) if len(pairs) else np.zeros((0, 2), int)
    return DriftResult(
        shifts=shifts,
        residuals=residuals,
        quality=quality,
        inlier_fraction=inlier_fraction,
        pixel_size=float(pixel_size),
        pair_index=pair_index,
        pair_shifts=d_meas.copy(),
        group=group,
        pair_inlier=inl.copy(),
        local=local,
        walk_step=walk_step,
        outliers=outliers,
        structure=structure,
        reflection_nats=reflection_nats,
    )


def _aligned_structure(cspec, noise, shifts_c, cshape, cbin) -> float:
    """Power of the aligned sum above the shot noise below STRUCTURE_BAND cycles/px (DC excluded), in standard
    deviations of that noise.

    ``cspec``: the frames' windowed spectra (coarse crop ``cshape``), ``noise``: each frame's white-noise power per
    coefficient, ``shifts_c``: the shifts in coarse px, ``cbin``: full px per coarse px. Under shot noise alone
    each coefficient of the aligned sum has power ``sum(noise)`` on average (exponentially distributed) whatever
    the shifts; a specimen adds its own, a drifting one only where the shifts align it.
    """
    ky = sfft.fftfreq(cshape[0]) / cbin[0]
    kx = sfft.rfftfreq(cshape[1]) / cbin[1]
    k = np.hypot(ky[:, None], kx[None, :])
    iy, ix = np.nonzero((k > 0) & (k <= STRUCTURE_BAND))
    if not len(iy):
        return float("nan")
    phase = np.exp(2j * np.pi * (np.outer(shifts_c[:, 0], ky[iy]) + np.outer(shifts_c[:, 1], kx[ix])))
    power = np.abs((cspec[:, iy, ix] * phase).sum(0)) ** 2 / float(np.sum(noise))
    w = np.where(ix > 0, 2.0, 1.0)  # a coefficient of the half plane stands for its conjugate too
    return float((w * (power - 1.0)).sum() / np.sqrt((w * w).sum()))


# ---------------------------------------------------------------------------------------------
# local motion
# ---------------------------------------------------------------------------------------------
def _estimate_local(frames, shifts, *, patches, pixel_size, bfactor, group, gain, defect_mask,
                    upsample, window_taper, progress):
    """The local motion model (:mod:`~napari_cryomat.core._drift_local`) of the frames aligned by ``shifts``."""
    _, ny, nx = check_stack(frames)
    ky, kx = _freq_grid(ny, nx)

    def aligned_frame(i):
        f = prepare_frame(_frame(frames, i), gain=gain, defect_mask=defect_mask, index=i)
        return fourier_shift(f, shifts[i], ky=ky, kx=kx)  # globally aligned

    centers, smooth, coeffs, degree = _local_motion(
        aligned_frame, len(shifts), (ny, nx), patches=patches, pixel_size=pixel_size, bfactor=bfactor, group=group,
        upsample=upsample, window_taper=window_taper, progress=progress)
    return LocalMotion(centers=centers, patch_shifts=smooth, coeffs=coeffs, degree=degree, shape=(ny, nx))


# ---------------------------------------------------------------------------------------------
# applying shifts, sums, dose weighting
# ---------------------------------------------------------------------------------------------
def fourier_shift(frame: np.ndarray, shift, *, ky=None, kx=None) -> np.ndarray:
    """Undo a shift: return ``frame(r + shift)`` (sub-pixel, Fourier interpolation, periodic edges)."""
    f = real_array(frame, "frame", ndim=2, min_size=2, copies=4)
    shift = vector(shift, "shift", length=2, high=_MAX_SHIFT_PX, unit="px")
    if ky is None:
        ky, kx = _freq_grid(*f.shape)
    spec = sfft.rfft2(f, workers=-1)
    spec *= _phase_ramp(f.shape, shift, ky, kx)
    return sfft.irfft2(spec, s=f.shape, workers=-1).astype(np.float32)


def _align_one(frame, shift, local: Optional[LocalMotion], index: int, order: int = 3):
    out = fourier_shift(frame, shift)
    if local is not None:
        from scipy import ndimage

        fld = local.field(index, out.shape)
        yy, xx = np.mgrid[0 : out.shape[0], 0 : out.shape[1]].astype(np.float32)
        out = ndimage.map_coordinates(out, [yy + fld[0], xx + fld[1]], order=order, mode="nearest").astype(np.float32)
    return out


def apply_drift(frames, shifts, *, local: Optional[LocalMotion] = None, gain=None, defect_mask=None):
    """Aligned frames ``frame_i(r + shifts[i])`` (sub-pixel, Fourier shift).

    Parameters
    ----------
    frames : (N, Y, X) numpy or dask array
        With a dask array the result is a lazy dask array (one chunk per frame).
    shifts : (N, 2) array
        (dy, dx) per frame, px, as returned by :func:`estimate_drift`.
    local : LocalMotion, optional
        Local motion on top of the global shifts (cubic-spline resampling).
    gain, defect_mask : optional
        As in :func:`estimate_drift`.

    Returns
    -------
    (N, Y, X) float32 array (numpy or dask).
    """
    n, ny, nx = check_stack(frames)
    shifts = _check_shifts(shifts, n)
    _check_inputs((n, ny, nx), gain, defect_mask)
    if hasattr(frames, "map_blocks"):
        import dask.array as da

        arr = frames.rechunk((1, ny, nx))

        def block(b, block_info=None):
            i = block_info[0]["chunk-location"][0]
            f = prepare_frame(b[0], gain=gain, defect_mask=defect_mask, index=i)
            return _align_one(f, shifts[i], local, i)[None]

        return da.map_blocks(block, arr, dtype=np.float32)
    check_memory(n * ny * nx * 4.0, "frames", "the aligned stack")
    out = np.empty((n, ny, nx), np.float32)
    for i in range(n):
        f = prepare_frame(_frame(frames, i), gain=gain, defect_mask=defect_mask, index=i)
        out[i] = _align_one(f, shifts[i], local, i)
    return out


def aligned_sum(frames, shifts, *, start: int = 0, stop: Optional[int] = None, local=None, gain=None,
                defect_mask=None, progress: ProgressCallback = None) -> np.ndarray:
    """Sum of the aligned frames ``start:stop`` (streamed, one frame in memory at a time).

    ``frames`` may be numpy or dask; ``shifts`` as from :func:`estimate_drift` (px).
    """
    n, ny, nx = check_stack(frames)
    shifts = _check_shifts(shifts, n)
    _check_inputs((n, ny, nx), gain, defect_mask)
    start = integer(start, "start", low=0, high=n - 1)
    stop = n if stop is None else integer(stop, "stop", low=start + 1, high=n)
    acc = np.zeros((ny, nx), np.float64)
    for k, i in enumerate(range(start, stop)):
        f = prepare_frame(_frame(frames, i), gain=gain, defect_mask=defect_mask, index=i)
        acc += _align_one(f, shifts[i], local, i)
        report(progress, (k + 1) / (stop - start))
    return acc.astype(np.float32)


def critical_exposure(k: np.ndarray) -> np.ndarray:
    """Grant & Grigorieff (2015) critical exposure Ne(k) = 0.245 k^-1.665 + 2.81, e/Å² (k in 1/Å).

    Ne is infinite at k = 0.
    """
    k = real_array(k, "k", dtype=np.float64, copies=4)
    with np.errstate(divide="ignore"):
        return np.where(k > 0, GG_A * np.power(np.where(k > 0, k, 1.0), GG_B) + GG_C, np.inf)


def dose_weights(n_frames: int, shape, *, pixel_size: float, dose_per_frame: float,
                 pre_exposure: float = 0.0) -> np.ndarray:
    """Per-frame, per-frequency dose weights on the rfft2 grid, (N, Y, X//2+1) float32.

    ``q_i(k) = exp(-N_i / (2 Ne(k)))`` with ``N_i = pre_exposure + (i + 0.5) dose_per_frame`` the
    exposure at the middle of frame i (e/Å²), normalised per frequency as
    ``w_i(k) = q_i(k) sqrt(N / Σ_j q_j(k)²)``, so the noise power of the weighted sum is that of
    the plain sum at every frequency (white), and frequencies without damage (k → 0) get weight 1.
    """
    dose_per_frame = positive(dose_per_frame, "dose_per_frame", unit="e/Å²", high=1e6)
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    pre_exposure = nonnegative(pre_exposure, "pre_exposure", unit="e/Å²", high=1e9)
    n_frames = integer(n_frames, "n_frames", low=1, high=MAX_COUNT)
    sv = vector(shape, "shape", length=2, all_positive=True, high=1 << 24)
    if np.any(sv != np.round(sv)):
        raise ValueError(f"shape must be two whole numbers of pixels (Y, X); got {tuple(shape)!r}.")
    shape = (int(sv[0]), int(sv[1]))
    check_memory(n_frames * shape[0] * (shape[1] // 2 + 1) * 8.0 * 3, "n_frames", "the dose weights")
    ky, kx = _freq_grid(*shape)
    k = np.sqrt(ky.astype(float) ** 2 + kx.astype(float) ** 2) / pixel_size
    ne = critical_exposure(k)
    exposure = pre_exposure + (np.arange(n_frames) + 0.5) * dose_per_frame
    q = np.exp(-exposure[:, None, None] / (2.0 * ne[None]))
    norm = np.sqrt(n_frames / np.sum(q**2, axis=0))
    return (q * norm[None]).astype(np.float32)


def dose_weighted_sum(frames, shifts, *, pixel_size: float, dose_per_frame: float, pre_exposure: float = 0.0,
                      local=None, gain=None, defect_mask=None, progress: ProgressCallback = None) -> np.ndarray:
    """Aligned, dose-weighted sum (Grant & Grigorieff 2015), see :func:`dose_weights`.

    Parameters
    ----------
    frames : (N, Y, X) array-like
    shifts : (N, 2) px
    pixel_size : float
        Å.
    dose_per_frame : float
        e/Å² per frame.
    pre_exposure : float
        Exposure before the first frame, e/Å².
    """
    n, ny, nx = check_stack(frames)
    shifts = _check_shifts(shifts, n)
    _check_inputs((n, ny, nx), gain, defect_mask)
    w = dose_weights(n, (ny, nx), pixel_size=pixel_size, dose_per_frame=dose_per_frame,
                     pre_exposure=pre_exposure)
    acc = np.zeros((ny, nx // 2 + 1), np.complex128)
    for i in range(n):
        f = prepare_frame(_frame(frames, i), gain=gain, defect_mask=defect_mask, index=i)
        a = _align_one(f, shifts[i], local, i)
        acc += sfft.rfft2(a, workers=-1) * w[i]
        report(progress, (i + 1) / n)
    return sfft.irfft2(acc.astype(np.complex64), s=(ny, nx), workers=-1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# FRC
# ---------------------------------------------------------------------------------------------
@dataclass
class FRCResult:
    """FRC of even/odd aligned half-sums versus cumulative dose.

    Attributes
    ----------
    frequency : (K,) float array
        Spatial frequency of each ring, 1/Å.
    curves : (D, K) float array
        FRC for the first ``n_frames[d]`` frames.
    n_frames : (D,) int array
    dose : (D,) float array
        Cumulative dose of those frames, e/Å² (frame count if no dose was given).
    resolution : (D,) float array
        Resolution where the FRC first falls below ``threshold``, Å (nan if it never rises above).
    threshold : float
    """

    frequency: np.ndarray
    curves: np.ndarray
    n_frames: np.ndarray
    dose: np.ndarray
    resolution: np.ndarray
    threshold: float = 0.143


def frc(a: np.ndarray, b: np.ndarray, *, pixel_size: float = 1.0, n_rings: Optional[int] = None):
    """Fourier ring correlation of two images. Returns (frequency 1/Å, frc)."""
    a = real_array(a, "a", ndim=2, min_size=4, copies=6, what="first image")
    b = real_array(b, "b", ndim=2, min_size=4, copies=6, what="second image")
    if a.shape != b.shape:
        raise ValueError(f"FRC needs two images of the same size (a, b); got {a.shape} and {b.shape}.")
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    ny, nx = a.shape
    n_rings = integer(n_rings, "n_rings", low=1, high=max(ny, nx), allow_none=True)
    win = tukey_window(ny, nx, 0.1)
    fa = sfft.rfft2((a - a.mean()) * win, workers=-1)
    fb = sfft.rfft2((b - b.mean()) * win, workers=-1)
    ky, kx = _freq_grid(ny, nx)
    r = np.sqrt(ky**2 + kx**2)
    n_rings = n_rings or min(ny, nx) // 2
    idx = np.minimum((r / 0.5 * n_rings).astype(int), n_rings)
    wgt = np.ones_like(r)
    wgt[:, 1:] = 2.0
    if nx % 2 == 0:
        wgt[:, -1] = 1.0
    num = np.bincount(idx.ravel(), (wgt * (fa * np.conj(fb)).real).ravel(), n_rings + 1)
    pa = np.bincount(idx.ravel(), (wgt * np.abs(fa) ** 2).ravel(), n_rings + 1)
    pb = np.bincount(idx.ravel(), (wgt * np.abs(fb) ** 2).ravel(), n_rings + 1)
    val = num / np.sqrt(np.maximum(pa * pb, 1e-30))
    freq = (np.arange(n_rings + 1) + 0.5) / n_rings * 0.5 / pixel_size
    return freq[1:n_rings], val[1:n_rings]


def _resolution(freq, curve, threshold):
    below = np.nonzero(curve < threshold)[0]
    if curve[0] < threshold:
        return np.nan
    if below.size == 0:
        return float(1.0 / freq[-1])
    j = below[0]
    # linear interpolation of the crossing
    f0, f1, c0, c1 = freq[j - 1], freq[j], curve[j - 1], curve[j]
    fc = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0)
    return float(1.0 / fc)


def frc_vs_dose(frames, shifts, *, pixel_size: float = 1.0, dose_per_frame: Optional[float] = None,
                steps: int = 6, threshold: float = 0.143, local=None, gain=None, defect_mask=None,
                progress: ProgressCallback = None) -> FRCResult:
    """FRC between the even and odd aligned half-sums of the first n frames, for growing n.

    Parameters
    ----------
    frames : (N, Y, X) array-like
    shifts : (N, 2) px
    pixel_size : float
        Å.
    dose_per_frame : float, optional
        e/Å² per frame (the ``dose`` axis is then in e/Å², else in frames).
    steps : int
        Number of cumulative-dose points (the last uses all frames).
    threshold : float
        FRC threshold for the resolution, 0.143 by default.

    Returns
    -------
    FRCResult
    """
    n, ny, nx = check_stack(frames)
    shifts = _check_shifts(shifts, n)
    _check_inputs((n, ny, nx), gain, defect_mask)
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    dose_per_frame = positive(dose_per_frame, "dose_per_frame", unit="e/Å²", high=1e6, allow_none=True)
    steps = integer(steps, "steps", low=1, high=MAX_COUNT)
    threshold = fraction(threshold, "threshold", low_open=True)
    ends = np.unique(np.linspace(2, n, min(steps, n - 1)).round().astype(int))
    even = np.zeros((ny, nx), np.float64)
    odd = np.zeros((ny, nx), np.float64)
    curves, res = [], []
    freq = None
    e = 0
    for i in range(n):
        f = prepare_frame(_frame(frames, i), gain=gain, defect_mask=defect_mask, index=i)
        a = _align_one(f, shifts[i], local, i)
        (even if i % 2 == 0 else odd)[...] += a
        if e < len(ends) and i + 1 == ends[e]:
            freq, c = frc(even, odd, pixel_size=pixel_size)
            curves.append(c)
            res.append(_resolution(freq, c, threshold))
            e += 1
        report(progress, (i + 1) / n)
    dose = ends * (dose_per_frame if dose_per_frame else 1.0)
    return FRCResult(frequency=freq, curves=np.array(curves), n_frames=ends, dose=np.asarray(dose, float),
                     resolution=np.array(res), threshold=threshold)
