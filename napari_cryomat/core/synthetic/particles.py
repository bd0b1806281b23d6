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

from napari_cryomat.core._validate import integer

__all__ = ["make_particles", "make_growth", "make_particle_field", "make_particles_varied", "shape_field"]

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


_FIELD_SHAPES = ("round", "ellipse", "touching", "blob")
_NOISE_SHAPES = ("gaussian", "lorentzian")


def _coloured(noise: np.ndarray, falloff: float, shape: str) -> np.ndarray:
    """``noise`` (white) filtered to a power spectrum that falls by ``falloff`` from zero frequency to 0.5 cycles/px
    (radial), its power at zero frequency kept."""
    fy = np.fft.fftfreq(noise.shape[0])[:, None]
    fx = np.fft.rfftfreq(noise.shape[1])[None, :]
    q = (fy**2 + fx**2) / 0.25  # (f / 0.5)²
    power = falloff ** -q if shape == "gaussian" else 1.0 / (1.0 + (falloff - 1.0) * q)
    return np.fft.irfft2(np.fft.rfft2(noise) * np.sqrt(power), s=noise.shape).astype(np.float32)


def _star_field(u, v, radius, harmonics):
    """Radius-normalised field of a star-shaped "blob": r / R(theta) with R a low-order Fourier series."""
    theta = np.arctan2(v, u)
    rr = np.ones_like(theta)
    for k, (amp, phase) in enumerate(harmonics, start=2):
        rr = rr + amp * np.cos(k * theta + phase)
    return np.hypot(u, v) / (radius * rr)


