"""The denoisers behind :func:`napari_cryomat.core.denoise.denoise`, and the tiling that runs them.

Every denoiser works on a variance-stabilised image (noise of unit standard deviation), takes one
strength parameter that Noise2Self calibrates, and is *local*: the value at a pixel depends only
on pixels within ``margin(strength)`` of it. That is what makes a tiled run (tiles padded by the
margin) identical to a run on the whole image:

- ``gaussian``: Gaussian filter, σ in pixels (support 4σ);
- ``tv``: total variation (Chambolle) with a fixed number of iterations, so the result does not
  depend on a stopping test over the whole image (each iteration reaches 2 pixels further);
- ``wavelet``: soft thresholding of an undecimated (stationary, "cycle-spun") wavelet transform,
  threshold in units of each band's noise level; unlike the decimated transform it is
  translation-invariant, hence local;
- ``nlm``: non-local means (scikit-image, fast mode), filtering parameter h in units of σ;
- ``spectral``: empirical Wiener filter in overlapping windowed 128² blocks (short-time Fourier
  transform) anchored to the image grid; strength beta scales the noise power subtracted. Lattices
  and fringes concentrate in a few strong coefficients per block, so it excels on crystals.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

from napari_cryomat.core._progress import ProgressCallback, report

__all__ = ["METHODS", "Method", "apply_tiled", "tile_margin"]

TV_ITERATIONS = 40
WAVELET, WAVELET_LEVELS = "db2", 3
NLM_PATCH, NLM_DISTANCE = 5, 5
SPECTRAL_BLOCK, SPECTRAL_STEP = 128, 32  # large blocks resolve lattice spots; 4x overlap per axis


@dataclass(frozen=True)
class Method:
    """A denoiser of unit-variance noise with one strength parameter."""

    name: str
    parameter: str       # name of the strength parameter, as shown to a user
    grid: tuple          # values tried by the calibration (coarse, geometric)
    run: Callable        # run(image, strength) -> image (float32, same shape)
    margin: Callable     # margin(strength) -> pixels of context each side


# -------------------------------------------------------------------------------------------------
# the denoisers
# -------------------------------------------------------------------------------------------------
def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndi.gaussian_filter(image, sigma, mode="mirror", truncate=4.0)


def _tv(image: np.ndarray, weight: float) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    # eps=0: exactly TV_ITERATIONS iterations whatever the image (a global stopping test is not local)
    return denoise_tv_chambolle(image, weight=weight, eps=0.0, max_num_iter=TV_ITERATIONS).astype(np.float32)


@lru_cache(maxsize=4)
def _band_noise(wavelet: str, levels: int) -> tuple:
    """Standard deviation of unit white noise in each detail band of the stationary transform."""
    import pywt

    noise = np.random.default_rng(12345).standard_normal((256, 256))
    coeffs = pywt.swt2(noise, wavelet, levels, trim_approx=True, norm=True)
    return tuple(tuple(float(np.std(band)) for band in detail) for detail in coeffs[1:])


def _wavelet(image: np.ndarray, threshold: float) -> np.ndarray:
    import pywt

    step = 2**WAVELET_LEVELS
    ny, nx = image.shape
    pad = ((0, (-ny) % step), (0, (-nx) % step))
    padded = np.pad(image.astype(np.float64), pad, mode="symmetric")
    coeffs = pywt.swt2(padded, WAVELET, WAVELET_LEVELS, trim_approx=True, norm=True)
    out = [coeffs[0]]
    for detail, noise in zip(coeffs[1:], _band_noise(WAVELET, WAVELET_LEVELS)):
        out.append(tuple(pywt.threshold(band, threshold * s, mode="soft") for band, s in zip(detail, noise)))
    return pywt.iswt2(out, WAVELET, norm=True)[:ny, :nx].astype(np.float32)


def _blocks(image: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Overlapping blocks of SPECTRAL_BLOCK² every SPECTRAL_STEP px, anchored at the image's corner,
    the image extended (mirror) so that blocks cover it: (blocks, padded shape)."""
    b, s = SPECTRAL_BLOCK, SPECTRAL_STEP
    ny, nx = image.shape
    py = max(b, int(np.ceil((ny - b) / s)) * s + b) - ny
    px = max(b, int(np.ceil((nx - b) / s)) * s + b) - nx
    padded = np.pad(image, ((0, py), (0, px)), mode="symmetric")
    view = np.lib.stride_tricks.sliding_window_view(padded, (b, b))[::s, ::s]
    return view, padded.shape


@lru_cache(maxsize=2)
def _block_window() -> np.ndarray:
    w = np.sin(np.pi * (np.arange(SPECTRAL_BLOCK) + 0.5) / SPECTRAL_BLOCK)  # sqrt of a Hann window
    return np.outer(w, w).astype(np.float32)


