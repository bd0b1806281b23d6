"""Low-loss EELS: zero-loss peak (ZLP) alignment, thickness, plural-scattering removal.

- :func:`zlp_positions` / :func:`align_zlp`: the ZLP centre of every pixel (sub-channel, from a
  weighted parabola through the log counts of its top half: exact for a Gaussian peak) and the
  spectra shifted so that it sits at 0 eV (energy drift across the scan removed);
- :func:`mean_free_path`: inelastic mean free path λ after Iakoubovskii et al. (2008, with
  convergence and collection angles) or Malis et al. (1988);
- :func:`thickness_map`: t/λ = ln(I_t / I_0) (log-ratio) and t = λ · t/λ;
- :func:`fourier_log_deconvolve`: single-scattering distribution from a low-loss spectrum
  (Egerton 2011, sec. 4.2.1), reconvolved with the ZLP (or a Gaussian) to keep the noise down;
- :func:`fourier_ratio_deconvolve`: a core-loss edge freed of plural scattering by the
  low-loss spectrum of the same pixel (sec. 4.2.2), reconvolved with a Gaussian.

Spectra are ``(..., E)``; a spectrum image ``(Y, X, E)`` that is a memory map or a dask array is
processed band by band (:func:`napari_cryomat.core.spectral.map_si_blocks`).
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.core import spectral as sp
from napari_cryomat.core._progress import ProgressCallback, sub_progress
from napari_cryomat.core._validate import check_memory, choice, nonnegative, number, positive

__all__ = [
    "zlp_positions",
    "align_zlp",
    "mean_free_path",
    "thickness_map",
    "zero_loss_parameters",
    "fourier_log_deconvolve",
    "fourier_ratio_deconvolve",
]


def _spectra(si, name: str = "spectra (si)"):
    """Validate ``si`` (..., E) without loading a lazy 3D SI."""
    nd = getattr(si, "ndim", np.ndim(si))
    if nd == 3:
        sp.check_spectrum_image(si, lazy=True, name=name)
        return si
    if nd not in (1, 2):
        raise ValueError(f"The {name} must be one spectrum (E,), spectra (N, E) or an SI (Y, X, E); got {nd} axes.")
    arr = np.asarray(si)
    sp.check_counts(arr, what=name, tolerance=1e12)
    if arr.shape[-1] < 4:
        raise ValueError(f"The {name} has {arr.shape[-1]} channels; at least 4 are needed.")
    return arr


def _low_loss(si, energy):
    """Validated (si, energy) of low-loss spectra: the axis must hold the zero-loss peak at 0 eV."""
    si = _spectra(si, "low-loss spectra (si)")
    energy = sp.check_energy_axis(energy, np.shape(si)[-1])
    if not energy[0] <= 0.0 <= energy[-1]:
        raise ValueError(
            f"The low-loss spectrum ({energy[0]:g}–{energy[-1]:g} eV) does not contain the zero-loss peak at "
            "0 eV; pick the low-loss SI (or align its ZLP first)."
        )
    return si, energy


def _per_pixel(fn, si, *, max_bytes: int, progress: ProgressCallback):
    """``fn`` over (..., E): band by band for a 3D SI, at once otherwise."""
    if np.ndim(si) == 3:
        return sp.map_si_blocks(fn, si, max_bytes=max_bytes, progress=progress)
    return fn(np.asarray(si, dtype=np.float32))


def _finite_block(block: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(block)):
        raise ValueError(f"The {what} contains NaN or inf values; replace them first.")


def _zlp_centre(block: np.ndarray, energy: np.ndarray, search: slice, half_width: int) -> np.ndarray:
    """ZLP centre (eV) of every spectrum in ``block`` (..., E): the maximum within ``search``,
    refined by a weighted least-squares parabola through the log counts of the ``2 half_width + 1``
    channels around it (exact for a Gaussian peak; weights = counts, the inverse variance of
    log counts under Poisson noise)."""
    _finite_block(block, "low-loss spectra (si)")
    part = block[..., search].reshape(-1, search.stop - search.start)
    h = int(min(half_width, (part.shape[-1] - 1) // 2))
    k = np.clip(np.argmax(part, axis=-1), h, part.shape[-1] - 1 - h)
    offsets = np.arange(-h, h + 1)
    y = np.take_along_axis(part, k[:, None] + offsets[None, :], axis=-1).astype(np.float64)
    w = np.maximum(y, 0.5)
    ly = np.log(w)
    x = offsets.astype(np.float64)
    # weighted normal equations of ly = c0 + c1 x + c2 x², per spectrum
    s = [(w * x**p).sum(axis=-1) for p in range(5)]
    t = [(w * ly * x**p).sum(axis=-1) for p in range(3)]
    m = np.stack([np.stack([s[0], s[1], s[2]], -1), np.stack([s[1], s[2], s[3]], -1),
                  np.stack([s[2], s[3], s[4]], -1)], -2)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.linalg.solve(m + 1e-12 * np.eye(3), np.stack(t, -1)[..., None])[..., 0]
        frac = np.where(c[:, 2] < 0, -c[:, 1] / (2 * c[:, 2]), 0.0)
    frac = np.clip(np.nan_to_num(frac), -h - 0.5, h + 0.5) if h else np.zeros_like(frac)
    step = float(energy[1] - energy[0])
    return (energy[search][k] + frac * step).reshape(block.shape[:-1])


def _half_width(si, energy: np.ndarray, search: slice) -> int:
    """Channels either side of the ZLP maximum used for its centre: half the FWHM of the first
    row's summed spectrum (the same for every band, so band-by-band equals all-at-once)."""
    first = np.asarray(si[:1] if np.ndim(si) > 1 else si, dtype=np.float64)
    first = np.asarray(first.compute() if hasattr(first, "compute") else first).reshape(-1, energy.size).sum(0)
    fwhm = _fwhm(energy[search], first[search])
    return int(np.clip(round(0.5 * fwhm / (energy[1] - energy[0])), 1, 50))


