"""Physics checks for napari_cryomat.core.eds against xraylib, exSpy's formulas, exSpy's real
spectra (shipped in the exspy wheel) and randomised synthetic spectra."""

from pathlib import Path

import numpy as np
import pytest
import xraylib

from napari_cryomat.core import eds
from napari_cryomat.core import spectral as sp
from napari_cryomat.core._progress import Cancelled
from napari_cryomat.core.synthetic import spectral as syn
from napari_cryomat.core.synthetic.eds import random_eds_spectrum


@pytest.fixture(scope="module")
def si_data():
    return syn.eds_spectrum_image()


def _exspy_spectrum(name):
    """(counts, energy eV, FWHM at Mn Kα, beam keV) of an exSpy example spectrum, or skip."""
    h5py = pytest.importorskip("h5py")
    try:
        import exspy
    except ImportError:
        pytest.skip("exspy not installed")
    path = Path(exspy.__file__).parent / "data" / name
    if not path.exists():
        pytest.skip(f"{name} not in this exspy")
    with h5py.File(path) as h:
        found = {}

        def keep(name, obj):  # returns None: visititems stops at the first non-None answer
            if name.count("/") == 2:
                found[name.rsplit("/", 1)[-1]] = obj

        h.visititems(keep)
        axis = found["axis-0"].attrs
        counts = found["data"][()].astype(np.float64)
        energy = 1000.0 * (axis["offset"] + axis["scale"] * np.arange(counts.size))
    beam, fwhm = (200.0, 133.3) if "TEM" in name else (10.0, 130.0)
    return counts, energy, fwhm, beam


# -- lines ----------------------------------------------------------------------------------


def test_line_families_are_complete_and_from_xraylib():
    pt = {ln.name: ln for ln in eds.eds_lines("Pt")}
    for name in ("La", "Lb1", "Lb2", "Lg1", "Ll", "Ln", "Ma", "Mb", "Mg", "Mz", "M2N4"):
        assert name in pt, name
    assert pt["Lg1"].energy == pytest.approx(1000 * xraylib.LineEnergy(78, xraylib.L2N4_LINE))
    assert pt["M2N4"].energy == pytest.approx(1000 * xraylib.LineEnergy(78, xraylib.M2N4_LINE))
    # Kα is the strength-weighted mean of Kα1 and Kα2
    fe = {ln.name: ln for ln in eds.eds_lines("Fe")}
    ka1, ka2 = (1000 * xraylib.LineEnergy(26, c) for c in (xraylib.KL3_LINE, xraylib.KL2_LINE))
    assert ka2 < fe["Ka"].energy < ka1 and fe["Ka"].energy == pytest.approx((2 * ka1 + ka2) / 3, abs=1.0)
    # weights relative to the family's principal line; Kβ/Kα of 3d metals ~0.13
    assert fe["Ka"].weight == 1.0 and pt["La"].weight == 1.0 and pt["Ma"].weight == 1.0
    assert 0.1 < fe["Kb"].weight < 0.17
    assert 0.3 < pt["Lb1"].weight < 0.7 and 0.05 < pt["Lg1"].weight < 0.2
    # a 10 kV beam does not ionise Zr K (18 keV)
    assert not [ln for ln in eds.eds_lines("Zr", beam_energy_kev=10.0) if ln.family == "K"]


def test_detector_resolution_scaling():
    e_mn = 1000 * xraylib.LineEnergy(25, xraylib.KA_LINE)
    assert eds.eds_fwhm(e_mn, fwhm_mn_ka=130) == pytest.approx(130)
    assert eds.eds_fwhm(277, fwhm_mn_ka=130) < 70 < eds.eds_fwhm(9442, fwhm_mn_ka=130) - 80
    w = eds.eds_windows(6400, fwhm_mn_ka=130)
    assert w["integration"][1] - w["integration"][0] == pytest.approx(2 * eds.eds_fwhm(6400))
    assert w["background_low"][1] < w["integration"][0] < w["integration"][1] < w["background_high"][0]


# -- windows and net counts -----------------------------------------------------------------


