"""The Spectrum imaging dock driven as a user would: samples opened, cursor moved, ROI drawn, maps
made, profile drawn, PCA run, exports written; workers waited for."""

from types import SimpleNamespace

import numpy as np
import pytest
from qtpy.QtWidgets import QPushButton

from napari_cryomat.widgets.spectrum import PeriodicTableDialog, SpectrumImagingWidget
from napari_cryomat.widgets.spectrum.widget import WHY_LINK


def _shown(viewer, name: str) -> bool:
    """A helper layer is shown: present and visible (hidden, not removed, while its tool is behind)."""
    return name in viewer.layers and bool(viewer.layers[name].visible)

def _wait(qtbot, widget, timeout=120000):
    """Until the worker is done and its layers are written (one per event-loop turn). A guard against a
    hang, not a speed test: EDS Identify took over 30 s on two cores shared with four other processes."""
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)


def _move(viewer, widget, qtbot, pixel, px):
    """What napari does on a mouse move over the canvas: call mouse_move_callbacks; then wait
    for the live worker to draw that pixel's spectrum."""
    position = (viewer.dims.point[0], pixel[0] * px, pixel[1] * px)
    event = SimpleNamespace(position=position, type="mouse_move", modifiers=(), pos=(0, 0))
    for callback in viewer.mouse_move_callbacks:
        callback(viewer, event)
    qtbot.waitUntil(lambda: widget.model.last_pixel == tuple(pixel), timeout=5000)


@pytest.fixture
def eels_viewer(spectrum_dock):
    return spectrum_dock("eels")


def test_eels_cursor_windows_maps_ratio_profile(eels_viewer, qtbot):
    viewer, w = eels_viewer
    assert w.si_combo.currentText() == "EELS SI (SEI)" and w.mode == "EELS"
    w.ref_combo.setCurrentText("HAADF (SEI)")
    si_layer = viewer.layers["EELS SI (SEI)"]
    px = si_layer.scale[-1]
    si = np.moveaxis(si_layer.data, 0, -1)

    _move(viewer, w, qtbot, (10, 20), px)
    np.testing.assert_array_equal(w.model.last_spectrum, si[10, 20])
    np.testing.assert_array_equal(w.plot.curve.yData, si[10, 20])
    assert "(10, 20)" in w.plot.cursor_label.text()
    assert not w.plot.note.shown and not w.plot.cursor_label.isHidden()  # the empty plot's hint made way
    # a core-loss pixel holds ~10^7 counts: three significant digits keep the line from wrapping
    shown = float(w.plot.cursor_label.text().rsplit("·", 1)[1].split()[0])
    assert shown == pytest.approx(si[10, 20].sum(), rel=5e-3)
    assert len(w.plot.cursor_label.text()) <= 50, w.plot.cursor_label.text()
    _move(viewer, w, qtbot, (30, 70), px)

    w.elements_edit.setText("Li, C, N, O")
    w.elements_edit.editingFinished.emit()  # Enter
    assert list(w.model.windows) == ["Li", "C", "N", "O"]
    labels = " ".join(m.label.format for m in w.plot.markers)
    assert "C K" in labels and "O K" in labels
    assert set(w.plot.regions) == {"background", "integration"}
    # drag the C background window (as the region item reports it)
    w.plot.window_combo.setCurrentText("C")
    region = w.plot.regions["background"]
    region.setRegion((240.0, 278.0))
    region.sigRegionChangeFinished.emit(region)
    assert w.model.windows["C"]["background"] == pytest.approx((240.0, 278.0))
    qtbot.waitUntil(lambda: w.plot.bgfit_curve.xData is not None and len(w.plot.bgfit_curve.xData) > 0)
    assert w.plot.bgfit_curve.xData[0] == pytest.approx(240.0, abs=0.5)  # the fit follows the window

    w.method_combo.setCurrentIndex(0)
    w.maps.maps_button.click()
    _wait(qtbot, w)
    truth = si_layer.metadata["truth"]
    for el in ("Li", "C", "N", "O"):
        layer = viewer.layers[f"{el} map"]
        assert layer.blending == "additive" and tuple(layer.scale) == pytest.approx((px, px))
        assert np.corrcoef(truth["edge_amplitude"][el].ravel(), layer.data.ravel())[0, 1] > 0.9
    assert w.model.windows["C"]["background"] == pytest.approx((240.0, 278.0))
    assert viewer.layers["C map"].metadata["spectrum_map"]["windows"]["background"] == pytest.approx((240.0, 278.0))
    legend = w.maps.legend.text().replace("&nbsp;", " ")  # as shown: no break inside an item
    assert "Li" in legend and "O K" in legend
    names = [layer.name for layer in viewer.layers]
    assert names.index("HAADF (SEI)") < names.index("Li map")
    assert "Li map" not in [w.ref_combo.itemText(i) for i in range(w.ref_combo.count())]

    w.maps.ratio_a.setCurrentText("O")
    w.maps.ratio_b.setCurrentText("C")
    w.maps.ratio_button.click()
    _wait(qtbot, w)
    assert "O/C ratio" in viewer.layers
    # the profile plot says what draws it until a line is drawn, not bare 0-1 axes
    assert w.maps.profile.note.shown and w.maps.profile.note.text.startswith("Make maps, then Draw profile line")
    w.maps.line_button.click()
    line = viewer.layers["composition line"]
    assert viewer.layers.selection.active is line and line.mode == "add_line"
    line.add_lines(np.array([[32, 2], [32, 93]], float))
    qtbot.waitUntil(lambda: w.model.profile is not None, timeout=5000)
    profile = w.model.profile.columns
    assert {"distance_A", "Li", "C", "N", "O"} <= set(profile)
    assert profile["distance_A"][-1] == pytest.approx(91 * px, rel=0.02)
    assert profile["Li"][:10].mean() > profile["Li"][-10:].mean()
    assert profile["C"][-10:].mean() > profile["C"][:10].mean()
    assert len(w.maps.profile.plot.getPlotItem().listDataItems()) == 4
    assert not w.maps.profile.note.shown


