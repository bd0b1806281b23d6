"""Vendor formats through rosettasciio (optional, GPL): every signal of a file, by signal type.

Formats (extension -> rosettasciio reader): Gatan ``.dm3``/``.dm4``; Thermo Fisher Velox and other
``.emd``; Bruker ``.bcf``/``.spx``; EMSA ``.msa``; HyperSpy ``.hspy``; FEI TIA ``.emi``/``.ser``;
JEOL Analysis Station ``.asw``/``.pts``/``.img``/``.eds`` and ``.map`` when it is not an MRC map
(:func:`napari_get_map_reader` decides by content); NanoMegas ``.blo``; TVIPS ``.tvips``; Phenom
``.elid``. rosettasciio is imported only when a file is opened; without it the reader says
``pip install "napari-cryomat[formats]"``.

What each signal becomes is decided in :mod:`napari_cryomat.io._signals` from rosettasciio's own
metadata (signal type, navigation flags, units, ``post_process`` hints), not from axis positions.

Layer layout of a spectrum image
--------------------------------
The science uses (Y, X, E). A napari layer, however, aligns its axes with the other layers
from the right: a (Y, X, E) layer would put energy under the HAADF's X axis. So the layer's
``data`` is the *view* ``numpy.moveaxis(si, -1, 0)`` (E, Y, X): energy is the slider (in eV,
``units[0] == "eV"``; nm for cathodoluminescence), the displayed plane is spatial and lines up
with the HAADF and the maps. :func:`si_from_layer` gives back the (Y, X, E) array (the original
memory, no copy) with its energy axis. The metadata holds::

    metadata["spectrum_image"] = {"axes": "EYX", "signal_type": "EELS" | "EDS" | "CL" | "",
                                  "energy_axis": {"offset": eV, "scale": eV, "units": "eV", "size": n},
                                  "pixel_size": Å}

Single spectra open as (E, 1, 1) layers that also carry ``metadata["spectrum"]`` (axis, counts,
unit: see :mod:`napari_cryomat.io._signals`) for the spectrum dock; line scans as (E, 1, X).
Loading is lazy (dask) where rosettasciio allows it; files it reads only eagerly are read whole
when under :data:`EAGER_LIMIT_BYTES` and refused with a message above.

Errors
------
:class:`SpectralError` (a ``ValueError``) names the file and the problem; a missing optional
package raises ``ImportError`` with the ``pip install`` that fixes it. :func:`napari_read_spectral`
(the napari entry) turns both into a notification.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from napari_cryomat.io import _sniff
from napari_cryomat.io._guard import refuse_special_file
from napari_cryomat.io._pyramid import with_overview

__all__ = [
    "napari_get_reader",
    "napari_get_map_reader",
    "napari_read_spectral",
    "read_spectral",
    "spectrum_image_layer",
    "si_from_layer",
    "is_spectrum_image_layer",
    "write_msa",
    "write_csv",
    "SpectralError",
    "INSTALL_HINT",
    "EXTENSIONS",
]

INSTALL_HINT = 'pip install "napari-cryomat[formats]"'
EAGER_LIMIT_BYTES = 1 << 30  # files rosettasciio cannot read lazily are read whole below this size

# extension -> (rosettasciio module, format name for messages, content kinds it may have)
_FORMATS = {
    ".dm3": ("rsciio.digitalmicrograph", "Gatan DigitalMicrograph", ("dm3", "dm4")),
    ".dm4": ("rsciio.digitalmicrograph", "Gatan DigitalMicrograph", ("dm3", "dm4")),
    ".emd": ("rsciio.emd", "EMD (Velox / NCEM)", ("hdf5",)),
    ".bcf": ("rsciio.bruker", "Bruker BCF", ("bcf",)),
    ".spx": ("rsciio.bruker", "Bruker SPX", ("xml",)),
    ".msa": ("rsciio.msa", "EMSA/MSA", ("msa", "text")),
    ".hspy": ("rsciio.hspy", "HyperSpy", ("hdf5",)),
    ".emi": ("rsciio.tia", "FEI TIA", ("unknown",)),
    ".ser": ("rsciio.tia", "FEI TIA", ("ser",)),
    ".asw": ("rsciio.jeol", "JEOL Analysis Station", ("unknown",)),
    ".pts": ("rsciio.jeol", "JEOL Analysis Station", ("jeol",)),
    ".img": ("rsciio.jeol", "JEOL Analysis Station", ("jeol",)),
    ".map": ("rsciio.jeol", "JEOL Analysis Station", ("jeol",)),
    ".eds": ("rsciio.jeol", "JEOL Analysis Station", ("unknown",)),
    ".blo": ("rsciio.blockfile", "NanoMegas blockfile", ("blockfile",)),
    ".tvips": ("rsciio.tvips", "TVIPS", ("unknown",)),
    ".elid": ("rsciio.phenom", "Thermo Fisher Phenom", ("bzip2",)),
}
EXTENSIONS = tuple(_FORMATS)
_HDF5 = {".emd", ".hspy"}
_PIP_OF = {"h5py": "h5py", "sparse": "sparse", "box": "python-box", "skimage": "scikit-image",
           "numba": "numba", "imagecodecs": "imagecodecs", "tifffile": "tifffile", "pint": "pint"}

_TO_EV = {"ev": 1.0, "kev": 1000.0, "mev": 1e6}


class SpectralError(ValueError):
    """A vendor file that cannot be opened; the message names the file and what is wrong."""


def _rsciio_module(ext: str, *, label: str | None = None):
    """The rsciio plugin module for a file extension (imported lazily)."""
    ext = ext.lower() if ext.startswith(".") else "." + ext.lower()
    who = f"Opening {label}" if label else f"Opening {ext} files"
    try:
        import rsciio  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{who} needs rosettasciio, which is not installed. Install it with: {INSTALL_HINT}"
        ) from exc
    api = _FORMATS.get(ext, (None,))[0]
    if api is None:
        raise SpectralError(f"rosettasciio has no reader for {ext} files.")
    try:
        return importlib.import_module(api)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        pkg = _PIP_OF.get(str(missing).split(".")[0], str(missing))
        raise ImportError(
            f"{who} needs the package '{pkg}' (rosettasciio's {api.split('.')[-1]} reader imports it). "
            f"Install it with: {INSTALL_HINT}  (or: pip install {pkg})"
        ) from exc


def napari_get_reader(path):
    """npe2 reader contribution: :func:`napari_read_spectral` for the vendor extensions, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    if not str(path).lower().endswith(EXTENSIONS):
        return None
    return napari_read_spectral


