"""TIFF images and stacks from microscopes, opened lazily with tifffile and calibrated from the
vendors' own tags.

Data
----
Every image series of the file becomes a layer (an Olympus file with a colour preview and the
image gives two). Uncompressed, contiguous series are memory-mapped (``tifffile.memmap``);
compressed or scattered ones become a dask array that decodes one page when a slice needs it
(JPEG, LZW, Deflate, ... through ``imagecodecs``). RGB(A) series open as RGB layers. In napari, a
grey 2D image with a side of 2048 pixels or more, or a stack of such frames (not a "z" stack), opens
with binned overview levels (multiscale, io/_pyramid.py); :func:`read_tiff` returns the one array.
The text an SEM saves with the scan is left out: an FEI/Thermo Fisher data bar under it, a Zeiss
SmartSEM data zone drawn over its last rows (``metadata["tiff"]["databar_rows"]`` says how many).

Calibration (first found wins), always through :mod:`napari_cryomat.core.units`
-------------------------------------------------------------------------------
========================  =======================================================================
this plugin's own files   ``voxel_size_angstrom`` in the JSON description (and ``labels``)
FEI / Thermo Fisher       ``fei_metadata``: ``Scan.PixelWidth/PixelHeight`` (m), else the beam's
                          ``HFW/VFW`` over ``Image.ResolutionX/Y``
Zeiss SEM                 ``sem_metadata``: the pixel size of a 1024-wide scan, scaled to the width
TVIPS                     ``tvips_metadata``: ``PixelSizeX/Y`` (nm), else the resolution tags
Olympus SIS               ``pixelsizex/y`` (m) of the SIS tag
JEOL SightX               magnification (image) or camera length and high tension (diffraction,
                          1/Å) with the resolution tags
Hamamatsu streak camera   wavelength axis (nm, spectral) and time axis (s) from the HPD-TA tables
OME-TIFF                  ``PhysicalSizeX/Y/Z`` with their units, ``TimeIncrement``
DigitalMicrograph export  Gatan's private tags 65003-65011 (units, scales, offsets; z may be time)
ImageJ                    ``unit`` with the resolution tags, ``spacing`` (z), ``finterval`` (t)
========================  =======================================================================

Anything else opens in pixels (napari's "pixel" unit), never as "1 Å".

Damage
------
Every failure becomes :class:`TIFFError` naming the file. Special files (FIFO, device, folder) are
refused before anything is opened. A file whose pages end beyond the end of the file (a truncated
transfer) opens with the complete pages only, and says so; if the first page is damaged it is
refused. A page that cannot be decoded later shows as zeros with a warning naming the file and the
page, never as an exception inside napari.
"""

from __future__ import annotations

import math
import os
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from napari_cryomat.core import units as U
from napari_cryomat.io._guard import refuse_special_file
from napari_cryomat.io._pyramid import with_overview

__all__ = ["read_tiff", "napari_get_reader", "napari_read_tiff", "TIFFError", "tiff_calibration"]

_IMAGECODECS_HINT = "pip install imagecodecs"
# a series that cannot be read page by page is read whole on first access: only below this size
_WHOLE_SERIES_LIMIT = 1 << 30


class TIFFError(ValueError):
    """A file that cannot be opened as TIFF; the message names the file and what is wrong."""


# -------------------------------------------------------------------------------------------------
# napari entry points
# -------------------------------------------------------------------------------------------------
def napari_get_reader(path):
    """npe2 reader contribution: :func:`napari_read_tiff` for ``.tif``/``.tiff``, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    return napari_read_tiff if str(path).lower().endswith((".tif", ".tiff")) else None


def napari_read_tiff(path):
    """Read for napari; every failure ends in a notification naming the file, never a traceback."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        return with_overview(read_tiff(path))  # a big 2D image or a stack of big frames: binned overview levels
    except TIFFError as err:
        message = str(err)
    except MemoryError as err:
        message = f"{Path(path).name}: not enough memory to open it ({err})."
    except Exception as err:  # noqa: BLE001 - nothing may reach napari as a traceback
        message = f"{Path(path).name}: could not be read as TIFF ({type(err).__name__}: {err})."
    from napari.utils import notifications

    notifications.show_error(message)
    return [(None,)]


