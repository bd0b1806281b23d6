"""Denoising single low-dose images, self-supervised: no clean image, no training set.

- :func:`split_counts`: binomial thinning of a counted image into two statistically independent
  halves, each Poisson with half the mean (the single-image route to Noise2Noise and to FRC).
- :func:`frc_wiener`: the spectral SNR from the FRC of two independent halves (even/odd frames, or
  :func:`split_counts`), turned into a Wiener filter of their sum; FSC for (Z, Y, X) volumes.
- :func:`destripe`: remove row (or column) offsets, found in Fourier space.
- :func:`denoise`: Noise2Self-calibrated Gaussian, total-variation, wavelet and non-local-means
  denoising in a variance-stabilised domain (generalised Anscombe, exact unbiased inverse); "auto"
  picks (and blends) by the self-supervised loss. Tiled, identical tiled or whole; lazy for stacks.

The calibration is described in :mod:`._denoise_calib`, the denoisers in :mod:`._denoise_methods`,
the noise model and destriping in :mod:`._denoise_noise`.

References
----------
Batson & Royer, "Noise2Self: blind denoising by self-supervision", ICML 2019.
Mäkitalo & Foi, "Optimal inversion of the generalized Anscombe transformation for Poisson-Gaussian
noise", IEEE TIP 22 (2013) 91.
Bepler et al., "Topaz-Denoise", Nat. Commun. 11 (2020) 5208 (the even/odd Noise2Noise idea).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sfft

from napari_cryomat.core import _validate as V
from napari_cryomat.core._denoise_apply import apply_parts, as_frames, destripe_frame, parse_destripe
from napari_cryomat.core._denoise_calib import Calibration, blend_weight, calibrate_all, calibration_crops
from napari_cryomat.core._denoise_methods import METHODS
from napari_cryomat.core._denoise_noise import NoiseModel, estimate_noise, stabilise
from napari_cryomat.core._progress import ProgressCallback, report, sub_progress

__all__ = ["AUTO_METHODS", "CALIBRATED", "METHOD_NAMES", "Calibration", "DenoiseResult", "NoiseModel", "WienerResult",
           "denoise", "destripe", "frc_wiener", "split_counts"]

#: Denoisers "auto" calibrates and chooses from.
AUTO_METHODS = ("gaussian", "spectral")
#: Every calibrated denoiser ("tv", "wavelet" and "nlm" added < 0.01 dB to "auto" in the benchmark and cost the most).
CALIBRATED = ("gaussian", "tv", "spectral", "wavelet", "nlm")
#: Every value ``denoise(method=...)`` accepts.
METHOD_NAMES = ("auto",) + CALIBRATED + ("n2v",)


# -------------------------------------------------------------------------------------------------
# split counts
# -------------------------------------------------------------------------------------------------
def split_counts(image, *, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Split a counted image into two independent halves by binomial thinning.

    Each count goes to half ``a`` or half ``b`` with probability 1/2. For Poisson counts of mean λ
    the halves are independent Poisson images of mean λ/2 and ``a + b`` is the input: two exposures
    of the same specimen from one, for Noise2Noise or an FRC.

    Parameters
    ----------
    image : array (any shape) of non-negative integer values (counts; float arrays holding whole
        numbers are accepted)
    seed : int or None
        Seed of the random split.

    Returns
    -------
    a, b : arrays of the input's shape; the input's integer dtype, float32 for float input.

    Raises
    ------
    ValueError
        For NaN/inf, negative or non-integer values: the binomial split needs counts. Gain-normalised
        or processed data have lost the count statistics; use the even and odd frames of the movie
        (``frc_wiener(movie[0::2].sum(0), movie[1::2].sum(0))``) instead.
    """
    arr = V.real_array(image, "image", dtype=None, copies=3.0)
    seed = V.integer(seed, "seed", low=0, high=2**63 - 1, allow_none=True)
    hint = ("The binomial split needs counts (non-negative whole numbers of electrons); gain-normalised or "
            "processed images have lost their count statistics. Use the even/odd route instead: sum the "
            "even and the odd frames of the movie and pass both sums to frc_wiener.")
    if arr.min() < 0:
        raise ValueError(f"image has negative values (min {float(arr.min()):.4g}). {hint}")
    if arr.dtype.kind == "f":
        if not np.all(arr == np.round(arr)):
            bad = arr[arr != np.round(arr)].flat[0]
            raise ValueError(f"image has non-integer values (e.g. {float(bad):.4g}). {hint}")
        if arr.max() > 2**53:
            raise ValueError(f"image values must be at most 2**53 counts; got {float(arr.max()):.4g}.")
    rng = np.random.default_rng(seed)
    a = rng.binomial(arr.astype(np.int64), 0.5)
    out_dtype = arr.dtype if arr.dtype.kind in "iu" else np.float32
    b = arr.astype(np.int64) - a
    return a.astype(out_dtype), b.astype(out_dtype)


