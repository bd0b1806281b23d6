"""A synthetic cryo-electron tomogram with known truth: particles and a membrane in a slab of ice.

The physics that matters for a browser and a picker is kept:

- a slab of vitreous ice between vacuum, thinner than the reconstructed box;
- a lipid bilayer (two leaflets ~40 Å apart) that undulates across the field, and a vesicle;
- dense spherical particles of a few sizes, placed without overlap inside the ice;
- the missing wedge of a ±60° single-axis tilt series (tilt axis Y): Fourier components with
  ``|kz| > tan(60°) |kx|`` are removed, which elongates every object along Z as in a real
  reconstruction;
- white noise added before the wedge (the noise is reconstructed through the same wedge), at a
  signal-to-noise ratio where particles are visible only with some low-pass or a slab average.

Contrast: density is bright (the display convention after inversion, as for picking/rendering).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft


@dataclass
class SyntheticTomogram:
    """The volume and its truth. Coordinates are voxel indices (z, y, x) of ``volume``."""

    volume: np.ndarray
    voxel_size: float  # Å
    particle_centers: np.ndarray  # (N, 3) voxel indices
    particle_radii: np.ndarray  # (N,) voxels
    ice_bounds: tuple[int, int]  # z range of the ice slab
    tilt_range: float  # degrees
    noise_sigma: float
    membrane: dict = field(default_factory=dict)

    def truth(self) -> dict:
        """JSON-friendly truth, for layer metadata."""
        return {
            "voxel_size_angstrom": self.voxel_size,
            "particle_centers_zyx_voxels": self.particle_centers.tolist(),
            "particle_radii_angstrom": (self.particle_radii * self.voxel_size).tolist(),
            "ice_z_range_voxels": list(self.ice_bounds),
            "tilt_range_degrees": self.tilt_range,
            "noise_sigma": self.noise_sigma,
            "membrane": self.membrane,
        }


def _sphere(volume: np.ndarray, center, radius: float, value: float) -> None:
    """Add a soft-edged sphere into ``volume`` in place (only the bounding box is touched)."""
    lo = [max(0, int(np.floor(c - radius - 2))) for c in center]
    hi = [min(s, int(np.ceil(c + radius + 3))) for c, s in zip(center, volume.shape)]
    zz, yy, xx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    r = np.sqrt((zz - center[0]) ** 2 + (yy - center[1]) ** 2 + (xx - center[2]) ** 2)
    volume[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] += value / (1 + np.exp((r - radius) / 0.7))


def missing_wedge_mask(shape: tuple[int, int, int], tilt_range: float) -> np.ndarray:
    """rfft-layout mask (kz, ky, kx//2+1) of the Fourier components a ±``tilt_range`` series samples.

    Tilt axis along Y: a projection at tilt θ samples the plane ``kz = -tan(θ) kx``, so the
    sampled region is ``|kz| <= tan(tilt_range) |kx|``.
    """
    kz = scipy.fft.fftfreq(shape[0])[:, None, None]
    kx = scipy.fft.rfftfreq(shape[2])[None, None, :]
    sampled = np.abs(kz) <= np.tan(np.deg2rad(tilt_range)) * np.abs(kx) + 1e-9
    sampled = np.broadcast_to(sampled, (shape[0], shape[1], kx.shape[-1]))
    return sampled


def make_tomogram(
    *,
    shape: tuple[int, int, int] = (80, 256, 256),
    voxel_size: float = 8.0,
    n_particles: int = 40,
    tilt_range: float = 60.0,
    noise_sigma: float = 0.9,
    seed: int = 0,
) -> SyntheticTomogram:
    """Generate a deterministic low-SNR tomogram (Z, Y, X), float32.

    Parameters
    ----------
    shape : (nz, ny, nx)
        Box size in voxels.
    voxel_size : float
        Å per voxel.
    n_particles : int
        Particles placed without overlap inside the ice.
    tilt_range : float
        Maximum tilt in degrees; the missing wedge is what lies beyond it.
    noise_sigma : float
        Standard deviation of the white noise added before the wedge, in units of the particle
        density contrast.
    seed : int
        Random seed; the same seed gives the same volume.
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    zc = nz / 2
    ice_half = int(round(0.3 * nz))
    ice_bounds = (int(zc - ice_half), int(zc + ice_half))

    z = np.arange(nz, dtype=np.float32)[:, None, None]
    y = np.arange(ny, dtype=np.float32)[None, :, None]
    x = np.arange(nx, dtype=np.float32)[None, None, :]

    # Ice slab: smooth-edged step in Z.
    ice = 1 / (1 + np.exp(-(z - ice_bounds[0]) / 1.0)) - 1 / (1 + np.exp(-(z - ice_bounds[1]) / 1.0))
    volume = np.broadcast_to(0.3 * ice, shape).astype(np.float32)

    # Undulating membrane: a bilayer whose mid-plane is y = y0 + A sin(2πx/L), spanning the ice.
    bilayer_sep = 40.0 / voxel_size / 2  # leaflets ±20 Å from the mid-plane
    y0, amplitude, wavelength = 0.78 * ny, 0.05 * ny, 0.8 * nx
    mid = y0 + amplitude * np.sin(2 * np.pi * x / wavelength)
    dist = y - mid
    leaflets = np.exp(-((dist - bilayer_sep) ** 2) / 2.0) + np.exp(-((dist + bilayer_sep) ** 2) / 2.0)
    volume += (0.9 * leaflets * ice).astype(np.float32)

    # A vesicle: spherical bilayer shell.
    ves_center = np.array([zc, 0.25 * ny, 0.3 * nx])
    ves_radius = min(ice_half - 4, 0.12 * nx)
    r = np.sqrt((z - ves_center[0]) ** 2 + (y - ves_center[1]) ** 2 + (x - ves_center[2]) ** 2)
    volume += (0.9 * (np.exp(-((r - ves_radius - bilayer_sep) ** 2) / 2.0)
                      + np.exp(-((r - ves_radius + bilayer_sep) ** 2) / 2.0))).astype(np.float32)

    # Particles: no overlap with each other, the membrane or the vesicle; inside the ice.
    centers, radii = [], []
    tries = 0
    while len(centers) < n_particles and tries < 20_000:
        tries += 1
        rad = float(rng.choice([4.0, 5.0, 6.0]))
        c = np.array([
            rng.uniform(ice_bounds[0] + rad + 2, ice_bounds[1] - rad - 2),
            rng.uniform(rad + 4, ny - rad - 4),
            rng.uniform(rad + 4, nx - rad - 4),
        ])
        membrane_y = y0 + amplitude * np.sin(2 * np.pi * c[2] / wavelength)
        if abs(c[1] - membrane_y) < rad + bilayer_sep + 4:
            continue
        if abs(np.linalg.norm(c - ves_center) - ves_radius) < rad + bilayer_sep + 4:
            continue
        if any(np.linalg.norm(c - o) < rad + ro + 3 for o, ro in zip(centers, radii)):
            continue
        centers.append(c)
        radii.append(rad)
    for c, rad in zip(centers, radii):
        _sphere(volume, c, rad, 1.0)

    noisy = volume + rng.normal(0, noise_sigma, size=shape).astype(np.float32)
    spectrum = scipy.fft.rfftn(noisy, workers=-1)
    spectrum *= missing_wedge_mask(shape, tilt_range)
    # Mild low-pass at 1/3 Nyquist-ish, as the reconstruction filter and the CTF envelope do.
    kz = scipy.fft.fftfreq(nz)[:, None, None]
    ky = scipy.fft.fftfreq(ny)[None, :, None]
    kx = scipy.fft.rfftfreq(nx)[None, None, :]
    spectrum *= np.exp(-(kz**2 + ky**2 + kx**2) / (2 * 0.18**2)).astype(np.float32)
    tomo = scipy.fft.irfftn(spectrum, s=shape, workers=-1).astype(np.float32)

    return SyntheticTomogram(
        volume=tomo,
        voxel_size=float(voxel_size),
        particle_centers=np.array(centers).reshape(-1, 3),
        particle_radii=np.array(radii),
        ice_bounds=ice_bounds,
        tilt_range=float(tilt_range),
        noise_sigma=float(noise_sigma),
        membrane={
            "mid_plane": "y = y0 + A sin(2 pi x / L) (voxels)",
            "y0": y0, "A": amplitude, "L": wavelength,
            "vesicle_center_zyx": ves_center.tolist(), "vesicle_radius_voxels": float(ves_radius),
            "bilayer_separation_angstrom": 40.0,
        },
    )
