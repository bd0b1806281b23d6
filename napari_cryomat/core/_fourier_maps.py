"""Real-space maps from chosen spots: Bragg filtering (lock-in), geometric phase analysis (GPA) and
periodic-lattice-displacement (PLD) maps.

Conventions: :mod:`napari_cryomat.core.fourier`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from napari_cryomat.core._fourier_base import _check_g, _check_pixel_size, periodic_smooth_decomposition, validate_image
from napari_cryomat.core._fourier_peaks import Peak
from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import (
    choice,
    positive,
)


def _as_g_array(peaks) -> np.ndarray:
    if isinstance(peaks, Peak):
        peaks = [peaks]
    if isinstance(peaks, np.ndarray) and peaks.ndim == 1:
        peaks = peaks[None, :]
    out = [np.asarray(pk.g if isinstance(pk, Peak) else pk, dtype=float) for pk in peaks]
    if not out:
        raise ValueError("No peaks given; detect or pick some spots first.")
    arr = np.array(out)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError("Peaks must be (gy, gx) vectors in Å⁻¹ or Peak objects.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("Peaks must be finite (gy, gx) vectors in Å⁻¹; some hold NaN or inf.")
    return arr


def _check_peaks_in_nyquist(g: np.ndarray, p: float) -> None:
    nyq = 0.5 / p
    if np.any(np.abs(g) > nyq * (1 + 1e-9)):
        raise ValueError(
            f"Peaks must lie inside Nyquist ({nyq:.4g} Å⁻¹ for a pixel size of {p:g} Å); the largest given "
            f"is {np.abs(g).max():.4g} Å⁻¹."
        )


def _freq_grids(shape, p):
    ny, nx = shape
    return sfft.fftfreq(ny, d=p)[:, None], sfft.fftfreq(nx, d=p)[None, :]


def bragg_filter(
    image,
    peaks,
    radius: float,
    *,
    pixel_size: float = 1.0,
    keep_mean: bool = True,
    window: str = "periodic_smooth",
) -> np.ndarray:
    """Fourier-filtered image through soft (Gaussian) masks at the given spots and their Friedel mates.

    Pass the lattice spots for a lattice-only image, the superlattice spots for the modulation
    only.

    Parameters
    ----------
    image : (Y, X) array
    peaks : sequence of Peak or (n, 2) array
        Spot positions (gy, gx) in Å⁻¹. ``-g`` is added for each ``g``.
    radius : float
        Mask radius in Å⁻¹: the Gaussian's standard deviation is ``radius / 2``. The real-space
        resolution of the filtered image is about ``1 / radius`` Å.
    pixel_size : float
        Å per pixel.
    keep_mean : bool
        Add back the image mean.
    window : {"periodic_smooth", "none"}
        ``"periodic_smooth"`` filters only the periodic component (no edge streaks).

    Returns
    -------
    (Y, X) float32
    """
    p = _check_pixel_size(pixel_size)
    choice(window, "window", ("periodic_smooth", "none"))
    img = validate_image(image)
    radius = positive(radius, "radius", unit="Å⁻¹", label="Mask radius")
    g = _as_g_array(peaks)
    _check_peaks_in_nyquist(g, p)
    g = np.concatenate([g, -g])
    mean = float(img.mean())
    src = img - np.float32(mean)
    if window == "periodic_smooth":
        src, _ = periodic_smooth_decomposition(src)
    elif window != "none":
        raise ValueError("window must be 'periodic_smooth' or 'none'.")
    fy, fx = _freq_grids(img.shape, p)
    sig2 = (radius / 2.0) ** 2
    mask = np.zeros(img.shape, np.float32)
    for gy, gx in g:
        # distance on the periodic reciprocal grid
        dy = (fy - gy + 0.5 / p) % (1.0 / p) - 0.5 / p
        dx = (fx - gx + 0.5 / p) % (1.0 / p) - 0.5 / p
        np.maximum(mask, np.exp(-(dy**2 + dx**2) / (2 * sig2)).astype(np.float32), out=mask)
    f = sfft.fft2(src, workers=-1)
    out = sfft.ifft2(f * mask, workers=-1).real.astype(np.float32)
    if keep_mean:
        out += np.float32(mean)
    return out


class _LockIn:
    """Complex lock-in images of one image at chosen spatial frequencies (GPA, PLD).

    The edge-free (periodic) spectrum and the coordinate grids are computed once; each call then
    demodulates at one frequency ``g`` (Å⁻¹) with a Gaussian mask of variance ``sig2``.
    """

    def __init__(self, img: np.ndarray, p: float):
        src, _ = periodic_smooth_decomposition(img - np.float32(img.mean()))
        self.f = sfft.fft2(src, workers=-1)
        self.fy, self.fx = _freq_grids(img.shape, p)
        ny, nx = img.shape
        self.yy = (np.arange(ny, dtype=np.float64) * p)[:, None]
        self.xx = (np.arange(nx, dtype=np.float64) * p)[None, :]
        self.p = p

    def __call__(self, g, sig2: float) -> np.ndarray:
        return _lockin(self.f, g, sig2, self.fy, self.fx, self.yy, self.xx, self.p)


def _lockin(f: np.ndarray, g, sig2: float, fy, fx, yy, xx, p) -> np.ndarray:
    """Complex lock-in image: IFFT of a Gaussian mask at g, demodulated by exp(-2πi g·r)."""
    gy, gx = g
    per = 1.0 / p
    dy = (fy - gy + 0.5 * per) % per - 0.5 * per
    dx = (fx - gx + 0.5 * per) % per - 0.5 * per
    mask = np.exp(-(dy**2 + dx**2) / (2 * sig2)).astype(np.float32)
    h = sfft.ifft2(f * mask, workers=-1)
    demod = np.exp((-2j * np.pi) * (gy * yy + gx * xx)).astype(np.complex64)
    return (h * demod).astype(np.complex64)


# ------------------------------------------------------------------------------------------------
# GPA
# ------------------------------------------------------------------------------------------------
@dataclass
class GPAResult:
    """Maps from geometric phase analysis. Lengths in Å; strains dimensionless.

    Attributes
    ----------
    phase1, phase2 : (Y, X) float32
        Geometric phases (radians, wrapped to (-π, π]) after removing the reference ramp.
    amplitude1, amplitude2 : (Y, X) float32
        Lock-in amplitudes (where they are low, the phases are meaningless).
    uy, ux : (Y, X) float32
        Displacement in Å relative to the reference lattice (from unwrapped phases).
    exx, eyy, exy : (Y, X) float32
        Strain relative to the reference lattice (0.01 = 1 %).
    rotation : (Y, X) float32
        Lattice rotation in degrees, counter-clockwise on screen.
    g1, g2 : (2,) arrays
        Reference reciprocal vectors used (after refinement on the reference region), Å⁻¹.
    """

    phase1: np.ndarray
    phase2: np.ndarray
    amplitude1: np.ndarray
    amplitude2: np.ndarray
    uy: np.ndarray
    ux: np.ndarray
    exx: np.ndarray
    eyy: np.ndarray
    exy: np.ndarray
    rotation: np.ndarray
    g1: np.ndarray
    g2: np.ndarray


def _phase_gradient(z: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (d/dy, d/dx) of arg(z) in rad/Å, without unwrapping."""
    gy, gx = np.gradient(z)
    den = np.maximum(np.abs(z) ** 2, 1e-30)
    dy = (np.conj(z) * gy).imag / den / p
    dx = (np.conj(z) * gx).imag / den / p
    return dy.astype(np.float32), dx.astype(np.float32)


