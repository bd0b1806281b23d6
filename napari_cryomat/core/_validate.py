"""Checks at the boundary of the core API: one place for "is this parameter usable?".

Every public function of :mod:`napari_cryomat.core` checks its parameters with these helpers
before any work, so a bad value ends in a :class:`ValueError` that names the parameter, the value
and the valid range, e.g. ``pixel_size must be a finite number > 0 and <= 1e+09 (Å); got nan.``,
instead of a hang, a silent NaN, a ``ZeroDivisionError`` from deep inside numpy, or an attempt to
allocate terabytes. They return the value converted (float, int, float array), so a call site reads
``p = positive(pixel_size, "pixel_size", unit="Å")``.

No Qt, no napari; numpy only.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "MAX_LENGTH",
    "MAX_COUNT",
    "memory_budget",
    "check_memory",
    "number",
    "positive",
    "nonnegative",
    "fraction",
    "integer",
    "choice",
    "vector",
    "window",
    "real_array",
    "labels_array",
    "same_shape",
    "regular_file",
    "plain_name",
]

#: Largest length accepted anywhere, Å (10 cm): beyond it a value is a typo, not a measurement.
MAX_LENGTH = 1e9
#: Largest magnitude of any other physical number (energies in eV, doses, intensities).
MAX_NUMBER = 1e15
#: Largest count of anything a loop runs over (iterations, estimators, components...).
MAX_COUNT = 1_000_000
#: Allocations this small are never refused (and cost no look at the free memory).
_ALWAYS_FITS = 64 << 20


def _show(value) -> str:
    try:
        if isinstance(value, np.ndarray):
            return f"an array of shape {value.shape} and dtype {value.dtype}"
        text = repr(value)
    except Exception:  # noqa: BLE001 - never fail while reporting a failure
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(name: str, requirement: str, value, hint: str = "", label: str | None = None) -> ValueError:
    who = f"{label} ({name})" if label else name
    msg = f"{who} must be {requirement}; got {_show(value)}."
    return ValueError(msg + (" " + hint if hint else ""))


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


# -------------------------------------------------------------------------------------------------
# memory
# -------------------------------------------------------------------------------------------------
def memory_budget() -> int:
    """Bytes one operation may allocate: half of what is free, counting an address-space limit.

    Half of ``MemAvailable`` (Linux; ``SC_AVPHYS_PAGES`` elsewhere), and half of the headroom under
    ``RLIMIT_AS`` when the process runs with one.
    """
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = 8 << 30
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            used = 0
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
                        break
            free = min(free, max(0, soft - used))
    except (ImportError, OSError, ValueError):
        pass
    return int(free // 2)


def check_memory(n_bytes: float, name: str, what: str = "this operation") -> None:
    """Raise ValueError (naming ``name``) if ``n_bytes`` exceed :func:`memory_budget`."""
    if n_bytes <= _ALWAYS_FITS:  # the hot paths (live FFT of a ROI) never read /proc for small data
        return
    budget = memory_budget()
    if n_bytes > budget:
        raise ValueError(
            f"{name} is too large: {what} needs {n_bytes / 2**30:.1f} GiB, more than half of the "
            f"{2 * budget / 2**30:.1f} GiB of memory free. Crop or bin the data first."
        )


# -------------------------------------------------------------------------------------------------
# numbers
# -------------------------------------------------------------------------------------------------
def number(value, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, unit: str = "",
           allow_none: bool = False, label: str | None = None) -> float | None:
    """``value`` as a finite float in [low, high] (open ends with ``low_open``/``high_open``).

    Refuses NaN, inf, complex, booleans, strings and magnitudes above 1e15. ``label`` is a
    human name put before the parameter name in the message ("Pixel size (pixel_size) must be...").
    """
    if value is None and allow_none:
        return None
    lo = -MAX_NUMBER if low is None else low
    hi = MAX_NUMBER if high is None else high
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    requirement = "a finite number" + (" " + " and ".join(parts) if parts else "") + _unit(unit)
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise _fail(name, requirement, value, label=label)
    if isinstance(value, (complex, np.complexfloating)):
        raise _fail(name, requirement, value, "Complex numbers have no meaning here.", label=label)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise _fail(name, requirement, value, label=label)
    v = float(value)
    if not math.isfinite(v) or abs(v) > MAX_NUMBER:
        raise _fail(name, requirement, value, label=label)
    if v < lo or (low_open and v <= lo) or v > hi or (high_open and v >= hi):
        raise _fail(name, requirement, value, label=label)
    return v


def positive(value, name: str, *, unit: str = "", high: float | None = MAX_LENGTH,
             allow_none: bool = False, label: str | None = None) -> float | None:
    """A finite number > 0 (and <= ``high``); lengths in Å use the default bound of 1e9 Å."""
    return number(value, name, low=0.0, low_open=True, high=high, unit=unit, allow_none=allow_none,
                  label=label)


def nonnegative(value, name: str, *, unit: str = "", high: float | None = MAX_LENGTH,
                allow_none: bool = False, label: str | None = None) -> float | None:
    """A finite number >= 0 (and <= ``high``)."""
    return number(value, name, low=0.0, high=high, unit=unit, allow_none=allow_none, label=label)


def fraction(value, name: str, *, low: float = 0.0, high: float = 1.0, low_open: bool = False,
             high_open: bool = False, allow_none: bool = False, label: str | None = None) -> float | None:
    """A finite number in [low, high] (default [0, 1])."""
    return number(value, name, low=low, high=high, low_open=low_open, high_open=high_open,
                  allow_none=allow_none, label=label)


def integer(value, name: str, *, low: int | None = None, high: int | None = None,
            allow_none: bool = False, label: str | None = None) -> int | None:
    """``value`` as an int in [low, high]; integral floats (3.0) are accepted, 2.5 and NaN are not."""
    if value is None and allow_none:
        return None
    parts = []
    if low is not None:
        parts.append(f">= {low}")
    if high is not None:
        parts.append(f"<= {high}")
    requirement = "an integer" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, (bool, np.bool_, str, bytes, complex, np.complexfloating)) or value is None:
        raise _fail(name, requirement, value, label=label)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (numbers.Integral, np.integer)):
        v = int(value)
    elif isinstance(value, (numbers.Real, np.floating)) and math.isfinite(float(value)) \
            and float(value) == int(float(value)):
        v = int(float(value))
    else:
        raise _fail(name, requirement, value, label=label)
    if (low is not None and v < low) or (high is not None and v > high):
        raise _fail(name, requirement, value, label=label)
    return v


def choice(value, name: str, options: Iterable[str]) -> str:
    """``value`` if it is one of ``options`` (strings)."""
    opts = tuple(options)
    if not isinstance(value, str) or value not in opts:
        raise _fail(name, "one of " + ", ".join(repr(o) for o in opts), value)
    return value


# -------------------------------------------------------------------------------------------------
# small vectors and windows
# -------------------------------------------------------------------------------------------------
def vector(value, name: str, *, length: int | Sequence[int] = 2, nonzero: bool = False,
           high: float = MAX_NUMBER, unit: str = "", all_positive: bool = False) -> np.ndarray:
    """A finite real float vector of ``length`` entries (e.g. a reciprocal vector (gy, gx))."""
    lengths = (length,) if isinstance(length, int) else tuple(length)
    want = " or ".join(str(n) for n in lengths) if len(lengths) <= 3 else f"{min(lengths)} to {max(lengths)}"

    requirement = f"{want} finite real numbers{_unit(unit)}"
    if all_positive:
        requirement = f"{want} finite numbers > 0{_unit(unit)}"
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001
        raise _fail(name, requirement, value) from None
    if arr.dtype == object or arr.dtype.kind not in "biuf" or arr.ndim != 1 or arr.size not in lengths:
        raise _fail(name, requirement, value)
    v = arr.astype(np.float64)
    if not np.all(np.isfinite(v)) or np.any(np.abs(v) > high):
        raise _fail(name, requirement + (f", each at most {high:g} in size" if high < MAX_NUMBER else ""), value)
    if all_positive and np.any(v <= 0):
        raise _fail(name, requirement, value)
    if nonzero and not np.any(v):
        raise _fail(name, "a non-zero vector", value)
    return v


def window(value, name: str, *, low: float | None = None, high: float | None = None,
           unit: str = "") -> tuple[float, float]:
    """A (start, stop) pair of finite numbers with start < stop, inside [low, high] if given."""
    requirement = f"(start, stop) with finite start < stop{_unit(unit)}"
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001
        raise _fail(name, requirement, value) from None
    if arr.dtype == object or arr.dtype.kind not in "biuf" or arr.shape != (2,):
        raise _fail(name, requirement, value)
    a, b = (float(x) for x in arr)
    if not (math.isfinite(a) and math.isfinite(b)) or max(abs(a), abs(b)) > MAX_NUMBER or not a < b:
        raise _fail(name, requirement, value)
    if (low is not None and a < low) or (high is not None and b > high):
        raise _fail(name, f"inside {low:g}..{high:g}{_unit(unit)}", value)
    return a, b


# -------------------------------------------------------------------------------------------------
# arrays
# -------------------------------------------------------------------------------------------------
def _ndim_text(ndim: Sequence[int]) -> str:
    names = {1: "1D", 2: "2D (Y, X)", 3: "3D", 4: "4D"}
    return " or ".join(names.get(n, f"{n}D") for n in ndim)


def real_array(value, name: str, *, ndim: int | Sequence[int] | None = None, min_size: int = 1,
               finite: bool = True, dtype=np.float32, copies: float = 2.0, what: str | None = None,
               axes: str = "") -> np.ndarray:
    """``value`` as a real numeric array (converted to ``dtype`` unless None).

    Refuses complex data, non-numeric dtypes, the wrong dimensionality, fewer than ``min_size``
    elements along any axis, NaN/inf values (``finite``) and arrays whose ``copies`` working copies
    in ``dtype`` would not fit in :func:`memory_budget`.
    """
    label = f"{name} ({what})" if what else name
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001
        raise _fail(label, "a numeric array", value) from None
    if np.iscomplexobj(arr):
        raise ValueError(
            f"{label} holds complex numbers; take the real part, modulus or phase first."
        )
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.number):
        raise _fail(label, "a real numeric array", value)
    if ndim is not None:
        dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in dims:
            raise ValueError(
                f"{label} must be {_ndim_text(dims)}{' ' + axes if axes else ''}; got shape {arr.shape}."
            )
    if arr.size == 0 or (arr.ndim and min(arr.shape) < min_size):
        raise ValueError(
            f"{label} must have at least {min_size} element{'s' if min_size != 1 else ''} along each axis; "
            f"got shape {arr.shape}."
        )
    item = np.dtype(dtype).itemsize if dtype is not None else arr.dtype.itemsize
    check_memory(arr.size * item * copies, label, f"working on it ({arr.shape})")
    if dtype is not None:
        arr = np.asarray(arr, dtype=dtype)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{label} contains NaN or inf values; replace them (e.g. with the median) or crop them away first."
        )
    return arr


def labels_array(value, name: str, *, ndim: int | Sequence[int] | None = None,
                 nonnegative: bool = True, copies: float = 2.0) -> np.ndarray:
    """``value`` as an integer labels array (0 = background); booleans become 0/1."""
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001
        raise _fail(name, "an integer labels array", value) from None
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name} must hold integer labels (a labels layer); got dtype {arr.dtype}."
        )
    if ndim is not None:
        dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in dims:
            raise ValueError(f"{name} must be {_ndim_text(dims)}; got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    check_memory(arr.size * 8 * copies, name, f"working on it ({arr.shape})")
    if nonnegative and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative (0 = background); the smallest label is {int(arr.min())}.")
    return arr


def same_shape(a, name_a: str, b, name_b: str) -> None:
    """Raise ValueError unless ``a`` and ``b`` have the same shape."""
    sa, sb = tuple(np.shape(a)), tuple(np.shape(b))
    if sa != sb:
        raise ValueError(f"{name_a} has shape {sa} but {name_b} has shape {sb}; they must match.")


# -------------------------------------------------------------------------------------------------
# files and names
# -------------------------------------------------------------------------------------------------
def regular_file(path, name: str = "path") -> str:
    """``path`` as a string if it is an existing regular file (not a folder, FIFO or device)."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise _fail(name, "a file path", path) from None
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ValueError(f"{name} {p!r}: no such file.") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{name} {p!r} cannot be read ({getattr(exc, 'strerror', None) or exc}).") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe or device)"
        raise ValueError(f"{name} {p!r} is {kind}; choose a file.")
    return p


def plain_name(value, name: str) -> str:
    """A non-empty file-name component: no path separators, no '..', no NUL."""
    if not isinstance(value, str) or not value or value in (".", "..") or "\x00" in value \
            or "/" in value or (os.sep != "/" and os.sep in value) or (os.altsep and os.altsep in value):
        raise _fail(name, "a plain name without '/' or '..' (it becomes part of a file name)", value)
    return value