def _spectral(image: np.ndarray, beta: float) -> np.ndarray:
    """Empirical Wiener filter in overlapping windowed blocks (a short-time Fourier transform):
    each coefficient is kept in the proportion 1 - beta * noise power / its power. Periodic
    content (lattices, fringes) sits in few strong coefficients and survives; white noise does not."""
    b = SPECTRAL_BLOCK
    window = _block_window()
    blocks, shape = _blocks(image.astype(np.float32))
    mean = blocks.mean(axis=(-2, -1), keepdims=True)
    spectra = sfft.rfft2((blocks - mean) * window, workers=1)
    noise = float((window**2).sum())  # unit-variance white noise through the window
    power = spectra.real**2 + spectra.imag**2
    gain = np.maximum(0.0, 1.0 - beta * noise / np.maximum(power, 1e-12)).astype(np.float32)
    filtered = sfft.irfft2(spectra * gain, s=(b, b), workers=1) + mean * window  # back to the windowed block
    out = _overlap_add(filtered * window)
    weight = _overlap_add(np.broadcast_to(window**2, filtered.shape))
    ny, nx = image.shape
    return (out[:ny, :nx] / weight[:ny, :nx]).astype(np.float32)


def _overlap_add(blocks: np.ndarray) -> np.ndarray:
    """Sum blocks (I, J, b, b) placed every SPECTRAL_STEP px into one image: each block is cut into
    k x k cells of step² and cell (di, dj) of block (i, j) lands on cell (i + di, j + dj)."""
    b, s = SPECTRAL_BLOCK, SPECTRAL_STEP
    k = b // s
    n_i, n_j = blocks.shape[:2]
    cells = blocks.reshape(n_i, n_j, k, s, k, s)
    out = np.zeros((n_i + k - 1, n_j + k - 1, s, s), np.float32)
    for di in range(k):
        for dj in range(k):
            out[di:di + n_i, dj:dj + n_j] += cells[:, :, di, :, dj, :]
    return out.transpose(0, 2, 1, 3).reshape((n_i + k - 1) * s, (n_j + k - 1) * s)


def _nlm(image: np.ndarray, h: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(image, patch_size=NLM_PATCH, patch_distance=NLM_DISTANCE, h=h, sigma=1.0,
                            fast_mode=True, preserve_range=True).astype(np.float32)


METHODS = {
    "gaussian": Method("gaussian", "sigma (px)", tuple(np.geomspace(0.5, 16.0, 7)), _gaussian,
                       lambda s: int(np.ceil(4 * s)) + 1),
    "tv": Method("tv", "weight (σ)", tuple(np.geomspace(0.2, 6.4, 7)), _tv,
                 lambda w: 2 * TV_ITERATIONS + 4),
    "wavelet": Method("wavelet", "threshold (σ)", tuple(np.geomspace(0.6, 4.8, 7)), _wavelet,
                      lambda t: 2 * 3 * (2**WAVELET_LEVELS - 1) + 8),
    "nlm": Method("nlm", "h (σ)", tuple(np.geomspace(0.25, 1.6, 7)), _nlm,
                  lambda h: NLM_PATCH // 2 + NLM_DISTANCE + 4),
    "spectral": Method("spectral", "beta (noise power)", tuple(np.geomspace(0.25, 8.0, 7)), _spectral,
                       lambda b: SPECTRAL_BLOCK),
}


# -------------------------------------------------------------------------------------------------
# tiling
# -------------------------------------------------------------------------------------------------
def tile_margin(parts) -> int:
    """Context needed by a list of (method name, strength, weight) parts."""
    margin = max(METHODS[name].margin(value) for name, value, _ in parts)
    return -(-margin // 16) * 16  # a multiple of the block step: blocks stay anchored to the image grid


def _tile_starts(n: int, tile: int) -> list[int]:
    return list(range(0, n, tile))


def apply_tiled(image: np.ndarray, func: Callable[[np.ndarray], np.ndarray], margin: int, *, tile: int = 512,
                progress: ProgressCallback = None, workers: int | None = None) -> np.ndarray:
    """``func`` over a 2D image in tiles of ``tile`` px, each with ``margin`` px of context.

    The image is extended by mirror symmetry at its edges (numpy's "symmetric", dask's "reflect"),
    so a local ``func`` gives the same result whatever the tile size. Tiles run in a thread pool.
    """
    image = np.asarray(image, np.float32)
    ny, nx = image.shape
    m = int(margin)
    padded = np.pad(image, m, mode="symmetric")  # numpy mirrors repeatedly when m exceeds the image
    out = np.empty_like(image)
    boxes = [(y, x) for y in _tile_starts(ny, tile) for x in _tile_starts(nx, tile)]

    def one(box):
        y, x = box
        h, w = min(tile, ny - y), min(tile, nx - x)
        result = func(padded[y:y + h + 2 * m, x:x + w + 2 * m])
        out[y:y + h, x:x + w] = result[m:m + h, m:m + w]

    n_workers = workers or min(len(boxes), os.cpu_count() or 1)
    if n_workers <= 1:
        for i, box in enumerate(boxes):
            one(box)
            report(progress, (i + 1) / len(boxes))
        return out
    pool = ThreadPoolExecutor(n_workers)
    try:
        for i, _ in enumerate(pool.map(one, boxes)):
            report(progress, (i + 1) / len(boxes))  # a Cancelled raised here drops the tiles not started
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out
