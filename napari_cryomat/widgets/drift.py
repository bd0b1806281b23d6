"""Dock widget "Drift correction": align a (T, Y, X) stack, show sums, trajectory, residuals, FRC.

Thin: it gathers parameters, runs :mod:`napari_cryomat.core.drift` in a worker (TaskRunner) and
shows the results. Nothing in the viewer changes unless the run finishes.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.batch import write_shifts_csv, write_stack_mrc
from napari_cryomat.core import drift as core
from napari_cryomat.core._progress import report
from napari_cryomat.widgets._common import LayerCombo, TaskRunner, pixel_size_of, show_error, show_info

if TYPE_CHECKING:
    import napari

# method name -> estimate_drift options
METHODS = {
    "Low-dose movie (all pairs + sum of others)": dict(pair_band=None, iterations=None),
    "Time series (neighbouring frames only)": dict(pair_band=2, iterations=0),
}
PATCHES = {"Global only": None, "2 × 2 patches": (2, 2), "3 × 3 patches": (3, 3), "4 × 4 patches": (4, 4)}


def align_stack(frames, *, pixel_size, bfactor, max_shift, group, method, patches, dose_per_frame,
                progress=None):
    """Everything one Run computes (in a worker): shifts, aligned stack, sums, FRC.

    Returns a dict; raises ValueError for bad input (shown to the user by TaskRunner).
    """
    def sub(lo, hi):
        return None if progress is None else (lambda f: progress(lo + (hi - lo) * f))

    opts = dict(METHODS[method])
    res = core.estimate_drift(frames, pixel_size=pixel_size, bfactor=bfactor, max_shift=max_shift,
                              group=group, patches=patches, progress=sub(0.0, 0.6), **opts)
    aligned = core.apply_drift(frames, res.shifts, local=res.local)
    lazy = hasattr(aligned, "compute")
    zero = np.zeros_like(res.shifts)
    if lazy:
        total = core.aligned_sum(frames, res.shifts, local=res.local, progress=sub(0.6, 0.75))
    else:
        total = aligned.sum(0)
        report(progress, 0.75)
    dw = None
    if dose_per_frame and dose_per_frame > 0:
        dw = core.dose_weighted_sum(aligned, zero, pixel_size=pixel_size, dose_per_frame=dose_per_frame,
                                    progress=sub(0.75, 0.88))
    fr = core.frc_vs_dose(aligned, zero, pixel_size=pixel_size,
                          dose_per_frame=dose_per_frame if dose_per_frame else None, progress=sub(0.88, 1.0))
    return dict(result=res, aligned=aligned, sum=total, dw=dw, frc=fr)


class DriftCorrectionWidget(QWidget):
    """Align the frames of a movie / fast STEM series / time series and view the result."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.result: Optional[dict] = None
        self._source = None  # the layer the last result belongs to
        self._layers: dict[str, object] = {}

        self.layer_combo = LayerCombo(napari_viewer, self._image_type(), predicate=lambda l: l.ndim == 3)
        self.layer_combo.currentIndexChanged.connect(self._layer_changed)

        self.pixel_size = QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=1e5, value=1.0, suffix=" Å")
        self.pixel_size.setToolTip("Pixel size. Taken from the layer scale; change it if the layer is uncalibrated.")
        self.bfactor = QDoubleSpinBox(decimals=0, minimum=0, maximum=1e5, value=150, singleStep=50, suffix=" Å²")
        self.bfactor.setToolTip("Low-pass exp(-B k²/4) on the correlations. 150 for movies; 500-2000 at very low dose.")
        self.max_shift = QDoubleSpinBox(decimals=1, minimum=0, maximum=1e6, value=0, suffix=" Å")
        self.max_shift.setSpecialValueText("auto (¼ frame)")
        self.max_shift.setToolTip("Largest drift searched between two frames. 0 = a quarter of the frame.")
        self.group = QSpinBox(minimum=0, maximum=50, value=0)
        self.group.setSpecialValueText("auto")
        self.group.setToolTip("Frames summed before correlating. auto picks the smallest that is above noise.")
        self.dose = QDoubleSpinBox(decimals=3, minimum=0, maximum=1e4, value=0, singleStep=0.1, suffix=" e/Å²")
        self.dose.setSpecialValueText("unknown")
        self.dose.setToolTip("Dose per frame, for dose weighting (Grant & Grigorieff 2015) and the FRC dose axis.")
        self.patches = QComboBox()
        self.patches.addItems(list(PATCHES))
        self.method = QComboBox()
        self.method.addItems(list(METHODS))

        form = QFormLayout()
        form.addRow("Stack", self.layer_combo)
        form.addRow("Pixel size", self.pixel_size)
        form.addRow("Dose per frame", self.dose)
        form.addRow("B-factor", self.bfactor)
        form.addRow("Max shift", self.max_shift)
        form.addRow("Group frames", self.group)
        form.addRow("Local motion", self.patches)
        form.addRow("Method", self.method)

        self.run_button = QPushButton("Align")
        self.runner = TaskRunner("Drift correction")

        # results
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.show_aligned = QCheckBox("Show aligned (uncheck: before)")
        self.show_aligned.setChecked(True)
        self.show_aligned.setEnabled(False)
        self.show_aligned.toggled.connect(self._toggle_before_after)
        self.range_start = QSpinBox(minimum=0, maximum=0)
        self.range_stop = QSpinBox(minimum=1, maximum=1)
        self.range_start.valueChanged.connect(self._update_running_sum)
        self.range_stop.valueChanged.connect(self._update_running_sum)
        rng = QHBoxLayout()
        rng.addWidget(QLabel("Running sum of frames"))
        rng.addWidget(self.range_start)
        rng.addWidget(QLabel("up to (excl.)"))
        rng.addWidget(self.range_stop)
        self.save_button = QPushButton("Save aligned stack + shifts…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._save_clicked)

        self.plots = self._make_plots()

        results = QGroupBox("Result")
        rl = QVBoxLayout(results)
        rl.addWidget(self.summary)
        rl.addWidget(self.show_aligned)
        rl.addLayout(rng)
        rl.addWidget(self.plots)
        rl.addWidget(self.save_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        layout.addWidget(self.runner)
        layout.addWidget(results)
        layout.addStretch(1)

        self.run_button.clicked.connect(self.run)
        self._layer_changed()

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _image_type():
        from napari.layers import Image

        return (Image,)

    def _make_plots(self) -> QTabWidget:
        import pyqtgraph as pg

        tabs = QTabWidget()
        tabs.setMinimumHeight(220)
        self.traj_plot = pg.PlotWidget()
        self.traj_plot.setLabel("bottom", "x drift", units="Å")
        self.traj_plot.setLabel("left", "y drift", units="Å")
        self.traj_plot.invertY(True)
        self.traj_plot.setAspectLocked(True)
        self.resid_plot = pg.PlotWidget()
        self.resid_plot.setLabel("bottom", "frame")
        self.resid_plot.setLabel("left", "residual", units="Å")
        self.frc_plot = pg.PlotWidget()
        self.frc_plot.setLabel("bottom", "spatial frequency (1/Å)")
        self.frc_plot.setLabel("left", "FRC even/odd")
        self.frc_plot.addLegend(offset=(-10, 10))
        self.res_plot = pg.PlotWidget()
        self.res_plot.setLabel("left", "resolution at FRC 0.143 (Å)")
        self.res_plot.setLabel("bottom", "cumulative dose")
        for plot, name in ((self.traj_plot, "Trajectory"), (self.resid_plot, "Residuals"),
                           (self.frc_plot, "FRC"), (self.res_plot, "Resolution vs dose")):
            plot.setBackground("k")
            for ax in ("bottom", "left"):
                plot.getAxis(ax).enableAutoSIPrefix(False)  # 0.25 1/Å, not "250 (x0.001)"
            tabs.addTab(plot, name)
        return tabs

    def _layer_changed(self, *args) -> None:
        layer = self.layer_combo.layer()
        if layer is not None:
            self.pixel_size.setValue(pixel_size_of(layer))
            md = getattr(layer, "metadata", {}) or {}
            if "dose_per_frame_e_per_A2" in md:
                self.dose.setValue(float(md["dose_per_frame_e_per_A2"]))

    def parameters(self) -> dict:
        return dict(
            pixel_size=self.pixel_size.value(),
            bfactor=self.bfactor.value(),
            max_shift=self.max_shift.value() or None,
            group=self.group.value() or None,
            method=self.method.currentText(),
            patches=PATCHES[self.patches.currentText()],
            dose_per_frame=self.dose.value() or None,
        )

    # -- run -----------------------------------------------------------------------------------
    def run(self) -> None:
        layer = self.layer_combo.layer()
        if layer is None:
            show_error("Drift correction: open or choose a (T, Y, X) image stack first.")
            return
        if getattr(layer, "rgb", False):
            show_error("Drift correction: this is an RGB image; it needs a grey-level stack of frames.")
            return
        data = layer.data
        if isinstance(data, (list, tuple)):  # multiscale: align the full resolution level
            data = data[0]
        self._pending_source = layer
        self.runner.start(align_stack, data, on_done=self._on_done, **self.parameters())

    def _on_done(self, out: dict) -> None:
        source = self._pending_source
        self.result = out
        self._source = source
        res: core.DriftResult = out["result"]
        px = res.pixel_size
        name = source.name
        scale2 = (px, px)
        units2 = ("angstrom", "angstrom")
        self._set_layer("aligned", out["aligned"], name=f"{name} aligned",
                        scale=(source.scale[0], px, px), units=(source.units[0], "angstrom", "angstrom"),
                        contrast_limits=source.contrast_limits, colormap="gray",
                        metadata={"shifts_px": res.shifts, "pixel_size_angstrom": px})
        self._set_layer("sum", out["sum"], name=f"{name} aligned sum", scale=scale2, units=units2, colormap="gray")
        if out["dw"] is not None:
            self._set_layer("dw", out["dw"], name=f"{name} dose-weighted sum", scale=scale2, units=units2,
                            colormap="gray")
        n = res.shifts.shape[0]
        self.range_start.blockSignals(True)
        self.range_stop.blockSignals(True)
        self.range_start.setMaximum(n - 1)
        self.range_stop.setMaximum(n)
        self.range_start.setValue(0)
        self.range_stop.setValue(n)
        self.range_start.blockSignals(False)
        self.range_stop.blockSignals(False)
        self._update_running_sum()
        self.show_aligned.setEnabled(True)
        self.show_aligned.setChecked(True)
        self._toggle_before_after(True)
        self.save_button.setEnabled(True)
        self._plot(out)
        fr = out["frc"]
        final_res = fr.resolution[-1] if len(fr.resolution) else np.nan
        self.summary.setText(
            f"{n} frames, group {res.group}; total drift {res.total_drift:.1f} Å; "
            f"pairs kept {100 * res.inlier_fraction:.0f}%; quality {res.quality:.1f}; "
            f"FRC 0.143 resolution {final_res:.1f} Å"
        )

    def _set_layer(self, key: str, data, **kwargs):
        layer = self._layers.get(key)
        if layer is not None and layer in self.viewer.layers:
            layer.data = data
            for k in ("scale", "metadata", "name"):
                if k in kwargs:
                    setattr(layer, k, kwargs[k])
        else:
            layer = self.viewer.add_image(data, **kwargs)
            self._layers[key] = layer
        return layer

    def _plot(self, out: dict) -> None:
        import pyqtgraph as pg

        res = out["result"]
        sa = res.shifts_angstrom
        self.traj_plot.clear()
        self.traj_plot.plot(sa[:, 1], sa[:, 0], pen=pg.mkPen("c", width=2), symbol="o", symbolSize=5,
                            symbolBrush="c")
        self.traj_plot.plot([sa[0, 1]], [sa[0, 0]], pen=None, symbol="s", symbolSize=9, symbolBrush="y")
        self.resid_plot.clear()
        x = np.arange(len(res.residuals))
        self.resid_plot.addItem(pg.BarGraphItem(x=x, height=res.residuals * res.pixel_size, width=0.8, brush="m"))
        fr = out["frc"]
        self.frc_plot.clear()
        colors = [pg.intColor(i, hues=max(len(fr.curves), 2)) for i in range(len(fr.curves))]
        for c, curve, d in zip(colors, fr.curves, fr.dose):
            unit = " e/Å²" if self.parameters()["dose_per_frame"] else " frames"
            self.frc_plot.plot(fr.frequency, curve, pen=pg.mkPen(c, width=2), name=f"{d:g}{unit}")
        self.frc_plot.addItem(pg.InfiniteLine(pos=fr.threshold, angle=0, pen=pg.mkPen("w", style=Qt.DashLine)))
        self.res_plot.clear()
        self.res_plot.setLabel("bottom", "cumulative dose (e/Å²)" if self.parameters()["dose_per_frame"]
                               else "frames summed")
        ok = np.isfinite(fr.resolution)
        self.res_plot.plot(fr.dose[ok], fr.resolution[ok], pen=pg.mkPen("y", width=2), symbol="o", symbolSize=6)

    # -- interactive controls ------------------------------------------------------------------
    def _update_running_sum(self, *args) -> None:
        if self.result is None:
            return
        a, b = self.range_start.value(), self.range_stop.value()
        if b <= a:
            return
        aligned = self.result["aligned"]
        part = aligned[a:b].sum(0)
        if hasattr(part, "compute"):
            part = part.compute()
        px = self.result["result"].pixel_size
        self._set_layer("running", np.asarray(part, np.float32), name=f"{self._source.name} frames {a}-{b - 1}",
                        scale=(px, px), units=("angstrom", "angstrom"), colormap="gray")
        layer = self._layers["running"]
        layer.name = f"{self._source.name} frames {a}-{b - 1}"
        layer.reset_contrast_limits()

    def _toggle_before_after(self, aligned: bool) -> None:
        lay = self._layers.get("aligned")
        if lay is None or self._source is None:
            return
        if lay in self.viewer.layers:
            lay.visible = bool(aligned)
        if self._source in self.viewer.layers:
            self._source.visible = not bool(aligned)

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save aligned stack", "aligned.mrc", "MRC (*.mrc)")
        if path:
            try:
                mrc, table = self.save(path)
            except (OSError, ValueError) as exc:
                show_error(f"Saving failed: {exc}")
                return
            show_info(f"Saved {mrc} and {table}.")

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the aligned stack as MRC (voxel size kept) and the shifts as CSV next to it."""
        if self.result is None:
            raise ValueError("Nothing to save yet: run the alignment first.")
        res = self.result["result"]
        path = Path(path)
        if path.suffix.lower() not in (".mrc", ".mrcs"):
            path = path.with_suffix(".mrc")
        aligned = self.result["aligned"]
        # The viewer shows rows top-down, MRC stores them bottom-up (3dmod's convention, as the
        # plugin's MRC writers do). So the stack is written with its rows reversed and the table
        # gives dy along the file's rows: both then match what `cryomat align` writes for the same
        # movie, and the stack opens in IMOD (and here) looking as it did on screen.
        write_stack_mrc(path, aligned[..., ::-1, :], res.pixel_size)
        table = path.with_name(path.stem + "_shifts.csv")
        write_shifts_csv(table, dataclasses.replace(res, shifts=res.shifts * np.array([-1.0, 1.0])))
        return path, table
