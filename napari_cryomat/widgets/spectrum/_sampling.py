"""What the two live views compute in their workers: the spectrum under the cursor (and the
summed spectrum of the ROI), and composition profiles along a line over the maps.

Requests are built on the GUI thread from the model (array references and numbers only); the
functions here read the data. No Qt, no viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_cryomat.core import spectral as core
from napari_cryomat.widgets.spectrum._jobs import MapsResult, SpectrumImage

__all__ = [
    "Profile",
    "ProfileRequest",
    "RoiRegion",
    "SpectrumRequest",
    "SpectrumResult",
    "SpectrumSampler",
    "compute_profile",
    "region_mask",
    "roi_sum",
]

#: elements per block when summing an ROI (bounds the worker's memory whatever the ROI size)
_BLOCK = 2**22


@dataclass(frozen=True)
class RoiRegion:
    """One ROI shape in the SI's pixel coordinates: ``shape_type`` as napari names it
    ("rectangle", "polygon", "ellipse") and its vertices ((y, x), ...). Hashable: the worker
    keeps the sum of the last region it saw."""

    shape_type: str
    vertices: tuple[tuple[float, float], ...]


def region_mask(region: RoiRegion, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (Y, X) mask of the pixels inside ``region`` (napari's own rasterisation for
    rectangles and polygons; an ellipse becomes a 64-gon inscribed in its bounding box)."""
    from skimage.draw import polygon2mask

    vertices = np.asarray(region.vertices, dtype=float)
    if region.shape_type == "ellipse":
        # napari stores an ellipse as the four corners of its (possibly rotated) bounding box
        centre = vertices.mean(axis=0)
        half_a, half_b = (vertices[1] - vertices[0]) / 2, (vertices[3] - vertices[0]) / 2
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)[:, None]
        vertices = centre + np.cos(t) * half_a + np.sin(t) * half_b
    return polygon2mask(shape, vertices)


def roi_sum(si, mask: np.ndarray) -> np.ndarray | None:
    """Sum (E,) float64 of the spectra of the pixels in ``mask``, or None for an empty mask.

    Reads the ROI's bounding box in blocks of channels, so neither a big ROI nor a lazy SI is
    ever loaded whole.
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    inside = mask[y0:y1, x0:x1].ravel().astype(np.float64)
    energy_first = np.moveaxis(si, -1, 0)  # (E, Y, X): the layer's own memory order
    n_channels = si.shape[-1]
    step = max(1, _BLOCK // inside.size)
    total = np.empty(n_channels, np.float64)
    for e0 in range(0, n_channels, step):
        block = np.asarray(energy_first[e0 : e0 + step, y0:y1, x0:x1], dtype=np.float64)
        total[e0 : e0 + step] = block.reshape(block.shape[0], -1) @ inside
    return total


@dataclass(frozen=True, eq=False)
class SpectrumRequest:
    """What the spectrum plot shows: the spectrum at ``pixel`` (y, x), the summed spectrum of
    ``roi``, and (EELS) the power-law background fitted in ``fit_windows["background"]`` of
    the ROI spectrum, or of the pixel's when there is no ROI."""

    source: SpectrumImage
    pixel: tuple[int, int] | None
    roi: RoiRegion | None = None
    fit_windows: dict | None = None


@dataclass(eq=False)
class SpectrumResult:
    pixel_spectrum: np.ndarray | None
    roi_spectrum: np.ndarray | None
    roi_pixels: int
    fit: tuple[np.ndarray, np.ndarray] | None  # (energy eV, counts)


def background_fit(spectrum: np.ndarray, energy: np.ndarray, windows: dict):
    """(energy, fitted power law) from the background window's start to the integration
    window's end, or None when the windows do not fit the spectrum."""
    try:
        a, r = core.fit_power_law(spectrum[None], energy=energy, window=windows["background"])
        start = core.window_slice(energy, windows["background"]).start
        stop = core.window_slice(energy, windows["integration"]).stop
    except (ValueError, KeyError):
        return None
    e = energy[start:stop]
    return e, core.power_law(e, a, r)[0]


class SpectrumSampler:
    """The live spectrum's compute step (called in one worker thread only).

    The ROI sum is the slow part and changes only when the ROI does, so the last one is kept
    and reused while the cursor moves.
    """

    def __init__(self):
        self._roi_key = None
        self._roi_value: tuple[np.ndarray | None, int] = (None, 0)

    def __call__(self, request: SpectrumRequest) -> SpectrumResult:
        src = request.source
        pixel_spectrum = None
        if request.pixel is not None:
            iy, ix = request.pixel
            pixel_spectrum = np.asarray(src.si[iy, ix, :], dtype=np.float32)
        roi_spectrum, n_pixels = self._roi(src, request.roi)
        shown = roi_spectrum if roi_spectrum is not None else pixel_spectrum
        fit = None
        if request.fit_windows and shown is not None:
            fit = background_fit(shown, src.energy, request.fit_windows)
        return SpectrumResult(pixel_spectrum, roi_spectrum, n_pixels, fit)

    def _roi(self, src: SpectrumImage, region: RoiRegion | None) -> tuple[np.ndarray | None, int]:
        if region is None:
            return None, 0
        key = (src.si, region)
        if self._roi_key is None or self._roi_key[0] is not src.si or self._roi_key[1] != region:
            mask = region_mask(region, src.spatial_shape)
            self._roi_value = (roi_sum(src.si, mask), int(mask.sum()))
            self._roi_key = key
        return self._roi_value


# -- composition profiles -------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ProfileRequest:
    """A profile over the maps of one run from ``start`` to ``end`` (map pixels (y, x))."""

    maps: MapsResult
    start: tuple[float, float]
    end: tuple[float, float]
    width: int = 3


@dataclass(eq=False)
class Profile:
    """``columns``: "distance_A", then each element's map values (with "<el>_err", the standard
    error from counting statistics, for EELS), then "<el>_at%" (Cliff–Lorimer runs); ``peaks``: each map's largest absolute value (the plot shows values / peak)."""

    request: ProfileRequest
    columns: dict
    peaks: dict


def compute_profile(request: ProfileRequest) -> Profile:
    """Worker: values of every map of the run along the line, averaged over ``width`` pixels."""
    result = request.maps
    px = result.request.source.pixel_size
    columns, peaks = {}, {}
    line = dict(start=request.start, end=request.end, pixel_size=px, width=request.width)
    for el, m in result.maps.items():
        distance, values = core.line_profile(m.data, **line)
        columns["distance_A"] = distance
        columns[el] = values
        peaks[el] = float(np.nanmax(np.abs(m.data))) or 1.0
        if "variance" in m.extra:  # EELS: standard error of the band mean from counting statistics
            columns[f"{el}_err"] = core.profile_with_errors(
                m.data, start=request.start, end=request.end, pixel_size=px, width_angstrom=request.width * px,
                variance=m.extra["variance"])[2]
    for el, q in (result.quant or {}).items():
        columns[f"{el}_at%"] = core.line_profile(np.nan_to_num(q), **line)[1]
    return Profile(request=request, columns=columns, peaks=peaks)