def _search_slice(energy: np.ndarray, search_window) -> slice:
    if search_window is None:
        return slice(0, energy.size)
    return sp.window_slice(energy, search_window, what="ZLP search window (search_window)")


def zlp_positions(
    si,
    *,
    energy,
    search_window=None,
    max_bytes: int = sp.CHUNK_BYTES,
    progress: ProgressCallback = None,
) -> np.ndarray:
    """Energy (eV) of the zero-loss peak's centre in every spectrum of ``si`` (..., E).

    ``search_window`` (start, stop) in eV limits where the maximum is looked for (default: the
    whole spectrum; give it when a strong plasmon may outshine the ZLP).
    """
    si = _spectra(si, "low-loss spectra (si)")
    energy = sp.check_energy_axis(energy, np.shape(si)[-1])
    search = _search_slice(energy, search_window)
    if search.stop - search.start < 3:
        raise ValueError("The ZLP search window (search_window) must hold at least 3 channels; widen it.")
    h = _half_width(si, energy, search)
    return _per_pixel(lambda b: _zlp_centre(b, energy, search, h).astype(np.float32), si,
                      max_bytes=max_bytes, progress=progress)


def _shift_block(block: np.ndarray, shift_channels: np.ndarray) -> np.ndarray:
    """``out[..., i] = block[..., i + s]`` with linear interpolation; 0 beyond the recorded range.
    Whole-channel shifts are copied per distinct value (few: the drift spans a few channels),
    then neighbours are blended by the fractional part."""
    n = block.shape[-1]
    flat = block.reshape(-1, n)
    s = shift_channels.reshape(-1).astype(np.float64)
    k = np.floor(s).astype(np.int64)
    f = (s - k).astype(np.float32)[:, None]
    a = np.zeros((flat.shape[0], n + 1), np.float32)  # a[:, i] = block[:, i + k], one extra channel
    for kk in np.unique(k):
        rows = np.flatnonzero(k == kk)
        lo, hi = max(0, -kk), min(n + 1, n - kk)
        if hi > lo:
            a[rows, lo:hi] = flat[rows, lo + kk : hi + kk]
    out = a[:, :n] * (1 - f) + a[:, 1:] * f
    return out.reshape(block.shape)


