"""Superlattice indexing on images with a known modulation: the fractional index of every satellite is the simplest
fraction consistent with its position (half an FFT pixel), an incommensurate q is reported as a decimal, a strong
satellite does not become the basis, and no spot is listed twice."""

from fractions import Fraction

import numpy as np
import pytest

from napari_cryomat.core import fourier as F
from napari_cryomat.core._fourier_peaks import _fmt_frac
from napari_cryomat.core.synthetic.lattice import hexagonal_basis, lattice_image, reciprocal_basis, superlattice_image


def _modulated(n, p, basis, q_fraction, *, which=0, amp=0.15, charge=0.06, noise=0.3, seed=0):
    """A lattice with a longitudinal PLD plus a charge modulation of wave vector q = q_fraction · g_which."""
    G = reciprocal_basis(basis)
    q = q_fraction * G[which]
    e = G[which] / np.hypot(*G[which])
    a = np.hypot(*basis[0])

    def disp(yy, xx):
        s = amp * np.sin(2 * np.pi * (q[0] * yy + q[1] * xx))
        return s * e[0], s * e[1]

    def mod(yy, xx):
        return 1 + charge * np.cos(2 * np.pi * (q[0] * yy + q[1] * xx))

    img = lattice_image((n, n), pixel_size=p, basis=basis, sigma=max(0.14 * a, p), displacement=disp,
                        intensity_modulation=mod, noise=noise, seed=seed)
    return img, G, q


def _square(a, rotation):
    t = np.radians(rotation)
    return a * np.array([[-np.sin(t), np.cos(t)], [-np.cos(t), -np.sin(t)]])


def _check_labels(lat, G, q, f, n, p):
    """Every superlattice spot is a true satellite G + m q (m = ±1, ±2) and carries exactly that index."""
    found = np.column_stack([lat.g1, lat.g2])
    truth = np.column_stack([G[0], G[1]])
    T = np.rint(np.linalg.solve(found, truth))  # the true basis in the found one: integer if the basis is right
    assert np.allclose(np.linalg.solve(found, truth), T, atol=0.02)
    qt = np.linalg.solve(truth, q)
    for pk in lat.superlattice:
        ct = np.linalg.solve(truth, pk.g)
        best = min(((np.rint(ct - m * qt), m) for m in (1, 2, -1, -2)),
                   key=lambda c: np.hypot(*(truth @ (ct - c[0] - c[1] * qt))))
        Gt, m = best
        assert np.hypot(*(truth @ (ct - Gt - m * qt))) * n * p < 1.0, f"{pk.hk} is no satellite"
        if isinstance(f, Fraction):
            qf = np.array([Fraction(0), Fraction(0)])
            qf[int(np.argmax(np.abs(qt)))] = f
            hk_true = [int(Gt[0]) + m * qf[0], int(Gt[1]) + m * qf[1]]
            want = tuple(int(T[i, 0]) * hk_true[0] + int(T[i, 1]) * hk_true[1] for i in range(2))
            assert tuple(pk.hk) == tuple(want), f"labelled {pk.hk}, truth {tuple(str(x) for x in want)}"
    gs = np.array([pk.g for pk in lat.superlattice])
    if len(gs) > 1:
        d = np.hypot(*(gs[:, None, :] - gs[None, :, :]).transpose(2, 0, 1)) * n * p
        assert np.min(d + np.eye(len(gs)) * 9) > 0.5, "a spot is listed twice"




@pytest.mark.parametrize("case", range(10))
def test_random_commensurate_superlattices_get_their_true_fractions(case):
    r = np.random.default_rng(900 + case)
    a = r.uniform(2.5, 5.5)
    rot = r.uniform(0, 180)
    basis = hexagonal_basis(a, rot) if case % 2 else _square(a, rot)
    p = a / r.uniform(5, 10)
    n = int(r.integers(200, 700))
    f = [Fraction(1, 2), Fraction(1, 3), Fraction(1, 4), Fraction(2, 3)][case % 4]
    img, G, q = _modulated(n, p, basis, float(f), which=case % 3 % 2, noise=r.uniform(0.1, 0.6), seed=case)
    lat = F.find_lattice(img, p)
    _check_labels(lat, G, q, f, n, p)