def test_background_is_exspy_width_weighted_mean():
    """Asymmetric windows on a sloped continuum: exSpy's width-weighted mean, not interpolation."""
    rng = np.random.default_rng(4)
    energy = sp.energy_axis(offset=0.0, scale=10.0, size=1000)
    spec = rng.poisson(400 * np.exp(-energy / 5000) + 3e4 * np.exp(-0.5 * ((energy - 6400) / 60) ** 2)).astype(float)
    w = {"integration": (6280.0, 6520.0), "background_low": (5900.0, 6100.0), "background_high": (6700.0, 6750.0)}
    net = eds.eds_net_map(spec[None, None], energy=energy, windows=w)[0, 0]
    i, lo, hi = (sp.window_slice(energy, w[k]) for k in ("integration", "background_low", "background_high"))
    n_i, n_b = i.stop - i.start, (lo.stop - lo.start) + (hi.stop - hi.start)
    expected = spec[i].sum() - (spec[lo].sum() + spec[hi].sum()) * n_i / n_b
    assert net == pytest.approx(expected, rel=1e-6)
    exspy = pytest.importorskip("exspy")
    s = exspy.signals.EDSTEMSpectrum(spec)
    ax = s.axes_manager.signal_axes[0]
    ax.scale, ax.offset, ax.units = 0.01, 0.0, "keV"
    s.set_microscope_parameters(beam_energy=200)
    s.add_lines(["Fe_Ka"])
    kev = [[v / 1000 for v in w["background_low"] + w["background_high"]]]
    ref = s.get_lines_intensity(integration_windows=[[6.28, 6.52]], background_windows=kev)[0].data
    assert net == pytest.approx(float(np.ravel(ref)[0]), rel=1e-5)


def test_clean_windows_avoid_other_lines_and_say_when_none_is_clean():
    energy = sp.energy_axis(offset=0.0, scale=10.0, size=2048)
    plain = eds.eds_windows(eds.choose_line("Mn", energy=energy).energy)
    w = eds.clean_windows("Mn", energy=energy, elements="Mn, Fe, Cr")
    for key in ("background_low", "background_high"):
        if key not in w:
            continue
        for el in ("Fe", "Cr"):
            for ln in eds.eds_lines(el):
                if ln.weight >= 0.05:
                    gap = eds.eds_fwhm(ln.energy)
                    assert not (w[key][0] - gap < ln.energy < w[key][1] + gap), (key, ln.label)
    assert w != plain  # Cr Kβ (5.95 keV) sat in the default high window, Fe Kα near the low one
    with pytest.raises(ValueError, match=r"No clean background window for Ti Ka .*Ti's windows by hand"):
        eds.clean_windows("Ti", energy=energy, elements="Ba, V, Ti, Sc", max_offset=3)


def test_eds_maps_net_counts_and_out_of_core(si_data, tmp_path):
    d = si_data
    maps = eds.eds_maps(d["si"], energy=d["energy"], elements="Fe, Pt, Cu", fwhm_mn_ka=d["fwhm_mn_ka"])
    assert maps["Fe"].feature == "Fe Ka" and maps["Pt"].feature == "Pt La" and maps["Cu"].feature == "Cu Ka"
    for el in ("Fe", "Pt"):
        truth = d["net_counts"][el]
        assert np.corrcoef(truth.ravel(), maps[el].data.ravel())[0, 1] > 0.9
        assert maps[el].data.sum() / truth.sum() == pytest.approx(0.98, abs=0.05)  # ±1 FWHM: 98 % of a line
    assert maps["Cu"].data.mean() == pytest.approx(d["net_counts"]["Cu"].mean(), rel=0.1)
    # a memory map read in bands of a few rows, and a dask array, give the same maps
    path = tmp_path / "si.f32"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=d["si"].shape)
    mm[:] = d["si"]
    mm.flush()
    lazy = np.memmap(path, dtype=np.float32, mode="r", shape=d["si"].shape)
    seen = []
    out = eds.eds_maps(lazy, energy=d["energy"], elements="Fe, Pt, Cu", fwhm_mn_ka=d["fwhm_mn_ka"],
                       progress=seen.append)
    da = pytest.importorskip("dask.array")
    out_dask = eds.eds_maps(da.from_array(d["si"], chunks=(8, 64, -1)), energy=d["energy"], elements="Fe, Pt, Cu",
                            fwhm_mn_ka=d["fwhm_mn_ka"])
    for el in maps:
        np.testing.assert_array_equal(out[el].data, maps[el].data)
        np.testing.assert_array_equal(out_dask[el].data, maps[el].data)
    assert seen[-1] == 1.0

    def cancel(f):
        if f > 0:
            raise Cancelled()

    with pytest.raises(Cancelled):
        eds.eds_maps(lazy, energy=d["energy"], elements="Fe", progress=cancel)