def napari_get_map_reader(path):
    """npe2 reader for ``*.map``: MRC/CCP4 maps go to the MRC reader, anything else (JEOL
    Analysis Station maps) to rosettasciio's JEOL reader. Decided by the file's first bytes."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    if not str(path).lower().endswith(".map"):
        return None
    from napari_cryomat.io import mrc

    try:
        kind = _sniff.sniff(path)
    except (OSError, ValueError):
        return mrc.napari_read_mrc  # missing or special file: the MRC reader says so
    return mrc.napari_read_mrc if kind in ("mrc", "empty") else napari_read_spectral


def napari_read_spectral(path):
    """Read for napari: layers, or a notification naming the file and the problem (and the
    ``pip install`` that fixes a missing package) with napari's "nothing to add" sentinel."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        # a big image (a 4k DM4 or Velox micrograph) or a stack of them: binned overview levels
        layers = with_overview(read_spectral(path))
    except (SpectralError, ImportError) as err:
        _notify("error", str(err))
        return [(None,)]
    except Exception as err:  # noqa: BLE001 - nothing may reach napari as a traceback
        _notify("error", f"{Path(path).name}: could not be read ({type(err).__name__}: {err}).")
        return [(None,)]
    return layers


def _notify(kind: str, message: str) -> None:
    from napari.utils import notifications

    (notifications.show_error if kind == "error" else notifications.show_warning)(message)