def test_latest_cursor_position_wins(eels_viewer, qtbot):
    """A burst of mouse moves: the plot ends on the last pixel, never on an older one."""
    viewer, w = eels_viewer
    px = viewer.layers["EELS SI (SEI)"].scale[-1]
    qtbot.waitUntil(lambda: w.model.last_pixel is not None, timeout=5000)  # the centre pixel, first
    drawn = []
    w.model.spectra_changed.connect(lambda: drawn.append(w.model.last_pixel))
    path = [(5 + i, 3 + 2 * i) for i in range(30)]
    for pixel in path:
        event = SimpleNamespace(position=(viewer.dims.point[0], pixel[0] * px, pixel[1] * px))
        for callback in viewer.mouse_move_callbacks:
            callback(viewer, event)
    qtbot.waitUntil(lambda: w.model.last_pixel == path[-1], timeout=5000)
    qtbot.wait(100)
    assert w.model.last_pixel == path[-1]
    assert len(drawn) < len(path) and [path.index(p) for p in drawn] == sorted(path.index(p) for p in drawn)
    si = np.moveaxis(viewer.layers["EELS SI (SEI)"].data, 0, -1)
    np.testing.assert_array_equal(w.plot.curve.yData, si[path[-1]])


def test_roi_spectrum_and_exports(eels_viewer, qtbot, tmp_path):
    from PIL import Image

    from napari_cryomat.io.spectral import read_spectral

    viewer, w = eels_viewer
    w.plot.roi_button.click()
    roi = viewer.layers["spectrum ROI"]
    roi.add_rectangles(np.array([[4, 4], [12, 20]], float))
    qtbot.waitUntil(lambda: w.model.roi_spectrum is not None, timeout=5000)
    si = np.moveaxis(viewer.layers["EELS SI (SEI)"].data, 0, -1)
    mask = roi.to_masks(mask_shape=si.shape[:2])[0].astype(bool)
    np.testing.assert_allclose(w.model.roi_spectrum, si[mask].sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(w.plot.roi_curve.yData, w.model.roi_spectrum)
    assert f"{mask.sum()} pixels summed" in w.plot.cursor_label.text()

    w.export.export_spectrum(str(tmp_path / "roi.msa"))
    _wait(qtbot, w)
    ((data, _kwargs, _),) = read_spectral(w.export.written)
    np.testing.assert_allclose(np.asarray(data)[:, 0, 0], w.model.roi_spectrum, rtol=1e-4)
    w.export.export_spectrum(str(tmp_path / "roi.csv"))
    _wait(qtbot, w)
    assert open(tmp_path / "roi.csv").readline().strip() == "energy_eV,counts"

    w.set_elements("C, O")
    w.maps.make_maps()
    _wait(qtbot, w)
    w.export.export_maps(str(tmp_path))
    _wait(qtbot, w)
    assert len(w.export.written) == 2
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(w.export.written[0]), viewer.layers["C map"].data)
    w.export.export_rgb(str(tmp_path / "rgb.png"))
    _wait(qtbot, w)
    rgb = np.asarray(Image.open(tmp_path / "rgb.png"))
    assert rgb.shape == si.shape[:2] + (3,) and rgb[..., 0].max() > 100 and rgb[..., 1].max() > 100


