"""The checks an element passes before identification chooses it (core/_eds_checks.py)."""

from napari_cryomat.core import eds
from napari_cryomat.core.synthetic.eds import random_eds_spectrum


def test_line_beside_a_bigger_familys_line_is_found_by_its_own_share():
    # new-generator seed 9020: Pb and S (S Kα drawn at 51σ). S Kα (2.31 keV) lies 38 eV, 0.4 FWHM, below Pb Mα: Pb's
    # free M amplitude takes the merged peak, and with Pb alone fitted S Kα leaves 24σ but only 38 % of the peak (the
    # share asked of a residual is 40 %). In the joint fit S holds 57 % of it: its own share decides. The code before
    # rejected S, and Pb alone then dragged the calibration to the −40 eV edge of its range (found: Pb)
    d = random_eds_spectrum(9020)
    res = eds.identify_elements(d["spectrum"], energy=d["energy"], fwhm_mn_ka=d["fwhm_mn_ka"],
                                beam_energy_kev=d["beam_energy_kev"])
    assert set(d["elements"]) == {"Pb", "S"}
    assert set(res.elements) == {"Pb", "S"}, res.elements
    assert res.reasons["S"].startswith("chosen")
    assert -30.0 < res.calibration_shift < -5.0  # not at the −40 eV edge
