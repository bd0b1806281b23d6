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


def test_element_held_by_lines_no_rival_shares_is_not_refitted(monkeypatch):
    # Ge (170σ) beside Ti: beside each of Ge's 13 rivals (Mg, Ga, As, Gd, Hg, ... on Ge Lα 1.19 or Kα 9.89 keV) the Ge
    # lines above 1.5 keV that neither the rival nor Ti comes within 2 FWHM of hold 6-29σ, so no rival can make Ge
    # redundant and none is fitted in its place (the code before fitted every rival of every chosen element); Ti, whose
    # Kα shares the lines of Ba, Xe, Sc, ..., still has its rivals fitted; the elements found are the same
    import napari_cryomat.core._eds_identify as engine

    fitted = []
    real = engine.replace_stand_ins

    def counting(problem, fit_set, *args, **kwargs):
        def counted(problem_, elements, *a, **k):
            fitted.append(list(elements))
            return fit_set(problem_, elements, *a, **k)
        return real(problem, counted, *args, **kwargs)

    monkeypatch.setattr(engine, "replace_stand_ins", counting)
    d = random_eds_spectrum(17001)
    res = eds.identify_elements(d["spectrum"], energy=d["energy"], fwhm_mn_ka=d["fwhm_mn_ka"],
                                beam_energy_kev=d["beam_energy_kev"])
    assert set(res.elements) == {"Ge", "Ti"}, res.elements
    assert fitted and all("Ge" in elements for elements in fitted), fitted
