"""Scale-space blob search and pixel noise for the particle settings (:mod:`._particle_settings`).

The scale-normalised Laplacian of Gaussian (Lindeberg) on an image pyramid, so that large scales cost little; its
significant maxima sit at particle centres with ``sigma ~ radius / sqrt(2)``. Pixels here. No Qt, no napari.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

# ratio of successive scales; three per octave
_SCALES_PER_OCTAVE = 3
_MIN_SIGMA = 1.0  # px: below this the Laplacian is mostly noise
_Z_DETECT = 6.0  # significance of a blob against the image's bulk response at that scale


def _downsample(img: np.ndarray) -> np.ndarray:
    ny, nx = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    return img[:ny, :nx].reshape(ny // 2, 2, nx // 2, 2).mean(axis=(1, 3))


def blob_detections(image: np.ndarray, max_sigma: float) -> list[np.ndarray]:
    """Significant scale-space maxima of ``+/-`` the normalised LoG of a 2D image.

    Returns ``[dark, bright]``, each an array of rows ``(y, x, sigma, response, z)`` in original
    pixels, one row per blob after suppressing weaker blobs that overlap a stronger one.

    Per pyramid level the Gaussians are one cascade (each scale smooths the previous one) and the
    Laplacian is the 5-point stencil; local maxima are checked only at the pixels above the
    significance level (a few thousand), not with a maximum filter over the whole image.
    """
    found = [[], []]
    level, factor = image.astype(np.float32), 1
    while True:
        spread0 = noise_floor(level)
        smoothed, done = level, 0.0
        for k in range(_SCALES_PER_OCTAVE):
            s_local = _MIN_SIGMA * 2 ** (k / _SCALES_PER_OCTAVE)
            sigma = s_local * factor
            if sigma > max_sigma or min(level.shape) < 4 * s_local + 3:
                break
            smoothed = ndi.gaussian_filter(smoothed, math.sqrt(s_local**2 - done**2), mode="reflect")
            done = s_local
            response = s_local**2 * _laplacian(smoothed)
            spread = spread0 * _log_noise_gain(s_local)
            half = max(1, int(math.ceil(s_local)))  # window 2*half+1; the reflected border makes half-blobs
            for sign, store in ((1.0, found[0]), (-1.0, found[1])):
                ys, xs, vals = _local_maxima(sign * response, _Z_DETECT * spread, half)
                if ys.size:
                    store.append(np.column_stack([(ys + 0.5) * factor - 0.5, (xs + 0.5) * factor - 0.5,
                                                  np.full(ys.size, sigma), vals, vals / spread]))
        else:
            if 2 * _MIN_SIGMA * factor <= max_sigma and min(level.shape) >= 16:
                level, factor = _downsample(level), factor * 2
                continue
        break
    return [_suppress(np.concatenate(f)) if f else np.zeros((0, 5)) for f in found]


def _laplacian(a: np.ndarray) -> np.ndarray:
    """5-point discrete Laplacian with reflected borders."""
    p = np.pad(a, 1, mode="symmetric")
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * a


def _local_maxima(r: np.ndarray, level: float, half: int):
    """Pixels of ``r`` above ``level`` that are maxima of their (2 half + 1)² window, away from the border."""
    inner = r[half:-half, half:-half]
    ys, xs = np.nonzero(inner > level)
    ys, xs = ys + half, xs + half
    vals = r[ys, xs]
    ok = np.ones(ys.size, bool)
    for dy in range(-half, half + 1):
        for dx in range(-half, half + 1):
            if dy or dx:
                ok &= r[ys + dy, xs + dx] <= vals
    return ys[ok], xs[ok], vals[ok]


def _log_noise_gain(sigma: float) -> float:
    """Standard deviation of the normalised LoG (as computed above) of unit white noise at ``sigma`` px."""
    n = 2 * int(math.ceil(4 * sigma)) + 1
    delta = np.zeros((n, n), np.float32)
    delta[n // 2, n // 2] = 1.0
    return float(sigma**2 * np.sqrt(np.sum(_laplacian(ndi.gaussian_filter(delta, sigma)) ** 2)))


def _suppress(blobs: np.ndarray) -> np.ndarray:
    """Keep, greedily by normalised response, blobs whose centres are not inside a stronger one."""
    from scipy.spatial import cKDTree

    order = np.argsort(-blobs[:, 3])
    blobs = blobs[order]
    tree = cKDTree(blobs[:, :2])
    alive = np.ones(len(blobs), bool)
    reach = np.sqrt(2) * blobs[:, 2]  # the radius of the blob found at this sigma
    for i in range(len(blobs)):
        if not alive[i]:
            continue
        for j in tree.query_ball_point(blobs[i, :2], reach[i]):
            if j > i:
                alive[j] = False
    return blobs[alive]


def _noise_sigma(img: np.ndarray) -> float:
    """Pixel noise from the differences of neighbouring pixels (robust to edges and gradients); read
    on every k-th row of a large image (a million differences are plenty for a median)."""
    rows = img[::max(1, img.shape[0] * img.shape[-1] // 1_000_000)] if img.ndim == 2 else img
    d = np.diff(rows, axis=-1).ravel()
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))


# ------------------------------------------------------------------------------------------------
# coloured noise
# ------------------------------------------------------------------------------------------------
# A real detector's noise is not white: a motion-corrected sum's interpolation or the detector's MTF smooth it, so the
# pixel-to-pixel noise (which _noise_sigma reads) is well below the noise in the band a blob search at a few pixels
# uses, and every significance is inflated. epu2.9_example.mrc (mrcfile's corpus): power falls 35x from 0.1 to 0.49
# cycles/px, a Gaussian in f (ln power linear in f², slope 15 from 0.1 to 0.5); the defaults found 347,413 "blobs"
# of Ø 2.7 Å there. The noise is read as coloured where its power at COLOURED_BANDS[0] stands COLOURED_ABOVE x its
# power at COLOURED_BANDS[1] (cycles/px): bands above the particles' own power (a blur of 1 px leaves a particle 0.4 %
# of its power at 0.375) and near Nyquist. On the 327 benchmark images of sessions 14-22 (white counting noise, Ø 5-60
# px, up to 2000 counts/px) the ratio is at most ~1.1; epu2.9_example.mrc 3.6; fei-extended.mrc 1.02.
COLOURED_BANDS = ((0.35, 0.40), (0.45, 0.50))
COLOURED_ABOVE = 1.25
# the fall's slope is fitted over this band (cycles/px; ln power against f²)
FALL_FIT_BAND = (0.3, 0.5)
# the spectrum is read over up to 4 x 4 tiles of this many px a side (Hann-windowed: a ramp's tile edges leak no power)
SPECTRUM_TILE = 512


# Detector rows (or columns) read out with their own offsets make stripes: power along the frequency axis fx = 0
# (fy = 0), each stripe a row of "blobs" (hyperspy's TVIPS_bin4.tif: 4 panels of row stripes, no particles, 343
# objects). They are read as stripes where the power within STRIPE_BINS bins of that axis (tile spectrum, from
# STRIPES_FROM cycles/px along it) stands STRIPES_ABOVE x the power just beside it: particles are round, their power has
# no axis. TVIPS 6.1; epu2.9 1.02, fei-extended 1.02; the 327 benchmark images of sessions 14-22 at most 1.35.
STRIPES_ABOVE = 2.0
STRIPE_BINS = 2
STRIPES_FROM = 0.1


# the colour is read only where the power near Nyquist (0.45-0.5 cycles/px) is at most this many times the power white
# noise of the pixel noise (_noise_sigma) would have there: else it is the image's own sharp edges, which fall with the
# frequency too (two noise-free disks: 6e30; with noise of 1 % of their contrast: 25); epu2.9 0.33, fei-extended 1.01,
# TVIPS 0.69, a dense white Ø6 field at 2000 counts/px 0.29 (its edges raise the pixel noise read)
EDGES_ABOVE = 2.0


def _tile_power(img: np.ndarray) -> np.ndarray:
    """The periodogram (rfft layout) of up to 4 x 4 Hann-windowed tiles of SPECTRUM_TILE px a side, per tile and
    scaled so that white noise of unit variance has power 1."""
    from scipy import fft as sfft

    side = min(SPECTRUM_TILE, *img.shape)
    starts = [np.linspace(0, n - side, max(1, min(4, n // side))).astype(int) for n in img.shape]
    window = np.outer(np.hanning(side), np.hanning(side)).astype(np.float32)
    power = 0.0
    for y in starts[0]:
        for x in starts[1]:
            tile = img[y:y + side, x:x + side].astype(np.float32)
            power = power + np.abs(sfft.rfft2((tile - tile.mean()) * window, workers=1)) ** 2
    return power / (len(starts[0]) * len(starts[1]) * float(np.sum(window.astype(np.float64) ** 2)))


def _radial(power: np.ndarray, n_bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, power) of a tile periodogram averaged over rings of ``n_bins`` up to 0.5 cycles/px."""
    side = power.shape[0]
    freq = np.hypot(np.fft.fftfreq(side)[:, None], np.fft.rfftfreq(side)[None, :]).ravel()
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    ring = np.digitize(freq, edges) - 1
    inside = (ring >= 0) & (ring < n_bins)
    counts = np.bincount(ring[inside], minlength=n_bins)
    profile = np.bincount(ring[inside], np.ravel(power)[inside], minlength=n_bins) / np.maximum(counts, 1)
    return 0.5 * (edges[1:] + edges[:-1]), profile


