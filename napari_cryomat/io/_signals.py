"""rosettasciio signal dictionaries -> napari LayerData, decided by signal type, not axis position.

rosettasciio returns one dictionary per signal: ``data``, ``axes`` (one dict per array dimension:
``name``, ``units``, ``scale``, ``offset``, ``size``, ``navigate``, optional ``index_in_array`` or a
non-uniform ``axis`` array), ``metadata`` (``General.title``, ``Signal.signal_type``) and, for some
readers, ``post_process``: HyperSpy calls on the signal, such as DigitalMicrograph's
``to_signal1D`` for an EELS spectrum image whose energy axis is stored as a navigation axis.
Those calls are recorded here on a stand-in object, never run on a HyperSpy signal.

What each signal becomes (``kind`` in ``metadata["source"]["kind"]``):

=================  ============================================  ===================================
signal             layer data axes (napari order)                units
=================  ============================================  ===================================
image              (Y, X); navigation axes first: (T, Y, X) ...  Å, 1/Å (diffraction, FFT), pixel
image stack        (N..., Y, X)                                  s for time, Å for depth
diffraction/4D     (scan Y, scan X, ky, kx)                      Å, Å, 1/Å, 1/Å
spectrum image     (E, Y, X) (slider = energy)                   eV (nm for CL), Å, Å
line scan          (E, 1, X)                                     eV, pixel, Å
spectrum / 1D      (E, 1, 1) + ``metadata["spectrum"]``          eV / nm / whatever the axis is
=================  ============================================  ===================================

The spectral axis is the axis in an energy unit (eV, keV) or a wavelength (CL, by name or by the
CL signal type), wherever the file stores it. Units are canonical through
:mod:`napari_cryomat.core.units`; an uncalibrated axis is napari's ``"pixel"``. The file's own
offsets become ``translate`` in the same units.

Complex data become two layers, amplitude and phase (or real and imaginary:
:func:`set_complex_mode` or ``CRYOMAT_COMPLEX=real-imaginary``). RGB(A) data (structured
``R, G, B[, A]`` fields) become one RGB layer.

``metadata["spectrum"]`` (single spectra and line scans, the spectrum dock's input)::

    {"axis": ndarray (E,) float64,     # channel positions in ``unit``
     "counts": ndarray (E,) or (N, E), # intensities (N spectra for a line scan / point series)
     "unit": "eV" | "nm" | "angstrom" | "1/angstrom" | "s" | "mrad" | "pixel",
     "kind": "energy" | "wavelength" | "length" | "reciprocal" | "time" | "angle" | "pixel",
     "axis_name": "Energy loss", "signal_type": "EELS" | "EDS" | "CL" | ..., "title": str,
     "quantity": "Intensity" (or the file's own, e.g. "X-rays (Counts)")}
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_cryomat.core import units as U
from napari_cryomat.io._acquisition import acquisition_parameters

__all__ = ["signal_to_layers", "complex_mode", "set_complex_mode", "COMPLEX_MODES", "SignalError"]

COMPLEX_MODES = ("amplitude-phase", "real-imaginary")
_complex_mode: str | None = None
_SPATIAL_NAMES = {"x", "y", "z", "width", "height", "depth", "r_x", "r_y", "r_z", "scan x", "scan y"}
_CL_TYPES = ("CL", "LUMI", "PL")
# A length step outside this range (Å) is not a microscope pixel: shown as "pixel" instead.
_PLAUSIBLE_STEP_A = (1e-6, 1e8)


class SignalError(ValueError):
    """A signal that cannot be shown (object dtype, no data, ...)."""


def complex_mode() -> str:
    """How complex data are shown: ``"amplitude-phase"`` (default) or ``"real-imaginary"``."""
    mode = _complex_mode or os.environ.get("CRYOMAT_COMPLEX", "amplitude-phase")
    return mode if mode in COMPLEX_MODES else "amplitude-phase"


def set_complex_mode(mode: str) -> None:
    """Choose how the readers show complex data from now on (this session)."""
    global _complex_mode
    if mode not in COMPLEX_MODES:
        raise ValueError(f"complex mode must be one of {COMPLEX_MODES}, not {mode!r}")
    _complex_mode = mode


# -------------------------------------------------------------------------------------------------
# axes
# -------------------------------------------------------------------------------------------------
@dataclass
class Axis:
    """One array dimension as the file describes it."""

    name: str
    size: int
    scale: float = 1.0
    offset: float = 0.0
    units: str | None = None
    navigate: bool | None = None
    values: np.ndarray | None = None  # non-uniform axis
    source: int | None = None  # index in the file's array (None: inserted by us)
    spectral: bool = False
    cal: U.AxisCalibration = field(default_factory=lambda: U.AxisCalibration(U.PIXEL, 1.0, U.PIXEL))
    translate: float = 0.0
    raw: dict | None = field(default=None, repr=False)  # the file's own axis dictionary

    def calibrate(self) -> None:
        wavelength = self.spectral and U.is_length(self.units)
        self.cal = U.calibrate_axis(self.scale, self.units, spectral_length_is_wavelength=wavelength)
        self.translate = 0.0
        self.implausible = False
        if self.cal.kind == "length" and not _PLAUSIBLE_STEP_A[0] <= self.cal.scale <= _PLAUSIBLE_STEP_A[1]:
            # e.g. FEI TIA point spectra (1 m per "position") or a .ser diffraction pattern read
            # without its .emi (1e16 nm): no microscope image has such pixels
            self.cal = U.AxisCalibration(U.PIXEL, 1.0, U.PIXEL)
            self.implausible = True
        if self.cal.kind != U.PIXEL:
            canon = U.canonical_unit(self.units, spectral_length_is_wavelength=wavelength)
            off = float(self.offset) * canon[1] if canon else 0.0
            self.translate = off if math.isfinite(off) else 0.0

    def positions(self) -> np.ndarray:
        """Channel positions in the canonical unit."""
        if self.cal.kind == U.PIXEL:
            return np.arange(self.size, dtype=np.float64)
        sign = -1.0 if float(self.scale) < 0 else 1.0
        return self.translate + sign * self.cal.scale * np.arange(self.size, dtype=np.float64)

    def describe(self) -> dict:
        return {
            "name": self.name, "kind": self.cal.kind, "unit": self.cal.unit, "scale": self.cal.scale,
            "offset": self.translate, "size": int(self.size), "file_axis": self.source,
            "file_units": self.units, "file_scale": _num(self.scale), "file_offset": _num(self.offset),
            "navigate": self.navigate, "implausible": bool(getattr(self, "implausible", False)),
            "physical": getattr(self, "physical", None),
        }


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _axes_of(sig: dict, shape: tuple[int, ...]) -> list[Axis]:
    """The file's axes aligned with the array dimensions (missing ones become pixel axes)."""
    raw = list(sig.get("axes") or [])
    out: list[Axis | None] = [None] * len(shape)
    pending = []
    for ax in raw:
        idx = ax.get("index_in_array")
        if idx is not None and 0 <= int(idx) < len(shape) and out[int(idx)] is None:
            out[int(idx)] = _axis_from_dict(ax, int(idx))
        else:
            pending.append(ax)
    free = [i for i, a in enumerate(out) if a is None]
    if pending and len(pending) == len(free):
        for i, ax in zip(free, pending):
            out[i] = _axis_from_dict(ax, i)
    elif pending:
        # sizes decide where unplaced axes go
        for ax in pending:
            size = int(ax.get("size") or 0)
            for i in free:
                if out[i] is None and shape[i] == size:
                    out[i] = _axis_from_dict(ax, i)
                    break
    for i, a in enumerate(out):
        if a is None:
            out[i] = Axis(name=f"axis {i}", size=int(shape[i]), navigate=True, source=i)
        else:
            a.size = int(shape[i])
    return out  # type: ignore[return-value]