@pytest.mark.parametrize(("size", "y0", "x0"), [(256, 0, 181), (300, 543, 0), (200, 0, 362), (256, 362, 362)])
def test_small_rois_of_the_superlattice_sample_stay_at_one_third(size, y0, x0):
    # these ROIs used to list the 2/3 satellite a second time as 3/5 (and 1/4 or 2/5 modulations): the targeted search
    # refined a predicted 3/5 onto the 2/3 spot two FFT pixels away
    img, truth = superlattice_image()
    lat = F.find_lattice(img[y0:y0 + size, x0:x0 + size], truth["pixel_size"])
    assert lat.superlattice
    assert {max(x.denominator for x in pk.hk) for pk in lat.superlattice} == {3}
    assert len(lat.modulation_vectors) == 1
    gs = np.array([pk.g for pk in lat.superlattice])
    d = np.hypot(*(gs[:, None, :] - gs[None, :, :]).transpose(2, 0, 1)) * size * truth["pixel_size"]
    assert np.min(d + np.eye(len(gs)) * 9) > 0.5


def test_a_strong_satellite_does_not_become_the_basis():
    # a q = 1/4 satellite G - q is shorter than g1 and above 10 % of the strongest spot: it once became g1 = 3/4 g1
    basis = hexagonal_basis(2.39, 37.0)
    img, G, q = _modulated(936, 0.339, basis, 0.25, amp=0.2, charge=0.1, noise=0.27, seed=1038)
    lat = F.find_lattice(img, 0.339)
    assert lat.d1 == pytest.approx(2.39 * np.sqrt(3) / 2, rel=2e-3)
    _check_labels(lat, G, q, Fraction(1, 4), 936, 0.339)


def test_an_incommensurate_modulation_is_a_decimal_q():
    # q = 0.37 g1 is 1.5 FFT pixels from 3/8 and 3.5 from 1/3 (a 1024 px ROI of 3 Å cells at 0.3 Å/px): not 1/3
    basis = _square(3.0, 12.0)
    img, G, q = _modulated(1024, 0.3, basis, 0.37, noise=0.3, seed=5)
    lat = F.find_lattice(img, 0.3)
    assert lat.superlattice and not any(isinstance(x, Fraction) for pk in lat.superlattice for x in pk.hk)
    qs = [np.hypot(*lat.q_vector(qv)) / np.hypot(*G[0]) for qv in lat.modulation_vectors]
    assert min(abs(x - 0.37) for x in qs) < 0.004  # to a third of an FFT pixel (0.0098 basis units)
    _check_labels(lat, G, q, 0.37, 1024, 0.3)
    labels = [pk.label() for pk in lat.superlattice]
    assert any(".37" in s or ".63" in s for s in labels), labels  # e.g. "8.11 Å (0.37,0)"


def _check_incommensurate_labels(lat, G, q, n, p):
    """Every superlattice spot is a true satellite G ± q or G ± 2q, labelled with decimals at its own position, and
    carries the fundamental q (a second harmonic is no modulation of its own)."""
    _check_labels(lat, G, q, 0.37, n, p)
    found = np.column_stack([lat.g1, lat.g2])
    for pk in lat.superlattice:
        assert not any(isinstance(x, Fraction) for x in pk.hk), pk.hk
        assert np.hypot(*(found @ np.array(pk.hk, float) - pk.g)) * n * p < 1.0, f"{pk.hk} is not where it is"
        qv = lat.q_vector(pk.q)
        assert min(np.hypot(*(qv - q)), np.hypot(*(qv + q))) * n * p < 1.0, f"q {pk.q} of {pk.hk} is not ±q"
    assert len(lat.modulation_vectors) == 1


