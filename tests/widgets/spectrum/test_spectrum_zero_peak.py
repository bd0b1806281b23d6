"""A real Velox EDS spectrum image (hyperspy's test file, 50 x 10 px, 20 frames summed): its detector noise
peak at 0 keV holds ~30x the counts of any X-ray line. The counts axis fits the lines, as Velox shows them, not
the zero peak (which flattened every line to the floor); the energy axis still spans the whole spectrum."""

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
    assert x_low <= energy_kev[0] and x_high >= energy_kev[-1]  # nothing cut off the energy axis

    w.mode_combo.setCurrentText("EELS")  # as a user switches the Signal
    w.plot.log_check.setChecked(False)
    qtbot.waitUntil(lambda: view.viewRange()[1][1] >= zero_peak, timeout=5000)  # EELS: every count is signal