# -- identification -------------------------------------------------------------------------


def test_identify_fept_real_spectrum():
    counts, energy, fwhm, beam = _exspy_spectrum("EDS_TEM_FePt_nanoparticles.hspy")
    res = eds.identify_elements(counts, energy=energy, fwhm_mn_ka=fwhm, beam_energy_kev=beam)
    assert set(res.elements) == {"Fe", "Pt", "C", "Cu"}  # particles, carbon film, copper grid
    # the 1.74 keV peak (1.1 % of the counts above the Si K edge) is the detector's Si internal fluorescence, which
    # Velox and DM users do not expect listed: tried where the fit falls short, it is rejected as a detector artefact
    assert "detector artefact" in res.reasons["Si"], res.reasons.get("Si")
    for el in ("Rh", "Th", "Zr"):  # Pt M2N4, Pt Lγ1, Pt Mα
        assert el not in res.elements
        assert res.reasons.get(el, "rejected").startswith("rejected")
    assert res.reasons["Pt"].startswith("chosen")
    labels = {round(e / 100): lab for e, _c, lab in res.peaks}
    assert "Pt M2N4" in labels[27] and "Pt Lg1" in labels[129] and labels[3] == ["C Ka"]


def test_weak_secondary_line_of_a_chosen_element_is_freed_in_the_shoulder_test():
    """Pt Lη (9.975 keV) has 0.997 % of Pt Lα's weight by xraylib, under the 1 % that a family's column keeps, so Pt's
    L column leaves its ~150 counts to the residual, where Hg Lα (9.989 keV) was chosen from a shoulder at 7.2σ when
    FePt is identified 3 eV under its file's FWHM. The shoulder test frees every secondary line of the chosen
    elements near the candidate, also those too weak for the column: Hg then adds under 5σ."""
    counts, energy, fwhm, beam = _exspy_spectrum("EDS_TEM_FePt_nanoparticles.hspy")
    res = eds.identify_elements(counts, energy=energy, fwhm_mn_ka=fwhm - 3.0, beam_energy_kev=beam)
    assert "Hg" not in res.elements, res.reasons["Hg"]
    assert res.reasons["Hg"].startswith("rejected") and "Pt Ln" in res.reasons["Hg"], res.reasons["Hg"]

def test_identify_reports_progress_as_it_selects_and_can_be_cancelled(si_data):
    """Identify on a 2048-channel Bruker map ran 15 s without a progress report (the dock's bar stood at 50 %)."""
    spectrum = si_data["si"].sum(axis=(0, 1), dtype=np.float64)
    energy = sp.energy_axis(offset=si_data["offset"], scale=si_data["scale"], size=spectrum.size)
    seen = []
    res = eds.identify_elements(spectrum, energy=energy, fwhm_mn_ka=si_data["fwhm_mn_ka"], progress=seen.append)
    assert set(res.elements) == {"Fe", "Pt", "C", "Cu"}  # the same answer as without a callback
    assert len(seen) > 100 and seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:]))
    assert len({round(f, 2) for f in seen}) > 30  # fine steps, not a jump at the end
    stops = []

    def cancel_halfway(fraction):
        stops.append(fraction)
        if fraction >= 0.5:
            raise Cancelled

    with pytest.raises(Cancelled):
        eds.identify_elements(spectrum, energy=energy, fwhm_mn_ka=si_data["fwhm_mn_ka"], progress=cancel_halfway)
    assert 0.5 <= stops[-1] < 0.6


def test_identify_tm002_real_spectrum():
    counts, energy, fwhm, beam = _exspy_spectrum("EDS_SEM_TM002.hspy")
    res = eds.identify_elements(counts, energy=energy, fwhm_mn_ka=fwhm, beam_energy_kev=beam)
    assert {"Al", "C", "Cu", "Mn", "Zr"} <= set(res.elements)
    # Br Lβ1 (1.52 keV) on the high side of the Al Kα peak, whose centre its Lα shares, must not take a share of it
    # (session 17: a version of peak_check that judged any line by its own share of a merged peak let Br in, then Yb)
    assert not {"Br", "Yb"} & set(res.elements), res.elements
    peak = [lab for e, _c, lab in res.peaks if abs(e - 560) < 20][0]
    assert "Mn Ll" in peak  # the 0.56 keV peak is Mn Ll/Lη, not an element of its own
    assert 560.0 not in res.unexplained
    # the 2.97 keV peak: Ar Kα (sputtered coatings hold Ar), not Ag Lα (Oxford's label: Ag Lβ1 would show at
    # 3.15 keV) and not an Al + Al sum peak (the pile-up column would also put Cu Lα + Al Kα at 2.42 keV)
    both = eds.identify_elements(counts, energy=energy, fwhm_mn_ka=fwhm, beam_energy_kev=beam,
                                 candidates=["C", "O", "Al", "Mn", "Cu", "Zr", "Ar", "Ag"])
    assert "Ar" in both.elements and "Ag" not in both.elements
    assert both.reasons["Ag"].startswith("rejected")