def read_spectral(path) -> list[tuple[Any, dict, str]]:
    """Read one vendor file into napari LayerData tuples: one per signal (two for complex data).

    Parameters
    ----------
    path : str or PathLike
        A file with one of :data:`EXTENSIONS`.

    Returns
    -------
    list of (data, kwargs, layer_type)
        Layers named after the file's signal titles, with ``scale``/``translate``/``units`` in
        canonical units (Å, 1/Å, eV, nm for CL, s, mrad, pixel) and ``metadata["source"]``
        (path, format, title, signal type, kind), ``metadata["calibration"]`` (per axis: the
        file's units, scale, offset and axis index next to the canonical ones).

    Raises
    ------
    ImportError
        rosettasciio or a package its reader needs is missing; the message says how to install it.
    SpectralError
        The file cannot be read; the message names the file and the reason.

    Examples
    --------
    >>> layers = read_spectral("EELS_SI.dm4")         # doctest: +SKIP
    >>> [(kw["name"], kw["units"]) for _, kw, _ in layers]  # doctest: +SKIP
    [('EELS_SI', ('eV', 'angstrom', 'angstrom'))]
    """
    if isinstance(path, (list, tuple)):
        path = path[0]
    path = Path(path)
    name = path.name
    ext = path.suffix.lower()
    if ext not in _FORMATS:
        raise SpectralError(f"{name}: napari-cryomat does not read {ext or 'extension-less'} files with rosettasciio.")
    api, fmt, kinds = _FORMATS[ext]
    st = refuse_special_file(path, error=SpectralError)
    if st.st_size == 0:
        raise SpectralError(f"{name}: the file is empty (0 bytes).")
    try:
        kind = _sniff.sniff(path)
    except OSError as exc:
        raise SpectralError(f"{name}: cannot be read ({exc.strerror or exc}).") from None
    if kind == "mrc" and ext == ".map":
        from napari_cryomat.io.mrc import read_mrc

        return read_mrc(path)
    if ext == ".map" and kind not in kinds:
        raise SpectralError(
            f"{name}: neither an MRC/CCP4 map nor a JEOL Analysis Station map (it looks like "
            f"{_sniff.describe(kind)}). If it is an MRC map, its header is damaged or the file is truncated."
        )
    if kind not in kinds and ("unknown" not in kinds or kind not in ("unknown", "text", "xml")):
        extra = " (IMAGIC .img/.hed stacks are not read by napari-cryomat)" if ext == ".img" else ""
        raise SpectralError(
            f"{name}: this is {_sniff.describe(kind)}, not the {fmt} format its extension says{extra}. "
            "Rename it to its real extension, or check the transfer."
        )
    try:
        _sniff.check_structure(path, kind)
        if kind == "hdf5":
            _sniff.probe_hdf5(path)
    except ValueError as exc:
        raise SpectralError(str(exc)) from None
    if ext == ".tvips":
        _check_tvips_part(path)
    mod = _rsciio_module(ext, label=f"{name} ({fmt})")
    signals = _call_reader(mod, path, fmt, st.st_size)
    if ext == ".emi":
        signals = [s for s in signals if s is not None]
    layers = _show_images_over_spectrum_images(_layers_of(signals, path, fmt))
    if ext == ".emd" and any(_is_spectrum_image_in_frames(s) for s in signals):
        layers += _velox_frame_layers(mod, path, fmt, len(signals))
    return _most_axes_first(layers)


def _most_axes_first(layers: list[tuple[Any, dict, str]]) -> list[tuple[Any, dict, str]]:
    """The layers with the most axes first; the others in the file's order.

    Why: napari starts an axis at its middle when the first layer added has it, but at world 0 (clipped to the
    range) when a later layer brings it. A Velox file lists its HAADF image before the EDS SI, so the energy
    slider opened at 0 eV, on the zero peak (fei_emd_si.emd: plane 100 of 4096), while the SI's contrast was
    taken from the middle plane (:func:`napari_cryomat.io._signals.first_shown_plane`): limits 0-1 over the
    zero peak's counts. With the SI first every axis opens at its middle, and the image, added last, lies on
    top and is the selected layer that the docks offer first."""
    def axes(layer):
        data, kwargs, _kind = layer
        return np.ndim(data) - (1 if kwargs.get("rgb") else 0)

    return sorted(layers, key=axes, reverse=True)  # stable: equal ranks keep the file's order


