"""Spectrum images, spectra and images from vendor formats through rosettasciio (optional, GPL).

Formats: Gatan ``.dm3``/``.dm4``, Velox ``.emd``, Bruker ``.bcf``, EMSA ``.msa``, HyperSpy
``.hspy``. rosettasciio is imported only when a file is opened; without it the reader raises a
message that says ``pip install "napari-cryomat[formats]"``.

Layer layout of a spectrum image
--------------------------------
The science uses (Y, X, E). A napari layer, however, aligns its axes with the other layers
from the right: a (Y, X, E) layer would put energy under the HAADF's X axis. So the layer's
``data`` is the *view* ``numpy.moveaxis(si, -1, 0)`` (E, Y, X): energy is the slider (in eV,
``units[0] == "eV"``), the displayed plane is spatial and lines up with the HAADF and the maps.
:func:`si_from_layer` gives back the (Y, X, E) array (the original memory, no copy) with its
energy axis. The metadata holds::

    metadata["spectrum_image"] = {"axes": "EYX", "signal_type": "EELS" | "EDS" | "",
                                  "energy_axis": {"offset": eV, "scale": eV, "units": "eV", "size": n},
                                  "pixel_size": Å}

Single spectra open as 1 × 1 spectrum images; images (HAADF, ADF, TEM) as plain 2D layers with
``scale`` in Å. Loading is lazy (dask) for the formats that allow it (hspy, emd, bcf, dm).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "napari_get_reader",
    "read_spectral",
    "spectrum_image_layer",
    "si_from_layer",
    "is_spectrum_image_layer",
    "write_msa",
    "write_csv",
    "INSTALL_HINT",
]

EXTENSIONS = (".dm3", ".dm4", ".emd", ".bcf", ".msa", ".hspy")
INSTALL_HINT = 'pip install "napari-cryomat[formats]"'
_LAZY_OK = {".hspy", ".emd", ".bcf", ".dm3", ".dm4"}

# length unit -> Å
_TO_ANGSTROM = {
    "a": 1.0, "å": 1.0, "angstrom": 1.0, "Å": 1.0, "A": 1.0,
    "pm": 0.01, "nm": 10.0, "µm": 1e4, "um": 1e4, "μm": 1e4, "mm": 1e7, "m": 1e10,
}
_TO_EV = {"ev": 1.0, "kev": 1000.0, "mev": 1e6}


def _rsciio_module(ext: str):
    """The rsciio plugin module for a file extension (imported lazily)."""
    try:
        import rsciio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"Opening {ext} files needs rosettasciio, which is not installed. Install it with: {INSTALL_HINT}"
        ) from exc
    import importlib

    for plugin in rsciio.IO_PLUGINS:
        if ext.lstrip(".").lower() in [e.lower() for e in plugin["file_extensions"]]:
            try:
                return importlib.import_module(plugin["api"])
            except ImportError as exc:
                raise ImportError(
                    f"rosettasciio's {plugin['name']} reader needs an extra package ({exc.name}); "
                    f"install it with: {INSTALL_HINT}"
                ) from exc
    raise ValueError(f"rosettasciio has no reader for {ext} files.")


def napari_get_reader(path):
    """npe2 reader contribution: a reader for .dm3/.dm4/.emd/.bcf/.msa/.hspy, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    if not str(path).lower().endswith(EXTENSIONS):
        return None
    return read_spectral


