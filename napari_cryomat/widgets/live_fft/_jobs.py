"""The Live FFT's computations: a :class:`Region` described on the GUI thread, a pure ``compute_*``
function that reads its pixels and calls the core in a worker (no Qt, no viewer, no layer), and a
result that keeps the parameters of its run, so what is drawn is labelled from the run that made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_cryomat.core import fourier as F
from napari_cryomat.core._fourier_peaks import _fmt_frac
from napari_cryomat.core._progress import ProgressCallback, report

__all__ = [
    "BraggRun",
    "Detection",
    "GPARun",
    "PLDRun",
    "RadialProfile",
    "Region",
    "SeriesRun",
    "compute_bragg",
    "compute_detect",
    "compute_gpa",
    "compute_pick",
    "compute_pld",
    "compute_radial",
    "compute_series",
    "describe_g",
    "figures",
    "format_q",
    "labelled_satellites",
    "spot_index",
    "spot_label",
]

GPA_MAPS = ("exx", "eyy", "exy", "rotation (deg)")
#: the core's message names its parameter (min_snr); the dock says what the "min SNR" box means
NO_SPOTS = ("No spots found in the ROI's FFT: move the ROI onto a crystalline region, or lower 'min SNR' "
            "(how many times brighter than the background at the same |g| a spot must be).")


def figures(x: float, n: int = 3) -> str:
    """``x`` to ``n`` significant figures without an exponent (``2.35``, ``0.289``, ``10.4``, ``1234``):
    what a microscopist reads off a spectrum; more figures than the FFT pixel resolves mislead."""
    x = float(x)
    if not np.isfinite(x) or x == 0:
        return f"{x:g}"
    decimals = max(0, n - 1 - int(np.floor(np.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def describe_g(g) -> str:
    """``|g|``, spacing and direction of a reciprocal vector (gy, gx) in Å⁻¹, for a readout."""
    gabs = float(np.hypot(g[0], g[1]))
    d = figures(1.0 / gabs) if gabs > 0 else "∞"
    angle = float(np.degrees(np.arctan2(-g[0], g[1])))
    return f"|g| = {figures(gabs)} 1/Å   d = {d} Å   angle = {angle:.1f}°"


def spot_index(peak: F.Peak) -> str:
    """A spot's index, ``(1,-1)`` (``""`` for a spot without one)."""
    return "" if peak.hk is None else "(" + ",".join(_fmt_frac(x) for x in peak.hk) + ")"


def spot_label(peak: F.Peak) -> str:
    """A spot's label on the spectrum: its spacing to 3 figures and its index, ``2.35 Å (1,0)``."""
    index = spot_index(peak)
    return f"{figures(peak.d)} Å" + (f" {index}" if index else "")


def labelled_satellites(lattice: F.Lattice) -> list[F.Peak]:
    """The satellite that names each modulation: the shortest superlattice spot of each q in the upper
    half plane (gy <= 0). As on a microscope's live FFT, only what can be read is labelled: one satellite
    per modulation, not the dozens at every G ± q (their full indices stay in the spot list)."""
    named: dict = {}
    for peak in sorted(lattice.superlattice, key=lambda peak: peak.g_abs):
        if peak.g[0] <= 0 and peak.q not in named:
            named[peak.q] = peak
    return list(named.values())


def format_q(q) -> str:
    """A modulation vector in basis units as text: ``(1/3, 0)``."""
    return "(" + ", ".join(_fmt_frac(x) for x in q) + ")"


def _symmetric_limit(data: np.ndarray, percentile: float = 99.0) -> float:
    """A colour range ±limit that holds ``percentile`` % of |data| (never 0)."""
    return float(np.percentile(np.abs(data[::2, ::2]), percentile)) or 1e-3


