"""Input checks and apodisation windows shared by the Fourier tools (:mod:`napari_cryomat.core.fourier`).

Conventions: :mod:`napari_cryomat.core.fourier`."""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from napari_cryomat.core._validate import (
    check_memory,
    positive,
    vector,
)

WINDOWS = ("hann", "periodic_smooth", "none")
MIN_SIZE = 16


# ------------------------------------------------------------------------------------------------
# input checks
# ------------------------------------------------------------------------------------------------
def validate_image(image, *, what: str = "image", min_size: int = MIN_SIZE) -> np.ndarray:
    """Check a 2D real, finite image and return it as a float32 array (a copy only if needed).

    Raises
    ------
    ValueError
        With a message saying what to do, for RGB/colour data, complex data, NaN/inf pixels,
        wrong dimensionality or a region smaller than ``min_size`` pixels along an axis.
    """
    arr = np.asarray(image)
    if np.iscomplexobj(arr):
        raise ValueError(
            f"The {what} holds complex numbers; take the real part, modulus or phase first "
            "(e.g. Layers > Convert) and run again."
        )
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        raise ValueError(f"The {what} is RGB/RGBA; convert it to a single-channel (grey) image first.")
    if arr.ndim != 2:
        raise ValueError(f"The {what} must be 2D (Y, X); got shape {arr.shape}. Pick a single frame or slice.")
    if min(arr.shape) < min_size:
        raise ValueError(
            f"The {what} is {arr.shape[0]}x{arr.shape[1]} px; enlarge it to at least {min_size}x{min_size} px."
        )
    check_memory(arr.size * 4 * 4, what, f"a {arr.shape[0]}x{arr.shape[1]} px Fourier transform")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"The {what} is not numeric (dtype {arr.dtype}).")
    arr = np.asarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"The {what} contains NaN or inf pixels; replace them (e.g. with the median) or move the ROI "
            "to a region without them."
        )
    return arr


def _check_pixel_size(pixel_size) -> float:
    return positive(pixel_size, "pixel_size", unit="Å", label="Pixel size")


def _check_g(g, name: str, p: float, *, nonzero: bool = True) -> np.ndarray:
    """A reciprocal vector (gy, gx) in Å⁻¹, finite and inside Nyquist (0.5 / pixel size)."""
    v = vector(g, name, length=2, nonzero=nonzero, unit="Å⁻¹")
    nyq = 0.5 / p
    if np.max(np.abs(v)) > nyq * (1 + 1e-9):
        raise ValueError(
            f"{name} = ({v[0]:.4g}, {v[1]:.4g}) Å⁻¹ lies beyond Nyquist ({nyq:.4g} Å⁻¹ for a pixel size of "
            f"{p:g} Å); pick a spot inside the spectrum."
        )
    return v


# ------------------------------------------------------------------------------------------------
# windows
# ------------------------------------------------------------------------------------------------
def _hann(n: int) -> np.ndarray:
    # symmetric Hann; float32
    if n < 2:
        return np.ones(n, np.float32)
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1))).astype(np.float32)


def hann_window(shape: tuple[int, int]) -> np.ndarray:
    """Separable 2D Hann window (float32) of ``shape``."""
    return np.outer(_hann(shape[0]), _hann(shape[1])).astype(np.float32)


def periodic_smooth_decomposition(image) -> tuple[np.ndarray, np.ndarray]:
    """Moisan's periodic-plus-smooth decomposition ``image = p + s``.

    ``p`` has the image's content without the discontinuities at the borders that a periodic FFT
    sees, so its spectrum has no cross-shaped edge streaks; ``s`` is a smooth image (harmonic
    inside) carrying those discontinuities.

    Parameters
    ----------
    image : (Y, X) array

    Returns
    -------
    p, s : (Y, X) float32 arrays

    References
    ----------
    L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging Vis. 39 (2011) 161.
    """
    u = validate_image(image, min_size=2)
    ny, nx = u.shape
    v = np.zeros_like(u)
    v[0, :] = u[-1, :] - u[0, :]
    v[-1, :] = -v[0, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    v_hat = sfft.rfft2(v, workers=-1)
    cy = np.cos(2 * np.pi * np.arange(ny) / ny).astype(np.float32)[:, None]
    cx = np.cos(2 * np.pi * np.arange(nx // 2 + 1) / nx).astype(np.float32)[None, :]
    denom = 2 * cy + 2 * cx - 4
    denom[0, 0] = 1.0
    s_hat = v_hat / denom
    s_hat[0, 0] = 0
    s = sfft.irfft2(s_hat, s=(ny, nx), workers=-1).astype(np.float32)
    return u - s, s


def _windowed(image: np.ndarray, window: str) -> np.ndarray:
    """Mean-subtracted, windowed float32 copy of a validated image."""
    img = image - np.float32(image.mean())
    if window == "hann":
        return img * hann_window(img.shape)
    if window == "periodic_smooth":
        p, _ = periodic_smooth_decomposition(img)
        return p - np.float32(p.mean())
    if window == "none":
        return img
    raise ValueError(f"Unknown window {window!r}; window must be one of {WINDOWS}.")