def _reference_mask(shape, reference) -> np.ndarray:
    if reference is None or reference is False:
        return np.ones(shape, bool)
    if isinstance(reference, np.ndarray) and reference.dtype == bool:
        if reference.shape != shape:
            raise ValueError("Reference mask must have the image's shape.")
        return reference
    m = np.zeros(shape, bool)
    m[tuple(reference)] = True
    if not m.any():
        raise ValueError("The reference region is empty; draw it inside the image.")
    return m


def gpa(
    image,
    g1,
    g2,
    mask_radius: float,
    *,
    pixel_size: float = 1.0,
    reference=None,
    progress: ProgressCallback = None,
) -> GPAResult:
    """Geometric phase analysis (Hÿtch, Snoeck & Kilaas 1998): displacement, strain and rotation.

    For each basis vector g the image is filtered by a Gaussian mask at g, demodulated by
    ``exp(-2πi g·r)``; its phase ``P_g = -2π g·u`` gives the displacement ``u``. Phase
    gradients are computed from the complex lock-in signal (no unwrapping needed for strain);
    the mean gradient over the reference region is removed, which refines g to the reference
    lattice, so strain is relative to that region.

    Parameters
    ----------
    image : (Y, X) array
    g1, g2 : (gy, gx)
        Non-collinear reciprocal vectors in Å⁻¹ (e.g. ``Lattice.g1``, ``Lattice.g2``).
    mask_radius : float
        Gaussian mask radius in Å⁻¹ (standard deviation ``mask_radius / 2``). The strain maps'
        spatial resolution is about ``1 / mask_radius`` Å; keep it below half the distance to
        the nearest other spot.
    pixel_size : float
        Å per pixel.
    reference : tuple of slices, bool mask, None or False
        Unstrained reference region (pixels); its mean phase gradient is removed, i.e. g1, g2
        are refined to the lattice there. ``None`` (default): the whole image. ``False``: take
        g1 and g2 as the reference lattice exactly (absolute strain against known vectors).
    progress : callable, optional

    Returns
    -------
    GPAResult
    """
    from skimage.restoration import unwrap_phase

    p = _check_pixel_size(pixel_size)
    img = validate_image(image)
    g1 = _check_g(g1, "g1", p)
    g2 = _check_g(g2, "g2", p)
    G = np.array([g1, g2])
    if abs(np.linalg.det(G)) < 1e-3 * np.hypot(*g1) * np.hypot(*g2):
        raise ValueError("g1 and g2 are collinear; GPA needs two non-collinear spots.")
    mask_radius = positive(mask_radius, "mask_radius", unit="Å⁻¹", label="Mask radius")
    ref = _reference_mask(img.shape, reference)
    report(progress, 0.05)
    lockin = _LockIn(img, p)
    yy, xx = lockin.yy, lockin.xx
    sig2 = (mask_radius / 2.0) ** 2
    phases, amps, grads, gs = [], [], [], []
    for i, g in enumerate((g1, g2)):
        z = lockin(g, sig2)
        dPy, dPx = _phase_gradient(z, p)
        wgt = np.abs(z)[ref]
        if not np.all(np.isfinite(z)) or not float(np.sum(wgt)) > 0:
            raise ValueError(
                f"The image shows no fringes at g{i + 1} in the reference region (the lock-in amplitude is zero): "
                "choose a crystalline region, or spots g1, g2 that the image really has."
            )
        # mean gradient (weighted by amplitude) over the reference region = g correction
        if reference is False:
            my = mx = 0.0
        else:
            my = float(np.sum(dPy[ref] * wgt) / np.sum(wgt))
            mx = float(np.sum(dPx[ref] * wgt) / np.sum(wgt))
        dPy -= np.float32(my)
        dPx -= np.float32(mx)
        z = z * np.exp(-1j * (my * yy + mx * xx)).astype(np.complex64)
        z *= np.exp(-1j * np.angle(np.sum(z[ref]))).astype(np.complex64)  # zero mean phase in reference
        gs.append(g + np.array([my, mx]) / (2 * np.pi))
        phases.append(np.angle(z).astype(np.float32))
        amps.append(np.abs(z).astype(np.float32))
        grads.append((dPy, dPx))
        report(progress, 0.1 + 0.35 * (i + 1))
    Gr = np.array(gs)
    if not np.all(np.isfinite(Gr)) or abs(np.linalg.det(Gr)) < 1e-12 * np.abs(Gr).max() ** 2:
        raise ValueError("g1 and g2 refined on the reference region became collinear; choose another reference region.")
    Ginv = np.linalg.inv(Gr)  # u = -(1/2π) Ginv @ (P1, P2)
    k = -1.0 / (2 * np.pi)
    duy_dy = k * (Ginv[0, 0] * grads[0][0] + Ginv[0, 1] * grads[1][0])
    duy_dx = k * (Ginv[0, 0] * grads[0][1] + Ginv[0, 1] * grads[1][1])
    dux_dy = k * (Ginv[1, 0] * grads[0][0] + Ginv[1, 1] * grads[1][0])
    dux_dx = k * (Ginv[1, 0] * grads[0][1] + Ginv[1, 1] * grads[1][1])
    exx = dux_dx.astype(np.float32)
    eyy = duy_dy.astype(np.float32)
    exy = (0.5 * (dux_dy + duy_dx)).astype(np.float32)
    rot = np.degrees(0.5 * (dux_dy - duy_dx)).astype(np.float32)
    uw = [unwrap_phase(ph.astype(np.float64)) for ph in phases]
    uy = (k * (Ginv[0, 0] * uw[0] + Ginv[0, 1] * uw[1])).astype(np.float32)
    ux = (k * (Ginv[1, 0] * uw[0] + Ginv[1, 1] * uw[1])).astype(np.float32)
    report(progress, 1.0)
    return GPAResult(phases[0], phases[1], amps[0], amps[1], uy, ux, exx, eyy, exy, rot, Gr[0], Gr[1])