# -------------------------------------------------------------------------------------------------
# FRC Wiener filter
# -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WienerResult:
    """The Wiener-filtered sum of two independent halves and the spectra it came from.

    ``frequency`` (1/Å, ring centres), ``frc`` between the halves, ``ssnr`` the spectral SNR of the
    *sum* ``a + b`` (``2 FRC / (1 - FRC)``, FRC clipped to [0, 0.999]) and ``gain`` the filter,
    ``SSNR / (1 + SSNR) = 2 FRC / (1 + FRC)``, all per ring (shell in 3D).
    """

    image: np.ndarray
    frequency: np.ndarray
    frc: np.ndarray
    ssnr: np.ndarray
    gain: np.ndarray


def _ring_index(shape) -> tuple[np.ndarray, float]:
    """Ring (shell) index of every Fourier pixel, rings 1/min(shape) cycles/px wide."""
    step = 1.0 / min(shape)
    radius2 = np.zeros(shape, np.float64)
    for axis, n in enumerate(shape):
        f = sfft.fftfreq(n)
        radius2 = radius2 + (f.reshape([-1 if i == axis else 1 for i in range(len(shape))]) ** 2)
    return np.rint(np.sqrt(radius2) / step).astype(np.int64), step


def frc_wiener(a, b, *, pixel_size: float = 1.0) -> WienerResult:
    """Wiener-filter ``a + b`` with the spectral SNR measured by the FRC of ``a`` and ``b``.

    For halves with the same signal and independent noise, ``FRC = S / (S + N)`` per ring, so the
    SNR of one half is ``FRC / (1 - FRC)`` and that of the sum twice as large; the Wiener filter of
    the sum is ``SSNR / (1 + SSNR)``. Rings whose FRC is at or below 0 are removed.

    Parameters
    ----------
    a, b : (Y, X) or (Z, Y, X) arrays
        Independent halves: even/odd frame sums of a movie, even/odd tilt reconstructions of a
        tomogram (FSC in shells), or :func:`split_counts` of one counted image.
    pixel_size : float
        Å per pixel; only sets the units of ``frequency``.

    Returns
    -------
    WienerResult
    """
    a = V.real_array(a, "a", ndim=(2, 3), min_size=8, copies=6.0)
    b = V.real_array(b, "b", ndim=(2, 3), min_size=8, copies=6.0)
    V.same_shape(a, "a", b, "b")
    px = V.positive(pixel_size, "pixel_size", unit="Å")
    fa = sfft.fftn(a, workers=-1)
    fb = sfft.fftn(b, workers=-1)
    rings, step = _ring_index(a.shape)
    n = int(rings.max()) + 1
    cross = np.bincount(rings.ravel(), (fa * np.conj(fb)).real.ravel().astype(np.float64), minlength=n)
    pa = np.bincount(rings.ravel(), (np.abs(fa) ** 2).ravel().astype(np.float64), minlength=n)
    pb = np.bincount(rings.ravel(), (np.abs(fb) ** 2).ravel().astype(np.float64), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        frc = np.where(pa * pb > 0, cross / np.sqrt(pa * pb), 0.0)
    clipped = np.clip(frc, 0.0, 0.999)
    ssnr = 2 * clipped / (1 - clipped)
    gain = ssnr / (1 + ssnr)
    gain[0] = 1.0  # the mean is kept as it is
    filtered = sfft.ifftn((fa + fb) * gain[rings].astype(np.float32), workers=-1).real.astype(np.float32)
    frequency = np.arange(n) * step / px
    return WienerResult(filtered, frequency, frc, ssnr, gain)


# -------------------------------------------------------------------------------------------------
# destripe
# -------------------------------------------------------------------------------------------------
def destripe(image, *, axis: str = "rows") -> np.ndarray:
    """Remove offsets shared by whole rows (``"rows"``), columns (``"columns"``) or both.

    Row offsets lie on the line kx = 0 of the 2D spectrum; there each value is shrunk to the power
    of the neighbouring lines kx = ±1..±3, which carry the specimen's own (smooth) structure but not
    the offsets. The mean is kept.

    Parameters
    ----------
    image : (Y, X) array
    axis : {"rows", "columns", "both"}

    Returns
    -------
    (Y, X) float32
    """
    img = V.real_array(image, "image", ndim=2, min_size=8)
    V.choice(axis, "axis", ("rows", "columns", "both"))
    return destripe_frame(img, parse_destripe(axis, img))


# -------------------------------------------------------------------------------------------------
# denoise
# -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DenoiseResult:
    """A denoised image and what produced it.

    Attributes
    ----------
    image : float32 array of the input's shape (a lazy dask array for a lazy stack)
    method : str
        What was applied: a method name, or "nlm + gaussian" for a blend.
    parts : tuple of (method, strength, weight)
        The denoisers blended (weights sum to 1) with their calibrated strengths.
    calibrations : {method: Calibration}
        Self-supervised loss against strength for each denoiser tried (what "auto" chose from).
    loss : float
        Self-supervised loss of the result (counts²; the true MSE plus the noise variance).
    noise : NoiseModel
    destriped : tuple of str
        The axes destriped ("rows", "columns"), empty if none.
    """

    image: object
    method: str
    parts: tuple
    calibrations: dict = field(default_factory=dict)
    loss: float = float("nan")
    noise: NoiseModel = NoiseModel()
    destriped: tuple = ()

    def describe(self) -> str:
        parts = ", ".join(f"{m} {METHODS[m].parameter.split(' ')[0]} {s:.3g}" + (f" × {w:.2f}" if w < 1 else "")
                          for m, s, w in self.parts if m in METHODS)
        text = f"{self.method}: {parts or 'trained network'}; noise {self.noise.describe()}"
        return text + (f"; destriped {' and '.join(self.destriped)}" if self.destriped else "")


def _check_denoise_args(image, method, destripe, strength, noise, tile, methods):
    V.choice(method, "method", METHOD_NAMES)
    if not isinstance(destripe, (bool, np.bool_)):
        V.choice(destripe, "destripe", ("rows", "columns", "both", "auto"))
    V.positive(strength, "strength", high=1e3, allow_none=True)
    if strength is not None and method == "auto":
        raise ValueError("strength needs one method: its meaning depends on the method (method='auto' given).")
    V.choice(noise, "noise", ("auto", "poisson", "gaussian"))
    if V.integer(tile, "tile", low=64, high=1 << 16) % 32:
        raise ValueError(f"tile must be a multiple of 32 px (the block step of 'spectral'); got {tile}.")
    if not isinstance(methods, (tuple, list)) or not methods:
        raise ValueError(f"methods must be a non-empty tuple of {', '.join(CALIBRATED)}; got {methods!r}.")
    for m in methods:
        V.choice(m, "methods", CALIBRATED)
    frames = as_frames(image)
    return frames


def denoise(image, *, method: str = "auto", destripe: bool | str = False, strength: float | None = None,
            noise: str = "auto", blend: bool = True, methods: tuple = AUTO_METHODS, tile: int = 1024,
            lazy: bool | None = None, progress: ProgressCallback = None) -> DenoiseResult:
    """Denoise a low-dose image (or each frame of a stack) without clean data.

    The noise is modelled (counts: Poisson; otherwise a fit of variance against mean), made Gaussian
    with unit variance by the generalised Anscombe transform, and each denoiser's strength is chosen
    by the Noise2Self loss on a few crops (see :mod:`._denoise_calib`). ``method="auto"`` takes the
    denoiser with the lowest loss, blended with the runner-up when that lowers the loss further.

    Parameters
    ----------
    image : (Y, X) or (T, Y, X) array, numpy or dask
        Raw data (counts, or any values with signal-independent or Poisson-like noise). Frames of a
        stack are denoised with the calibration of the middle frame.
    method : {"auto", "gaussian", "tv", "spectral", "wavelet", "nlm", "n2v"}
        "n2v" trains Noise2Void with careamics, if installed (not a dependency).
    destripe : bool or {"rows", "columns", "both", "auto"}
        Remove row/column offsets first (True means "rows"; "auto": where the spectrum shows them).
    strength : float, optional
        The method's parameter (σ in px for "gaussian"; in units of the noise σ otherwise) instead of
        calibrating it; needs a single method.
    noise : {"auto", "poisson", "gaussian"}
        "poisson": counts with gain 1; "gaussian": no stabilisation; "auto": counts if the values are
        non-negative integers, else fitted.
    blend : bool
        Let "auto" blend the two best denoisers.
    methods : tuple of str
        Denoisers "auto" chooses from (default gaussian, spectral; add "tv", "wavelet", "nlm" at a cost).
    tile : int
        Tile size in px (a multiple of 32); results are identical whatever the tile size.
    lazy : bool, optional
        Return a lazy dask array (stacks: one frame per chunk). Default: lazy iff the input is dask.
    progress : callable(fraction), optional

    Returns
    -------
    DenoiseResult
    """
    frames = _check_denoise_args(image, method, destripe, strength, noise, tile, methods)
    if method == "n2v":
        from napari_cryomat.core._denoise_n2v import n2v_denoise

        return n2v_denoise(frames, image, progress=progress)
    middle = np.asarray(frames[len(frames) // 2] if frames.ndim == 3 else frames, np.float32)
    if not np.all(np.isfinite(middle)):
        raise ValueError("image contains NaN or inf values; replace them (e.g. with the median) or crop them away.")
    if np.ptp(middle) == 0:
        raise ValueError("image is constant: there is nothing to denoise.")
    axes = parse_destripe(destripe, middle)
    middle = destripe_frame(middle, axes)
    boxes = calibration_crops(middle)
    raw = [middle[box] for box in boxes]
    model = _noise_model(raw, noise)
    chosen = (method,) if method != "auto" else tuple(methods)
    calibrations, outputs, target = calibrate_all([stabilise(r, model) for r in raw], raw, model, chosen,
                                                  strength=strength, progress=sub_progress(progress, 0, 0.4))
    parts, loss = _choose(calibrations, outputs, target, blend and method == "auto")
    label = " + ".join(name for name, _, _ in parts)
    result = apply_parts(image, frames, parts, model, axes, tile=tile, lazy=lazy,
                         progress=sub_progress(progress, 0.4, 1.0))
    report(progress, 1.0)
    return DenoiseResult(result, label, tuple(parts), calibrations, loss, model, axes)


def _noise_model(raw: list[np.ndarray], noise: str) -> NoiseModel:
    if noise == "poisson":
        return NoiseModel("poisson", 1.0, 0.0)
    fitted = estimate_noise(raw)
    if noise == "gaussian" and fitted.kind != "gaussian":
        mean = max(float(np.mean([r.mean() for r in raw])), 0.0)
        sigma = float(np.sqrt(fitted.gain * mean + fitted.read_noise**2))
        return NoiseModel("gaussian", 1.0, max(sigma, 1e-12))
    return fitted


def _choose(calibrations: dict, outputs: dict, target: np.ndarray, blend: bool):
    """[(method, strength, weight)] and its loss: the best method, blended with the runner-up if
    that lowers the self-supervised loss."""
    ranked = sorted(calibrations, key=lambda m: calibrations[m].best_loss)
    best = ranked[0]
    parts = [(best, calibrations[best].best, 1.0)]
    loss = calibrations[best].best_loss
    if blend and len(ranked) > 1:
        second = ranked[1]
        w, blended = blend_weight(outputs[best], outputs[second], target)
        if blended < loss and w < 1.0:
            parts = [(best, calibrations[best].best, w), (second, calibrations[second].best, 1.0 - w)]
            loss = blended
    return parts, loss