# -------------------------------------------------------------------------------------------------
# reading
# -------------------------------------------------------------------------------------------------
def read_tiff(path: str | os.PathLike) -> list[tuple]:
    """Open a TIFF lazily as LayerData: one layer per image series, calibrated from the vendor tags.

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``kwargs["scale"]``/``["translate"]``/``["units"]`` per axis (Å, 1/Å, s, nm for a
        spectral axis, "pixel" when unknown); ``kwargs["metadata"]["tiff"]`` holds the path, the
        series index, the calibration source (``"FEI"``, ``"ImageJ"``, ...) and the file's own
        units and values per axis. Labels saved by this plugin open as a labels layer.

    Raises
    ------
    TIFFError
        For a missing, special, empty, truncated, corrupt or non-TIFF file, or one that needs
        ``imagecodecs`` when it is not installed.

    Examples
    --------
    >>> [(data, kwargs, kind)] = read_tiff("helios.tif")    # doctest: +SKIP
    >>> kwargs["units"], kwargs["scale"]                     # doctest: +SKIP
    (('angstrom', 'angstrom'), (33724.0, 33724.0))
    """
    import tifffile

    path = Path(path)
    name = path.name
    st = refuse_special_file(path, error=TIFFError)
    size = st.st_size
    if size == 0:
        raise TIFFError(f"{name}: the file is empty (0 bytes).")
    from napari_cryomat.io import _sniff

    kind = _sniff.sniff(path)
    if kind != "tiff":
        raise TIFFError(f"{name}: this is {_sniff.describe(kind)}, not a TIFF image as its extension says.")
    try:
        with tifffile.TiffFile(path) as tif:
            plans = [_plan_series(tif, i, s, size, name) for i, s in enumerate(tif.series)]
    except TIFFError:
        raise
    except MemoryError as exc:
        raise TIFFError(f"{name}: its header asks for more memory than there is ({exc}); the file is damaged.") from None
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds of errors on bad files
        raise TIFFError(f"{name}: not a readable TIFF ({type(exc).__name__}: {exc}).") from None
    plans = [p for p in plans if p is not None]
    if not plans:
        raise TIFFError(f"{name}: the file holds no image.")
    layers = []
    for plan in plans:
        layers.append(_layer(path, plan))
    return layers


