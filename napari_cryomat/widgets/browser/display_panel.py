"""The browser's display controls: "View" (slab, binning, low-pass, contrast presets, cut lines) and
"3D" (volume or isosurface, auto-binning, the lazy volume computed in a worker). They only gather
parameters for :class:`~napari_cryomat.widgets.browser._model.BrowserModel` and reflect its state.

napari slices a lazy (dask) layer on the GUI thread, at every Z step. So a binned or low-passed
display volume that fits in memory is computed in the dock's worker first (progress, Cancel; the
newest choice replaces a running one) and napari is handed the array; bigger ones stay lazy.
"""

from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QPushButton, QWidget

from napari_cryomat.widgets._base import EventLinks, Section, TaskRunner, hbox, show_error, show_info
from napari_cryomat.widgets.browser._display import (
    BINNINGS,
    RENDERINGS,
    DisplayJob,
    compute_contrast,
    compute_display,
)
from napari_cryomat.widgets.browser._model import BrowserModel

__all__ = ["CONTRAST_PRESETS", "RenderSection", "ViewSection"]

CONTRAST_PRESETS = ((0.5, 99.5), (1.0, 99.0), (5.0, 95.0))


def _spin(lo: float, hi: float, decimals: int, tooltip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(lo, hi)
    spin.setDecimals(decimals)
    spin.setKeyboardTracking(False)  # typing "16" applies 16, not 1 then 16
    spin.setToolTip(tooltip)
    return spin


class ViewSection(Section):
    """Slab thickness (slices or Å), binning, Gaussian low-pass in Å, contrast presets, cut lines."""

    def __init__(self, model: BrowserModel, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__("View", parent=parent)
        self.model, self.runner = model, runner
        self.thickness = _spin(1, 100000, 0, "Mean over this many slices (or Å) around the cursor, in every view")
        self.thickness_unit = QComboBox()
        self.thickness_unit.addItems(["slices", "Å"])
        self.thickness_unit.setToolTip("Slab thickness unit: slices of the volume or angstrom")
        self.slab_info = QLabel()
        self.binning = QComboBox()
        self.binning.addItems([f"{b}x" for b in BINNINGS])
        self.binning.setToolTip("Show a mean-binned copy (computed in the background; a volume too big "
                                "to hold in memory is read section by section as it is shown)")
        self.lowpass = _spin(0, 10000, 1, "Gaussian low-pass σ in Å, for display only (0 = off)")
        self.lowpass.setSingleStep(5)
        self.lowpass.setSuffix(" Å")
        self.lowpass.setSpecialValueText("off")
        self.contrast_buttons = [self._contrast_button(p) for p in CONTRAST_PRESETS]
        self.show_cuts = QCheckBox("Show XZ/YZ cut lines in XY")
        self.show_cuts.setChecked(model.show_cuts)
        self.show_cuts.setToolTip("Draw where the XZ (yellow) and YZ (cyan) views cut the XY canvas")

        form_widget = QWidget()
        form = QFormLayout(form_widget)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Slab", hbox(self.thickness, self.thickness_unit))
        form.addRow("", self.slab_info)
        form.addRow("Binning", self.binning)
        form.addRow("Low-pass σ", self.lowpass)
        form.addRow("Contrast", hbox(*self.contrast_buttons))
        form.addRow("", self.show_cuts)
        self.add(form_widget)

        self.thickness.valueChanged.connect(lambda value: model.set_slab(value))
        self.thickness_unit.currentTextChanged.connect(model.set_thickness_unit)
        self._pending = None  # the newest display job not started yet (a worker is busy)
        self._latest = None  # the newest display job started: only its result is shown
        self._contrast_after = None  # a contrast preset asked for while a display job runs
        self.binning.currentIndexChanged.connect(lambda index: self.request_display(binning=BINNINGS[max(0, index)]))
        self.lowpass.valueChanged.connect(lambda sigma: self.request_display(sigma=sigma))
        self.show_cuts.toggled.connect(model.set_show_cuts)
        self.links = EventLinks(self)
        self.links.connect(model.display_changed, self.sync)
        self.sync()

    def _contrast_button(self, percentiles) -> QPushButton:
        lo, hi = percentiles
        button = QPushButton(f"{lo:g}-{hi:g} %")
        button.setToolTip(f"Contrast from the {lo:g} and {hi:g} percentiles of the visible slab")
        button.clicked.connect(lambda _=False: self.contrast(percentiles))
        return button

    def contrast(self, percentiles) -> None:
        """Percentile contrast of the visible slab, computed in a worker."""
        if self._latest is not None or self._pending is not None:
            self._contrast_after = percentiles  # of the volume being computed, once napari shows it
            return
        try:
            job = self.model.display.contrast_job(percentiles)
        except ValueError as exc:
            show_error(f"Tomogram browser: {exc}")
            return
        self.runner.start(compute_contrast, job, on_done=self.model.display.set_levels, label="Contrast")

    # ---- binning and low-pass: computed in a worker, the newest request wins ----
    def _wanted(self) -> tuple[int, float]:
        job = self._pending or self._latest
        if job is not None:
            return job.binning, job.sigma_angstrom
        return self.model.binning, self.model.sigma_angstrom

    def request_display(self, binning: int | None = None, sigma: float | None = None) -> None:
        """Show ``binning`` and low-pass σ (Å; None keeps the newest choice). napari slices a lazy
        layer on the GUI thread, so a display volume that fits in memory is computed in a worker
        first (progress, Cancel) and the viewer changes when it is ready; a newer request replaces
        a running one."""
        model = self.model
        old_binning, old_sigma = self._wanted()
        binning = old_binning if binning is None else int(binning)
        sigma = old_sigma if sigma is None else max(0.0, float(sigma))
        try:
            job = model.display.display_job(binning, sigma)
        except ValueError as exc:
            self._refuse_display(exc)
            return
        self._pending = job
        if self._latest is not None and self.runner.busy:
            self.runner.supersede()  # its result would be stale; the pending job starts after it
        if job is None:  # nothing to compute: the source, the volume held, or one too big to hold
            self._latest = None
            try:
                model.set_display(binning, sigma)
            except ValueError as exc:
                self._refuse_display(exc)
        elif self.runner.busy:  # a superseded display job (see _after_display) or the contrast
            if self._latest is None:
                self.runner.worker.finished.connect(self._start_pending)
            self.sync()
        else:
            self._start_pending()

    def _refuse_display(self, exc: ValueError) -> None:
        """A display the model refuses leaves the view as it was; the controls show it again."""
        show_error(f"Tomogram browser: {exc} Choose a smaller binning.")
        self.sync()

    def _start_pending(self) -> None:
        job, self._pending = self._pending, None
        if job is None or self.runner.busy:
            self._pending = self._pending or job
            return
        self._latest = job
        label = f"Display {job.binning}x" + (f", σ {job.sigma_angstrom:g} Å" if job.sigma_angstrom else "")
        worker = self.runner.start(compute_display, job, on_done=lambda volume: self._show_display(job, volume),
                                   label=label)
        worker.finished.connect(self._after_display)
        self.sync()

    def _show_display(self, job, volume) -> None:
        if job is not self._latest or self._pending is not None or job.source is not self.model.source:
            return  # superseded, or the user chose another tomogram meanwhile
        self.model.set_display(job.binning, job.sigma_angstrom, volume=volume)

    def _after_display(self) -> None:
        self._latest = None
        if self._pending is not None:
            self._start_pending()
            return
        self.sync()  # cancelled or failed: the controls show what napari shows
        percentiles, self._contrast_after = self._contrast_after, None
        if percentiles is not None:
            self.contrast(percentiles)

    def sync(self) -> None:
        """Show the model's values (it converts units and may change binning for 3D)."""
        model = self.model
        angstrom = model.thickness_unit == "Å"
        widgets = (self.thickness, self.thickness_unit, self.binning, self.lowpass)
        for widget in widgets:
            widget.blockSignals(True)
        self.thickness_unit.setCurrentText(model.thickness_unit)
        self.thickness.setDecimals(1 if angstrom else 0)
        self.thickness.setSingleStep(float(model.voxel_size[0]) if angstrom and model.source is not None else 1)
        self.thickness.setValue(model.thickness)
        binning, sigma = self._wanted()  # a display job in a worker shows its values
        self.binning.setCurrentIndex(BINNINGS.index(binning))
        self.lowpass.setValue(sigma)
        for widget in widgets:
            widget.blockSignals(False)
        self.slab_info.setText(model.slab_text() if model.source is not None else "")

    def set_2d_enabled(self, enabled: bool) -> None:
        """In 3D the rendered volume is fixed: binning, low-pass and slab are 2D browsing tools."""
        for widget in (self.binning, self.lowpass, self.thickness, self.thickness_unit):
            widget.setEnabled(enabled)


class RenderSection(Section):
    """3D rendering (MIP, attenuated MIP, isosurface) of the shown volume, binned to fit the GPU."""

    def __init__(self, model: BrowserModel, runner: TaskRunner, view: ViewSection, parent: QWidget | None = None):
        super().__init__("3D", expanded=False, parent=parent)
        self.model, self.runner, self.view = model, runner, view
        self.view3d = QCheckBox("Render in 3D")
        self.view3d.setToolTip("Render the volume in 3D (bins it first if it is too big for the GPU)")
        self.render_mode = QComboBox()
        self.render_mode.addItems(list(RENDERINGS))
        self.add(hbox(self.view3d, self.render_mode))
        self.view3d.toggled.connect(self._on_3d)
        self.render_mode.currentTextChanged.connect(model.display.set_rendering)
        self.links = EventLinks(self)
        self.links.connect(model.ndisplay_changed, self._on_ndisplay)

    def _on_3d(self, on: bool) -> None:
        if not on:
            if self.runner.busy:
                self.runner.cancel()
            self._set_3d(False)
            return
        model = self.model
        if model.source is None:
            show_error(f"Tomogram browser: {model.status}")
            self._set_3d(False)
            return
        need = model.display.binning_for_3d()
        binning, sigma = need or model.binning, model.sigma_angstrom
        if need is not None:
            nvox = int(model.source.data.size)
            show_info(f"3D rendering of {nvox:,} voxels: switching to {need}x binning so it fits the GPU.")
        lazy = model.display.volume_to_compute(binning, sigma)
        if lazy is None:  # the source itself, or the volume already in memory
            model.set_display(binning, sigma)
            self._set_3d(True)
            return
        # napari would compute the lazy binned / low-passed volume on the GUI thread: compute it in
        # a worker (progress, Cancel; the 2D view stays as it is) and render it once it is in memory.
        self.view.set_2d_enabled(False)
        job = DisplayJob(model.source, binning, sigma, lazy)
        worker = self.runner.start(compute_display, job, on_done=lambda volume: self._on_volume(job, volume),
                                   label="3D volume")
        if worker is None:
            self._set_3d(False)
        else:
            worker.errored.connect(lambda _exc: self._set_3d(False))

    def _on_volume(self, job, volume) -> None:
        model = self.model
        if job.source is not model.source or not self.view3d.isChecked():
            self.view.set_2d_enabled(True)
            return
        model.set_display(job.binning, job.sigma_angstrom, volume=volume)
        self._set_3d(True)

    def _set_3d(self, on: bool) -> None:
        self.view3d.blockSignals(True)
        self.view3d.setChecked(on)
        self.view3d.blockSignals(False)
        self.view.set_2d_enabled(not on)
        self.model.display.set_3d(on)

    def _on_ndisplay(self, ndisplay: int) -> None:
        """napari's own 2D/3D button: the check box and the locks follow."""
        if self.runner.busy:
            return
        self.view3d.blockSignals(True)
        self.view3d.setChecked(ndisplay == 3)
        self.view3d.blockSignals(False)
        self.view.set_2d_enabled(ndisplay != 3)