def align_zlp(
    si,
    *,
    energy,
    search_window=None,
    out=None,
    max_bytes: int = sp.CHUNK_BYTES,
    progress: ProgressCallback = None,
):
    """Shift every spectrum so that its ZLP centre is at 0 eV (energy drift across the scan).

    Parameters
    ----------
    si : array (..., E)
        Low-loss spectra (numpy, memory map or dask for an SI).
    energy : array (E,)
        Channel energies, eV; the aligned spectra keep this axis.
    search_window : (float, float), optional
        Where to look for the ZLP maximum, eV.
    out : array (..., E), optional
        Where to write the aligned spectra (e.g. ``numpy.lib.format.open_memmap`` for an SI larger
        than RAM); default a new float32 array.

    Returns
    -------
    aligned : float32 array (..., E) (``out`` when given), channels shifted in from beyond the
    recorded range are 0;
    shifts : float32 array (...), the ZLP centres found (eV) before alignment.
    """
    si = _spectra(si, "low-loss spectra (si)")
    energy = sp.check_energy_axis(energy, np.shape(si)[-1])
    search = _search_slice(energy, search_window)
    step = float(energy[1] - energy[0])
    shape = tuple(np.shape(si))
    if out is None:
        check_memory(float(np.prod(shape)) * 4, "si", "the aligned spectra (give out= a memory map)")
        out = np.empty(shape, np.float32)
    elif tuple(np.shape(out)) != shape:
        raise ValueError(f"out must have the shape of si {shape}; got {tuple(np.shape(out))}.")
    h = _half_width(si, energy, search)
    if len(shape) != 3:
        block = np.asarray(si, dtype=np.float32)
        centre = _zlp_centre(block, energy, search, h)
        out[...] = _shift_block(block, centre / step)
        return out, centre.astype(np.float32)
    shifts = np.empty(shape[:2], np.float32)
    for rows, block in sp.iter_si_chunks(si, max_bytes=max_bytes, progress=progress):
        centre = _zlp_centre(block, energy, search, h)
        out[rows] = _shift_block(block, centre / step)
        shifts[rows] = centre
    return out, shifts


def mean_free_path(
    *,
    e0: float,
    beta: float,
    alpha: float = 0.0,
    density: float | None = None,
    zeff: float | None = None,
    method: str = "iakoubovskii",
) -> float:
    """Inelastic mean free path λ in nm.

    ``method="iakoubovskii"`` (needs ``density`` in g/cm³): Iakoubovskii et al., Microsc. Res.
    Tech. 71 (2008) 626, eq. 9, with convergence ``alpha`` and collection ``beta`` (mrad):
    ``1/λ = 11 ρ^0.3 / (200 F E0) · ln[(α²+β²+2θE²+|α²−β²|) / (α²+β²+2θC²+|α²−β²|) · θC²/θE²]``,
    ``θE = 5.5 ρ^0.3 / (F E0)``, ``θC = 20`` mrad, ``F = (1 + E0/1022) / (1 + E0/511)²``.

    ``method="malis"`` (needs ``zeff``): Malis et al., J. Electron Microsc. Tech. 8 (1988) 193:
    ``λ = 106 F E0 / (Em ln(2 β E0 / Em))`` with ``Em = 7.6 Zeff^0.36`` eV (no convergence term).
    ``e0`` in keV.
    """
    method = choice(method, "method", ("iakoubovskii", "malis"))
    e0 = positive(e0, "e0", unit="keV", high=5000.0)
    beta = positive(beta, "beta", unit="mrad", high=1000.0)
    alpha = nonnegative(alpha, "alpha", unit="mrad", high=1000.0)
    f = (1 + e0 / 1022.0) / (1 + e0 / 511.0) ** 2
    if method == "malis":
        if zeff is None:
            raise ValueError("Malis' formula needs the effective atomic number zeff (e.g. 6 for carbon).")
        zeff = positive(zeff, "zeff", high=120.0)
        em = 7.6 * zeff**0.36
        arg = 2 * beta * e0 / em
        if arg <= 1:
            raise ValueError(f"beta {beta:g} mrad is too small for Malis' formula at e0 {e0:g} keV (log < 0).")
        return float(106 * f * e0 / (em * np.log(arg)))
    if density is None:
        raise ValueError("Iakoubovskii's formula needs the density in g/cm³ (density), e.g. 2.2 for carbon.")
    density = positive(density, "density", unit="g/cm³", high=30.0)
    theta_e = 5.5 * density**0.3 / (f * e0)
    theta_c = 20.0
    d = abs(alpha**2 - beta**2)
    num = alpha**2 + beta**2 + 2 * theta_e**2 + d
    den = alpha**2 + beta**2 + 2 * theta_c**2 + d
    inv = 11 * density**0.3 / (200 * f * e0) * np.log(num / den * theta_c**2 / theta_e**2)
    if inv <= 0:
        raise ValueError("The collection angles (alpha, beta) are too small for Iakoubovskii's formula.")
    return float(1.0 / inv)