def _resolvable_incommensurate(rng):
    """(n, p, basis, f, which) of a random lattice whose incommensurate q and 2q both lie over 1.5 FFT px from every
    fraction n ≤ 6 (nearer, a fraction label is as consistent as the decimal one)."""
    simple = {a / m for m in range(1, 7) for a in range(m + 1)}
    while True:
        a, rot = rng.uniform(2, 6), rng.uniform(0, 180)
        basis = hexagonal_basis(a, rot) if rng.random() < 0.5 else _square(a, rot)
        p, n, f = a / rng.uniform(4, 8), int(rng.integers(512, 1025)), rng.uniform(0.15, 0.45)
        px = 1 / (n * p * np.hypot(*reciprocal_basis(basis)[0]))  # an FFT pixel in basis units
        if all(min(abs((m * f) % 1 - x) for x in simple) > 1.5 * px for m in (1, 2)):
            return n, p, basis, f, int(rng.integers(2))


def test_weak_incommensurate_satellites_are_found_where_the_strong_ones_put_them():
    """Once strong satellites fix q, the satellites at G ± q and G ± 2q down to SNR 12 are looked for (min_snr is 25):
    on random weak modulations (PLD 0.05-0.15 Å) that adds satellites the spot search cannot see (SNR < 25), keeps
    every strong one, and every one is labelled right."""
    rng = np.random.default_rng(73)
    strong_total = full_total = weak = 0
    for case in range(6):
        n, p, basis, f, which = _resolvable_incommensurate(rng)
        img, G, q = _modulated(n, p, basis, f, which=which, amp=rng.uniform(0.05, 0.15), charge=rng.uniform(0, 0.06),
                               noise=rng.uniform(0.1, 1.0), seed=730 + case)
        strong = F.find_lattice(img, p, superlattice_snr=None)
        full = F.find_lattice(img, p)
        if not strong.superlattice:
            continue  # no q to start from
        _check_incommensurate_labels(full, G, q, n, p)
        found = [pk.g for pk in full.superlattice]
        assert all(min(np.hypot(*(g - h)) for h in found) * n * p < 0.5 for g in (pk.g for pk in strong.superlattice))
        strong_total += len(strong.superlattice)
        full_total += len(full.superlattice)
        weak += sum(pk.snr < 25 for pk in full.superlattice)
    assert strong_total >= 20  # the draw has modulations to start from: the test checks something
    assert full_total > strong_total and weak >= 4, (strong_total, full_total, weak)  # below min_snr: targeted only


def test_a_strong_incommensurate_modulation_is_one_q_with_its_second_harmonic():
    # a 0.36 Å PLD: the G ± 2q satellites are strong on several G and were once listed as a second modulation,
    # q2 = 0.45 = 1 - 2 · 0.275
    basis = _square(4.11, 4.2)
    img, G, q = _modulated(960, 0.83, basis, 0.2753, which=1, amp=0.364, charge=0.05, noise=0.25, seed=1429)
    lat = F.find_lattice(img, 0.83)
    _check_incommensurate_labels(lat, G, q, 960, 0.83)
    found = np.column_stack([lat.g1, lat.g2])
    second = [pk for pk in lat.superlattice
              if min(np.hypot(*(pk.g - found @ (np.rint(c) + m * np.linalg.solve(found, q))))
                     for m in (2, -2) for c in [np.linalg.solve(found, pk.g) - m * np.linalg.solve(found, q)]) * 960 * 0.83
              < 1.0]
    assert len(second) >= 4, [pk.hk for pk in lat.superlattice]


def test_the_same_modulation_on_a_small_roi_is_not_forced_onto_two_fifths():
    # on 200 px the FFT pixel is 0.05 basis units: 0.37 is consistent with 1/3 ... or nothing; never 2/5
    basis = _square(3.0, 12.0)
    img, G, q = _modulated(1024, 0.3, basis, 1 / 3, noise=0.3, seed=6)
    lat = F.find_lattice(img[:200, :200], 0.3)
    for pk in lat.superlattice:
        assert all(not isinstance(x, Fraction) or x.denominator in (1, 3) for x in pk.hk), pk.hk


def test_fraction_labels():
    assert _fmt_frac(Fraction(2, 3)) == "2/3" and _fmt_frac(Fraction(4, 2)) == "2" and _fmt_frac(-1) == "-1"
    assert _fmt_frac(0.3712) == "0.371" and _fmt_frac(1.0) == "1" and _fmt_frac(-0.25) == "-0.25"
