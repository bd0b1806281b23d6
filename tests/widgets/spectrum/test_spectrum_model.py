"""The Spectrum imaging model and its worker functions, without Qt: a napari ViewerModel with the
samples, requests built as the views build them, jobs run here instead of in a worker."""

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_cryomat.sample_data.spectral import eds_sample, eels_sample
from napari_cryomat.widgets.spectrum import SpectrumModel, parse_k_factors, table_position
from napari_cryomat.widgets.spectrum._exports import (
    rgb_composite,
    write_map_tiffs,
    write_profile,
    write_rgb,
    write_spectrum,
)
from napari_cryomat.widgets.spectrum._jobs import (
    compute_denoised,
    compute_maps,
    compute_pca,
    compute_ratio,
    compute_thickness,
)
from napari_cryomat.widgets.spectrum._sampling import RoiRegion, SpectrumSampler, compute_profile, region_mask
from napari_cryomat.widgets.spectrum.eds_jobs import compute_eds_identification


def _shown(viewer, name: str) -> bool:
    """A helper layer is shown: present and visible (hidden, not removed, while its tool is behind)."""
    return name in viewer.layers and bool(viewer.layers[name].visible)

def _viewer(sample):
    viewer = ViewerModel()
    for data, kwargs, kind in sample():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    return viewer


@pytest.fixture(scope="module")
def eels():
    viewer = _viewer(eels_sample)
    model = SpectrumModel(viewer)
    model.set_si_layer(viewer.layers["EELS SI (SEI)"])
    model.reference = viewer.layers["HAADF (SEI)"]
    return viewer, model


def _si(viewer, name):
    return np.moveaxis(viewer.layers[name].data, 0, -1)


def test_eels_windows_maps_ratio_and_profile(eels):
    viewer, model = eels
    assert model.mode == "EELS"
    assert model.set_elements("Li, C, N, O") == []
    assert list(model.windows) == ["Li", "C", "N", "O"]
    labels = " ".join(label for label, _e, _rgb in model.markers())
    assert "C K" in labels and "O K" in labels
    moved = []
    model.window_moved.connect(moved.append)
    model.set_window("C", "background", (240.0, 278.0))
    assert moved == ["C"] and model.windows["C"]["background"] == pytest.approx((240.0, 278.0))

    request = model.maps_request()
    assert request.windows["C"]["background"] == pytest.approx((240.0, 278.0))
    result = compute_maps(request)
    model.show_maps(result)
    px = viewer.layers["EELS SI (SEI)"].scale[-1]
    truth = viewer.layers["EELS SI (SEI)"].metadata["truth"]
    for el in ("Li", "C", "N", "O"):
        layer = viewer.layers[f"{el} map"]
        assert layer.blending == "additive" and tuple(layer.scale) == pytest.approx((px, px))
        assert np.corrcoef(truth["edge_amplitude"][el].ravel(), layer.data.ravel())[0, 1] > 0.9
    assert viewer.layers["C map"].metadata["spectrum_map"]["windows"]["background"] == pytest.approx((240.0, 278.0))
    assert len({viewer.layers[f"{el} map"].colormap.name for el in ("Li", "C", "N", "O")}) == 4
    names = [layer.name for layer in viewer.layers]
    assert names.index("HAADF (SEI)") < names.index("Li map")
    assert viewer.layers["HAADF (SEI)"].opacity <= 0.5
    # a second run updates the layers in place: no "C map [1]"
    model.show_maps(result)
    assert [layer.name for layer in viewer.layers] == names

    model.show_ratio(compute_ratio(model.ratio_request("O", "C")))
    assert "O/C ratio" in viewer.layers
    with pytest.raises(ValueError, match="two different"):
        model.ratio_request("O", "O")

    line = model.overlays.start_line()
    line.add_lines(np.array([[32, 2], [32, 93]], float))
    profile = compute_profile(model.profile_request())
    columns = profile.columns
    assert {"distance_A", "Li", "C", "N", "O"} <= set(columns)
    assert columns["distance_A"][-1] == pytest.approx(91 * px, rel=0.02)
    assert columns["Li"][:10].mean() > columns["Li"][-10:].mean()  # Li at the electrode side
    assert columns["C"][-10:].mean() > columns["C"][:10].mean()
    # counting errors of the band mean: positive, and far below the signal where carbon is
    assert np.all(columns["C_err"] > 0) and columns["C_err"][-10:].mean() < 0.1 * columns["C"][-10:].mean()
    # a band four times wider (in Å) averages four times the pixels: errors about half
    model.profile_width = 4 * 3 * px
    wide = compute_profile(model.profile_request())
    assert wide.request.width == 12
    narrow = model.profile_width = 3 * px
    assert compute_profile(model.profile_request()).request.width == 3 and narrow == 3 * px
    ratio = np.median(wide.columns["C_err"]) / np.median(compute_profile(model.profile_request()).columns["C_err"])
    assert ratio == pytest.approx(0.5, abs=0.12)
    model.overlays.close()
    assert not _shown(viewer, "composition line")