def read_spectral(path) -> list[tuple[Any, dict, str]]:
    """Read one file into napari LayerData tuples (one per signal in the file).

    Raises
    ------
    ImportError
        rosettasciio (or one of its format extras) is missing; the message says how to install it.
    ValueError
        rosettasciio could not read the file.
    """
    if isinstance(path, (list, tuple)):
        path = path[0]
    path = Path(path)
    ext = path.suffix.lower()
    mod = _rsciio_module(ext)
    if not path.exists():
        raise ValueError(f"{path} does not exist.")
    try:
        if ext in _LAZY_OK:
            signals = mod.file_reader(str(path), lazy=True)
        else:
            signals = mod.file_reader(str(path))
    except Exception as exc:  # rsciio raises many kinds of errors on bad files
        raise ValueError(
            f"rosettasciio could not read {path.name} ({type(exc).__name__}: {exc}). "
            "Check that the file is complete and of the type its extension says."
        ) from exc
    layers = []
    for i, sig in enumerate(signals):
        layer = _signal_to_layer(sig, default_name=path.stem if len(signals) == 1 else f"{path.stem} [{i}]")
        if layer is not None:
            layers.append(layer)
    if not layers:
        raise ValueError(f"{path.name} holds no image, spectrum or spectrum image napari-cryomat can show.")
    return layers


def _axis_to_angstrom(ax: dict) -> float:
    units = str(ax.get("units") or "").strip()
    f = _TO_ANGSTROM.get(units, _TO_ANGSTROM.get(units.lower()))
    return float(ax.get("scale", 1.0)) * (f if f is not None else 1.0)


def _is_energy_axis(ax: dict) -> bool:
    units = str(ax.get("units") or "").strip().lower()
    name = str(ax.get("name") or "").lower()
    return units in _TO_EV or "energy" in name


def _signal_to_layer(sig: dict, *, default_name: str):
    data = sig["data"]
    axes = sorted(sig.get("axes", []), key=lambda a: int(a.get("index_in_array", 0)))
    meta = sig.get("metadata", {}) or {}
    title = (meta.get("General", {}) or {}).get("title") or default_name
    signal_type = str((meta.get("Signal", {}) or {}).get("signal_type", "") or "")
    if signal_type.upper().startswith("EDS"):
        signal_type = "EDS"
    elif signal_type.upper().startswith("EELS"):
        signal_type = "EELS"
    ndim = data.ndim
    extra_meta = {"source": {"signal_type": signal_type, "title": title}}
    if ndim >= 1 and axes and _is_energy_axis(axes[-1]) and not axes[-1].get("navigate", False):
        e_ax = axes[-1]
        f = _TO_EV.get(str(e_ax.get("units") or "eV").strip().lower(), 1.0)
        offset = float(e_ax.get("offset", 0.0)) * f
        scale = float(e_ax.get("scale", 1.0)) * f
        if ndim == 1:
            si = data.reshape(1, 1, -1)
            pixel = 1.0
        elif ndim == 3:
            si = data
            pixel = _axis_to_angstrom(axes[1])
        elif ndim == 2:  # a line scan: (X, E) -> (1, X, E)
            si = data.reshape(1, *data.shape)
            pixel = _axis_to_angstrom(axes[0])
        else:
            return None
        return spectrum_image_layer(
            si,
            energy_offset=offset,
            energy_scale=scale,
            pixel_size=pixel,
            name=str(title),
            signal_type=signal_type,
            metadata=extra_meta,
        )
    if ndim == 2:
        px = [_axis_to_angstrom(a) for a in axes] if len(axes) == 2 else [1.0, 1.0]
        from napari_cryomat.io.mrc import strided_contrast_limits

        return (
            data,
            {
                "name": str(title),
                "scale": tuple(px),
                "units": ("angstrom", "angstrom"),
                "contrast_limits": strided_contrast_limits(data),
                "metadata": extra_meta,
            },
            "image",
        )
    if ndim >= 3 and len(axes) == ndim:
        px = [_axis_to_angstrom(a) for a in axes]
        from napari_cryomat.io.mrc import strided_contrast_limits

        return (data, {"name": str(title), "scale": tuple(px), "contrast_limits": strided_contrast_limits(data), "metadata": extra_meta}, "image")
    return None


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
    from napari_cryomat.io.mrc import strided_contrast_limits

    kwargs = {
        "name": name,
        "scale": (float(energy_scale), float(pixel_size), float(pixel_size)),
        "translate": (float(energy_offset), 0.0, 0.0),
        "units": ("eV", "angstrom", "angstrom"),
        "contrast_limits": strided_contrast_limits(layer_data),
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
