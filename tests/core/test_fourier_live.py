"""The two views of a spectrum: the single periodogram (crystals: spots) and the tile-averaged
(Welch) spectrum (micrographs: Thon rings), and which one the live display's "auto" picks.

Physics: CTF-modulated noise with known defocus, pixel size and size (drawn at random), whose Thon
ring zeros are known; lattices whose spots are known; and real micrographs from the corpus."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import argrelextrema

from napari_cryomat.core import fourier as F
from napari_cryomat.core.synthetic.lattice import hexagonal_basis, ice_image, lattice_image, superlattice_image

sys.path.insert(0, str(Path(__file__).parents[1] / "io"))
from corpus import corpus_file  # noqa: E402

CS = 2.7e7  # spherical aberration, Å (2.7 mm)


def wavelength(kv: float) -> float:
    """Relativistic electron wavelength in Å."""
    v = kv * 1e3
    return 12.2643 / np.sqrt(v * (1 + 0.978476e-6 * v))


def ctf_zeros(defocus: float, kv: float = 300.0, cs: float = CS, g_max: float = 1.0) -> np.ndarray:
    """|g| (Å⁻¹) of the zeros of sin χ, χ = π λ Δf g² − π/2 Cs λ³ g⁴ (Δf > 0: underfocus), up to g_max."""
    lam = wavelength(kv)
    zeros = []
    for n in range(1, 1000):  # χ = nπ: a quadratic in u = g²
        a, b = 0.5 * cs * lam**3, -lam * defocus
        disc = b * b - 4 * a * n
        if disc < 0:
            break
        g = np.sqrt((-b - np.sqrt(disc)) / (2 * a))
        if g > g_max:
            break
        zeros.append(g)
    return np.array(zeros)


def ctf_image(shape, pixel_size: float, defocus: float, seed: int, *, kv: float = 300.0, bfactor: float = 40.0,
              shot_noise: float = 0.5, astigmatism: float = 0.0, astigmatism_angle: float = 0.0) -> np.ndarray:
    """A phase-contrast micrograph of an amorphous specimen: white object noise seen through
    sin χ(g) and a B-factor envelope, plus white shot noise (relative std ``shot_noise``), on a mean.
    ``astigmatism`` (Å): the defocus is ``defocus ± astigmatism / 2`` along ``astigmatism_angle`` (rad)
    and across it."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    obj = np.fft.rfft2(rng.standard_normal(shape))
    gy = np.fft.fftfreq(ny, d=pixel_size)[:, None]
    gx = np.fft.rfftfreq(nx, d=pixel_size)[None, :]
    g2 = gy**2 + gx**2
    lam = wavelength(kv)
    local_defocus = defocus + 0.5 * astigmatism * np.cos(2 * (np.arctan2(gy, gx) - astigmatism_angle))
    chi = np.pi * lam * local_defocus * g2 - 0.5 * np.pi * CS * lam**3 * g2**2
    img = np.fft.irfft2(obj * np.sin(chi) * np.exp(-bfactor * g2 / 4), s=shape)
    img /= img.std()
    return (100.0 + img + shot_noise * rng.standard_normal(shape)).astype(np.float32)


