"""Line profiles across maps with width averaging in Å and counting-statistics error bars.

Conventions: :mod:`napari_cryomat.core.spectral`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from napari_cryomat.core._eels_maps import ElementMap
from napari_cryomat.core._validate import (
    integer,
    positive,
    real_array,
    vector,
)


def line_profile(
    image,
    *,
    start: Sequence[float],
    end: Sequence[float],
    pixel_size: float = 1.0,
    width: int = 1,
    order: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``image`` (Y, X) along the line ``start`` → ``end`` (pixel coordinates (y, x)).

    Parameters
    ----------
    image : array (Y, X)
        A map.
    start, end : (float, float)
        End points in pixels (row, column), both included.
    pixel_size : float
        Pixel size in Å; the returned distance is in Å.
    width : int
        Averaging width perpendicular to the line, pixels.
    order : int
        Spline interpolation order (1 = linear).

    Returns
    -------
    distance : array (N,), Å from ``start``
    values : array (N,)
    """
    from skimage.measure import profile_line

    raw = np.asarray(image)
    if raw.ndim != 2:
        raise ValueError(f"A line profile needs a 2D map (Y, X) as image; got shape {raw.shape}.")
    img = real_array(raw, "image", ndim=2, finite=False, copies=3)
    start = vector(start, "start", length=2, unit="px")
    end = vector(end, "end", length=2, unit="px")
    for name, pt in (("start", start), ("end", end)):
        if np.any(pt < -1) or np.any(pt > np.asarray(img.shape)):
            raise ValueError(f"{name} = ({pt[0]:g}, {pt[1]:g}) px lies outside the image {img.shape}.")
    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    width = integer(width, "width", low=1, high=max(img.shape))
    order = integer(order, "order", low=0, high=5)
    length = float(np.hypot(*(end - start)))
    if length < 1:
        raise ValueError("The profile line is shorter than one pixel; draw a longer line.")
    vals = profile_line(img, start, end, linewidth=max(1, int(width)), order=order, mode="reflect", reduce_func=np.mean)
    dist = np.linspace(0, length * pixel_size, vals.size)
    return dist, vals.astype(np.float32)


def profile_with_errors(
    image,
    *,
    start: Sequence[float],
    end: Sequence[float],
    pixel_size: float = 1.0,
    width_angstrom: float | None = None,
    variance=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A map's mean along the line ``start`` → ``end`` (pixels (y, x)) over a band
    ``width_angstrom`` Å wide (default one pixel), with the standard error of each point.

    ``variance`` (Y, X) is each pixel's variance; default ``image`` itself (Poisson counts).
    The error of a point is ``sqrt(mean variance / n)`` with ``n`` the pixels averaged across the
    band. Returns (distance Å, mean, standard error).
    """
    from skimage.measure import profile_line

    pixel_size = positive(pixel_size, "pixel_size", unit="Å")
    width_px = 1 if width_angstrom is None else positive(width_angstrom, "width_angstrom", unit="Å") / pixel_size
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"A line profile needs a 2D map (Y, X) as image; got shape {img.shape}.")
    linewidth = int(max(1, round(width_px)))
    if linewidth > max(img.shape):
        raise ValueError(f"width_angstrom {width_angstrom:g} Å is wider than the image; give a narrower band.")
    dist, vals = line_profile(img, start=start, end=end, pixel_size=pixel_size, width=linewidth)
    var = np.maximum(np.asarray(img, np.float64), 0.0) if variance is None else \
        real_array(variance, "variance", ndim=2, dtype=np.float64, finite=False)
    if var.shape != img.shape:
        raise ValueError(f"variance {var.shape} must have the shape of image {img.shape}.")
    mvar = profile_line(np.nan_to_num(var), np.asarray(start, float), np.asarray(end, float), linewidth=linewidth,
                        order=1, mode="reflect", reduce_func=np.mean)
    return dist, vals, np.sqrt(np.maximum(mvar, 0.0) / linewidth).astype(np.float32)


def composition_profile(
    maps: Mapping[str, ElementMap],
    *,
    start: Sequence[float],
    end: Sequence[float],
    pixel_size: float,
    width_angstrom: float | None = None,
    cross_sections: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Element profiles across an interface (e.g. the C, O, N composition of an SEI along depth).

    For each map (from :func:`eels_maps`; its ``extra["variance"]`` gives the counting variance
    of the net counts, else the counts themselves are taken as Poisson) the mean along the line
    over a band ``width_angstrom`` wide and its standard error; with ``cross_sections``
    {element: σ in barn} (:func:`napari_cryomat.core.eels_quant.quantify_maps`) also the atomic
    percent and its propagated error. Returns a dict of columns: ``distance`` (Å), ``<el>``,
    ``<el>_err``, and with cross-sections ``<el>_at%`` and ``<el>_at%_err``.
    """
    if not isinstance(maps, Mapping) or not maps:
        raise ValueError("maps must hold at least one element map (from eels_maps).")
    out: dict[str, np.ndarray] = {}
    for el, m in maps.items():
        if not isinstance(m, ElementMap):
            raise ValueError(f"maps[{el!r}] is not an ElementMap from eels_maps().")
        d, v, err = profile_with_errors(m.data, start=start, end=end, pixel_size=pixel_size,
                                        width_angstrom=width_angstrom, variance=m.extra.get("variance"))
        out["distance"], out[el], out[f"{el}_err"] = d, v, err
    if cross_sections is not None:
        missing = [el for el in maps if el not in cross_sections]
        if missing:
            raise ValueError(f"cross_sections has no value for {missing}: compute them with eels_quant.quantify_maps.")
        n = {el: out[el].astype(np.float64) / positive(cross_sections[el], f"cross_sections[{el!r}]", unit="barn",
                                                        high=1e12) for el in maps}
        dn = {el: out[f"{el}_err"].astype(np.float64) / cross_sections[el] for el in maps}
        total = sum(n.values())
        with np.errstate(divide="ignore", invalid="ignore"):
            for el in maps:
                var = sum(((float(k == el) * total - n[el]) / total**2) ** 2 * dn[k] ** 2 for k in maps)
                out[f"{el}_at%"] = np.where(total > 0, 100 * n[el] / total, np.nan).astype(np.float32)
                out[f"{el}_at%_err"] = np.where(total > 0, 100 * np.sqrt(var), np.nan).astype(np.float32)
    return out
