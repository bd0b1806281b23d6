"""A synthetic single-axis tilt series with known truth: a catalyst-layer phantom, misaligned.

The phantom (Z, Y, X) is a sum of spheres, so its projections are exact chord lengths (no
interpolation, no "inverse crime" with the reconstruction's projector):

- carbon support grains (density 1), each wrapped in an ionomer-like film (density 0.5) that is
  porous: small voids sit inside the film;
- platinum-like particles (density 3) on the film surface.

Tilts follow the geometry of :mod:`napari_cryomat.core.tilt`: in the aligned frame the projection
at tilt θ is ``P_θ(y, u) = ∫∫ V(z, y, x) δ(u - x cosθ - z sinθ) dx dz`` (coordinates from the
centres). Each raw tilt is that projection turned counter-clockwise on screen by the tilt-axis
angle about the image centre and shifted by a random (dy, dx): ``raw_i(r) = rotated_i(r - shift_i)``.
Counts are ``Poisson(dose * exp(-contrast * P))`` (bright field: dense is dark).

The shifts are drawn uniformly in ±``max_shift`` and then stripped of what no alignment can
recover (their mean along the axis and the part ``x0 cosθ + z0 sinθ`` across it, which only moves
the volume), so they are exactly what :func:`~napari_cryomat.core.tilt.align_tilt_series` should
return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_cryomat.core._tilt_align import remove_gauge, rotation


@dataclass
class SyntheticTiltSeries:
    """A tilt series and its truth (all lengths in pixels; ``pixel_size`` Å per pixel)."""

    tilts: np.ndarray  # (N, Y, X) float32 counts, misaligned, with shot noise
    angles: np.ndarray  # (N,) degrees
    shifts: np.ndarray  # (N, 2) (dy, dx) raw pixels
    tilt_axis_angle: float  # degrees CCW on screen from Y
    volume: np.ndarray  # (Z, Y, X) float32 density per pixel
    projections: np.ndarray  # (N, Y, X) float32 noise-free aligned line integrals
    spheres: np.ndarray  # (M, 5): z, y, x (from the volume centre), radius, density
    kinds: np.ndarray  # (M,) "carbon", "ionomer", "pore", "particle"
    dose: float  # counts per pixel per tilt in vacuum
    contrast: float  # counts fall as exp(-contrast * line integral)
    pixel_size: float

    def truth(self) -> dict:
        """JSON-friendly truth for layer metadata."""
        parts = self.kinds == "particle"
        centre = (np.array(self.volume.shape) - 1) / 2
        return {
            "angles_degrees": self.angles.tolist(),
            "shifts_dy_dx_pixels": self.shifts.tolist(),
            "tilt_axis_angle_degrees": self.tilt_axis_angle,
            "dose_counts_per_pixel": self.dose,
            "contrast_per_pixel": self.contrast,
            "pixel_size_angstrom": self.pixel_size,
            "volume_shape_zyx": list(self.volume.shape),
            "particle_centers_zyx_voxels": (self.spheres[parts, :3] + centre).tolist(),
            "particle_radii_angstrom": (self.spheres[parts, 3] * self.pixel_size).tolist(),
            "geometry": "P_theta(y, u) = integral of V(z, y, x) delta(u - x cos theta - z sin theta); "
                        "raw_i(r) = rotated_i(r - shift_i), rotated CCW on screen by the tilt-axis angle",
        }

    def line_integrals(self) -> np.ndarray:
        """The noisy tilts turned back into line integrals, ``-log(counts / dose) / contrast``
        (zero counts count as half a count)."""
        return (-np.log(np.maximum(self.tilts, 0.5) / self.dose) / self.contrast).astype(np.float32)


def _place(rng, n, radius, centres, radii, *, bound, half_z, gap):
    """Up to ``n`` non-overlapping sphere centres of ``radius`` inside a ball of radius ``bound``
    and the slab ``|z| <= half_z - radius``."""
    out = []
    for _ in range(200 * n):
        if len(out) == n:
            break
        c = rng.uniform(-bound, bound, 3)
        c[0] = rng.uniform(-(half_z - radius), half_z - radius) if half_z > radius else 0.0
        if np.linalg.norm(c) > bound - radius:
            continue
        if all(np.linalg.norm(c - p) >= r + radius + gap for p, r in zip(centres + out, radii + [radius] * len(out))):
            out.append(c)
    return out


def _phantom(rng, shape) -> tuple[np.ndarray, np.ndarray]:
    nz, ny, nx = shape
    size = min(ny, nx)
    bound = 0.42 * size
    r_c = 0.12 * size
    film = max(1.5, 0.03 * size)
    carbons = _place(rng, 5, r_c + film, [], [], bound=bound, half_z=nz / 2 - 1, gap=0.04 * size)
    spheres, kinds = [], []
    for c in carbons:
        spheres += [(*c, r_c, 1.0), (*c, r_c + film, 0.5), (*c, r_c, -0.5)]
        kinds += ["carbon", "ionomer", "ionomer"]
        r_pore = 0.42 * film
        pores = []
        for _ in range(60):  # voids strictly inside the film, not touching each other
            d = rng.normal(size=3)
            p = c + d / np.linalg.norm(d) * (r_c + film / 2)
            if all(np.linalg.norm(p - q) > 2 * r_pore + 0.5 for q in pores):
                pores.append(p)
            if len(pores) >= int(6 + 0.002 * size ** 2 * (r_c / size)):
                break
        spheres += [(*p, r_pore, -0.5) for p in pores]
        kinds += ["pore"] * len(pores)
        n_particles = int(rng.poisson(0.002 * 4 * np.pi * (r_c + film) ** 2))  # a Pt-on-carbon surface density
        for _ in range(max(3, n_particles)):
            d = rng.normal(size=3)
            r_p = rng.uniform(0.012, 0.028) * size
            p = c + d / np.linalg.norm(d) * (r_c + film + 0.4 * r_p)
            if abs(p[0]) < nz / 2 - r_p and np.linalg.norm(p) < bound:
                spheres.append((*p, r_p, 3.0))
                kinds.append("particle")
    return np.array(spheres, float), np.array(kinds)


def _voxelise(spheres: np.ndarray, shape) -> np.ndarray:
    vol = np.zeros(shape, np.float32)
    centre = (np.array(shape) - 1) / 2
    for z, y, x, r, dens in spheres:
        c = np.array([z, y, x]) + centre
        lo = np.maximum(0, np.floor(c - r - 1).astype(int))
        hi = np.minimum(shape, np.ceil(c + r + 2).astype(int))
        zz, yy, xx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        d = np.sqrt((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2)
        vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] += dens * np.clip(r + 0.5 - d, 0, 1)  # partial volume
    return vol


def project_spheres(spheres: np.ndarray, angles, image_shape, *, alpha: float = 0.0, shifts=None,
                    supersample: int = 2) -> np.ndarray:
    """Exact projections of a sum of spheres: ``raw_i(r) = rotated_i(r - shift_i)``, each pixel the
    mean of ``supersample``² chord sums inside it."""
    n = len(angles)
    h, w = image_shape
    shifts = np.zeros((n, 2)) if shifts is None else np.asarray(shifts, float)
    R = rotation(alpha)
    c0 = (np.array([h, w]) - 1) / 2
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    out = np.zeros((n, h, w), np.float32)
    for i, th in enumerate(np.deg2rad(np.asarray(angles, float))):
        acc = np.zeros((h * supersample, w * supersample), np.float32)
        for z, y, x, r, dens in spheres:
            u = x * np.cos(th) + z * np.sin(th)
            centre = c0 + shifts[i] + R @ np.array([y, u])  # raw pixel coordinates of the disc centre
            lo = np.maximum(0, np.floor((centre - r - 1) * supersample).astype(int))
            hi = np.minimum([h * supersample, w * supersample], np.ceil((centre + r + 1) * supersample).astype(int))
            if np.any(hi <= lo):
                continue
            ry = (np.arange(lo[0], hi[0]) // supersample + sub[np.arange(lo[0], hi[0]) % supersample])[:, None]
            rx = (np.arange(lo[1], hi[1]) // supersample + sub[np.arange(lo[1], hi[1]) % supersample])[None, :]
            rho2 = (ry - centre[0]) ** 2 + (rx - centre[1]) ** 2
            acc[lo[0]:hi[0], lo[1]:hi[1]] += dens * 2 * np.sqrt(np.maximum(r * r - rho2, 0))
        out[i] = acc.reshape(h, supersample, w, supersample).mean(axis=(1, 3))
    return out


def make_tilt_series(*, shape=(64, 64, 64), n_tilts: int = 41, tilt_range=(-60.0, 60.0),
                     tilt_axis_angle: float | None = None, max_shift: float = 5.0, dose: float = 1.0,
                     pixel_size: float = 5.0, seed: int = 0) -> SyntheticTiltSeries:
    """A misaligned, noisy tilt series of a catalyst-layer phantom, and its truth.

    Parameters
    ----------
    shape : (Z, Y, X)
        The phantom volume; tilts are (Y, X) images.
    n_tilts, tilt_range : int, (start, stop) degrees
        Evenly spaced tilt angles.
    tilt_axis_angle : float, optional
        Degrees CCW on screen from Y (default: random in ±(80..100)° away from zero, i.e. a random
        angle in (-90, 90)).
    max_shift : float
        Shifts are drawn uniformly in ±max_shift pixels per axis (then gauge-fixed, see module).
    dose : float
        Counts per pixel per tilt in vacuum (1 is a real low-dose tomography dose).
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = (int(s) for s in shape)
    angles = np.linspace(float(tilt_range[0]), float(tilt_range[1]), int(n_tilts))
    alpha = float(rng.uniform(-89.0, 89.0)) if tilt_axis_angle is None else float(tilt_axis_angle)
    spheres, kinds = _phantom(rng, (nz, ny, nx))
    R = rotation(alpha)
    t = rng.uniform(-max_shift, max_shift, (len(angles), 2))
    shifts = remove_gauge(t, angles) @ R.T  # drawn in the axis frame, then to raw (dy, dx)
    contrast = 2.5 / min(ny, nx)
    raw = project_spheres(spheres, angles, (ny, nx), alpha=alpha, shifts=shifts)
    counts = rng.poisson(dose * np.exp(-contrast * raw)).astype(np.float32)
    aligned = project_spheres(spheres, angles, (ny, nx))
    return SyntheticTiltSeries(tilts=counts, angles=angles, shifts=shifts, tilt_axis_angle=alpha,
                               volume=_voxelise(spheres, (nz, ny, nx)), projections=aligned, spheres=spheres,
                               kinds=kinds, dose=float(dose), contrast=contrast, pixel_size=float(pixel_size))


def seen_region(shape, angles, *, margin: float = 0.0) -> np.ndarray:
    """(Z, Y, X) mask of the voxels whose rays hit the detector at every tilt, ``margin`` px inside its edge:
    ``|x cos θ + z sin θ| <= (nx - 1) / 2 - margin`` from the centre. Where reconstruction errors are
    measured (outside it no tilt range constrains the volume)."""
    nz, _, nx = shape
    z = (np.arange(nz) - (nz - 1) / 2)[:, None]
    x = (np.arange(nx) - (nx - 1) / 2)[None, :]
    th = np.deg2rad(np.asarray(angles))[:, None, None]
    ok = np.all(np.abs(x * np.cos(th) + z * np.sin(th)) <= (nx - 1) / 2 - margin, axis=0)
    return np.broadcast_to(ok[:, None, :], shape)