def test_spectrum_under_cursor_and_roi_sums(eels):
    viewer, model = eels
    si = _si(viewer, "EELS SI (SEI)")
    px = viewer.layers["EELS SI (SEI)"].scale[-1]
    assert model.pixel_at((viewer.dims.point[0], 10 * px, 20 * px)) == (10, 20)
    assert model.pixel_at((viewer.dims.point[0], -5 * px, 20 * px)) is None
    sampler = SpectrumSampler()
    result = sampler(model.spectrum_request((10, 20)))
    np.testing.assert_array_equal(result.pixel_spectrum, si[10, 20])
    assert result.roi_spectrum is None

    roi = model.overlays.start_roi()
    assert roi.mode == "add_rectangle" and viewer.layers.selection.active is roi
    roi.add_rectangles(np.array([[4, 4], [12, 20]], float))
    model.set_elements("C, O")
    request = model.spectrum_request((30, 70), "C")
    result = sampler(request)
    mask = roi.to_masks(mask_shape=si.shape[:2])[0].astype(bool)  # napari's own rasterisation
    np.testing.assert_allclose(result.roi_spectrum, si[mask].sum(axis=0), rtol=1e-5)
    assert result.roi_pixels == mask.sum()
    energy, fit = result.fit  # EELS: power law of the ROI spectrum in C's background window
    assert energy[0] == pytest.approx(model.windows["C"]["background"][0], abs=0.5) and np.all(fit > 0)
    model.set_spectra(request, result)
    assert model.last_pixel == (30, 70) and model.roi_spectrum is result.roi_spectrum
    # the ROI sum is kept while only the cursor moves
    again = sampler(model.spectrum_request((31, 70), "C"))
    assert again.roi_spectrum is result.roi_spectrum

    # an ellipse and an ROI outside the image
    ellipse = RoiRegion("ellipse", ((10.0, 10.0), (10.0, 30.0), (30.0, 30.0), (30.0, 10.0)))
    area = region_mask(ellipse, si.shape[:2]).sum()
    assert area == pytest.approx(np.pi * 10 * 10, rel=0.05)
    roi.add_rectangles(np.array([[-40, -40], [-20, -20]], float))
    outside = sampler(model.spectrum_request((30, 70)))
    assert outside.roi_spectrum is None and outside.roi_pixels == 0
    model.overlays.close()


def test_helper_layers_follow_the_tool(eels):
    viewer, model = eels
    roi = model.overlays.start_roi()
    roi.add_rectangles(np.array([[4, 4], [12, 20]], float))
    model.overlays.set_in_front(False)
    assert not _shown(viewer, "spectrum ROI")
    model.overlays.set_in_front(True)
    assert len(viewer.layers["spectrum ROI"].data) == 1  # back where the user left it
    # deleted by the user: forgotten, not brought back
    shown = viewer.layers["spectrum ROI"]
    viewer.layers.remove(shown)
    model.layer_removed(shown)  # what the widget does on viewer.layers.events.removed
    model.overlays.set_in_front(False)
    model.overlays.set_in_front(True)
    assert not _shown(viewer, "spectrum ROI")
    assert model.overlays.roi_region(model.source()) is None


