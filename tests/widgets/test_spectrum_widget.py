"""The Spectrum imaging widget driven as a user would: samples opened, cursor moved, ROI drawn,
maps made, profile drawn, PCA run, exports written."""

from types import SimpleNamespace

import numpy as np
import pytest

from napari_cryomat.widgets.spectrum import SpectrumImagingWidget, _table_position, parse_k_factors


def _wait(qtbot, widget, timeout=30000):
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=timeout)


def _move(viewer, widget, qtbot, world_pos):
    """What napari does on a mouse move over the canvas: call mouse_move_callbacks."""
    event = SimpleNamespace(position=tuple(world_pos), type="mouse_move", modifiers=(), pos=(0, 0))
    for cb in viewer.mouse_move_callbacks:
        cb(viewer, event)
    qtbot.wait(40)


@pytest.fixture
def eels_viewer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-cryomat", "eels")
    widget = SpectrumImagingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def test_eels_maps_from_the_dock(eels_viewer, qtbot):
    viewer, w = eels_viewer
    assert w.si_combo.currentText() == "EELS SI (SEI)"
    w.ref_combo.setCurrentText("HAADF (SEI)")
    assert w.mode == "EELS"
    si_layer = viewer.layers["EELS SI (SEI)"]
    truth = si_layer.metadata["truth"]

    # cursor over pixel (10, 20) of the SI (world coords in Å, energy slider first)
    px = si_layer.scale[-1]
    _move(viewer, w, qtbot, (viewer.dims.point[0], 10 * px, 20 * px))
    assert w.last_pixel == (10, 20)
    si = np.moveaxis(si_layer.data, 0, -1)
    np.testing.assert_array_equal(w.last_spectrum, si[10, 20])
    np.testing.assert_array_equal(w.curve.yData, si[10, 20])
    _move(viewer, w, qtbot, (viewer.dims.point[0], 30 * px, 70 * px))
    assert w.last_pixel == (30, 70)

    # elements typed: windows and markers appear
    w.set_elements("Li, C, N, O")
    assert list(w._windows) == ["Li", "C", "N", "O"]
    labels = [m.label.format for m in w._markers]
    assert "C K" in " ".join(labels) and "O K" in " ".join(labels)
    assert set(w._regions) == {"background", "integration"}

    # drag the C background window (as the region item would report it)
    w.window_combo.setCurrentText("C")
    reg = w._regions["background"]
    reg.setRegion((240.0, 278.0))
    reg.sigRegionChangeFinished.emit(reg)
    assert w._windows["C"]["background"] == pytest.approx((240.0, 278.0))

    w.method_combo.setCurrentIndex(0)
    w.maps_button.click()
    _wait(qtbot, w)
    for el in ("Li", "C", "N", "O"):
        layer = viewer.layers[f"{el} map"]
        assert layer.blending == "additive"
        assert tuple(layer.scale) == pytest.approx((px, px))
        assert layer.data.shape == si.shape[:2]
        amp = truth["edge_amplitude"][el]
        assert np.corrcoef(amp.ravel(), layer.data.ravel())[0, 1] > 0.9
    # the windows the user set survive the new layers (and were used for the C map)
    assert w._windows["C"]["background"] == pytest.approx((240.0, 278.0))
    assert viewer.layers["C map"].metadata["spectrum_map"]["windows"]["background"] == pytest.approx((240.0, 278.0))
    cmaps = {viewer.layers[f"{el} map"].colormap.name for el in ("Li", "C", "N", "O")}
    assert len(cmaps) == 4
    assert "Li" in w.legend.text() and "O K" in w.legend.text()
    # maps lie above the HAADF
    names = [l.name for l in viewer.layers]
    assert names.index("HAADF (SEI)") < names.index("Li map")

    # ratio map and a composition profile across the layers
    w.ratio_a.setCurrentText("O")
    w.ratio_b.setCurrentText("C")
    w.ratio_button.click()
    assert "O/C ratio" in viewer.layers
    line = w.line_button.click() or viewer.layers["composition line"]
    line.add_lines(np.array([[32, 2], [32, 93]], float))
    prof = w.last_profile
    assert prof is not None and {"distance_A", "Li", "C", "N", "O"} <= set(prof)
    assert prof["distance_A"][-1] == pytest.approx(91 * px, rel=0.02)
    # Li sits at the electrode side (small x), C at the far side
    assert prof["Li"][:10].mean() > prof["Li"][-10:].mean()
    assert prof["C"][-10:].mean() > prof["C"][:10].mean()


