"""Calibrated power spectra (one image, averaged over tiles, or live with latest-request-wins
reuse) and radial profiles.

Two views of the same Fourier transform, for two kinds of specimen:

- the *single* periodogram of the whole region: full resolution in g, the view for crystals
  (sharp spots); on an amorphous region it is chi-squared speckle (each pixel's power is
  exponentially distributed about its mean), so Thon rings drown in it;
- the *averaged* spectrum (Welch): the mean periodogram of overlapping, windowed tiles, each with
  its mean removed, as CTFFIND, Gctf, RELION and the microscope's live FFT show micrographs. Averaging
  n tiles divides the speckle's variance by about n; the price is a coarser g step (1 / tile size),
  which widens crystal spots.

Conventions: :mod:`napari_cryomat.core.fourier`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.fft as sfft

from napari_cryomat.core._fourier_base import (
    MIN_SIZE,
    WINDOWS,
    _check_pixel_size,
    _hann,
    _windowed,
    validate_image,
)
from napari_cryomat.core._validate import (
    check_memory,
    choice,
    fraction,
    integer,
    positive,
    vector,
)

LIVE_MODES = ("auto", "single", "averaged")


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


# ------------------------------------------------------------------------------------------------
# averaged (Welch) spectrum
# ------------------------------------------------------------------------------------------------
MAX_TILE = 512  # CTFFIND's default box: rings 1/512 px apart are resolved, enough for 1-5 µm defocus
#: a sharp peak (a Bragg spot) is a pixel with this many times the power of the speckle at its |g|.
#: Speckle (amorphous specimen, noise) has exponential power: 40× its mean has a chance of e⁻⁴⁰ per
#: pixel; measured on real micrographs (fei-extended, epu2.9, TVIPS_bin4, 256²-2048²) the highest
#: was 19× away from the axes. Lattice spots reach 10²-10⁴×.
SHARP_PEAK_RATIO = 40.0
#: pixels nearer g = 0 than this (in spectrum pixels) are left out: the window's and the image's
#: own low-frequency fall-off, not spots
_SHARP_MIN_RADIUS = 4
_AXIS_BAND = 4  # px each side of the axes left out
#: in the display values (float32 bits of |F| read as int32, 2**23 per unit of log2|F|): how far above
#: the mean of log power a pixel lies at SHARP_PEAK_RATIO × the mean power. For exponential power the
#: mean of ln P is ln(mean) - γ (Euler's constant), which makes the geometric mean a background that a
#: few bright spot pixels hardly move.
_SHARP_OFFSET_BITS = (np.euler_gamma + np.log(SHARP_PEAK_RATIO)) / (2 * np.log(2)) * 2**23
#: a Bragg spot in the averaged spectrum ("auto" on ROIs with tiles of :data:`AUTO_SEARCH_TILE` px and
#: more): a pixel with this many times both the mean power at its |g| and that of its neighbourhood (see
#: :func:`_averaged_peaks`). Averaging n tiles makes the speckle's relative spread about 1 / √n, so the
#: ratio is far below the single periodogram's 40; the spots lose (tile / ROI)² of their contrast, as
#: each tile holds fewer periods. Chosen on simulated lattices, CTF (with astigmatism) and real micrographs.
AVERAGED_PEAK_RATIO = 5.0
#: "auto" looks for spots in the averaged spectrum when its tiles are this big or more: a lattice of up
#: to tile / 8 px period (32 px here) has its first spots 8 px or more from g = 0 and from each other.
#: Smaller ROIs look in the single periodogram, which costs about 1 ms there.
AUTO_SEARCH_TILE = 256


def default_tile(shape) -> int:
    """Tile edge (px) of the averaged spectrum of a ``shape`` region: the largest power of two up to
    a third of its shorter side (about 7 × 7 tiles at 50 % overlap), from 16 to 512."""
    size = vector(shape, "shape", length=2, unit="px", all_positive=True)
    short = integer(size.min(), "shape", low=MIN_SIZE, high=2**31)
    tile = 2 ** int(np.floor(np.log2(max(short / 3, 16))))
    return int(min(tile, MAX_TILE, short))


def _periodic_hann(n: int) -> np.ndarray:
    # periodic Hann (as scipy.signal.welch): its DFT has three non-zero terms per axis, so the
    # tile's mean can be removed exactly after the FFT (see _Prepared)
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


class _Prepared:
    """The window of one (Y, X) shape and what removing the mean after the FFT needs.

    Rows are centred for free: for even Y the window is multiplied by (-1)^y, which moves ky = 0
    to row Y // 2. The windowed mean leaks into the window's own spectrum W around g = 0, so
    ``F - m W`` with ``m = F(0) / W(0)`` is the spectrum of the mean-removed, windowed region:
    done on the few pixels where W is not negligible, it costs nothing per call.
    """

    def __init__(self, shape, window: str):
        ny, nx = shape
        if window == "hann":
            wy, wx = _hann(ny), _hann(nx)
        elif window == "periodic_hann":
            wy, wx = _periodic_hann(ny), _periodic_hann(nx)
        else:
            wy, wx = np.ones(ny, np.float32), np.ones(nx, np.float32)
        self.centred = ny % 2 == 0
        if self.centred:
            wy = wy * np.where(np.arange(ny) % 2 == 0, 1, -1).astype(np.float32)
        self.window = np.outer(wy, wx).astype(np.float32)
        w_spec = sfft.rfft2(self.window.astype(np.float64))
        self.dc = (ny // 2 if self.centred else 0, 0)
        # the periodic Hann's W is 3 × 3 px; the symmetric Hann's leak beyond 4 px is < 1e-3 of W(0),
        # on the axes only (which the display levels leave out)
        reach = 4
        rows = (self.dc[0] + np.arange(-reach, reach + 1)) % ny
        cols = np.arange(min(reach + 1, nx // 2 + 1))
        self.leak_rows, self.leak_cols = np.ix_(rows, cols)
        self.leak = w_spec[self.leak_rows, self.leak_cols].astype(np.complex64)
        self.w_dc = complex(w_spec[self.dc])

    def remove_mean(self, f: np.ndarray) -> None:
        """Subtract the windowed mean's leak from ``f`` (…, Y, X//2+1) in place."""
        m = f[..., self.dc[0], self.dc[1]] / self.w_dc
        f[..., self.leak_rows, self.leak_cols] -= np.asarray(m)[..., None, None] * self.leak


