"""What a real file should look like in napari, from the format's own library, and a checker that
compares napari layers with it, independently of napari-cryomat's code.

The reference is read with rosettasciio (vendor formats and TIFF calibration), tifffile (TIFF
data) or mrcfile (MRC). Layers are matched to the file's signals in order (a complex signal gives
two layers, amplitude and phase or real and imaginary). For each pair, size-1 axes are set aside
and the layer's axes are matched to the file's by trying every axis permutation that makes the
*data* equal; the calibration of the matched axes is then checked with *pint* (not with
``napari_cryomat.core.units``):

- a calibrated file axis has, in the layer, its scale and offset converted to the layer's unit;
- an energy axis is in eV, a wavelength axis (named so) in nm, a length in Å, a reciprocal
  length in 1/Å;
- an uncalibrated file axis is "pixel" with scale 1 (never "1 Å"); a length step no microscope
  pixel has (below 1e-6 Å or above 1 cm, e.g. TIA's 1 m placeholder) may be shown as "pixel".

:func:`check_layers` returns a list of problems (empty when the file opened right).
"""

from __future__ import annotations

import importlib
import itertools
import logging
import warnings
from pathlib import Path

import numpy as np

RSCIIO_API = {
    ".dm3": "rsciio.digitalmicrograph", ".dm4": "rsciio.digitalmicrograph", ".emd": "rsciio.emd",
    ".bcf": "rsciio.bruker", ".spx": "rsciio.bruker", ".msa": "rsciio.msa", ".hspy": "rsciio.hspy",
    ".emi": "rsciio.tia", ".ser": "rsciio.tia", ".asw": "rsciio.jeol", ".pts": "rsciio.jeol",
    ".img": "rsciio.jeol", ".map": "rsciio.jeol", ".eds": "rsciio.jeol", ".blo": "rsciio.blockfile",
    ".tvips": "rsciio.tvips", ".elid": "rsciio.phenom", ".tif": "rsciio.tiff", ".tiff": "rsciio.tiff",
}
_COUNTS = {"points", "point", "pts", "pt", "pixel", "pixels", "px", "pix", "counts", "frames", "a.u."}
_PLAUSIBLE_M = (1e-16, 1e-2)  # a length step outside this (in m) is no microscope pixel


class Ref:
    """One signal of the file: data (numpy or dask) and one axis dict (or None) per dimension;
    ``rgb`` is the list of colour fields of a structured array, ``"channels"`` for colour as the
    last axis, or None."""

    def __init__(self, data, axes, rgb=None):
        self.data, self.axes, self.rgb = data, axes, rgb


