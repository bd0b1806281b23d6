"""Beam damage: the dose a structure stands, from a dose series (a movie of one area).

Three measures against cumulative dose, each with its usual threshold:

- **FRC** of two statistically independent halves (even and odd frames) of the frames around a
  dose: the spatial frequencies at which the structure present at that dose rises above noise.
  Resolution where it falls below 0.5 and 0.143.
- **FRPR**, the Fourier ring phase residual of the same halves: the amplitude-weighted mean of the
  absolute phase difference per ring, 0° for identical images and 90° on average for unrelated
  ones (each ring's expected spread for unrelated images is returned). Resolution where it rises
  above 45°.
- **Bragg spot intensities** frame by frame (background-subtracted power at the spots), grouped
  into shells of equal spacing, each fitted with ``I = I0 exp(-D / Dc)``: the critical dose ``Dc``
  (intensity down to 1/e) with its confidence interval, per spacing.

Doses are in e/Å² when the dose per frame is known; otherwise every dose axis counts frames (and
``dose_unit`` says so). Frames must be aligned first (Drift correction): drift would read as damage.
No Qt, no napari.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft
from scipy import optimize, stats

from napari_cryomat.core._progress import ProgressCallback, report
from napari_cryomat.core._validate import check_memory, fraction, integer, positive, real_array, vector

__all__ = [
    "RingComparison",
    "CriticalDose",
    "BraggShell",
    "DoseSeries",
    "ring_comparison",
    "frpr",
    "fit_critical_dose",
    "dose_series",
    "dose_budget",
]

#: Standard deviation of |Δφ| for uniformly random phases, degrees (uniform on [0°, 180°]).
RANDOM_PHASE_SPREAD = 180.0 / np.sqrt(12.0)
CRITERIA = ("FRC 0.5", "FRC 0.143", "FRPR 45°")


@dataclass
class RingComparison:
    """FRC and FRPR of two images, ring by ring.

    ``frequency`` (K,) 1/Å at the ring centres; ``frc`` (K,); ``frpr`` (K,) degrees;
    ``random_spread`` (K,) degrees: the standard deviation of the FRPR of two unrelated images in
    that ring (its mean is 90°), from the ring's effective number of Fourier coefficients.
    """

    frequency: np.ndarray
    frc: np.ndarray
    frpr: np.ndarray
    random_spread: np.ndarray


def _rings(shape: tuple[int, int], pixel_size: float, n_rings: int):
    """Ring index of each rfft2 coefficient and the ring centres in 1/Å (DC ring dropped later)."""
    ny, nx = shape
    fy = sfft.fftfreq(ny)[:, None]
    fx = sfft.rfftfreq(nx)[None, :]
    radius = np.sqrt(fy**2 + fx**2)  # cycles/px, 0.5 at Nyquist
    index = np.minimum((radius / 0.5 * n_rings).astype(np.int64), n_rings)
    # an rfft coefficient off the kx = 0 and Nyquist columns stands for itself and its Friedel mate
    weight = np.full(radius.shape, 2.0)
    weight[:, 0] = 1.0
    if nx % 2 == 0:
        weight[:, -1] = 1.0
    centres = (np.arange(n_rings + 1) + 0.5) / n_rings * 0.5 / pixel_size
    return index, weight, centres


def _tukey(n: int, taper: float = 0.1) -> np.ndarray:
    w = np.ones(n)
    m = max(1, int(taper * n / 2))
    ramp = 0.5 * (1 - np.cos(np.pi * np.arange(m) / m))
    w[:m], w[n - m:] = ramp, ramp[::-1]
    return w


def _spectrum(image: np.ndarray) -> np.ndarray:
    ny, nx = image.shape
    window = np.outer(_tukey(ny), _tukey(nx))
    return sfft.rfft2((image - image.mean()) * window, workers=-1)


def _compare_spectra(fa, fb, index, weight, n_rings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = index.ravel()
    cross = fa * np.conj(fb)
    num = np.bincount(idx, (weight * cross.real).ravel(), n_rings + 1)
    pa = np.bincount(idx, (weight * (fa.real**2 + fa.imag**2)).ravel(), n_rings + 1)
    pb = np.bincount(idx, (weight * (fb.real**2 + fb.imag**2)).ravel(), n_rings + 1)
    frc = num / np.sqrt(np.maximum(pa * pb, 1e-300))
    # FRPR: |Δφ| weighted by |Fa||Fb| (the weight of the coefficient in the cross-correlation)
    amp = np.abs(cross)
    dphi = np.degrees(np.abs(np.angle(cross)))  # in [0°, 180°]
    wsum = np.bincount(idx, amp.ravel(), n_rings + 1)
    w2sum = np.bincount(idx, (amp**2).ravel(), n_rings + 1)
    frpr = np.bincount(idx, (amp * dphi).ravel(), n_rings + 1) / np.maximum(wsum, 1e-300)
    n_eff = wsum**2 / np.maximum(w2sum, 1e-300)
    spread = RANDOM_PHASE_SPREAD / np.sqrt(np.maximum(n_eff, 1.0))
    return frc, frpr, spread


def ring_comparison(a, b, *, pixel_size: float = 1.0, n_rings: int | None = None) -> RingComparison:
    """FRC and FRPR of two images of the same area, with the FRPR's spread for unrelated images.

    Parameters
    ----------
    a, b : (Y, X) arrays
        Two images of the same area, e.g. the even- and odd-frame sums of a movie, or the two
        halves of :func:`napari_cryomat.core.denoise.split_counts`.
    pixel_size : float
        Å per pixel.
    n_rings : int, optional
        Number of rings from 0 to Nyquist; default half the smaller side.
    """
    a = real_array(a, "a", ndim=2, min_size=8, copies=6, what="first image")
    b = real_array(b, "b", ndim=2, min_size=8, copies=6, what="second image")
    if a.shape != b.shape:
        raise ValueError(f"a and b must be images of the same size; got {a.shape} and {b.shape}.")
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    n_rings = integer(n_rings, "n_rings", low=2, high=max(2, min(a.shape) // 2), allow_none=True)
    n_rings = n_rings or min(a.shape) // 2
    index, weight, centres = _rings(a.shape, pixel_size, n_rings)
    frc, phase, spread = _compare_spectra(_spectrum(a), _spectrum(b), index, weight, n_rings)
    keep = slice(1, n_rings)  # drop the DC ring and the corner ring beyond Nyquist
    return RingComparison(centres[keep], frc[keep], phase[keep], spread[keep])


def frpr(a, b, *, pixel_size: float = 1.0, n_rings: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring phase residual of two images: (frequency 1/Å, residual in degrees) per ring.

    The residual of a ring is the mean of ``|φa - φb|`` (wrapped to [0°, 180°]) over its Fourier
    coefficients, weighted by ``|Fa||Fb|``: 0° for identical images, 90° on average for unrelated
    ones (see :func:`ring_comparison` for the spread and for the FRC of the same rings).
    """
    rc = ring_comparison(a, b, pixel_size=pixel_size, n_rings=n_rings)
    return rc.frequency, rc.frpr


