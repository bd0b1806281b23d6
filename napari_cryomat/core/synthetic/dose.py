"""Synthetic dose series of a beam-sensitive crystal (known critical doses).

A crystal grain (hexagonal or square lattice, random orientation) lies on an amorphous support.
Its lattice fringes are a sum of Bragg orders ("shells"); the amplitude of the fringes of shell
``j`` decays as ``exp(-D / (2 Dc_j))``, so the intensity of its Bragg spots decays as
``exp(-D / Dc_j)``: the textbook definition of the critical dose ``Dc`` (intensity to 1/e). Finer
shells get smaller critical doses (``Dc ∝ d²`` by default, as found for organic and
metal-organic crystals), and the grain's outline (its low-resolution shape) loses mass only slowly
(``shape_critical_dose``), so the shape survives long after the high-resolution order is gone.

Frame ``t`` is drawn as Poisson counts with mean ``dose_per_frame · pixel_size² · ρ(r, D_t)``, where
``D_t = (t + 0.5) · dose_per_frame`` is the cumulative dose at the middle of the frame. Frames are
aligned (no drift): beam damage is what varies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

__all__ = ["BraggShellTruth", "DoseSeriesSample", "beam_damage_series"]


@dataclass
class BraggShellTruth:
    """One Bragg order of the synthetic crystal: its spacing, spots and critical dose."""

    d_spacing: float  # Å
    g: np.ndarray  # (n, 2) reciprocal vectors (gy, gx) in 1/Å, one per Friedel pair
    critical_dose: float  # e/Å²
    amplitude: float  # fringe amplitude per spot at zero dose (relative to the grain's density)


@dataclass
class DoseSeriesSample:
    frames: np.ndarray  # (T, Y, X) float32 counts
    pixel_size: float  # Å
    dose_per_frame: float  # e/Å²
    shells: list[BraggShellTruth] = field(default_factory=list)
    shape_critical_dose: float = np.inf
    grain_mask: np.ndarray | None = None  # (Y, X) bool: where the crystal is

    @property
    def frame_dose(self) -> np.ndarray:
        """Cumulative dose at the middle of each frame, e/Å²."""
        return (np.arange(self.frames.shape[0]) + 0.5) * self.dose_per_frame


def _lattice_vectors(kind: str, period: float, angle: float) -> np.ndarray:
    """First-order reciprocal vectors (one per Friedel pair), (n, 2) (gy, gx) in 1/Å."""
    g = 1.0 / period
    if kind == "hexagonal":
        angles = angle + np.deg2rad([0.0, 60.0, 120.0])
        g = 2.0 / (np.sqrt(3.0) * period)  # period = nearest-neighbour distance
    elif kind == "square":
        angles = angle + np.deg2rad([0.0, 90.0])
    else:
        raise ValueError(f"lattice must be 'hexagonal' or 'square'; got {kind!r}.")
    return np.stack([g * np.sin(angles), g * np.cos(angles)], axis=1)


def _second_shell(first: np.ndarray, kind: str) -> np.ndarray:
    """The next Bragg order: g1 + g2 combinations (hexagonal: √3·g; square: √2·g)."""
    if kind == "hexagonal":
        return np.stack([first[0] + first[1], first[1] + first[2], first[2] - first[0]])
    return np.stack([first[0] + first[1], first[0] - first[1]])


def beam_damage_series(
    shape: tuple[int, int] = (256, 256),
    n_frames: int = 40,
    *,
    pixel_size: float = 1.0,
    dose_per_frame: float = 2.0,
    lattice: str = "hexagonal",
    period: float = 6.0,
    critical_dose: float = 12.0,
    low_order_factor: float | None = None,
    amplitude: float = 0.08,
    grain_fraction: float = 0.45,
    shape_critical_dose: float = 2000.0,
    texture_amplitude: float = 0.6,
    seed: int = 0,
) -> DoseSeriesSample:
    """Dose series of a crystal grain whose order fades with a known critical dose per Bragg shell.

    Parameters
    ----------
    shape : (int, int)
        Frame size, px.
    n_frames : int
        Number of frames.
    pixel_size : float
        Å per pixel.
    dose_per_frame : float
        e/Å² per frame.
    lattice : "hexagonal" or "square"
    period : float
        Nearest-neighbour distance of the lattice, Å.
    critical_dose : float
        Critical dose of the finest (second) Bragg shell, e/Å².
    low_order_factor : float, optional
        Critical dose of the first shell divided by that of the second; default ``(d1/d2)²``
        (3 for hexagonal, 2 for square).
    amplitude : float
        Fringe amplitude per spot of the first shell (the second has 0.7 of it).
    grain_fraction : float
        Fraction of the field covered by the crystal grain.
    shape_critical_dose : float
        Dose at which the grain has lost 1/e of its mass (its outline survives far longer than
        its lattice).
    texture_amplitude : float
        Standard deviation of the grain's aperiodic fine structure, which fades with the same
        ``Dc ∝ d²`` law as the lattice (the FRC's signal at high resolution).
    seed : int
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    angle = rng.uniform(0, np.pi)
    g1 = _lattice_vectors(lattice, period, angle)
    g2 = _second_shell(g1, lattice)
    d1, d2 = 1.0 / np.hypot(*g1[0]), 1.0 / np.hypot(*g2[0])
    ratio = (d1 / d2) ** 2 if low_order_factor is None else float(low_order_factor)
    shells = [
        BraggShellTruth(d1, g1, critical_dose * ratio, amplitude),
        BraggShellTruth(d2, g2, critical_dose, 0.7 * amplitude),
    ]
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    ry, rx = (yy - ny / 2) * pixel_size, (xx - nx / 2) * pixel_size
    # an elliptical grain with soft edges, off centre, covering ``grain_fraction`` of the field
    a = np.sqrt(grain_fraction * ny * nx / np.pi) * rng.uniform(0.8, 1.25)
    b = grain_fraction * ny * nx / (np.pi * a)
    cy, cx = rng.uniform(-0.1, 0.1, 2) * np.array([ny, nx])
    tilt = rng.uniform(0, np.pi)
    u = ((yy - ny / 2 - cy) * np.cos(tilt) + (xx - nx / 2 - cx) * np.sin(tilt)) / a
    v = (-(yy - ny / 2 - cy) * np.sin(tilt) + (xx - nx / 2 - cx) * np.cos(tilt)) / b
    grain = ndimage.gaussian_filter((u**2 + v**2 <= 1.0).astype(np.float64), 2.0)
    support = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    support = 1.0 + 0.15 * support / support.std()
    fringes = []
    for shell in shells:
        phases = rng.uniform(0, 2 * np.pi, len(shell.g))
        f = sum(2.0 * np.cos(2 * np.pi * (gy * ry + gx * rx) + p) for (gy, gx), p in zip(shell.g, phases))
        fringes.append(shell.amplitude * f)
    # aperiodic fine structure inside the grain (molecules, defects) that fades like the lattice:
    # a component at spacing d keeps exp(-D / (2 Dc(d))) of its amplitude with Dc(d) ∝ d², i.e. a
    # Gaussian blur whose variance grows with dose, so the FRC loses the finest rings first
    texture_ft = np.fft.rfft2(rng.standard_normal(shape))
    k2 = (np.fft.fftfreq(ny, pixel_size)[:, None] ** 2 + np.fft.rfftfreq(nx, pixel_size)[None, :] ** 2)
    texture_ft *= (k2 > (1.0 / (4 * period)) ** 2)  # fine structure only: the outline is the grain's
    texture_ft *= texture_amplitude / np.sqrt(np.mean(np.abs(texture_ft) ** 2) / (ny * nx))
    rate_per_k2 = d2**2 / (2.0 * critical_dose)  # amplitude decay exponent per unit dose and k²
    scale = dose_per_frame * pixel_size**2
    frames = np.empty((n_frames, ny, nx), np.float32)
    for t in range(n_frames):
        dose = (t + 0.5) * dose_per_frame
        order = sum(f * np.exp(-dose / (2.0 * s.critical_dose)) for f, s in zip(fringes, shells))
        order = order + np.fft.irfft2(texture_ft * np.exp(-dose * rate_per_k2 * k2), s=shape)
        # the fringes fade with their own critical dose only, so each shell's spot intensity decays
        # exactly as exp(-D/Dc); the grain's mass (its outline) fades separately, much more slowly
        density = support + grain * (2.0 * np.exp(-dose / shape_critical_dose) + order)
        frames[t] = rng.poisson(scale * np.clip(density, 0.0, None))
    return DoseSeriesSample(frames, pixel_size, dose_per_frame, shells, shape_critical_dose, grain > 0.5)
