"""Spots of the power spectrum: sub-pixel refinement by local DFT and peak finding over a radial background.

Conventions: :mod:`napari_cryomat.core.fourier`."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from napari_cryomat.core._fourier_base import _check_g, _check_pixel_size, _windowed, validate_image
from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import (
    MAX_COUNT,
    integer,
    nonnegative,
    number,
    positive,
)


@dataclass
class Peak:
    """A spot in the power spectrum.

    Attributes
    ----------
    g : (2,) array
        Reciprocal vector (gy, gx) in Å⁻¹, refined sub-pixel.
    d : float
        Spacing 1/|g| in Å.
    angle : float
        Direction of g in degrees, counter-clockwise on screen from +X.
    intensity : float
        Peak power |F|² of the mean-subtracted, Hann-windowed image (relative units).
    snr : float
        Peak power over the rotationally averaged background power at the same |g|.
    hk : tuple or None
        Index in the lattice basis, set by :func:`find_lattice`: integers for lattice peaks,
        :class:`fractions.Fraction` for superlattice peaks.
    q : tuple or None
        For superlattice peaks, the modulation vector in basis units (e.g. ``(1/3, 0)``).
    """

    g: np.ndarray
    intensity: float
    snr: float
    hk: tuple | None = None
    q: tuple | None = None

    @property
    def g_abs(self) -> float:
        return float(np.hypot(self.g[0], self.g[1]))

    @property
    def d(self) -> float:
        return 1.0 / self.g_abs

    @property
    def angle(self) -> float:
        return float(np.degrees(np.arctan2(-self.g[0], self.g[1])))

    def label(self) -> str:
        """Short text label: spacing and index or fraction."""
        if self.hk is None:
            return f"{self.d:.3f} Å"
        h, k = (_fmt_frac(x) for x in self.hk)
        return f"{self.d:.3f} Å ({h},{k})"


def _fmt_frac(x) -> str:
    if isinstance(x, Fraction):
        return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
    if isinstance(x, float) and not x.is_integer():  # an incommensurate index, e.g. 0.372
        return f"{x:.3f}".rstrip("0")
    return str(int(x))


def _local_dft(img: np.ndarray, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
    """DFT of ``img`` at fractional frequencies ``ky`` (cycles per image height) × ``kx``."""
    ny, nx = img.shape
    ey = np.exp((-2j * np.pi / ny) * np.outer(ky, np.arange(ny))).astype(np.complex64)
    ex = np.exp((-2j * np.pi / nx) * np.outer(np.arange(nx), kx)).astype(np.complex64)
    return ey @ (img @ ex)


def _parabolic_offset(a, b, c) -> float:
    den = a - 2 * b + c
    if den >= 0:
        return 0.0
    return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def refine_peak(windowed: np.ndarray, ky: float, kx: float, *, stages=((1.0, 9), (0.15, 11))) -> tuple[float, float, float]:
    """Sub-pixel position of a spectral peak by an upsampled local DFT (Guizar-Sicairos style).

    Parameters
    ----------
    windowed : (Y, X) float32
        The mean-subtracted, windowed image.
    ky, kx : float
        Starting position in cycles per image (signed FFT indices).
    stages : sequence of (half_width, n)
        Each stage evaluates an ``n × n`` grid spanning ``± half_width`` FFT pixels around the
        current estimate, moves to its maximum and refines it with a 3-point parabola.

    Returns
    -------
    ky, kx, power : float
        Refined position (cycles per image) and |F|² there.
    """
    windowed = validate_image(windowed, what="windowed image", min_size=2)
    ky = number(ky, "ky")
    kx = number(kx, "kx")
    power = 0.0
    for half, n in stages:
        off = np.linspace(-half, half, n)
        f = _local_dft(windowed, ky + off, kx + off)
        p = f.real**2 + f.imag**2
        iy, ix = np.unravel_index(int(np.argmax(p)), p.shape)
        step = off[1] - off[0]
        dy = _parabolic_offset(p[iy - 1, ix], p[iy, ix], p[iy + 1, ix]) if 0 < iy < n - 1 else 0.0
        dx = _parabolic_offset(p[iy, ix - 1], p[iy, ix], p[iy, ix + 1]) if 0 < ix < n - 1 else 0.0
        ky = ky + off[iy] + dy * step
        kx = kx + off[ix] + dx * step
        power = float(p[iy, ix])
    return float(ky), float(kx), power


def refine_spot(image, pixel_size: float, g, *, search: int = 3) -> Peak:
    """Snap a clicked position in the spectrum to the refined peak nearby.

    Parameters
    ----------
    image : (Y, X) array
        The real-space region whose spectrum was clicked.
    pixel_size : float
        Å per pixel.
    g : (gy, gx)
        Clicked position in Å⁻¹.
    search : int
        Half-width in FFT pixels of the box searched for the brightest pixel before refining.

    Returns
    -------
    Peak
        With sub-pixel ``g``, intensity and SNR against the rotational background.
    """
    p = _check_pixel_size(pixel_size)
    img = validate_image(image)
    g = _check_g(g, "g", p, nonzero=False)
    search = integer(search, "search", low=0, high=max(1, min(img.shape) // 2))
    w = _windowed(img, "hann")
    ny, nx = w.shape
    f = sfft.fft2(w, workers=-1)
    power = (f.real**2 + f.imag**2).astype(np.float32)
    ky0 = int(round(float(g[0]) * ny * p))
    kx0 = int(round(float(g[1]) * nx * p))
    best, by, bx = -1.0, ky0, kx0
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            v = power[(ky0 + dy) % ny, (kx0 + dx) % nx]
            if v > best:
                best, by, bx = float(v), ky0 + dy, kx0 + dx
    ky, kx, pw = refine_peak(w, float(by), float(bx))
    bg = _radial_background(power)[by % ny, bx % nx]
    return Peak(np.array([ky / (ny * p), kx / (nx * p)]), pw, float(pw / bg))


def _radial_background(power: np.ndarray) -> np.ndarray:
    """Background power per pixel: exp(rotational mean of log power + Euler γ), per-axis scaled |k|."""
    ny, nx = power.shape
    ky = sfft.fftfreq(ny)[:, None] * ny
    kx = sfft.fftfreq(nx)[None, :] * nx
    r = np.sqrt((ky * (min(ny, nx) / ny)) ** 2 + (kx * (min(ny, nx) / nx)) ** 2)
    ri = np.rint(r).astype(np.intp)
    logp = np.log(np.maximum(power, np.float32(1e-30)))
    n = np.bincount(ri.ravel())
    s = np.bincount(ri.ravel(), weights=logp.ravel())
    mean = s / np.maximum(n, 1)
    # smooth the ring means a little so that a ring holding a strong spot is not biased
    mean = ndimage.median_filter(mean, size=5, mode="nearest")
    return np.exp(mean[ri] + 0.5772).astype(np.float32)


def find_peaks(
    image,
    pixel_size: float = 1.0,
    *,
    min_snr: float = 25.0,
    max_peaks: int = 60,
    g_min: float | None = None,
    g_max: float | None = None,
    refine: bool = True,
    progress: ProgressCallback = None,
) -> list[Peak]:
    """Spots in the power spectrum, refined sub-pixel.

    The image is mean-subtracted and Hann-windowed. A spot is a 5×5 local maximum of |F|² whose
    power exceeds ``min_snr`` times the rotationally averaged background at that |g| (for white
    noise the chance of a false spot per pixel is ``exp(-min_snr)``). Each spot is then refined
    by an upsampled local DFT to about 0.01 FFT pixel.

    Parameters
    ----------
    image : (Y, X) array
    pixel_size : float
        Å per pixel.
    min_snr : float
        Detection threshold on power / background.
    max_peaks : int
        Keep at most this many, strongest first (Friedel pairs count twice).
    g_min, g_max : float, optional
        Band of |g| in Å⁻¹ to search. ``g_min`` defaults to 4 FFT pixels (skips the DC region).
    refine : bool
        Sub-pixel refinement (recommended: one FFT pixel is 1/N of |g|).

    Returns
    -------
    list of Peak
        Sorted by decreasing intensity; both members of each Friedel pair (±g) are listed.
    """
    p = _check_pixel_size(pixel_size)
    min_snr = nonnegative(min_snr, "min_snr", high=1e12)
    max_peaks = integer(max_peaks, "max_peaks", low=1, high=MAX_COUNT)
    g_min = nonnegative(g_min, "g_min", unit="Å⁻¹", allow_none=True)
    g_max = positive(g_max, "g_max", unit="Å⁻¹", allow_none=True)
    img = validate_image(image)
    w = _windowed(img, "hann")
    ny, nx = w.shape
    f = sfft.fft2(w, workers=-1)
    power = (f.real**2 + f.imag**2).astype(np.float32)
    report(progress, 0.1)
    bg = _radial_background(power)
    snr = power / bg
    fy = sfft.fftfreq(ny, d=p)[:, None]
    fx = sfft.fftfreq(nx, d=p)[None, :]
    gabs = np.sqrt(fy**2 + fx**2)
    g_lo = 4.0 / (min(ny, nx) * p) if g_min is None else float(g_min)
    band = gabs >= g_lo
    if g_max is not None:
        band &= gabs <= float(g_max)
    # local maxima on the periodic spectrum
    lm = ndimage.maximum_filter(power, size=5, mode="wrap") == power
    cand = np.flatnonzero((lm & band & (snr > min_snr)).ravel())
    order = np.argsort(power.ravel()[cand])[::-1]
    cand = cand[order]
    # keep one of each Friedel pair, strongest first
    chosen: list[tuple[int, int]] = []
    seen = set()
    for flat in cand:
        iy, ix = divmod(int(flat), nx)
        if (iy, ix) in seen:
            continue
        seen.add((iy, ix))
        seen.add(((-iy) % ny, (-ix) % nx))
        chosen.append((iy, ix))
        if 2 * len(chosen) >= max_peaks:
            break
    peaks: list[Peak] = []
    for i, (iy, ix) in enumerate(chosen):
        ky = iy if iy <= ny // 2 else iy - ny
        kx = ix if ix <= nx // 2 else ix - nx
        if refine:
            ky, kx, pw = refine_peak(w, float(ky), float(kx))
        else:
            pw = float(power[iy, ix])
        g = np.array([ky / (ny * p), kx / (nx * p)])
        s = float(pw / bg[iy, ix])
        peaks.append(Peak(g, pw, s))
        peaks.append(Peak(-g, pw, s))
        report(progress, 0.1 + 0.9 * (i + 1) / max(1, len(chosen)))
    peaks.sort(key=lambda pk: -pk.intensity)
    return peaks