def _plotted(curve) -> bool:
    return curve.yData is not None and len(curve.yData) > 0


def test_eds_identify_quantify_and_bad_input(spectrum_dock, qtbot, messages):
    viewer, w = spectrum_dock("eds")
    assert w.mode == "EDS" and w.plot.units_combo.currentText() == "keV"
    assert "Fe: 1" in w.maps.k_edit.text()
    assert w.identify_button.isVisibleTo(w) and not w.method_combo.isVisibleTo(w)
    # one Identify in EDS mode (next to Elements), whichever sections are open
    w.eds_section.set_expanded(True)
    assert [b for b in w.findChildren(QPushButton) if "Identify" in b.text() and b.isVisibleTo(w)] == [w.identify_button]
    w.eds_section.set_expanded(False)
    w.identify_button.click()
    _wait(qtbot, w)
    assert {"Fe", "Pt", "Cu"} <= set(w.elements())
    assert w.elements_edit.text() == w.model.elements_text
    assert "Ambiguous" in w.identify_label.text() and "why?" in w.identify_label.text()
    assert "<b>Pt</b>: chosen" in w.eds.found_label.text()  # the reasons, in the EDS section
    # the demo's continuum roll-off reads as an unexplained peak; the demo says what it is
    assert "0.44 keV (the demo's continuum" in w.identify_label.text()
    assert "0.44 keV (the demo's continuum" in w.eds.found_label.text()
    w.identify_label.linkActivated.emit(WHY_LINK)  # the user clicks "why?"
    assert w.eds_section.expanded and w.eds.found_label.isVisibleTo(w)
    # no ROI drawn: the plot shows the map's sum Identify read beside the cursor's pixel, to check its lines on
    si = np.moveaxis(viewer.layers["EDS SI (FePt)"].data, 0, -1)
    whole = si.sum(axis=(0, 1), dtype=np.float64)
    qtbot.waitUntil(lambda: _plotted(w.plot.identified_curve), timeout=5000)
    np.testing.assert_allclose(w.plot.identified_curve.yData, whole, rtol=1e-6)
    assert whole.max() > 100 * w.plot.curve.yData.max()  # a pixel's few counts could not show the lines
    w.plot.roi_button.click()  # an ROI: its sum replaces the map's
    viewer.layers["spectrum ROI"].add_rectangles(np.array([[10, 10], [30, 30]], float))
    qtbot.waitUntil(lambda: w.model.roi_spectrum is not None, timeout=5000)
    qtbot.waitUntil(lambda: not _plotted(w.plot.identified_curve), timeout=5000)
    viewer.layers.remove("spectrum ROI")

    w.set_elements("Fe, Pt")
    lines = " ".join(m.label.format for m in w.plot.markers)
    assert "Fe Ka" in lines and "Pt La" in lines and "Pt Ma" in lines
    assert set(w.plot.regions) == {"integration", "background_low", "background_high"}
    n_layers = len(viewer.layers)
    w.maps.maps_button.click()
    _wait(qtbot, w)
    assert len(viewer.layers) == n_layers + 4  # 2 maps + 2 at.% layers
    truth = viewer.layers["EDS SI (FePt)"].metadata["truth"]
    fe = viewer.layers["Fe at.%"].data
    strong = truth["mask"] & ((truth["net_counts"]["Fe"] + truth["net_counts"]["Pt"]) > 150)
    assert abs(np.median(fe[strong] - truth["atomic_percent"]["Fe"][strong])) < 3

    # bad input: an unknown element, an element without a k-factor, one without lines in range:
    # a message each, the viewer as it was
    n_layers = len(viewer.layers)
    messages.clear()
    w.set_elements("Fe, Xx")
    assert messages and messages[-1][0] == "error" and "Xx" in messages[-1][1]
    assert w.maps.make_maps() is None and w.runner.worker is None
    w.elements_edit.setText("Fe, Pt, U_Kb")
    assert w.maps.make_maps() is None  # refused before any work: U has no k-factor
    assert "k-factor for U_Kb" in messages[-1][1]
    w.maps.k_edit.setText("")
    w.maps.make_maps()
    _wait(qtbot, w)
    assert isinstance(w.runner.last_error, ValueError) and "Nearest lines" in str(w.runner.last_error)
    assert "Nearest lines" in messages[-1][1]
    assert len(viewer.layers) == n_layers
    assert w.model.identified_spectrum is not None
    w.mode_combo.setCurrentText("EELS")  # the Signal changed: an EDS identification is no longer shown
    assert w.model.identified_spectrum is None


