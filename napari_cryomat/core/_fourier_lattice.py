"""Lattice indexing: the two shortest independent spots, their integer and superlattice (fractional) orders,
and the basis refined on the image.

Conventions: :mod:`napari_cryomat.core.fourier`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import scipy.fft as sfft

from napari_cryomat.core._fourier_base import _check_g, _check_pixel_size, _windowed, validate_image
from napari_cryomat.core._fourier_peaks import Peak, _radial_background, find_peaks, refine_peak
from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import (
    MAX_COUNT,
    fraction,
    integer,
    nonnegative,
)


@dataclass
class Lattice:
    """A 2D reciprocal lattice with its indexed and superlattice spots.

    Attributes
    ----------
    g1, g2 : (2,) arrays
        Basis vectors (gy, gx) in Å⁻¹.
    peaks : list of Peak
        Spots indexed as integer combinations ``h g1 + k g2`` (``hk`` set).
    superlattice : list of Peak
        Spots at rational fractions of the basis (``hk`` of Fractions) with their modulation
        vector ``q`` in basis units, e.g. ``(Fraction(1, 3), Fraction(0))``.
    unindexed : list of Peak
        Spots that fit neither.
    """

    g1: np.ndarray
    g2: np.ndarray
    peaks: list = field(default_factory=list)
    superlattice: list = field(default_factory=list)
    unindexed: list = field(default_factory=list)

    @property
    def d1(self) -> float:
        """Spacing of g1 in Å."""
        return 1.0 / float(np.hypot(*self.g1))

    @property
    def d2(self) -> float:
        """Spacing of g2 in Å."""
        return 1.0 / float(np.hypot(*self.g2))

    @property
    def angle(self) -> float:
        """Angle between g1 and g2 in degrees."""
        c = float(np.dot(self.g1, self.g2) / (np.hypot(*self.g1) * np.hypot(*self.g2)))
        return float(np.degrees(np.arccos(np.clip(c, -1, 1))))

    @property
    def modulation_vectors(self) -> list[tuple]:
        """Distinct superlattice modulation vectors q (basis units)."""
        out = []
        for pk in self.superlattice:
            if pk.q not in out:
                out.append(pk.q)
        return out

    def q_vector(self, q) -> np.ndarray:
        """Modulation vector in Å⁻¹ (gy, gx) from basis units."""
        return float(q[0]) * self.g1 + float(q[1]) * self.g2


def _upper(g) -> bool:
    return g[0] < 0 or (g[0] == 0 and g[1] > 0)  # "up" on screen


def _canonical_q(q: tuple[Fraction, Fraction]) -> tuple[Fraction, Fraction]:
    a, b = q
    if a < 0 or (a == 0 and b < 0):
        a, b = -a, -b
    return (a, b)


def find_lattice(
    image,
    pixel_size: float = 1.0,
    *,
    min_snr: float = 25.0,
    strong_fraction: float = 0.1,
    tolerance: float = 0.06,
    max_denominator: int = 6,
    max_peaks: int = 60,
    peaks: Sequence[Peak] | None = None,
    superlattice_snr: float | None = 12.0,
    fit_image: bool = True,
    progress: ProgressCallback = None,
) -> Lattice:
    """Find and index the lattice and any superlattice in an image.

    The basis is chosen among the *strong* spots (power ≥ ``strong_fraction`` × the strongest):
    the shortest non-collinear pair that indexes every dominant spot (≥ half the strongest power)
    as an integer, with the sign making the angle between them at most 90° (so a strong superlattice
    satellite shorter than the lattice spot does not become ``g1``). The basis is then refined by least
    squares on all integer-indexed spots (higher orders give a longer lever arm, each spot weighted
    by its SNR) and, with ``fit_image``, fitted to the image itself with all those harmonics
    (:func:`refine_basis_on_image`, the maximum-likelihood basis under white noise). All spots
    are indexed: integer combinations are lattice spots; a spot that is not is given the simplest
    fraction (smallest denominator up to ``max_denominator``) whose position lies within its
    measured uncertainty, half an FFT pixel (1/(N·pixel_size) in g); its fractional part is the
    modulation vector q. Spots that fit no such fraction but share one *decimal* q on at least two
    different lattice vectors are an incommensurate superlattice: their ``hk`` and ``q`` are floats
    (e.g. ``q = (0.0, 0.372)``), not forced onto a fraction. Its second-order satellites G ± 2q carry
    the same q (e.g. ``hk = (1.0, 0.744)``), not a modulation vector of their own.

    Parameters
    ----------
    image : (Y, X) array
    pixel_size : float
        Å per pixel.
    min_snr, max_peaks :
        Passed to :func:`find_peaks`.
    strong_fraction : float
        Spots at least this fraction of the strongest one's power may define the basis.
    tolerance : float
        Largest deviation, in basis units, for a spot to count as an integer (lattice) spot; also
        the fraction tolerance when ``peaks`` are given without an image.
    max_denominator : int
        Largest denominator of superlattice fractions (1/2 … 1/max_denominator).
    peaks : list of Peak, optional
        Use these spots instead of detecting them.
    superlattice_snr : float or None
        After indexing, look for weak superlattice spots *at the predicted positions* only, with
        this lower SNR threshold: the fractions h/n, k/n for n ≤ ``max_denominator`` (a new
        modulation vector is accepted only if at least two independent satellites, not Friedel
        mates, support it, which keeps false detections rare), and G ± q, G ± 2q of each
        incommensurate q already found. ``None`` switches the search off.
    fit_image : bool
        Refine the basis by a least-squares fit of its harmonics to the unwindowed image
        (about half the d-spacing error of the spot positions at equal noise). The spot-based
        basis is kept if that fit does not converge or moves a harmonic by more than half an
        FFT pixel. Ignored when ``image`` is None.

    Returns
    -------
    Lattice

    Raises
    ------
    ValueError
        If fewer than two non-collinear strong spots are found.
    """
    p = _check_pixel_size(pixel_size)
    min_snr = nonnegative(min_snr, "min_snr", high=1e12)
    strong_fraction = fraction(strong_fraction, "strong_fraction")
    tolerance = fraction(tolerance, "tolerance", high=0.5, low_open=True)
    max_denominator = integer(max_denominator, "max_denominator", low=1, high=12)
    max_peaks = integer(max_peaks, "max_peaks", low=1, high=MAX_COUNT)
    if superlattice_snr is not None:
        superlattice_snr = nonnegative(superlattice_snr, "superlattice_snr", high=1e12)
    if peaks is not None:
        peaks = list(peaks)
        for k, pk in enumerate(peaks):
            if not isinstance(pk, Peak):
                raise ValueError(f"peaks[{k}] must be a Peak (from find_peaks); got {type(pk).__name__}.")
            _check_g(pk.g, f"peaks[{k}].g", p)
    if peaks is None:
        peaks = find_peaks(
            image,
            p,
            min_snr=min_snr,
            max_peaks=max_peaks,
            progress=(lambda f: report(progress, 0.9 * f)) if progress else None,
        )
    if not peaks:
        raise ValueError(
            "No spots found in the FFT of the image; choose a crystalline region or lower the SNR threshold (min_snr)."
        )
    imax = max(pk.intensity for pk in peaks)
    strong = [pk for pk in peaks if pk.intensity >= strong_fraction * imax and _upper(pk.g)]
    strong.sort(key=lambda pk: pk.g_abs)
    if not strong:
        raise ValueError("No strong spots in the FFT; choose a crystalline region.")
    # the basis: the shortest non-collinear pair of strong spots that indexes every dominant spot (at least half the
    # strongest one's power) as an integer; a strong superlattice satellite shorter than g1 would otherwise become g1
    # and turn the real lattice's spots into fractions
    dominant = [pk.g for pk in peaks if pk.intensity >= 0.5 * imax]
    pairs = []
    for i, a in enumerate(strong):
        for b in strong[i + 1:]:
            s = abs(a.g[0] * b.g[1] - a.g[1] * b.g[0]) / (a.g_abs * b.g_abs)
            if s > 0.2:
                pairs.append((a.g, b.g if np.dot(a.g, b.g) >= 0 else -b.g))
    if not pairs:
        raise ValueError(
            "Only one row of spots found (a 1D lattice); a 2D basis needs two non-collinear spots. "
            "Tilt to a zone axis or pick a region showing a 2D lattice."
        )
    g1, g2 = pairs[0]
    for a, b in pairs:
        c = np.linalg.solve(np.column_stack([a, b]), np.array(dominant).T)
        if np.all(np.abs(c - np.rint(c)) < tolerance):
            g1, g2 = a, b
            break
    basis = np.column_stack([g1, g2])  # g = basis @ (h, k)

    def coeffs(g):
        return np.linalg.solve(basis, g)

    # least-squares refinement on integer-indexed spots (two passes)
    for _ in range(2):
        hk_list, g_list, w_list = [], [], []
        for pk in peaks:
            c = coeffs(pk.g)
            r = np.rint(c)
            if np.all(np.abs(c - r) < tolerance) and np.any(r != 0):
                hk_list.append(r)
                g_list.append(pk.g)
                w_list.append(np.sqrt(max(pk.snr, 1.0)))
        if len(hk_list) >= 2:
            hk = np.array(hk_list)
            gs = np.array(g_list)
            wts = np.array(w_list)[:, None]
            sol, *_ = np.linalg.lstsq(hk * wts, gs * wts, rcond=None)  # gs ≈ hk @ sol, sol rows g1,g2
            basis = sol.T
    if fit_image and image is not None and len(hk_list) >= 2:
        img = validate_image(image)
        # one harmonic per Friedel pair, in the upper half of (h, k)
        harmonics = sorted({(int(h), int(k)) if (h, k) > (0, 0) else (-int(h), -int(k)) for h, k in hk_list})
        f1, f2, ok = refine_basis_on_image(img, p, basis[:, 0], basis[:, 1], harmonics)
        if ok:
            # accept only a sub-pixel correction: the spots already fixed each harmonic to < 1 FFT pixel
            hmat = np.array(harmonics, float)
            moved = hmat @ (np.column_stack([f1, f2]) - basis).T  # (M, 2) harmonic shifts in Å⁻¹
            if np.max(np.abs(moved) * np.array(img.shape) * p) < 0.5:
                basis = np.column_stack([f1, f2])
    g1, g2 = basis[:, 0].copy(), basis[:, 1].copy()
    lat = Lattice(g1, g2)
    within = _uncertainty(image, p, basis, tolerance)
    for pk in peaks:
        c = coeffs(pk.g)
        r = np.rint(c)
        if np.all(np.abs(c - r) < tolerance):
            if np.all(r == 0):
                continue
            pk.hk = (int(r[0]), int(r[1]))
            lat.peaks.append(pk)
            continue
        hk = _simplest_fraction(c, basis, max_denominator, within)
        if hk is None:
            lat.unindexed.append(pk)
            continue
        pk.hk = hk
        pk.q = _fraction_q(hk)
        lat.superlattice.append(pk)
    _incommensurate(lat, basis, within)
    if superlattice_snr is not None and image is not None:
        _targeted_superlattice(image, p, lat, max_denominator, float(superlattice_snr), within)
    report(progress, 1.0)
    return lat


# a spot's position is known to within this many FFT pixels (1/(N·pixel) in g): sub-pixel refinement is good to about
# 0.1 px on a clean spot, strain and noise spread it further
POSITION_UNCERTAINTY_PX = 0.5


def _uncertainty(image, p: float, basis: np.ndarray, tolerance: float):
    """``within(dc)``: whether an offset ``dc`` in basis units is inside a spot's measured uncertainty.

    With an image that is :data:`POSITION_UNCERTAINTY_PX` FFT pixels in g (so a large region tells 1/3 from 0.37, and
    a small one does not pretend to tell 1/3 from 2/5); without one (spots given) ``tolerance`` in basis units."""
    if image is None:
        return lambda dc: bool(np.all(np.abs(dc) < tolerance))
    ny, nx = np.shape(image)[-2:]
    scale = np.array([ny * p, nx * p])  # Å⁻¹ -> FFT pixels

    def within(dc):
        return float(np.hypot(*((basis @ dc) * scale))) <= POSITION_UNCERTAINTY_PX

    return within


def _simplest_fraction(c: np.ndarray, basis: np.ndarray, max_den: int, within) -> tuple | None:
    """The fractional index (h/n, k/n) with the smallest n ≤ ``max_den`` consistent with the position ``c`` (basis
    units), or None. Integers are not fractions: a spot that is only consistent with an integer index is None here."""
    for n in range(2, max_den + 1):
        rn = np.rint(c * n)
        if np.all(rn % n == 0):
            continue
        if within(c - rn / n):
            return Fraction(int(rn[0]), n), Fraction(int(rn[1]), n)
    return None


def _fraction_q(hk: tuple) -> tuple:
    """Modulation vector of a fractional index: its fractional part in (-1/2, 1/2], sign-canonical."""
    h, k = hk
    qa, qb = h - round(h), k - round(k)
    qa = qa + 1 if qa <= Fraction(-1, 2) else qa
    qb = qb + 1 if qb <= Fraction(-1, 2) else qb
    return _canonical_q((qa, qb))


def _incommensurate(lat: Lattice, basis: np.ndarray, within) -> None:
    """Report unindexed spots that share one non-rational modulation vector as an incommensurate superlattice.

    A group of spots ``G + q`` (decimal q, one per Friedel pair after sign-canonicalisation) counts only when at least
    two different lattice vectors G carry it, as for the targeted search; its q is the SNR-weighted mean, and each
    spot's index is ``G + q`` as floats (e.g. ``(1.0, 0.372)``). A group at ±2q of another one is that modulation's
    second harmonic, not a modulation of its own: its spots are indexed ``G ± 2q`` with the other group's q. Then any
    spot left unindexed that lies at ``G ± q`` or ``G ± 2q`` of a modulation found joins it."""
    groups: list[list] = []  # [q of the first member, [(peak, G, q_i, sign)]]
    for pk in lat.unindexed:
        c = np.linalg.solve(basis, pk.g)
        G = np.rint(c)
        q = c - G
        sign = 1.0
        if q[0] + 0.577 * q[1] < 0:  # one sign per ±q pair (a direction no simple q is perpendicular to)
            q, G, sign = -q, -G, -1.0  # the Friedel mate's G + q
        if within(q):
            continue  # too close to the lattice spot itself to be a satellite
        for grp in groups:
            if within(0.5 * (q - grp[0])):  # two measured positions: twice one's uncertainty apart at most
                grp[1].append((pk, G, q, sign))
                break
        else:
            groups.append([q, [(pk, G, q, sign)]])
    found = []  # (q as floats, members), the group with the most SNR first: a fundamental before its harmonic
    for _, members in groups:
        if len({(int(G[0]), int(G[1])) for _, G, _, _ in members}) < 2:
            continue
        w = np.array([max(m[0].snr, 1.0) for m in members])
        q = np.sum([m[2] * wi for m, wi in zip(members, w)], axis=0) / w.sum()
        found.append((q, members, float(w.sum())))
    found.sort(key=lambda item: -item[2])
    # the fundamentals: groups that are not at ±2q of another group (when two groups are each other's harmonic, only
    # possible near q = 1/3 or 1/5, the one with more SNR is the fundamental)
    def is_harmonic(i: int) -> bool:
        q = found[i][0]
        return any(j != i and _harmonic_of(q, [f], within) is not None and (j < i or _harmonic_of(f, [q], within) is None)
                   for j, (f, _, _) in enumerate(found))

    fundamentals = [q for i, (q, _, _) in enumerate(found) if not is_harmonic(i)]
    taken = set()
    for q, members, _ in found:
        if any(q is f for f in fundamentals):
            q_label, order, shift = q, 1, np.zeros(2)
        else:
            harmonic = _harmonic_of(q, fundamentals, within)
            if harmonic is None:  # the harmonic of a harmonic: left unindexed
                continue
            q_label, order, shift = harmonic  # q ≈ order · q_label + shift (shift: a lattice vector)
        q_tuple = tuple(float(x) for x in np.round(q_label, 4))
        for pk, G, _, sign in members:
            hk = sign * (G + shift + order * np.asarray(q_tuple))
            pk.hk, pk.q = (float(hk[0]), float(hk[1])), q_tuple
            lat.superlattice.append(pk)
            taken.add(id(pk))
    lat.unindexed = [pk for pk in lat.unindexed if id(pk) not in taken]  # Peak's == compares arrays
    # single unindexed spots where a modulation found puts a satellite (weaker ones: see _targeted_superlattice)
    for pk in list(lat.unindexed):
        label = _satellite_of(np.linalg.solve(basis, pk.g), lat.modulation_vectors, within)
        if label is not None:
            pk.hk, pk.q = label
            lat.superlattice.append(pk)
            lat.unindexed = [u for u in lat.unindexed if u is not pk]


#: the satellite orders of an incommensurate modulation that are indexed and searched for: G ± q and G ± 2q
SATELLITE_ORDERS = (1, -1, 2, -2)


def _harmonic_of(q: np.ndarray, fundamentals: list, within):
    """``(q0, m, n)`` when the decimal modulation ``q`` (basis units) is ``m q0 + n`` for one of ``fundamentals``, m = ±2
    and n a lattice vector, within two measured positions' uncertainty; else None."""
    for q0 in fundamentals:
        for m in (2, -2):
            n = np.rint(q - m * q0)
            if within(0.5 * (q - m * q0 - n)):
                return q0, m, n
    return None