def test_roi_spectrum_and_exports(eels_viewer, qtbot, tmp_path):
    viewer, w = eels_viewer
    roi = w.roi_button.click() or viewer.layers["spectrum ROI"]
    roi.add_rectangles(np.array([[4, 4], [12, 20]], float))
    assert w.roi_spectrum is not None
    si = np.moveaxis(viewer.layers["EELS SI (SEI)"].data, 0, -1)
    mask = roi.to_masks(mask_shape=si.shape[:2])[0].astype(bool)
    np.testing.assert_allclose(w.roi_spectrum, si[mask].sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(w.roi_curve.yData, w.roi_spectrum)

    msa = w.export_spectrum(str(tmp_path / "roi.msa"))
    from napari_cryomat.io.spectral import read_spectral

    ((data, kwargs, _),) = read_spectral(msa)
    np.testing.assert_allclose(np.asarray(data)[:, 0, 0], w.roi_spectrum, rtol=1e-4)
    csv = w.export_spectrum(str(tmp_path / "roi.csv"))
    assert open(csv).readline().strip() == "energy_eV,counts"

    w.set_elements("C, O")
    w.make_maps()
    _wait(qtbot, w)
    files = w.export_maps(str(tmp_path))
    assert len(files) == 2
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(files[0]), viewer.layers["C map"].data)
    png = w.export_rgb(str(tmp_path / "rgb.png"))
    from PIL import Image

    rgb = np.asarray(Image.open(png))
    assert rgb.shape == si.shape[:2] + (3,) and rgb[..., 0].max() > 100 and rgb[..., 1].max() > 100


