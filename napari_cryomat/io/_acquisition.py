"""The acquisition parameters a spectrum's analysis needs, read from what the file recorded.

An EDS identification run at the wrong beam energy expects lines the beam cannot excite (exSpy's TM002,
recorded at 10 kV, identified at the dock's former default of 200 kV: false Br, Ag and O, Cu and Al
missed), and one run at a detector resolution 3 eV off its true 133 eV takes Hg and O into exSpy's FePt.
The files say what they were: the layer carries it as ``metadata["acquisition"]`` and the Spectrum
imaging dock starts from it.

``acquisition_parameters(sig)`` returns only what the file states, in these units (a key is absent when
the file does not say, or says something no microscope does):

=========================  ====  ======================================================================
key                        unit  from
=========================  ====  ======================================================================
``beam_energy_kev``        kV    ``Acquisition_instrument.{TEM,SEM}.beam_energy`` (HyperSpy, Bruker,
                                 Gatan, JEOL); Velox: ``Optics.AccelerationVoltage`` (V)
``eds_fwhm_mn_ka_ev``      eV    ``...Detector.EDS.energy_resolution_MnKa``
``eds_take_off_deg``       °     ``...Detector.EDS.elevation_angle`` (Velox: the first enabled analytical
                                 detector's ``ElevationAngle``, rad), only for an untilted stage (a tilt
                                 changes the take-off angle in a way that also depends on the azimuth)
``eels_convergence_mrad``  mrad  ``Acquisition_instrument.TEM.convergence_angle``
``eels_collection_mrad``   mrad  ``Acquisition_instrument.TEM.Detector.EELS.collection_angle``
=========================  ====  ======================================================================
"""

from __future__ import annotations

import math

__all__ = ["acquisition_parameters"]

#: values outside these ranges are not a microscope's (a 0 kV beam, a 0 eV detector): left out
_PLAUSIBLE = {
    "beam_energy_kev": (0.1, 3000.0),
    "eds_fwhm_mn_ka_ev": (30.0, 400.0),
    "eds_take_off_deg": (0.5, 90.0),
    "eels_convergence_mrad": (0.01, 500.0),
    "eels_collection_mrad": (0.01, 500.0),
}


def _get(d, *path):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _number(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def acquisition_parameters(sig: dict) -> dict[str, float]:
    """The beam energy, EDS detector resolution and take-off angle, and EELS angles a rosettasciio
    signal dictionary records (see the module docstring); {} when it records none."""
    md, om = sig.get("metadata") or {}, sig.get("original_metadata") or {}
    out: dict[str, float] = {}

    def keep(key, value):  # the first plausible value found wins
        if key not in out and value is not None and _PLAUSIBLE[key][0] <= value <= _PLAUSIBLE[key][1]:
            out[key] = float(value)

    instrument = _get(md, "Acquisition_instrument") or {}
    for microscope in ("TEM", "SEM"):
        mic = instrument.get(microscope) if isinstance(instrument, dict) else None
        if not isinstance(mic, dict):
            continue
        keep("beam_energy_kev", _number(mic.get("beam_energy")))
        eds = _get(mic, "Detector", "EDS") or {}
        keep("eds_fwhm_mn_ka_ev", _number(eds.get("energy_resolution_MnKa")))
        tilt = _number(_get(mic, "Stage", "tilt_alpha")) or 0.0
        if abs(tilt) < 0.5:
            keep("eds_take_off_deg", _number(eds.get("elevation_angle")))
        if microscope == "TEM":
            keep("eels_convergence_mrad", _number(mic.get("convergence_angle")))
            keep("eels_collection_mrad", _number(_get(mic, "Detector", "EELS", "collection_angle")))
    volts = _number(_get(om, "Optics", "AccelerationVoltage"))  # Velox keeps its optics in the original metadata
    keep("beam_energy_kev", volts / 1000.0 if volts is not None else None)
    keep("eds_take_off_deg", _velox_take_off(om))
    return out


def _velox_take_off(om: dict) -> float | None:
    tilt = _number(_get(om, "Stage", "AlphaTilt"))  # rad
    if tilt is not None and abs(math.degrees(tilt)) >= 0.5:
        return None
    detectors = _get(om, "Detectors")
    if not isinstance(detectors, dict):
        return None
    for det in detectors.values():
        if (isinstance(det, dict) and det.get("DetectorType") == "AnalyticalDetector"
                and str(det.get("Enabled", "true")).lower() == "true"):
            elevation = _number(det.get("ElevationAngle"))
            if elevation is not None:
                return math.degrees(elevation)
    return None
