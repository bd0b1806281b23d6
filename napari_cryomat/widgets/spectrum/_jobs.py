"""What the Spectrum imaging tool runs in workers: plain requests in, results out.

The model builds a request on the GUI thread (every parameter read there, the spectrum image
as an array reference); the functions here run in a :class:`TaskRunner` worker and call the
core only. No Qt, no viewer. Each result keeps its request, so whatever shows it (a legend, a
plot title, an export) describes the run, not the controls as they are now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_cryomat.core import eds
from napari_cryomat.core import spectral as core
from napari_cryomat.core._progress import report

__all__ = [
    "MAP_COLOURS",
    "DenoiseRequest",
    "MapsRequest",
    "MapsResult",
    "PcaRequest",
    "PcaRun",
    "RatioRequest",
    "RatioResult",
    "SpectrumImage",
    "ThicknessResult",
    "compute_denoised",
    "compute_maps",
    "compute_pca",
    "compute_ratio",
    "compute_thickness",
    "map_colour",
    "parse_k_factors",
]

#: (napari colormap, RGB) of the n-th element: map layers, markers, profile curves, RGB composite
MAP_COLOURS = (
    ("red", (255, 0, 0)),
    ("green", (0, 255, 0)),
    ("blue", (40, 90, 255)),
    ("magenta", (255, 0, 255)),
    ("cyan", (0, 255, 255)),
    ("yellow", (255, 255, 0)),
    ("bop orange", (255, 140, 0)),
    ("bop purple", (160, 60, 255)),
)


def map_colour(index: int) -> tuple[str, tuple[int, int, int]]:
    """(napari colormap, RGB) of the element at position ``index`` of a list."""
    return MAP_COLOURS[index % len(MAP_COLOURS)]


@dataclass(frozen=True, eq=False)
class SpectrumImage:
    """A spectrum-image layer as the core sees it.

    ``si`` is (Y, X, E) (numpy view or dask array, not loaded), ``energy`` the channel energies
    in eV, ``pixel_size`` in Å, ``translate`` the layer's spatial offset in Å (y, x).
    """

    name: str
    si: Any
    energy: np.ndarray
    pixel_size: float
    signal_type: str
    translate: tuple[float, float] = (0.0, 0.0)

    @property
    def spatial_shape(self) -> tuple[int, int]:
        return int(self.si.shape[0]), int(self.si.shape[1])


def parse_k_factors(text: str) -> dict[str, float]:
    """Cliff–Lorimer k-factors typed as text.

    Examples
    --------
    >>> parse_k_factors("Fe: 1.0, Pt=1.6")
    {'Fe': 1.0, 'Pt': 1.6}
    >>> parse_k_factors("")
    {}
    """
    out = {}
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if ":" not in part and "=" not in part:
            raise ValueError(f"k-factor '{part}': write element: value, e.g. 'Fe: 1.0, Pt: 1.6'.")
        el, val = part.replace("=", ":").split(":", 1)
        (el,) = core.parse_elements(el.strip())
        try:
            out[el] = float(val)
        except ValueError:
            raise ValueError(f"k-factor of {el} is not a number: '{val.strip()}'.") from None
    return out


def upper_limits(data: np.ndarray, percentile: float) -> tuple[float, float]:
    """Display range (0, p-th percentile of the finite values), (0, 1) when that is not positive."""
    finite = np.asarray(data)[np.isfinite(data)]
    hi = float(np.percentile(finite, percentile)) if finite.size else 1.0
    return 0.0, (hi if hi > 0 else 1.0)


# -- maps and quantification ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MapsRequest:
    """One map run: ``mode`` "EELS" or "EDS"; ``method`` "lsq" or "two_area" (EELS);
    ``fwhm`` at Mn Kα in eV (EDS); ``k_factors`` empty for no Cliff–Lorimer."""

    source: SpectrumImage
    mode: str
    elements: tuple[str, ...]
    windows: dict
    method: str = "lsq"
    fwhm: float = 130.0
    k_factors: dict = field(default_factory=dict)


@dataclass(eq=False)
class MapsResult:
    """Maps of one run, with their display ranges (computed in the worker)."""

    request: MapsRequest
    maps: dict  # element -> core.ElementMap
    quant: dict | None  # element -> at.% map, or None
    limits: dict  # element -> (lo, hi)


def compute_maps(request: MapsRequest, *, progress=None) -> MapsResult:
    """Worker: make the maps (EELS band by band; EDS loads a lazy SI); Cliff–Lorimer when k-factors
    are given. EELS maps carry ``extra["message"]`` when no clean background window exists."""
    src = request.source
    quant = None
    if request.mode == "EELS":  # band by band: a lazy (dask, memory-mapped) SI is never loaded whole
        maps = core.eels_maps(src.si, energy=src.energy, elements=list(request.elements), windows=request.windows,
                              method=request.method, progress=progress)
    else:
        si = np.asarray(src.si)
        core.check_spectrum_image(si)
        maps = eds.eds_maps(si, energy=src.energy, elements=list(request.elements), fwhm_mn_ka=request.fwhm,
                             windows=request.windows, progress=progress)
        if request.k_factors and len(maps) >= 2:
            quant = eds.cliff_lorimer({el: m.data for el, m in maps.items()}, k_factors=request.k_factors)
    limits = {el: upper_limits(m.data, 99.5) for el, m in maps.items()}
    return MapsResult(request=request, maps=maps, quant=quant, limits=limits)


@dataclass(frozen=True, eq=False)
class RatioRequest:
    maps: MapsResult
    numerator: str
    denominator: str


@dataclass(eq=False)
class RatioResult:
    request: RatioRequest
    data: np.ndarray
    limits: tuple[float, float]


def compute_ratio(request: RatioRequest, *, progress=None) -> RatioResult:
    """Worker: the pixel-wise ratio of two maps of one run."""
    maps = request.maps.maps
    data = core.ratio_map(maps[request.numerator].data, maps[request.denominator].data)
    report(progress, 1.0)
    return RatioResult(request=request, data=data, limits=upper_limits(data, 99))


# -- thickness ------------------------------------------------------------------------------------
@dataclass(eq=False)
class ThicknessResult:
    source: SpectrumImage
    t_over_lambda: np.ndarray
    zlp_threshold: float
    limits: tuple[float, float]


def compute_thickness(source: SpectrumImage, *, progress=None) -> ThicknessResult:
    """Worker: t/λ by the log-ratio method from a low-loss SI."""
    from napari_cryomat.core import lowloss

    t, _t_nm, threshold = lowloss.thickness_map(source.si, energy=source.energy, progress=progress)
    finite = t[np.isfinite(t)]
    limits = (float(finite.min()), float(finite.max())) if finite.size and finite.max() > finite.min() else (0.0, 1.0)
    return ThicknessResult(source=source, t_over_lambda=t, zlp_threshold=threshold, limits=limits)


# -- PCA ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PcaRequest:
    source: SpectrumImage
    max_components: int = 32


@dataclass(eq=False)
class PcaRun:
    """A PCA of ``source`` and the number of components above the noise floor."""

    source: SpectrumImage
    result: core.PCAResult
    suggested: int


def compute_pca(request: PcaRequest, *, progress=None) -> PcaRun:
    """Worker: Poisson-normalised PCA of the SI."""
    result = core.pca(request.source.si, poisson=True, max_components=request.max_components, progress=progress)
    return PcaRun(source=request.source, result=result, suggested=core.suggest_components(result.explained_variance))


@dataclass(frozen=True, eq=False)
class DenoiseRequest:
    run: PcaRun
    n_components: int

    @property
    def layer_name(self) -> str:
        return f"{self.run.source.name} PCA({self.n_components})"


def compute_denoised(request: DenoiseRequest, *, progress=None) -> tuple[Any, dict, str]:
    """Worker: the SI rebuilt from the first components, as napari LayerData (hidden), calibrated
    like the SI the PCA ran on."""
    from napari_cryomat.io.spectral import spectrum_image_layer

    src = request.run.source
    denoised = core.pca_reconstruct(request.run.result, n_components=request.n_components, progress=progress)
    return spectrum_image_layer(
        denoised, energy_offset=float(src.energy[0]), energy_scale=float(src.energy[1] - src.energy[0]),
        pixel_size=src.pixel_size, name=request.layer_name, signal_type=src.signal_type, visible=False,
        origin=src.translate,
    )
