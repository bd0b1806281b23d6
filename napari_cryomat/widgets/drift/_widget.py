"""Dock widget "Drift correction": the parameter form and the result panel around a DriftModel.

Every computation runs off the GUI thread: Align and Save in the TaskRunner (progress, Cancel),
the sum of a frame range in a "latest request wins" thread (dragging the range never queues).
Nothing in the viewer changes unless a run finishes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import EventLinks, LatestWins, ScrollPanel, TaskRunner, show_error, show_info
from napari_cryomat.widgets.drift._apply import ApplyPanel
from napari_cryomat.widgets.drift._apply_model import apply_request, apply_shifts, write_applied
from napari_cryomat.widgets.drift._model import DriftModel, run_alignment, save_run, sum_frames
from napari_cryomat.widgets.drift._params import ParametersPanel
from napari_cryomat.widgets.drift._results import ResultsPanel
from napari_cryomat.widgets.drift._run import AlignRun

if TYPE_CHECKING:
    import napari

__all__ = ["DriftCorrectionWidget"]


class DriftCorrectionWidget(QWidget):
    """Align the frames of a movie / fast STEM series / time series and view the result.

    Attributes
    ----------
    model : DriftModel
        The state (last run, its layers); scripts and tests can drive it directly.
    params : ParametersPanel
        The form (stack, calibration, settings) and the Align button.
    results : ResultsPanel
        Summary, before/after, frame range of the sum, plots, Save.
    runner : TaskRunner
        Progress bar and Cancel of Align and Save.
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = DriftModel(napari_viewer)
        self.params = ParametersPanel(napari_viewer)
        self.results = ResultsPanel()
        self.apply_panel = ApplyPanel(napari_viewer)
        self.runner = TaskRunner("Drift correction")
        self.sums = LatestWins(sum_frames, name="drift-frame-sum")
        self._accepting: Optional[Iterator[str]] = None  # layers of a finished run still being written

        panel = ScrollPanel()
        panel.add(self.params)
        panel.add(self.results, 1)
        panel.add(self.apply_panel)
        panel.add_footer(self.runner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel)

        self.links = EventLinks(self)
        self.links.connect(self.model.run_changed, self.results.show_run)
        self.links.connect(self.model.sum_changed, self.results.show_range)
        self.links.on_close(self.sums.stop)
        self.links.on_close(self._forget_accepting)
        self.sums.finished.connect(self._on_sum)
        self.params.run_button.clicked.connect(self.run)
        self.results.range_changed.connect(self.request_sum)
        self.results.show_aligned.toggled.connect(self.model.show_aligned)
        self.results.save_button.clicked.connect(self._save_clicked)
        self.links.connect(self.model.run_changed, self.apply_panel.enable)
        self.apply_panel.apply_button.clicked.connect(lambda _checked=False: self.apply_to_layer())

    @property
    def result(self) -> Optional[AlignRun]:
        """The last accepted run (None before the first Align finishes)."""
        return self.model.run

    # -- actions -------------------------------------------------------------------------------
    def run(self) -> None:
        """Align the chosen stack with the current parameters, in the background."""
        if self.runner.busy:
            show_error("Drift correction is still running; wait for it or press Cancel first.")
            return
        try:
            request = self.model.request(self.params.layer(), self.params.values())
        except ValueError as exc:
            show_error(str(exc))
            return
        self.sums.supersede()  # a frame-range sum of the previous run is of no use any more
        self.runner.start(run_alignment, request, on_done=self._accept, label="Drift correction")

    def apply_to_layer(self, layer=None) -> None:
        """Apply the last run's shifts to ``layer`` (default: the one chosen in "Apply shifts"), in the background.

        The result (a drift-corrected sum, or the aligned frames) is written as a new layer.
        """
        if self.runner.busy:
            show_error("Drift correction is still running; wait for it or press Cancel first.")
            return
        try:
            request = apply_request(self.model.run, layer if layer is not None else self.apply_panel.layers.layer(),
                                    summed=self.apply_panel.summed.isChecked())
        except ValueError as exc:
            show_error(str(exc))
            return
        self.runner.start(apply_shifts, request, on_done=lambda result: write_applied(self.viewer, result),
                          label="Applying shifts")

    def request_sum(self, start: int, stop: int) -> None:
        """Show the aligned sum of frames ``start:stop`` (computed in the background)."""
        request = self.model.sum_request(start, stop)
        if request is None:  # no run, or that range is shown already
            self.sums.supersede()
            if self.model.run is not None:
                self.results.show_range(*self.model.frame_range)
            return
        self.sums.submit(request)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the aligned stack (MRC) and shifts (CSV) now, on the calling thread (for scripts)."""
        return self.model.save(path)

    @property
    def idle(self) -> bool:
        """No Align, Save or frame-range sum is running."""
        return not self.runner.busy and self.sums.idle and self._accepting is None

    def _accept(self, run: AlignRun) -> None:
        """Write the run's layers one per event-loop turn (each napari layer added costs ~0.1 s)."""
        self._accepting = self.model.accept_steps(run)
        self._accept_next()

    def _forget_accepting(self) -> None:
        self._accepting = None  # the widget is gone: write no more layers

    def _accept_next(self) -> None:
        if self._accepting is None:
            return
        try:
            next(self._accepting)
        except StopIteration:
            self._accepting = None
            return
        QTimer.singleShot(1, self._accept_next)  # a timer, not 0: a posted call would run before input and paint

    # -- callbacks -----------------------------------------------------------------------------
    def _on_sum(self, job_id: int, request, result, error) -> None:
        if job_id != self.sums.latest:
            return
        if error is not None:
            show_error(f"Summing frames {request.start}-{request.stop - 1} failed: {error}")
            return
        self.model.accept_sum(request, result)

    def _save_clicked(self) -> None:
        run = self.model.run
        if run is None:
            show_error("Nothing to save yet: run the alignment first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save aligned stack", "aligned.mrc", "MRC (*.mrc *.mrcs)")
        if path:
            self.runner.start(save_run, run, path, on_done=self._saved, label="Saving")

    @staticmethod
    def _saved(paths: tuple[Path, Path]) -> None:
        show_info("Saved {} and {}.".format(*paths))