def _tile_grid(n: int, tile: int, step: int) -> tuple[int, int]:
    """(offset, count) of tiles of ``tile`` px every ``step`` px, centred in ``n`` px."""
    count = (n - tile) // step + 1
    return (n - tile - (count - 1) * step) // 2, count


def _welch_half(roi: np.ndarray, tile: int, overlap: float, prepared: _Prepared) -> tuple[np.ndarray, int]:
    """Mean power |F|² of the windowed, mean-removed tiles: a row-centred half plane
    (tile, tile // 2 + 1), float64, and the number of tiles. ValueError on NaN/inf pixels."""
    step = max(1, int(round(tile * (1 - overlap))))
    oy, ky = _tile_grid(roi.shape[0], tile, step)
    ox, kx = _tile_grid(roi.shape[1], tile, step)
    tiles = np.lib.stride_tricks.sliding_window_view(roi, (tile, tile))[oy::step, ox::step][:ky, :kx]
    acc = np.zeros((tile, tile // 2 + 1), np.float64)
    buf = np.empty((kx, tile, tile), np.float32)
    power = np.empty((kx, tile, tile // 2 + 1), np.float32)
    workers = -1 if kx * tile * tile > 300 * 300 else 1
    for row in tiles:  # one row of tiles at a time: memory stays at a few tiles' worth
        np.multiply(row, prepared.window, out=buf, casting="unsafe")
        f = sfft.rfft2(buf, workers=workers, overwrite_x=True)
        if not np.all(np.isfinite(f[:, prepared.dc[0], 0])):  # a NaN/inf pixel poisons its tile's mean
            raise ValueError("The region (roi) contains NaN or inf pixels; move the ROI or clean the image.")
        prepared.remove_mean(f)
        np.abs(f, out=power)  # |F| then its square in place: fewer passes than re² + im²
        acc += np.square(power, out=power).sum(axis=0, dtype=np.float64)
    return acc / (ky * kx), ky * kx


def _radius_index(shape_half: tuple[int, int], ny: int, nx: int | None = None) -> np.ndarray:
    """Integer |g| of each pixel of a row-centred half plane of a (ny, nx) spectrum, in steps of
    1 / max(ny, nx) of the sampling frequency (1 px for square shapes)."""
    nx = ny if nx is None else nx
    n = max(ny, nx)
    rows = (np.arange(shape_half[0])[:, None] - ny // 2) * (n / ny)
    cols = np.arange(shape_half[1])[None, :] * (n / nx)
    return np.rint(np.hypot(rows, cols)).astype(np.intp)


def _flatten(power_half: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """``power / background``, the background a degree-5 polynomial in |k| fitted to the rotational
    average of log power (from 2 px out, weighted by each radius's pixel count).

    A polynomial follows the slow fall-off (envelope, detector MTF, coloured noise: four decades on
    epu2.9_example.mrc) but not rings: a running mean narrow enough to follow the fall-off near
    g = 0 also ate the 3.7 Å ice ring of fei-extended.mrc, a wide one left the fall-off in.
    """
    if not np.any(power_half > 0):  # a constant region: no fall-off to divide out, all at background
        return np.ones_like(power_half)
    log_power = np.log(np.maximum(power_half, np.finfo(np.float64).tiny))
    counts = np.bincount(radius.ravel())
    profile = np.bincount(radius.ravel(), log_power.ravel()) / np.maximum(counts, 1)
    r = np.arange(profile.size)
    fit = (r >= 2) & (counts > 0)
    x = r / r[-1]
    coef = np.polynomial.polynomial.polyfit(x[fit], profile[fit], 5, w=np.sqrt(counts[fit]))
    background = np.polynomial.polynomial.polyval(x, coef)
    flat = power_half / np.exp(background[radius])
    flat[radius == 0] = 1.0  # g = 0 (no power once the mean is removed) shown at the background
    return flat


def averaged_power_spectrum(
    image, pixel_size: float = 1.0, *, tile: int | None = None, overlap: float = 0.5, flatten: bool = False,
    log: bool = True,
) -> PowerSpectrum:
    """Welch-averaged power spectrum: the mean periodogram of overlapping square tiles.

    Each tile has its mean removed and a (periodic) Hann window applied. Averaging n tiles divides the
    speckle variance of a noisy image's spectrum by about n, so Thon rings and amorphous rings show;
    the g step is 1 / (tile · pixel_size), coarser than :func:`power_spectrum`'s (crystal spots widen:
    use :func:`power_spectrum` for lattices).

    Parameters
    ----------
    image : (Y, X) array
    pixel_size : float
        Å per pixel.
    tile : int, optional
        Tile edge in px, 16 to the image's shorter side; default :func:`default_tile` (a power of two,
        about a third of the shorter side, at most 512).
    overlap : float
        Fraction of a tile shared with the next one, 0 to 0.75 (0.5: Welch's usual choice for Hann).
    flatten : bool
        Divide by the smooth radial background (see below), so rings stand out across all g.
    log : bool
        Natural log of the result.

    Returns
    -------
    PowerSpectrum
        (tile, tile), zero frequency at (tile // 2, tile // 2): mean ``|F|²`` (``log(1 + |F|²)`` when
        ``log``), or, when ``flatten``, power over the background (``ln`` of it when ``log``: 0 is the
        background).
    """
    p = _check_pixel_size(pixel_size)
    img = validate_image(image)
    short = min(img.shape)
    tile = default_tile(img.shape) if tile is None else integer(tile, "tile", low=16, high=short)
    overlap = fraction(overlap, "overlap", high=0.75)
    power, _ = _welch_half(img, tile, overlap, _Prepared((tile, tile), "periodic_hann"))
    if flatten:
        power = _flatten(power, _radius_index(power.shape, tile))
    full = LiveSpectrum.mirror(power, (tile, tile)).astype(np.float32)
    if log:
        # flattened: a pixel with no power at all (a constant tile's) shows as e⁻⁸⁷ of the background
        full = np.log(np.maximum(full, np.finfo(np.float32).tiny)) if flatten else np.log1p(full)
    step = 1.0 / (tile * p)
    return PowerSpectrum(full, (step, step), (tile // 2, tile // 2), p)


def _level_sample(shape_half: tuple[int, int], centre_row: int) -> np.ndarray:
    """Flat indices of a strided sample (~2000 pixels) of a row-centred half plane for the display
    levels, without the axes cross (kx = 0, ky = 0: the window's and the edges' streaks) and so g = 0."""
    ny, nx = shape_half
    rows = np.arange(max(1, ny // 64) // 2, ny, max(1, ny // 64))
    rows = rows[np.abs(rows - centre_row) > max(1, ny // 100)]
    cols = np.arange(max(1, nx // 100) + 1, nx, max(1, nx // 32))
    if rows.size == 0 or cols.size == 0:  # a tiny spectrum: all of it
        return np.arange(ny * nx)
    return (rows[:, None] * nx + cols[None, :]).ravel()


def _display_levels(values: np.ndarray, sample: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """Display range from the ``low`` and ``high`` percentiles of ``values`` at the flat indices ``sample``
    (:func:`_level_sample`)."""
    picked = np.sort(values.ravel()[sample])
    m = picked.size - 1
    lo, hi = float(picked[int(m * low / 100)]), float(picked[int(m * high / 100)])
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _sharp_bins(shape_half: tuple[int, int], ny: int, nx: int) -> np.ndarray:
    """|g| bin of each pixel of a row-centred half plane for :func:`_sharp_peaks`; the axes cross (edge
    and stripe streaks, ±4 px) and g ≈ 0 go to a last bin that is never tested."""
    bins = _radius_index(shape_half, ny, nx)
    dump = bins.max() + 1
    bins[bins < _SHARP_MIN_RADIUS] = dump
    # a streak on an axis (image edges, detector stripes: TVIPS_bin4.tif) leaks through the Hann
    # window's side lobes to 4 px beside it, at 10⁻³ of its power: still many times the speckle
    bins[max(0, ny // 2 - _AXIS_BAND): ny // 2 + _AXIS_BAND + 1, :] = dump
    bins[:, : _AXIS_BAND + 1] = dump
    return bins


def _ring_peaks(values: np.ndarray, bins: np.ndarray, offset: float) -> np.ndarray:
    """Flat indices of the pixels of a half plane of display values (log |F| bits, see :class:`LiveSpectrum`)
    that lie ``offset`` above the mean at their |g| ``bins`` (:func:`_sharp_bins`).

    The level of a ring is its mean log power (a geometric mean); a second pass leaves out the pixels
    found, so that a ring holding several spots of one lattice (all first orders share |g|) is not
    raised by them.
    """
    flat_bins = bins.ravel()
    flat = values.ravel()
    counts = np.bincount(flat_bins).astype(np.float64)
    sums = np.bincount(flat_bins, flat)
    dump = counts.size - 1

    def found(counts, sums):
        threshold = sums / np.maximum(counts, 1) + offset
        threshold[dump] = np.inf
        return np.flatnonzero(flat > threshold[flat_bins])

    first = found(counts, sums)
    if first.size == 0:
        return first
    counts -= np.bincount(flat_bins[first], minlength=counts.size)
    sums -= np.bincount(flat_bins[first], flat[first], minlength=counts.size)
    return found(counts, sums)


def _sharp_peaks(values: np.ndarray, bins: np.ndarray) -> int:
    """How many pixels of a half plane of the single periodogram's display values hold
    :data:`SHARP_PEAK_RATIO` × the speckle power at their |g| ``bins`` (:func:`_sharp_bins`)."""
    return int(_ring_peaks(values, bins, _SHARP_OFFSET_BITS).size)


def _power_ratio_bits(ratio: float) -> float:
    """``ratio`` × in power as a step in the display values (float32 bits of |F| read as int32: 2**23 per
    unit of log2 |F|, as for :data:`_SHARP_OFFSET_BITS`)."""
    return np.log(ratio) / (2 * np.log(2)) * 2**23


def _averaged_peaks(power: np.ndarray, values: np.ndarray, bins: np.ndarray, ratio: float = AVERAGED_PEAK_RATIO) -> int:
    """How many pixels of the averaged spectrum's half plane (mean ``power``; ``values``: its display
    values) hold ``ratio`` × the mean power at their |g| (:func:`_ring_peaks`) and ``ratio`` × the mean
    power of their neighbourhood: the 11 × 11 px box around them less its central 5 × 5 (a spot's spread).

    Both, because each level alone is fooled by something a micrograph holds: a narrow isotropic ring
    (vitreous ice) stands far above its neighbourhood but not above its ring; astigmatic Thon rings swing
    4-40× around a ring (simulated 0.1-1 µm astigmatism) but vary slowly along it. A spot beats both.
    """
    rows, cols = np.unravel_index(_ring_peaks(values, bins, _power_ratio_bits(ratio)), power.shape)
    if rows.size == 0:
        return 0
    ny, nx = power.shape
    step = np.arange(-5, 6)
    box_rows = (rows[:, None] + step) % ny  # ky wraps around
    box_cols = np.abs(cols[:, None] + step)  # kx < 0: the point mirror, close enough to a reflection
    box_cols = np.where(box_cols > nx - 1, 2 * (nx - 1) - box_cols, box_cols)
    box = power[box_rows[:, :, None], box_cols[:, None, :]]
    around = (box.sum(axis=(1, 2)) - box[:, 3:8, 3:8].sum(axis=(1, 2))) / (121 - 25)
    return int(np.count_nonzero(power[rows, cols] > ratio * around))


class _Buffers:
    """What :class:`LiveSpectrum` keeps for one (Y, X) shape and window: the window, the FFT's input
    and output buffers, and (made on first use) the |g| bins and the display levels' sample."""

    def __init__(self, shape: tuple[int, int], window: str):
        ny, nx = shape
        self.shape = shape
        self.prepared = _Prepared(shape, window)
        self.windowed = np.empty(shape, np.float32)  # the FFT's input (overwritten by it)
        self.half = np.empty((ny, nx // 2 + 1), np.float32)  # |F| of the half plane
        self.rolled = np.empty((ny, nx // 2 + 1), np.float32)  # row-centred copy (odd heights only)

    @cached_property
    def radius(self) -> np.ndarray:
        """|g| bins of the half plane, for flattening."""
        ny, nx = self.shape
        return _radius_index((ny, nx // 2 + 1), ny, nx)

    @cached_property
    def sharp_bins(self) -> np.ndarray:
        ny, nx = self.shape
        return _sharp_bins((ny, nx // 2 + 1), ny, nx)

    @cached_property
    def level_sample(self) -> np.ndarray:
        ny, nx = self.shape
        return _level_sample((ny, nx // 2 + 1), ny // 2)


@dataclass(frozen=True)
class LiveInfo:
    """What the last :class:`LiveSpectrum` call showed.

    Attributes
    ----------
    mode : {"single", "averaged"}
        The spectrum drawn ("auto" resolved).
    shape : (int, int)
        The full spectrum's (Y, X): the ROI's for "single", the tile's for "averaged".
    n_tiles : int
        Tiles averaged (1 for "single").
    sharp_peaks : int or None
        Pixels holding a sharp peak ("auto" only; None otherwise) in the half plane searched: the
        averaged spectrum's when its tiles are :data:`AUTO_SEARCH_TILE` px or more, else the single
        periodogram's.
    flattened : bool
        The radial background was divided out.
    """

    mode: str
    shape: tuple[int, int]
    n_tiles: int = 1
    sharp_peaks: int | None = None
    flattened: bool = False


class LiveSpectrum:
    """The lean, cached power-spectrum path behind the live FFT display.

    ``mode="single"`` (the default): the periodogram of the whole ROI, for crystals. Per call: one
    fused cast × window multiply, one ``scipy.fft.rfft2`` (float32, ``workers=-1``, in place) and
    one modulus written into the output. Nothing else touches every pixel:

    - the row ``fftshift`` is folded into the cached window: multiplying by ``(-1)^y`` moves
      ky = 0 to the centre row (even heights; odd heights take one extra copy);
    - the ROI's (windowed) mean is removed after the FFT, on the few pixels around g = 0 where
      the window's own spectrum leaks it;
    - the log is free: the bit pattern of a positive float32 read as an integer is
      ``2**23 * (log2(x) + 127)`` to within 0.09 in log2 (monotonic), so the display array is
      ``|F|`` reinterpreted as int32. :meth:`to_ln` converts such values to ``ln |F|²``;
    - the spectrum of a real image is point-symmetric, so by default only the half-plane
      kx ≥ 0 is returned: a display draws the other half as the same array rotated by 180°
      about g = 0 (a free transform in Qt). ``full=True`` (or :meth:`mirror`) builds the
      full centred array at the cost of one more pass.

    ``mode="averaged"``: the Welch average over tiles of :func:`default_tile` px (see
    :func:`averaged_power_spectrum`), for amorphous specimens (Thon rings, ice rings); with
    ``flatten`` the smooth radial background is divided out. The output has the tile's shape.

    ``mode="auto"``: the single periodogram if the ROI holds sharp peaks (Bragg spots) or is under
    128 px, else the averaged spectrum. :attr:`last` says what was shown. The peaks are looked for in
    the spectrum that is cheaper to have anyway: on ROIs with tiles of :data:`AUTO_SEARCH_TILE` px or
    more (768 px and up: micrographs) the averaged spectrum comes first, and a peak there is a pixel with
    :data:`AVERAGED_PEAK_RATIO` × both the mean power at its |g| and around it; the single periodogram
    is computed only when there are two or more. On smaller ROIs the single periodogram comes first
    (under 1 ms), and a peak is a pixel with :data:`SHARP_PEAK_RATIO` × the mean power at its |g|
    (speckle stays far below).

    Display levels exclude the axes cross and g = 0 (which would otherwise set the top of the range
    and leave the rest black).

    Examples
    --------
    >>> live = LiveSpectrum()
    >>> half, levels = live(roi)               # roi: (Y, X) array, any real dtype
    >>> full = live.mirror(half, roi.shape)    # (Y, X), zero frequency at (Y//2, X//2)
    >>> ln_power = LiveSpectrum.to_ln(full)
    >>> auto = LiveSpectrum(mode="auto")
    >>> half, levels = auto(roi); auto.last.mode, auto.last.shape
    """

    #: the smallest ROI (px) "auto" averages: smaller tiles than 32 px resolve no rings
    AUTO_MIN_SIZE = 128

    def __init__(self, *, window: str = "hann", mode: str = "single", flatten: bool = True):
        if window not in ("hann", "none"):
            raise ValueError("LiveSpectrum supports window='hann' or 'none'.")
        choice(mode, "mode", LIVE_MODES)
        self.window = window
        self.mode = mode
        self.flatten = bool(flatten)
        self.last: LiveInfo | None = None
        self._cache: dict[tuple, _Buffers] = {}

    @staticmethod
    def to_ln(values) -> np.ndarray:
        """Convert display values (float32 bits read as int32) to ``ln |F|²``."""
        return (np.asarray(values, np.float64) / 2**23 - 127.0) * (2.0 * np.log(2.0))

    def _prepare(self, shape, window: str) -> "_Buffers":
        key = (tuple(shape), window)
        entry = self._cache.get(key)
        if entry is None:
            if len(self._cache) > 8:
                self._cache.clear()
            entry = self._cache[key] = _Buffers(key[0], window)
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
            Return the full centred spectrum instead of the half plane.

        Returns
        -------
        spectrum : (Y, X // 2 + 1) or (Y, X) int32
            ``|F|`` as float32 bits read as int32, i.e. a monotonic log scale (see
            :meth:`to_ln`). Half plane: row r is ky = r - Y // 2, column c is kx = c.
            Full: zero frequency at ``(Y // 2, X // 2)``. (Y, X) is the ROI's shape in
            "single" mode and the tile's in "averaged" mode (:attr:`last` ``.shape``); there
            the values are ``sqrt`` of the mean power, or of power over background when
            flattened. The half-plane array is a cached buffer reused by the next call with
            the same shape: copy it to keep it.
        levels : (float, float)
            Display range in the same units: the 5th to 99.95th percentile (single: the spots
            saturate, the speckle spans the range) or 1st to 99.9th (averaged) of a strided
            sample (~2000 pixels) without the axes cross and g = 0.
        """
        roi = np.asarray(roi)
        if np.iscomplexobj(roi) or not np.issubdtype(roi.dtype, np.number) and roi.dtype != np.bool_:
            raise ValueError(f"roi must hold real numbers (take the modulus or phase first); got dtype {roi.dtype}.")
        if roi.ndim != 2 or min(roi.shape) < 2:
            raise ValueError(f"roi must be a 2D region (Y, X) of at least 2x2 px; got shape {roi.shape}.")
        check_memory(roi.size * 4 * 3, "roi", "its spectrum")
        sharp = None
        if self.mode == "averaged" and min(roi.shape) >= MIN_AVERAGED:
            return self._averaged(roi, full, None)
        if self.mode == "auto" and default_tile(roi.shape) >= AUTO_SEARCH_TILE:
            # a micrograph-sized ROI: most show the averaged spectrum, so it comes first and the spots
            # are looked for in it; the single periodogram only costs more when there are some
            tile = default_tile(roi.shape)
            power, n_tiles = self._averaged_power(roi, tile)
            buffers = self._prepare((tile, tile), "periodic_hann")
            sharp = _averaged_peaks(power, self._display_values(power, buffers), buffers.sharp_bins)
            if sharp < 2:
                return self._show_averaged(power, tile, n_tiles, full, sharp)
        out = self._single(roi)
        ny, nx = roi.shape
        if self.mode == "auto" and sharp is None:
            sharp = _sharp_peaks(out, self._prepare(roi.shape, self.window).sharp_bins)
            if sharp < 2 and min(roi.shape) >= self.AUTO_MIN_SIZE:
                return self._averaged(roi, full, sharp)
        self.last = LiveInfo("single", (ny, nx), 1, sharp, False)
        levels = _display_levels(out, self._prepare(roi.shape, self.window).level_sample, 5.0, 99.95)
        if full:
            out = self.mirror(out, (ny, nx))
        return out, levels

    def _single(self, roi: np.ndarray) -> np.ndarray:
        """The ROI's row-centred half-plane |F| (cached buffer) as int32 bits."""
        ny, nx = roi.shape
        buffers = self._prepare(roi.shape, self.window)
        prepared, buf, half, rolled = buffers.prepared, buffers.windowed, buffers.half, buffers.rolled
        np.multiply(roi, prepared.window, out=buf, casting="unsafe")
        # threads only pay off above ~256²; below, their start-up costs more than they save
        f = sfft.rfft2(buf, workers=-1 if ny * nx > 300 * 300 else 1, overwrite_x=True)
        if not np.isfinite(f[prepared.dc]):  # any NaN/inf pixel poisons the zero-frequency term
            raise ValueError("The region (roi) contains NaN or inf pixels; move the ROI or clean the image.")
        prepared.remove_mean(f)
        np.abs(f, out=half)  # |F|: one pass, cheaper than re² + im²
        if ny % 2:  # odd height: centre the rows by hand
            hy = ny // 2
            rolled[:hy] = half[ny - hy :]
            rolled[hy:] = half[: ny - hy]
            half = rolled
        return half.view(np.int32)

    def _averaged_power(self, roi: np.ndarray, tile: int) -> tuple[np.ndarray, int]:
        """The averaged spectrum's row-centred half plane of mean power (flattened when :attr:`flatten`),
        float64, and the number of tiles."""
        buffers = self._prepare((tile, tile), "periodic_hann")
        power, n_tiles = _welch_half(roi, tile, 0.5, buffers.prepared)
        if self.flatten:
            power = _flatten(power, buffers.radius)
        return power, n_tiles

    @staticmethod
    def _display_values(power: np.ndarray, buffers: "_Buffers") -> np.ndarray:
        """``sqrt(power)`` as int32 bits, in ``buffers.half``."""
        np.sqrt(power, out=buffers.half, casting="unsafe")
        return buffers.half.view(np.int32)

    def _show_averaged(self, power: np.ndarray, tile: int, n_tiles: int, full: bool, sharp: int | None):
        buffers = self._prepare((tile, tile), "periodic_hann")
        half = self._display_values(power, buffers)
        self.last = LiveInfo("averaged", (tile, tile), n_tiles, sharp, self.flatten)
        levels = _display_levels(half, buffers.level_sample, 1.0, 99.9)
        return (self.mirror(half, (tile, tile)) if full else half), levels

    def _averaged(self, roi: np.ndarray, full: bool, sharp: int | None):
        tile = default_tile(roi.shape)
        power, n_tiles = self._averaged_power(roi, tile)
        return self._show_averaged(power, tile, n_tiles, full, sharp)


MIN_AVERAGED = 2 * MIN_SIZE  # below, "averaged" shows the single periodogram: no two tiles fit


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