def _axis_from_dict(ax: dict, index: int) -> Axis:
    units = ax.get("units")
    units = None if units in (None, "", "<undefined>", "[]") else str(units)
    values = ax.get("axis")
    scale, offset = ax.get("scale", 1.0), ax.get("offset", 0.0)
    if values is not None:
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size > 1:
            scale = (values[-1] - values[0]) / (values.size - 1)
        offset = values[0] if values.size else 0.0
    nav = ax.get("navigate")
    return Axis(name=str(ax.get("name") or f"axis {index}"), size=int(ax.get("size") or 0),
                scale=_num(scale) if _num(scale) is not None else 1.0,
                offset=_num(offset) if _num(offset) is not None else 0.0,
                units=units, navigate=None if nav is None else bool(nav), values=values, source=index,
                raw=ax)


class _Recorder:
    """Stands in for a HyperSpy signal to record what ``post_process`` would do to it."""

    def __init__(self):
        self.calls: list[str] = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            self.calls.append(name)
            return self

        return call


def post_process_hints(sig: dict) -> list[str]:
    """Names of the HyperSpy methods the reader asks to call (``to_signal1D``, ``squeeze`` ...)."""
    rec = _Recorder()
    for fn in sig.get("post_process") or []:
        try:
            fn(rec)
        except Exception:  # noqa: BLE001 - a hint we cannot record is a hint we do not use
            continue
    return rec.calls


