"""Physical units: the one place where the package converts lengths, reciprocal lengths, energies
and times, and decides what an axis is.

The core API speaks angstrom (Å) for lengths, 1/Å for reciprocal space, eV for energy and seconds
for time. Files and napari layers speak whatever they like ("nm", "µm", "1/nm", "keV", "ms", pint
units); everything that crosses into the core goes through here first. No Qt, no napari.

napari layer ``units`` are pint unit strings. We give napari the canonical names below, which pint
parses: ``"angstrom"``, ``"1/angstrom"``, ``"eV"``, ``"s"``, ``"nm"`` (light wavelength) and
napari's own ``"pixel"`` for an uncalibrated axis.

Examples
--------
>>> length_to_angstrom(0.5, "nm")
5.0
>>> reciprocal_to_inverse_angstrom(2.0, "1/nm")
0.2
>>> calibrate_axis(0.2, "nm")
AxisCalibration(kind='length', scale=2.0, unit='angstrom')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ANGSTROM = "angstrom"
INVERSE_ANGSTROM = "1/angstrom"
ELECTRONVOLT = "eV"
SECOND = "s"
NANOMETRE = "nm"
MILLIRADIAN = "mrad"
PIXEL = "pixel"

# metadata keys used across io/ and widgets/ (one spelling each)
PIXEL_SIZE_KEY = "pixel_size_angstrom"

_MICRO = ("µ", "μ", "u")
_LENGTH = {"m": 1e10, "cm": 1e8, "mm": 1e7, "um": 1e4, "nm": 10.0, "a": 1.0, "pm": 1e-2}
_LENGTH_WORDS = {
    "meter": "m", "metre": "m", "centimeter": "cm", "millimeter": "mm", "micrometer": "um",
    "micrometre": "um", "micron": "um", "nanometer": "nm", "nanometre": "nm", "angstrom": "a",
    "ångström": "a", "å": "a", "picometer": "pm", "picometre": "pm",
}
_ENERGY = {"ev": 1.0, "kev": 1e3, "mev": 1e6, "electron_volt": 1.0, "kiloelectron_volt": 1e3}
_TIME = {"s": 1.0, "sec": 1.0, "second": 1.0, "ms": 1e-3, "millisecond": 1e-3, "us": 1e-6,
         "microsecond": 1e-6, "ns": 1e-9, "nanosecond": 1e-9, "ps": 1e-12, "picosecond": 1e-12,
         "fs": 1e-15, "femtosecond": 1e-15, "min": 60.0, "minute": 60.0,
         "h": 3600.0, "hour": 3600.0}
_TIME_LABELS = {"t", "time", "frame", "frames"}
_ANGLE = {"mrad": 1.0, "milliradian": 1.0, "rad": 1e3, "radian": 1e3, "urad": 1e-3, "microradian": 1e-3,
          "deg": 1e3 * math.pi / 180, "degree": 1e3 * math.pi / 180, "°": 1e3 * math.pi / 180}


def _clean(unit) -> str:
    """Lower-case ASCII spelling of a unit: "µm" -> "um", "Å" -> "a", "1 / nanometer" -> "1/nm"."""
    text = str(unit if unit is not None else "").strip()
    for micro in _MICRO[:2]:
        text = text.replace(micro, "u")
    text = text.replace("Å", "a").replace(" ", "").lower()
    if text.endswith("s") and text[:-1] in _LENGTH_WORDS:  # "nanometers"
        text = text[:-1]
    return text


def _length_key(text: str) -> str | None:
    text = _LENGTH_WORDS.get(text, text)
    return text if text in _LENGTH else None


def is_length(unit) -> bool:
    """True for a length unit (m ... pm, Å)."""
    return _length_key(_clean(unit)) is not None


def is_reciprocal(unit) -> bool:
    """True for a reciprocal length ("1/nm", "nm^-1", "1 / angstrom")."""
    return _reciprocal_key(_clean(unit)) is not None


def _reciprocal_key(text: str) -> str | None:
    for prefix in ("1/",):
        if text.startswith(prefix):
            return _length_key(text[len(prefix):])
    for suffix in ("^-1", "**-1", "-1"):
        if text.endswith(suffix):
            return _length_key(text[: -len(suffix)])
    return None


def is_energy(unit) -> bool:
    """True for an energy unit (eV, keV, MeV)."""
    return _clean(unit) in _ENERGY


def is_time(unit) -> bool:
    """True for a time unit (s, ms, µs, ns, min, h)."""
    return _clean(unit) in _TIME


def is_angle(unit) -> bool:
    """True for an angle unit (mrad, rad, µrad, degree): scattering angles of detectors."""
    return _clean(unit) in _ANGLE


def _finite(value) -> float:
    """``value`` as a finite float; NaN, inf, complex and non-numbers are refused."""
    from napari_cryomat.core._validate import number

    return number(value, "value")


def length_to_angstrom(value: float, unit) -> float:
    """``value`` in ``unit`` (a length) converted to Å.

    Raises
    ------
    ValueError
        If ``unit`` is not a length, or ``value`` is not a finite number.
    """
    key = _length_key(_clean(unit))
    if key is None:
        raise ValueError(f"unit {unit!r} is not a length (expected m, mm, µm, nm, Å or pm)")
    return _finite(value) * _LENGTH[key]


def readable_lengths(*angstrom: float) -> str:
    """Lengths in Å said together, in the one unit that reads at a glance: Å up to 1 µm (atoms, particles,
    a TEM field), µm up to 10 mm (an SEM map: "5158872, 10317744 Å" reads "516, 1032 µm"), mm beyond;
    one decimal below 100 of the unit, none above."""
    from napari_cryomat.core._validate import number

    angstrom = tuple(number(a, "angstrom") for a in angstrom)
    largest = max((abs(a) for a in angstrom), default=0.0)
    per_unit, name = (1.0, "Å") if largest < 1e4 else (1e4, "µm") if largest < 1e8 else (1e7, "mm")
    decimals = 0 if name == "Å" or largest / per_unit >= 100 else 1
    return ", ".join(f"{a / per_unit:.{decimals}f}" for a in angstrom) + f" {name}"


def reciprocal_to_inverse_angstrom(value: float, unit) -> float:
    """``value`` in ``unit`` (a reciprocal length such as 1/nm) converted to 1/Å."""
    key = _reciprocal_key(_clean(unit))
    if key is None:
        raise ValueError(f"unit {unit!r} is not a reciprocal length (expected 1/nm, 1/Å, ...)")
    return _finite(value) / _LENGTH[key]


def energy_to_ev(value: float, unit) -> float:
    """``value`` in ``unit`` (eV, keV, MeV) converted to eV."""
    text = _clean(unit)
    if text not in _ENERGY:
        raise ValueError(f"unit {unit!r} is not an energy (expected eV or keV)")
    return _finite(value) * _ENERGY[text]


def time_to_seconds(value: float, unit) -> float:
    """``value`` in ``unit`` (s, ms, µs, ns, min, h) converted to seconds."""
    text = _clean(unit)
    if text not in _TIME:
        raise ValueError(f"unit {unit!r} is not a time (expected s, ms, µs, ns or min)")
    return _finite(value) * _TIME[text]


@dataclass(frozen=True)
class AxisCalibration:
    """One axis in canonical units: ``kind`` in {"length", "reciprocal", "energy", "time",
    "wavelength", "angle", "pixel"}, the step ``scale`` and the napari ``unit`` string."""

    kind: str
    scale: float
    unit: str


def canonical_unit(unit, *, spectral_length_is_wavelength: bool = False) -> tuple[str, float, str] | None:
    """``(kind, factor, napari unit)`` that turn values in ``unit`` into the canonical unit of
    their kind (value * factor), or None for a missing or unknown unit.

    Use it for offsets (signed values); :func:`calibrate_axis` is the same rule for steps.

    >>> canonical_unit("1/nm")
    ('reciprocal', 0.1, '1/angstrom')
    """
    if is_length(unit):
        if spectral_length_is_wavelength:
            return ("wavelength", length_to_angstrom(1.0, unit) / 10.0, NANOMETRE)
        return ("length", length_to_angstrom(1.0, unit), ANGSTROM)
    if is_reciprocal(unit):
        return ("reciprocal", reciprocal_to_inverse_angstrom(1.0, unit), INVERSE_ANGSTROM)
    if is_energy(unit):
        return ("energy", energy_to_ev(1.0, unit), ELECTRONVOLT)
    if is_time(unit):
        return ("time", time_to_seconds(1.0, unit), SECOND)
    if is_angle(unit):
        return ("angle", _ANGLE[_clean(unit)], MILLIRADIAN)
    return None


def calibrate_axis(scale: float, unit, *, spectral_length_is_wavelength: bool = False) -> AxisCalibration:
    """Canonical calibration of one axis from a file's ``scale`` and ``unit``.

    Lengths become Å, reciprocal lengths 1/Å, energies eV, times s and angles mrad. A missing,
    unknown or non-finite/zero calibration becomes ``pixel`` with scale 1, never "1 Å"; a
    negative step is taken by its size. With ``spectral_length_is_wavelength`` a length axis is
    a light wavelength (cathodoluminescence) and stays in nm.
    """
    try:
        step = abs(float(scale))
    except (TypeError, ValueError):
        step = float("nan")
    if not math.isfinite(step) or step == 0:
        return AxisCalibration(PIXEL, 1.0, PIXEL)
    canon = canonical_unit(unit, spectral_length_is_wavelength=spectral_length_is_wavelength)
    if canon is None:
        return AxisCalibration(PIXEL, 1.0, PIXEL)
    kind, factor, napari_unit = canon
    value = step * factor
    if not math.isfinite(value) or value == 0:
        return AxisCalibration(PIXEL, 1.0, PIXEL)
    return AxisCalibration(kind, value, napari_unit)


def angstrom_units(ndim: int) -> tuple[str, ...]:
    """napari layer ``units`` for ``ndim`` spatial axes in Å."""
    from napari_cryomat.core._validate import integer

    return (ANGSTROM,) * integer(ndim, "ndim", low=0, high=64)


def is_time_axis(label=None, unit=None) -> bool:
    """The one time-axis guess: an axis is time if its label says so ("t", "time", "frame") or
    its unit is a time unit. Used by every tool that offers "first axis is time"."""
    return str(label or "").strip().lower() in _TIME_LABELS or (unit is not None and is_time(unit))
