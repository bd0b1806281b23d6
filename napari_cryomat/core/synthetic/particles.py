"""Synthetic cryo-EM images of nanoparticles and of growing crystals, with their truth masks.

Everything is seeded, so a given call always returns the same arrays. Lengths are in Å.

- :func:`make_particles`: touching nanoparticles of varied shape (disks, ellipses, rounded squares,
  hexagons) on a noisy amorphous support, bright-field contrast (particles dark).
- :func:`make_growth`: a short time series (T, Y, X) of hexagonal ice nanocrystals that grow at
  different rates while the stage drifts a little; label ids are constant along time, so they are
  the true tracks.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["make_particles", "make_growth", "shape_field"]

_SHAPES = ("disk", "ellipse", "rounded_square", "hexagon")


def shape_field(yy: np.ndarray, xx: np.ndarray, *, kind: str, center, radius: float,
                aspect: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """Normalised "inside" field of one particle: < 1 inside, 1 on the outline.

    ``yy``/``xx`` and ``center``/``radius`` share one unit (pixels here). ``aspect`` (>= 1) is the
    ratio of major to minor semi-axis; ``angle`` (rad) turns the major axis from +X towards +Y.
    """
    dy = yy - center[0]
    dx = xx - center[1]
    c, s = np.cos(angle), np.sin(angle)
    u = dx * c + dy * s
    v = -dx * s + dy * c
    a = radius
    b = radius / aspect
    if kind == "disk":
        return np.hypot(u, v) / a
    if kind == "ellipse":
        return np.sqrt((u / a) ** 2 + (v / b) ** 2)
    if kind == "rounded_square":
        return ((np.abs(u) / a) ** 4 + (np.abs(v) / b) ** 4) ** 0.25
    if kind == "hexagon":
        apothem = a * np.sqrt(3) / 2
        f = np.zeros_like(u)
        for k in range(3):
            t = angle + k * np.pi / 3
            f = np.maximum(f, np.abs(dx * np.cos(t) + dy * np.sin(t)))
        return f / apothem
    raise ValueError(f"unknown shape {kind!r}; choose one of {_SHAPES}")


def _support(rng, shape, pixel_size):
    """Amorphous-carbon-like support: smooth low-frequency undulation, about ±4 %."""
    low = rng.standard_normal(shape).astype(np.float32)
    low = ndi.gaussian_filter(low, sigma=max(4.0, 200.0 / pixel_size))
    low /= np.abs(low).max() + 1e-12
    return 1.0 + 0.04 * low


def make_particles(*, shape=(512, 512), pixel_size: float = 2.0, n_particles: int = 36,
                   radius_range=(24.0, 44.0), contrast: float = 0.35, noise: float = 0.09,
                   blur: float = 2.0, seed: int = 0):
    """Touching nanoparticles on a noisy support.

    Parameters
    ----------
    shape : tuple of int
        Image shape (Y, X) in pixels.
    pixel_size : float
        Pixel size in Å.
    n_particles : int
        Number of particles wanted; about half of them are placed in touching pairs or triples.
    radius_range : (float, float)
        Range of particle (major) radii in Å.
    contrast : float
        Fractional darkening of a particle against the support (bright-field: particles dark).
    noise : float
        Standard deviation of the additive Gaussian noise, in the image's units (support ~ 1).
    blur : float
        Standard deviation in Å of the Gaussian point-spread function.
    seed : int
        Seed of the random generator.

    Returns
    -------
    image : ndarray of float32, (Y, X)
    truth : ndarray of int32, (Y, X)
        True labels: 0 support, 1..N particles.
    info : dict
        ``pixel_size`` (Å), ``shapes`` (kind per label), ``radius_A``, ``aspect``, ``angle_deg``
        (major axis from +X towards +Y), ``center_px``,
        ``area_A2`` (true area per label, from the truth mask), ``noise``, ``seed``.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    rmin, rmax = radius_range[0] / pixel_size, radius_range[1] / pixel_size
    margin = rmax + 4
    parts: list[dict] = []

    def fits(c, r):
        if not (margin <= c[0] <= ny - margin and margin <= c[1] <= nx - margin):
            return False
        for p in parts:
            d = np.hypot(c[0] - p["c"][0], c[1] - p["c"][1])
            if d < (r + p["r"]) * 0.92:  # allow only a slight overlap (touching)
                return False
        return True

    tries = 0
    while len(parts) < n_particles and tries < 20000:
        tries += 1
        kind = _SHAPES[len(parts) % len(_SHAPES)]
        aspect = 1.0 if kind in ("disk", "hexagon") else float(rng.uniform(1.3, 1.8))
        r = float(rng.uniform(rmin, rmax))
        reff = r / np.sqrt(aspect)
        if parts and rng.random() < 0.5:
            # touch a previous particle: centre at the sum of radii, slightly overlapping
            p = parts[int(rng.integers(len(parts)))]
            ang = rng.uniform(0, 2 * np.pi)
            d = (reff + p["reff"]) * 0.95
            c = (p["c"][0] + d * np.sin(ang), p["c"][1] + d * np.cos(ang))
            ok = fits(c, reff * 0.97) if c else False
            if ok:
                # touching partners must not overlap more than a few %: check all others
                ok = all(np.hypot(c[0] - q["c"][0], c[1] - q["c"][1]) >= 0.9 * (reff + q["reff"])
                         for q in parts)
        else:
            c = (float(rng.uniform(margin, ny - margin)), float(rng.uniform(margin, nx - margin)))
            ok = fits(c, reff) and all(
                np.hypot(c[0] - q["c"][0], c[1] - q["c"][1]) >= 1.15 * (r + q["r"]) for q in parts)
        if ok:
            parts.append(dict(c=c, r=r, reff=reff, kind=kind, aspect=aspect,
                              angle=float(rng.uniform(0, np.pi))))

    field = np.full(shape, np.inf, dtype=np.float32)
    truth = np.zeros(shape, dtype=np.int32)
    for i, p in enumerate(parts, start=1):
        r = p["r"] + 2
        y0, y1 = int(max(0, p["c"][0] - r)), int(min(ny, p["c"][0] + r + 1))
        x0, x1 = int(max(0, p["c"][1] - r)), int(min(nx, p["c"][1] + r + 1))
        f = shape_field(yy[y0:y1, x0:x1], xx[y0:y1, x0:x1], kind=p["kind"], center=p["c"],
                        radius=p["r"], aspect=p["aspect"], angle=p["angle"])
        sub_f = field[y0:y1, x0:x1]
        better = (f < 1.0) & (f < sub_f)
        sub_f[better] = f[better]
        truth[y0:y1, x0:x1][better] = i

    # particle density: flat with a slightly thicker centre, so the contrast is not a pure step
    inside = np.where(truth > 0, 1.0 - 0.15 * np.clip(field, 0, 1) ** 2, 0.0).astype(np.float32)
    support = _support(rng, shape, pixel_size)
    img = support * (1.0 - contrast * inside)
    img = ndi.gaussian_filter(img, sigma=blur / pixel_size)
    img = img + rng.normal(0.0, noise, size=shape).astype(np.float32)
    areas = np.bincount(truth.ravel(), minlength=len(parts) + 1)[1:] * pixel_size**2
    info = dict(
        pixel_size=float(pixel_size),
        shapes=[p["kind"] for p in parts],
        radius_A=[p["r"] * pixel_size for p in parts],
        aspect=[p["aspect"] for p in parts],
        angle_deg=[float(np.degrees(p["angle"])) for p in parts],
        center_px=[tuple(float(v) for v in p["c"]) for p in parts],
        area_A2=[float(a) for a in areas],
        noise=float(noise),
        seed=int(seed),
    )
    return img.astype(np.float32), truth, info


