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
                                 Gatan, JEOL); Velox: ``Optics.AccelerationVoltage`` (V); FEI TIA: the
                                 object info's ``MicroscopeConditions.AcceleratingVoltage`` (V)
``eds_fwhm_mn_ka_ev``      eV    ``...Detector.EDS.energy_resolution_MnKa``; Bruker (which rosettasciio
                                 does not map): the spectrum header's line-width model
                                 ``SigmaAbs + SigmaLin·E`` (keV², E in keV) at Mn Kα
``eds_take_off_deg``       °     ``...Detector.EDS.elevation_angle`` (Velox: the first enabled analytical
                                 detector's ``ElevationAngle``, rad), only for an untilted stage (a tilt
                                 changes the take-off angle in a way that also depends on the azimuth)
``eels_convergence_mrad``  mrad  ``Acquisition_instrument.TEM.convergence_angle``
``eels_collection_mrad``   mrad  ``Acquisition_instrument.TEM.Detector.EELS.collection_angle``
``xray_tube_kv``           kV    a Bruker micro-XRF spectrum (M4 Tornado, M6 Jetstream): the tube's
                                 voltage. Such a spectrum was excited by X-rays, not by an electron beam:
                                 it has no ``beam_energy_kev`` and no take-off angle
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
    "xray_tube_kv": (1.0, 200.0),
}

#: Mn Kα1, the energy at which EDS detectors state their resolution (keV)
_MN_KA_KEV = 5.8988
#: FWHM of a Gaussian in standard deviations
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


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
        if key not in out and value is not None and _in_range(key, value):
            out[key] = float(value)

    tube_kv = _bruker_xrf_tube_kv(om)
    if tube_kv is not None:  # the "beam energy" and "elevation angle" rosettasciio reports are the tube's
        keep("xray_tube_kv", tube_kv)
        keep("eds_fwhm_mn_ka_ev", _bruker_fwhm_mn_ka(om))
        return out

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
    # FEI TIA (.emi) too, in the object info rosettasciio passes on unmapped
    volts = _number(_get(om, "ObjectInfo", "ExperimentalConditions", "MicroscopeConditions", "AcceleratingVoltage"))
    keep("beam_energy_kev", volts / 1000.0 if volts is not None else None)
    keep("beam_energy_kev", _number(_get(om, "ObjectInfo", "ExperimentalDescription", "High tension_kV")))
    keep("eds_take_off_deg", _velox_take_off(om))
    keep("eds_fwhm_mn_ka_ev", _bruker_fwhm_mn_ka(om))
    return out


def _in_range(key: str, value: float) -> bool:
    low, high = _PLAUSIBLE[key]
    return low <= value <= high


def _bruker_fwhm_mn_ka(om: dict) -> float | None:
    """The FWHM at Mn Kα (eV) from a Bruker spectrum header's line-width model, σ² = SigmaAbs + SigmaLin·E
    (keV², E in keV): the detector's electronic noise plus the Fano term F·ε·E (SigmaLin is 0.00042-0.00054
    keV in hyperspy's and exSpy's Bruker files, silicon's 0.115 × 3.8 eV). Bruker's Esprit fits its peaks
    with this model; rosettasciio keeps it only in the original metadata."""
    header = om.get("Spectrum")
    if not isinstance(header, dict):
        return None
    sigma_abs, sigma_lin = _number(header.get("SigmaAbs")), _number(header.get("SigmaLin"))
    if sigma_abs is None or sigma_lin is None:
        return None
    variance_kev2 = sigma_abs + sigma_lin * _MN_KA_KEV
    return _FWHM_PER_SIGMA * math.sqrt(variance_kev2) * 1000.0 if variance_kev2 > 0 else None


def _bruker_xrf_tube_kv(om: dict) -> float | None:
    """The tube voltage of a Bruker micro-XRF spectrum, None for an electron-excited one. Esprit writes a
    ``TRTESMAHeader`` (electron-beam microanalysis) for SEM/TEM spectra and a ``TRTXrfHeader`` (the X-ray
    tube: anode, voltage, current) for its XRF instruments; rosettasciio keeps the first whole (with its
    ``XmlClassType``) and replaces the second by {PrimaryEnergy: tube voltage, ElevationAngle: excitation
    angle} in ``original_metadata["Analysis"]``, so a Bruker spectrum header with an Analysis that is not
    the ESMA header was excited by a tube."""
    spectrum, analysis = om.get("Spectrum"), om.get("Analysis")
    if not (isinstance(spectrum, dict) and spectrum.get("XmlClassType") == "TRTSpectrumHeader"):
        return None  # not a Bruker spectrum
    if not isinstance(analysis, dict) or analysis.get("XmlClassType") == "TRTESMAHeader":
        return None
    if "XmlClassType" in analysis or "PrimaryEnergy" not in analysis:
        return None  # a header of a kind not known here: say nothing rather than guess
    kv = _number(analysis.get("PrimaryEnergy"))
    return kv if kv is not None and _in_range("xray_tube_kv", kv) else None


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