def _resolution(frequency: np.ndarray, curve: np.ndarray, threshold: float, *, falling: bool) -> float:
    """1/frequency at which ``curve`` first crosses ``threshold`` (downwards if ``falling``), Å.

    NaN when the first ring is already on the wrong side; the finest ring's resolution when the
    curve never crosses.
    """
    bad = curve < threshold if falling else curve > threshold
    if bad[0]:
        return float("nan")
    crossing = np.nonzero(bad)[0]
    if crossing.size == 0:
        return float(1.0 / frequency[-1])
    j = crossing[0]
    f0, f1, c0, c1 = frequency[j - 1], frequency[j], curve[j - 1], curve[j]
    fc = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0) if c0 != c1 else f1
    return float(1.0 / fc)


@dataclass
class CriticalDose:
    """Fit of ``I = I0 exp(-D / Dc)``: ``dc`` with its ``confidence`` interval [dc_low, dc_high]."""

    i0: float
    dc: float
    dc_low: float
    dc_high: float
    confidence: float
    n_points: int
    floor: float = 0.0  # dose-independent part (see fit_critical_dose)

    def curve(self, dose) -> np.ndarray:
        return self.i0 * np.exp(-np.asarray(dose, float) / self.dc) + self.floor


def fit_critical_dose(dose, intensity, *, sigma=None, confidence: float = 0.95, offset: bool = False) -> CriticalDose:
    """Least-squares fit of ``I = I0 exp(-D / Dc) + F`` with a confidence interval on ``Dc``.

    ``F`` (only with ``offset=True``) is a dose-independent floor, for spot intensities measured
    without subtracting the noise floor. ``sigma`` (the standard error of each intensity) weighs
    the fit: a spot's power is far noisier while it is strong (its variance grows with the signal
    times the noise), and an unweighted fit then both scatters more and understates its interval.

    The interval is the fit's (Student-t) interval on the decay rate ``1/Dc``, mapped to ``Dc``:
    the rate is what the data constrain linearly, and a rate interval that reaches zero means
    "no measurable decay" (``dc_high`` is then inf).

    Parameters
    ----------
    dose : (N,) array
        Cumulative dose of each measurement (e/Å², or frames).
    intensity : (N,) array
        Background-subtracted intensity (any unit).
    sigma : (N,) array, optional
        Standard error of each intensity (same unit); the interval then uses it as absolute.
    confidence : float
        Level of the interval, in (0, 1).
    """
    dose = real_array(dose, "dose", ndim=1, min_size=3, dtype=np.float64)
    intensity = real_array(intensity, "intensity", ndim=1, min_size=3, dtype=np.float64)
    if dose.size != intensity.size:
        raise ValueError(f"dose and intensity must have the same length; got {dose.size} and {intensity.size}.")
    confidence = fraction(confidence, "confidence", low_open=True, high_open=True)
    if np.ptp(dose) <= 0:
        raise ValueError("dose must span a range of doses (all values are equal).")
    if not np.any(intensity > 0):
        raise ValueError("intensity has no positive value: no Bragg signal to fit a decay to.")
    pos = intensity > 0
    if pos.sum() >= 2 and np.ptp(dose[pos]) > 0:
        slope, icpt = np.polyfit(dose[pos], np.log(intensity[pos]), 1)
        rate0, i00 = max(-slope, 1e-6 / np.ptp(dose)), float(np.exp(icpt))
    else:
        rate0, i00 = 1.0 / np.ptp(dose), float(intensity.max())
    scale = float(np.abs(intensity).max())
    if sigma is not None:
        sigma = real_array(sigma, "sigma", ndim=1, min_size=3, dtype=np.float64)
        if sigma.size != dose.size or np.any(sigma <= 0):
            raise ValueError(f"sigma must hold one standard error > 0 per dose ({dose.size}); got {sigma.size} "
                             "values or some <= 0.")

    def model(d, i0, rate, floor=0.0):
        return i0 * np.exp(-d * rate) + floor

    p0 = (i00 / scale, rate0, 0.0) if offset else (i00 / scale, rate0)
    n_params = len(p0)
    if dose.size <= n_params:
        raise ValueError(f"dose: need more than {n_params} points to fit a decay with its uncertainty; "
                         f"got {dose.size}.")
    try:
        popt, pcov = optimize.curve_fit(model, dose, intensity / scale, p0=p0, maxfev=10000,
                                        sigma=None if sigma is None else sigma / scale, absolute_sigma=False)
    except (RuntimeError, optimize.OptimizeWarning) as exc:
        raise ValueError(f"The intensities do not follow I0 exp(-D/Dc) closely enough to fit ({exc}).") from None
    i0, rate = float(popt[0]) * scale, float(popt[1])
    floor = float(popt[2]) * scale if offset else 0.0
    sd = float(np.sqrt(pcov[1, 1])) if np.isfinite(pcov[1, 1]) else np.inf
    t = stats.t.ppf(0.5 + confidence / 2, max(dose.size - n_params, 1))
    lo_rate, hi_rate = rate - t * sd, rate + t * sd
    dc = 1.0 / rate if rate > 0 else np.inf
    dc_low = 1.0 / hi_rate if hi_rate > 0 else np.inf
    dc_high = 1.0 / lo_rate if lo_rate > 0 else np.inf
    return CriticalDose(i0, dc, dc_low, dc_high, confidence, int(dose.size), floor)


