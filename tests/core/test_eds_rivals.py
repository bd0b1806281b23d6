"""A stand-in chosen by the main selection is replaced by the element whose lines it holds (core/_eds_rivals.py)."""

from napari_cryomat.core import eds
from napari_cryomat.core.synthetic.eds import random_eds_spectrum


def test_stand_in_is_replaced_by_the_owner_of_its_lines():
    # Y (87σ), Nb (143σ) and Pt (113σ) crowd 1.9-2.3 keV; forward selection took Zr (Lα 2.04 keV) early and Y was
    # never chosen (the code before named Sr, Zr, Pt, Yb, Cl); with everything fitted, Y in Zr's place fits better by
    # ~60σ (Y Lα 1.92, Lβ1 2.00 keV: the lines the two do not share) and Zr adds nothing beside it, so Y replaces it
    d = random_eds_spectrum(14024)
    res = eds.identify_elements(d["spectrum"], energy=d["energy"], fwhm_mn_ka=d["fwhm_mn_ka"],
                                beam_energy_kev=d["beam_energy_kev"])
    assert {"Y", "Pt"} <= set(d["elements"]) and "Zr" not in d["elements"]
    assert {"Y", "Pt"} <= set(res.elements) and "Zr" not in res.elements, res.elements
    assert res.reasons["Zr"].startswith("rejected: a stand-in for Y")
    assert "in place of Zr" in res.reasons["Y"]