def signal_type_of(sig: dict) -> str:
    meta = sig.get("metadata") or {}
    st = str(((meta.get("Signal") or {}).get("signal_type")) or "")
    up = st.upper()
    if up.startswith("EDS"):
        return "EDS"
    if up.startswith("EELS"):
        return "EELS"
    if up.startswith(_CL_TYPES):
        return "CL"
    return st


def title_of(sig: dict) -> str:
    meta = sig.get("metadata") or {}
    title = (meta.get("General") or {}).get("title")
    title = "" if title is None else str(title).strip()
    return "" if title in ("__unnamed__",) else title


def _find_spectral(axes: list[Axis], signal_type: str, hints: list[str]) -> int | None:
    energy = [i for i, a in enumerate(axes) if U.is_energy(a.units)]
    if energy:
        sig_energy = [i for i in energy if axes[i].navigate is not True]
        return (sig_energy or energy)[0]
    wave = [i for i, a in enumerate(axes) if U.is_length(a.units) and "wavelength" in a.name.lower().replace(" ", "")]
    if wave:
        return wave[0]
    signal_axes = [i for i, a in enumerate(axes) if a.navigate is False]
    if signal_type == "CL" and len(signal_axes) == 1:
        i = signal_axes[0]
        if U.is_length(axes[i].units) and axes[i].name.strip().lower() not in _SPATIAL_NAMES:
            return i
    if any(h in ("to_signal1D", "as_signal1D") for h in hints):
        nav = [i for i, a in enumerate(axes) if a.navigate]
        if len(nav) == 1:
            return nav[0]
    return None


# -------------------------------------------------------------------------------------------------
# data helpers
# -------------------------------------------------------------------------------------------------
def _is_dask(a) -> bool:
    return type(a).__module__.startswith("dask")


def _transpose(data, order):
    order = tuple(order)
    if order == tuple(range(data.ndim)):
        return data
    return data.transpose(order)


def _rgb_fields(dtype) -> list[str] | None:
    names = getattr(dtype, "names", None)
    if names and set(names) <= {"R", "G", "B", "A"} and names[:3] == ("R", "G", "B"):
        return list(names)
    return None


def _rgb_to_channels(data, names):
    if _is_dask(data):
        import dask.array as da

        return da.stack([data[n] for n in names], axis=-1)
    return np.stack([np.asarray(data[n]) for n in names], axis=-1)


