"""Identification of an element whose only visible line is a shoulder of a much bigger peak (core/_eds_shoulder.py)."""

from napari_cryomat.core import eds
from napari_cryomat.core.synthetic.eds import random_eds_spectrum


def test_shoulder_of_a_big_peak_is_found():
    # Ti Kα (4.51 keV, 42σ) 0.33 keV below Ce Lα (4.84 keV, twice as significant and with Ce Ll, Lβ around it):
    # no peak of its own in the clipped spectrum, so Ti was never a candidate (the code before missed it); once Ce is
    # fitted, it stands out in the residual, and no rival with a line there (V Kβ, Ba Lα, ...) explains it as well
    d = random_eds_spectrum(12010)
    res = eds.identify_elements(d["spectrum"], energy=d["energy"], fwhm_mn_ka=d["fwhm_mn_ka"],
                                beam_energy_kev=d["beam_energy_kev"])
    assert set(res.elements) == set(d["elements"]) == {"Ce", "Ti"}, res.elements
    assert "found on a shoulder" in res.reasons["Ti"]
    assert all(r.startswith(("chosen", "rejected")) for r in res.reasons.values())
