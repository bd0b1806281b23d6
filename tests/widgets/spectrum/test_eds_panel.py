"""The EDS panel in a dock of a real napari window, driven as a user would: identify (reasons per
element, the found elements put in Elements), quantify with theoretical k-factors, user k-factors with a
thickness, zeta-factors with a dose; bad input gives a message and leaves the layers alone."""

import numpy as np
import pytest
from qtpy.QtGui import QTextDocument

from napari_cryomat.widgets.spectrum._model import SpectrumModel
from napari_cryomat.widgets.spectrum.eds_panel import QUANT_KEY, EdsQuantPanel


@pytest.fixture
def eds_dock(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-cryomat", "eds")
    model = SpectrumModel(viewer)
    model.set_si_layer(viewer.layers["EDS SI (FePt)"])
    panel = EdsQuantPanel(viewer, model)
    viewer.window.add_dock_widget(panel, name="EDS")
    return viewer, model, panel


def _wait(qtbot, panel):
    qtbot.waitUntil(lambda: not panel.runner.busy, timeout=60000)


def test_identify_and_quantify_in_a_real_window(eds_dock, qtbot, messages):
    viewer, model, panel = eds_dock
    truth = viewer.layers["EDS SI (FePt)"].metadata["truth"]
    assert model.mode == "EDS"
    assert panel.identify() is not None
    _wait(qtbot, panel)
    found = panel.identification
    assert {"Fe", "Pt", "Cu"} <= set(found.elements) <= {"Fe", "Pt", "Cu", "C"}
    assert set(model.elements()) == set(found.elements)  # what Identify found is in Elements
    text = panel.found_label.text()
    assert "<b>Pt</b>: chosen" in text and "Rejected" in text
    # reasons are escaped: "adds only 2.3σ (< 5σ)" shows its "<" instead of swallowing the next lines
    shown = QTextDocument()
    shown.setHtml(text)
    lines = [line for line in shown.toPlainText().splitlines() if line.startswith("• ")]
    assert len(lines) > len(found.elements)  # the chosen ones and some rejected, one line each
    for line in lines:
        element, reason = line[2:].split(": ", 1)
        assert reason == found.reasons[element].removeprefix("rejected: ")

    # Fe and Pt only, theoretical k-factors: marked as such, at.% layers on the SI
    model.set_elements("Fe, Pt")
    panel.source_combo.setCurrentText("theoretical")
    panel.quant_button.click()
    _wait(qtbot, panel)
    q = panel.last_quant.quant
    assert q.factor_source == "theoretical" and "theoretical" in panel.quant_label.text()
    fe = viewer.layers["Fe at.% (CL)"]
    assert fe.metadata[QUANT_KEY]["factor_source"] == "theoretical"
    np.testing.assert_allclose(fe.scale, viewer.layers["EDS SI (FePt)"].scale[-2:])

    # the sample's own k-factors: Fe at.% follows the truth on strong particle pixels
    panel.source_combo.setCurrentText("user")
    panel.factors_edit.setText("Fe: 1.0, Pt: 1.6")
    panel.quant_button.click()
    _wait(qtbot, panel)
    q = panel.last_quant.quant
    assert q.factor_source == "user"
    strong = truth["mask"] & ((truth["net_counts"]["Fe"] + truth["net_counts"]["Pt"]) > 150)
    err = viewer.layers["Fe at.% (CL)"].data[strong] - truth["atomic_percent"]["Fe"][strong]
    assert abs(np.median(err)) < 4

    # absorption from a thickness raises nothing for hard lines much, but runs and says so
    panel.thickness_spin.setValue(50.0)
    panel.quant_button.click()
    _wait(qtbot, panel)
    assert panel.last_quant.quant.absorption is not None and "Absorption corrected" in panel.quant_label.text()

    # zeta-factors with a dose: a mass-thickness layer; dose ×2 halves it
    panel.method_combo.setCurrentText("zeta-factor")
    panel.factors_edit.setText("Fe: 400, Pt: 700")
    panel.dose_edit.setText("1e6")
    panel.quant_button.click()
    _wait(qtbot, panel)
    m1 = viewer.layers["mass thickness (zeta)"].data.copy()
    panel.dose_edit.setText("2e6")
    panel.quant_button.click()
    _wait(qtbot, panel)
    m2 = viewer.layers["mass thickness (zeta)"].data
    ok = np.isfinite(m1) & (m1 > 0)
    np.testing.assert_allclose(m2[ok], m1[ok] / 2, rtol=0.05)


def test_bad_input_names_what_to_change(eds_dock, qtbot, messages):
    viewer, model, panel = eds_dock
    model.set_elements("Fe, Pt")
    n_layers = len(viewer.layers)
    panel.source_combo.setCurrentText("user")
    panel.factors_edit.setText("Fe: 1.0")
    assert panel.quantify() is None
    assert any("k-factor for Pt" in m and "theoretical" in m for kind, m in messages if kind == "error")
    panel.method_combo.setCurrentText("zeta-factor")
    panel.factors_edit.setText("Fe: 400, Pt: 700")
    panel.dose_edit.setText("lots")
    assert panel.quantify() is None
    assert any("Dose must be a number" in m for _kind, m in messages)
    assert len(viewer.layers) == n_layers
