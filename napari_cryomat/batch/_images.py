"""Images for batch work, read through the project's own readers (``napari_cryomat.io``).

:func:`open_image` opens one file lazily as frames (T, Y, X) with its pixel size in Å (None when
the file has no spatial calibration); :func:`image_files` expands folders into the files the batch
can read. No Qt, no napari.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BatchInputError", "ImageSource", "open_image", "image_layer", "image_files", "is_image_path",
           "output_name"]

_TIFF_SUFFIXES = (".tif", ".tiff")
_COMPRESSED = (".gz", ".bz2")


class BatchInputError(ValueError):
    """An input file the batch cannot segment; the message names the file and what to do."""


@dataclass
class ImageSource:
    """One input image: ``frames`` is a lazy (T, Y, X) array (T = 1 for a single image)."""

    path: Path
    frames: object
    pixel_size: float | None  # Å per pixel from the file; None: no spatial calibration
    layer_name: str
    n_layers: int  # image layers the file holds (the first suitable one is used)
    is_stack: bool  # (T, Y, X) in the file; False for a single 2D image


def _spectral_extensions() -> tuple[str, ...]:
    from napari_cryomat.io.spectral import EXTENSIONS

    return EXTENSIONS


def is_image_path(path) -> bool:
    """True for names the batch reads: MRC (also .gz/.bz2), TIFF, DM, EMD and the other vendor formats."""
    from napari_cryomat.io.mrc import is_mrc_path

    name = str(path).lower()
    return is_mrc_path(name) or name.endswith(_TIFF_SUFFIXES) or name.endswith(_spectral_extensions())


def image_files(inputs, *, recursive: bool = False) -> list[Path]:
    """Files named in ``inputs``; a folder contributes the readable files inside it (sorted; with
    ``recursive`` those of its sub-folders too).

    A named file is kept whatever its extension, so that it is reported (not silently dropped) when
    it cannot be read; a name that does not exist is kept too and reported as missing.
    """
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            files.extend(sorted(f for f in found if f.is_file() and is_image_path(f)))
        else:
            files.append(p)
    seen, unique = set(), []
    for f in files:
        key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def output_name(path: Path, taken: set[str]) -> str:
    """The ``<name>`` of a file's outputs: its name without (compressed) extensions, made unique."""
    name = path.name
    for comp in _COMPRESSED:
        if name.lower().endswith(comp):
            name = name[: -len(comp)]
    stem = Path(name).stem or "image"
    out, k = stem, 2
    while out.lower() in taken:
        out, k = f"{stem}_{k}", k + 1
    taken.add(out.lower())
    return out


def _read_layers(path: Path) -> list[tuple]:
    from napari_cryomat.io.mrc import is_mrc_path, read_mrc

    name = path.name.lower()
    if not path.exists():
        raise BatchInputError(f"{path.name}: no such file.")
    if is_mrc_path(name):
        return read_mrc(path)
    if name.endswith(_TIFF_SUFFIXES):
        from napari_cryomat.io.tiff import read_tiff

        return read_tiff(path)
    if name.endswith(_spectral_extensions()):
        from napari_cryomat.io.spectral import read_spectral

        return read_spectral(path)
    raise BatchInputError(
        f"{path.name}: not an image format napari-cryomat reads (MRC, TIFF, DM3/DM4, EMD, SER, ...)."
    )


def _spatial_pixel_size(kwargs: dict) -> float | None:
    """Å per pixel of the last two axes, or None when they are not calibrated in Å."""
    units = list(kwargs.get("units") or [])
    scale = list(kwargs.get("scale") or [])
    if len(units) < 2 or len(scale) < 2:
        return None
    if any(str(u) != "angstrom" for u in units[-2:]):
        return None
    sy, sx = float(scale[-2]), float(scale[-1])
    if not (np.isfinite(sx) and sx > 0):
        return None
    if abs(sy - sx) > 1e-3 * sx:
        raise BatchInputError(
            f"pixels are not square ({sy:g} x {sx:g} Å); segmentation and measurements need square pixels."
        )
    return sx


def _unsuitable(layer: tuple) -> str | None:
    """Why the batch cannot segment this layer (named, for the file's message), or None when it can."""
    data, kwargs, kind = (tuple(layer) + ({}, "image"))[:3]
    meta = kwargs.get("metadata") or {}
    name = f"'{kwargs.get('name', kind)}'"
    if data is None or kind != "image":
        return f"{name} is a {kind} layer"
    if kwargs.get("rgb"):
        return f"{name} is an RGB picture"
    if "spectrum_image" in meta or "spectrum" in meta:
        return f"{name} is a spectrum or spectrum image"
    units = [str(u) for u in (kwargs.get("units") or [])]
    if any(u.startswith("1/") for u in units[-2:]):
        return f"{name} is a diffraction pattern or an FFT (axes in {units[-1]})"  # not an image of particles
    if np.ndim(data) not in (2, 3):
        return f"{name} has {np.ndim(data)} dimensions {tuple(np.shape(data))}"
    if min(np.shape(data)[-2:]) < 8:
        return f"{name} is {' x '.join(str(n) for n in np.shape(data)[-2:])} px (at least 8 x 8 needed)"
    return None


def image_layer(path) -> tuple:
    """The LayerData ``(data, kwargs, "image")`` of the image the batch segments in ``path``: the
    first 2D image or stack the project's reader returns. Raises :class:`BatchInputError`."""
    path = Path(path)
    try:
        layers = _read_layers(path)
    except BatchInputError:
        raise
    except ImportError as exc:
        raise BatchInputError(f"{path.name}: {exc}") from None
    except (ValueError, OSError) as exc:  # MRCError, TIFFError, SpectralError name the file already
        text = str(exc)
        raise BatchInputError(text if path.name in text else f"{path.name}: {text}") from None
    reasons = [_unsuitable(layer) for layer in layers]
    images = [layer for layer, reason in zip(layers, reasons) if reason is None]
    if not images:
        held = "; ".join(reasons[:4]) + ("; ..." if len(reasons) > 4 else "") if reasons else "it holds nothing"
        raise BatchInputError(f"{path.name}: holds no 2D image or image stack to segment ({held}).")
    return images[0], len(images)


def open_image(path) -> ImageSource:
    """Open ``path`` lazily with the project's readers (see :func:`image_layer`).

    Returns an :class:`ImageSource` whose ``frames`` are (T, Y, X): a 2D image gives T = 1, a
    stack or movie its frames (a 3D MRC is treated as frames too: they are segmented one by one).

    Raises
    ------
    BatchInputError
        The file is missing, unreadable, or holds no 2D image (a spectrum, a diffraction pattern,
        an RGB picture); the message names the file.
    """
    path = Path(path)
    (data, kwargs, _), n_images = image_layer(path)
    try:
        pixel_size = _spatial_pixel_size(kwargs)
    except BatchInputError as exc:
        raise BatchInputError(f"{path.name}: {exc}") from None
    frames = data[None] if np.ndim(data) == 2 else data
    return ImageSource(path=path, frames=frames, pixel_size=pixel_size,
                       layer_name=str(kwargs.get("name", path.stem)), n_layers=n_images,
                       is_stack=np.ndim(data) == 3)
