"""Synthetic low-dose movies of a drifting crystal with a superlattice (known truth).

The specimen is a finite crystal grain (square lattice, period ``period`` px, with a 1/3-order
superlattice modulation) embedded in amorphous ice, plus a few vacancies. The grain boundary, the
ice and the vacancies are aperiodic, so the true drift is unique even though the lattice alone
would allow jumps by one period. Each frame is evaluated exactly at its shifted position (the
lattice analytically, the band-limited background by a Fourier shift on a larger canvas), so the
stored trajectory is the exact truth, and then Poisson noise is drawn.

Sign convention (the one of :func:`napari_cryomat.core.drift.estimate_drift`):
``frame_i(r) = frame_0(r - shifts[i])`` before noise, ``shifts[0] == (0, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

__all__ = ["DriftingMovie", "MovieSpecimen", "drift_trajectory", "lattice_specimen", "lattice_vectors",
           "drifting_movie"]

#: Lattice types of :func:`lattice_specimen`.
LATTICES = ("square", "hexagonal", "oblique")


def lattice_vectors(kind: str = "square", period: float = 8.0, angle: float = 0.0) -> np.ndarray:
    """Real-space lattice vectors (2, 2) as rows (dy, dx), px; the shorter one has length ``period``.

    square: 90°, equal sides; hexagonal: 60°, equal sides; oblique: 75°, sides 1 : 1.3. ``angle``
    (radians) rotates the lattice.
    """
    if kind not in LATTICES:
        raise ValueError(f"kind must be one of {LATTICES}; got {kind!r}.")
    gamma, ratio = {"square": (np.pi / 2, 1.0), "hexagonal": (np.pi / 3, 1.0), "oblique": (np.deg2rad(75), 1.3)}[kind]
    a1 = period * np.array([np.sin(angle), np.cos(angle)])
    a2 = ratio * period * np.array([np.sin(angle + gamma), np.cos(angle + gamma)])
    return np.stack([a1, a2])


def drift_trajectory(
    n_frames: int,
    *,
    velocity: tuple[float, float] = (0.35, 0.6),
    step: float = 0.25,
    seed: int = 0,
) -> np.ndarray:
    """Random-walk plus linear drift, (n_frames, 2) of (dy, dx) in pixels, starting at (0, 0).

    Parameters
    ----------
    n_frames : int
        Number of frames.
    velocity : (float, float)
        Linear drift per frame (dy, dx), px/frame.
    step : float
        Standard deviation of the random-walk step per frame and axis, px.
    seed : int
        Seed of the random walk.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames, dtype=float)[:, None]
    walk = np.cumsum(rng.normal(0.0, step, size=(n_frames, 2)), axis=0)
    traj = t * np.asarray(velocity, float)[None, :] + walk
    return traj - traj[0]