def _total(si, energy: np.ndarray, progress: ProgressCallback = None) -> np.ndarray:
    """Sum spectrum of (..., E) spectra, band by band for a 3D SI."""
    if np.ndim(si) == 3:
        return sp.sum_spectrum(si, progress=progress)
    return np.asarray(si).reshape(-1, energy.size).sum(axis=0, dtype=np.float64)


def _zlp_end(energy: np.ndarray, total: np.ndarray) -> float:
    """First minimum after the ZLP maximum of a (summed) spectrum: the ZLP/plasmon valley."""
    from scipy.ndimage import uniform_filter1d

    zone = np.flatnonzero((energy > -20) & (energy < 20))
    if zone.size == 0:
        raise ValueError("The spectrum has no channel within ±20 eV of 0: it holds no zero-loss peak.")
    i = int(zone[np.argmax(total[zone])]) + 1
    sm = uniform_filter1d(total, 3)
    while i < sm.size - 1 and sm[i + 1] < sm[i]:
        i += 1
    return float(energy[i])


def zero_loss_parameters(
    si,
    *,
    energy,
    progress: ProgressCallback = None,
) -> tuple[float, float]:
    """``(zlp_end, fwhm)`` in eV of the zero-loss peak of the sum of ``si`` (one spectrum, (N, E) spectra or
    a (Y, X, E) SI, summed band by band when lazy).

    ``zlp_end`` is the first minimum after the ZLP maximum (the ZLP/plasmon valley), ``fwhm`` the peak's full
    width at half maximum: what :func:`thickness_map`, :func:`fourier_log_deconvolve` and
    :func:`fourier_ratio_deconvolve` take when not told, computed once so that a band-by-band run uses the
    same values for every band.
    """
    si, energy = _low_loss(si, energy)
    total = _total(si, energy, progress)
    if not np.all(np.isfinite(total)):
        raise ValueError("The low-loss spectra (si) contain NaN or inf values; replace them first.")
    return _zlp_end(energy, total), _fwhm(energy, total)