def _show_images_over_spectrum_images(layers: list[tuple[Any, dict, str]]) -> list[tuple[Any, dict, str]]:
    """A file that holds an image beside its spectrum images (Velox's HAADF with the EDS SI) opens with the
    spectrum images hidden: one energy channel drawn on top hid the image the user navigates by (the Spectrum
    imaging dock reads a spectrum image whether it is shown or not), as Velox and the demo show them. A file of
    spectrum images alone shows them."""
    def is_plain_image(kwargs: dict, kind: str) -> bool:
        metadata = kwargs.get("metadata") or {}
        return kind == "image" and "spectrum_image" not in metadata and "spectrum" not in metadata

    if any(is_plain_image(kwargs, kind) for _data, kwargs, kind in layers):
        for _data, kwargs, _kind in layers:
            if "spectrum_image" in (kwargs.get("metadata") or {}):
                kwargs["visible"] = False
    return layers


def _is_spectrum_image_in_frames(sig: dict) -> bool:
    """An EDS or EELS spectrum image (two navigation axes) that the file says was recorded in more than one
    frame (Velox: ``ImportedDataParameter/Number_of_frames``); only then is the file read a second time."""
    signal_type = str(((sig.get("metadata") or {}).get("Signal") or {}).get("signal_type", ""))
    navigation = [ax for ax in sig.get("axes") or [] if ax.get("navigate")]
    imported = (sig.get("original_metadata") or {}).get("ImportedDataParameter") or {}
    try:
        frames = int(imported.get("Number_of_frames") or 1)
    except (TypeError, ValueError):
        frames = 1
    return signal_type.upper().startswith(("EDS", "EELS")) and len(navigation) == 2 and frames > 1


def frame_signals(signals: list[dict]) -> list[dict]:
    """The signals of a frame-resolved read that have more than one frame (a "Time" navigation axis)."""
    return [s for s in signals if any(ax.get("name") == "Time" and ax.get("navigate") and int(ax.get("size", 1)) > 1
                                      for ax in s.get("axes") or [])]