def test_al_against_br_l_is_decided_by_the_lines_they_do_not_share(monkeypatch):
    # TM002 (10 kV): Al Kα 1.487 keV and Br Lα 1.481 keV hold the same peak; at the calibrated width the forward step
    # prefers Al by 55 in a χ² drop of 47 000, and with the width 3 % narrower (1.03, a parabola through the width
    # grid's minimum) it prefers Br, and Al then comes back beside it (Br false). With each one's width free, Br's
    # lines apart from Al's (Ll 1.29, Lη 1.34 keV: ~4 % and 2 % of Lα, thousands of counts) find no peak: Al is kept
    import napari_cryomat.core._eds_identify as engine

    def narrower(problem, chosen, shift):
        problem.width_scale = 1.03
        return problem.width_scale

    swaps = []
    real = engine.contest

    def recorded(problem, fit_set, chosen, best, trials, shift, min_snr):
        winner, note = real(problem, fit_set, chosen, best, trials, shift, min_snr)
        swaps.append((best, winner, note))
        return winner, note

    monkeypatch.setattr(engine, "best_width", narrower)
    monkeypatch.setattr(engine, "contest", recorded)
    counts, energy, fwhm, beam = _exspy_spectrum("EDS_SEM_TM002.hspy")
    res = eds.identify_elements(counts, energy=energy, fwhm_mn_ka=fwhm, beam_energy_kev=beam)
    assert {"Al", "C", "Cu", "Mn", "Zr"} <= set(res.elements) and "Br" not in res.elements, res.elements
    taken = [note for best, winner, note in swaps if (best, winner) == ("Br", "Al")]
    assert taken and "Br Ll (1.29 keV)" in taken[0], swaps
    assert np.isfinite(res.significance["Al"])


def test_identify_randomised_spectra():
    """Six seeded random samples (1–5 of 44 elements, half built around an overlap pair such as Mo L / S K,
    1e3–1e6 counts, 15–200 kV, unknown offset, resolution, tails): at most one false element and two
    missed elements with a line >= 20σ in all (the benchmark runs two sets of 30 and prints the full
    counts against the 5σ target, which is not met: ~3 false and ~15 % of the >= 5σ elements missed)."""
    false = missed = n_strong = 0
    for seed in range(6):
        d = random_eds_spectrum(seed)
        res = eds.identify_elements(d["spectrum"], energy=d["energy"], fwhm_mn_ka=d["fwhm_mn_ka"],
                                    beam_energy_kev=d["beam_energy_kev"])
        found = set(res.elements)
        strong = {el for el, s in d["significance"].items() if s >= 20}
        false += len(found - set(d["elements"]))
        missed += len(strong - found)
        n_strong += len(strong)
        assert all(r.startswith(("chosen", "rejected")) for r in res.reasons.values())
    assert n_strong >= 10
    assert false <= 1 and missed <= 2, (false, missed)


def test_identify_film_region_without_particles(si_data):
    off = ~si_data["mask"]
    res = eds.identify_elements(si_data["si"][off].sum(axis=0), energy=si_data["energy"])
    assert "Fe" not in res.elements and "Pt" not in res.elements and "Cu" in res.elements


def test_snip_background_follows_continuum():
    e = np.arange(0.0, 10000.0, 10.0)
    cont = 200.0 * np.exp(-e / 4000.0)
    peak = 5000.0 * np.exp(-0.5 * ((e - 6400.0) / 60.0) ** 2)
    bg = eds.snip_background(cont + peak, width=int(2 * 150 / 10))
    far = np.abs(e - 6400.0) > 400
    np.testing.assert_allclose(bg[far][20:-20], cont[far][20:-20], rtol=0.03)


# -- quantification -------------------------------------------------------------------------