# -------------------------------------------------------------------------------------------------
# the conversion
# -------------------------------------------------------------------------------------------------
def signal_to_layers(sig: dict, *, name: str, source: dict | None = None) -> list[tuple[Any, dict, str]]:
    """napari LayerData for one rosettasciio signal dictionary (see the module docstring).

    Parameters
    ----------
    sig : dict
        A rosettasciio signal (``data``, ``axes``, ``metadata``, optional ``post_process``).
    name : str
        Layer name (complex data get " amplitude"/" phase" appended).
    source : dict, optional
        Extra facts stored in ``metadata["source"]`` (path, format, index).

    Raises
    ------
    SignalError
        Data napari cannot show (object dtype, empty array).
    """
    data = sig["data"]
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        data = np.asarray(data)
    if data.dtype == object:
        raise SignalError("its data are Python objects, not numbers")
    if int(np.prod(data.shape)) == 0:
        raise SignalError(f"it holds no data (shape {tuple(data.shape)})")
    hints = post_process_hints(sig)
    signal_type = signal_type_of(sig)
    axes = _axes_of(sig, tuple(data.shape))

    rgb_names = _rgb_fields(data.dtype)
    if rgb_names:
        data = _rgb_to_channels(data, rgb_names)

    spectral = _find_spectral(axes, signal_type, hints)
    if "squeeze" in hints and data.ndim > 1:
        keep = [i for i, a in enumerate(axes) if a.size > 1 or i == spectral]
        if len(keep) < len(axes) and keep:
            drop = tuple(i for i in range(len(axes)) if i not in keep)
            data = data.reshape(tuple(s for i, s in enumerate(data.shape) if i not in drop))
            axes = [axes[i] for i in keep]
            spectral = keep.index(spectral) if spectral is not None else None
    if spectral is not None:
        axes[spectral].spectral = True
    for a in axes:
        a.calibrate()

    meta = {
        "source": {
            "title": title_of(sig) or name,
            "signal_type": signal_type,
            "quantity": str(((sig.get("metadata") or {}).get("Signal") or {}).get("quantity") or ""),
            **(source or {}),
        },
        "rsciio_metadata": _plain(sig.get("metadata") or {}),
        "acquisition": acquisition_parameters(sig),
    }

    if rgb_names and len(axes) < 2:  # a row of colours: show it as a 1-pixel-high image
        data = data[None]
        axes = [Axis(name="y", size=1, navigate=False, source=None)] + axes
        for a in axes:
            a.navigate = False
    signal_axes = [i for i, a in enumerate(axes) if a.navigate is not True]
    one_d = not rgb_names and (spectral is not None or len(signal_axes) == 1 or data.ndim == 1)
    if rgb_names and data.ndim - 1 != len(axes):  # pragma: no cover - defensive
        raise SignalError("its RGB data do not match its axes")
    if one_d:
        if spectral is None:
            spectral = signal_axes[0] if len(signal_axes) == 1 else data.ndim - 1
        return _spectrum_layers(data, axes, spectral, name=name, meta=meta, signal_type=signal_type)
    return _image_layers(data, axes, name=name, meta=meta, rgb=bool(rgb_names))


def _plain(d):
    """A copy of rosettasciio metadata with plain Python/numpy values only (no callables)."""
    if isinstance(d, dict):
        return {str(k): _plain(v) for k, v in d.items() if not callable(v)}
    if isinstance(d, (list, tuple)):
        return [_plain(v) for v in d]
    return d


def _layer_kwargs(axes: list[Axis], name: str, meta: dict) -> dict:
    labels = _unique([a.name for a in axes])
    if len(axes) >= 2:
        # napari draws the two displayed axes in one world: two different physical kinds there
        # (time against wavelength) have no true aspect ratio; show those two in pixels and keep
        # their calibration in the labels and in metadata["calibration"]
        a, b = axes[-2], axes[-1]
        if a.cal.kind != b.cal.kind and U.PIXEL not in (a.cal.kind, b.cal.kind):
            for ax, k in ((a, len(axes) - 2), (b, len(axes) - 1)):
                labels[k] = f"{labels[k]} ({ax.cal.scale:.4g} {ax.cal.unit}/pixel)"
                ax.physical = {"kind": ax.cal.kind, "unit": ax.cal.unit, "scale": ax.cal.scale, "offset": ax.translate}
                ax.cal, ax.translate = U.AxisCalibration(U.PIXEL, 1.0, U.PIXEL), 0.0
    return {
        "name": name,
        "scale": tuple(float(a.cal.scale) for a in axes),
        "translate": tuple(float(a.translate) for a in axes),
        "units": tuple(a.cal.unit for a in axes),
        "axis_labels": tuple(labels),
        "metadata": {**meta, "calibration": [a.describe() for a in axes]},
    }


def _unique(labels: list[str]) -> list[str]:
    out, seen = [], {}
    for lab in labels:
        lab = lab or "axis"
        if lab in seen:
            seen[lab] += 1
            lab = f"{lab} {seen[lab]}"
        else:
            seen[lab] = 1
        out.append(lab)
    return out