@dataclass(frozen=True, eq=False)
class Region:
    """The pixels a computation reads: described on the GUI thread, read in the worker.

    Parameters
    ----------
    data : array-like
        The layer's (full-resolution) data, possibly lazy (memmap, dask): sliced in the worker.
    index : tuple of int
        Indices of the leading (frame, slice) axes of the frame shown.
    bounds : (y0, y1, x0, x1)
        Pixel bounds of the region in the image, clipped to it.
    pixel_size : float
        Å per pixel.
    source : str
        Name of the image layer.
    scale, translate, units :
        The image layer's Y, X scale, translate and units: where output layers are placed.
    note : str
        A remark for the user ("clipped to the image").
    """

    data: Any
    index: tuple
    bounds: tuple
    pixel_size: float
    source: str
    scale: tuple
    translate: tuple
    units: tuple
    note: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        y0, y1, x0, x1 = self.bounds
        return y1 - y0, x1 - x0

    @property
    def key(self) -> tuple:
        """What makes two regions show the same pixels."""
        return id(self.data), self.index, self.bounds, self.pixel_size

    def pixels(self) -> np.ndarray:
        """The raw pixels (worker thread: where lazy data are read)."""
        y0, y1, x0, x1 = self.bounds
        return np.asarray(self.data[self.index + (slice(y0, y1), slice(x0, x1))])

    def read(self) -> np.ndarray:
        """The pixels as a checked float32 image (ValueError saying what to do otherwise)."""
        return F.validate_image(self.pixels(), what="region")

    def stack(self):
        """The region in every frame, (T, Y, X), sliced lazily."""
        y0, y1, x0, x1 = self.bounds
        return self.data[:, y0:y1, x0:x1]

    def placement(self) -> dict:
        """``scale``, ``translate`` and ``units`` of a layer lying exactly over the region."""
        y0, _, x0, _ = self.bounds
        sy, sx = self.scale
        ty, tx = self.translate
        return {"scale": (sy, sx), "translate": (ty + y0 * sy, tx + x0 * sx), "units": self.units}

    def describe(self) -> str:
        """``"256×256 px of 'lattice' (frame 3)"``."""
        ny, nx = self.shape
        frame = f" (frame {', '.join(str(i) for i in self.index)})" if self.index else ""
        return f"{ny}×{nx} px of '{self.source}'{frame}"


# -- lattice ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Detection:
    """A lattice found in ``region`` with spot threshold ``min_snr``; ``spectrum`` and
    ``limits`` (its display range) only when the spots were asked for as layers."""

    region: Region
    min_snr: float
    lattice: F.Lattice
    spectrum: F.PowerSpectrum | None = None
    limits: tuple[float, float] | None = None

    def summary(self) -> str:
        lat = self.lattice
        qs = ", ".join(format_q(q) for q in lat.modulation_vectors)
        return (
            f"{self.region.describe()}, min SNR {self.min_snr:g}: "
            f"d1 = {figures(lat.d1, 4)} Å, d2 = {figures(lat.d2, 4)} Å, angle = {lat.angle:.2f}°; "
            f"{len(lat.peaks)} lattice spots, {len(lat.superlattice)} superlattice spots"
            + (f", q = {qs} (basis units)" if qs else "")
            + (f", {len(lat.unindexed)} unindexed" if lat.unindexed else "")
        )


def compute_detect(region: Region, min_snr: float, as_layers: bool, progress: ProgressCallback = None) -> Detection:
    """Find and index the lattice (and, for layers, the calibrated spectrum) of ``region``."""
    image = region.read()
    try:
        lattice = F.find_lattice(image, region.pixel_size, min_snr=min_snr, progress=progress)
    except ValueError as exc:
        if "min_snr" not in str(exc):
            raise
        raise ValueError(NO_SPOTS) from exc
    if not as_layers:
        return Detection(region, min_snr, lattice)
    spectrum = F.power_spectrum(image, region.pixel_size)
    lo, hi = np.percentile(spectrum.data[::4, ::4], (30, 99.95))
    return Detection(region, min_snr, lattice, spectrum, (float(lo), float(hi)))


def compute_pick(region: Region, g, progress: ProgressCallback = None) -> F.Peak:
    """The spot of ``region``'s spectrum nearest ``g`` (Å⁻¹), refined."""
    peak = F.refine_spot(region.read(), region.pixel_size, g)
    report(progress, 1.0)
    return peak


# -- filters ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BraggRun:
    """A Bragg-filtered ``region`` through ``n_spots`` spots of ``mode`` with mask ``radius`` (Å⁻¹)."""

    region: Region
    mode: str
    radius: float
    n_spots: int
    image: np.ndarray
    limits: tuple[float, float]


def compute_bragg(region: Region, mode: str, spots, radius: float, progress: ProgressCallback = None) -> BraggRun:
    """Bragg filter; the superlattice alone carries no mean, the lattice keeps it."""
    image = F.bragg_filter(region.read(), spots, radius, pixel_size=region.pixel_size,
                           keep_mean=(mode != "superlattice"))
    report(progress, 1.0)
    limits = (float(image.min()), float(image.max()))
    return BraggRun(region, mode, float(radius), len(spots), image, limits)