def make_growth(*, n_frames: int = 8, shape=(320, 320), pixel_size: float = 2.0,
                n_crystals: int = 6, r0_range=(16.0, 30.0), rate_range=(2.0, 5.0),
                drift: float = 3.0, contrast: float = 0.35, noise: float = 0.08, seed: int = 1):
    """Time series of hexagonal ice nanocrystals that grow, with a drifting stage.

    Parameters
    ----------
    n_frames : int
        Number of frames T.
    shape : tuple of int
        Frame shape (Y, X) in pixels.
    pixel_size : float
        Pixel size in Å.
    n_crystals : int
        Number of crystals; ids 1..n are the true track ids.
    r0_range : (float, float)
        Initial circumradius range, Å.
    rate_range : (float, float)
        Growth-rate range of the circumradius, Å per frame.
    drift : float
        Standard deviation in Å of the frame-to-frame stage drift (a random walk).
    contrast, noise : float
        Crystal darkening and Gaussian noise level (support ~ 1).
    seed : int
        Seed of the random generator.

    Returns
    -------
    movie : ndarray of float32, (T, Y, X)
    truth : ndarray of int32, (T, Y, X)
        True labels per frame; a crystal keeps its id in every frame.
    info : dict
        ``pixel_size`` (Å), ``frame_interval`` (1, in frames), ``rates_A_per_frame``,
        ``r0_A``, ``area_A2`` (T x n array of true areas as nested lists), ``drift_px`` (T x 2).
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    rmax_px = (r0_range[1] + rate_range[1] * n_frames) / pixel_size
    centres: list[tuple[float, float]] = []
    tries = 0
    while len(centres) < n_crystals and tries < 10000:
        tries += 1
        c = (float(rng.uniform(rmax_px + 6, ny - rmax_px - 6)),
             float(rng.uniform(rmax_px + 6, nx - rmax_px - 6)))
        if all(np.hypot(c[0] - d[0], c[1] - d[1]) > 2 * rmax_px + 6 for d in centres):
            centres.append(c)
    n = len(centres)
    r0 = rng.uniform(*r0_range, size=n) / pixel_size
    rates = rng.uniform(*rate_range, size=n) / pixel_size
    angles = rng.uniform(0, np.pi / 3, size=n)
    steps = rng.normal(0.0, drift / pixel_size, size=(n_frames, 2))
    steps[0] = 0
    shift = np.cumsum(steps, axis=0)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    movie = np.empty((n_frames, ny, nx), dtype=np.float32)
    truth = np.zeros((n_frames, ny, nx), dtype=np.int32)
    support = _support(rng, shape, pixel_size)
    for t in range(n_frames):
        for i in range(n):
            c = (centres[i][0] + shift[t, 0], centres[i][1] + shift[t, 1])
            f = shape_field(yy, xx, kind="hexagon", center=c, radius=r0[i] + rates[i] * t,
                            angle=angles[i])
            truth[t][f < 1.0] = i + 1
        img = support * (1.0 - contrast * (truth[t] > 0))
        img = ndi.gaussian_filter(img, sigma=1.0)
        movie[t] = img + rng.normal(0.0, noise, size=shape).astype(np.float32)
    areas = np.stack([np.bincount(truth[t].ravel(), minlength=n + 1)[1:] for t in range(n_frames)])
    info = dict(
        pixel_size=float(pixel_size),
        frame_interval=1.0,
        rates_A_per_frame=[float(r * pixel_size) for r in rates],
        r0_A=[float(r * pixel_size) for r in r0],
        area_A2=(areas * pixel_size**2).tolist(),
        drift_px=shift.tolist(),
        seed=int(seed),
    )
    return movie, truth, info
