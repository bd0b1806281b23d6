"""The Spectrum imaging dock starts from the beam energy, detector resolution and angles the file records
(``metadata["acquisition"]``), says so, and keeps the user's values where the file says nothing. On
exSpy's real TM002 (a 10 kV SEM spectrum) Identify then finds its elements; at the dock's 200 kV it found
Br, Ag and O and missed Cu and Al."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_cryomat.io.spectral import spectrum_image_layer

sys.path.insert(0, str(Path(__file__).parents[2] / "io"))
from corpus import ensure_corpus  # noqa: E402


def _add(viewer, name, signal_type, acquisition):
    energy = np.arange(200) * 10.0 + 100.0
    si = np.random.default_rng(0).poisson(5.0, (6, 7, 200)).astype(np.float32)
    data, kwargs, _ = spectrum_image_layer(si, energy_offset=energy[0], energy_scale=10.0, name=name,
                                           signal_type=signal_type,
                                           metadata={"acquisition": acquisition} if acquisition else None)
    return viewer.add_image(data, **kwargs)


def _open_corpus_file(viewer, name):
    root, why = ensure_corpus()
    if root is None:
        pytest.skip(why)
    path = next(root.rglob(name), None)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        viewer.open(str(path), plugin="napari-cryomat")
    return viewer.layers[-1]


def test_dock_starts_from_what_the_file_records(spectrum_dock, messages):
    viewer, widget = spectrum_dock()
    _add(viewer, "SEM map", "EDS", {"beam_energy_kev": 10.0, "eds_fwhm_mn_ka_ev": 128.5, "eds_take_off_deg": 35.0})
    widget.si_combo.set_layer(viewer.layers["SEM map"])
    assert widget.eds.beam_spin.value() == 10.0 and widget.fwhm_spin.value() == 128.5
    assert widget.eds.toa_spin.value() == 35.0 and widget.model.fwhm == 128.5
    assert widget.eels.e0_spin.value() == 200.0  # 10 kV is no EELS beam: that control keeps its value
    assert any("SEM map" in m and "beam 10 kV" in m and "128.5 eV" in m for m in messages["info"])

    # a file that records nothing leaves the user's values as they are, and says nothing
    said = len(messages["info"])
    widget.fwhm_spin.setValue(140.0)
    _add(viewer, "unknown", "EDS", None)
    widget.si_combo.set_layer(viewer.layers["unknown"])
    assert widget.eds.beam_spin.value() == 10.0 and widget.fwhm_spin.value() == 140.0
    assert len(messages["info"]) == said

    _add(viewer, "EELS SI", "EELS", {"beam_energy_kev": 300.0, "eels_convergence_mrad": 21.5,
                                     "eels_collection_mrad": 38.0})
    widget.si_combo.set_layer(viewer.layers["EELS SI"])
    assert widget.mode == "EELS"
    assert (widget.eels.e0_spin.value(), widget.eels.alpha_spin.value(), widget.eels.beta_spin.value()) == \
        (300.0, 21.5, 38.0)


def test_real_tm002_identified_at_its_own_beam_energy(spectrum_dock, qtbot, messages):
    viewer, widget = spectrum_dock()
    widget.si_combo.set_layer(_open_corpus_file(viewer, "EDS_SEM_TM002.hspy"))
    assert widget.eds.beam_spin.value() == 10.0 and widget.fwhm_spin.value() == 130.0
    assert widget.eds.toa_spin.value() == 37.0
    assert widget.identify() is not None
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=120000)
    assert set(widget.eds.identification.elements) == {"Mn", "Zr", "Cu", "C", "Al", "Ar"}


def test_real_bruker_files_give_their_detector_resolution(spectrum_dock, messages):
    viewer, widget = spectrum_dock()
    layer = _open_corpus_file(viewer, "bruker_nano.spx")  # XFlash 5010, 15 kV, 35° (hyperspy's test file)
    widget.si_combo.set_layer(layer)
    assert widget.eds.beam_spin.value() == 15.0 and widget.eds.toa_spin.value() == 35.0
    assert widget.fwhm_spin.value() == pytest.approx(124.9, abs=0.1)
    assert any("124.9 eV" in m for m in messages["info"])


def test_micro_xrf_spectrum_is_not_identified_as_eds(spectrum_dock, messages):
    """hyperspy's M6 Jetstream spectrum (Rh tube, 50 kV): identification as EDS gave Eu, Ho, In, Ir, Sc and
    missed 23 of the 32 elements its operator listed. The dock says what the spectrum is and refuses."""
    viewer, widget = spectrum_dock()
    layer = _open_corpus_file(viewer, "bruker_m6_jetstream_file_example.spx")
    assert layer.metadata["acquisition"]["xray_tube_kv"] == 50.0
    assert "beam_energy_kev" not in layer.metadata["acquisition"]
    beam = widget.eds.beam_spin.value()
    widget.si_combo.set_layer(layer)
    assert widget.eds.beam_spin.value() == beam  # the tube's 50 kV is no beam energy
    assert any("micro-XRF" in m and "50 kV" in m for m in messages["warning"])
    elements, layers = widget.elements_edit.text(), len(viewer.layers)
    assert widget.identify() is None and widget.eds.quantify() is None
    assert sum("micro-XRF" in m and layer.name in m for m in messages["error"]) == 2
    assert widget.elements_edit.text() == elements and len(viewer.layers) == layers
    widget.set_elements("Fe, Cu")  # typed elements still work
    assert [el.split("_")[0] for el in widget.elements()] == ["Fe", "Cu"]


def test_tia_eds_spectrum_opens_as_eds_at_its_beam(spectrum_dock, messages):
    """hyperspy's FEI TIA EDS spectrum (10 eV channels to 39.8 keV, 300 kV): the file gives no signal type and
    rosettasciio no beam energy; the dock switches to EDS, takes 300 kV and says that the type was inferred."""
    viewer, widget = spectrum_dock()
    widget.mode_combo.setCurrentText("EELS")
    layer = _open_corpus_file(viewer, "no_AcquireDate.emi")
    assert layer.metadata["spectrum_image"]["signal_type"] == "EDS"
    viewer.layers.clear()
    layer = _open_corpus_file(viewer, "more_ser_then_emi_metadata.emi")
    first = viewer.layers[0]
    assert first.metadata["acquisition"] == {"beam_energy_kev": 300.0}
    widget.si_combo.set_layer(first)
    assert widget.mode == "EDS" and widget.eds.beam_spin.value() == 300.0
    assert any("more_ser_then_emi_metadata 1: taken as EDS by its energy axis" in m and "39.8 keV" in m
               for m in messages["info"])