def test_cliff_lorimer_atomic_percent(si_data):
    d = si_data
    maps = eds.eds_maps(d["si"], energy=d["energy"], elements="Fe, Pt")
    q = eds.cliff_lorimer({el: m.data for el, m in maps.items()}, k_factors=d["k_factors"])
    ok = np.isfinite(q["Fe"])
    np.testing.assert_allclose((q["Fe"] + q["Pt"])[ok], 100, atol=1e-3)
    exact = eds.cliff_lorimer({el: d["net_counts"][el] for el in ("Fe", "Pt")}, k_factors=d["k_factors"])
    np.testing.assert_allclose(exact["Fe"][d["mask"]], d["atomic_percent"]["Fe"][d["mask"]], atol=1e-3)


def test_quantify_matches_exspy_formulas():
    rng = np.random.default_rng(1)
    inten = {"Fe": rng.uniform(100, 1000, (4, 5)), "Pt": rng.uniform(100, 1000, (4, 5)),
             "Cu": rng.uniform(50, 300, (4, 5))}
    k = {"Fe": 1.0, "Pt": 1.7, "Cu": 1.2}
    q = eds.quantify(inten, k_factors=k)
    assert q.factor_source == "user" and not q.notes
    total = sum(k[el] * inten[el] for el in inten)
    np.testing.assert_allclose(q.weight_percent["Fe"], 100 * k["Fe"] * inten["Fe"] / total, rtol=1e-5)
    utils = pytest.importorskip("exspy._misc.eds.utils")
    arr = np.stack([inten[el] for el in inten])
    ref = utils.quantification_cliff_lorimer(arr, [k[el] for el in inten])
    np.testing.assert_allclose(q.weight_percent["Pt"], 100 * ref[1], rtol=1e-5)
    zeta = {"Fe": 500.0, "Pt": 900.0, "Cu": 600.0}
    qz = eds.quantify(inten, method="zeta", zeta_factors=zeta, dose=1e8, take_off_angle=90.0, max_iter=0)
    comp, mass = utils.quantification_zeta_factor(arr, [zeta[el] for el in inten], 1e8)
    np.testing.assert_allclose(qz.weight_percent["Cu"], 100 * comp[2], rtol=1e-5)
    np.testing.assert_allclose(qz.mass_thickness, mass, rtol=1e-6)


def test_theoretical_factors_are_marked_and_sensible():
    q = eds.quantify({"Fe": np.array([1000.0]), "Ni": np.array([1000.0])})
    assert q.factor_source == "theoretical" and "theoretical" in q.notes[0]
    k = eds.theoretical_k_factors("Fe, Ni, Si, Pt_La")
    assert k["Fe"] == pytest.approx(1.0)
    assert 0.9 < k["Ni"] < 1.3 and 0.4 < k["Si"] < 1.0
    # exSpy's FePt example (Super-X detector on this very spectrum) uses k(Pt Lα)/k(Fe Kα) = 5.0756/1.4502
    assert k["Pt_La"] == pytest.approx(5.075602 / 1.450226, rel=0.05)
    z = eds.theoretical_zeta_factors("Fe", solid_angle_sr=0.7)["Fe"]
    assert 50 < z < 500  # kg/m² (exSpy's unit); measured Super-X values are a few hundred


def test_detector_efficiency_raises_soft_line_factors():
    """The window and dead layer absorb soft X-rays: a light element's k-factor rises (fewer counts per
    atom), most behind beryllium; hard lines (Fe, Cu Kα) are recorded fully by 450 µm of Si, and a
    thin crystal loses hard lines."""
    bare = eds.theoretical_k_factors("Fe, Cu, O, Si", detector="windowless")
    poly = eds.theoretical_k_factors("Fe, Cu, O, Si", detector="polymer")
    be = eds.theoretical_k_factors("Fe, Cu, O, Si", detector="beryllium")
    assert bare["O"] < poly["O"] < be["O"] and bare["Si"] < poly["Si"] < be["Si"]
    assert poly["Cu"] == pytest.approx(bare["Cu"], rel=0.01)
    # O Kα through 0.3 µm polyimide + 30 nm Al + 0.1 µm Si: Beer–Lambert with xraylib's μ/ρ
    e = 1000 * xraylib.LineEnergy(8, xraylib.KA_LINE)
    t = np.exp(-(xraylib.CS_Total_CP("C22H10N2O5", e / 1000) * 1.42 * 0.3e-4 + xraylib.CS_Total(13, e / 1000) * 2.70
                 * 0.03e-4 + xraylib.CS_Total(14, e / 1000) * 2.33 * 0.1e-4))
    assert poly["O"] / bare["O"] == pytest.approx(1 / t * np.exp(-xraylib.CS_Total(14, e / 1000) * 2.33 * 0.1e-4),
                                                  rel=0.01)
    thin = eds.theoretical_zeta_factors("Mo", detector="windowless", si_thickness_um=50.0)["Mo"]
    assert thin > 2 * eds.theoretical_zeta_factors("Mo", detector="windowless")["Mo"]  # Mo Kα 17.4 keV
    with pytest.raises(ValueError, match="detector must be one of"):
        eds.theoretical_k_factors("Fe", detector="Be")


