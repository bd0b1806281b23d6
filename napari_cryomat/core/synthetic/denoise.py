"""Noisy low-dose test images with their noise-free truth, for the denoising tests and benchmark.

Three kinds of specimen, each normalised to a mean of 1 so that ``dose`` is the mean number of
counts per pixel:

- ``"lattice"``: a hexagonal crystal (Gaussian atoms, a = 4 Å) on a weak background;
- ``"particles"``: nanoparticles (soft-edged discs of varying contrast) on an amorphous support
  (correlated random texture);
- ``"sei"``: a layered solid-electrolyte-interphase-like cross-section: a crystalline metal with
  lattice fringes below a wavy interface, an amorphous band holding a few small crystalline grains
  with fringes in random orientations, and smooth vitreous electrolyte above.

The counts are Poisson with mean ``dose * truth``; ``row_noise`` adds a random offset to every row
(the row-correlated read-out noise of many detectors), its standard deviation given relative to the
Poisson standard deviation at the mean level, ``sqrt(dose)``. Deterministic for a given ``seed``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core.synthetic.lattice import hexagonal_basis, lattice_image

__all__ = ["KINDS", "noisy_image", "specimen"]

KINDS = ("lattice", "particles", "sei")


def _normalise(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, np.float64)
    img = img - min(0.0, float(img.min()))
    return (img / img.mean()).astype(np.float32)


def _texture(shape, rng, sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance correlated random texture (amorphous carbon / ice)."""
    t = ndi.gaussian_filter(rng.standard_normal(shape), sigma) + 0.5 * ndi.gaussian_filter(
        rng.standard_normal(shape), sigma / 3)
    return (t - t.mean()) / t.std()


def _lattice(shape, rng) -> np.ndarray:
    rotation = float(rng.uniform(0, 60))
    atoms = lattice_image(shape, pixel_size=0.4, basis=hexagonal_basis(4.0, rotation), sigma=0.7, noise=0.0)
    return 0.35 + atoms


def _particles(shape, rng) -> np.ndarray:
    ny, nx = shape
    img = 1.0 + 0.12 * _texture(shape, rng, 2.0)
    yy, xx = np.mgrid[:ny, :nx]
    n = max(3, int(ny * nx / 9000))
    for _ in range(n):
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        r = rng.uniform(0.02, 0.07) * min(ny, nx)
        contrast = rng.uniform(0.3, 0.8) * rng.choice([-1.0, 1.0], p=[0.7, 0.3])
        d = np.hypot(yy - cy, xx - cx)
        img += contrast * 0.5 * (1 - np.tanh((d - r) / 1.5))
    return np.clip(img, 0.05, None)


def _fringes(yy, xx, period: float, angle: float) -> np.ndarray:
    k = 2 * np.pi / period
    return np.cos(k * (np.cos(angle) * xx + np.sin(angle) * yy))


def _sei(shape, rng) -> np.ndarray:
    ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx].astype(np.float64)
    # a wavy metal / SEI interface and a rougher SEI / electrolyte one
    phase = rng.uniform(0, 2 * np.pi, 2)
    base = 0.62 * ny + 0.04 * ny * np.sin(2 * np.pi * xx / nx * 1.5 + phase[0])
    top = base - 0.22 * ny + 0.03 * ny * np.sin(2 * np.pi * xx / nx * 3 + phase[1])
    metal = 0.5 * (1 + np.tanh((yy - base) / 2.0))
    electrolyte = 0.5 * (1 - np.tanh((yy - top) / 3.0))
    sei = np.clip(1 - metal - electrolyte, 0, 1)
    img = metal * (0.6 + 0.25 * _fringes(yy, xx, 5.0, rng.uniform(0, np.pi)))
    img += sei * (1.0 + 0.15 * _texture(shape, rng, 1.5))
    img += electrolyte * (1.3 + 0.05 * _texture(shape, rng, 6.0))
    # small crystalline grains (Li2O, LiF) inside the amorphous band
    for _ in range(max(3, nx // 60)):
        cx = rng.uniform(0, nx)
        cy = np.interp(cx, xx[0], (0.5 * (base + top))[0].astype(float)) + rng.normal(0, 0.04 * ny)
        r = rng.uniform(0.015, 0.035) * min(ny, nx)
        grain = 0.5 * (1 - np.tanh((np.hypot(yy - cy, xx - cx) - r) / 1.0))
        img += sei * grain * 0.3 * _fringes(yy, xx, rng.uniform(3.5, 6.0), rng.uniform(0, np.pi))
    return np.clip(img, 0.05, None)


def specimen(kind: str = "lattice", shape=(512, 512), *, seed: int = 0) -> np.ndarray:
    """The noise-free image of ``kind`` (one of :data:`KINDS`), float32 with mean 1."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    rng = np.random.default_rng(seed)
    make = {"lattice": _lattice, "particles": _particles, "sei": _sei}[kind]
    return _normalise(make(tuple(int(s) for s in shape), rng))


def noisy_image(kind: str = "lattice", shape=(512, 512), *, dose: float = 1.0, row_noise: float = 0.0,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A counted low-dose image of ``kind`` and its truth.

    Parameters
    ----------
    kind : {"lattice", "particles", "sei"}
    shape : (int, int)
    dose : float
        Mean counts per pixel (e.g. 0.1, 1, 10).
    row_noise : float
        Standard deviation of a per-row offset, relative to ``sqrt(dose)``; 0 gives pure Poisson counts
        (non-negative integers), > 0 gives real-valued data.
    seed : int

    Returns
    -------
    noisy : (Y, X) float32
        Counts (plus row offsets).
    truth : (Y, X) float32
        The expected counts, ``dose * specimen``: what a perfect denoiser returns.
    """
    truth = (float(dose) * specimen(kind, shape, seed=seed)).astype(np.float32)
    rng = np.random.default_rng(seed + 1_000_003)
    noisy = rng.poisson(truth).astype(np.float32)
    if row_noise > 0:
        noisy += (row_noise * np.sqrt(dose) * rng.standard_normal((shape[0], 1))).astype(np.float32)
    return noisy, truth
