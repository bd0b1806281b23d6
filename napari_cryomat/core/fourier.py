"""Calibrated reciprocal space: power spectra, sub-pixel peaks, lattice indexing, Bragg filtering,
geometric phase analysis (GPA), periodic-lattice-displacement (PLD) maps and Bragg-peak decay.

Conventions
-----------
- Images are (Y, X) arrays; stacks are (T, Y, X). Pixel sizes are in Å.
- Reciprocal vectors are ``(gy, gx)`` in Å⁻¹ with ``g = k / (N * pixel_size)`` for FFT index ``k``;
  an image ``cos(2π g·r)`` with ``r = (y, x)`` in Å has its peaks at ``±g``.
- Angles of reciprocal vectors are in degrees, measured from +X towards -Y, i.e. counter-clockwise
  *on screen* (Y points down in an image display), as in DigitalMicrograph.
- FFTs use :mod:`scipy.fft` on float32 with ``workers=-1``.

No Qt and no napari here: the "Live FFT" widget only calls :class:`LiveSpectrum` and the
functions below.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import scipy.fft as sfft
from scipy import ndimage, optimize

from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import (
    MAX_COUNT,
    check_memory,
    choice,
    fraction,
    integer,
    nonnegative,
    number,
    positive,
    vector,
)

__all__ = [
    "BraggSeries",
    "GPAResult",
    "Lattice",
    "LiveSpectrum",
    "PLDResult",
    "Peak",
    "PowerSpectrum",
    "bragg_filter",
    "bragg_intensity_series",
    "find_lattice",
    "find_peaks",
    "gpa",
    "periodic_smooth_decomposition",
    "pld_map",
    "power_spectrum",
    "radial_profile",
    "refine_basis_on_image",
    "refine_peak",
    "refine_spot",
    "validate_image",
]

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


# ------------------------------------------------------------------------------------------------
# power spectrum
# ------------------------------------------------------------------------------------------------
@dataclass
class PowerSpectrum:
    """A centred power spectrum with its reciprocal calibration.

    Attributes
    ----------
    data : (Y, X) float32
        ``log(1 + |F|²)`` (or ``|F|²`` when not log-scaled), zero frequency at ``centre``.
    reciprocal_pixel : (float, float)
        Å⁻¹ per spectrum pixel along Y and X: ``1 / (N * pixel_size)``.
    centre : (int, int)
        Index of g = 0 (``N // 2`` per axis, as ``numpy.fft.fftshift``).
    pixel_size : float
        Real-space pixel size in Å.
    """

    data: np.ndarray
    reciprocal_pixel: tuple[float, float]
    centre: tuple[int, int]
    pixel_size: float

    def g_at(self, row: float, col: float) -> np.ndarray:
        """Reciprocal vector (gy, gx) in Å⁻¹ at spectrum position (row, col)."""
        return np.array(
            [(row - self.centre[0]) * self.reciprocal_pixel[0], (col - self.centre[1]) * self.reciprocal_pixel[1]]
        )

    def index_of(self, g) -> tuple[float, float]:
        """Spectrum position (row, col) of reciprocal vector ``g`` = (gy, gx) in Å⁻¹."""
        return (
            self.centre[0] + g[0] / self.reciprocal_pixel[0],
            self.centre[1] + g[1] / self.reciprocal_pixel[1],
        )


def power_spectrum(image, pixel_size: float = 1.0, *, window: str = "hann", log: bool = True) -> PowerSpectrum:
    """Centred (log-scaled) power spectrum of an image, calibrated in Å⁻¹.

    Parameters
    ----------
    image : (Y, X) array
        Real image. The mean is removed before windowing.
    pixel_size : float
        Pixel size in Å.
    window : {"hann", "periodic_smooth", "none"}
        ``"hann"``: separable Hann taper (no edge streaks, slightly wider peaks);
        ``"periodic_smooth"``: Moisan decomposition (no edge streaks, full resolution);
        ``"none"``: raw periodic FFT.
    log : bool
        Return ``log(1 + |F|²)`` (natural log) instead of ``|F|²``.

    Returns
    -------
    PowerSpectrum
    """
    p = _check_pixel_size(pixel_size)
    choice(window, "window", WINDOWS)
    img = validate_image(image)
    w = _windowed(img, window)
    f = sfft.fft2(w, workers=-1)
    power = (f.real**2 + f.imag**2).astype(np.float32)
    power = sfft.fftshift(power)
    if log:
        power = np.log1p(power, dtype=np.float32)
    ny, nx = img.shape
    return PowerSpectrum(power, (1.0 / (ny * p), 1.0 / (nx * p)), (ny // 2, nx // 2), p)


class LiveSpectrum:
    """The lean, cached power-spectrum path behind the live FFT display.

    Per call: one fused cast × window multiply, one ``scipy.fft.rfft2`` (float32,
    ``workers=-1``, in place) and one modulus written into the output. Nothing else touches
    every pixel:

    - the row ``fftshift`` is folded into the cached window: multiplying by ``(-1)^y`` moves
      ky = 0 to the centre row (even heights; odd heights take one extra copy);
    - the log is free: the bit pattern of a positive float32 read as an integer is
      ``2**23 * (log2(x) + 127)`` to within 0.09 in log2 (monotonic), so the display array is
      ``|F|`` reinterpreted as int32. :meth:`to_ln` converts such values to ``ln |F|²``;
    - the spectrum of a real image is point-symmetric, so by default only the half-plane
      kx ≥ 0 is returned: a display draws the other half as the same array rotated by 180°
      about g = 0 (a free transform in Qt). ``full=True`` (or :meth:`mirror`) builds the
      full centred array at the cost of one more pass.

    Examples
    --------
    >>> live = LiveSpectrum()
    >>> half, levels = live(roi)               # roi: (Y, X) array, any real dtype
    >>> full = live.mirror(half, roi.shape)    # (Y, X), zero frequency at (Y//2, X//2)
    >>> ln_power = LiveSpectrum.to_ln(full)
    """

    def __init__(self, *, window: str = "hann"):
        if window not in ("hann", "none"):
            raise ValueError("LiveSpectrum supports window='hann' or 'none'.")
        self.window = window
        self._cache: dict[tuple[int, int], tuple] = {}

    @staticmethod
    def to_ln(values) -> np.ndarray:
        """Convert display values (float32 bits read as int32) to ``ln |F|²``."""
        return (np.asarray(values, np.float64) / 2**23 - 127.0) * (2.0 * np.log(2.0))

    def _prepare(self, shape):
        entry = self._cache.get(shape)
        if entry is None:
            ny, nx = shape
            wy = _hann(ny) if self.window == "hann" else np.ones(ny, np.float32)
            wx = _hann(nx) if self.window == "hann" else np.ones(nx, np.float32)
            if ny % 2 == 0:
                wy = wy * np.where(np.arange(ny) % 2 == 0, 1, -1).astype(np.float32)
            win = np.outer(wy, wx).astype(np.float32)
            entry = (
                win,
                np.empty(shape, np.float32),  # windowed input (overwritten by the FFT)
                np.empty((ny, nx // 2 + 1), np.float32),  # |F| of the half plane
                np.empty((ny, nx // 2 + 1), np.float32),  # row-centred copy (odd heights only)
            )
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[shape] = entry
        return entry

    @staticmethod
    def mirror(half: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Full centred spectrum (Y, X) from a row-centred half spectrum (Y, X//2+1).

        ``half[r, c]`` holds ky = r - Y//2, kx = c. Column j < X//2 of the result holds
        kx = j - X//2, taken from the point mirror P(-ky, -kx).
        """
        ny, nx = shape
        hy, hx = ny // 2, nx // 2
        out = np.empty((ny, nx), half.dtype)
        out[:, hx:] = half[:, : nx - hx]
        # row of -ky: r' = 2*hy - r (mod ny) in the centred layout
        rows = (2 * hy - np.arange(ny)) % ny
        out[:, :hx] = half[rows][:, hx:0:-1]
        return out

    def __call__(self, roi, *, full: bool = False) -> tuple[np.ndarray, tuple[float, float]]:
        """Power spectrum for display and suggested display levels.

        Parameters
        ----------
        roi : (Y, X) real array
        full : bool
            Return the full centred (Y, X) spectrum instead of the half plane.

        Returns
        -------
        spectrum : (Y, X // 2 + 1) or (Y, X) int32
            ``|F|`` as float32 bits read as int32, i.e. a monotonic log scale (see
            :meth:`to_ln`). Half plane: row r is ky = r - Y // 2, column c is kx = c.
            Full: zero frequency at ``(Y // 2, X // 2)``. The half-plane array is a cached
            buffer reused by the next call with the same shape: copy it to keep it.
        levels : (float, float)
            Display range in the same units (30th to 99.95th percentile of a strided sample).
        """
        roi = np.asarray(roi)
        if np.iscomplexobj(roi) or not np.issubdtype(roi.dtype, np.number) and roi.dtype != np.bool_:
            raise ValueError(f"roi must hold real numbers (take the modulus or phase first); got dtype {roi.dtype}.")
        if roi.ndim != 2 or min(roi.shape) < 2:
            raise ValueError(f"roi must be a 2D region (Y, X) of at least 2x2 px; got shape {roi.shape}.")
        check_memory(roi.size * 4 * 3, "roi", "its spectrum")
        ny, nx = roi.shape
        win, buf, half, rolled = self._prepare(roi.shape)
        np.multiply(roi, win, out=buf, casting="unsafe")
        # threads only pay off above ~256²; below, their start-up costs more than they save
        f = sfft.rfft2(buf, workers=-1 if ny * nx > 300 * 300 else 1, overwrite_x=True)
        if not np.isfinite(f[0, 0]):  # any NaN/inf pixel poisons the zero-frequency term
            raise ValueError("The region (roi) contains NaN or inf pixels; move the ROI or clean the image.")
        np.abs(f, out=half)  # |F|: one pass, cheaper than re² + im²
        if ny % 2:  # odd height: centre the rows by hand
            hy = ny // 2
            rolled[:hy] = half[ny - hy :]
            rolled[hy:] = half[: ny - hy]
            half = rolled
        out = half.view(np.int32)
        sample = out[:: max(1, ny // 32), :: max(1, nx // 64)].ravel()  # ~1000 values
        srt = np.sort(sample)
        m = srt.size
        lo, hi = float(srt[int(m * 0.3)]), float(srt[min(m - 1, int(m * 0.9995))])
        if hi <= lo:
            hi = lo + 1.0
        if full:
            out = self.mirror(out, (ny, nx))
        return out, (lo, hi)


# ------------------------------------------------------------------------------------------------
# peaks
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# lattice indexing
# ------------------------------------------------------------------------------------------------
@dataclass
class Lattice:
    """A 2D reciprocal lattice with its indexed and superlattice spots.

    Attributes
    ----------
    g1, g2 : (2,) arrays
        Basis vectors (gy, gx) in Å⁻¹.
    peaks : list of Peak
        Spots indexed as integer combinations ``h g1 + k g2`` (``hk`` set).
    superlattice : list of Peak
        Spots at rational fractions of the basis (``hk`` of Fractions) with their modulation
        vector ``q`` in basis units, e.g. ``(Fraction(1, 3), Fraction(0))``.
    unindexed : list of Peak
        Spots that fit neither.
    """

    g1: np.ndarray
    g2: np.ndarray
    peaks: list = field(default_factory=list)
    superlattice: list = field(default_factory=list)
    unindexed: list = field(default_factory=list)

    @property
    def d1(self) -> float:
        """Spacing of g1 in Å."""
        return 1.0 / float(np.hypot(*self.g1))

    @property
    def d2(self) -> float:
        """Spacing of g2 in Å."""
        return 1.0 / float(np.hypot(*self.g2))

    @property
    def angle(self) -> float:
        """Angle between g1 and g2 in degrees."""
        c = float(np.dot(self.g1, self.g2) / (np.hypot(*self.g1) * np.hypot(*self.g2)))
        return float(np.degrees(np.arccos(np.clip(c, -1, 1))))

    @property
    def modulation_vectors(self) -> list[tuple]:
        """Distinct superlattice modulation vectors q (basis units)."""
        out = []
        for pk in self.superlattice:
            if pk.q not in out:
                out.append(pk.q)
        return out

    def q_vector(self, q) -> np.ndarray:
        """Modulation vector in Å⁻¹ (gy, gx) from basis units."""
        return float(q[0]) * self.g1 + float(q[1]) * self.g2


def _upper(g) -> bool:
    return g[0] < 0 or (g[0] == 0 and g[1] > 0)  # "up" on screen


def _canonical_q(q: tuple[Fraction, Fraction]) -> tuple[Fraction, Fraction]:
    a, b = q
    if a < 0 or (a == 0 and b < 0):
        a, b = -a, -b
    return (a, b)


def find_lattice(
    image,
    pixel_size: float = 1.0,
    *,
    min_snr: float = 25.0,
    strong_fraction: float = 0.1,
    tolerance: float = 0.06,
    max_denominator: int = 6,
    max_peaks: int = 60,
    peaks: Sequence[Peak] | None = None,
    superlattice_snr: float | None = 12.0,
    fit_image: bool = True,
    progress: ProgressCallback = None,
) -> Lattice:
    """Find and index the lattice and any superlattice in an image.

    The basis is chosen among the *strong* spots (power ≥ ``strong_fraction`` × the strongest):
    ``g1`` is the shortest strong spot, ``g2`` the shortest strong spot not collinear with it,
    with the sign making the angle between them at most 90°. The basis is then refined by least
    squares on all integer-indexed spots (higher orders give a longer lever arm, each spot weighted
    by its SNR) and, with ``fit_image``, fitted to the image itself with all those harmonics
    (:func:`refine_basis_on_image`, the maximum-likelihood basis under white noise). All spots
    are indexed: integer combinations are lattice spots; rational fractions with denominator up
    to ``max_denominator`` are superlattice spots whose fractional part is the modulation vector q.

    Parameters
    ----------
    image : (Y, X) array
    pixel_size : float
        Å per pixel.
    min_snr, max_peaks :
        Passed to :func:`find_peaks`.
    strong_fraction : float
        Spots at least this fraction of the strongest one's power may define the basis.
    tolerance : float
        Largest deviation, in basis units, for a spot to count as indexed.
    max_denominator : int
        Largest denominator of superlattice fractions (1/2 … 1/max_denominator).
    peaks : list of Peak, optional
        Use these spots instead of detecting them.
    superlattice_snr : float or None
        After indexing, look for weak superlattice spots *at the predicted fractional positions*
        only (h/n, k/n for n ≤ ``max_denominator``), with this lower SNR threshold. A modulation
        vector is accepted only if at least two independent satellites (not Friedel mates)
        support it, which keeps false detections rare. ``None`` switches the search off.
    fit_image : bool
        Refine the basis by a least-squares fit of its harmonics to the unwindowed image
        (about half the d-spacing error of the spot positions at equal noise). The spot-based
        basis is kept if that fit does not converge or moves a harmonic by more than half an
        FFT pixel. Ignored when ``image`` is None.

    Returns
    -------
    Lattice

    Raises
    ------
    ValueError
        If fewer than two non-collinear strong spots are found.
    """
    p = _check_pixel_size(pixel_size)
    min_snr = nonnegative(min_snr, "min_snr", high=1e12)
    strong_fraction = fraction(strong_fraction, "strong_fraction")
    tolerance = fraction(tolerance, "tolerance", high=0.5, low_open=True)
    max_denominator = integer(max_denominator, "max_denominator", low=1, high=12)
    max_peaks = integer(max_peaks, "max_peaks", low=1, high=MAX_COUNT)
    if superlattice_snr is not None:
        superlattice_snr = nonnegative(superlattice_snr, "superlattice_snr", high=1e12)
    if peaks is not None:
        peaks = list(peaks)
        for k, pk in enumerate(peaks):
            if not isinstance(pk, Peak):
                raise ValueError(f"peaks[{k}] must be a Peak (from find_peaks); got {type(pk).__name__}.")
            _check_g(pk.g, f"peaks[{k}].g", p)
    if peaks is None:
        peaks = find_peaks(
            image,
            p,
            min_snr=min_snr,
            max_peaks=max_peaks,
            progress=(lambda f: report(progress, 0.9 * f)) if progress else None,
        )
    if not peaks:
        raise ValueError(
            "No spots found in the FFT of the image; choose a crystalline region or lower the SNR threshold (min_snr)."
        )
    imax = max(pk.intensity for pk in peaks)
    strong = [pk for pk in peaks if pk.intensity >= strong_fraction * imax and _upper(pk.g)]
    strong.sort(key=lambda pk: pk.g_abs)
    if not strong:
        raise ValueError("No strong spots in the FFT; choose a crystalline region.")
    g1 = strong[0].g
    g2 = None
    for pk in strong[1:]:
        s = abs(g1[0] * pk.g[1] - g1[1] * pk.g[0]) / (np.hypot(*g1) * pk.g_abs)
        if s > 0.2:
            g2 = pk.g
            break
    if g2 is None:
        raise ValueError(
            "Only one row of spots found (a 1D lattice); a 2D basis needs two non-collinear spots. "
            "Tilt to a zone axis or pick a region showing a 2D lattice."
        )
    if np.dot(g1, g2) < 0:
        g2 = -g2
    basis = np.column_stack([g1, g2])  # g = basis @ (h, k)

    def coeffs(g):
        return np.linalg.solve(basis, g)

    # least-squares refinement on integer-indexed spots (two passes)
    for _ in range(2):
        hk_list, g_list, w_list = [], [], []
        for pk in peaks:
            c = coeffs(pk.g)
            r = np.rint(c)
            if np.all(np.abs(c - r) < tolerance) and np.any(r != 0):
                hk_list.append(r)
                g_list.append(pk.g)
                w_list.append(np.sqrt(max(pk.snr, 1.0)))
        if len(hk_list) >= 2:
            hk = np.array(hk_list)
            gs = np.array(g_list)
            wts = np.array(w_list)[:, None]
            sol, *_ = np.linalg.lstsq(hk * wts, gs * wts, rcond=None)  # gs ≈ hk @ sol, sol rows g1,g2
            basis = sol.T
    if fit_image and image is not None and len(hk_list) >= 2:
        img = validate_image(image)
        # one harmonic per Friedel pair, in the upper half of (h, k)
        harmonics = sorted({(int(h), int(k)) if (h, k) > (0, 0) else (-int(h), -int(k)) for h, k in hk_list})
        f1, f2, ok = refine_basis_on_image(img, p, basis[:, 0], basis[:, 1], harmonics)
        if ok:
            # accept only a sub-pixel correction: the spots already fixed each harmonic to < 1 FFT pixel
            hmat = np.array(harmonics, float)
            moved = hmat @ (np.column_stack([f1, f2]) - basis).T  # (M, 2) harmonic shifts in Å⁻¹
            if np.max(np.abs(moved) * np.array(img.shape) * p) < 0.5:
                basis = np.column_stack([f1, f2])
    g1, g2 = basis[:, 0].copy(), basis[:, 1].copy()
    lat = Lattice(g1, g2)
    for pk in peaks:
        c = coeffs(pk.g)
        r = np.rint(c)
        if np.all(np.abs(c - r) < tolerance):
            if np.all(r == 0):
                continue
            pk.hk = (int(r[0]), int(r[1]))
            lat.peaks.append(pk)
            continue
        for n in range(2, max_denominator + 1):
            rn = np.rint(c * n)
            if np.all(np.abs(c - rn / n) < tolerance):
                h, k = Fraction(int(rn[0]), n), Fraction(int(rn[1]), n)
                pk.hk = (h, k)
                qa = h - round(h)
                qb = k - round(k)
                # fractional part in (-1/2, 1/2]
                qa = qa + 1 if qa <= Fraction(-1, 2) else qa
                qb = qb + 1 if qb <= Fraction(-1, 2) else qb
                pk.q = _canonical_q((qa, qb))
                lat.superlattice.append(pk)
                break
        else:
            lat.unindexed.append(pk)
    if superlattice_snr is not None and image is not None:
        _targeted_superlattice(image, p, lat, max_denominator, float(superlattice_snr))
    report(progress, 1.0)
    return lat


def _real_dot(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``a @ e`` for a real matrix ``a`` and a complex ``e`` as two real products (no complex copy of ``a``)."""
    return a @ e.real + 1j * (a @ e.imag)


def refine_basis_on_image(
    image,
    pixel_size: float,
    g1,
    g2,
    hk,
    *,
    max_iter: int = 20,
    tol: float = 1e-10,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Least-squares fit of a lattice's reciprocal basis directly to the (unwindowed) image.

    The image is modelled as a sum of the lattice's harmonics ``G = h g1 + k g2`` (one complex
    amplitude each, Friedel mates by symmetry) plus a plane background, and the four components
    of ``g1``, ``g2`` are fitted jointly with the amplitudes by Gauss-Newton. Under white noise
    this is the maximum-likelihood estimate of the basis and reaches the Cramér–Rao bound:
    unlike peak positions measured in a Hann-windowed spectrum (whose taper throws away the
    outer pixels' lever arm and inflates the frequency variance about 3.5x for a 2D Hann
    window), every pixel counts with the same weight, each harmonic is weighted by its own
    power, and the harmonics' mutual leakage is part of the model, so the rectangular window
    adds no bias.

    Parameters
    ----------
    image : (Y, X) array
        Real-space region (any real dtype).
    pixel_size : float
        Å per pixel.
    g1, g2 : (gy, gx)
        Starting basis in Å⁻¹, e.g. from spot positions; must be within a fraction of an FFT
        pixel of the optimum for the highest harmonic used.
    hk : sequence of (h, k)
        Integer indices of the harmonics to model (one of each Friedel pair; ``(0, 0)`` ignored).
    max_iter : int
        Largest number of Gauss-Newton steps.
    tol : float
        Stop when no basis component moves by more than ``tol`` times the largest one.

    Returns
    -------
    g1, g2 : (2,) arrays
        Fitted basis in Å⁻¹.
    converged : bool
        False if the fit did not settle within ``max_iter`` steps or went non-finite; the
        caller should then keep its starting basis.
    """
    p = _check_pixel_size(pixel_size)
    x = validate_image(image, min_size=2).astype(np.float64)
    g1 = _check_g(g1, "g1", p)
    g2 = _check_g(g2, "g2", p)
    max_iter = integer(max_iter, "max_iter", low=1, high=10_000)
    tol = nonnegative(tol, "tol", high=1.0)
    try:
        hk_arr = np.asarray(hk, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError(f"hk must be a sequence of integer pairs (h, k); got {hk!r}.") from None
    if not np.all(np.isfinite(hk_arr)) or np.any(hk_arr != np.round(hk_arr)) or np.any(np.abs(hk_arr) > 1000):
        raise ValueError(f"hk must hold integer pairs (h, k) of at most 1000 in size; got {hk!r}.")
    x = x - x.mean()
    ny, nx = x.shape
    H = np.array([h for h in hk_arr if tuple(h) != (0, 0)], float).reshape(-1, 2)
    th = np.concatenate([np.asarray(g1, float), np.asarray(g2, float)])
    if len(H) == 0:
        return th[:2], th[2:], False
    # centred coordinates in Å: the plane and the harmonics' phase and frequency terms decouple
    yc = (np.arange(ny) - (ny - 1) / 2) * p
    xc = (np.arange(nx) - (nx - 1) / 2) * p
    syy, sxx = nx * float(yc @ yc), ny * float(xc @ xc)
    npx = ny * nx

    def exps(th):
        G = H[:, :1] * th[None, :2] + H[:, 1:] * th[None, 2:]  # (M, 2) harmonics in Å⁻¹
        return np.exp(2j * np.pi * np.outer(yc, G[:, 0])), np.exp(2j * np.pi * np.outer(xc, G[:, 1]))

    ey, ex = exps(th)
    amp = np.conj(np.sum(ey * _real_dot(x, ex), axis=0)) / npx  # model: sum of 2 Re(a e^{2πi G·r})
    plane = np.zeros(3)
    for _ in range(max_iter):
        ya = ey * amp
        model = 2 * (ya.real @ ex.real.T - ya.imag @ ex.imag.T)
        res = x - model - plane[0] - plane[1] * yc[:, None] - plane[2] * xc[None, :]
        t0 = _real_dot(res, ex)
        m0 = np.sum(ey * t0, axis=0)  # Σ res e^{2πi G·r}
        my = np.sum(yc[:, None] * ey * t0, axis=0)  # Σ y res e^{2πi G·r}
        mx = np.sum(ey * _real_dot(res, xc[:, None] * ex), axis=0)
        # gradient of the model along G: 2 Re(2πi a r e); the squared norm of those columns is
        # 8π²|a|² Σy² (resp. Σx²), cross terms between harmonics are negligible
        gy = 2 * (2j * np.pi * amp * my).real
        gx = 2 * (2j * np.pi * amp * mx).real
        w = 8 * np.pi**2 * np.abs(amp) ** 2
        jtr = np.array([H[:, 0] @ gy, H[:, 0] @ gx, H[:, 1] @ gy, H[:, 1] @ gx])
        jtj = np.zeros((4, 4))
        for u, s_uu in ((0, syy), (1, sxx)):
            for a_ in range(2):
                for b_ in range(2):
                    jtj[2 * a_ + u, 2 * b_ + u] = float(np.sum(H[:, a_] * H[:, b_] * w)) * s_uu
        try:
            step = np.linalg.solve(jtj, jtr)
        except np.linalg.LinAlgError:
            return np.asarray(g1, float), np.asarray(g2, float), False
        amp = amp + np.conj(m0) / npx
        plane = plane + np.array([res.mean(), res.sum(1) @ yc / syy, res.sum(0) @ xc / sxx])
        th = th + step
        if not np.all(np.isfinite(th)):
            return np.asarray(g1, float), np.asarray(g2, float), False
        if np.max(np.abs(step)) <= tol * np.max(np.abs(th)):
            return th[:2], th[2:], True
        ey, ex = exps(th)
    return th[:2], th[2:], False


def _targeted_superlattice(image, p: float, lat: Lattice, max_den: int, thr: float) -> None:
    """Add weak superlattice spots found at predicted fractional positions (see find_lattice)."""
    img = validate_image(image)
    w = _windowed(img, "hann")
    ny, nx = w.shape
    f = sfft.fft2(w, workers=-1)
    power = (f.real**2 + f.imag**2).astype(np.float32)
    snr = power / _radial_background(power)
    known = [pk.g for pk in lat.peaks + lat.superlattice + lat.unindexed]
    hmax = max([max(abs(pk.hk[0]), abs(pk.hk[1])) for pk in lat.peaks] or [1]) + 1
    gmax = 1.02 * max([pk.g_abs for pk in lat.peaks] or [0.5 / p])
    g_lo = 4.0 / (min(ny, nx) * p)
    dg = 1.0 / (min(ny, nx) * p)
    cands: dict = {}
    for n in range(2, max_den + 1):
        for h in range(-hmax * n, hmax * n + 1):
            for k in range(-hmax * n, hmax * n + 1):
                fh, fk = Fraction(h, n), Fraction(k, n)
                if max(fh.denominator, fk.denominator) != n:
                    continue  # integer, or found with a smaller denominator
                g = float(fh) * lat.g1 + float(fk) * lat.g2
                ga = float(np.hypot(*g))
                if ga > gmax or ga < g_lo or not _upper(g):
                    continue
                if any(np.hypot(*(g - kg)) < 2 * dg for kg in known):
                    continue
                ky, kx = int(round(g[0] * ny * p)), int(round(g[1] * nx * p))
                box = snr.take(range(ky - 1, ky + 2), axis=0, mode="wrap").take(range(kx - 1, kx + 2), axis=1, mode="wrap")
                if float(box.max()) < thr:
                    continue
                qa, qb = fh - round(fh), fk - round(fk)
                qa = qa + 1 if qa <= Fraction(-1, 2) else qa
                qb = qb + 1 if qb <= Fraction(-1, 2) else qb
                q = _canonical_q((qa, qb))
                cands.setdefault(q, []).append(((fh, fk), ky, kx))
    for q, items in cands.items():
        if len(items) < 2 and q not in lat.modulation_vectors:
            continue
        for (fh, fk), ky, kx in items:
            iy, ix = np.unravel_index(
                int(np.argmax(snr.take(range(ky - 1, ky + 2), axis=0, mode="wrap").take(range(kx - 1, kx + 2), axis=1, mode="wrap"))),
                (3, 3),
            )
            ry, rx, pw = refine_peak(w, float(ky + iy - 1), float(kx + ix - 1))
            g = np.array([ry / (ny * p), rx / (nx * p)])
            s = float(snr[(ky + iy - 1) % ny, (kx + ix - 1) % nx])
            lat.superlattice.append(Peak(g, pw, s, hk=(fh, fk), q=q))
            lat.superlattice.append(Peak(-g, pw, s, hk=(-fh, -fk), q=q))


# ------------------------------------------------------------------------------------------------
# radial profile
# ------------------------------------------------------------------------------------------------
def radial_profile(
    image, pixel_size: float = 1.0, *, window: str = "hann", bin_width: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rotational average of the power spectrum, for amorphous and polycrystalline rings.

    Parameters
    ----------
    image : (Y, X) array
    pixel_size : float
        Å per pixel.
    window : {"hann", "periodic_smooth", "none"}
    bin_width : float, optional
        Bin width in Å⁻¹; default one FFT pixel of the shorter axis.

    Returns
    -------
    g : (n,) float array
        Bin centres |g| in Å⁻¹, up to Nyquist 1/(2·pixel_size).
    profile : (n,) float array
        Mean power |F|² in each bin (relative units).
    """
    p = _check_pixel_size(pixel_size)
    choice(window, "window", WINDOWS)
    img = validate_image(image)
    ny, nx = img.shape
    if bin_width is not None:
        # at most ~10 bins per FFT pixel: finer bins are empty, and a tiny width would ask for 1e300 bins
        positive(bin_width, "bin_width", unit="Å⁻¹", high=None)
        min_bw = 0.1 / (max(ny, nx) * p)
        if float(bin_width) < min_bw:
            raise ValueError(
                f"bin_width must be at least {min_bw:.3g} Å⁻¹ (a tenth of an FFT pixel); got {bin_width!r}."
            )
    w = _windowed(img, window)
    f = sfft.rfft2(w, workers=-1)
    power = f.real**2 + f.imag**2
    fy = sfft.fftfreq(ny, d=p)[:, None]
    fx = sfft.rfftfreq(nx, d=p)[None, :]
    gabs = np.sqrt(fy**2 + fx**2)
    bw = float(bin_width) if bin_width else 1.0 / (min(ny, nx) * p)
    nyq = 0.5 / p
    nb = int(np.floor(nyq / bw))
    idx = np.floor(gabs / bw).astype(np.intp).ravel()
    keep = idx < nb
    cnt = np.bincount(idx[keep], minlength=nb)
    s = np.bincount(idx[keep], weights=power.ravel()[keep], minlength=nb)
    prof = s / np.maximum(cnt, 1)
    g = (np.arange(nb) + 0.5) * bw
    good = cnt > 0
    return g[good], prof[good]


# ------------------------------------------------------------------------------------------------
# Fourier filtering
# ------------------------------------------------------------------------------------------------
def _as_g_array(peaks) -> np.ndarray:
    if isinstance(peaks, Peak):
        peaks = [peaks]
    if isinstance(peaks, np.ndarray) and peaks.ndim == 1:
        peaks = peaks[None, :]
    out = [np.asarray(pk.g if isinstance(pk, Peak) else pk, dtype=float) for pk in peaks]
    if not out:
        raise ValueError("No peaks given; detect or pick some spots first.")
    arr = np.array(out)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError("Peaks must be (gy, gx) vectors in Å⁻¹ or Peak objects.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("Peaks must be finite (gy, gx) vectors in Å⁻¹; some hold NaN or inf.")
    return arr


def _check_peaks_in_nyquist(g: np.ndarray, p: float) -> None:
    nyq = 0.5 / p
    if np.any(np.abs(g) > nyq * (1 + 1e-9)):
        raise ValueError(
            f"Peaks must lie inside Nyquist ({nyq:.4g} Å⁻¹ for a pixel size of {p:g} Å); the largest given "
            f"is {np.abs(g).max():.4g} Å⁻¹."
        )


def _freq_grids(shape, p):
    ny, nx = shape
    return sfft.fftfreq(ny, d=p)[:, None], sfft.fftfreq(nx, d=p)[None, :]


def bragg_filter(
    image,
    peaks,
    radius: float,
    *,
    pixel_size: float = 1.0,
    keep_mean: bool = True,
    window: str = "periodic_smooth",
) -> np.ndarray:
    """Fourier-filtered image through soft (Gaussian) masks at the given spots and their Friedel mates.

    Pass the lattice spots for a lattice-only image, the superlattice spots for the modulation
    only.

    Parameters
    ----------
    image : (Y, X) array
    peaks : sequence of Peak or (n, 2) array
        Spot positions (gy, gx) in Å⁻¹. ``-g`` is added for each ``g``.
    radius : float
        Mask radius in Å⁻¹: the Gaussian's standard deviation is ``radius / 2``. The real-space
        resolution of the filtered image is about ``1 / radius`` Å.
    pixel_size : float
        Å per pixel.
    keep_mean : bool
        Add back the image mean.
    window : {"periodic_smooth", "none"}
        ``"periodic_smooth"`` filters only the periodic component (no edge streaks).

    Returns
    -------
    (Y, X) float32
    """
    p = _check_pixel_size(pixel_size)
    choice(window, "window", ("periodic_smooth", "none"))
    img = validate_image(image)
    radius = positive(radius, "radius", unit="Å⁻¹", label="Mask radius")
    g = _as_g_array(peaks)
    _check_peaks_in_nyquist(g, p)
    g = np.concatenate([g, -g])
    mean = float(img.mean())
    src = img - np.float32(mean)
    if window == "periodic_smooth":
        src, _ = periodic_smooth_decomposition(src)
    elif window != "none":
        raise ValueError("window must be 'periodic_smooth' or 'none'.")
    fy, fx = _freq_grids(img.shape, p)
    sig2 = (radius / 2.0) ** 2
    mask = np.zeros(img.shape, np.float32)
    for gy, gx in g:
        # distance on the periodic reciprocal grid
        dy = (fy - gy + 0.5 / p) % (1.0 / p) - 0.5 / p
        dx = (fx - gx + 0.5 / p) % (1.0 / p) - 0.5 / p
        np.maximum(mask, np.exp(-(dy**2 + dx**2) / (2 * sig2)).astype(np.float32), out=mask)
    f = sfft.fft2(src, workers=-1)
    out = sfft.ifft2(f * mask, workers=-1).real.astype(np.float32)
    if keep_mean:
        out += np.float32(mean)
    return out


class _LockIn:
    """Complex lock-in images of one image at chosen spatial frequencies (GPA, PLD).

    The edge-free (periodic) spectrum and the coordinate grids are computed once; each call then
    demodulates at one frequency ``g`` (Å⁻¹) with a Gaussian mask of variance ``sig2``.
    """

    def __init__(self, img: np.ndarray, p: float):
        src, _ = periodic_smooth_decomposition(img - np.float32(img.mean()))
        self.f = sfft.fft2(src, workers=-1)
        self.fy, self.fx = _freq_grids(img.shape, p)
        ny, nx = img.shape
        self.yy = (np.arange(ny, dtype=np.float64) * p)[:, None]
        self.xx = (np.arange(nx, dtype=np.float64) * p)[None, :]
        self.p = p

    def __call__(self, g, sig2: float) -> np.ndarray:
        return _lockin(self.f, g, sig2, self.fy, self.fx, self.yy, self.xx, self.p)


def _lockin(f: np.ndarray, g, sig2: float, fy, fx, yy, xx, p) -> np.ndarray:
    """Complex lock-in image: IFFT of a Gaussian mask at g, demodulated by exp(-2πi g·r)."""
    gy, gx = g
    per = 1.0 / p
    dy = (fy - gy + 0.5 * per) % per - 0.5 * per
    dx = (fx - gx + 0.5 * per) % per - 0.5 * per
    mask = np.exp(-(dy**2 + dx**2) / (2 * sig2)).astype(np.float32)
    h = sfft.ifft2(f * mask, workers=-1)
    demod = np.exp((-2j * np.pi) * (gy * yy + gx * xx)).astype(np.complex64)
    return (h * demod).astype(np.complex64)


# ------------------------------------------------------------------------------------------------
# GPA
# ------------------------------------------------------------------------------------------------
@dataclass
class GPAResult:
    """Maps from geometric phase analysis. Lengths in Å; strains dimensionless.

    Attributes
    ----------
    phase1, phase2 : (Y, X) float32
        Geometric phases (radians, wrapped to (-π, π]) after removing the reference ramp.
    amplitude1, amplitude2 : (Y, X) float32
        Lock-in amplitudes (where they are low, the phases are meaningless).
    uy, ux : (Y, X) float32
        Displacement in Å relative to the reference lattice (from unwrapped phases).
    exx, eyy, exy : (Y, X) float32
        Strain relative to the reference lattice (0.01 = 1 %).
    rotation : (Y, X) float32
        Lattice rotation in degrees, counter-clockwise on screen.
    g1, g2 : (2,) arrays
        Reference reciprocal vectors used (after refinement on the reference region), Å⁻¹.
    """

    phase1: np.ndarray
    phase2: np.ndarray
    amplitude1: np.ndarray
    amplitude2: np.ndarray
    uy: np.ndarray
    ux: np.ndarray
    exx: np.ndarray
    eyy: np.ndarray
    exy: np.ndarray
    rotation: np.ndarray
    g1: np.ndarray
    g2: np.ndarray


def _phase_gradient(z: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (d/dy, d/dx) of arg(z) in rad/Å, without unwrapping."""
    gy, gx = np.gradient(z)
    den = np.maximum(np.abs(z) ** 2, 1e-30)
    dy = (np.conj(z) * gy).imag / den / p
    dx = (np.conj(z) * gx).imag / den / p
    return dy.astype(np.float32), dx.astype(np.float32)


def _reference_mask(shape, reference) -> np.ndarray:
    if reference is None or reference is False:
        return np.ones(shape, bool)
    if isinstance(reference, np.ndarray) and reference.dtype == bool:
        if reference.shape != shape:
            raise ValueError("Reference mask must have the image's shape.")
        return reference
    m = np.zeros(shape, bool)
    m[tuple(reference)] = True
    if not m.any():
        raise ValueError("The reference region is empty; draw it inside the image.")
    return m


def gpa(
    image,
    g1,
    g2,
    mask_radius: float,
    *,
    pixel_size: float = 1.0,
    reference=None,
    progress: ProgressCallback = None,
) -> GPAResult:
    """Geometric phase analysis (Hÿtch, Snoeck & Kilaas 1998): displacement, strain and rotation.

    For each basis vector g the image is filtered by a Gaussian mask at g, demodulated by
    ``exp(-2πi g·r)``; its phase ``P_g = -2π g·u`` gives the displacement ``u``. Phase
    gradients are computed from the complex lock-in signal (no unwrapping needed for strain);
    the mean gradient over the reference region is removed, which refines g to the reference
    lattice, so strain is relative to that region.

    Parameters
    ----------
    image : (Y, X) array
    g1, g2 : (gy, gx)
        Non-collinear reciprocal vectors in Å⁻¹ (e.g. ``Lattice.g1``, ``Lattice.g2``).
    mask_radius : float
        Gaussian mask radius in Å⁻¹ (standard deviation ``mask_radius / 2``). The strain maps'
        spatial resolution is about ``1 / mask_radius`` Å; keep it below half the distance to
        the nearest other spot.
    pixel_size : float
        Å per pixel.
    reference : tuple of slices, bool mask, None or False
        Unstrained reference region (pixels); its mean phase gradient is removed, i.e. g1, g2
        are refined to the lattice there. ``None`` (default): the whole image. ``False``: take
        g1 and g2 as the reference lattice exactly (absolute strain against known vectors).
    progress : callable, optional

    Returns
    -------
    GPAResult
    """
    from skimage.restoration import unwrap_phase

    p = _check_pixel_size(pixel_size)
    img = validate_image(image)
    g1 = _check_g(g1, "g1", p)
    g2 = _check_g(g2, "g2", p)
    G = np.array([g1, g2])
    if abs(np.linalg.det(G)) < 1e-3 * np.hypot(*g1) * np.hypot(*g2):
        raise ValueError("g1 and g2 are collinear; GPA needs two non-collinear spots.")
    mask_radius = positive(mask_radius, "mask_radius", unit="Å⁻¹", label="Mask radius")
    ref = _reference_mask(img.shape, reference)
    report(progress, 0.05)
    lockin = _LockIn(img, p)
    yy, xx = lockin.yy, lockin.xx
    sig2 = (mask_radius / 2.0) ** 2
    phases, amps, grads, gs = [], [], [], []
    for i, g in enumerate((g1, g2)):
        z = lockin(g, sig2)
        dPy, dPx = _phase_gradient(z, p)
        wgt = np.abs(z)[ref]
        if not np.all(np.isfinite(z)) or not float(np.sum(wgt)) > 0:
            raise ValueError(
                f"The image shows no fringes at g{i + 1} in the reference region (the lock-in amplitude is zero): "
                "choose a crystalline region, or spots g1, g2 that the image really has."
            )
        # mean gradient (weighted by amplitude) over the reference region = g correction
        if reference is False:
            my = mx = 0.0
        else:
            my = float(np.sum(dPy[ref] * wgt) / np.sum(wgt))
            mx = float(np.sum(dPx[ref] * wgt) / np.sum(wgt))
        dPy -= np.float32(my)
        dPx -= np.float32(mx)
        z = z * np.exp(-1j * (my * yy + mx * xx)).astype(np.complex64)
        z *= np.exp(-1j * np.angle(np.sum(z[ref]))).astype(np.complex64)  # zero mean phase in reference
        gs.append(g + np.array([my, mx]) / (2 * np.pi))
        phases.append(np.angle(z).astype(np.float32))
        amps.append(np.abs(z).astype(np.float32))
        grads.append((dPy, dPx))
        report(progress, 0.1 + 0.35 * (i + 1))
    Gr = np.array(gs)
    if not np.all(np.isfinite(Gr)) or abs(np.linalg.det(Gr)) < 1e-12 * np.abs(Gr).max() ** 2:
        raise ValueError("g1 and g2 refined on the reference region became collinear; choose another reference region.")
    Ginv = np.linalg.inv(Gr)  # u = -(1/2π) Ginv @ (P1, P2)
    k = -1.0 / (2 * np.pi)
    duy_dy = k * (Ginv[0, 0] * grads[0][0] + Ginv[0, 1] * grads[1][0])
    duy_dx = k * (Ginv[0, 0] * grads[0][1] + Ginv[0, 1] * grads[1][1])
    dux_dy = k * (Ginv[1, 0] * grads[0][0] + Ginv[1, 1] * grads[1][0])
    dux_dx = k * (Ginv[1, 0] * grads[0][1] + Ginv[1, 1] * grads[1][1])
    exx = dux_dx.astype(np.float32)
    eyy = duy_dy.astype(np.float32)
    exy = (0.5 * (dux_dy + duy_dx)).astype(np.float32)
    rot = np.degrees(0.5 * (dux_dy - duy_dx)).astype(np.float32)
    uw = [unwrap_phase(ph.astype(np.float64)) for ph in phases]
    uy = (k * (Ginv[0, 0] * uw[0] + Ginv[0, 1] * uw[1])).astype(np.float32)
    ux = (k * (Ginv[1, 0] * uw[0] + Ginv[1, 1] * uw[1])).astype(np.float32)
    report(progress, 1.0)
    return GPAResult(phases[0], phases[1], amps[0], amps[1], uy, ux, exx, eyy, exy, rot, Gr[0], Gr[1])


# ------------------------------------------------------------------------------------------------
# PLD
# ------------------------------------------------------------------------------------------------
@dataclass
class PLDResult:
    """Periodic-lattice-displacement maps.

    Attributes
    ----------
    amplitude : (Y, X) float32
        PLD amplitude |A| in Å (the displacement is ``A sin(2π q·r + φ)``).
    direction : (Y, X) float32
        Direction of A in degrees, counter-clockwise on screen from +X, modulo 180.
    phase : (Y, X) float32
        Modulation phase φ in radians.
    ay, ax : (Y, X) float32
        Components of A in Å (sign fixed by the choice of φ).
    """

    amplitude: np.ndarray
    direction: np.ndarray
    phase: np.ndarray
    ay: np.ndarray
    ax: np.ndarray


def pld_map(
    image,
    q,
    *,
    lattice: tuple,
    pixel_size: float = 1.0,
    mask_radius: float | None = None,
    progress: ProgressCallback = None,
) -> PLDResult:
    """Map the amplitude and direction of a periodic lattice displacement from its satellites.

    A displacement ``u(r) = A sin(2π q·r + φ)`` puts satellites at ``G ± q`` around each Bragg
    spot G with complex amplitude ``∓π (G·A) e^{±iφ}`` relative to the Bragg spot (first order
    in 2πG·A, as in the lock-in analysis of Savitzky et al. 2017). Lock-in images of G, G+q
    and G-q give, per pixel, ``z_G = -π (G·A) e^{iφ}`` for several G; the common phase φ and
    the least-squares vector A follow. The Bessel-function ratio ``J1/J0`` is used instead of
    the linear term, so amplitudes stay right up to 2πG·A ≈ 1.

    Parameters
    ----------
    image : (Y, X) array
    q : (qy, qx)
        Modulation vector in Å⁻¹ (e.g. ``Lattice.q_vector((1/3, 0))``).
    lattice : (g1, g2)
        Reciprocal basis in Å⁻¹. Bragg spots g1, g2, g1+g2, g1-g2 and their negatives are used.
    pixel_size : float
        Å per pixel.
    mask_radius : float, optional
        Gaussian mask radius in Å⁻¹ (standard deviation ``mask_radius / 2``); default |q| / 2.

    Returns
    -------
    PLDResult

    References
    ----------
    B. H. Savitzky et al., "Bending and breaking of stripes in a charge ordered manganite",
    Nat. Commun. 8, 1883 (2017).
    """
    from scipy.special import j0, j1

    p = _check_pixel_size(pixel_size)
    img = validate_image(image)
    q = _check_g(q, "q", p)
    try:
        g1, g2 = lattice
    except (TypeError, ValueError):
        raise ValueError("lattice must be the reciprocal basis (g1, g2) in Å⁻¹.") from None
    g1, g2 = _check_g(g1, "lattice g1", p), _check_g(g2, "lattice g2", p)
    qa = float(np.hypot(*q))
    mask_radius = positive(mask_radius, "mask_radius", unit="Å⁻¹", allow_none=True, label="Mask radius")
    r = float(mask_radius) if mask_radius else qa / 2.0
    nyq = 0.5 / p
    Gs = [G for G in (g1, g2, g1 + g2, g1 - g2) if np.max(np.abs(G) + np.abs(q)) < nyq * 0.98]
    if len(Gs) < 2:
        raise ValueError(
            "Too few Bragg spots inside Nyquist for a PLD map: the lattice (g1, g2) plus q must stay inside "
            f"{nyq:.4g} Å⁻¹ (pixel size {p:g} Å)."
        )
    lockin = _LockIn(img, p)
    sig2 = (r / 2.0) ** 2
    zs = []
    for i, G in enumerate(Gs):
        hG = lockin(G, sig2)
        hp = lockin(G + q, sig2)
        hm = lockin(G - q, sig2)
        # each lock-in is demodulated by its own carrier, so hp / hG = c+ and hm / hG = c-
        den = np.abs(hG) ** 2
        eps = 1e-3 * float(np.mean(den))
        if not eps > 0 or not np.isfinite(eps):
            raise ValueError(
                f"The image has no signal at the Bragg spot ({G[0]:.3g}, {G[1]:.3g}) Å⁻¹ of the lattice: choose a "
                "crystalline region, or the lattice (g1, g2) of this image."
            )
        cp = hp * np.conj(hG) / (den + eps)
        cm = hm * np.conj(hG) / (den + eps)
        zs.append(0.5 * (cp - np.conj(cm)))
        report(progress, 0.8 * (i + 1) / len(Gs))
    Z = np.array(zs)  # (nG, Y, X), z_G = -R(G·A) e^{iφ}, R = J1/J0 ≈ π G·A
    phi = 0.5 * np.angle(np.sum(Z**2, axis=0))
    a = np.real(Z * np.exp(-1j * phi)[None])  # = -J1(x)/J0(x), x = 2π G·A
    # invert t = J1(x)/J0(x) on |x| < 1.5 through a table (monotonic there)
    xt = np.linspace(-1.5, 1.5, 601)
    tt = j1(xt) / j0(xt)
    x = np.interp(-a, tt, xt)  # = 2π G·A
    M = 2 * np.pi * np.array(Gs)  # x = M @ A
    pinv = np.linalg.pinv(M)  # (2, nG)
    A = np.tensordot(pinv, x, axes=(1, 0))  # (2, Y, X): (Ay, Ax)
    ay, ax = A[0].astype(np.float32), A[1].astype(np.float32)
    amp = np.hypot(ay, ax).astype(np.float32)
    direction = (np.degrees(np.arctan2(-ay, ax)) % 180.0).astype(np.float32)
    report(progress, 1.0)
    return PLDResult(amp, direction, phi.astype(np.float32), ay, ax)


# ------------------------------------------------------------------------------------------------
# Bragg-peak decay with dose
# ------------------------------------------------------------------------------------------------
@dataclass
class BraggSeries:
    """Intensity of chosen spots frame by frame.

    Attributes
    ----------
    intensity : (T, n) float
        Background-subtracted integrated power of each spot in each frame (relative units).
    total : (T,) float
        Sum over spots, normalised to the fit's I0 when a fit was made, else to frame 0.
    dose : (T,) float or None
        Cumulative dose at the middle of each frame, e/Å²: ``(t + 0.5) * dose_per_frame``.
    critical_dose : float or None
        Dose in e/Å² at which the spots' summed intensity fell to 1/e, from a fit of
        ``I0 exp(-D / Dc)``.
    critical_dose_error : float or None
        One-sigma uncertainty of ``critical_dose`` from the fit.
    """

    intensity: np.ndarray
    total: np.ndarray
    dose: np.ndarray | None = None
    critical_dose: float | None = None
    critical_dose_error: float | None = None


def bragg_intensity_series(
    stack,
    peaks,
    *,
    pixel_size: float = 1.0,
    dose_per_frame: float | None = None,
    radius: float | None = None,
    progress: ProgressCallback = None,
) -> BraggSeries:
    """Integrated intensity of chosen Bragg spots in every frame, and the critical dose.

    Each frame is mean-subtracted and Hann-windowed; the power within ``radius`` of each spot
    (and its Friedel mate) is summed and the median power of a surrounding annulus (radius to
    2·radius) times the disk's pixel count is subtracted.

    Parameters
    ----------
    stack : (T, Y, X) array
    peaks : sequence of Peak or (n, 2) array
        Spots (gy, gx) in Å⁻¹.
    pixel_size : float
        Å per pixel.
    dose_per_frame : float, optional
        Electron dose per frame in e/Å². When given, ``I0 exp(-D/Dc)`` is fitted.
    radius : float, optional
        Integration radius in Å⁻¹; default 2 FFT pixels.

    Returns
    -------
    BraggSeries
    """
    p = _check_pixel_size(pixel_size)
    arr = np.asarray(stack) if not hasattr(stack, "compute") else stack
    if np.iscomplexobj(arr):
        raise ValueError("The stack holds complex numbers; take the real part, modulus or phase first.")
    if arr.ndim != 3:
        raise ValueError(f"Need a (T, Y, X) stack; got shape {arr.shape}.")
    if arr.shape[0] < 2:
        raise ValueError(f"Need at least two frames for an intensity series (stack has shape {arr.shape}).")
    dose_per_frame = positive(dose_per_frame, "dose_per_frame", unit="e/Å²", high=1e6, allow_none=True,
                              label="Dose per frame")
    g = _as_g_array(peaks)
    _check_peaks_in_nyquist(g, p)
    T, ny, nx = arr.shape
    check_memory(ny * nx * 4 * 8, "stack", f"a {ny}x{nx} px frame's spectrum")
    if radius is not None:
        positive(radius, "radius", unit="Å⁻¹", high=1.0 / p)
    win = hann_window((ny, nx))
    fy, fx = _freq_grids((ny, nx), p)
    rad = float(radius) if radius else 2.0 / (min(ny, nx) * p)
    disks, rings = [], []
    for gy, gx in g:
        d = np.zeros((ny, nx), bool)
        ring = np.zeros((ny, nx), bool)
        for s in (1, -1):
            dist = np.hypot(fy - s * gy, fx - s * gx)
            d |= dist <= rad
            ring |= (dist > rad) & (dist <= 2 * rad)
        disks.append(d)
        rings.append(ring & ~d)
    inten = np.zeros((T, len(g)))
    for t in range(T):
        frame = validate_image(np.asarray(arr[t]), what=f"stack frame {t}")
        w = (frame - np.float32(frame.mean())) * win
        f = sfft.fft2(w, workers=-1)
        pw = f.real**2 + f.imag**2
        for j, (d, ring) in enumerate(zip(disks, rings)):
            inten[t, j] = pw[d].sum() - np.median(pw[ring]) * d.sum()
        report(progress, (t + 1) / T)
    total = inten.sum(axis=1)
    res = BraggSeries(inten, total / total[0] if total[0] != 0 else total)
    if dose_per_frame is not None and np.any(total > 0):
        dpf = float(dose_per_frame)
        dose = (np.arange(T) + 0.5) * dpf
        res.dose = dose
        y = total
        # initial guess from a log-linear fit on positive values
        pos = y > 0
        if pos.sum() >= 2:
            slope, icpt = np.polyfit(dose[pos], np.log(y[pos]), 1)
            dc0 = -1.0 / slope if slope < 0 else dose[-1] * 10
            i00 = float(np.exp(icpt))
        else:
            dc0, i00 = dose[-1], float(y.max())
        try:
            popt, pcov = optimize.curve_fit(
                lambda D, i0, dc: i0 * np.exp(-D / dc), dose, y, p0=(i00, dc0), maxfev=5000
            )
            if np.all(np.isfinite(popt)) and popt[0] > 0 and popt[1] > 0:
                res.critical_dose = float(popt[1])
                res.critical_dose_error = float(np.sqrt(pcov[1, 1])) if np.isfinite(pcov[1, 1]) else None
                res.total = total / popt[0]
        except (RuntimeError, ValueError, np.linalg.LinAlgError, optimize.OptimizeWarning):
            res.critical_dose = None
    elif dose_per_frame is not None:
        res.dose = (np.arange(T) + 0.5) * float(dose_per_frame)
    return res


def peaks_from_vectors(vectors: Iterable) -> list[Peak]:
    """Wrap (gy, gx) vectors in Å⁻¹ as :class:`Peak` objects (intensity and SNR unknown: NaN)."""
    return [Peak(np.asarray(v, float), float("nan"), float("nan")) for v in vectors]
