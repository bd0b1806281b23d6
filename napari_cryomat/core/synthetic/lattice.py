"""Synthetic atomic-resolution images with known lattice, superlattice (PLD), strain and ice.

All generators are deterministic for a given ``seed`` and return ``(image, truth)`` where
``truth`` is a plain dict (lengths in Å, reciprocal vectors (gy, gx) in Å⁻¹, angles in degrees).

The image model is ``I(r) = f(r - u(r))``: a periodic lattice of Gaussian atoms ``f`` seen through
a displacement field ``u`` (Å). An atom at lattice site ``r0`` appears at ``r0 + u``; the geometric
phase of spot g is exactly ``-2π g·u``, which is what GPA measures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "decaying_lattice_stack",
    "hexagonal_basis",
    "ice_image",
    "inclusion_displacement",
    "inclusion_strain",
    "lattice_image",
    "reciprocal_basis",
    "superlattice_image",
]


def hexagonal_basis(a: float, rotation: float = 0.0) -> np.ndarray:
    """Real-space basis (rows a1, a2 as (y, x) in Å) of a hexagonal lattice with constant ``a``.

    ``rotation`` in degrees, counter-clockwise on screen.
    """
    t = np.radians(rotation)
    v1 = np.array([0.0, a])  # along +X
    v2 = np.array([-a * np.sqrt(3) / 2, a / 2])  # 60° CCW on screen (-Y is up)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])  # acts on (x, up) coords

    def r(v):
        x, up = v[1], -v[0]
        x2, up2 = rot @ np.array([x, up])
        return np.array([-up2, x2])

    return np.array([r(v1), r(v2)])


def reciprocal_basis(basis: np.ndarray) -> np.ndarray:
    """Reciprocal basis (rows g1, g2 in Å⁻¹) with ``g_i · a_j = δ_ij``."""
    return np.linalg.inv(np.asarray(basis, float).T)


def inclusion_displacement(yy, xx, *, centre, radius: float, strain: float):
    """Displacement (uy, ux) in Å of a circular inclusion with isotropic strain ``strain`` inside.

    Inside the disk ``u = ε (r - c)`` (exx = eyy = ε, exy = 0); outside
    ``u = ε R² (r - c) / |r - c|²`` (traceless strain decaying as 1/ρ²), continuous at ρ = R.
    """
    dy = yy - centre[0]
    dx = xx - centre[1]
    rho2 = dy**2 + dx**2
    inside = rho2 <= radius**2
    fac = np.where(inside, strain, strain * radius**2 / np.maximum(rho2, 1e-12))
    return fac * dy, fac * dx


def inclusion_strain(yy, xx, *, centre, radius: float, strain: float):
    """Analytic (exx, eyy, exy) of :func:`inclusion_displacement`."""
    dy = yy - centre[0]
    dx = xx - centre[1]
    rho2 = np.maximum(dy**2 + dx**2, 1e-12)
    inside = rho2 <= radius**2
    k = strain * radius**2
    exx = np.where(inside, strain, k * (dy**2 - dx**2) / rho2**2)
    eyy = np.where(inside, strain, k * (dx**2 - dy**2) / rho2**2)
    exy = np.where(inside, 0.0, -2 * k * dx * dy / rho2**2)
    return exx, eyy, exy


def lattice_image(
    shape=(512, 512),
    *,
    pixel_size: float = 0.5,
    basis=None,
    sigma: float = 0.6,
    displacement: Callable | None = None,
    intensity_modulation: Callable | None = None,
    noise: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Image of Gaussian atoms on a 2D lattice seen through a displacement field.

    Parameters
    ----------
    shape : (int, int)
        Image size in pixels (Y, X).
    pixel_size : float
        Å per pixel.
    basis : (2, 2) array
        Real-space basis, rows a1, a2 as (y, x) in Å; default hexagonal with a = 4 Å.
    sigma : float
        Atom Gaussian standard deviation in Å.
    displacement : callable, optional
        ``displacement(yy, xx) -> (uy, ux)`` in Å, with ``yy, xx`` pixel-centre coordinates in Å.
    intensity_modulation : callable, optional
        ``m(yy, xx)`` multiplying the atom contrast (e.g. a charge-order modulation).
    noise : float
        Standard deviation of additive Gaussian noise relative to the atom peak height.
    seed : int
        Seed of the noise generator.

    Returns
    -------
    (Y, X) float32
    """
    B = hexagonal_basis(4.0) if basis is None else np.asarray(basis, float)
    ny, nx = shape
    yy = (np.arange(ny, dtype=np.float64) * pixel_size)[:, None] * np.ones((1, nx))
    xx = (np.arange(nx, dtype=np.float64) * pixel_size)[None, :] * np.ones((ny, 1))
    if displacement is not None:
        uy, ux = displacement(yy, xx)
        py, px = yy - uy, xx - ux
    else:
        py, px = yy, xx
    # fractional coordinates: r = c1 a1 + c2 a2
    Binv = np.linalg.inv(B.T)
    c1 = Binv[0, 0] * py + Binv[0, 1] * px
    c2 = Binv[1, 0] * py + Binv[1, 1] * px
    c1 -= np.floor(c1)
    c2 -= np.floor(c2)
    amax = max(np.hypot(*B[0]), np.hypot(*B[1]))
    # the 4 cell corners suffice while atoms are narrow (next atoms are >= 0.87 a away)
    rng_ = range(-1, 3) if sigma > 0.2 * amax else range(0, 2)
    img = np.zeros(shape, np.float64)
    inv2s2 = 1.0 / (2 * sigma**2)
    for i in rng_:
        for j in rng_:
            dy = (c1 - i) * B[0, 0] + (c2 - j) * B[1, 0]
            dx = (c1 - i) * B[0, 1] + (c2 - j) * B[1, 1]
            img += np.exp(-(dy**2 + dx**2) * inv2s2)
    if intensity_modulation is not None:
        img *= intensity_modulation(yy, xx)
    rng = np.random.default_rng(seed)
    img += noise * rng.standard_normal(shape)
    return img.astype(np.float32)