@dataclass(frozen=True, eq=False)
class GPARun:
    """Strain maps of ``region`` with mask ``radius`` (Å⁻¹); ``limits``: ± colour range per map."""

    region: Region
    radius: float
    result: F.GPAResult
    limits: dict

    def maps(self) -> dict[str, np.ndarray]:
        return _gpa_maps(self.result)

    def summary(self) -> str:
        g1, g2 = self.result.g1, self.result.g2
        return (
            f"GPA of {self.region.describe()}, mask {self.radius:g} 1/Å: reference d1 = "
            f"{1 / np.hypot(*g1):.4f} Å, d2 = {1 / np.hypot(*g2):.4f} Å (strain relative to the "
            "region's average lattice; 0.01 = 1 %)"
        )


def _gpa_maps(result: F.GPAResult) -> dict[str, np.ndarray]:
    return dict(zip(GPA_MAPS, (result.exx, result.eyy, result.exy, result.rotation)))


def compute_gpa(region: Region, g1, g2, radius: float, progress: ProgressCallback = None) -> GPARun:
    result = F.gpa(region.read(), g1, g2, radius, pixel_size=region.pixel_size, progress=progress)
    limits = {name: _symmetric_limit(data) for name, data in _gpa_maps(result).items()}
    return GPARun(region, float(radius), result, limits)


@dataclass(frozen=True, eq=False)
class PLDRun:
    """PLD maps of ``region`` for modulation ``q`` (basis units)."""

    region: Region
    q: tuple
    result: F.PLDResult
    amplitude_limit: float
    median_amplitude: float

    def summary(self) -> str:
        return (
            f"PLD of {self.region.describe()}, q = {format_q(self.q)}: median amplitude "
            f"(central half) {self.median_amplitude:.3f} Å"
        )


def compute_pld(region: Region, q, lattice: F.Lattice, progress: ProgressCallback = None) -> PLDRun:
    result = F.pld_map(region.read(), lattice.q_vector(q), lattice=(lattice.g1, lattice.g2),
                       pixel_size=region.pixel_size, progress=progress)
    amp = result.amplitude
    ny, nx = amp.shape
    inner = amp[ny // 4: ny - ny // 4, nx // 4: nx - nx // 4]
    return PLDRun(region, tuple(q), result, float(np.percentile(amp[::2, ::2], 99)) or 1e-3, float(np.median(inner)))


# -- profiles and series ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RadialProfile:
    """Rotational average ``power`` at ``g`` (Å⁻¹) of ``region``'s spectrum; ``peak_g``: its maximum
    beyond the lowest frequencies (NaN if none)."""

    region: Region
    g: np.ndarray
    power: np.ndarray
    peak_g: float

    def title(self) -> str:
        peak = f"maximum at {self.peak_g:.3f} 1/Å (d = {1 / self.peak_g:.2f} Å)" if self.peak_g > 0 else "no maximum"
        return f"radial profile of {self.region.describe()}: {peak}"


def compute_radial(region: Region, progress: ProgressCallback = None) -> RadialProfile:
    g, power = F.radial_profile(region.read(), region.pixel_size)
    report(progress, 1.0)
    # the maximum beyond the lowest 4 Fourier pixels (the mean and the window's own bump)
    beyond = g > 4.0 / (min(region.shape) * region.pixel_size)
    peak = float(g[beyond][np.argmax(power[beyond])]) if beyond.any() else float("nan")
    return RadialProfile(region, g, power, peak)


@dataclass(frozen=True, eq=False)
class SeriesRun:
    """Bragg intensity of ``n_spots`` spots through the frames of ``region`` (dose per frame in
    e/Å², None if unknown)."""

    region: Region
    n_spots: int
    dose_per_frame: float | None
    result: F.BraggSeries

    def title(self) -> str:
        res = self.result
        title = f"Bragg intensity of {self.n_spots} spots, {self.region.describe()}"
        if res.critical_dose is not None:
            err = f" ± {res.critical_dose_error:.2f}" if res.critical_dose_error else ""
            title += f": critical dose {res.critical_dose:.2f}{err} e/Å²"
        return title


def compute_series(region: Region, spots, dose_per_frame: float | None,
                   progress: ProgressCallback = None) -> SeriesRun:
    result = F.bragg_intensity_series(region.stack(), spots, pixel_size=region.pixel_size,
                                      dose_per_frame=dose_per_frame, progress=progress)
    return SeriesRun(region, len(spots), dose_per_frame, result)