def thickness_map(
    si,
    *,
    energy,
    zlp_threshold: float | None = None,
    mean_free_path_nm: float | None = None,
    max_bytes: int = sp.CHUNK_BYTES,
    progress: ProgressCallback = None,
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """t/λ = ln(I_t / I_0) per pixel (log-ratio), and t in nm when ``mean_free_path_nm`` is given
    (from :func:`mean_free_path`).

    ``zlp_threshold`` (eV) ends the zero-loss integral; default: the first minimum after the ZLP
    of the sum spectrum. Works band by band on a lazy SI.
    Returns ``(t_over_lambda, t_nm or None, zlp_threshold)``.
    """
    si, energy = _low_loss(si, energy)
    if mean_free_path_nm is not None:
        mean_free_path_nm = positive(mean_free_path_nm, "mean_free_path_nm", unit="nm", high=1e6)
    if zlp_threshold is None:
        zlp_threshold = _zlp_end(energy, _total(si, energy, sub_progress(progress, 0.0, 0.5)))
        progress = sub_progress(progress, 0.5, 1.0)
    zlp_threshold = number(zlp_threshold, "zlp_threshold", low=float(energy[1]), high=float(energy[-1]), unit="eV")
    i_end = int(np.searchsorted(energy, zlp_threshold))

    def block_t(block):
        _finite_block(block, "low-loss spectra (si)")
        i0 = block[..., :i_end].sum(axis=-1, dtype=np.float32).astype(np.float64)
        it = i0 + block[..., i_end:].sum(axis=-1, dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(i0 > 0, np.log(it / np.maximum(i0, 1e-12)), np.nan).astype(np.float32)

    t = _per_pixel(block_t, si, max_bytes=max_bytes, progress=progress)
    t_nm = None if mean_free_path_nm is None else (t * np.float32(mean_free_path_nm)).astype(np.float32)
    return t, t_nm, float(zlp_threshold)


def _fft_size(n: int) -> int:
    from scipy.fft import next_fast_len

    return int(next_fast_len(2 * n))


def _taper(block: np.ndarray, n_pad: int) -> np.ndarray:
    """Spectra padded to ``n_pad`` channels, the tail brought smoothly to 0 by a cosine over
    the padding (no step at the wrap-around of the FFT)."""
    n = block.shape[-1]
    out = np.zeros(block.shape[:-1] + (n_pad,), np.float32)
    out[..., :n] = block
    m = n_pad - n
    if m > 0:
        ramp = 0.5 * (1 + np.cos(np.pi * np.arange(1, m + 1) / (m + 1)))
        out[..., n:] = block[..., -1:] * ramp
    return out


def _gaussian_ft(n_pad: int, step: float, fwhm: float) -> np.ndarray:
    """FT of a unit-area Gaussian of ``fwhm`` eV centred at channel 0, length n_pad//2+1."""
    nu = np.fft.rfftfreq(n_pad, d=step)
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return np.exp(-2 * (np.pi * sigma * nu) ** 2)


def fourier_log_deconvolve(
    si,
    *,
    energy,
    zlp_threshold: float | None = None,
    fwhm: float | None = None,
    max_bytes: int = sp.CHUNK_BYTES,
    progress: ProgressCallback = None,
) -> np.ndarray:
    """Single-scattering distribution of low-loss spectra by Fourier-log deconvolution.

    With ``j`` and ``z`` the Fourier transforms of the spectrum and of its zero-loss peak
    (channels below ``zlp_threshold``), ``j = z exp(s / I0)`` for Poisson plural scattering,
    so ``S = FT⁻¹[z ln(j / z)]`` (the SSD reconvolved with the measured ZLP) or, with ``fwhm``
    (eV), ``FT⁻¹[I0 G ln(j / z)]`` reconvolved with a unit Gaussian. The ZLP must be at 0 eV
    (align it first); the result has the spectra's shape and energy axis, ZLP removed.
    """
    si = _spectra(si, "low-loss spectra (si)")
    energy = sp.check_energy_axis(energy, np.shape(si)[-1])
    if not energy[0] <= 0.0 <= energy[-1]:
        raise ValueError("Fourier-log deconvolution needs the zero-loss peak at 0 eV inside the energy axis.")
    step = float(energy[1] - energy[0])
    if fwhm is not None:
        fwhm = positive(fwhm, "fwhm", unit="eV", high=1e4)
    if zlp_threshold is None:
        zlp_threshold = _zlp_end(energy, _total(si, energy, sub_progress(progress, 0.0, 0.2)))
        progress = sub_progress(progress, 0.2, 1.0)
    zlp_threshold = number(zlp_threshold, "zlp_threshold", low=float(energy[1]), high=float(energy[-1]), unit="eV")
    i_end = int(np.searchsorted(energy, zlp_threshold))
    i_zero = int(np.argmin(np.abs(energy)))
    n = energy.size
    n_pad = _fft_size(n)
    g = None if fwhm is None else _gaussian_ft(n_pad, step, fwhm)

    def block_fl(block):
        from scipy import fft as sfft

        _finite_block(block, "low-loss spectra (si)")
        spec = np.roll(_taper(block, n_pad), -i_zero, axis=-1)  # 0 eV at channel 0
        zl = np.zeros_like(spec)
        zl[..., : i_end - i_zero] = spec[..., : i_end - i_zero]
        if i_zero:
            zl[..., -i_zero:] = spec[..., -i_zero:]  # the ZLP's negative-energy half
        j, z = sfft.rfft(spec, axis=-1, workers=-1), sfft.rfft(zl, axis=-1, workers=-1)
        del spec, zl
        i0 = z[..., :1].real
        with np.errstate(divide="ignore", invalid="ignore"):
            lg = np.log(j / z)
        lg[~np.isfinite(lg)] = 0.0
        lg *= z if g is None else i0 * g
        s = sfft.irfft(lg, n=n_pad, axis=-1, workers=-1)
        return np.roll(s, i_zero, axis=-1)[..., :n].astype(np.float32)

    return _per_pixel(block_fl, si, max_bytes=max_bytes, progress=progress)


def fourier_ratio_deconvolve(
    core_loss,
    low_loss,
    *,
    energy_low_loss,
    fwhm: float | None = None,
    zlp_threshold: float | None = None,
) -> np.ndarray:
    """A core-loss edge freed of plural scattering with the low-loss spectrum of the same pixels.

    ``core_loss`` (..., E) is the background-subtracted edge (any energy offset, same dispersion
    as ``low_loss`` (..., E_ll), whose ZLP is at 0 eV on ``energy_low_loss``). The core-loss
    spectrum is the edge's single-scattering distribution convolved with the low-loss spectrum
    divided by I0, so ``K = FT⁻¹[I0 G c / l]`` with G a unit Gaussian of ``fwhm`` eV (default:
    the ZLP's FWHM) that keeps noise bounded. Returns float32 of ``core_loss``'s shape.
    """
    cl = np.asarray(core_loss)
    sp.check_counts(cl, what="core-loss spectra (core_loss)", tolerance=1e12)
    ll = _spectra(low_loss, "low-loss spectra (low_loss)")
    ll = np.asarray(ll, dtype=np.float64)
    try:
        e_ll = sp.check_energy_axis(energy_low_loss, ll.shape[-1])
    except ValueError as exc:
        raise ValueError(f"energy_low_loss: {exc}") from None
    if cl.ndim < 1 or cl.shape[:-1] != ll.shape[:-1]:
        raise ValueError(f"core_loss {cl.shape} and low_loss {ll.shape} must have the same leading (pixel) shape.")
    if cl.shape[-1] < 4:
        raise ValueError("The core-loss spectra (core_loss) need at least 4 channels.")
    if not e_ll[0] <= 0.0 <= e_ll[-1]:
        raise ValueError("The low-loss spectra (low_loss) must contain the zero-loss peak at 0 eV.")
    step = float(e_ll[1] - e_ll[0])
    total = ll.reshape(-1, e_ll.size).sum(0)
    if zlp_threshold is None:
        zlp_threshold = _zlp_end(e_ll, total)
    zlp_threshold = number(zlp_threshold, "zlp_threshold", low=float(e_ll[1]), high=float(e_ll[-1]), unit="eV")
    i_zero = int(np.argmin(np.abs(e_ll)))
    i_end = int(np.searchsorted(e_ll, zlp_threshold))
    if fwhm is None:
        fwhm = _fwhm(e_ll, total)
    fwhm = positive(fwhm, "fwhm", unit="eV", high=1e4)
    n_pad = _fft_size(max(cl.shape[-1], ll.shape[-1]))
    lp = np.roll(_taper(ll, n_pad), -i_zero, axis=-1)
    i0 = lp[..., : i_end - i_zero].sum(axis=-1, keepdims=True) + (lp[..., -i_zero:].sum(axis=-1, keepdims=True)
                                                                  if i_zero else 0.0)
    c = np.fft.rfft(_taper(cl.astype(np.float64), n_pad), axis=-1)
    lf = np.fft.rfft(lp, axis=-1)
    g = _gaussian_ft(n_pad, step, fwhm)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(np.abs(lf) > 0, i0 * g * c / lf, 0.0)
    return np.fft.irfft(k, n=n_pad, axis=-1)[..., : cl.shape[-1]].astype(np.float32)


def _fwhm(energy: np.ndarray, spectrum: np.ndarray) -> float:
    """FWHM (eV) of the highest peak of a spectrum, interpolated between channels."""
    k = int(np.argmax(spectrum))
    half = spectrum[k] / 2.0
    lo = k
    while lo > 0 and spectrum[lo] > half:
        lo -= 1
    hi = k
    while hi < spectrum.size - 1 and spectrum[hi] > half:
        hi += 1
    x_lo = np.interp(half, [spectrum[lo], spectrum[lo + 1]], [energy[lo], energy[lo + 1]])
    x_hi = np.interp(half, [spectrum[hi], spectrum[hi - 1]], [energy[hi], energy[hi - 1]])
    return float(max(x_hi - x_lo, energy[1] - energy[0]))