def _contrast(data):
    """Contrast limits from a strided sample of up to 16 sections (the middle one included, so a
    damaged file fails here, at open, not when napari first draws it). For lazy data the sections
    are computed in one pass: a block shared by several sections (a Velox or JEOL EDS stream is
    one block) is decoded once."""
    from napari_cryomat.io.mrc import _percentile_limits, strided_contrast_limits

    if not _is_dask(data) or data.ndim < 3:
        mid = tuple(s // 2 for s in data.shape[:-2])
        if mid:
            np.asarray(data[mid][:1, :1])
        return strided_contrast_limits(data)
    import dask

    lead = data.shape[:-2]
    n = int(np.prod(lead))
    flat = sorted(set(np.linspace(0, n - 1, min(16, n)).round().astype(int).tolist()) | {n // 2})
    ny, nx = data.shape[-2:]
    step = max(1, int(np.ceil(np.sqrt(ny * nx * len(flat) / 1_000_000))))
    parts = [data[np.unravel_index(i, lead)][::step, ::step] for i in flat]
    arrays = dask.compute(*parts)
    return _percentile_limits(np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays]))


def _split_complex(data, kwargs: dict) -> list[tuple[Any, dict, str]]:
    if not np.iscomplexobj(np.empty(0, dtype=data.dtype)):
        if "contrast_limits" not in kwargs:
            kwargs["contrast_limits"] = _contrast(data)
        return [(data, kwargs, "image")]
    lib = data if _is_dask(data) else None
    if complex_mode() == "real-imaginary":
        parts = [("real", data.real, {}), ("imaginary", data.imag, {})]
    else:
        if lib is not None:
            import dask.array as da

            amp, phase = da.absolute(data), da.angle(data)
        else:
            amp, phase = np.abs(data), np.angle(data)
        parts = [("amplitude", amp, {}), ("phase", phase.astype(np.float32),
                                          {"colormap": "twilight", "contrast_limits": (-math.pi, math.pi)})]
    out = []
    for suffix, part, extra in parts:
        kw = {**kwargs, "name": f"{kwargs['name']} {suffix}",
              "metadata": {**kwargs["metadata"], "complex_part": suffix}}
        kw.update(extra)
        kw.setdefault("contrast_limits", _contrast(part))
        out.append((part, kw, "image"))
    return out


def _image_layers(data, axes: list[Axis], *, name: str, meta: dict, rgb: bool):
    nav = [i for i, a in enumerate(axes) if a.navigate is True]
    sig = [i for i, a in enumerate(axes) if a.navigate is not True]
    if len(sig) < 2:  # e.g. all axes flagged "navigate": show in array order
        nav, sig = [], list(range(len(axes)))
    order = nav + sig
    if rgb:
        data = _transpose(data, order + [len(axes)])
    else:
        data = _transpose(data, order)
    axes = [axes[i] for i in order]
    meta["source"]["kind"] = _image_kind(axes, meta["source"]["signal_type"], len(nav))
    kwargs = _layer_kwargs(axes, name, meta)
    if rgb:
        kwargs["rgb"] = True
        return [(data, kwargs, "image")]
    if data.dtype == bool:
        data = data.astype(np.uint8)
    return _split_complex(data, kwargs)


def _image_kind(axes: list[Axis], signal_type: str, n_nav: int) -> str:
    sig = axes[n_nav:]
    if any(a.cal.kind == "reciprocal" for a in sig) or "diffraction" in signal_type.lower():
        return "diffraction" if n_nav == 0 else ("4D-STEM" if n_nav >= 2 else "diffraction stack")
    return "image" if n_nav == 0 else "image stack"


#: channel width (eV) and axis end (eV) of an X-ray spectrum, and channel width and span (eV) of an energy-loss
#: spectrum, for a file that does not say which it holds (FEI TIA's .ser/.emi): X-ray lines lie at 0.1-100 keV and
#: are recorded in channels of 5-40 eV up to 10-80 keV; losses in channels of 0.005-1 eV over 50-3000 eV. A CL
#: spectrum in eV spans a few eV and matches neither; what matches neither stays unlabelled.
_EDS_STEP_EV, _EDS_END_EV = (4.0, 40.0), 8000.0
_EELS_STEP_EV, _EELS_SPAN_EV = (0.005, 1.0), 50.0


def signal_type_from_energy_axis(step_ev: float, start_ev: float, size: int) -> str:
    """"EDS" or "EELS" for an energy axis whose file gives no signal type, by its channel width and range
    (constants above), or "" where it could be either or neither."""
    end_ev = start_ev + step_ev * (size - 1)
    if _EDS_STEP_EV[0] <= step_ev <= _EDS_STEP_EV[1] and end_ev >= _EDS_END_EV and start_ev <= 1000.0:
        return "EDS"
    if _EELS_STEP_EV[0] <= step_ev <= _EELS_STEP_EV[1] and end_ev - start_ev >= _EELS_SPAN_EV:
        return "EELS"
    return ""


def _spectrum_layers(data, axes: list[Axis], s: int, *, name: str, meta: dict, signal_type: str):
    nav = [i for i in range(len(axes)) if i != s]
    e_ax = axes[s]
    if not (e_ax.raw or {}).get("name") and e_ax.cal.kind in ("energy", "wavelength"):
        e_ax.name = e_ax.cal.kind.capitalize()  # exSpy's .hspy spectra leave it blank: the slider read "axis 0"
    inferred = not signal_type and e_ax.cal.kind == "energy" and e_ax.cal.unit == "eV"
    if inferred:
        signal_type = signal_type_from_energy_axis(float(e_ax.cal.scale), float(e_ax.translate), int(e_ax.size))
        inferred = bool(signal_type)
    n = len(nav)
    if n == 0:
        layer = data.reshape((data.shape[0], 1, 1))
        lax = [e_ax, _unit_axis("y", U.ANGSTROM), _unit_axis("x", U.ANGSTROM)]
        kind = "spectrum" if e_ax.cal.kind in ("energy", "wavelength") else "profile"
    elif n == 1:
        layer = _transpose(data, [s, nav[0]])[:, None, :]
        lax = [e_ax, _unit_axis("y", like=axes[nav[0]]), axes[nav[0]]]
        kind = "line scan" if axes[nav[0]].cal.kind == "length" else "spectrum series"
    else:
        order = nav[:-2] + [s] + nav[-2:]
        layer = _transpose(data, order)
        lax = [axes[i] for i in order]
        kind = "spectrum image" if n == 2 else "spectrum image series"
    meta["source"]["kind"] = kind
    kwargs = _layer_kwargs(lax, name, meta)
    md = kwargs["metadata"]
    spectral_kind = e_ax.cal.kind in ("energy", "wavelength")
    if n <= 3 and spectral_kind:
        spatial = [a for a in lax[1:] if a.cal.kind == "length"]
        md["spectrum_image"] = {
            "axes": "EYX",
            "signal_type": signal_type if signal_type in ("EELS", "EDS", "CL") else "",
            "energy_axis": {"offset": float(e_ax.translate), "scale": float(e_ax.cal.scale),
                            "units": e_ax.cal.unit, "size": int(e_ax.size)},
            "pixel_size": float(spatial[-1].cal.scale) if spatial else 1.0,
        }
        if inferred:  # the file did not say: the dock tells the user what was assumed
            md["spectrum_image"]["signal_type_from"] = "energy axis"
        if n == 3:  # (T, E, Y, X): one spectrum image per frame, for drift correction before summing
            md["spectrum_image"]["frames"] = int(layer.shape[0])
    if n <= 1:
        counts = layer[:, 0, 0] if n == 0 else layer[:, 0, :].T
        if int(np.prod(counts.shape)) <= 1 << 22:
            counts = np.asarray(counts)
            if np.iscomplexobj(counts):
                counts = np.abs(counts)
            md["spectrum"] = {
                "axis": e_ax.positions(), "counts": counts, "unit": e_ax.cal.unit, "kind": e_ax.cal.kind,
                "axis_name": e_ax.name, "signal_type": signal_type, "title": meta["source"]["title"],
                "quantity": meta["source"]["quantity"] or "Intensity",
            }
    if layer.dtype == bool:
        layer = layer.astype(np.uint8)
    if n >= 2 and spectral_kind and not np.iscomplexobj(np.empty(0, dtype=layer.dtype)):
        kwargs["contrast_limits"] = _contrast(first_shown_plane(layer))
    return _split_complex(layer, kwargs)


def first_shown_plane(data):
    """The (Y, X) plane napari shows first: the middle of every leading axis.

    Why spectrum images take their contrast limits from it: limits over all energy planes are set by the
    brightest (the EELS zero-loss or plasmon, the EDS zero peak) and draw this plane nearly black; one plane
    is also all a lazy SI has to read."""
    return data[tuple((k - 1) // 2 for k in data.shape[:-2])]


def _unit_axis(name: str, unit: str | None = None, *, like: Axis | None = None) -> Axis:
    """A size-1 axis we insert (not in the file). It takes the unit of the layer's spatial axes
    (Å, or ``like``'s unit and step), so that a spectrum layer next to images in Å does not make
    napari drop all units for "inconsistent units across layers"."""
    a = Axis(name=name, size=1, navigate=True, source=None)
    if like is not None and like.cal.kind in ("length", U.PIXEL):
        a.cal, a.units = like.cal, like.units
    elif unit == U.ANGSTROM:
        a.cal, a.units = U.AxisCalibration("length", 1.0, U.ANGSTROM), "angstrom"
    return a
