"""Physics checks for napari_cryomat.core.fourier on synthetic lattices with known truth."""

from fractions import Fraction

import numpy as np
import pytest

from napari_cryomat.core import fourier as F
from napari_cryomat.core.synthetic.lattice import (
    decaying_lattice_stack,
    hexagonal_basis,
    ice_image,
    inclusion_strain,
    lattice_image,
    superlattice_image,
)


@pytest.fixture(scope="module")
def superlattice():
    return superlattice_image((512, 512), strain_radius=25.0, strain_centre=(150.0, 60.0))


def _square_basis(a, rot_deg):
    t = np.radians(rot_deg)
    # rows (y, x): a1 along +X rotated, a2 perpendicular
    return np.array([[-a * np.sin(t), a * np.cos(t)], [-a * np.cos(t), -a * np.sin(t)]])


def test_power_spectrum_calibration_and_peak_position():
    p = 0.5
    n = 256
    yy, xx = np.mgrid[:n, :n] * p
    g = (0.0625, 0.125)  # exactly on FFT pixels: k = g * n * p = (8, 16)
    img = np.cos(2 * np.pi * (g[0] * yy + g[1] * xx)).astype(np.float32)
    for window in ("hann", "periodic_smooth", "none"):
        ps = F.power_spectrum(img, p, window=window)
        assert ps.reciprocal_pixel == pytest.approx((1 / (n * p), 1 / (n * p)))
        assert ps.centre == (n // 2, n // 2)
        r, c = np.unravel_index(np.argmax(ps.data), ps.data.shape)
        gy, gx = ps.g_at(r, c)
        assert abs(abs(gy) - g[0]) < 1e-9 and abs(abs(gx) - g[1]) < 1e-9
        assert np.sign(gy) == np.sign(gx)  # +g or its Friedel mate -g


def test_periodic_smooth_removes_edge_cross():
    rng = np.random.default_rng(0)
    n = 128
    ramp = np.add.outer(np.arange(n), 2 * np.arange(n)).astype(np.float32)  # strong edge discontinuity
    img = ramp + rng.standard_normal((n, n)).astype(np.float32)
    p_, s_ = F.periodic_smooth_decomposition(img)
    assert np.allclose(p_ + s_, img, atol=1e-3)
    raw = F.power_spectrum(img, 1.0, window="none", log=False).data
    ps = F.power_spectrum(img, 1.0, window="periodic_smooth", log=False).data
    c = n // 2
    # the cross through the centre (edge streaks) must drop by orders of magnitude
    assert ps[c, c + 10 : c + 40].mean() < 0.01 * raw[c, c + 10 : c + 40].mean()


def test_live_spectrum_matches_power_spectrum():
    rng = np.random.default_rng(1)
    live = F.LiveSpectrum()
    for shape in ((64, 64), (48, 80), (65, 63), (64, 81), (63, 64)):
        x = rng.standard_normal(shape).astype(np.float32)
        half, (lo, hi) = live(x)
        assert half.shape == (shape[0], shape[1] // 2 + 1) and lo < hi
        spec = F.LiveSpectrum.mirror(half, shape)
        np.testing.assert_array_equal(spec, live(x, full=True)[0])
        assert spec.shape == shape
        ref = np.log(F.power_spectrum(x, 1.0, window="hann", log=False).data + 1e-30)
        diff = np.abs(F.LiveSpectrum.to_ln(spec) - ref)
        cy, cx = shape[0] // 2, shape[1] // 2
        # around g = 0 the two remove different means (power_spectrum the plain mean before the window,
        # LiveSpectrum the windowed mean after the FFT, on the window's leak: ±4 px)
        diff[cy - 4 : cy + 5, cx - 4 : cx + 5] = 0
        assert diff.max() < 0.13  # bit-level log2|F| within 0.09, i.e. 0.12 in ln|F|²


@pytest.mark.parametrize("rot", [0.0, 13.7, 31.0])
def test_d_spacing_within_0p1_percent_for_20_periods_in_512(rot):
    p, n = 0.5, 512
    a = n * p / 20  # 20 periods across the ROI
    img = lattice_image((n, n), pixel_size=p, basis=_square_basis(a, rot), sigma=1.5, noise=0.3, seed=3)
    lat = F.find_lattice(img, p)
    assert abs(lat.d1 - a) / a < 1e-3
    assert abs(lat.d2 - a) / a < 1e-3
    assert lat.angle == pytest.approx(90.0, abs=0.1)
    assert all(pk.hk is not None for pk in lat.peaks)



def test_refine_basis_on_image_recovers_exact_basis_from_offset_start():
    p, n = 0.5, 256
    B = hexagonal_basis(6.3, 17.0)  # off the FFT grid
    G = np.linalg.inv(B.T)  # rows g1, g2 in 1/Å
    img = lattice_image((n, n), pixel_size=p, basis=B, sigma=1.2, noise=0.0)
    dk = 1.0 / (n * p)  # one FFT pixel in 1/Å
    start1, start2 = G[0] + 0.05 * dk, G[1] - np.array([0.04, -0.03]) * dk
    hk = [(1, 0), (0, 1), (1, 1), (1, -1), (2, 0), (0, 2), (2, 1), (1, 2)]
    g1, g2, ok = F.refine_basis_on_image(img, p, start1, start2, hk)
    assert ok
    assert np.abs(g1 - G[0]).max() < 1e-5 * dk and np.abs(g2 - G[1]).max() < 1e-5 * dk
    _, _, ok0 = F.refine_basis_on_image(img, p, start1, start2, [])
    assert not ok0  # nothing to fit: caller keeps its basis


def test_image_fit_beats_spot_positions_at_high_noise():
    # 20 periods in 512², noise 1.0: spot positions in the Hann-windowed spectrum give ~0.05 % rms
    # in d; the image fit is the ML estimate, near the Cramér–Rao bound (~0.028 % rms here)
    p, n = 0.5, 512
    a = n * p / 20
    rng = np.random.default_rng(42)
    e_fit, e_spot = [], []
    for kind in ("square", "hexagonal"):
        for seed in (501, 502, 503):
            rot = float(rng.uniform(0, 60))
            B = _square_basis(a, rot) if kind == "square" else hexagonal_basis(a / (np.sqrt(3) / 2), rot)
            img = lattice_image((n, n), pixel_size=p, basis=B, sigma=1.5, noise=1.0, seed=seed)
            for fit, errs in ((True, e_fit), (False, e_spot)):
                lat = F.find_lattice(img, p, fit_image=fit)
                errs += [(lat.d1 - a) / a, (lat.d2 - a) / a]
    rms_fit, rms_spot = np.sqrt(np.mean(np.square(e_fit))), np.sqrt(np.mean(np.square(e_spot)))
    assert rms_fit < 4e-4
    assert rms_fit < 0.75 * rms_spot


def test_peak_fields_and_subpixel_refinement():
    p, n = 0.37, 256
    g_true = np.array([0.0913, 0.1577])  # deliberately off the FFT grid
    yy, xx = np.mgrid[:n, :n] * p
    img = np.cos(2 * np.pi * (g_true[0] * yy + g_true[1] * xx)).astype(np.float32)
    peaks = F.find_peaks(img, p)
    top = [pk for pk in peaks if pk.g[1] > 0][0]
    assert np.allclose(top.g, g_true, atol=2e-5)  # 1 FFT pixel is 1/(256*0.37) = 0.0106 Å^-1
    assert top.d == pytest.approx(1 / np.hypot(*g_true), rel=2e-4)
    assert top.angle == pytest.approx(np.degrees(np.arctan2(-g_true[0], g_true[1])), abs=0.02)
    assert top.snr > 1e3 and top.intensity > 0
    unrefined = F.find_peaks(img, p, refine=False)
    top_u = [pk for pk in unrefined if pk.g[1] > 0][0]
    assert np.hypot(*(top_u.g - g_true)) > 10 * np.hypot(*(top.g - g_true))


def test_find_lattice_hexagonal_and_superlattice(superlattice):
    img, truth = superlattice
    p = truth["pixel_size"]
    lat = F.find_lattice(img[:, 256:], p)  # right half: away from the strained disk
    assert lat.d1 == pytest.approx(truth["d1"], rel=2e-3)
    assert lat.d2 == pytest.approx(truth["d2"], rel=2e-3)
    assert lat.angle == pytest.approx(60.0, abs=0.3)
    assert len(lat.peaks) >= 12
    assert lat.modulation_vectors, "superlattice not detected"
    # q = g1/3 of the truth; our g1 is ± one of the truth's 6 first-order spots
    q_A = lat.q_vector(lat.modulation_vectors[0])
    q_true = np.array(truth["q"])
    assert min(np.hypot(*(q_A - q_true)), np.hypot(*(q_A + q_true))) < 2e-3
    fr = lat.modulation_vectors[0]
    assert sorted(abs(x) for x in fr) in ([Fraction(0), Fraction(1, 3)], [Fraction(1, 3), Fraction(1, 3)])
    for pk in lat.superlattice:
        assert any(x.denominator == 3 for x in pk.hk)


def test_no_superlattice_without_modulation():
    img, truth = superlattice_image((384, 384), pld_amplitude=0.0, charge_modulation=0.0, strain=0.0)
    lat = F.find_lattice(img, truth["pixel_size"])
    assert lat.superlattice == []
    assert lat.d1 == pytest.approx(truth["d1"], rel=2e-3)


def test_radial_profile_vitreous_vs_crystalline_ice():
    img, truth = ice_image((512, 512), crystal_radius=90.0, crystal_centre=(256.0, 380.0))
    # vitreous region: a broad ring at 1/3.7 Å^-1
    g, prof = F.radial_profile(img[:, :200], truth["pixel_size"])
    sel = g > 0.15
    g_ring = g[sel][np.argmax(prof[sel])]
    assert g_ring == pytest.approx(truth["ring_g"], abs=0.015)
    # crystalline region: sharp spots at 3.91 Å
    crop = img[186:326, 310:450]
    lat = F.find_lattice(crop, truth["pixel_size"])
    assert lat.d1 == pytest.approx(truth["crystal_d"], rel=0.01)
    assert lat.angle == pytest.approx(60.0, abs=1.0)
    with pytest.raises(ValueError):
        F.find_lattice(img[:150, :150], truth["pixel_size"])  # vitreous: no spots


def test_bragg_filter_separates_lattice_and_superlattice(superlattice):
    img, truth = superlattice
    p = truth["pixel_size"]
    lat = F.find_lattice(img[:, 256:], p)
    filt = F.bragg_filter(img, lat.peaks, 0.03, pixel_size=p)
    assert filt.shape == img.shape and filt.dtype == np.float32
    assert abs(filt.mean() - img.mean()) < 1e-3
    # the lattice-filtered image is noise-free: its power at a noise-only frequency is tiny
    spec_f = F.power_spectrum(filt, p, log=False)
    spec_i = F.power_spectrum(img, p, log=False)
    g1 = lat.g1
    r, c = (int(round(v)) for v in spec_f.index_of(g1))
    assert spec_f.data[r, c] > 0.5 * spec_i.data[r, c]
    rn, cn = (int(round(v)) for v in spec_f.index_of(0.5 * (g1 + lat.g2) + np.array([0.05, 0.0])))
    assert spec_f.data[rn, cn] < 1e-3 * spec_i.data[rn, cn] + 1e-12
    sup = F.bragg_filter(img, lat.superlattice, 0.02, pixel_size=p, keep_mean=False)
    ss = F.power_spectrum(sup, p, log=False)
    rs, cs = (int(round(v)) for v in ss.index_of(lat.superlattice[0].g))
    assert ss.data[rs, cs] > 0.3 * spec_i.data[rs, cs]
    assert ss.data[r, c] < 1e-3 * spec_i.data[r, c]


def test_gpa_recovers_uniform_strain_and_rotation():
    p, n = 0.4, 384
    B0 = hexagonal_basis(4.0, 7.0)
    eps_xx, eps_yy, theta = 0.01, -0.005, np.radians(0.5)
    # displacement u = E r with E = strain + rotation (CCW on screen: ux = θ y, uy = -θ x)
    E = np.array([[eps_yy, -theta], [theta, eps_xx]])  # rows (uy, ux); cols (y, x)

    def disp(yy, xx):
        return E[0, 0] * yy + E[0, 1] * xx, E[1, 0] * yy + E[1, 1] * xx

    img = lattice_image((n, n), pixel_size=p, basis=B0, sigma=0.55, displacement=disp, noise=0.2)
    G0 = np.linalg.inv(B0.T)  # the unstrained lattice's reciprocal basis
    res = F.gpa(img, G0[0], G0[1], 0.05, pixel_size=p, reference=False)
    inner = (slice(60, -60), slice(60, -60))
    assert np.median(res.exx[inner]) == pytest.approx(eps_xx, abs=5e-4)
    assert np.median(res.eyy[inner]) == pytest.approx(eps_yy, abs=5e-4)
    assert np.median(res.exy[inner]) == pytest.approx(0.0, abs=5e-4)
    assert np.median(res.rotation[inner]) == pytest.approx(np.degrees(theta), abs=0.03)
    # relative to a reference region inside the same (uniformly strained) image: zero strain
    rel = F.gpa(img, G0[0], G0[1], 0.05, pixel_size=p, reference=(slice(100, 200), slice(100, 200)))
    assert abs(np.median(rel.exx[inner])) < 5e-4
    # the refined reference vectors are the strained lattice's
    assert np.hypot(*rel.g1) < np.hypot(*G0[0]) or np.hypot(*rel.g2) < np.hypot(*G0[1])


def test_gpa_inclusion_strain_against_analytic():
    img, truth = superlattice_image((512, 512), strain_radius=30.0, strain_centre=(100.0, 100.0), seed=4)
    p = truth["pixel_size"]
    # reference = the true unstrained lattice (the far field of the inclusion is strained too)
    res = F.gpa(img, truth["g1"], truth["g2"], 0.04, pixel_size=p, reference=False)
    yy = (np.arange(512) * p)[:, None]
    xx = (np.arange(512) * p)[None, :]
    rho = np.hypot(yy - 100.0, xx - 100.0)
    inside = rho < 15.0
    assert np.median(res.exx[inside]) == pytest.approx(0.02, abs=0.003)
    assert np.median(res.eyy[inside]) == pytest.approx(0.02, abs=0.003)
    assert abs(np.median(res.exy[inside])) < 0.002
    assert abs(np.median(res.rotation[inside])) < 0.2  # degrees
    ex, ey, _ = inclusion_strain(yy, xx, centre=(100.0, 100.0), radius=30.0, strain=0.02)
    far = (rho > 75) & (np.add.outer(np.arange(512), np.zeros(512)) > 40)
    assert np.median(np.abs(res.exx[far] - ex[far])) < 0.003
    # displacement inside the disk: u = eps (r - c): check the gradient of ux along x
    row = res.ux[250, 200:300]
    slope = np.polyfit(np.arange(100) * p, row, 1)[0]
    assert slope == pytest.approx(0.02, abs=0.003)


def test_pld_map_amplitude_and_direction():
    img, truth = superlattice_image((512, 512), strain=0.0, noise=0.1, seed=5)
    p = truth["pixel_size"]
    res = F.pld_map(img, truth["q"], lattice=(truth["g1"], truth["g2"]), pixel_size=p)
    inner = (slice(60, -60), slice(60, -60))
    assert np.median(res.amplitude[inner]) == pytest.approx(truth["pld_amplitude"], rel=0.1)
    d = np.median(res.direction[inner])
    diff = (d - truth["pld_direction"] + 90) % 180 - 90
    assert abs(diff) < 5.0
    # no PLD: amplitude near zero (the charge modulation alone must not fake one)
    img0, _ = superlattice_image((512, 512), strain=0.0, pld_amplitude=0.0, noise=0.1, seed=5)
    res0 = F.pld_map(img0, truth["q"], lattice=(truth["g1"], truth["g2"]), pixel_size=p)
    assert np.median(res0.amplitude[inner]) < 0.3 * truth["pld_amplitude"]


def test_bragg_intensity_series_critical_dose():
    stack, truth = decaying_lattice_stack(16, (128, 128), dose_per_frame=2.0, critical_dose=12.0)
    p = truth["pixel_size"]
    g1, g2 = np.array(truth["g1"]), np.array(truth["g2"])
    res = F.bragg_intensity_series(stack, [g1, g2, g1 + g2], pixel_size=p, dose_per_frame=2.0)
    assert res.intensity.shape == (16, 3)
    assert np.all(np.diff(res.total[:8]) < 0)
    assert res.critical_dose == pytest.approx(12.0, rel=0.1)
    assert res.dose[0] == pytest.approx(1.0)
    nodose = F.bragg_intensity_series(stack, [g1], pixel_size=p)
    assert nodose.critical_dose is None and nodose.total[0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad, msg",
    [
        (np.zeros((10, 200)), "at least 16"),
        (np.zeros((64, 64, 3)), "RGB"),
        (np.zeros((64, 64), complex), "complex"),
        (np.full((64, 64), np.nan), "NaN"),
    ],
)
def test_bad_input_messages(bad, msg):
    before = bad.copy()
    with pytest.raises(ValueError, match=msg):
        F.power_spectrum(bad, 1.0)
    with pytest.raises(ValueError, match=msg):
        F.find_lattice(bad, 1.0)
    np.testing.assert_array_equal(bad, before)


def test_bad_parameters():
    img = np.zeros((64, 64), np.float32)
    with pytest.raises(ValueError, match="Pixel size"):
        F.power_spectrum(img, 0.0)
    with pytest.raises(ValueError, match="collinear"):
        F.gpa(img + 1, (0.1, 0.0), (0.2, 0.0), 0.02)
    with pytest.raises(ValueError, match="No peaks"):
        F.bragg_filter(img, [], 0.02)


def test_sample_data_deterministic_with_truth():
    from napari_cryomat.sample_data.lattice import ice_sample, superlattice_sample

    for fn in (superlattice_sample, ice_sample):
        (data, kw, kind), = fn()
        (data2, kw2, _), = fn()
        assert kind == "image" and data.dtype == np.float32 and data.shape == (1024, 1024)
        np.testing.assert_array_equal(data, data2)
        assert kw["units"] == ("angstrom", "angstrom")
        truth = kw["metadata"]["truth"]
        assert kw["scale"] == (truth["pixel_size"], truth["pixel_size"])
        assert truth == kw2["metadata"]["truth"]
    (_, kw, _), = superlattice_sample()
    t = kw["metadata"]["truth"]
    assert t["q_fraction"][0] == pytest.approx(1 / 3) and t["strain"] > 0 and t["pld_amplitude"] > 0


def test_targeted_search_finds_weak_superlattice():
    img, truth = superlattice_image((384, 384), pld_amplitude=0.08, charge_modulation=0.0, strain=0.0,
                                    noise=0.3, seed=101)
    p = truth["pixel_size"]
    blind = F.find_lattice(img, p, superlattice_snr=None)
    targeted = F.find_lattice(img, p)
    assert len(targeted.superlattice) > len(blind.superlattice)
    assert len(targeted.modulation_vectors) == 1
    q = targeted.q_vector(targeted.modulation_vectors[0])
    q_true = np.array(truth["q"])
    assert min(np.hypot(*(q - q_true)), np.hypot(*(q + q_true))) < 2e-3
    for pk in targeted.superlattice:  # refined spots sit at their fractional positions
        pred = float(pk.hk[0]) * targeted.g1 + float(pk.hk[1]) * targeted.g2
        assert np.hypot(*(pk.g - pred)) < 2e-3