def test_thickness_pca_and_denoised_layer_keep_their_run(eels):
    viewer, model = eels
    low = viewer.layers["EELS low-loss SI (SEI)"]
    model.set_si_layer(low)
    result = compute_thickness(model.source())
    model.show_thickness(result)
    t = viewer.layers["t/λ (EELS low-loss SI (SEI))"].data
    np.testing.assert_allclose(t, low.metadata["truth"]["t_over_lambda"], atol=0.05)

    model.set_si_layer(viewer.layers["EELS SI (SEI)"])
    run = compute_pca(model.pca_request())
    model.set_pca(run)
    assert 2 <= run.suggested <= 15
    model.set_si_layer(low)  # the user picks another SI before adding the denoised one
    request = model.denoise_request(run.suggested)
    model.add_denoised(compute_denoised(request))
    layer = viewer.layers[f"EELS SI (SEI) PCA({run.suggested})"]
    assert layer.metadata["spectrum_image"]["energy_axis"]["scale"] == pytest.approx(0.5)
    assert layer.metadata["spectrum_image"]["energy_axis"]["offset"] == pytest.approx(run.source.energy[0])
    assert layer.data.shape == viewer.layers["EELS SI (SEI)"].data.shape and not layer.visible
    model.set_si_layer(viewer.layers["EELS SI (SEI)"])


def test_denoised_si_lies_where_its_source_lies():
    """An SI whose first pixel is not at the origin (a Velox or Gatan file at its stage offset): the PCA-denoised
    SI computed from it is drawn over it and its HAADF, not beside them."""
    viewer = _viewer(eels_sample)
    si = viewer.layers["EELS SI (SEI)"]
    si.translate = (si.translate[0], 30.0, -12.0)
    model = SpectrumModel(viewer)
    model.set_si_layer(si)
    run = compute_pca(model.pca_request())
    model.set_pca(run)
    model.add_denoised(compute_denoised(model.denoise_request(run.suggested)))
    denoised = viewer.layers[f"EELS SI (SEI) PCA({run.suggested})"]
    assert tuple(denoised.translate) == pytest.approx(tuple(si.translate))


def test_eds_identification_quantification_and_refusals():
    viewer = _viewer(eds_sample)
    model = SpectrumModel(viewer)
    model.set_si_layer(viewer.layers["EDS SI (FePt)"])
    assert model.mode == "EDS" and "Fe: 1" in model.k_text
    found = compute_eds_identification(model.identify_request())
    assert model.apply_identification(found) == []
    assert {"Fe", "Pt", "Cu"} <= set(model.elements())
    assert found.ambiguous

    model.set_elements("Fe, Pt")
    labels = " ".join(label for label, _e, _rgb in model.markers())
    assert "Fe Ka" in labels and "Pt La" in labels and "Pt Ma" in labels
    assert set(model.windows["Fe"]) == {"integration", "background_low", "background_high"}
    result = compute_maps(model.maps_request())
    model.show_maps(result)
    truth = viewer.layers["EDS SI (FePt)"].metadata["truth"]
    fe = viewer.layers["Fe at.%"].data
    strong = truth["mask"] & ((truth["net_counts"]["Fe"] + truth["net_counts"]["Pt"]) > 150)
    assert abs(np.median(fe[strong] - truth["atomic_percent"]["Fe"][strong])) < 3
    assert not viewer.layers["Fe at.%"].visible

    assert model.set_elements("Fe, Xx")  # a message, and nothing to map
    with pytest.raises(ValueError, match="not a chemical element"):
        model.maps_request()
    model.elements_text = "Fe, Pt, U_Kb"
    with pytest.raises(ValueError, match="k-factor for U_Kb"):
        model.maps_request()
    model.k_text = ""
    with pytest.raises(ValueError, match="Nearest lines"):
        compute_maps(model.maps_request())
    assert model.set_fwhm(140.0) and model.fwhm == 140.0  # windows recomputed, U_Kb reported again


def test_without_a_spectrum_image_every_action_says_what_to_do():
    viewer = ViewerModel()
    viewer.add_image(np.zeros((8, 8)), name="flat")
    model = SpectrumModel(viewer)
    for action in (model.source, model.maps_request, model.pca_request, model.identify_request,
                   model.overlays.start_roi, model.spectrum_to_export, model.maps_to_export):
        with pytest.raises(ValueError, match="first"):
            action()
    with pytest.raises(ValueError, match="Run PCA first"):
        model.denoise_request(3)
    assert len(viewer.layers) == 1
    model.set_si_layer(viewer.add_image(np.zeros((4, 8, 8)), name="tomogram"))
    with pytest.raises(ValueError, match="no energy axis"):
        model.source()