def _axis_excess(power: np.ndarray) -> tuple[float, float]:
    """(rows, columns): the median over the frequencies along the fx = 0 (fy = 0) axis from STRIPES_FROM cycles/px of
    the power within STRIPE_BINS bins of the axis over the power of the next side / 64 bins beside it (a median of
    ratios: a dense field's ring of power at low frequency weighs no more than the rest)."""
    side = power.shape[0]
    along = np.abs(np.fft.fftfreq(side)) >= STRIPES_FROM
    beside = np.arange(STRIPE_BINS + 1, STRIPE_BINS + 1 + max(4, side // 64))
    rows = np.median(power[along][:, :STRIPE_BINS].mean(axis=1) / power[along][:, beside].mean(axis=1))
    columns = along[:power.shape[1]]
    near = np.r_[0:STRIPE_BINS, side - STRIPE_BINS + 1:side]
    cols = np.median(power[near][:, columns].mean(axis=0) / power[np.r_[beside, side - beside]][:, columns].mean(axis=0))
    return float(rows), float(cols)


def noise_colour(img: np.ndarray) -> tuple[float, bool, bool]:
    """``(fall, row_stripes, column_stripes)`` of a 2D image's noise: ``fall`` the slope ``b`` of its power
    ``exp(-b f²)`` (f in cycles/px) where it is coloured (COLOURED_ABOVE), else 0; stripes where STRIPES_ABOVE.
    ``(0, False, False)``: white noise, the image is used as it is."""
    if img.ndim != 2 or min(img.shape) < 64:
        return 0.0, False, False
    power = _tile_power(img)
    freq, profile = _radial(power)

    def band(lo, hi):
        return float(profile[(freq >= lo) & (freq < hi)].mean())

    (a0, a1), (b0, b1) = COLOURED_BANDS
    if not band(b0, b1) <= EDGES_ABOVE * _noise_sigma(img) ** 2:  # the image's own edges, not noise
        return 0.0, False, False
    fall = 0.0
    if band(a0, a1) > COLOURED_ABOVE * band(b0, b1):
        fit = (freq >= FALL_FIT_BAND[0]) & (freq < FALL_FIT_BAND[1]) & (profile > 0)
        fall = max(0.0, -float(np.polyfit(freq[fit] ** 2, np.log(profile[fit]), 1)[0]))
    rows, cols = _axis_excess(power)
    return fall, rows > STRIPES_ABOVE, cols > STRIPES_ABOVE


def colour_text(colour: tuple) -> str:
    """Words for :func:`noise_colour`'s answer ("" for white noise)."""
    fall, row_stripes, column_stripes = colour
    words = [f"its power falls {math.exp(0.25 * fall):.0f}x from low frequencies to 0.5 cycles/px"] if fall > 0 else []
    words += ["row stripes"] if row_stripes else []
    words += ["column stripes"] if column_stripes else []
    return ", ".join(words)


def whiten(img: np.ndarray, colour: tuple | None = None) -> np.ndarray:
    """``img`` with its noise made white where it is coloured (``colour``: :func:`noise_colour`, read off ``img`` if
    not given): each frequency up to 0.5 cycles/px raised by ``exp(fall f² / 2)`` (its power at zero frequency kept,
    so that particles of a few pixels and more keep their contrast), beyond that as at 0.5; stripes' power taken off
    their axis (:func:`_flatten_axis`). ``img`` itself where the noise is white."""
    from scipy import fft as sfft

    fall, row_stripes, column_stripes = noise_colour(img) if colour is None else colour
    if not (fall > 0 or row_stripes or column_stripes):
        return img
    pad = 8  # reflected: the wrap-around's edge would be sharpened into a ringing border
    padded = np.pad(img.astype(np.float32), pad, mode="reflect")
    spectrum = sfft.rfft2(padded, workers=1)
    if fall > 0:
        f2 = np.minimum(np.fft.fftfreq(padded.shape[0])[:, None] ** 2 + np.fft.rfftfreq(padded.shape[1])[None, :] ** 2,
                        0.25)
        spectrum *= np.exp(0.5 * fall * f2).astype(np.float32)
    if row_stripes:
        spectrum = _flatten_axis(spectrum, padded.shape[1])
    if column_stripes:
        spectrum = _flatten_axis(spectrum.T, padded.shape[0], half=False).T
    out = sfft.irfft2(spectrum, s=padded.shape, workers=1)
    return out[pad:-pad, pad:-pad].astype(np.float32)


def _flatten_axis(spectrum: np.ndarray, n: int, half: bool = True) -> np.ndarray:
    """``spectrum`` (rows: the frequency along the stripes' axis) with the power of its first columns (within 1/128
    of the axis, at least 3: a panel of stripes a quarter of the image wide spreads that far) brought down to the
    power just beside them (the next 3x as many columns), row by row smoothed over 15 rows. ``half``: the columns are
    an rfft's (0 and up), else a full fft's (both signs)."""
    k = max(3, int(round(n / 128)))
    out = spectrum.copy()
    m = spectrum.shape[1]
    near = np.arange(k) if half else np.r_[0:k, m - k + 1:m]
    beside = np.arange(k, 4 * k) if half else np.r_[k:4 * k, m - 4 * k + 1:m - k + 1]
    power = np.abs(spectrum) ** 2
    reference = ndi.uniform_filter1d(power[:, beside].mean(axis=1), 15, mode="wrap")
    excess = ndi.uniform_filter1d(power[:, near], 15, axis=0, mode="wrap") / np.maximum(reference[:, None], 1e-30)
    out[:, near] = spectrum[:, near] / np.sqrt(np.maximum(excess, 1.0))
    return out


def noise_floor(img: np.ndarray) -> float:
    """The pixel noise, but at least 0.1 % of the image's range (a noise-free image has no zero noise
    to divide by: its faint ringing must not count as significant)."""
    lo, hi = np.percentile(img[::max(1, img.shape[0] * img.shape[-1] // 1_000_000)], [1, 99])
    return max(_noise_sigma(img), 1e-3 * float(hi - lo), 1e-12)