def _velox_frame_layers(mod, path: Path, fmt: str, n_summed: int) -> list[tuple[Any, dict, str]]:
    """A Velox spectrum image recorded in frames: its frames and those of the STEM images taken with it,
    lazily, as hidden layers "<title> frames" (T, 1, Y, X) and (T, E, Y, X), next to the summed signals.

    Why: drift correction of spectrum-image frames (Drift correction dock, "Apply shifts to layer") needs
    the frames, and Velox stores them; rosettasciio sums them unless told otherwise. Nothing is added for
    a single frame, another kind of EMD file, or when the frame-resolved read fails (the summed signals
    stand)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = frame_signals(mod.file_reader(str(path), lazy=True, sum_frames=False, load_SI_image_stack=True))
    except Exception:  # noqa: BLE001 - the frames are an extra; the file opened summed
        return []
    if not frames:
        return []
    from napari_cryomat.io._signals import title_of

    for sig in frames:
        general = sig.setdefault("metadata", {}).setdefault("General", {})
        general["title"] = f"{title_of(sig) or path.stem} frames"
    layers = _layers_of(frames, path, fmt)
    for _data, kwargs, _kind in layers:
        kwargs["visible"] = False  # shown on demand: drawing a lazy SI frame decodes it
        kwargs["metadata"]["source"]["index"] += n_summed
    return _image_frames_beside_si_frames(layers)


def _image_frames_beside_si_frames(layers: list[tuple[Any, dict, str]]) -> list[tuple[Any, dict, str]]:
    """Image frames (T, Y, X) as (T, 1, Y, X), the singleton spanning the SI frames' whole energy axis.

    Why: napari aligns layers by their trailing axes, so beside the SI's (E, Y, X) and (T, E, Y, X) the
    image frames' time fell on the energy axis: the "X-ray energy" slider moved through the HAADF frames
    and, stepping by the frame time (0.04 s) over 40 keV, had ~10^6 steps. The singleton's one pixel is
    as wide as the energy axis and centred on it, so the frames show at every energy (napari draws nothing
    at a position outside a layer) without adding steps. The Drift correction dock reads a (T, 1, Y, X)
    layer as the (T, Y, X) stack it is."""
    si = next((kw for data, kw, _ in layers if data.ndim == 4 and "spectrum_image" in kw["metadata"]), None)
    if si is None:
        return layers
    n_energy = si["metadata"]["spectrum_image"]["energy_axis"]["size"]
    span = n_energy * si["scale"][1]
    centre = si["translate"][1] + (n_energy - 1) * si["scale"][1] / 2
    out = []
    for data, kwargs, kind in layers:
        if data.ndim == 3 and "spectrum_image" not in kwargs["metadata"]:
            data = data[:, None]
            singleton = {"scale": span, "translate": centre, "units": si["units"][1], "axis_labels": si["axis_labels"][1]}
            for key, value in singleton.items():
                kwargs[key] = (kwargs[key][0], value, *kwargs[key][1:])
        out.append((data, kwargs, kind))
    return out


def _check_tvips_part(path: Path) -> None:
    """A TVIPS movie split over ``name_000.tvips``, ``name_001.tvips``, ... opens from part 000."""
    import re

    m = re.search(r"_(\d{3})\.tvips$", path.name, flags=re.IGNORECASE)
    if m and m.group(1) != "000":
        first = path.name[: m.start(1)] + "000" + path.name[m.end(1):]
        raise SpectralError(
            f"{path.name}: this is part {int(m.group(1)) + 1} of a TVIPS movie split over several files; "
            f"open its first part, {first}, which reads all parts."
        )


def _call_reader(mod, path: Path, fmt: str, size: int) -> list[dict]:
    name = path.name
    kwargs = {}
    try:
        params = inspect.signature(mod.file_reader).parameters
    except (TypeError, ValueError):  # pragma: no cover
        params = {}
    lazy_ok = "lazy" in params
    if "show_progressbar" in params:
        kwargs["show_progressbar"] = False

    def run(lazy: bool):
        extra = dict(kwargs, lazy=True) if lazy else dict(kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            level = logging.getLogger("rsciio").level
            logging.getLogger("rsciio").setLevel(logging.ERROR)
            try:
                return mod.file_reader(str(path), **extra)
            finally:
                logging.getLogger("rsciio").setLevel(level)

    try:
        if lazy_ok:
            try:
                signals = run(True)
            except (ImportError, MemoryError, FileNotFoundError):
                raise
            except Exception as exc:  # noqa: BLE001
                # rosettasciio's lazy path fails on some files its eager path reads ("not supported
                # lazily", "already a dask array", "auto rechunking"): those are read whole
                if not any(word in str(exc).lower() for word in ("lazy", "dask", "chunk")):
                    raise
                lazy_ok = False
        if not lazy_ok:
            if size > EAGER_LIMIT_BYTES:
                raise SpectralError(
                    f"{name}: rosettasciio reads this kind of {fmt} file only whole, and it is "
                    f"{size / 2**30:.1f} GiB (limit {EAGER_LIMIT_BYTES / 2**30:.0f} GiB). Open it in "
                    "HyperSpy, or export the signal you need."
                )
            signals = run(False)
    except SpectralError:
        raise
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        pkg = _PIP_OF.get(str(missing).split(".")[0], str(missing))
        raise ImportError(
            f"Opening {name} ({fmt}) needs the package '{pkg}'. Install it with: {INSTALL_HINT}  "
            f"(or: pip install {pkg})"
        ) from exc
    except MemoryError as exc:
        raise SpectralError(f"{name}: its header asks for more memory than there is ({exc}); the file is damaged.") from None
    except FileNotFoundError as exc:
        missing = os.path.basename(str(exc.filename or "")) or str(exc)
        raise SpectralError(
            f"{name}: the {fmt} file refers to a file that is missing ({missing}). Copy the whole folder."
        ) from None
    except Exception as exc:  # noqa: BLE001 - rsciio raises many kinds of errors on bad files
        raise SpectralError(
            f"{name}: rosettasciio could not read this {fmt} file ({type(exc).__name__}: {str(exc)[:300]}). "
            "Check that the file is complete and of the type its extension says."
        ) from None
    if isinstance(signals, dict):
        signals = [signals]
    return list(signals or [])


def _layers_of(signals: list[dict], path: Path, fmt: str) -> list[tuple[Any, dict, str]]:
    from napari_cryomat.io._signals import SignalError, signal_to_layers, title_of

    name = path.name
    stem = path.stem
    titles = [title_of(s) or stem for s in signals]
    seen: dict[str, int] = {}
    layers, problems = [], []
    for i, (sig, title) in enumerate(zip(signals, titles)):
        seen[title] = seen.get(title, 0) + 1
        layer_name = title if titles.count(title) == 1 else f"{title} {seen[title]}"
        source = {"path": str(path), "format": fmt, "index": i, "n_signals": len(signals), "file": name}
        try:
            layers.extend(signal_to_layers(sig, name=layer_name, source=source))
        except SignalError as exc:
            problems.append(f"signal {i + 1} '{title}': {exc}")
        except MemoryError as exc:
            problems.append(f"signal {i + 1} '{title}': too large for memory ({exc})")
        except Exception as exc:  # noqa: BLE001 - a damaged signal must not hide the others
            problems.append(f"signal {i + 1} '{title}': {type(exc).__name__}: {str(exc)[:200]}")
    if not layers:
        if problems:
            raise SpectralError(f"{name}: no signal could be shown ({'; '.join(problems)}).")
        raise SpectralError(f"{name}: the file holds no signal napari-cryomat can show.")
    if problems:
        _notify("warning", f"{name}: {len(layers)} layer(s) opened, but " + "; ".join(problems) + ".")
    return layers


def spectrum_image_layer(
    si,
    *,
    energy_offset: float,
    energy_scale: float,
    pixel_size: float = 1.0,
    name: str = "spectrum image",
    signal_type: str = "",
    metadata: dict | None = None,
    visible: bool = True,
    origin: tuple[float, float] = (0.0, 0.0),
) -> tuple[Any, dict, str]:
    """LayerData for a (Y, X, E) spectrum image (numpy or dask): see the module docstring.

    Parameters
    ----------
    si : array (Y, X, E)
    energy_offset, energy_scale : float
        First channel and dispersion, eV.
    pixel_size : float
        Å per pixel.
    signal_type : str
        "EELS", "EDS" or "".
    origin : (float, float)
        Where the first pixel lies, (y, x) Å: an SI computed from another keeps its place over the HAADF.
    """
    if si.ndim != 3:
        raise ValueError("A spectrum image must have axes (Y, X, E).")
    if not energy_scale > 0:
        raise ValueError("The energy axis of this file decreases or has zero dispersion; it cannot be used.")
    ny, nx, ne = si.shape
    layer_data = np.moveaxis(si, -1, 0) if isinstance(si, np.ndarray) else si.transpose(2, 0, 1)
    md = dict(metadata or {})
    md["spectrum_image"] = {
        "axes": "EYX",
        "signal_type": signal_type,
        "energy_axis": {"offset": float(energy_offset), "scale": float(energy_scale), "units": "eV", "size": int(ne)},
        "pixel_size": float(pixel_size),
    }
    from napari_cryomat.io._signals import first_shown_plane
    from napari_cryomat.io.mrc import strided_contrast_limits

    kwargs = {
        "name": name,
        "scale": (float(energy_scale), float(pixel_size), float(pixel_size)),
        "translate": (float(energy_offset), float(origin[0]), float(origin[1])),
        "units": ("eV", "angstrom", "angstrom"),
        "axis_labels": ("energy", "y", "x"),  # the slider says what it moves through
        "contrast_limits": strided_contrast_limits(first_shown_plane(layer_data)),
        "metadata": md,
        "visible": visible,
    }
    return layer_data, kwargs, "image"


def is_spectrum_image_layer(layer) -> bool:
    """True if ``layer`` carries napari-cryomat spectrum-image metadata."""
    return isinstance(getattr(layer, "metadata", None), dict) and "spectrum_image" in layer.metadata


def si_from_layer(layer) -> tuple[Any, np.ndarray, float, str]:
    """(si (Y, X, E), energy (E,) in eV, pixel size Å, signal type) of a spectrum-image layer.

    A 3D image layer without spectrum-image metadata is taken as (Y, X, E) with the energy
    axis missing, which core functions report as such. A 2D layer raises the "2D image" error.
    """
    from napari_cryomat.core.spectral import check_spectrum_image, energy_axis

    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    info = layer.metadata.get("spectrum_image") if isinstance(layer.metadata, dict) else None
    if info is None:
        check_spectrum_image(data, name=f"layer '{layer.name}'")
        raise ValueError(
            f"Layer '{layer.name}' has no energy axis. Open spectrum images with File > Open "
            "(napari-cryomat reader), or set layer.metadata['spectrum_image'] = {'axes': 'YXE', "
            "'energy_axis': {'offset': ..., 'scale': ..., 'units': 'eV'}}."
        )
    axes = info.get("axes", "EYX")
    if data.ndim != 3:
        check_spectrum_image(data, name=f"layer '{layer.name}'")
    si = (np.moveaxis(data, 0, -1) if isinstance(data, np.ndarray) else data.transpose(1, 2, 0)) if axes == "EYX" else data
    ea = info.get("energy_axis") or {}
    if "scale" not in ea or "offset" not in ea:
        raise ValueError(f"Layer '{layer.name}' has no energy axis (offset and scale in eV) in its metadata.")
    f = _TO_EV.get(str(ea.get("units", "eV")).lower(), 1.0)
    energy = energy_axis(offset=float(ea["offset"]) * f, scale=float(ea["scale"]) * f, size=si.shape[-1])
    return si, energy, float(info.get("pixel_size", 1.0)), str(info.get("signal_type", ""))


def write_msa(path, spectrum, *, energy, title: str = "spectrum", signal_type: str = "") -> str:
    """Write one spectrum (E,) with its energy axis (eV) as an EMSA/MSA file (via rosettasciio)."""
    mod = _rsciio_module(".msa")
    energy = np.asarray(energy, float)
    sig = {
        "data": np.asarray(spectrum, dtype=np.float64),
        "axes": [
            {
                "name": "Energy",
                "units": "eV",
                "size": int(energy.size),
                "offset": float(energy[0]),
                "scale": float(energy[1] - energy[0]),
                "navigate": False,
                "index_in_array": 0,
            }
        ],
        "metadata": {"General": {"title": title}, "Signal": {"signal_type": signal_type}},
        "original_metadata": {},
    }
    mod.file_writer(os.fspath(path), sig)
    return os.fspath(path)


def write_csv(path, columns: dict[str, np.ndarray]) -> str:
    """Write equally long 1D arrays as CSV columns with a header row."""
    names = list(columns)
    arrs = [np.asarray(columns[n], dtype=np.float64).ravel() for n in names]
    n = {a.size for a in arrs}
    if len(n) != 1:
        raise ValueError("CSV columns must have the same length.")
    np.savetxt(os.fspath(path), np.column_stack(arrs), delimiter=",", header=",".join(names), comments="", fmt="%.6g")
    return os.fspath(path)
