"""Exports of the Spectrum imaging tool, run in a worker: map TIFFs, the RGB composite, the
profile CSV and a spectrum as EMSA or CSV. Each takes a result (which keeps its run's
calibration) and a path chosen on the GUI thread. No Qt, no viewer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cryomat.core._progress import report
from napari_cryomat.io.spectral import write_csv, write_msa
from napari_cryomat.widgets.spectrum._jobs import MapsResult, map_colour
from napari_cryomat.widgets.spectrum._sampling import Profile

__all__ = ["ExportSpectrum", "rgb_composite", "write_map_tiffs", "write_profile", "write_rgb", "write_spectrum"]


def write_map_tiffs(result: MapsResult, directory, *, progress=None) -> list[str]:
    """One float32 TIFF per map and per at.% map, pixel size in the ImageJ metadata (Å)."""
    import tifffile

    px = result.request.source.pixel_size
    items = [(el, m.data) for el, m in result.maps.items()]
    items += [(f"{el}_at%", q) for el, q in (result.quant or {}).items()]
    paths = []
    for i, (name, data) in enumerate(items):
        path = Path(directory) / f"{name.replace('/', '_')}_map.tif"
        tifffile.imwrite(path, np.asarray(data, np.float32), imagej=True, resolution=(1 / px, 1 / px),
                         metadata={"unit": "angstrom"})
        paths.append(str(path))
        report(progress, (i + 1) / len(items))
    return paths


def rgb_composite(result: MapsResult, limits: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """(Y, X, 3) uint8: each map scaled to ``limits[element]`` (its layer's contrast limits, or the
    run's own range), coloured like its layer, and the colours added."""
    shape = next(iter(result.maps.values())).data.shape
    rgb = np.zeros(shape + (3,), np.float32)
    for i, (el, m) in enumerate(result.maps.items()):
        lo, hi = limits.get(el, result.limits[el])
        scaled = np.clip((np.nan_to_num(m.data) - lo) / max(hi - lo, 1e-12), 0, 1)
        rgb += scaled[..., None] * (np.array(map_colour(i)[1], np.float32) / 255.0)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def write_rgb(result: MapsResult, limits: Mapping[str, tuple[float, float]], path, *, progress=None) -> str:
    """The RGB composite as a PNG."""
    from PIL import Image

    Image.fromarray(rgb_composite(result, limits)).save(path)
    report(progress, 1.0)
    return str(path)


def write_profile(profile: Profile, path, *, progress=None) -> str:
    """The profile's columns as CSV (distance in Å first)."""
    out = write_csv(path, profile.columns)
    report(progress, 1.0)
    return out


@dataclass(frozen=True, eq=False)
class ExportSpectrum:
    """A spectrum to save: ``counts`` (E,) at ``energy`` (eV); ``what`` says where it came from."""

    energy: np.ndarray
    counts: np.ndarray
    title: str
    signal_type: str
    what: str


def write_spectrum(spectrum: ExportSpectrum, path, *, progress=None) -> str:
    """CSV (``.csv``: energy_eV, counts) or EMSA (any other ending, through rosettasciio)."""
    if str(path).lower().endswith(".csv"):
        out = write_csv(path, {"energy_eV": spectrum.energy, "counts": spectrum.counts})
    else:
        out = write_msa(path, spectrum.counts, energy=spectrum.energy, title=spectrum.title,
                        signal_type=spectrum.signal_type)
    report(progress, 1.0)
    return out