# -------------------------------------------------------------------------------------------------
# reading the references
# -------------------------------------------------------------------------------------------------
def rsciio_read(path: Path):
    mod = importlib.import_module(RSCIIO_API[path.suffix.lower()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("rsciio").setLevel(logging.CRITICAL)
        try:
            return mod.file_reader(str(path), lazy=True)
        except Exception:  # noqa: BLE001 - not lazily: then whole (small test files)
            return mod.file_reader(str(path))


def _aligned(sig: dict, shape) -> list:
    """The signal's axis dicts in array order (by ``index_in_array``, else listed order)."""
    raw = list(sig.get("axes") or [])
    out = [None] * len(shape)
    rest = []
    for ax in raw:
        i = ax.get("index_in_array")
        if i is not None and 0 <= int(i) < len(shape) and out[int(i)] is None:
            out[int(i)] = ax
        else:
            rest.append(ax)
    free = [i for i, a in enumerate(out) if a is None]
    if len(rest) == len(free):
        for i, ax in zip(free, rest):
            out[i] = ax
    else:
        for ax in rest:
            for i in free:
                if out[i] is None and int(ax.get("size") or -1) == shape[i]:
                    out[i] = ax
                    break
    return out


def references(path: Path) -> list[Ref]:
    """The file's signals as the format's own library reads them (raises if it cannot)."""
    name = path.name.lower()
    if name.endswith((".tif", ".tiff")):
        return _tiff_refs(path)
    if _is_mrc(path):
        return _mrc_refs(path)
    refs = []
    signals = list(rsciio_read(path))
    if name.endswith(".emd") and any(_is_spectrum_image(sig) for sig in signals):
        signals += _velox_frames(path)
    for sig in signals:
        data = sig["data"]
        names = getattr(data.dtype, "names", None)
        rgb = list(names) if names and set(names) <= set("RGBA") else None
        refs.append(Ref(data, _aligned(sig, data.shape), rgb))
    return refs


def _fei_scanned_rows(sig: dict, shape) -> int | None:
    """Rows of an FEI TIFF's scan (its ``Image.ResolutionY``) when the file is taller (a data bar), else None."""
    image = (((sig.get("original_metadata") or {}).get("fei_metadata") or {}).get("Image") or {})
    try:
        rows, cols = int(image["ResolutionY"]), int(image["ResolutionX"])
    except (KeyError, TypeError, ValueError):
        return None
    return rows if len(shape) >= 2 and cols == shape[-1] and 0 < rows < shape[-2] else None


#: Zeiss SmartSEM draws its data zone (a framed box of text) over the bottom of the scan, and no tag gives its
#: height: the first row of its frame, read off each corpus image by eye (the reader finds the frame itself)
_ZEISS_ZONE_TOP = {"test_tiff_Zeiss_SEM_1k.tif": 691, "test_tiff_Zeiss_SEM_512pix.tif": 350}


def _is_spectrum_image(sig: dict) -> bool:
    """A spectrum image the file says was recorded in more than one frame."""
    signal_type = str(((sig.get("metadata") or {}).get("Signal") or {}).get("signal_type", ""))
    frames = ((sig.get("original_metadata") or {}).get("ImportedDataParameter") or {}).get("Number_of_frames")
    return (signal_type.upper().startswith(("EDS", "EELS")) and sum(bool(a.get("navigate")) for a in sig["axes"]) == 2
            and int(frames or 1) > 1)


def _velox_frames(path: Path) -> list[dict]:
    """A Velox spectrum image recorded in frames opens with its frames too (those of the SI and of the
    STEM images taken with it): the signals of rosettasciio's frame-resolved read with more than one frame."""
    import rsciio.emd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = rsciio.emd.file_reader(str(path), lazy=True, sum_frames=False, load_SI_image_stack=True)
    return [s for s in frames if any(a.get("name") == "Time" and a.get("navigate") and int(a.get("size", 1)) > 1
                                     for a in s["axes"])]


def _is_mrc(path: Path) -> bool:
    name = path.name.lower()
    for comp in ("", ".gz", ".bz2"):
        if any(name.endswith(s + comp) for s in (".mrc", ".mrcs", ".st", ".ali", ".rec", ".preali")):
            return True
    if name.endswith((".map.gz", ".map.bz2")):
        return True
    if name.endswith(".map"):
        with open(path, "rb") as f:
            head = f.read(224)
        return head[208:212] == b"MAP "
    return False


def _tiff_refs(path: Path) -> list[Ref]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = [(s.asarray(), str(s.axes), int(getattr(s.pages[0].keyframe if hasattr(s.pages[0], "keyframe")
                                                          else s.pages[0], "photometric", 0)))
                  for s in tif.series]
    try:
        cal = rsciio_read(path)
    except Exception:  # noqa: BLE001 - then only the data are compared
        cal = []
    refs = []
    for i, (arr, axes, photometric) in enumerate(series):
        rgb = axes.endswith("S") and arr.shape[-1] in (3, 4) and photometric == 2
        n = arr.ndim - (1 if rgb else 0)
        scanned = _fei_scanned_rows(cal[i], arr.shape[:n]) if i < len(cal) else None
        scanned = scanned or _ZEISS_ZONE_TOP.get(path.name)
        if scanned:  # the reader opens the scan without the data bar (FEI) or zone (Zeiss) of the SEM
            arr = arr[(slice(None),) * (n - 2) + (slice(0, scanned),)]
        ax = list(cal[i]["axes"]) if i < len(cal) else []
        ax = ([None] * (n - len(ax)) + ax)[-n:]
        # rosettasciio keeps ImageJ's z spacing without unit: ImageJ's unit is the image's
        if ax and ax[-1] is not None:
            for k in range(n - 2):
                if ax[k] is not None and ax[k].get("units") is None and float(ax[k].get("scale") or 1) != 1:
                    ax[k] = dict(ax[k], units=ax[-1].get("units"))
        if i < len(cal) and str((cal[i].get("original_metadata") or {}).get("Artist", "")).startswith(
                "Copyright Hamamatsu") and ax[-1] is not None:
            ax[-1] = dict(ax[-1], name="wavelength")  # a streak camera's horizontal axis is the spectrometer's
        refs.append(Ref(arr, ax, "channels" if rgb else None))
    return refs


def _mrc_refs(path: Path) -> list[Ref]:
    import mrcfile

    with mrcfile.open(str(path), permissive=True) as m:
        data = np.asarray(m.data)
        h = m.header
        order = [int(h.maps), int(h.mapr), int(h.mapc)]
        vs = m.voxel_size
    if data.ndim == 3 and sorted(order) == [1, 2, 3]:
        data = data.transpose([order.index(3), order.index(2), order.index(1)])
    data = data[..., ::-1, :]  # napari-cryomat shows MRC maps as IMOD's 3dmod does: flipped in Y
    sizes = [float(vs.z), float(vs.y), float(vs.x)][-data.ndim:]
    axes = [{"name": n, "units": "Å" if s > 0 else None, "scale": s if s > 0 else 1.0, "offset": None}
            for n, s in zip("zyx"[-data.ndim:], sizes)]
    if np.iscomplexobj(data):
        return [Ref(data, axes)]
    return [Ref(data, axes)]


# -------------------------------------------------------------------------------------------------
# checking layers
# -------------------------------------------------------------------------------------------------
def _ureg():
    import pint

    return pint.get_application_registry()


def convert(value, units, target):
    """``value`` in ``units`` converted by pint to ``target``; None if not a physical unit."""
    if units is None or str(units).strip() in ("", "<undefined>", "[]") or str(units).strip().lower() in _COUNTS:
        return None
    ureg = _ureg()
    try:
        q = ureg.Quantity(float(value), ureg.parse_units(str(units).replace("µ", "u").replace("μ", "u")))
        return float(q.to(target).magnitude)
    except Exception:  # noqa: BLE001
        return None


def _physical(units) -> bool:
    return any(convert(1.0, units, t) is not None for t in ("m", "1/m", "eV", "s", "rad"))


def unit_is(unit, name: str) -> bool:
    ureg = _ureg()
    try:
        return ureg.Unit(str(unit)) == ureg.Unit(name)
    except Exception:  # noqa: BLE001
        return str(unit) == name


def _dimension(units) -> str | None:
    for target in ("m", "1/m", "eV", "s", "rad"):
        if convert(1.0, units, target) is not None:
            return target
    return None


def check_axis(layer, k: int, ax: dict | None, *, mixed_display: bool = False) -> str | None:
    """A problem with layer axis ``k`` shown for file axis ``ax``, or None. ``mixed_display``: the
    two displayed axes measure different things (time against wavelength), which napari cannot
    draw in one world: pixels are then accepted for them."""
    unit = str(layer.units[k]) if getattr(layer, "units", None) is not None else "pixel"
    scale, translate = float(layer.scale[k]), float(layer.translate[k])
    ax = ax or {}
    ref_units, ref_scale, ref_offset = ax.get("units"), ax.get("scale", 1.0), ax.get("offset", 0.0)
    if ax.get("axis") is not None and len(ax["axis"]) > 1:
        v = np.asarray(ax["axis"], float)
        ref_scale, ref_offset = (v[-1] - v[0]) / (len(v) - 1), v[0]
    try:
        ref_scale = float(ref_scale if ref_scale is not None else 1.0)
    except (TypeError, ValueError):
        ref_scale = 1.0
    calibrated = _physical(ref_units) and ref_scale != 0 and np.isfinite(ref_scale)
    name = str(ax.get("name") or "").lower()
    if unit == "pixel":
        if not calibrated or mixed_display:
            return None if scale == 1.0 else f"pixel axis with scale {scale}"
        m = convert(abs(ref_scale), ref_units, "m")
        if m is not None and not (_PLAUSIBLE_M[0] <= m <= _PLAUSIBLE_M[1]) and "wavelength" not in name:
            return None  # an implausible length shown as pixels: accepted
        return f"calibrated {ref_scale:g} {ref_units} shown as pixel"
    if not calibrated:
        return f"uncalibrated axis ({ref_units!r}, scale {ref_scale:g}) shown as {scale:g} {unit}"
    want = convert(abs(ref_scale), ref_units, unit)
    if want is None:
        return f"{ref_units} shown as {unit}"
    if not np.isclose(scale, want, rtol=1e-5):
        return f"scale {scale:g} {unit}, file says {ref_scale:g} {ref_units} (= {want:g} {unit})"
    if ref_offset is not None:
        want_off = convert(float(ref_offset or 0.0), ref_units, unit)
        if want_off is not None and not np.isclose(translate, want_off, rtol=1e-5, atol=1e-9 * max(1.0, abs(want))):
            return f"offset {translate:g} {unit}, file says {ref_offset:g} {ref_units}"
    if convert(1.0, ref_units, "eV") is not None and not unit_is(unit, "eV"):
        return f"energy axis in {unit}"
    if "wavelength" in name and not unit_is(unit, "nm"):
        return f"wavelength axis in {unit}"
    if "wavelength" not in name and convert(1.0, ref_units, "m") is not None and not unit_is(unit, "angstrom"):
        return f"length axis in {unit}"
    if convert(1.0, ref_units, "1/m") is not None and not unit_is(unit, "1/angstrom"):
        return f"reciprocal axis in {unit}"
    return None


def _slabs(a, n_max=2_000_000):
    if int(np.prod(a.shape)) <= n_max or a.ndim == 0:
        return [np.asarray(a)]
    idx = sorted({0, a.shape[0] // 2, a.shape[0] - 1})
    return [np.asarray(a[i]) for i in idx]


def _same(a, b) -> bool:
    if tuple(a.shape) != tuple(b.shape):
        return False
    for x, y in zip(_slabs(a), _slabs(b)):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype == bool or y.dtype == bool:
            x, y = x.astype(np.uint8), y.astype(np.uint8)
        if x.shape != y.shape:
            return False
        with np.errstate(invalid="ignore"):
            if not np.allclose(x.astype(np.float64) if not np.iscomplexobj(x) else x,
                               y.astype(np.float64) if not np.iscomplexobj(y) else y, rtol=1e-6, equal_nan=True):
                return False
    return True


def _variants(ref: Ref, part: int):
    """Reference arrays a layer may show: the data, or for complex data its parts."""
    data = ref.data
    if ref.rgb == "channels":
        return [data]
    if ref.rgb:
        if hasattr(data, "dask") or type(data).__module__.startswith("dask"):
            import dask.array as da

            return [da.stack([data[n] for n in ref.rgb], axis=-1)]
        return [np.stack([np.asarray(data[n]) for n in ref.rgb], axis=-1)]
    if np.iscomplexobj(np.empty(0, dtype=data.dtype)):
        arr = np.asarray(data)
        return [np.abs(arr), np.real(arr)] if part == 0 else [np.angle(arr), np.imag(arr)]
    return [data]


def check_signal(layer, ref: Ref, part: int = 0) -> list[str]:
    """Problems of one layer against one reference signal (empty: right)."""
    rgb = bool(getattr(layer, "rgb", False))
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    n_l = data.ndim - (1 if rgb else 0)
    problems = []
    for want in _variants(ref, part):
        n_r = want.ndim - (1 if ref.rgb else 0)
        l_dims = [k for k in range(n_l) if data.shape[k] > 1]
        r_dims = [i for i in range(n_r) if want.shape[i] > 1]
        if [data.shape[k] for k in l_dims] and sorted(data.shape[k] for k in l_dims) != sorted(want.shape[i] for i in r_dims):
            problems.append(f"shape {tuple(data.shape)} is not a view of the file's {tuple(want.shape)}")
            continue
        l_sq = data.reshape([data.shape[k] for k in l_dims] + ([data.shape[-1]] if rgb else []))
        r_sq = want.reshape([want.shape[i] for i in r_dims] + ([want.shape[-1]] if ref.rgb else []))
        matched_data = False
        for perm in itertools.permutations(range(len(r_dims))):
            if any(r_sq.shape[p] != l_sq.shape[j] for j, p in enumerate(perm)):
                continue
            order = list(perm) + ([len(r_dims)] if ref.rgb else [])
            candidate = r_sq.transpose(order) if order else r_sq
            if not _same(l_sq, candidate):
                continue
            matched_data = True
            shown = [ref.axes[r_dims[perm[j]]] for j, k in enumerate(l_dims) if k >= n_l - 2]
            dims = [_dimension((a or {}).get("units")) for a in shown]
            mixed = len(dims) == 2 and None not in dims and dims[0] != dims[1]
            axis_problems = [p for j, k in enumerate(l_dims)
                             if (p := check_axis(layer, k, ref.axes[r_dims[perm[j]]], mixed_display=mixed and k >= n_l - 2))]
            if not axis_problems:
                return []
            problems.append("; ".join(f"{p}" for p in axis_problems))
        if not matched_data:
            problems.append("data differ from the file's (in any axis order)")
    return problems[:1] or ["no match"]


def check_layers(path: Path, layers) -> list[str]:
    """Problems of the layers napari got from ``path`` (empty: opened right)."""
    refs = references(path)
    # the file's order: the spectral reader lists the layers with the most axes first (io/spectral's
    # _most_axes_first), each layer names its signal's index in the file
    layers = sorted(layers, key=lambda layer: ((layer.metadata or {}).get("source") or {}).get("index", 0))
    expected = sum(2 if np.iscomplexobj(np.empty(0, dtype=r.data.dtype)) else 1 for r in refs)
    if len(layers) != expected:
        return [f"{len(layers)} layers for {len(refs)} signals ({expected} expected)"]
    problems, i = [], 0
    for ref in refs:
        parts = 2 if np.iscomplexobj(np.empty(0, dtype=ref.data.dtype)) else 1
        for part in range(parts):
            layer = layers[i]
            i += 1
            for p in check_signal(layer, ref, part):
                problems.append(f"{layer.name}: {p}")
        for layer in layers[i - parts:i]:
            if not all(np.isfinite(s) and s > 0 for s in layer.scale):
                problems.append(f"{layer.name}: scale {tuple(layer.scale)} napari cannot draw")
    return problems