def _plan_series(tif, index: int, series, size: int, name: str) -> dict | None:
    """Everything needed to build one layer, read while the file is open (no pixel data)."""
    shape = tuple(int(s) for s in series.shape)
    if not shape or int(np.prod(shape)) == 0:
        return None
    dtype = np.dtype(series.dtype)
    axes = str(series.axes)
    page0 = series.pages[0] if len(series.pages) else None
    if page0 is None:
        return None
    keyframe = getattr(page0, "keyframe", page0)
    rgb = (axes.endswith("S") and shape[-1] in (3, 4)
           and int(getattr(keyframe, "photometric", 0)) == 2)  # PHOTOMETRIC.RGB
    spatial_axes = axes[:-1] if rgb else axes
    _check_codec(keyframe, name)
    _check_page_size(keyframe, dtype, name)
    # truncation: pages whose data end beyond the end of the file
    n_planes = int(np.prod(shape[: len(spatial_axes) - 2] or (1,)))
    plane_shape = shape[len(spatial_axes) - 2:]
    good, n_pages = _complete_pages(series, size)
    truncated_to = None
    if good < n_pages:
        if good == 0:
            raise TIFFError(f"{name}: the file is truncated or damaged: its first image lies beyond the end "
                            f"of the file ({size:,} bytes). Copy it again.")
        if n_pages != n_planes:
            raise TIFFError(f"{name}: the file is truncated: {n_pages - good} of {n_pages} pages lie beyond "
                            "its end. Copy it again.")
        truncated_to = good
    contiguous = series.dataoffset is not None
    if contiguous and n_pages == 1 and n_planes > 1:  # ImageJ-style: one IFD, planes back to back
        plane_bytes = int(np.prod(plane_shape)) * dtype.itemsize
        fit = max(0, (size - int(series.dataoffset)) // max(plane_bytes, 1))
        if fit < n_planes:
            if fit == 0:
                raise TIFFError(f"{name}: the file is truncated: not even its first image is complete. Copy it again.")
            truncated_to = int(fit)
    meta = _shaped_meta(tif)
    cal = tiff_calibration(tif, keyframe, spatial_axes, shape[: len(spatial_axes)])
    databar_rows = (_fei_databar_rows(tif, spatial_axes, shape[: len(spatial_axes)])
                    or _zeiss_datazone_rows(tif, keyframe, spatial_axes, n_pages))
    return {
        "databar_rows": databar_rows,
        "index": index, "shape": shape, "dtype": dtype, "axes": axes, "rgb": rgb,
        "n_pages": n_pages, "n_planes": n_planes, "plane_shape": plane_shape,
        "contiguous": contiguous, "dataoffset": series.dataoffset, "truncated_to": truncated_to,
        "compression": int(getattr(keyframe, "compression", 1)), "labels": bool(meta.get("labels")),
        "cal": cal, "n_series": len(tif.series),
        "memmappable": bool(getattr(keyframe, "is_memmappable", False)) and contiguous,
    }


def _fei_databar_rows(tif, axes: str, shape: tuple) -> int:
    """Rows of the data bar an FEI / Thermo Fisher SEM or FIB burns in under the scanned image (0 if none).

    ``Image.ResolutionY`` is the scanned height; a saved TIFF may be taller by the data bar (HV, HFW,
    a scale bar as text and lines: 29 rows under a 512 x 442 Helios scan, 39 under a 768 x 512 navcam).
    It is no part of the specimen: segmented, it became 512 objects of text; in an FFT or a drift
    correction it is a fixed bright edge. The image opens without it (what users crop by hand).
    """
    try:
        image = (tif.fei_metadata or {}).get("Image") or {}
        rows, cols = int(image["ResolutionY"]), int(image["ResolutionX"])
    except (KeyError, TypeError, ValueError):
        return 0
    if not axes.endswith("YX") or cols != shape[-1] or not 0 < rows < shape[-2]:
        return 0
    return int(shape[-2]) - rows


#: a Zeiss data zone's border is a drawn line: one grey value over at least this share of the width
_ZONE_LINE_SHARE = 0.97
#: ... and it lies in the bottom quarter of the frame (SmartSEM's zone is ~9-10 % of the height)
_ZONE_SEARCH_SHARE = 0.25
#: the first page is read to find the zone only below this size (SmartSEM saves single images)
_ZONE_READ_LIMIT = 1 << 28


def _zeiss_datazone_rows(tif, page, axes: str, n_pages: int) -> int:
    """Rows from the top of the data zone a Zeiss SmartSEM draws over the bottom of its scan (0 if none).

    Unlike FEI's data bar (added under the scan, :func:`_fei_databar_rows`), SmartSEM's zone (scale bar,
    EHT, WD, detector, logo as text in a framed box) is drawn over the last ~10 % of the scanned rows
    and its height is in no tag (``Store resolution`` and ``Height`` include it): in hyperspy's
    test_tiff_Zeiss_SEM_1k.tif a black frame from row 691 to 766 of 768, in the 512-pixel file rows
    350-382 of 384. Segmented, its text gave most of the 1k file's 7068 objects. It is found as that
    frame: a row of one grey value across the width (the top border) in the bottom quarter, a second row
    of the same value below it (the bottom border), both ends of the line in that value on every row
    between (the sides), and an inside of another value (a dark band at the bottom is no zone). Everything
    from the top border down is left out (what users crop by hand).
    """
    if not tif.sem_metadata or n_pages != 1 or axes != "YX":
        return 0
    ny, nx = (int(v) for v in page.shape[-2:])
    if ny < 32 or nx < 32 or ny * nx * np.dtype(page.dtype).itemsize > _ZONE_READ_LIMIT:
        return 0
    try:
        bottom = np.asarray(page.asarray()).reshape(ny, nx)[ny - int(ny * _ZONE_SEARCH_SHARE):]
    except Exception:  # noqa: BLE001 - a page that cannot be decoded is reported when it is read
        return 0
    lines = []  # (row, value, first column, last column) of rows that are one drawn line
    for r, row in enumerate(bottom):
        values, counts = np.unique(row, return_counts=True)
        k = int(np.argmax(counts))
        if counts[k] >= _ZONE_LINE_SHARE * nx:
            on = np.flatnonzero(row == values[k])
            lines.append((r, values[k], int(on[0]), int(on[-1])))
    for i, (top, value, left, right) in enumerate(lines):
        for below, value_b, _, _ in lines[i + 1:]:
            if value_b != value or below - top < 8:
                continue
            box = bottom[top:below + 1]
            if np.all(box[:, [left, right]] == value) and np.mean(box[1:-1] == value) < 0.5:
                return len(bottom) - top
    return 0


def _check_codec(page, name: str) -> None:
    compression = int(getattr(page, "compression", 1))
    if compression == 1:
        return
    import tifffile

    try:
        tifffile.TIFF.DECOMPRESSORS[compression]
    except KeyError as exc:
        import importlib.util

        try:
            label = tifffile.COMPRESSION(compression).name
        except ValueError:
            label = str(compression)
        if importlib.util.find_spec("imagecodecs") is None:
            raise TIFFError(
                f"{name}: its images are compressed ({label}), which needs the package 'imagecodecs'. "
                f"Install it with: {_IMAGECODECS_HINT}"
            ) from exc
        raise TIFFError(f"{name}: its compression ({label}) is not supported by tifffile/imagecodecs.") from exc
    except Exception:  # noqa: BLE001 - unknown codec number: decoding will say so
        return


def _check_page_size(page, dtype, name: str) -> None:
    """Refuse a page whose header promises more pixels than its data can hold (a damaged width or
    height) or than memory can decode (a compression bomb), before anything is allocated."""
    from napari_cryomat.core._validate import memory_budget

    shape = tuple(int(s) for s in getattr(page, "shaped", None) or page.shape)
    decoded = int(np.prod(shape)) * dtype.itemsize
    stored = sum(int(c) for c in (getattr(page, "databytecounts", ()) or ()))
    compression = int(getattr(page, "compression", 1))
    dims = " × ".join(str(s) for s in page.shape)
    if compression == 1 and stored and decoded > stored:
        raise TIFFError(f"{name}: its header says an image has {dims} pixels ({decoded:,} bytes) but the page "
                        f"holds {stored:,} bytes; the file is damaged.")
    # decoding a page, the contrast sample and napari's first look (float copies for its texture)
    # hold several copies of it: one page may use a quarter of the memory budget (itself half of
    # the free memory, counting an address-space limit)
    limit = memory_budget() // 4
    if decoded > limit:
        raise TIFFError(f"{name}: one image of it ({dims} pixels) needs {decoded / 2**30:.2f} GiB to decode, more "
                        f"than an eighth of the free memory ({8 * limit / 2**30:.1f} GiB); the header is damaged, "
                        "the file is a compression bomb, or this machine has too little memory for it.")


def _complete_pages(series, size: int) -> tuple[int, int]:
    """(pages whose data lie inside the file, pages in the series)."""
    pages = series.pages
    n = len(pages)
    for i in range(n):
        page = pages[i]
        if page is None:
            return i, n
        offsets = getattr(page, "dataoffsets", ()) or ()
        counts = getattr(page, "databytecounts", ()) or ()
        for o, c in zip(offsets, counts):
            if o + c > size:
                return i, n
    return n, n


def _shaped_meta(tif) -> dict:
    try:
        meta = tif.shaped_metadata
        return dict(meta[0]) if meta else {}
    except Exception:  # noqa: BLE001
        return {}


def _layer(path: Path, plan: dict) -> tuple[Any, dict, str]:
    name = path.name
    data = _lazy_array(path, plan)
    cal = plan["cal"]
    n_sp = data.ndim - (1 if plan["rgb"] else 0)
    if plan["databar_rows"]:  # the instrument's data bar under the scan (_fei_databar_rows): not the specimen
        rows = np.shape(data)[n_sp - 2] - plan["databar_rows"]
        data = data[(slice(None),) * (n_sp - 2) + (slice(0, rows),)]
    axes_info = cal["axes"][-n_sp:] if len(cal["axes"]) >= n_sp else \
        [_pixel_axis("?")] * (n_sp - len(cal["axes"])) + cal["axes"]
    axes_info = _displayable(axes_info)
    kwargs = {
        "name": path.stem if plan["n_series"] == 1 else f"{path.stem} [{plan['index']}]",
        "scale": tuple(a["scale"] for a in axes_info),
        "translate": tuple(a["offset"] for a in axes_info),
        "units": tuple(a["unit"] for a in axes_info),
        "axis_labels": tuple(_unique_labels([a["label"] for a in axes_info])),
        "metadata": {"tiff": {"path": str(path), "series": plan["index"], "calibration_source": cal["source"],
                              "axes": plan["axes"], "calibration": axes_info,
                              "truncated_to": plan["truncated_to"], "databar_rows": plan["databar_rows"]}},
    }
    if cal.get("voxel_size_angstrom"):
        kwargs["metadata"]["tiff"]["voxel_size_angstrom"] = cal["voxel_size_angstrom"]
    if plan["truncated_to"] is not None:
        _warn(f"{name}: the file is truncated: showing the first {plan['truncated_to']} of "
              f"{plan['n_planes']} images (the rest lie beyond the end of the file).")
    if plan["labels"] and np.issubdtype(data.dtype, np.integer):
        _first_look(data, name)
        return (data, kwargs, "labels")
    if plan["rgb"]:
        kwargs["rgb"] = True
        _first_look(data, name)
        return (data, kwargs, "image")
    try:
        from napari_cryomat.io.mrc import strided_contrast_limits

        kwargs["contrast_limits"] = strided_contrast_limits(data)
    except MemoryError as exc:
        raise TIFFError(f"{name}: not enough memory to read a sample of it ({exc}).") from None
    except Exception as exc:  # noqa: BLE001
        raise TIFFError(f"{name}: its image data cannot be read ({type(exc).__name__}: {exc}).") from None
    return (data, kwargs, "image")


def _displayable(axes_info: list[dict]) -> list[dict]:
    """napari draws the two displayed axes in one world: if they measure different things (time
    and wavelength on a streak camera), a true aspect ratio is meaningless (1e-12 s against
    0.02 nm) and napari warns of mismatched units. Those two axes are then shown in pixels; their
    calibration stays in the axis labels and in ``metadata["tiff"]["calibration"]``."""
    if len(axes_info) < 2:
        return axes_info
    a, b = axes_info[-2], axes_info[-1]
    if a["kind"] == b["kind"] or U.PIXEL in (a["kind"], b["kind"]):
        return axes_info
    shown = []
    for ax in (a, b):
        shown.append({**ax, "kind": U.PIXEL, "unit": U.PIXEL, "scale": 1.0, "offset": 0.0,
                      "label": f"{ax['label']} ({ax['scale']:.4g} {ax['unit']}/pixel)",
                      "physical": {"kind": ax["kind"], "unit": ax["unit"], "scale": ax["scale"],
                                   "offset": ax["offset"]}})
    return list(axes_info[:-2]) + shown


def _first_look(data, name: str) -> None:
    """Read what napari reads first (the middle section) so a damaged file fails now, named."""
    lead = tuple(s // 2 for s in data.shape[:-2]) if data.ndim > 2 else ()
    try:
        np.asarray(data[lead] if lead else data[...])
    except Exception as exc:  # noqa: BLE001
        raise TIFFError(f"{name}: its image data cannot be read ({type(exc).__name__}: {exc}).") from None


def _unique_labels(labels):
    out, seen = [], {}
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab}{seen[lab]}")
    return out


def _warn(message: str) -> None:
    try:
        from napari.utils import notifications

        notifications.show_warning(message)
    except Exception:  # noqa: BLE001 - no napari: a warning is still a warning
        import warnings

        warnings.warn(message, stacklevel=3)


def _lazy_array(path: Path, plan: dict):
    import tifffile

    name = path.name
    shape, dtype = plan["shape"], plan["dtype"]
    n_lead = len(shape) - len(plan["plane_shape"])
    keep = plan["truncated_to"]
    if plan["memmappable"] and keep is None:
        try:
            return tifffile.memmap(str(path), series=plan["index"], mode="r")
        except Exception:  # noqa: BLE001 - fall back to reading page by page
            pass
    if plan["contiguous"] and plan["compression"] == 1 and plan["n_pages"] == 1 and plan["n_planes"] > 1:
        # one IFD, planes back to back (ImageJ hyperstacks): map the complete planes directly
        n = keep if keep is not None else plan["n_planes"]
        mm = np.memmap(path, dtype=dtype, mode="r", offset=int(plan["dataoffset"]),
                       shape=(n,) + tuple(plan["plane_shape"]))
        return mm if keep is not None else mm.reshape(shape)
    import dask
    import dask.array as da

    if plan["n_pages"] == plan["n_planes"]:
        reader = _PageReader(path, plan["index"], tuple(plan["plane_shape"]), dtype)
        n = keep if keep is not None else plan["n_pages"]
        planes = [da.from_delayed(dask.delayed(reader.read, pure=True)(i), shape=tuple(plan["plane_shape"]),
                                  dtype=dtype) for i in range(n)]
        stack = da.stack(planes) if len(planes) > 1 else planes[0][None]
        if keep is not None:
            return stack
        return stack.reshape(shape) if n_lead else stack[0]
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes > _WHOLE_SERIES_LIMIT:
        raise TIFFError(f"{name}: this TIFF layout (tiles or planes spread over {plan['n_pages']} pages) can only "
                        f"be read whole, and it holds {nbytes / 2**30:.1f} GiB. Convert it to one page per image.")

    def read_all():
        try:
            with tifffile.TiffFile(path) as tif:
                return tif.series[plan["index"]].asarray()
        except Exception as exc:  # noqa: BLE001
            _warn(f"{name}: the images cannot be decoded ({type(exc).__name__}: {exc}); shown as zeros.")
            return np.zeros(shape, dtype)

    return da.from_delayed(dask.delayed(read_all, pure=True)(), shape=shape, dtype=dtype)


class _PageReader:
    """Decodes one page at a time from one open file handle (locked: tifffile handles are not
    thread-safe). A page that fails to decode is shown as zeros, with one warning per file."""

    def __init__(self, path: Path, series: int, page_shape: tuple, dtype):
        self.path, self.series, self.page_shape, self.dtype = path, series, page_shape, dtype
        self._tif = None
        self._lock = threading.Lock()
        self._warned = False

    def read(self, i: int) -> np.ndarray:
        import tifffile

        with self._lock:
            try:
                if self._tif is None:
                    self._tif = tifffile.TiffFile(self.path)
                page = self._tif.series[self.series].pages[i]
                out = page.asarray()
                return out.reshape(self.page_shape)
            except Exception as exc:  # noqa: BLE001 - one bad page must not break napari's drawing
                if not self._warned:
                    self._warned = True
                    _warn(f"{self.path.name}: page {i + 1} cannot be decoded ({type(exc).__name__}: {exc}); "
                          "damaged pages are shown as zeros.")
                return np.zeros(self.page_shape, self.dtype)

    def __del__(self):
        try:
            if self._tif is not None:
                self._tif.close()
        except Exception:  # noqa: BLE001
            pass


# -------------------------------------------------------------------------------------------------
# calibration
# -------------------------------------------------------------------------------------------------
def _pixel_axis(label: str) -> dict:
    return {"label": label, "kind": U.PIXEL, "scale": 1.0, "offset": 0.0, "unit": U.PIXEL,
            "file_unit": None, "file_scale": None, "file_offset": None}


def _axis(label: str, scale, unit, offset=0.0, *, spectral: bool = False) -> dict:
    """One axis in canonical units from the file's (scale, unit, offset)."""
    try:
        cal = U.calibrate_axis(scale, unit, spectral_length_is_wavelength=spectral)
    except Exception:  # noqa: BLE001
        cal = U.AxisCalibration(U.PIXEL, 1.0, U.PIXEL)
    off = 0.0
    if cal.kind != U.PIXEL:
        canon = U.canonical_unit(unit, spectral_length_is_wavelength=spectral)
        try:
            off = float(offset or 0.0) * canon[1] if canon else 0.0
        except (TypeError, ValueError):
            off = 0.0
        if not math.isfinite(off):
            off = 0.0
    return {"label": label, "kind": cal.kind, "scale": float(cal.scale), "offset": off, "unit": cal.unit,
            "file_unit": None if unit is None else str(unit), "file_scale": _f(scale), "file_offset": _f(offset)}


def _f(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def tiff_calibration(tif, page, axes: str, shape: tuple) -> dict:
    """Per-axis calibration of a series with tifffile axis letters ``axes`` (no trailing ``S``).

    Returns ``{"source": str, "axes": [dict per axis]}``; each axis dict has ``label``, ``kind``,
    ``scale``, ``offset``, ``unit`` (canonical) and the file's ``file_unit``/``file_scale``/
    ``file_offset``. Never raises: an unreadable tag gives pixels.
    """
    found: dict[str, tuple] = {}
    source = "none"
    for label, parser in _PARSERS:
        try:
            found = parser(tif, page, axes, shape) or {}
        except Exception:  # noqa: BLE001 - a vendor tag we cannot parse is a calibration we do not have
            found = {}
        if found:
            source = label
            break
    if source == "cryomat":
        vs = [float(v) for v in found["voxel_size_angstrom"]]
        vs = ([1.0] * len(axes) + vs)[-len(axes):]
        out = [_axis(a.lower(), v, "angstrom") for a, v in zip(axes, vs)]
        return {"source": source, "axes": out, "voxel_size_angstrom": tuple(vs)}
    out = []
    for letter in axes:
        key = letter.lower()
        if key in found:
            scale, unit, offset, *rest = found[key] + (0.0,) * (3 - len(found[key]))
            out.append(_axis(_LABELS.get(letter, key), scale, unit, offset, spectral=bool(rest and rest[0])))
        else:
            out.append(_pixel_axis(_LABELS.get(letter, key)))
    return {"source": source, "axes": out}


_LABELS = {"X": "x", "Y": "y", "Z": "z", "T": "t", "C": "channel", "I": "image", "Q": "q", "E": "lambda"}


def _resolution(page) -> tuple[float, float] | None:
    """(x, y) size of a pixel in the resolution unit, from XResolution/YResolution."""
    tags = page.tags
    xr, yr = tags.get("XResolution"), tags.get("YResolution")
    if xr is None or yr is None:
        return None
    (xn, xd), (yn, yd) = xr.value, yr.value
    if not (xn and yn and xd and yd):
        return None
    return xd / xn, yd / yn


def _p_cryomat(tif, page, axes, shape):
    meta = _shaped_meta(tif)
    if "voxel_size_angstrom" in meta:
        return {"voxel_size_angstrom": meta["voxel_size_angstrom"]}
    return None


def _p_fei(tif, page, axes, shape):
    meta = tif.fei_metadata
    if not meta:
        return None
    scan = meta.get("Scan") or {}
    if "PixelWidth" in scan and "PixelHeight" in scan:
        return {"x": (float(scan["PixelWidth"]), "m"), "y": (float(scan["PixelHeight"]), "m")}
    image = meta.get("Image") or {}
    for beam in ("IRBeam", "EBeam"):
        b = meta.get(beam) or {}
        if "HFW" in b and "VFW" in b and image.get("ResolutionX") and image.get("ResolutionY"):
            return {"x": (float(b["HFW"]) / float(image["ResolutionX"]), "m"),
                    "y": (float(b["VFW"]) / float(image["ResolutionY"]), "m")}
    return None


def _p_zeiss(tif, page, axes, shape):
    meta = tif.sem_metadata
    if not meta:
        return None
    width = page.shape[1] if len(page.shape) >= 2 else None
    try:
        # the primary SEM parameters in SI units: index 3 is the pixel size of a 1024-wide scan (m)
        px = float(meta[""][3]) * 1024 / float(width)
        if px > 0:
            return {"x": (px, "m"), "y": (px, "m")}
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        pass
    for key in ("ap_image_pixel_size", "ap_pixel_size"):
        if key in meta:
            _, value, unit = meta[key][:3]
            return {"x": (float(value), unit), "y": (float(value), unit)}
    return None


def _p_tvips(tif, page, axes, shape):
    meta = tif.tvips_metadata
    if not meta:
        return None
    if meta.get("PixelSizeX") and meta.get("PixelSizeY"):
        return {"x": (float(meta["PixelSizeX"]), "nm"), "y": (float(meta["PixelSizeY"]), "nm")}
    res = _resolution(page)
    if res:
        return {"x": (res[0] * 1e-2, "m"), "y": (res[1] * 1e-2, "m")}
    return None


def _p_sis(tif, page, axes, shape):
    for code in (33560, 33471):
        tag = page.tags.get(code)
        if tag is not None and isinstance(tag.value, dict) and "pixelsizex" in tag.value:
            v = tag.value
            return {"x": (round(float(v["pixelsizex"]), 15), "m"), "y": (round(float(v["pixelsizey"]), 15), "m")}
    return None


def _p_jeol_sightx(tif, page, axes, shape):
    make = page.tags.get("Make")
    if make is None or make.value != "JEOL Ltd.":
        return None
    text = "".join(line.strip(" \r\n\t\x01\x00") for line in str(page.description).split("\n"))
    root = ET.fromstring(text)

    def find(path):
        node = root.find(path)
        return None if node is None else (node.text or "").strip()

    eos = find("Eos/EosMode")
    mode = find("ImageFormingSystem/ModeString")
    res = _resolution(page)
    if res is None or eos != "eosTEM":
        return None
    unit_tag = page.tags.get("ResolutionUnit")
    per_m = 0.0254 if unit_tag is not None and int(unit_tag.value) == 2 else 0.01  # inch or cm, in m
    value = float(find("ImageFormingSystem/SelectorValue"))
    if mode == "MAG":
        return {"x": (res[0] * per_m / value * 1e9, "nm"), "y": (res[1] * per_m / value * 1e9, "nm")}
    if mode == "DIFF":
        camera = value / {"mm": 1000.0, "cm": 100.0}.get(find("ImageFormingSystem/SelectorUnitString") or "", 1.0)
        ht = float(find("ElectronGun/AccelerationVoltage"))
        m_e, e_c, c, h = 9.1093837015e-31, 1.602176634e-19, 299792458.0, 6.62607015e-34
        wavelength = h / math.sqrt(2 * m_e * e_c * ht * (1 + e_c * ht / (2 * m_e * c**2)))
        k = per_m / (camera * wavelength * 1e9)
        return {"x": (res[0] * k, "1/nm"), "y": (res[1] * k, "1/nm")}
    return None


def _p_hamamatsu(tif, page, axes, shape):
    artist, software = page.tags.get("Artist"), page.tags.get("Software")
    if artist is None or software is None or not str(artist.value).startswith("Copyright Hamamatsu") \
            or not str(software.value).startswith("HPD-TA"):
        return None
    import csv

    scaling = {}
    for row in csv.reader(str(page.description).splitlines(), delimiter=",", quotechar='"'):
        if row and row[0].strip(" []") == "Scaling":
            for element in row[1:]:
                key, _, value = element.partition("=")
                scaling[key] = value.strip('"')
    out = {}
    fh = tif.filehandle
    for letter, n in (("x", page.shape[1]), ("y", page.shape[0])):
        where = scaling.get(f"Scaling{letter.upper()}ScalingFile", "")
        unit = scaling.get(f"Scaling{letter.upper()}Unit")
        digits = "".join(ch for ch in where if ch.isdigit())
        if where.startswith(("Other", "Focus mode")) or not digits or not unit:
            continue
        fh.seek(int(digits))
        values = np.frombuffer(fh.read(4 * n), dtype="<f4").astype(np.float64)
        if values.size != n or not np.all(np.isfinite(values)):
            continue
        slope, intercept = np.polyfit(np.arange(n), values, 1)
        # the streak camera's horizontal axis is the spectrometer's wavelength
        out[letter] = (float(slope), unit, float(intercept), letter == "x" and U.is_length(unit))
    return out or None


def _p_ome(tif, page, axes, shape):
    xml = tif.ome_metadata
    if not xml:
        return None
    root = ET.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("}Pixels") or el.tag == "Pixels"), None)
    if pixels is None:
        return None
    out = {}
    for letter in "xyz":
        size = pixels.get(f"PhysicalSize{letter.upper()}")
        if size is not None:
            out[letter] = (float(size), pixels.get(f"PhysicalSize{letter.upper()}Unit", "µm"))
    if pixels.get("TimeIncrement") is not None:
        out["t"] = (float(pixels.get("TimeIncrement")), pixels.get("TimeIncrementUnit", "s"))
    return out or None


