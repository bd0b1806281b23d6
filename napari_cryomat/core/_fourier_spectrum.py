"""Calibrated power spectra (one image, or live with latest-request-wins reuse) and radial profiles.

Conventions: :mod:`napari_cryomat.core.fourier`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from napari_cryomat.core._fourier_base import WINDOWS, _check_pixel_size, _hann, _windowed, validate_image
from napari_cryomat.core._validate import (
    check_memory,
    choice,
    positive,
)


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
