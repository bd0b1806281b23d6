"""A real Velox EDS spectrum image (hyperspy's test file, 50 x 10 px, 20 frames summed): its detector noise
peak at 0 keV holds ~30x the counts of any X-ray line. The counts axis fits the lines, as Velox shows them, not
the zero peak (which flattened every line to the floor); the energy axis runs from 0 to the end of the spectrum
(a 300 kV beam excites past it). A 10 kV Bruker SEM map on an 80 keV axis: the energy axis ends at the beam energy,
where the continuum ends, and follows the Beam control."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[2] / "io"))
from corpus import corpus_file  # noqa: E402

NAME = "fei_SI_SuperX-HAADF_20frames_10x50.emd"


def test_eds_counts_axis_fits_the_lines_not_the_zero_peak(spectrum_dock, qtbot):
    path = corpus_file(NAME)
    viewer, w = spectrum_dock(show=True)  # pyqtgraph ranges its view when it paints
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        viewer.open(str(path), plugin="napari-cryomat")
    assert w.si_combo.currentText() == "EDS" and w.mode == "EDS"
    assert viewer.layers["HAADF"].visible and not viewer.layers["EDS"].visible  # the image to navigate by
    w.plot.roi_button.click()
    viewer.layers["spectrum ROI"].add_rectangles(np.array([[0, 0], [49, 9]], float))  # the whole SI
    qtbot.waitUntil(lambda: w.model.roi_spectrum is not None, timeout=30000)
    energy_kev = w.plot.roi_curve.xData
    counts = w.plot.roi_curve.yData
    zero_peak = counts[energy_kev < 0.2].max()
    lines = counts[energy_kev >= 0.2].max()
    assert zero_peak > 5 * lines  # the file's own noise peak: what made the plot a flat line
    view = w.plot.plot.getViewBox()
    qtbot.waitUntil(lambda: lines <= view.viewRange()[1][1] < zero_peak / 2, timeout=5000)
    (x_low, x_high), (_y_low, y_high) = view.viewRange()
    assert lines <= y_high <= 1.2 * lines  # the tallest X-ray line fills the plot
    pad = 0.1 * (energy_kev[-1] - max(0.0, energy_kev[0]))  # pyqtgraph pads a fitted range by a few %
    assert energy_kev[0] < 0 and -pad < x_low < 0  # EDS from 0 keV, as Velox and DigitalMicrograph show it
    assert energy_kev[-1] <= x_high < energy_kev[-1] + pad  # the 300 kV beam excites past the axis end

    w.mode_combo.setCurrentText("EELS")  # as a user switches the Signal
    w.plot.log_check.setChecked(False)
    qtbot.waitUntil(lambda: view.viewRange()[1][1] >= zero_peak, timeout=5000)  # EELS: every count is signal


def test_eds_energy_axis_ends_at_the_beam_energy(spectrum_dock, qtbot):
    path = corpus_file("over16bit.bcf")  # hyperspy's Bruker XFlash map: 10 kV, 20 eV channels from -1 to 80 keV
    viewer, w = spectrum_dock(show=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        viewer.open(str(path), plugin="napari-cryomat")
    w.si_combo.setCurrentText("EDX")
    assert w.mode == "EDS" and w.eds.beam_spin.value() == 10.0  # as the file records
    qtbot.waitUntil(lambda: w.plot.curve.xData is not None and len(w.plot.curve.xData) > 0, timeout=30000)
    energy_kev, counts = w.plot.curve.xData, w.plot.curve.yData
    assert energy_kev[0] < -0.5 and energy_kev[-1] > 70
    assert " µm" in w.plot.cursor_label.text()  # a 0.5 mm pixel: its position in µm, not "10317744 Å"
    assert counts[energy_kev > 10.5].sum() < 1e-3 * counts[(energy_kev > 0.1) & (energy_kev < 10)].sum()  # Duane-Hunt
    view = w.plot.plot.getViewBox()

    def shows(low, high):  # the view spans low..high keV, give or take pyqtgraph's padding of a few %
        (x_low, x_high), pad = view.viewRange()[0], 0.1 * (high - low)
        return low - pad < x_low <= low and high <= x_high < high + pad

    qtbot.waitUntil(lambda: shows(0.0, 10.5), timeout=5000)  # 0 to a little past the beam energy

    w.eds.beam_spin.setValue(20.0)  # the user corrects the beam energy: the axis follows
    qtbot.waitUntil(lambda: shows(0.0, 21.0), timeout=5000)
    w.mode_combo.setCurrentText("EELS")  # EELS: the whole axis
    qtbot.waitUntil(lambda: view.viewRange()[0][1] >= energy_kev[-1], timeout=5000)
    assert view.viewRange()[0][0] <= energy_kev[0]