def test_exports(eels, tmp_path):
    import tifffile
    from PIL import Image

    from napari_cryomat.io.spectral import read_spectral

    viewer, model = eels
    model.set_elements("C, O")
    result = compute_maps(model.maps_request())
    model.show_maps(result)
    files = write_map_tiffs(result, tmp_path)
    assert len(files) == 2
    np.testing.assert_array_equal(tifffile.imread(files[0]), viewer.layers["C map"].data)
    viewer.layers["O map"].contrast_limits = (0.0, 1e-9)  # the user saturated O: the composite follows
    rgb = rgb_composite(result, model.map_limits())
    assert rgb.shape == result.maps["C"].data.shape + (3,)
    assert rgb[..., 0].max() > 100 and rgb[..., 1].max() > 100
    png = write_rgb(result, model.map_limits(), tmp_path / "rgb.png")
    np.testing.assert_array_equal(np.asarray(Image.open(png)), rgb)

    request = model.spectrum_request((5, 6))
    model.set_spectra(request, SpectrumSampler()(request))
    spectrum = model.spectrum_to_export()
    ((data, _kwargs, _kind),) = read_spectral(write_spectrum(spectrum, tmp_path / "pixel.msa"))
    np.testing.assert_allclose(np.asarray(data)[:, 0, 0], spectrum.counts, rtol=1e-4)
    csv = write_spectrum(spectrum, tmp_path / "pixel.csv")
    assert open(csv).readline().strip() == "energy_eV,counts"

    model.overlays.start_line().add_lines(np.array([[10, 2], [10, 60]], float))
    profile = compute_profile(model.profile_request())
    header = open(write_profile(profile, tmp_path / "profile.csv")).readline().strip()
    assert header == "distance_A,C,C_err,O,O_err"  # EELS maps carry counting errors
    model.overlays.close()


def test_text_helpers():
    assert parse_k_factors("Fe: 1.0, Pt=1.6") == {"Fe": 1.0, "Pt": 1.6}
    with pytest.raises(ValueError):
        parse_k_factors("Fe 1.0")
    # periodic-table layout: unique cells, H top-left, He top-right, Fe period 4 group 8
    cells = {table_position(z) for z in range(1, 95)}
    assert len(cells) == 94
    assert table_position(1) == (0, 0) and table_position(2) == (0, 17) and table_position(26) == (3, 7)
    assert table_position(79) == (5, 10)  # Au, group 11


def test_identification_reasons_are_shown_as_written():
    """A reason holding "<" (as in "adds only 2.3σ (< 5σ)") is escaped, not read as the start of a tag."""
    from napari_cryomat.core.eds import Identification
    from napari_cryomat.widgets.spectrum.eds_jobs import identification_html

    found = Identification(elements=["Fe"], peaks=[], ambiguous={}, unexplained=[],
                           reasons={"Fe": "chosen: 30σ beyond the others", "Zr": "rejected: adds only 2.3σ (< 5σ)",
                                    "Nb": "rejected: its <b> line is absent"})
    html = identification_html(found)
    assert "(&lt; 5σ)" in html and "its &lt;b&gt; line" in html and "<b>Fe</b>: chosen: 30σ" in html


def test_unexplained_peaks_carry_the_spectrum_images_own_notes():
    """An unexplained peak inside a ``not_lines`` range of the layer's metadata gets its note (escaped);
    one outside any range, none; the EDS demo carries the note on its continuum roll-off."""
    from napari_cryomat.core.eds import Identification
    from napari_cryomat.widgets.spectrum.eds_jobs import unexplained_text

    found = Identification(elements=["Fe"], peaks=[], ambiguous={}, unexplained=[440.0, 1230.0], reasons={})
    notes = [{"from_eV": 300, "to_eV": 800, "why": "roll-off <simulated>"}]
    assert unexplained_text(found, notes) == "0.44 keV (roll-off &lt;simulated&gt;), 1.23 keV"
    assert unexplained_text(found) == "0.44 keV, 1.23 keV"
    [si, _] = eds_sample()
    [note] = si[1]["metadata"]["not_lines"]
    assert note["from_eV"] < 440 < note["to_eV"] and "continuum" in note["why"]