def _p_dm(tif, page, axes, shape):
    tags = page.tags
    if not any(code in tags for code in (65003, 65004, 65009, 65010)):
        return None
    out = {}
    # Gatan's order is DigitalMicrograph's: x (columns), y (rows), z
    for letter, (unit, scale, offset) in (("x", (65003, 65009, 65006)), ("y", (65004, 65010, 65007)),
                                          ("z", (65005, 65011, 65008))):
        if scale in tags:
            u = tags[unit].value if unit in tags else None
            out[letter] = (float(tags[scale].value), u, float(tags[offset].value) if offset in tags else 0.0)
    if "z" in out:
        out.setdefault("i", out["z"])  # tifffile calls a plain stack's axis "I"
    return out or None


def _p_imagej(tif, page, axes, shape):
    meta = tif.imagej_metadata
    if not meta:
        return None
    unit = meta.get("unit")
    unit = {"micron": "µm", "\\u00B5m": "µm", "um": "µm"}.get(str(unit), unit)
    out = {}
    res = _resolution(page)
    if res and unit and U.is_length(unit):
        out["x"], out["y"] = (res[0], unit), (res[1], unit)
        if meta.get("spacing"):
            out["z"] = (float(meta["spacing"]), unit)
    if meta.get("finterval"):
        out["t"] = (float(meta["finterval"]), meta.get("tunit", "s") if U.is_time(meta.get("tunit", "s")) else "s")
    return out or None


_PARSERS = (
    ("cryomat", _p_cryomat), ("FEI", _p_fei), ("Zeiss", _p_zeiss), ("TVIPS", _p_tvips), ("Olympus SIS", _p_sis),
    ("JEOL SightX", _p_jeol_sightx), ("Hamamatsu", _p_hamamatsu), ("OME", _p_ome),
    ("DigitalMicrograph", _p_dm), ("ImageJ", _p_imagej),
)