def test_eds_identify_quantify_and_bad_input(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-cryomat", "eds")
    w = SpectrumImagingWidget(viewer)
    assert w.mode == "EDS" and w.units_combo.currentText() == "keV"
    assert "Fe: 1" in w.k_edit.text()
    w.identify_button.click()
    _wait(qtbot, w)
    assert {"Fe", "Pt", "Cu"} <= set(w.elements())
    assert "Ambiguous" in w.identify_label.text()

    w.set_elements("Fe, Pt")
    lines = " ".join(m.label.format for m in w._markers)
    assert "Fe Ka" in lines and "Pt La" in lines and "Pt Ma" in lines
    assert set(w._regions) == {"integration", "background_low", "background_high"}
    n_layers = len(viewer.layers)
    w.maps_button.click()
    _wait(qtbot, w)
    assert len(viewer.layers) == n_layers + 4  # 2 maps + 2 at.% layers
    truth = viewer.layers["EDS SI (FePt)"].metadata["truth"]
    fe = viewer.layers["Fe at.%"].data
    strong = truth["mask"] & ((truth["net_counts"]["Fe"] + truth["net_counts"]["Pt"]) > 150)
    assert abs(np.median(fe[strong] - truth["atomic_percent"]["Fe"][strong])) < 3

    # bad input: unknown element and an element without lines in range leave the viewer as is
    n_layers = len(viewer.layers)
    w.set_elements("Fe, Xx")
    w.make_maps()
    assert w.runner.worker is None and len(viewer.layers) == n_layers
    w.elements_edit.setText("Fe, Pt, U_Kb")
    w.make_maps()  # refused before any work: U has no k-factor
    assert w.runner.worker is None
    w.k_edit.setText("")
    w.make_maps()
    _wait(qtbot, w)
    assert isinstance(w.runner.last_error, ValueError) and "Nearest lines" in str(w.runner.last_error)
    assert len(viewer.layers) == n_layers


def test_pca_and_cancel(eels_viewer, qtbot):
    viewer, w = eels_viewer
    w.pca_button.click()
    _wait(qtbot, w, 60000)
    assert w._pca is not None and w.pca_apply.isEnabled()
    assert 2 <= w.pca_spin.value() <= 15
    n_points = len(w.scree.getPlotItem().listDataItems()[0].getData()[0])
    assert n_points > 10
    w.pca_apply.click()
    _wait(qtbot, w)
    name = f"EELS SI (SEI) PCA({w.pca_spin.value()})"
    assert name in viewer.layers
    assert viewer.layers[name].metadata["spectrum_image"]["energy_axis"]["scale"] == pytest.approx(0.5)
    # Cancel leaves the viewer untouched: a new PCA cancelled at its first progress report
    from napari_cryomat.core._progress import Cancelled

    n = len(viewer.layers)
    previous = w._pca
    worker = w.run_pca()
    w.runner.cancel()
    _wait(qtbot, w)
    assert worker is not None
    assert isinstance(w.runner.last_error, Cancelled)
    assert w._pca is previous and len(viewer.layers) == n


def test_thickness_from_low_loss(eels_viewer, qtbot):
    viewer, w = eels_viewer
    w.si_combo.setCurrentText("EELS low-loss SI (SEI)")
    w.thickness_button.click()
    _wait(qtbot, w)
    t = viewer.layers["t/λ (EELS low-loss SI (SEI))"].data
    truth = viewer.layers["EELS low-loss SI (SEI)"].metadata["truth"]["t_over_lambda"]
    np.testing.assert_allclose(t, truth, atol=0.05)


def test_file_open_hspy_then_maps(make_napari_viewer, qtbot, tmp_path):
    """File > Open of a HyperSpy file (lazy, through rosettasciio), then maps from the dock."""
    pytest.importorskip("rsciio")
    pytest.importorskip("h5py")
    from rsciio.hspy import file_writer

    from napari_cryomat.core.synthetic.spectral import eels_spectrum_image

    d = eels_spectrum_image(shape=(16, 24), elements=("C", "N", "O"), offset=200.0, size=900)
    axes = [
        {"name": "y", "units": "nm", "size": 16, "offset": 0.0, "scale": 0.5, "navigate": True, "index_in_array": 0},
        {"name": "x", "units": "nm", "size": 24, "offset": 0.0, "scale": 0.5, "navigate": True, "index_in_array": 1},
        {"name": "Energy loss", "units": "eV", "size": 900, "offset": 200.0, "scale": 0.5, "navigate": False, "index_in_array": 2},
    ]
    sig = {"data": d["si"], "axes": axes, "metadata": {"General": {"title": "core loss"}, "Signal": {"signal_type": "EELS"}},
           "original_metadata": {}, "attributes": {"_lazy": False}, "tmp_parameters": {}, "learning_results": {},
           "models": {}, "package_info": {"name": "napari-cryomat", "version": "test"}}
    path = tmp_path / "core_loss.hspy"
    file_writer(str(path), sig, show_progressbar=False)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-cryomat")
    w = SpectrumImagingWidget(viewer)
    assert w.si_combo.currentText() == "core loss" and w.mode == "EELS"
    layer = viewer.layers["core loss"]
    assert tuple(layer.scale) == pytest.approx((0.5, 5.0, 5.0))
    w.set_elements("C, O")
    w.maps_button.click()
    _wait(qtbot, w)
    m = viewer.layers["C map"]
    assert tuple(m.scale) == pytest.approx((5.0, 5.0))
    assert np.corrcoef(m.data.ravel(), d["truth_amplitude"]["C"].ravel())[0, 1] > 0.95


def test_periodic_table_dialog(qtbot):
    from napari_cryomat.widgets.spectrum import PeriodicTableDialog

    dlg = PeriodicTableDialog(selected=["Fe"])
    qtbot.addWidget(dlg)
    assert dlg.selected() == ["Fe"]
    dlg.buttons["Pt"].click()
    dlg.buttons["O"].click()
    assert dlg.selected() == ["O", "Fe", "Pt"]  # in order of Z
    assert len(dlg.buttons) == 94


def test_helpers():
    assert parse_k_factors("Fe: 1.0, Pt=1.6") == {"Fe": 1.0, "Pt": 1.6}
    with pytest.raises(ValueError):
        parse_k_factors("Fe 1.0")
    # periodic-table layout: unique cells, H top-left, He top-right, Fe period 4 group 8
    cells = {_table_position(z) for z in range(1, 95)}
    assert len(cells) == 94
    assert _table_position(1) == (0, 0) and _table_position(2) == (0, 17) and _table_position(26) == (3, 7)
    assert _table_position(79) == (5, 10)  # Au, group 11


@pytest.mark.e2e
def test_e2e_eels_maps_screenshot(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "eels")
    w = SpectrumImagingWidget(viewer)
    viewer.window.add_dock_widget(w)
    # a real mouse move over the canvas drives the live spectrum
    canvas = viewer.window._qt_viewer.canvas.native
    from qtpy.QtCore import QPoint

    qtbot.mouseMove(canvas, QPoint(canvas.width() // 2 + 7, canvas.height() // 2 + 5))
    qtbot.wait(50)
    qtbot.mouseMove(canvas, QPoint(canvas.width() // 2 + 9, canvas.height() // 2 + 3))
    qtbot.waitUntil(lambda: w.last_pixel is not None, timeout=3000)
    si = np.moveaxis(viewer.layers["EELS SI (SEI)"].data, 0, -1)
    np.testing.assert_array_equal(w.curve.yData, si[w.last_pixel])
    w.set_elements("Li, C, N, O")
    w.maps_button.click()
    _wait(qtbot, w)
    assert "Li map" in viewer.layers
    shot = viewer.screenshot(canvas_only=True)
    assert shot.std() > 5
    assert len(np.unique(shot.reshape(-1, shot.shape[-1])[:, :3], axis=0)) > 50