@dataclass
class BraggShell:
    """Bragg spots of one spacing: their summed intensity per frame and its critical-dose fit."""

    d_spacing: float  # Å
    g: np.ndarray  # (n, 2) (gy, gx) 1/Å, one per Friedel pair
    intensity: np.ndarray  # (T,) background-subtracted power summed over the spots
    sigma: np.ndarray  # (T,) its standard error (relative: from the noise floor and the signal)
    fit: CriticalDose | None
    message: str = ""  # why there is no fit, if there is none


@dataclass
class DoseSeries:
    """Everything :func:`dose_series` measured. Point ``k`` covers frames ``starts[k]:stops[k]``."""

    dose_unit: str  # "e/Å²" or "frame"
    dose: np.ndarray  # (P,) cumulative dose at the middle of each point's frames
    starts: np.ndarray  # (P,) int
    stops: np.ndarray  # (P,) int
    frequency: np.ndarray  # (K,) 1/Å
    frc: np.ndarray  # (P, K)
    frpr: np.ndarray  # (P, K) degrees
    random_spread: np.ndarray  # (P, K) degrees: FRPR spread for unrelated halves
    resolution: dict[str, np.ndarray]  # criterion -> (P,) Å (NaN: no signal even in the first ring)
    frame_dose: np.ndarray  # (T,) dose at the middle of each frame
    shells: list[BraggShell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> tuple[list[str], list[list[float]]]:
        """Header and rows of the per-point table (dose, resolutions, shell intensities)."""
        header = ["dose_" + ("e_per_A2" if self.dose_unit == "e/Å²" else "frames"), "first_frame", "last_frame"]
        header += [f"resolution_{c.replace(' ', '_').replace('°', 'deg')}_A" for c in CRITERIA]
        header += [f"bragg_{s.d_spacing:.3f}A_intensity" for s in self.shells]
        rows = []
        for k in range(self.dose.size):
            row = [float(self.dose[k]), int(self.starts[k]), int(self.stops[k]) - 1]
            row += [float(self.resolution[c][k]) for c in CRITERIA]
            row += [float(s.intensity[self.starts[k]:self.stops[k]].mean()) for s in self.shells]
            rows.append(row)
        return header, rows


def _find_spots(image: np.ndarray, pixel_size: float, min_snr: float) -> np.ndarray:
    from napari_cryomat.core.fourier import find_peaks

    peaks = find_peaks(image, pixel_size, min_snr=min_snr, max_peaks=24)
    g = np.array([p.g for p in peaks], float).reshape(-1, 2)
    # one spot per Friedel pair: keep the upper half-plane
    upper = (g[:, 0] > 0) | ((g[:, 0] == 0) & (g[:, 1] > 0))
    return g[upper]


def _group_shells(g: np.ndarray, tolerance: float = 0.03) -> list[np.ndarray]:
    """Indices of spots grouped by |g| (relative tolerance), finest spacing last."""
    if g.size == 0:
        return []
    mag = np.hypot(g[:, 0], g[:, 1])
    order = np.argsort(mag)
    groups, current = [], [order[0]]
    for i in order[1:]:
        if mag[i] <= mag[current[0]] * (1 + tolerance):
            current.append(i)
        else:
            groups.append(np.array(current))
            current = [i]
    groups.append(np.array(current))
    return groups


class _SpotMasks:
    """Disk (spot and Friedel mate) and surrounding annulus of each spot on the full FFT grid."""

    def __init__(self, shape, pixel_size: float, g: np.ndarray):
        ny, nx = shape
        fy = sfft.fftfreq(ny, pixel_size)[:, None]
        fx = sfft.fftfreq(nx, pixel_size)[None, :]
        radius = 1.5 / (min(ny, nx) * pixel_size)  # 1.5 FFT pixels: the Hann-windowed spot's width
        self.disks, self.rings = [], []
        for gy, gx in g:
            disk = np.zeros(shape, bool)
            ring = np.zeros(shape, bool)
            for s in (1, -1):
                dist = np.hypot(fy - s * gy, fx - s * gx)
                disk |= dist <= radius
                ring |= (dist > 2 * radius) & (dist <= 4 * radius)
            self.disks.append(np.nonzero(disk))
            self.disk_size = int(disk.sum())
            self.rings.append(np.nonzero(ring & ~disk))
        self.window = np.outer(np.hanning(ny), np.hanning(nx))

    def intensities(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per spot: power in its disk minus the annulus's mean power (the noise floor ν) times the
        disk's area, and ν.

        The mean, not the median, of the annulus: noise power is exponentially distributed and its
        median is only ln 2 of its mean, which would leave a floor that mimics a surviving lattice.
        """
        f = sfft.fft2((frame - frame.mean()) * self.window, workers=-1)
        power = f.real**2 + f.imag**2
        inten, floors = [], []
        for disk, ring in zip(self.disks, self.rings):
            floor = power[ring].mean()
            inten.append(power[disk].sum() - floor * disk[0].size)
            floors.append(floor)
        return np.array(inten), np.array(floors)


def _weighted_decay_fit(dose, total, floors, disk_size, confidence, rounds: int = 3):
    """Fit ``I0 exp(-D/Dc)`` to a shell's intensities, weighted by their model variance.

    The variance of a spot's power is ``2 ν I + n ν²`` per spot (``|S + N|²`` has variance
    ``2|S|²ν + ν²`` per Fourier coefficient; ν the noise floor, n the disk's size). ``I`` is taken
    from the previous round's fit, never from the measured value: weights computed from the data
    favour the frames that fluctuated low and bias ``Dc`` low (by ~8 % in our tests).
    Returns (fit or None, sigma, message).
    """
    nu = floors.mean(axis=1)
    noise_var = disk_size * (floors**2).sum(axis=1)
    sigma = np.sqrt(noise_var)
    fit = None
    try:
        fit = fit_critical_dose(dose, total, confidence=confidence)
        for _ in range(rounds):
            predicted = np.maximum(fit.curve(dose), 0.0)
            sigma = np.sqrt(2.0 * nu * predicted + noise_var)
            fit = fit_critical_dose(dose, total, sigma=sigma, confidence=confidence)
    except ValueError as exc:
        return fit, sigma, str(exc)
    return fit, sigma, ""


def dose_series(
    frames,
    *,
    pixel_size: float,
    dose_per_frame: float | None = None,
    peaks=None,
    frames_per_point: int | None = None,
    min_snr: float = 30.0,
    confidence: float = 0.95,
    progress: ProgressCallback = None,
) -> DoseSeries:
    """FRC, FRPR and Bragg intensities against cumulative dose, and the critical dose per spacing.

    Parameters
    ----------
    frames : (T, Y, X) array (numpy, memory map or dask), aligned
        A dose series: successive exposures of the same area.
    pixel_size : float
        Å per pixel.
    dose_per_frame : float or None
        e/Å² per frame. None (unknown) keeps every dose axis in frames; ``notes`` says so.
    peaks : (n, 2) array of (gy, gx) in 1/Å, or None
        Bragg spots to follow. None finds them in the sum of the first quarter of the frames
        (spots ``min_snr`` times above the background; none found is not an error: the FRC and
        FRPR still tell the story).
    frames_per_point : int, optional
        Frames summed per dose point for the FRC and FRPR (even frames against odd ones); default
        about T/10, at least 2.
    min_snr : float
        Spot detection threshold when ``peaks`` is None.
    confidence : float
        Level of the critical-dose intervals.
    """
    shape = tuple(getattr(frames, "shape", np.shape(frames)))
    if len(shape) != 3:
        raise ValueError(f"frames must be a (T, Y, X) dose series; got shape {shape}.")
    n, ny, nx = (int(s) for s in shape)
    if n < 4:
        raise ValueError(f"frames must hold at least 4 frames to follow damage; got {n}.")
    if min(ny, nx) < 16:
        raise ValueError(f"frames of {ny}×{nx} px are too small (need at least 16×16).")
    if np.iscomplexobj(np.empty(0, getattr(frames, "dtype", np.float32))):
        raise ValueError("frames holds complex numbers; pass real intensities.")
    check_memory(ny * nx * 8 * 10, "frames", f"one {ny}×{nx} frame and its spectra")
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    dose_per_frame = positive(dose_per_frame, "dose_per_frame", unit="e/Å²", high=1e6, allow_none=True)
    frames_per_point = integer(frames_per_point, "frames_per_point", low=2, high=max(2, n // 2), allow_none=True)
    min_snr = positive(min_snr, "min_snr", high=1e9)
    confidence = fraction(confidence, "confidence", low_open=True, high_open=True)
    step = frames_per_point or max(2, round(n / 10))
    starts = np.arange(0, n - step + 1, step)
    stops = starts + step
    per_frame = dose_per_frame if dose_per_frame is not None else 1.0
    notes = [] if dose_per_frame is not None else [
        "Dose per frame unknown: doses are in frames. Enter the dose per frame (e/Å²) for a dose in e/Å²."]

    def frame(t: int) -> np.ndarray:
        f = np.asarray(frames[t], dtype=np.float64)
        if not np.all(np.isfinite(f)):
            raise ValueError(f"frames: frame {t} contains NaN or inf values; replace or crop them first.")
        return f

    n_rings = min(ny, nx) // 2
    index, weight, centres = _rings((ny, nx), pixel_size, n_rings)
    if peaks is None:
        first = sum(frame(t) for t in range(max(2, n // 4)))
        g = _find_spots(first, pixel_size, min_snr)
    else:
        table = np.asarray(peaks)
        if table.ndim != 2 or table.shape[1] != 2 or np.iscomplexobj(table):
            raise ValueError(f"peaks must be an (n, 2) table of real (gy, gx) in 1/Å; got shape {table.shape}.")
        g = np.array([vector(p, "peaks", length=2, nonzero=True, high=0.5 / pixel_size, unit="1/Å")
                      for p in table]).reshape(-1, 2)
    masks = _SpotMasks((ny, nx), pixel_size, g) if len(g) else None
    spot_power = np.zeros((n, len(g)))
    spot_floor = np.zeros((n, len(g)))
    frc, phase, spread = [], [], []
    point = 0
    halves = [np.zeros((ny, nx)), np.zeros((ny, nx))]
    for t in range(n):
        f = frame(t)
        if masks is not None:
            spot_power[t], spot_floor[t] = masks.intensities(f)
        if point < starts.size and starts[point] <= t < stops[point]:
            halves[(t - starts[point]) % 2] += f
            if t == stops[point] - 1:
                c, p, s = _compare_spectra(_spectrum(halves[0]), _spectrum(halves[1]), index, weight, n_rings)
                frc.append(c[1:n_rings]), phase.append(p[1:n_rings]), spread.append(s[1:n_rings])
                halves = [np.zeros((ny, nx)), np.zeros((ny, nx))]
                point += 1
        report(progress, (t + 1) / n)
    frequency = centres[1:n_rings]
    frc, phase, spread = np.array(frc), np.array(phase), np.array(spread)
    resolution = {
        "FRC 0.5": np.array([_resolution(frequency, c, 0.5, falling=True) for c in frc]),
        "FRC 0.143": np.array([_resolution(frequency, c, 0.143, falling=True) for c in frc]),
        "FRPR 45°": np.array([_resolution(frequency, p, 45.0, falling=False) for p in phase]),
    }
    frame_dose = (np.arange(n) + 0.5) * per_frame
    shells = []
    for members in _group_shells(g):
        total = spot_power[:, members].sum(axis=1)
        d = float(1.0 / np.mean(np.hypot(g[members, 0], g[members, 1])))
        fit, sigma, msg = _weighted_decay_fit(frame_dose, total, spot_floor[:, members], masks.disk_size,
                                              confidence)
        shells.append(BraggShell(d, g[members], total, sigma, fit, msg))
    if not len(g):
        notes.append("No Bragg spots found in the first frames: no critical dose (give the spots as peaks).")
    return DoseSeries(
        dose_unit="e/Å²" if dose_per_frame is not None else "frame",
        dose=(starts + stops) / 2.0 * per_frame,
        starts=starts,
        stops=stops,
        frequency=frequency,
        frc=frc,
        frpr=phase,
        random_spread=spread,
        resolution=resolution,
        frame_dose=frame_dose,
        shells=shells,
        notes=notes,
    )


def dose_budget(series: DoseSeries, resolution: float, *, criterion: str = "FRC 0.143") -> float:
    """The cumulative dose at which ``resolution`` (Å) is lost by ``criterion``.

    Linear interpolation between dose points of the resolution curve. Returns 0.0 if the first
    point is already worse than ``resolution`` and inf if it is never lost within the series. The
    dose unit is ``series.dose_unit``.
    """
    resolution = positive(resolution, "resolution", unit="Å")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}.")
    curve = np.where(np.isnan(series.resolution[criterion]), np.inf, series.resolution[criterion])
    lost = np.nonzero(curve > resolution)[0]
    if lost.size == 0:
        return float("inf")
    k = lost[0]
    if k == 0:
        return 0.0
    r0, r1, d0, d1 = curve[k - 1], curve[k], series.dose[k - 1], series.dose[k]
    if not np.isfinite(r1):
        return float(d1)
    return float(d0 + (resolution - r0) / (r1 - r0) * (d1 - d0))