def _radial(ps: F.PowerSpectrum) -> tuple[np.ndarray, np.ndarray]:
    """Rotational average of a square PowerSpectrum's data in 1-px bins: (|g| Å⁻¹, mean)."""
    n = ps.data.shape[0]
    yy, xx = np.indices(ps.data.shape)
    r = np.rint(np.hypot(yy - ps.centre[0], xx - ps.centre[1])).astype(int)
    prof = np.bincount(r.ravel(), ps.data.ravel()) / np.bincount(r.ravel())
    return np.arange(n // 2) * ps.reciprocal_pixel[0], prof[: n // 2]


def _resolvable(zeros: np.ndarray, step: float, g_max: float) -> list[int]:
    """Indices of the zeros at least 6 bins from their neighbours and 4 from g = 0, below g_max: rings
    closer than that blur into each other in 1-px bins."""
    keep = []
    for k, z in enumerate(zeros):
        gaps = np.diff(zeros)[max(k - 1, 0): k + 1]
        if z < g_max and z > 4 * step and (gaps.size == 0 or gaps.min() >= 6 * step):
            keep.append(k)
    return keep


def _cases(seed: int, n: int):
    """``n`` random (size, pixel size Å, defocus Å) draws that leave at least two rings resolvable."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        size = int(rng.choice([768, 1024, 1536, 2048]))
        p = float(rng.uniform(0.6, 2.0))
        dz = float(rng.uniform(5e3, 3e4))
        step = 1 / (F.default_tile((size, size)) * p)
        if len(_resolvable(ctf_zeros(dz), step, 0.4 / p)) >= 2:
            out.append((size, p, dz))
    return out


@pytest.mark.parametrize("size, pixel_size, defocus", _cases(11, 6))
def test_averaged_spectrum_has_its_minima_at_the_ctf_zeros(size, pixel_size, defocus):
    img = ctf_image((size, size), pixel_size, defocus, seed=int(defocus))
    ps = F.averaged_power_spectrum(img, pixel_size, log=False)
    tile = ps.data.shape[0]
    assert tile == F.default_tile(img.shape) and ps.reciprocal_pixel[0] == pytest.approx(1 / (tile * pixel_size))
    g, prof = _radial(ps)
    step = g[1]
    zeros = ctf_zeros(defocus)
    checked = 0
    for k in _resolvable(zeros, step, 0.8 * g[-1]):
        z = zeros[k]
        gap = np.diff(zeros)[max(k - 1, 0): k + 1].min() if zeros.size > 1 else z
        window = np.abs(g - z) < gap / 2
        found = g[window][np.argmin(prof[window])]
        assert abs(found - z) <= 1.0 * step + 1e-12, f"zero {k + 1} at {z:.4f} 1/Å, minimum at {found:.4f}"
        checked += 1
    assert checked >= 2  # the draw always leaves a few resolvable rings: the test checks something


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_averaging_divides_the_speckle_variance(seed):
    rng = np.random.default_rng(seed)
    size, p, dz = int(rng.choice([512, 1024])), float(rng.uniform(0.7, 1.5)), float(rng.uniform(1e4, 3e4))
    img = ctf_image((size, size), p, dz, seed=seed)

    def speckle(ps):
        """Variance of power over its rotational average, in the annulus 0.2-0.8 of Nyquist."""
        n = ps.data.shape[0]
        yy, xx = np.indices(ps.data.shape)
        r = np.rint(np.hypot(yy - n // 2, xx - n // 2)).astype(int)
        mean = np.bincount(r.ravel(), ps.data.ravel()) / np.bincount(r.ravel())
        ring = (r > 0.2 * n / 2) & (r < 0.8 * n / 2)
        return float(np.var(ps.data[ring] / mean[r[ring]]))

    single = speckle(F.power_spectrum(img, p, log=False))
    averaged = F.averaged_power_spectrum(img, p, log=False)
    live = F.LiveSpectrum(mode="averaged")
    live(img)
    n_tiles = live.last.n_tiles
    assert n_tiles == 49 and live.last.shape == averaged.data.shape
    ratio = single / speckle(averaged)
    assert 0.9 < single < 1.2  # one periodogram: exponential power, variance = mean²
    # 49 Hann tiles at 50 % overlap are about 30 independent looks (neighbours share a quarter of their weight)
    assert ratio > 0.5 * n_tiles, f"variance ratio single/averaged = {ratio:.1f} for {n_tiles} tiles"


def test_averaged_spectrum_matches_a_direct_welch_and_checks_its_input():
    rng = np.random.default_rng(5)
    img = (rng.standard_normal((200, 170)) + 50).astype(np.float32)
    ps = F.averaged_power_spectrum(img, 0.5, tile=64, overlap=0.5, log=False)
    t, step = 64, 32
    w1 = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(t) / t)
    w = np.outer(w1, w1)
    acc, count = 0.0, 0
    ky, kx = (200 - t) // step + 1, (170 - t) // step + 1
    oy, ox = (200 - t - (ky - 1) * step) // 2, (170 - t - (kx - 1) * step) // 2
    for i in range(ky):
        for j in range(kx):
            tile = img[oy + i * step: oy + i * step + t, ox + j * step: ox + j * step + t].astype(float)
            tile = tile - (tile * w).sum() / w.sum()  # the tile's (windowed) mean removed
            acc = acc + np.abs(np.fft.fft2(tile * w)) ** 2
            count += 1
    ref = np.fft.fftshift(acc / count)
    np.testing.assert_allclose(ps.data, ref, rtol=2e-3, atol=1e-4 * ref.mean())
    assert ps.data[32, 32] < 1e-6 * ref.mean()  # g = 0: each tile's mean is gone
    for bad, what in (({"tile": 8}, "tile"), ({"tile": 500}, "tile"), ({"overlap": 0.9}, "overlap")):
        with pytest.raises(ValueError, match=what):
            F.averaged_power_spectrum(img, 0.5, **bad)
    nan = img.copy()
    nan[100, 100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        F.averaged_power_spectrum(nan, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        F.LiveSpectrum(mode="averaged")(nan)


@pytest.mark.parametrize("seed", [31, 32, 33, 34])
def test_single_mode_keeps_lattice_spots_at_their_g_and_auto_picks_it(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([256, 384, 512]))
    p = float(rng.uniform(0.3, 1.0))
    a = float(rng.uniform(8, 20)) * p  # 8-20 px period
    basis = hexagonal_basis(a, float(rng.uniform(0, 60)))
    img = lattice_image((n, n), pixel_size=p, basis=basis, sigma=a / 6, noise=float(rng.uniform(0.2, 1.0)), seed=seed)
    live = F.LiveSpectrum(mode="auto")
    full, (lo, hi) = live(img, full=True)
    assert live.last.mode == "single" and live.last.shape == (n, n) and live.last.sharp_peaks >= 2
    spec = F.LiveSpectrum.to_ln(full)
    c = n // 2
    spec[c - 3: c + 4, c - 3: c + 4] = -np.inf
    r, col = np.unravel_index(np.argmax(spec), spec.shape)
    g = np.hypot(r - c, col - c) / (n * p)
    g_true = np.linalg.inv(basis.T)  # rows: reciprocal basis g1, g2
    assert abs(g - np.hypot(*g_true[0])) < 1.5 / (n * p)  # within the FFT pixel of the true |g1| = |g2|
    assert full[r, col] >= hi  # the spots saturate the display: the speckle, not a spot, sets the range


def test_auto_shows_superlattice_and_ice_crystal_single_and_vitreous_ice_averaged():
    img, _ = superlattice_image((512, 512), seed=3)
    live = F.LiveSpectrum(mode="auto")
    live(img)
    assert live.last.mode == "single"
    ice, truth = ice_image(seed=4)
    cy, cx = (np.asarray(truth["crystal_centre"]) / truth["pixel_size"]).astype(int)
    h = 128
    live(ice[cy - h: cy + h, cx - h: cx + h])
    assert live.last.mode == "single"  # on the crystal: its spots
    live(ice[:256, :256])
    assert live.last.mode == "averaged"  # vitreous ice: the ring
    live(img[:100, :100])
    assert live.last.mode == "single"  # too small to average (under 128 px)


def _square_basis(a: float, rotation: float) -> np.ndarray:
    t = np.radians(rotation)
    return np.array([[-a * np.sin(t), a * np.cos(t)], [-a * np.cos(t), -a * np.sin(t)]])


@pytest.fixture
def single_calls(monkeypatch):
    """How many times "auto" computed the single periodogram (the cost the averaged-first search saves)."""
    calls = []
    original = F.LiveSpectrum._single

    def counted(self, roi):
        calls.append(roi.shape)
        return original(self, roi)

    monkeypatch.setattr(F.LiveSpectrum, "_single", counted)
    return calls


@pytest.mark.parametrize("seed", [51, 52, 53, 54, 55, 56])
def test_auto_on_micrograph_sized_rois_finds_lattices_in_the_averaged_spectrum(seed, single_calls):
    """ROIs of 768 px and more: the averaged spectrum comes first and the spots are looked for in it; a
    lattice (any rotation, 8-24 px period, square or hexagonal) still gets the single periodogram, with
    its first-order spot at its |g|."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([768, 1024, 1536]))
    p = float(rng.uniform(0.3, 1.0))
    period = float(rng.uniform(8, 24)) * p
    rotation = float(rng.uniform(0, 90))
    basis = hexagonal_basis(period / (np.sqrt(3) / 2), rotation) if seed % 2 else _square_basis(period, rotation)
    img = lattice_image((n, n), pixel_size=p, basis=basis, sigma=period / 6, noise=float(rng.uniform(0.3, 1.0)),
                        seed=seed)
    live = F.LiveSpectrum(mode="auto")
    full, _ = live(img, full=True)
    assert live.last.mode == "single" and live.last.shape == (n, n) and live.last.sharp_peaks >= 2
    assert single_calls == [(n, n)]
    spec = F.LiveSpectrum.to_ln(full)
    c = n // 2
    spec[c - 3: c + 4, c - 3: c + 4] = -np.inf
    r, col = np.unravel_index(np.argmax(spec), spec.shape)
    g = np.hypot(r - c, col - c) / (n * p)
    assert abs(g - 1 / period) < 1.5 / (n * p)  # the strongest spot: a first order, |g1| = 1 / d


@pytest.mark.parametrize("seed", [61, 62, 63, 64])
def test_auto_on_micrograph_sized_rois_averages_astigmatic_thon_rings_and_vitreous_ice(seed, single_calls):
    """Without spots, "auto" on a big ROI never pays for the single periodogram. Astigmatic Thon rings
    swing by many times around a ring (a ring-level test alone took them for spots) and the vitreous-ice
    ring stands far above its neighbourhood (a local test alone took it for spots): neither is a lattice."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([768, 1024, 2048]))
    p, dz = float(rng.uniform(0.5, 2.0)), float(rng.uniform(5e3, 3e4))
    astig = ctf_image((n, n), p, dz, seed=seed, shot_noise=float(rng.uniform(0.2, 1.0)),
                      astigmatism=float(rng.uniform(0.1, 0.3)) * dz, astigmatism_angle=float(rng.uniform(0, np.pi)))
    with np.errstate(over="ignore"):  # the crystal's soft edge, far off the image: exp overflows to weight 0
        vitreous, _ = ice_image((n, n), pixel_size=float(rng.uniform(0.5, 1.5)), crystal_centre=(-1e5, -1e5),
                                crystal_radius=1.0, seed=seed)
    live = F.LiveSpectrum(mode="auto")
    for img in (astig, vitreous):
        live(img)
        assert live.last.mode == "averaged" and live.last.sharp_peaks < 2
        assert live.last.shape == (F.default_tile(img.shape),) * 2
    assert single_calls == []
    crystal, _ = ice_image((1024, 1024), seed=seed)  # the same ice, with a crystal on 15 % of the frame
    live(crystal)
    assert live.last.mode == "single" and single_calls == [(1024, 1024)]
    crystal[500, 700] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        live(crystal)


def test_display_levels_leave_out_g0_and_the_axes():
    """A huge mean (a micrograph's thousands of counts) used to set the top of the display range."""
    img = ctf_image((512, 512), 1.0, 2e4, seed=9) * 50 + 3500
    for mode in ("single", "averaged"):
        live = F.LiveSpectrum(mode=mode)
        half, (lo, hi) = live(img)
        frac_dark = float(np.mean(half < lo + 0.1 * (hi - lo)))
        assert frac_dark < 0.3, f"{mode}: {frac_dark:.0%} of the spectrum in the darkest tenth"
        assert F.LiveSpectrum.to_ln(hi) - F.LiveSpectrum.to_ln(lo) < 20  # not stretched by g = 0


# -- real micrographs ------------------------------------------------------------------------------
def _micrograph(name):
    import mrcfile

    with mrcfile.open(corpus_file(name, rosettasciio=False), permissive=True) as mrc:
        data = np.asarray(mrc.data, np.float32)
        pixel_size = float(mrc.voxel_size.x)
    return (data[0] if data.ndim == 3 else data), pixel_size


@pytest.mark.parametrize("name", ["fei-extended.mrc", "epu2.9_example.mrc"])
def test_real_micrographs_are_not_black_and_auto_averages_them(name):
    img, _ = _micrograph(name)
    h, w = img.shape
    rng = np.random.default_rng(41)
    for n in (512, 1024, 2048):
        y0, x0 = int(rng.integers(0, h - n)), int(rng.integers(0, w - n))
        roi = img[y0: y0 + n, x0: x0 + n]
        for mode in ("single", "auto"):
            live = F.LiveSpectrum(mode=mode)
            half, (lo, hi) = live(roi)
            dark = float(np.mean(half < lo + 0.1 * (hi - lo)))
            assert dark < 0.3, f"{name} {n}² {mode}: {dark:.0%} in the darkest tenth of the levels"
        assert live.last.mode == "averaged" and live.last.sharp_peaks < 2


@pytest.mark.parametrize("name, tile, min_rings", [("fei-extended.mrc", 512, 3), ("epu2.9_example.mrc", 512, 5)])
def test_real_micrographs_show_thon_rings_and_the_ice_ring(name, tile, min_rings):
    """What is there (measured first): Thon rings below 0.12 1/Å whose minima have equally spaced g²
    (zeros of sin χ at λΔf g² = n: about 1.1 µm underfocus on fei-extended, 2.8 µm on epu2.9), and
    the vitreous-ice ring at 3.7-3.9 Å."""
    img, p = _micrograph(name)
    ps = F.averaged_power_spectrum(img, p, tile=tile, flatten=True)
    g, prof = _radial(ps)
    minima = [i for i in argrelextrema(prof, np.less, order=2)[0] if 0.03 < g[i] < 0.12]
    assert len(minima) >= min_rings
    spacing = np.diff(g[minima] ** 2)
    assert np.all(np.abs(spacing / np.median(spacing) - 1) < 0.3), f"g² spacings {spacing}"
    defocus = 1 / (wavelength(300) * np.median(spacing))  # Å
    assert 5e3 < defocus < 4e4
    ice = (g > 0.2) & (g < 0.35)
    assert 1 / g[ice][np.argmax(prof[ice])] == pytest.approx(3.8, abs=0.15)
    # the flattened profile is flat far from the rings: the fall-off is gone (4 decades on epu2.9)
    assert abs(np.median(prof[(g > 0.35) & (g < 0.5)])) < 0.1
