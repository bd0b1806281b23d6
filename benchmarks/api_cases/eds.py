"""Bad-input cases for the newer public functions of :mod:`napari_cryomat.core.eds` (collected by
benchmarks/core_api_fuzz.py; the older ones are in that file under "eds.*")."""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def _energy():
    return np.arange(0.0, 20480.0, 20.0)


def _intensities():
    return {"Fe": np.full((3, 3), 100.0), "Pt": np.full((3, 3), 50.0)}


def specs(Spec, Factory) -> list:
    L = Factory
    energy = L(lambda: _energy().copy())
    return [
        Spec("eds.clean_windows", {"element": "Fe", "energy": energy, "elements": "Fe, Cr, Mn", "fwhm_mn_ka": 130.0,
                                   "max_offset": 8.0, "clearance": 1.2},
             {"element": "str", "energy": "energy", "fwhm_mn_ka": "len", "max_offset": "len", "clearance": "len0"},
             pos=("element",)),
        Spec("eds.theoretical_k_factors", {"lines": "Fe, Pt", "beam_energy_kev": 200.0, "detector": "polymer",
                                           "si_thickness_um": 450.0},
             {"lines": "str", "beam_energy_kev": "len", "detector": "choice", "si_thickness_um": "len"}, pos=("lines",)),
        Spec("eds.theoretical_zeta_factors", {"lines": "Fe, Pt", "beam_energy_kev": 200.0, "solid_angle_sr": 0.7,
                                              "detector": "beryllium", "si_thickness_um": 450.0},
             {"lines": "str", "beam_energy_kev": "len", "solid_angle_sr": "len", "detector": "choice",
              "si_thickness_um": "len"}, pos=("lines",)),
        Spec("eds.absorption_correction", {"weight_fractions": L(_intensities), "mass_thickness": 0.1,
                                           "take_off_angle": 22.0, "beam_energy_kev": 200.0},
             {"mass_thickness": "len0", "take_off_angle": "len", "beam_energy_kev": "len"}, pos=("weight_fractions",)),
        Spec("eds.quantify", {"intensities": L(_intensities), "method": "zeta", "dose": 1e6, "take_off_angle": 22.0,
                              "beam_energy_kev": 200.0, "solid_angle_sr": 0.7, "max_iter": 5, "min_total": 0.0},
             {"method": "choice", "dose": "len", "take_off_angle": "len", "beam_energy_kev": "len",
              "solid_angle_sr": "len", "max_iter": "count0", "min_total": "len0"}, pos=("intensities",)),
        Spec("eds.quantify", {"intensities": L(_intensities), "k_factors": {"Fe": 1.0, "Pt": 1.7}, "thickness": 500.0,
                              "density": 10.0},
             {"thickness": "len", "density": "len"}, pos=("intensities",)),
    ]