# ------------------------------------------------------------------------------------------------
# PLD
# ------------------------------------------------------------------------------------------------
@dataclass
class PLDResult:
    """Periodic-lattice-displacement maps.

    Attributes
    ----------
    amplitude : (Y, X) float32
        PLD amplitude |A| in Å (the displacement is ``A sin(2π q·r + φ)``).
    direction : (Y, X) float32
        Direction of A in degrees, counter-clockwise on screen from +X, modulo 180.
    phase : (Y, X) float32
        Modulation phase φ in radians.
    ay, ax : (Y, X) float32
        Components of A in Å (sign fixed by the choice of φ).
    """

    amplitude: np.ndarray
    direction: np.ndarray
    phase: np.ndarray
    ay: np.ndarray
    ax: np.ndarray


def pld_map(
    image,
    q,
    *,
    lattice: tuple,
    pixel_size: float = 1.0,
    mask_radius: float | None = None,
    progress: ProgressCallback = None,
) -> PLDResult:
    """Map the amplitude and direction of a periodic lattice displacement from its satellites.

    A displacement ``u(r) = A sin(2π q·r + φ)`` puts satellites at ``G ± q`` around each Bragg
    spot G with complex amplitude ``∓π (G·A) e^{±iφ}`` relative to the Bragg spot (first order
    in 2πG·A, as in the lock-in analysis of Savitzky et al. 2017). Lock-in images of G, G+q
    and G-q give, per pixel, ``z_G = -π (G·A) e^{iφ}`` for several G; the common phase φ and
    the least-squares vector A follow. The Bessel-function ratio ``J1/J0`` is used instead of
    the linear term, so amplitudes stay right up to 2πG·A ≈ 1.

    Parameters
    ----------
    image : (Y, X) array
    q : (qy, qx)
        Modulation vector in Å⁻¹ (e.g. ``Lattice.q_vector((1/3, 0))``).
    lattice : (g1, g2)
        Reciprocal basis in Å⁻¹. Bragg spots g1, g2, g1+g2, g1-g2 and their negatives are used.
    pixel_size : float
        Å per pixel.
    mask_radius : float, optional
        Gaussian mask radius in Å⁻¹ (standard deviation ``mask_radius / 2``); default |q| / 2.

    Returns
    -------
    PLDResult

    References
    ----------
    B. H. Savitzky et al., "Bending and breaking of stripes in a charge ordered manganite",
    Nat. Commun. 8, 1883 (2017).
    """
    from scipy.special import j0, j1

    p = _check_pixel_size(pixel_size)
    img = validate_image(image)
    q = _check_g(q, "q", p)
    try:
        g1, g2 = lattice
    except (TypeError, ValueError):
        raise ValueError("lattice must be the reciprocal basis (g1, g2) in Å⁻¹.") from None
    g1, g2 = _check_g(g1, "lattice g1", p), _check_g(g2, "lattice g2", p)
    qa = float(np.hypot(*q))
    mask_radius = positive(mask_radius, "mask_radius", unit="Å⁻¹", allow_none=True, label="Mask radius")
    r = float(mask_radius) if mask_radius else qa / 2.0
    nyq = 0.5 / p
    Gs = [G for G in (g1, g2, g1 + g2, g1 - g2) if np.max(np.abs(G) + np.abs(q)) < nyq * 0.98]
    if len(Gs) < 2:
        raise ValueError(
            "Too few Bragg spots inside Nyquist for a PLD map: the lattice (g1, g2) plus q must stay inside "
            f"{nyq:.4g} Å⁻¹ (pixel size {p:g} Å)."
        )
    lockin = _LockIn(img, p)
    sig2 = (r / 2.0) ** 2
    zs = []
    for i, G in enumerate(Gs):
        hG = lockin(G, sig2)
        hp = lockin(G + q, sig2)
        hm = lockin(G - q, sig2)
        # each lock-in is demodulated by its own carrier, so hp / hG = c+ and hm / hG = c-
        den = np.abs(hG) ** 2
        eps = 1e-3 * float(np.mean(den))
        if not eps > 0 or not np.isfinite(eps):
            raise ValueError(
                f"The image has no signal at the Bragg spot ({G[0]:.3g}, {G[1]:.3g}) Å⁻¹ of the lattice: choose a "
                "crystalline region, or the lattice (g1, g2) of this image."
            )
        cp = hp * np.conj(hG) / (den + eps)
        cm = hm * np.conj(hG) / (den + eps)
        zs.append(0.5 * (cp - np.conj(cm)))
        report(progress, 0.8 * (i + 1) / len(Gs))
    Z = np.array(zs)  # (nG, Y, X), z_G = -R(G·A) e^{iφ}, R = J1/J0 ≈ π G·A
    phi = 0.5 * np.angle(np.sum(Z**2, axis=0))
    a = np.real(Z * np.exp(-1j * phi)[None])  # = -J1(x)/J0(x), x = 2π G·A
    # invert t = J1(x)/J0(x) on |x| < 1.5 through a table (monotonic there)
    xt = np.linspace(-1.5, 1.5, 601)
    tt = j1(xt) / j0(xt)
    x = np.interp(-a, tt, xt)  # = 2π G·A
    M = 2 * np.pi * np.array(Gs)  # x = M @ A
    pinv = np.linalg.pinv(M)  # (2, nG)
    A = np.tensordot(pinv, x, axes=(1, 0))  # (2, Y, X): (Ay, Ax)
    ay, ax = A[0].astype(np.float32), A[1].astype(np.float32)
    amp = np.hypot(ay, ax).astype(np.float32)
    direction = (np.degrees(np.arctan2(-ay, ax)) % 180.0).astype(np.float32)
    report(progress, 1.0)
    return PLDResult(amp, direction, phi.astype(np.float32), ay, ax)