def test_pca_and_cancel(eels_viewer, qtbot):
    from napari_cryomat.core._progress import Cancelled

    viewer, w = eels_viewer
    w.pca_section.set_expanded(True)
    w.pca.pca_button.click()
    _wait(qtbot, w, 60000)
    assert w.model.pca is not None and w.pca.pca_apply.isEnabled()
    assert 2 <= w.pca.pca_spin.value() <= 15
    assert len(w.pca.scree.getPlotItem().listDataItems()[0].getData()[0]) > 10
    assert "EELS SI (SEI)" in w.pca.scree.getPlotItem().titleLabel.text
    w.pca.pca_apply.click()
    _wait(qtbot, w)
    name = f"EELS SI (SEI) PCA({w.pca.pca_spin.value()})"
    assert viewer.layers[name].metadata["spectrum_image"]["energy_axis"]["scale"] == pytest.approx(0.5)
    # Cancel leaves the viewer untouched: a new PCA cancelled at its first progress report
    n, previous = len(viewer.layers), w.model.pca
    worker = w.pca.run_pca()
    w.runner.cancel()
    _wait(qtbot, w)
    assert worker is not None and isinstance(w.runner.last_error, Cancelled)
    assert w.model.pca is previous and len(viewer.layers) == n


def test_thickness_from_low_loss(eels_viewer, qtbot):
    viewer, w = eels_viewer
    w.si_combo.setCurrentText("EELS low-loss SI (SEI)")
    w.maps.thickness_button.click()
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
        {"name": "Energy loss", "units": "eV", "size": 900, "offset": 200.0, "scale": 0.5, "navigate": False,
         "index_in_array": 2},
    ]
    sig = {"data": d["si"], "axes": axes, "metadata": {"General": {"title": "core loss"},
                                                       "Signal": {"signal_type": "EELS"}},
           "original_metadata": {}, "attributes": {"_lazy": False}, "tmp_parameters": {}, "learning_results": {},
           "models": {}, "package_info": {"name": "napari-cryomat", "version": "test"}}
    path = tmp_path / "core_loss.hspy"
    file_writer(str(path), sig, show_progressbar=False)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-cryomat")
    w = SpectrumImagingWidget(viewer)
    assert w.si_combo.currentText() == "core loss" and w.mode == "EELS"
    assert tuple(viewer.layers["core loss"].scale) == pytest.approx((0.5, 5.0, 5.0))
    qtbot.waitUntil(lambda: w.model.last_spectrum is not None, timeout=5000)  # the centre pixel, lazily read
    w.set_elements("C, O")
    w.maps.maps_button.click()
    _wait(qtbot, w)
    m = viewer.layers["C map"]
    assert tuple(m.scale) == pytest.approx((5.0, 5.0))
    assert np.corrcoef(m.data.ravel(), d["truth_amplitude"]["C"].ravel())[0, 1] > 0.95