def _satellite_of(c: np.ndarray, modulations: list, within):
    """``(hk, q)`` when the position ``c`` (basis units) is ``G + m q`` (m in :data:`SATELLITE_ORDERS`) for one of the
    decimal (incommensurate) ``modulations``, within two measured positions' uncertainty; else None."""
    for q in modulations:
        if isinstance(q[0], Fraction) or isinstance(q[1], Fraction):
            continue
        for m in SATELLITE_ORDERS:
            hk = np.rint(c - m * np.asarray(q)) + m * np.asarray(q)
            if within(0.5 * (c - hk)):
                return (float(hk[0]), float(hk[1])), q
    return None


def _real_dot(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``a @ e`` for a real matrix ``a`` and a complex ``e`` as two real products (no complex copy of ``a``)."""
    return a @ e.real + 1j * (a @ e.imag)


def refine_basis_on_image(
    image,
    pixel_size: float,
    g1,
    g2,
    hk,
    *,
    max_iter: int = 20,
    tol: float = 1e-10,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Least-squares fit of a lattice's reciprocal basis directly to the (unwindowed) image.

    The image is modelled as a sum of the lattice's harmonics ``G = h g1 + k g2`` (one complex
    amplitude each, Friedel mates by symmetry) plus a plane background, and the four components
    of ``g1``, ``g2`` are fitted jointly with the amplitudes by Gauss-Newton. Under white noise
    this is the maximum-likelihood estimate of the basis and reaches the Cramér–Rao bound:
    unlike peak positions measured in a Hann-windowed spectrum (whose taper throws away the
    outer pixels' lever arm and inflates the frequency variance about 3.5x for a 2D Hann
    window), every pixel counts with the same weight, each harmonic is weighted by its own
    power, and the harmonics' mutual leakage is part of the model, so the rectangular window
    adds no bias.

    Parameters
    ----------
    image : (Y, X) array
        Real-space region (any real dtype).
    pixel_size : float
        Å per pixel.
    g1, g2 : (gy, gx)
        Starting basis in Å⁻¹, e.g. from spot positions; must be within a fraction of an FFT
        pixel of the optimum for the highest harmonic used.
    hk : sequence of (h, k)
        Integer indices of the harmonics to model (one of each Friedel pair; ``(0, 0)`` ignored).
    max_iter : int
        Largest number of Gauss-Newton steps.
    tol : float
        Stop when no basis component moves by more than ``tol`` times the largest one.

    Returns
    -------
    g1, g2 : (2,) arrays
        Fitted basis in Å⁻¹.
    converged : bool
        False if the fit did not settle within ``max_iter`` steps or went non-finite; the
        caller should then keep its starting basis.
    """
    p = _check_pixel_size(pixel_size)
    x = validate_image(image, min_size=2).astype(np.float64)
    g1 = _check_g(g1, "g1", p)
    g2 = _check_g(g2, "g2", p)
    max_iter = integer(max_iter, "max_iter", low=1, high=10_000)
    tol = nonnegative(tol, "tol", high=1.0)
    try:
        hk_arr = np.asarray(hk, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError(f"hk must be a sequence of integer pairs (h, k); got {hk!r}.") from None
    if not np.all(np.isfinite(hk_arr)) or np.any(hk_arr != np.round(hk_arr)) or np.any(np.abs(hk_arr) > 1000):
        raise ValueError(f"hk must hold integer pairs (h, k) of at most 1000 in size; got {hk!r}.")
    x = x - x.mean()
    ny, nx = x.shape
    H = np.array([h for h in hk_arr if tuple(h) != (0, 0)], float).reshape(-1, 2)
    th = np.concatenate([np.asarray(g1, float), np.asarray(g2, float)])
    if len(H) == 0:
        return th[:2], th[2:], False
    # centred coordinates in Å: the plane and the harmonics' phase and frequency terms decouple
    yc = (np.arange(ny) - (ny - 1) / 2) * p
    xc = (np.arange(nx) - (nx - 1) / 2) * p
    syy, sxx = nx * float(yc @ yc), ny * float(xc @ xc)
    npx = ny * nx

    def exps(th):
        G = H[:, :1] * th[None, :2] + H[:, 1:] * th[None, 2:]  # (M, 2) harmonics in Å⁻¹
        return np.exp(2j * np.pi * np.outer(yc, G[:, 0])), np.exp(2j * np.pi * np.outer(xc, G[:, 1]))

    ey, ex = exps(th)
    amp = np.conj(np.sum(ey * _real_dot(x, ex), axis=0)) / npx  # model: sum of 2 Re(a e^{2πi G·r})
    plane = np.zeros(3)
    for _ in range(max_iter):
        ya = ey * amp
        model = 2 * (ya.real @ ex.real.T - ya.imag @ ex.imag.T)
        res = x - model - plane[0] - plane[1] * yc[:, None] - plane[2] * xc[None, :]
        t0 = _real_dot(res, ex)
        m0 = np.sum(ey * t0, axis=0)  # Σ res e^{2πi G·r}
        my = np.sum(yc[:, None] * ey * t0, axis=0)  # Σ y res e^{2πi G·r}
        mx = np.sum(ey * _real_dot(res, xc[:, None] * ex), axis=0)
        # gradient of the model along G: 2 Re(2πi a r e); the squared norm of those columns is
        # 8π²|a|² Σy² (resp. Σx²), cross terms between harmonics are negligible
        gy = 2 * (2j * np.pi * amp * my).real
        gx = 2 * (2j * np.pi * amp * mx).real
        w = 8 * np.pi**2 * np.abs(amp) ** 2
        jtr = np.array([H[:, 0] @ gy, H[:, 0] @ gx, H[:, 1] @ gy, H[:, 1] @ gx])
        jtj = np.zeros((4, 4))
        for u, s_uu in ((0, syy), (1, sxx)):
            for a_ in range(2):
                for b_ in range(2):
                    jtj[2 * a_ + u, 2 * b_ + u] = float(np.sum(H[:, a_] * H[:, b_] * w)) * s_uu
        try:
            step = np.linalg.solve(jtj, jtr)
        except np.linalg.LinAlgError:
            return np.asarray(g1, float), np.asarray(g2, float), False
        amp = amp + np.conj(m0) / npx
        plane = plane + np.array([res.mean(), res.sum(1) @ yc / syy, res.sum(0) @ xc / sxx])
        th = th + step
        if not np.all(np.isfinite(th)):
            return np.asarray(g1, float), np.asarray(g2, float), False
        if np.max(np.abs(step)) <= tol * np.max(np.abs(th)):
            return th[:2], th[2:], True
        ey, ex = exps(th)
    return th[:2], th[2:], False


def _near(g: np.ndarray, spots: np.ndarray, radius: float) -> bool:
    """Whether any of ``spots`` (M, 2) lies within ``radius`` (Å⁻¹) of ``g``."""
    return bool(spots.size) and float(np.min(np.hypot(*(spots - g).T))) < radius


def _targeted_superlattice(image, p: float, lat: Lattice, max_den: int, thr: float, within) -> None:
    """Add weak superlattice spots found at predicted positions: fractions (see find_lattice), and ``G ± q``,
    ``G ± 2q`` of each incommensurate modulation q already found (:func:`_targeted_incommensurate`)."""
    img = validate_image(image)
    w = _windowed(img, "hann")
    ny, nx = w.shape
    f = sfft.fft2(w, workers=-1)
    power = (f.real**2 + f.imag**2).astype(np.float32)
    snr = power / _radial_background(power)
    known = [pk.g for pk in lat.peaks + lat.superlattice + lat.unindexed]
    hmax = max([max(abs(pk.hk[0]), abs(pk.hk[1])) for pk in lat.peaks] or [1]) + 1
    gmax = 1.02 * max([pk.g_abs for pk in lat.peaks] or [0.5 / p])
    g_lo = 4.0 / (min(ny, nx) * p)
    dg = 1.0 / (min(ny, nx) * p)
    cands: dict = {}
    known_before = np.array(known).reshape(-1, 2)
    for n in range(2, max_den + 1):
        for h in range(-hmax * n, hmax * n + 1):
            for k in range(-hmax * n, hmax * n + 1):
                fh, fk = Fraction(h, n), Fraction(k, n)
                if max(fh.denominator, fk.denominator) != n:
                    continue  # integer, or found with a smaller denominator
                g = float(fh) * lat.g1 + float(fk) * lat.g2
                ga = float(np.hypot(*g))
                if ga > gmax or ga < g_lo or not _upper(g):
                    continue
                if _near(g, known_before, 2 * dg):
                    continue
                ky, kx = int(round(g[0] * ny * p)), int(round(g[1] * nx * p))
                box = snr.take(range(ky - 1, ky + 2), axis=0, mode="wrap").take(range(kx - 1, kx + 2), axis=1, mode="wrap")
                if float(box.max()) < thr:
                    continue
                cands.setdefault(_fraction_q((fh, fk)), []).append(((fh, fk), ky, kx))
    basis = np.column_stack([lat.g1, lat.g2])
    for q, items in cands.items():
        found = []
        for (fh, fk), ky, kx in items:
            iy, ix = np.unravel_index(
                int(np.argmax(snr.take(range(ky - 1, ky + 2), axis=0, mode="wrap").take(range(kx - 1, kx + 2), axis=1, mode="wrap"))),
                (3, 3),
            )
            ry, rx, pw = refine_peak(w, float(ky + iy - 1), float(kx + ix - 1))
            g = np.array([ry / (ny * p), rx / (nx * p)])
            # the refined spot must still be this fraction (the 3×3 box can hold a neighbouring known spot, e.g. the
            # 2/3 satellite 2 px from a predicted 3/5) and must not be a spot already listed
            if _simplest_fraction(np.linalg.solve(basis, g), basis, max_den, within) != (fh, fk):
                continue
            if _near(g, np.array(known).reshape(-1, 2), dg):
                continue
            known.append(g)
            found.append(Peak(g, pw, float(snr[(ky + iy - 1) % ny, (kx + ix - 1) % nx]), hk=(fh, fk), q=q))
        if len(found) < 2 and q not in lat.modulation_vectors:
            continue
        for pk in found:
            lat.superlattice.append(pk)
            lat.superlattice.append(Peak(-pk.g, pk.intensity, pk.snr, hk=(-pk.hk[0], -pk.hk[1]), q=q))
    _targeted_incommensurate(w, snr, p, lat, thr, within, known, hmax, gmax, g_lo)


def _targeted_incommensurate(w, snr, p: float, lat: Lattice, thr: float, within, known: list, hmax: int, gmax: float,
                             g_lo: float) -> None:
    """Weak satellites of the incommensurate modulations found: the upper-half positions ``G + m q`` (m in
    :data:`SATELLITE_ORDERS`) with ``thr`` × the background in the 3 × 3 px around them, refined, and kept when they
    are still there (not a neighbouring spot) and not listed yet. Each is added with its Friedel mate. The modulation
    is already established by strong satellites on two lattice vectors, so a single weak one suffices (a false one
    needs a speckle pixel ``thr`` times its background in one of ~9 × (number of candidates) pixels: e⁻¹² each)."""
    modulations = [q for q in lat.modulation_vectors if not isinstance(q[0], Fraction) and not isinstance(q[1], Fraction)]
    if not modulations:
        return
    ny, nx = w.shape
    basis = np.column_stack([lat.g1, lat.g2])
    dg = 1.0 / (min(ny, nx) * p)
    lattice_hk = np.stack(np.meshgrid(np.arange(-hmax, hmax + 1), np.arange(-hmax, hmax + 1)), -1).reshape(-1, 2)
    for q in modulations:
        c_all = np.concatenate([lattice_hk + m * np.asarray(q) for m in SATELLITE_ORDERS])
        g_all = c_all @ basis.T
        g_abs = np.hypot(g_all[:, 0], g_all[:, 1])
        upper = (g_all[:, 0] < 0) | ((g_all[:, 0] == 0) & (g_all[:, 1] > 0))
        keep = (g_abs <= gmax) & (g_abs >= g_lo) & upper
        for c, g in zip(c_all[keep], g_all[keep]):
            if _near(g, np.array(known).reshape(-1, 2), 2 * dg):
                continue
            ky, kx = int(round(g[0] * ny * p)), int(round(g[1] * nx * p))
            box = snr.take(range(ky - 1, ky + 2), axis=0, mode="wrap").take(range(kx - 1, kx + 2), axis=1, mode="wrap")
            if float(box.max()) < thr:
                continue
            iy, ix = np.unravel_index(int(np.argmax(box)), (3, 3))
            ry, rx, pw = refine_peak(w, float(ky + iy - 1), float(kx + ix - 1))
            g_ref = np.array([ry / (ny * p), rx / (nx * p)])
            # still this satellite (the box can reach a neighbouring spot), and not one already listed
            if not within(0.5 * (np.linalg.solve(basis, g_ref) - c)):
                continue
            if _near(g_ref, np.array(known).reshape(-1, 2), dg):
                continue
            known.append(g_ref)
            hk = (float(c[0]), float(c[1]))
            spot_snr = float(snr[(ky + iy - 1) % ny, (kx + ix - 1) % nx])
            lat.superlattice.append(Peak(g_ref, pw, spot_snr, hk=hk, q=q))
            lat.superlattice.append(Peak(-g_ref, pw, spot_snr, hk=(-hk[0], -hk[1]), q=q))