def make_particle_field(*, diameter: float = 20.0, spread: float = 0.2, shape_kind: str = "round",
                        polarity: str = "dark", coverage: float = 0.25, size=None, contrast: float = 0.3,
                        dose: float = 200.0, gradient: float = 0.0, undulation: float = 0.0,
                        blur: float = 1.0, aspect_range=(1.3, 2.2), max_tries: int | None = None, seed: int = 0,
                        noise_falloff: float = 1.0, noise_shape: str = "gaussian", signal_mtf: bool = False):
    """Particles of one size class on an uneven support, recorded with counting noise (pixel units).

    Independent of :func:`make_particles` (its shape model, noise model and background differ), so that
    automatic settings tuned on one can be checked on the other.

    Parameters
    ----------
    diameter : float
        Mean equivalent diameter of the particles, px.
    spread : float
        Relative standard deviation of the diameters.
    shape_kind : {"round", "ellipse", "touching", "blob"}
        Disks; ellipses (aspect 1.3-2.2); pairs and chains of touching disks and ellipses; star-shaped
        blobs (random 2nd-4th harmonics of the outline).
    polarity : {"dark", "bright"}
        Dark particles (bright-field) or bright ones (HAADF-STEM, dark-field).
    coverage : float
        Fraction of the image the particles should cover (touching shapes pack closer).
    size : (int, int), optional
        Image shape; default 16 diameters a side, between 256 and 1024 px.
    contrast : float
        Relative change of the signal inside a particle (0.3: 30 % darker or brighter).
    dose : float
        Mean counts per pixel on the support (Poisson noise).
    gradient : float
        Relative amplitude of a linear ramp of the support across the image.
    undulation : float
        Relative amplitude of a smooth undulation of the support on the scale of 2-4 particles.
    blur : float
        Point-spread function, Gaussian sigma in px.
    aspect_range : (float, float)
        Range of the aspect ratios of "ellipse" particles ((3, 6) for rods).
    max_tries : int, optional
        Placement tries before the field is given up as full (each keeps every particle at least 10 % + 2 px
        of their outer radii apart, so ellipses, blobs and dense fields jam below the coverage asked). Default:
        4000, or 25 per particle the coverage asks for where that is more (before session 10 always 4000: a
        2048² field of Ø12 stopped at 8 % of the 25 % asked); 4000 gives the draws of earlier versions.
    seed : int
    noise_falloff : float
        Coloured noise, as a real detector's (its MTF, a motion-corrected sum's interpolation): the counting noise's
        power at zero spatial frequency over its power at 0.5 cycles/px (radial). 1 (the default): white Poisson
        noise, the image as before. Above 1 the noise (counts less their expectation) is filtered to that spectrum,
        its power at zero frequency kept (the particles' scale keeps its signal-to-noise ratio; the pixel-to-pixel
        noise falls); the image is then no longer whole counts.
    noise_shape : {"gaussian", "lorentzian"}
        The shape of the noise's fall with the spatial frequency f (cycles/px): power ``falloff ** -(f / 0.5)²``
        (a Gaussian blur of the noise) or ``1 / (1 + (falloff - 1) (f / 0.5)²)`` (most of the fall at low f).
    signal_mtf : bool
        With ``noise_falloff`` above 1: True filters the whole recorded image (signal and noise alike) to that
        spectrum, as a detector's MTF or an interpolation does (a particle's edge is blurred by the same transfer
        function that colours the noise, so whitening the image restores it); False (the default, and every field
        drawn before session 25) colours the noise alone and leaves the signal sharper than any real detector would.

    Returns
    -------
    image : float32 (Y, X), counts
    truth : int32 (Y, X), 0 support and 1..N particles
    info : dict of the parameters, ``n_particles`` and ``diameters_px`` (true equivalent diameters)
    """
    if shape_kind not in _FIELD_SHAPES:
        raise ValueError(f"shape_kind must be one of {_FIELD_SHAPES}; got {shape_kind!r}.")
    if polarity not in ("dark", "bright"):
        raise ValueError(f"polarity must be 'dark' or 'bright'; got {polarity!r}.")
    if noise_shape not in _NOISE_SHAPES:
        raise ValueError(f"noise_shape must be one of {_NOISE_SHAPES}; got {noise_shape!r}.")
    if not noise_falloff >= 1.0:
        raise ValueError(f"noise_falloff must be at least 1 (1: white noise); got {noise_falloff!r}.")
    max_tries = integer(max_tries, "max_tries", low=1, allow_none=True)
    rng = np.random.default_rng(seed)
    if size is None:
        side = int(np.clip(16 * diameter, 256, 1024))
        size = (side, side)
    ny, nx = size
    truth = np.zeros(size, np.int32)
    field = np.full(size, np.inf, np.float32)
    target = coverage * ny * nx
    covered, tries, label = 0.0, 0, 0
    if max_tries is None:  # a 2048² field of Ø12 needs ~9,000 particles; fields full within 4000 tries are as before
        max_tries = max(4000, int(25 * target / (np.pi * (0.5 * diameter) ** 2)))
    # placed particles (centre y, x, outer radius) on a grid of cells, so that a try looks at its neighbours only
    cell = max(4.0, 2.0 * diameter)
    grid: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
    largest = [0.0]

    def free(cy, cx, r):
        reach = (r + largest[0]) * 1.1 + 2
        y0, y1 = int((cy - reach) // cell), int((cy + reach) // cell)
        x0, x1 = int((cx - reach) // cell), int((cx + reach) // cell)
        for gy in range(y0, y1 + 1):
            for gx in range(x0, x1 + 1):
                for (py, px, pr) in grid.get((gy, gx), ()):
                    if np.hypot(cy - py, cx - px) < (r + pr) * 1.1 + 2:
                        return False
        return True

    while covered < target and tries < max_tries:
        tries += 1
        n_members = int(rng.integers(2, 4)) if shape_kind == "touching" else 1
        members = []
        r = 0.5 * diameter * max(0.3, 1 + spread * rng.standard_normal())
        cy, cx = rng.uniform(r, ny - r), rng.uniform(r, nx - r)
        for _m in range(n_members):
            if members:
                py, px, pr = members[-1][:3]
                r = 0.5 * diameter * max(0.3, 1 + spread * rng.standard_normal())
                ang = rng.uniform(0, 2 * np.pi)
                d = (r + pr) * rng.uniform(0.88, 0.98)
                cy, cx = py + d * np.sin(ang), px + d * np.cos(ang)
            kind = shape_kind
            if shape_kind == "touching":
                kind = "ellipse" if rng.random() < 0.4 else "round"
            aspect = float(rng.uniform(*aspect_range)) if kind == "ellipse" else 1.0
            if kind == "ellipse" and shape_kind == "touching":
                aspect = float(rng.uniform(1.2, 1.5))
            harmonics = [(float(rng.uniform(0, 0.12)), float(rng.uniform(0, 2 * np.pi))) for _ in range(3)]
            outer = r * np.sqrt(aspect) * (1.4 if kind == "blob" else 1.0)
            members.append((cy, cx, outer, r, kind, aspect, float(rng.uniform(0, np.pi)), harmonics))
        ok = all(m[2] + 2 < m[0] < ny - m[2] - 2 and m[2] + 2 < m[1] < nx - m[2] - 2 for m in members)
        ok = ok and all(free(m[0], m[1], m[2]) for m in members)
        if not ok:
            continue
        for cy, cx, outer, r, kind, aspect, angle, harmonics in members:
            label += 1
            y0, y1 = int(max(0, cy - outer - 2)), int(min(ny, cy + outer + 3))
            x0, x1 = int(max(0, cx - outer - 2)), int(min(nx, cx + outer + 3))
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            c, s = np.cos(angle), np.sin(angle)
            u = (xx - cx) * c + (yy - cy) * s
            v = -(xx - cx) * s + (yy - cy) * c
            if kind == "blob":
                f = _star_field(u, v, r, harmonics)
            else:  # an ellipse of the same area as the disk of radius r
                a, b = r * np.sqrt(aspect), r / np.sqrt(aspect)
                f = np.sqrt((u / a) ** 2 + (v / b) ** 2)
            sub = field[y0:y1, x0:x1]
            better = (f < 1.0) & (f < sub)
            sub[better] = f[better]
            truth[y0:y1, x0:x1][better] = label
            covered += float(np.count_nonzero(better))
        for m in members:
            grid.setdefault((int(m[0] // cell), int(m[1] // cell)), []).append((m[0], m[1], m[2]))
            largest[0] = max(largest[0], m[2])

    # support: a ramp in a random direction and a smooth undulation a few particles wide
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = ((xx - nx / 2) * np.cos(direction) + (yy - ny / 2) * np.sin(direction)) / max(ny, nx)
    wave = ndi.gaussian_filter(rng.standard_normal(size).astype(np.float32), sigma=max(2.0, 1.2 * diameter))
    wave /= np.abs(wave).max() + 1e-12
    support = 1.0 + gradient * 2 * ramp + undulation * wave
    sign = -1.0 if polarity == "dark" else 1.0
    inside = (truth > 0).astype(np.float32)
    signal = support * (1.0 + sign * contrast * inside)
    signal = ndi.gaussian_filter(signal, sigma=blur) if blur > 0 else signal
    image = rng.poisson(np.clip(signal, 0, None) * dose).astype(np.float32)
    if noise_falloff > 1.0 and signal_mtf:
        pad = 16  # reflected, so that the filter does not carry one border's support onto the opposite one
        padded = np.pad(image, pad, mode="reflect")
        image = _coloured(padded, noise_falloff, noise_shape)[pad:-pad, pad:-pad]
    elif noise_falloff > 1.0:
        expected = (np.clip(signal, 0, None) * dose).astype(np.float32)
        image = expected + _coloured(image - expected, noise_falloff, noise_shape)
    ids = np.arange(1, label + 1)
    areas = ndi.sum_labels(np.ones_like(truth), truth, ids) if label else np.zeros(0)
    info = dict(diameter=float(diameter), spread=float(spread), shape_kind=shape_kind, polarity=polarity,
                coverage=float(covered / (ny * nx)), contrast=float(contrast), dose=float(dose),
                gradient=float(gradient), undulation=float(undulation), blur=float(blur), seed=int(seed),
                noise_falloff=float(noise_falloff), noise_shape=noise_shape, signal_mtf=bool(signal_mtf),
                n_particles=int(label), diameters_px=[float(2 * np.sqrt(a / np.pi)) for a in areas])
    return image, truth, info


def make_particles_varied(*, diameter: float = 20.0, polarity: str = "dark", dose: float = 200.0,
                          gradient: float = 0.0, contrast: float = 0.35, density: float = 1.0, seed: int = 0):
    """:func:`make_particles` (disks, ellipses, rounded squares, hexagons, touching pairs and triples)
    at another particle size and polarity, on a tilted support, with counting noise (pixel units).

    A second, independent family of test images for automatic settings tuned on
    :func:`make_particle_field`: another shape model, placement and background.

    Parameters
    ----------
    diameter : float
        Mean particle diameter, px (radii spread by +-30 %).
    polarity : {"dark", "bright"}
    dose : float
        Mean counts per pixel of the support (Poisson noise, replacing the Gaussian noise).
    gradient : float
        Relative amplitude of a linear ramp of the support across the image.
    contrast : float
        Relative signal change inside a particle.
    density : float
        Number of particles relative to about one every 5 diameters² (about 15 % of the image).
    seed : int

    Returns
    -------
    image, truth, info as :func:`make_particles` (pixel size 1 Å), plus ``dose``, ``polarity``, ``gradient``.
    """
    if polarity not in ("dark", "bright"):
        raise ValueError(f"polarity must be 'dark' or 'bright'; got {polarity!r}.")
    side = int(np.clip(14 * diameter, 256, 1024))
    n = max(4, int(density * side * side / (5 * diameter**2)))
    r = diameter / 2
    clean, truth, info = make_particles(shape=(side, side), pixel_size=1.0, n_particles=n,
                                        radius_range=(0.7 * r, 1.3 * r), contrast=contrast, noise=0.0,
                                        blur=1.0, seed=seed)
    rng = np.random.default_rng(seed + 7919)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = 1.0 + gradient * 2 * ((xx - side / 2) * np.cos(direction) + (yy - side / 2) * np.sin(direction)) / side
    signal = clean if polarity == "dark" else 2.0 - clean  # bright: the same support, particles brighter
    image = rng.poisson(np.clip(signal * ramp, 0, None) * dose).astype(np.float32)
    info = dict(info, dose=float(dose), polarity=polarity, gradient=float(gradient), diameter=float(diameter))
    return image, truth, info