def superlattice_image(
    shape=(1024, 1024),
    *,
    pixel_size: float = 0.4,
    a: float = 4.0,
    rotation: float = 10.0,
    q_fraction=(1 / 3, 0.0),
    pld_amplitude: float = 0.15,
    charge_modulation: float = 0.05,
    strain: float = 0.02,
    strain_centre=None,
    strain_radius: float | None = None,
    noise: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """Hexagonal lattice with a 1/3-order charge-order superlattice (a PLD) and a strained disk.

    The PLD is longitudinal: ``u = A ĝ1 sin(2π q·r)`` with ``q = q_fraction[0] g1 + q_fraction[1] g2``;
    a weak intensity modulation ``1 + c cos(2π q·r)`` adds the charge order's own spots. A disk
    (centre, radius in Å) is dilated isotropically by ``strain`` (see :func:`inclusion_displacement`).

    Returns
    -------
    image : (Y, X) float32
    truth : dict
        ``a``, ``d1``, ``d2`` (Å), ``g1``, ``g2``, ``q`` (Å⁻¹), ``q_fraction``, ``angle`` (°),
        ``pld_amplitude`` (Å), ``pld_direction`` (° CCW on screen, mod 180), ``strain``,
        ``strain_centre``, ``strain_radius`` (Å), ``pixel_size`` (Å).
    """
    B = hexagonal_basis(a, rotation)
    G = reciprocal_basis(B)
    g1, g2 = G[0], G[1]
    q = q_fraction[0] * g1 + q_fraction[1] * g2
    e = g1 / np.hypot(*g1)
    H, W = shape[0] * pixel_size, shape[1] * pixel_size
    c = (0.62 * H, 0.35 * W) if strain_centre is None else tuple(strain_centre)
    R = 0.15 * min(H, W) if strain_radius is None else float(strain_radius)

    def disp(yy, xx):
        uy, ux = inclusion_displacement(yy, xx, centre=c, radius=R, strain=strain)
        s = pld_amplitude * np.sin(2 * np.pi * (q[0] * yy + q[1] * xx))
        return uy + s * e[0], ux + s * e[1]

    def mod(yy, xx):
        return 1.0 + charge_modulation * np.cos(2 * np.pi * (q[0] * yy + q[1] * xx))

    img = lattice_image(
        shape, pixel_size=pixel_size, basis=B, sigma=0.55, displacement=disp, intensity_modulation=mod,
        noise=noise, seed=seed,
    )
    truth = {
        "a": a,
        "d1": 1 / np.hypot(*g1),
        "d2": 1 / np.hypot(*g2),
        "g1": g1.tolist(),
        "g2": g2.tolist(),
        "angle": float(np.degrees(np.arccos(np.dot(g1, g2) / np.hypot(*g1) / np.hypot(*g2)))),
        "q": q.tolist(),
        "q_fraction": list(q_fraction),
        "pld_amplitude": pld_amplitude,
        "pld_direction": float(np.degrees(np.arctan2(-e[0], e[1])) % 180),
        "charge_modulation": charge_modulation,
        "strain": strain,
        "strain_centre": list(c),
        "strain_radius": R,
        "pixel_size": pixel_size,
        "rotation": rotation,
    }
    return img, truth


def ice_image(
    shape=(1024, 1024),
    *,
    pixel_size: float = 1.0,
    a: float = 4.52,
    rotation: float = 17.0,
    ring_d: float = 3.7,
    crystal_centre=None,
    crystal_radius: float | None = None,
    noise: float = 0.5,
    seed: int = 1,
) -> tuple[np.ndarray, dict]:
    """Vitreous ice with an embedded hexagonal-ice (Ih, viewed along c) crystal.

    Vitreous ice is modelled as Gaussian noise band-passed to a ring at ``1/ring_d`` Å⁻¹
    (the 3.7 Å amorphous-ice ring); the crystal as a hexagonal lattice with constant ``a``
    (first-order spacing ``a √3 / 2`` = 3.91 Å for Ih {100}) inside a soft-edged disk.

    Returns
    -------
    image : (Y, X) float32
    truth : dict
        ``ring_g`` (Å⁻¹), ``ring_d``, ``crystal_d`` (Å), ``crystal_rotation`` (°),
        ``crystal_centre``, ``crystal_radius`` (Å), ``g1``, ``g2`` (Å⁻¹), ``pixel_size`` (Å).
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    H, W = ny * pixel_size, nx * pixel_size
    c = (0.5 * H, 0.68 * W) if crystal_centre is None else tuple(crystal_centre)
    R = 0.22 * min(H, W) if crystal_radius is None else float(crystal_radius)
    # vitreous: ring-filtered noise
    white = rng.standard_normal(shape).astype(np.float32)
    fy = np.fft.fftfreq(ny, d=pixel_size)[:, None]
    fx = np.fft.rfftfreq(nx, d=pixel_size)[None, :]
    gabs = np.sqrt(fy**2 + fx**2)
    g0 = 1.0 / ring_d
    filt = np.exp(-((gabs - g0) ** 2) / (2 * 0.025**2)) + 0.25 * np.exp(-(gabs**2) / (2 * 0.05**2))
    vit = np.fft.irfft2(np.fft.rfft2(white) * filt, s=shape)
    vit /= vit.std()
    B = hexagonal_basis(a, rotation)
    cryst = lattice_image(shape, pixel_size=pixel_size, basis=B, sigma=0.8, noise=0.0)
    cryst = (cryst - cryst.mean()) / cryst.std()
    yy = (np.arange(ny) * pixel_size)[:, None]
    xx = (np.arange(nx) * pixel_size)[None, :]
    rho = np.hypot(yy - c[0], xx - c[1])
    m = 1.0 / (1.0 + np.exp((rho - R) / (4 * pixel_size)))
    img = (1 - m) * vit + m * (0.35 * vit + 1.0 * cryst) + noise * rng.standard_normal(shape)
    G = reciprocal_basis(B)
    truth = {
        "ring_d": ring_d,
        "ring_g": g0,
        "crystal_d": float(1 / np.hypot(*G[0])),
        "crystal_a": a,
        "crystal_rotation": rotation,
        "crystal_centre": list(c),
        "crystal_radius": R,
        "g1": G[0].tolist(),
        "g2": G[1].tolist(),
        "pixel_size": pixel_size,
    }
    return img.astype(np.float32), truth


def decaying_lattice_stack(
    n_frames: int = 20,
    shape=(256, 256),
    *,
    pixel_size: float = 0.5,
    a: float = 4.0,
    dose_per_frame: float = 2.0,
    critical_dose: float = 15.0,
    noise: float = 0.3,
    seed: int = 2,
) -> tuple[np.ndarray, dict]:
    """A (T, Y, X) stack of a lattice whose Bragg intensity decays as ``exp(-D / Dc)`` with dose.

    The lattice contrast (amplitude) of frame t is ``exp(-D_t / (2 Dc))`` with the cumulative dose
    at mid-frame ``D_t = (t + 0.5) * dose_per_frame`` (e/Å²), so spot *intensities* fall to 1/e at
    ``critical_dose``. Each frame has independent noise.

    Returns
    -------
    stack : (T, Y, X) float32
    truth : dict
        ``critical_dose``, ``dose_per_frame`` (e/Å²), ``g1``, ``g2`` (Å⁻¹), ``pixel_size`` (Å).
    """
    B = hexagonal_basis(a, 5.0)
    base = lattice_image(shape, pixel_size=pixel_size, basis=B, sigma=0.6, noise=0.0)
    base = base - base.mean()
    rng = np.random.default_rng(seed)
    dose = (np.arange(n_frames) + 0.5) * dose_per_frame
    amp = np.exp(-dose / (2 * critical_dose))
    stack = amp[:, None, None] * base[None] + noise * rng.standard_normal((n_frames, *shape))
    G = reciprocal_basis(B)
    truth = {
        "critical_dose": critical_dose,
        "dose_per_frame": dose_per_frame,
        "g1": G[0].tolist(),
        "g2": G[1].tolist(),
        "pixel_size": pixel_size,
    }
    return stack.astype(np.float32), truth