def test_periodic_table_dialog(qtbot):
    dialog = PeriodicTableDialog(selected=["Fe"])
    qtbot.addWidget(dialog)
    assert dialog.selected() == ["Fe"]
    dialog.buttons["Pt"].click()
    dialog.buttons["O"].click()
    assert dialog.selected() == ["O", "Fe", "Pt"]  # in order of Z
    assert len(dialog.buttons) == 94


def test_helper_layers_live_with_the_dock(make_napari_viewer, qtbot):
    """ROI and line exist only while the tool's tab is in front, and go when the dock closes."""
    from qtpy.QtWidgets import QLabel

    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "eels")
    w = SpectrumImagingWidget(viewer)
    dock = viewer.window.add_dock_widget(w, name="Spectrum imaging")
    other = viewer.window.add_dock_widget(QLabel("another tool"), name="other", tabify=True)
    dock.show()
    dock.raise_()
    qtbot.waitUntil(lambda: not dock.visibleRegion().isEmpty(), timeout=3000)
    w.plot.roi_button.click()
    viewer.layers["spectrum ROI"].add_rectangles(np.array([[4, 4], [12, 20]], float))
    w.maps.line_button.click()
    other.raise_()
    qtbot.waitUntil(lambda: not _shown(viewer, "spectrum ROI"), timeout=3000)
    assert not _shown(viewer, "composition line")
    dock.raise_()
    qtbot.waitUntil(lambda: _shown(viewer, "spectrum ROI"), timeout=3000)
    assert len(viewer.layers["spectrum ROI"].data) == 1 and _shown(viewer, "composition line")
    qtbot.waitUntil(lambda: w.model.roi_spectrum is not None, timeout=5000)
    viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: not _shown(viewer, "spectrum ROI"), timeout=3000)
    assert not _shown(viewer, "composition line")


def test_gui_thread_stays_free_on_a_big_spectrum_image(make_napari_viewer, qtbot, gui_watch, tmp_path, add_si):
    """A 2048² HAADF and a 256 × 256 × 1024-channel SI: cursor, ROI sums, maps, ratio, profile and
    exports leave the GUI thread free (their work runs in workers)."""
    import gc

    from napari_cryomat.core.synthetic.spectral import eels_spectrum_image

    tile = eels_spectrum_image(shape=(64, 64), offset=200.0, size=1024, counts_at_offset=20000.0,
                               elements=("C", "N", "O"))
    si = np.tile(np.round(tile["si"]).astype(np.uint16), (4, 4, 1))  # 128 MB
    viewer = make_napari_viewer(show=False)
    haadf = np.random.default_rng(0).random((2048, 2048), np.float32)
    viewer.add_image(haadf, name="HAADF", scale=(0.625, 0.625), units=("angstrom", "angstrom"))
    add_si(viewer, si, 200.0 + 0.5 * np.arange(si.shape[-1]), "big SI")
    w = SpectrumImagingWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.ref_combo.setCurrentText("HAADF")
    qtbot.waitUntil(lambda: w.model.last_spectrum is not None, timeout=10000)

    # Between two user actions the event loop turns (a person cannot type and click within one
    # turn); without these pauses the watch summed three actions into one stretch (89 ms here,
    # 102 ms on a CI machine) and read it as one block.
    def use_the_tool(roi_corner, line_row):
        for i in range(8):
            _move(viewer, w, qtbot, (40 + 20 * i, 30 + 25 * i), 5.0)
        w.set_elements("C, N, O")
        qtbot.wait(10)
        w.plot.roi_button.click()
        qtbot.wait(10)
        viewer.layers["spectrum ROI"].add_rectangles(np.array([[2, 2], [roi_corner, roi_corner]], float))
        qtbot.waitUntil(lambda: w.model.roi_spectrum is not None
                        and w.model.spectra.result.roi_pixels == (roi_corner - 1) ** 2, timeout=30000)
        _move(viewer, w, qtbot, (100, 100), 5.0)
        w.maps.maps_button.click()
        _wait(qtbot, w, 120000)
        w.maps.ratio_button.click()
        _wait(qtbot, w)
        w.maps.line_button.click()
        qtbot.wait(10)
        w.model.profile = None
        viewer.layers["composition line"].add_lines(np.array([[line_row, 5], [line_row, 250]], float))
        qtbot.waitUntil(lambda: w.model.profile is not None, timeout=10000)
        w.export.export_maps(str(tmp_path))
        _wait(qtbot, w)
        w.export.export_rgb(str(tmp_path / "rgb.png"))
        _wait(qtbot, w)

    # The first time, napari adds the ROI, the line and seven result layers: each costs napari itself
    # about 0.1 s of GUI time (layer controls, vispy visual), whatever the data size, and its first
    # Shapes layer compiles numba code. The tool writes one layer per event-loop turn; the figure is
    # printed, not asserted: it is napari's, not the tool's.
    with gui_watch as watch:
        use_the_tool(250, 128)
    first_time = watch.longest
    # Then all of it again on the same layers (new ROI, new line, maps and ratio rewritten). A full
    # garbage collection of napari's heap is taken first so that it does not land inside the figure.
    gc.collect()
    with gui_watch as watch:
        use_the_tool(200, 64)
    assert "O map" in viewer.layers and len(w.export.written) > 0
    np.testing.assert_allclose(w.model.roi_spectrum[:4], si[2:201, 2:201, :4].sum(axis=(0, 1)), rtol=1e-6)
    print(f"GUI thread, longest stretch: first time {first_time * 1000:.0f} ms, then {watch.longest * 1000:.0f} ms")
    assert watch.longest < 0.1