def _band_limited_noise(shape, rng, corr_px: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ``corr_px``."""
    white = rng.standard_normal(shape).astype(np.float32)
    field = ndimage.gaussian_filter(white, corr_px, mode="wrap")
    field -= field.mean()
    return field / (field.std() + 1e-12)


def lattice_specimen(
    yy: np.ndarray,
    xx: np.ndarray,
    *,
    period: float = 8.0,
    contrast: float = 0.5,
    superlattice: float = 0.35,
    kind: str = "square",
    angle: float = 0.0,
) -> np.ndarray:
    """Lattice (shortest period ``period`` px) with a 1/3-order modulation, at coordinates (yy, xx).

    ``kind``: "square" (the default, axis-aligned at ``angle`` 0), "hexagonal" or "oblique"
    (:func:`lattice_vectors`). Returns a positive intensity pattern with mean about 1 (before the
    grain mask).
    """
    if kind == "square" and angle == 0.0:
        k = 2 * np.pi / period
        lat = 0.5 * (np.cos(k * yy) + np.cos(k * xx))  # in [-1, 1]
        sup = 0.5 * (np.cos(k * yy / 3.0) * np.cos(k * xx / 3.0) + 1.0)  # 1/3-order, in [0, 1]
    else:
        recip = 2 * np.pi * np.linalg.inv(lattice_vectors(kind, period, angle)).T  # rows b_j: a_i·b_j = 2π δ_ij
        phase = [recip[j, 0] * yy + recip[j, 1] * xx for j in range(2)]
        if kind == "hexagonal":  # three reflections at 120°: atoms on a triangular net
            lat = (np.cos(phase[0]) + np.cos(phase[1]) + np.cos(phase[0] + phase[1]) - 0.75) / 2.25
        else:
            lat = 0.5 * (np.cos(phase[0]) + np.cos(phase[1]))
        sup = 0.5 * (np.cos(phase[0] / 3.0) * np.cos(phase[1] / 3.0) + 1.0)
    return 1.0 + contrast * lat * (1.0 - superlattice + superlattice * 2.0 * sup) / (1.0 + superlattice)


class MovieSpecimen:
    """The noise-free specimen of :func:`drifting_movie`, renderable at any shift.

    Draws the aperiodic parts (grain mask, ice, vacancies, contamination) from ``rng`` on a canvas
    ``pad`` px larger than the frame on every side and keeps their Fourier transform; the lattice is
    analytic. :meth:`render` is the generator's own formula, so a frame rendered at the true shift is
    the movie's noise-free frame (``scale`` = counts per unit of the unscaled specimen).
    """

    def __init__(self, shape, pad: int, rng, *, period: float, contrast: float, superlattice: float, lattice: str,
                 angle: float, crystal_fraction: Optional[float]):
        ny, nx = int(shape[0]), int(shape[1])
        cy, cx = ny + 2 * pad, nx + 2 * pad
        # Aperiodic parts on a larger canvas: grain mask (smooth irregular blob), ice, vacancies.
        blob = _band_limited_noise((cy, cx), rng, corr_px=max(ny, nx) / 8.0)
        yy0, xx0 = np.mgrid[0:cy, 0:cx].astype(np.float32)
        rr = np.hypot((yy0 - cy / 2) / (0.32 * ny), (xx0 - cx / 2) / (0.38 * nx))
        grain = 1.0 / (1.0 + np.exp(-(1.0 - rr + 0.25 * blob) / 0.04))
        envelope = 1.0
        if crystal_fraction is not None:
            if crystal_fraction >= 1.0:
                grain = np.ones_like(grain)
                envelope = 1.0 + 0.15 * blob  # slow intensity envelope: the only aperiodic contrast left
            else:
                level = np.quantile(blob[pad : pad + ny, pad : pad + nx], 1.0 - crystal_fraction)
                grain = 1.0 / (1.0 + np.exp(-(blob - level) / 0.1))
        vac = np.zeros((cy, cx), np.float32)
        n_vac = int(cy * cx / (period**2) / 60)
        vac[rng.integers(0, cy, n_vac), rng.integers(0, cx, n_vac)] = 1.0
        vac = ndimage.gaussian_filter(vac, period / 4.0, mode="wrap") * (2 * np.pi * (period / 4.0) ** 2)
        perfect = crystal_fraction is not None and crystal_fraction >= 1.0
        if perfect:
            vac[:] = 0.0  # a perfect crystal: no vacancies either
        ice = _band_limited_noise((cy, cx), rng, corr_px=2.5)
        # thickness variation of the ice and a few contamination blobs (aperiodic, low frequency)
        thick = 0.5 * _band_limited_noise((cy, cx), rng, corr_px=6.0)
        n_blob = max(3, int(cy * cx / 4000))
        blobs = np.zeros((cy, cx), np.float32)
        blobs[rng.integers(0, cy, n_blob), rng.integers(0, cx, n_blob)] = 1.0
        blobs = np.clip(ndimage.gaussian_filter(blobs, 4.0, mode="wrap") * (2 * np.pi * 16.0), 0, 1)
        ice = 0.15 * ice + thick - 0.6 * blobs
        self.texture = 0.0 if perfect else 0.15  # amorphous texture over the grain
        aperiodic = np.stack([envelope * grain * (1.0 - 0.6 * np.clip(vac, 0, 1)), grain, ice]).astype(np.float32)
        self.spec_ap = sfft.rfft2(aperiodic, workers=-1)
        self.ky = sfft.fftfreq(cy)[:, None]
        self.kx = sfft.rfftfreq(cx)[None, :]
        self.pad, self.canvas, self.shape = pad, (cy, cx), (ny, nx)
        self.lattice = dict(period=period, contrast=contrast, superlattice=superlattice, kind=lattice, angle=angle)
        self.scale = 1.0

    def _compose(self, ap, yy, xx):
        g_vac, g, ice_i = ap
        lat = lattice_specimen(yy, xx, **self.lattice)
        # crystal grain darker than the surrounding ice (more scattering), with its lattice
        img = 0.7 * g_vac * lat + (1.0 - g) * (1.0 + 0.5 * ice_i) + self.texture * g * ice_i
        return np.clip(img, 0.05, None) * self.scale

    def render(self, s) -> np.ndarray:
        """Expected counts of a frame whose content is shifted by ``s`` (dy, dx): frame(r) = specimen(r - s)."""
        (ny, nx), pad, (cy, cx) = self.shape, self.pad, self.canvas
        ramp = np.exp(-2j * np.pi * (self.ky * s[0] + self.kx * s[1])).astype(np.complex64)
        ap = sfft.irfft2(self.spec_ap * ramp[None], s=(cy, cx), workers=-1)[:, pad : pad + ny, pad : pad + nx]
        yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
        return self._compose(ap, yy - s[0], xx - s[1])

    def extended(self, reach: int, phase) -> np.ndarray:
        """E with ``E[j] = specimen(j - reach - phase)`` for j in [0, size + 2 reach): the frame at shift
        k + phase (k integer, |k| <= reach) is ``E[reach - k:][:size]`` (the aperiodic parts wrap around the
        canvas as in the Fourier shift of :meth:`render`; the lattice is analytic)."""
        (ny, nx), pad, (cy, cx) = self.shape, self.pad, self.canvas
        ramp = np.exp(-2j * np.pi * (self.ky * phase[0] + self.kx * phase[1])).astype(np.complex64)
        ap = sfft.irfft2(self.spec_ap * ramp[None], s=(cy, cx), workers=-1)
        py = np.arange(-reach, ny + reach)
        px = np.arange(-reach, nx + reach)
        ap = ap[:, (py + pad) % cy][:, :, (px + pad) % cx]
        yy, xx = np.meshgrid(py - phase[0], px - phase[1], indexing="ij")
        return self._compose(ap, yy, xx)


@dataclass
class DriftingMovie:
    """A synthetic movie and its truth."""

    frames: np.ndarray  # (N, Y, X) float32 counts
    shifts: np.ndarray  # (N, 2) true (dy, dx) px
    clean: np.ndarray  # (N, Y, X) float32 expected counts (noise-free)
    pixel_size: float  # Å
    dose_per_frame: float  # e/Å²
    counts_per_pixel: float  # mean counts per pixel per frame
    period: float  # lattice period, px
    specimen: Optional[MovieSpecimen] = None  # the noise-free specimen, renderable at any shift


def drifting_movie(
    shape: tuple[int, int] = (256, 256),
    n_frames: int = 20,
    *,
    counts_per_pixel: float = 0.1,
    period: float = 8.0,
    contrast: float = 0.5,
    superlattice: float = 0.35,
    pixel_size: float = 1.0,
    velocity: tuple[float, float] = (0.35, 0.6),
    step: float = 0.25,
    seed: int = 0,
    noise: bool = True,
    lattice: str = "square",
    angle: float = 0.0,
    crystal_fraction: Optional[float] = None,
) -> DriftingMovie:
    """Low-dose movie of a crystal grain in ice drifting along a random-walk-plus-linear path.

    Parameters
    ----------
    shape : (int, int)
        Frame size (Y, X), px.
    n_frames : int
        Number of frames (T).
    counts_per_pixel : float
        Mean electron counts per pixel per frame (Poisson). The dose per frame in e/Å² is
        ``counts_per_pixel / pixel_size**2``.
    period : float
        Lattice period, px.
    contrast : float
        Lattice contrast (fraction of the mean intensity).
    superlattice : float
        Strength of the 1/3-order superlattice modulation (0 = none).
    pixel_size : float
        Pixel size, Å.
    velocity, step : see :func:`drift_trajectory`.
    seed : int
        Seed for specimen, path and noise: the result is deterministic.
    noise : bool
        Draw Poisson noise (False returns the expected counts as ``frames``).
    lattice, angle : str, float
        Lattice type ("square", "hexagonal", "oblique") and rotation (radians), see
        :func:`lattice_specimen`.
    crystal_fraction : float, optional
        Fraction of the field covered by crystal (an irregular grain, the rest amorphous ice). 1
        fills the field: the only aperiodic content is then a slow ±15% intensity envelope and
        nothing else. None (default): the original elliptical grain over about a third.

    Returns
    -------
    DriftingMovie
    """
    ny, nx = int(shape[0]), int(shape[1])
    rng = np.random.default_rng(seed)
    shifts = drift_trajectory(n_frames, velocity=velocity, step=step, seed=seed + 1)
    span = np.abs(shifts).max(axis=0)
    pad = int(np.ceil(span.max())) + 16
    specimen = MovieSpecimen((ny, nx), pad, rng, period=period, contrast=contrast, superlattice=superlattice,
                             lattice=lattice, angle=angle, crystal_fraction=crystal_fraction)
    clean = np.empty((n_frames, ny, nx), np.float32)
    for i, s in enumerate(shifts):
        clean[i] = specimen.render(s)  # frame_i(r) = frame_0(r - s_i): the specimen at r - s_i
    specimen.scale = counts_per_pixel / clean.mean()
    clean *= specimen.scale
    if noise:
        nrng = np.random.default_rng(seed + 2)
        frames = nrng.poisson(clean).astype(np.float32)
    else:
        frames = clean.copy()
    return DriftingMovie(
        frames=frames,
        shifts=shifts,
        clean=clean,
        pixel_size=float(pixel_size),
        dose_per_frame=float(counts_per_pixel) / float(pixel_size) ** 2,
        counts_per_pixel=float(counts_per_pixel),
        period=float(period),
        specimen=specimen,
    )