def test_absorption_correction_follows_formula_and_thickness():
    wt = {"Al": np.array([0.5]), "Fe": np.array([0.5])}
    thin = eds.absorption_correction(wt, mass_thickness=1e-6, take_off_angle=22.0)
    thick = eds.absorption_correction(wt, mass_thickness=0.5, take_off_angle=22.0)
    assert thin["Al"][0] == pytest.approx(1.0, abs=2e-3)
    assert thick["Al"][0] > thick["Fe"][0] > 1.0  # soft Al Kα absorbed more than Fe Kα
    mu = 0.1 * sum(0.5 * xraylib.CS_Total(z, eds.choose_line("Al", energy=np.arange(0.0, 5000.0, 10.0)).energy / 1000) for z in (13, 26))
    chi = mu / np.sin(np.radians(22.0)) * 0.5
    assert thick["Al"][0] == pytest.approx(chi / (1 - np.exp(-chi)), rel=1e-6)
    # Cliff–Lorimer with a thickness raises the soft line's share, and converges
    q0 = eds.quantify({"Al": np.array([1000.0]), "Fe": np.array([1000.0])}, k_factors={"Al": 1.0, "Fe": 1.0})
    q1 = eds.quantify({"Al": np.array([1000.0]), "Fe": np.array([1000.0])}, k_factors={"Al": 1.0, "Fe": 1.0},
                      thickness=2000.0)
    assert q1.weight_percent["Al"][0] > q0.weight_percent["Al"][0] and q1.iterations < 30


def test_absorption_correction_close_to_exspy():
    """Same composition, mass thickness and take-off angle as exSpy's get_abs_corr_zeta (its own
    μ/ρ tables, Chantler): within 1 % for a 200 nm FePt film."""
    material = pytest.importorskip("exspy._misc.material")
    ours = eds.absorption_correction({"Fe": np.array([0.5]), "Pt": np.array([0.5])}, lines={"Fe": "Ka", "Pt": "La"},
                                     mass_thickness=2e-3, take_off_angle=22.0)
    for el, line in (("Fe", "Fe_Ka"), ("Pt", "Pt_La")):
        mac = float(np.ravel(material.mass_absorption_mixture(weight_percent=[50.0, 50.0], elements=["Fe", "Pt"],
                                                              energies=line))[0])
        chi = mac * 0.1 * 2e-3 / np.sin(np.radians(22.0))
        assert ours[el][0] == pytest.approx(chi / (1 - np.exp(-chi)), rel=0.01)


# -- bad input ------------------------------------------------------------------------------


def test_bad_input_messages(si_data):
    si, e = si_data["si"], si_data["energy"]
    with pytest.raises(ValueError, match=r"Pt has no X-ray line in the recorded range.*Remove Pt"):
        eds.eds_maps(si[..., :80], energy=e[:80], elements="Fe, Pt")
    with pytest.raises(ValueError, match="k-factor for Pt"):
        eds.cliff_lorimer({"Fe": np.ones(3), "Pt": np.ones(3)}, k_factors={"Fe": 1})
    with pytest.raises(ValueError, match="k-factor for Pt too"):
        eds.quantify({"Fe": np.ones(3), "Pt": np.ones(3)}, k_factors={"Fe": 1})
    with pytest.raises(ValueError, match=r"Fe background high window .* outside the recorded range"):
        eds.eds_maps(si, energy=e, elements="Fe", windows={"Fe": {"integration": (6300, 6500),
                                                                  "background_high": (25000, 26000)}})
    with pytest.raises(ValueError, match="dose"):
        eds.quantify({"Fe": np.ones(3), "Pt": np.ones(3)}, method="zeta")
    with pytest.raises(ValueError, match="Pt has no line 'Kz'"):
        eds.quantify({"Fe": np.ones(3), "Pt": np.ones(3)}, lines={"Pt": "Kz"})