@pytest.mark.e2e
def test_e2e_eels_maps_screenshot(spectrum_dock, qtbot):
    viewer, w = spectrum_dock("eels", show=True)
    # a real mouse move over the canvas drives the live spectrum
    from qtpy.QtCore import QPoint
    from qtpy.QtTest import QTest

    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.waitUntil(lambda: w.model.last_pixel == (32, 48), timeout=3000)  # the centre, until the mouse moves
    # The move goes in through the canvas's window, as the window system delivers it. QTest.mouseMove on a
    # widget moves the X server's one cursor instead, and the suite's two workers share one Xvfb screen:
    # when the other worker's window lay on top there, the move went to it (CI, stop 29).
    window = canvas.window()
    for dx, dy in ((47, 45), (49, 43)):
        at = QPoint(canvas.width() // 2 + dx, canvas.height() // 2 + dy)
        QTest.mouseMove(window.windowHandle(), canvas.mapTo(window, at))
        qtbot.wait(50)
    qtbot.waitUntil(lambda: w.model.last_pixel not in (None, (32, 48)), timeout=10000)
    si = np.moveaxis(viewer.layers["EELS SI (SEI)"].data, 0, -1)
    np.testing.assert_array_equal(w.plot.curve.yData, si[w.model.last_pixel])
    w.set_elements("Li, C, N, O")
    w.maps.maps_button.click()
    _wait(qtbot, w)
    assert "Li map" in viewer.layers
    shot = viewer.screenshot(canvas_only=True)
    assert shot.std() > 5
    assert len(np.unique(shot.reshape(-1, shot.shape[-1])[:, :3], axis=0)) > 50


def test_single_spectrum_file_shows_its_numbers(make_napari_viewer, qtbot):
    """File > Open of exSpy's real MnO core-loss spectrum (.msa, one spectrum): Make maps gives 1 x 1
    maps, which show nothing on the canvas, so the legend states each edge's net counts and their
    counting error; the numbers are the map values."""
    import re
    from pathlib import Path

    pytest.importorskip("rsciio")
    exspy = pytest.importorskip("exspy")
    path = Path(exspy.__file__).parent / "tests" / "components" / "coreloss_spectrum.msa"
    if not path.exists():
        pytest.skip(f"{path.name} not in this exspy")
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-cryomat")
    w = SpectrumImagingWidget(viewer)
    assert w.mode == "EELS"
    w.set_elements("O, Mn")
    w.maps.maps_button.click()
    _wait(qtbot, w)
    legend = w.maps.legend.text().replace("&nbsp;", " ")
    for element in ("O", "Mn"):
        value = float(viewer.layers[f"{element} map"].data.ravel()[0])
        match = re.search(rf"{element} \(.*?\) = ([-0-9.e+]+) ± ([0-9.e+]+) counts", legend)
        assert match, legend
        assert float(match.group(1)) == pytest.approx(value, rel=1e-3)
        assert 0 < float(match.group(2)) < 0.05 * value  # counting error of ~2e6 counts: a few 1e3