def _core_and_low_loss(seed, shape=(9, 7)):
    """C K edge over a power law, each pixel's edge convolved with its own low-loss spectrum (thickness
    varies per pixel), Poisson; returns core SI, its energy, low-loss SI, its energy, the edge."""
    from napari_cryomat.core import spectral as sp
    from napari_cryomat.core.synthetic.spectral import eels_lowloss_image

    rng = np.random.default_rng(seed)
    low = eels_lowloss_image(t_over_lambda=0.3 + 0.6 * rng.random(shape), offset=-10.0, scale=0.5, size=200,
                             total_counts=1e6, seed=seed)
    ec = sp.energy_axis(offset=230.0, scale=0.5, size=300)
    edge = 5e3 * (ec > 284) * (np.maximum(ec, 284) / 284) ** -3.0
    i0 = int(np.argmin(np.abs(low["energy"])))
    spectra = low["si"].reshape(-1, low["energy"].size).astype(np.float64)
    plural = np.stack([np.convolve(edge, s / s[: i0 + 4].sum())[i0 : i0 + ec.size] for s in spectra])
    lam = 2e5 * (ec / 230) ** -3.0 + plural.reshape(shape + (ec.size,))
    return rng.poisson(lam).astype(np.float32), ec, low["si"].astype(np.float32), low["energy"], edge


@pytest.mark.parametrize("seed, lazy", [(5, True), (6, False)])
def test_fourier_ratio_band_by_band_is_the_whole_deconvolution_and_stays_out_of_memory(seed, lazy):
    """Two rows per band: the result equals the core's deconvolution of the whole SIs at once, and the
    single-scattering edge keeps the edge's area; lazy SIs give a memory map, in-memory ones an array."""
    import dask.array as da

    from napari_cryomat.core import lowloss
    from napari_cryomat.core import spectral as sp
    from napari_cryomat.widgets.spectrum._eels_jobs import LowLossRequest, Microscope, compute_lowloss
    from napari_cryomat.widgets.spectrum._jobs import SpectrumImage

    core, ec, low, el, edge = _core_and_low_loss(seed)
    window = (240.0, 280.0)
    wrap = (lambda a, rows: da.from_array(a, chunks=(rows, -1, -1))) if lazy else (lambda a, rows: a)
    request = LowLossRequest(SpectrumImage("low", wrap(low, 3), el, 5.0, "EELS"), "fourier_ratio", Microscope(),
                             background_window=window, core_loss=SpectrumImage("core", wrap(core, 2), ec, 5.0, "EELS"),
                             max_bytes=2 * (7 * 300 * 4) * 2)  # two core-loss rows per band
    fractions = []
    result = compute_lowloss(request, progress=fractions.append)
    out = result.layers[0][0]
    assert isinstance(out, np.memmap) == lazy and out.shape == core.shape
    whole = lowloss.fourier_ratio_deconvolve(sp.subtract_background(core, energy=ec, window=window), low,
                                             energy_low_loss=el)
    np.testing.assert_allclose(out, whole, rtol=1e-4, atol=1e-4 * np.abs(whole).max())
    assert len([f for f in fractions if 0.1 < f < 1.0]) >= 4 and fractions[-1] == pytest.approx(1.0)  # per band
    band = (ec > 290) & (ec < 330)
    np.testing.assert_allclose(out[..., band].sum(axis=-1).mean(), edge[band].sum(), rtol=0.08)


def test_legend_states_the_numbers_of_a_single_spectrum_only():
    """One-pixel maps (a single EDS spectrum with k-factors): the legend gives net counts and at.%, the
    at.% being Cliff-Lorimer's; real maps keep the short legend."""
    from napari_cryomat.core import eds
    from napari_cryomat.core.spectral import ElementMap
    from napari_cryomat.widgets.spectrum._jobs import MapsResult
    from napari_cryomat.widgets.spectrum.maps_panel import legend_html

    counts = {"Fe": 1200.0, "Pt": 800.0}
    maps = {el: ElementMap(el, "eds", f"{el} Ka", 6400.0, np.full((1, 1), c, np.float32), {})
            for el, c in counts.items()}
    quant = eds.cliff_lorimer({el: m.data for el, m in maps.items()}, k_factors={"Fe": 1.0, "Pt": 1.6})
    text = legend_html(MapsResult(request=None, maps=maps, quant=quant, limits={})).replace("&nbsp;", " ")
    fe = float(quant["Fe"][0, 0])
    assert f"Fe (Fe Ka, EDS) = 1200 counts, {fe:.1f} at.%" in text
    assert "Pt (Pt Ka, EDS) = 800 counts" in text and "±" not in text  # no variance given: no error shown
    big = {el: ElementMap(el, "eds", f"{el} Ka", 6400.0, np.full((4, 4), 1.0, np.float32), {}) for el in counts}
    assert "counts" not in legend_html(MapsResult(request=None, maps=big, quant=None, limits={}))
