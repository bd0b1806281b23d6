"""The drift tool's result panel: summary, before/after, the summed frame range, plots, Save."""

from __future__ import annotations

from typing import Optional

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QGroupBox, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import hbox, show_warning
from napari_cryomat.widgets.drift._plots import DriftPlots
from napari_cryomat.widgets.drift._run import NO_COMMON_STRUCTURE, AlignRun
from napari_cryomat.widgets.drift._volume import VolumeRun

__all__ = ["ResultsPanel"]


class ResultsPanel(QGroupBox):
    """Shows one run; asks (by signals) for another frame range or a save, computes nothing.

    Signals
    -------
    range_changed(int, int)
        The user chose frames ``start:stop`` for the aligned sum.
    """

    range_changed = Signal(int, int)

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__("Result", parent)
        self.summary = QLabel("Align a stack to see its drift here.")
        self.summary.setWordWrap(True)
        self.show_aligned = QCheckBox("Show aligned (uncheck: before)")
        self.show_aligned.setChecked(True)
        self.show_aligned.setEnabled(False)
        self.show_aligned.setToolTip("Uncheck to see the original stack alone (the result layers are hidden "
                                     "meanwhile); check to bring the result back.")
        # both ends inclusive, as the note under them and napari's frame slider read: "0 - 23" of 24 frames sums
        # all 24 (an exclusive end beside "holds frames 0-23" made a user type 23 and lose the last frame)
        self.range_start = QSpinBox(minimum=0, maximum=0)
        self.range_last = QSpinBox(minimum=0, maximum=0)
        self.range_start.setToolTip("First frame in the aligned sum layer.")
        self.range_last.setToolTip("Last frame in the aligned sum layer (included).")
        for box in (self.range_start, self.range_last):
            # Qt 6's spin box asks ~130 px whatever its range, which pushed the dock past 420 px under PyQt6;
            # 108 px holds a 5-digit frame number beside the arrows
            box.setMaximumWidth(108)
            # a sum when the number is typed (Enter, or leaving the box) or stepped, not per keystroke: typing 12
            # summed frames 1-9 at the "1", and that sum's note then contradicted the boxes' 12 - 9
            box.setKeyboardTracking(False)
            box.setEnabled(False)
            box.valueChanged.connect(self._range_edited)
        self.range_note = QLabel("")
        self.range_note.setWordWrap(True)
        self.plots = DriftPlots()
        self.save_button = QPushButton("Save aligned stack + shifts…")
        self.save_button.setEnabled(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.show_aligned)
        # "Sum frames [a] – [b]", both included: a row this short keeps the dock within ~400 px on a 1366 px laptop
        layout.addWidget(hbox(QLabel("Sum frames"), self.range_start, QLabel("–"), self.range_last,
                              stretch_last=True))
        layout.addWidget(self.range_note)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.save_button)

    # -- public API ------------------------------------------------------------------------------
    def show_run(self, run: AlignRun | VolumeRun) -> None:
        """Show ``run``: its summary and plots, the full frame range, before/after and Save enabled
        (a series of volumes has no sums and no Save: its frame range and Save stay disabled)."""
        n, stack = run.n_frames, not isinstance(run, VolumeRun)
        for box, maximum, value in ((self.range_start, n - 1, 0), (self.range_last, n - 1, n - 1)):
            box.blockSignals(True)
            box.setMaximum(maximum)
            box.setValue(value)
            box.setEnabled(stack)
            box.blockSignals(False)
        if stack:
            self.show_range(0, n)
        else:
            self.range_note.setText("Volumes: the aligned series is the result (sums, dose weighting, FRC and Save "
                                    "are for (T, Y, X) stacks; save it with File > Save Selected Layers...).")
        self.show_aligned.blockSignals(True)
        self.show_aligned.setChecked(True)
        self.show_aligned.setEnabled(True)
        self.show_aligned.blockSignals(False)
        self.save_button.setEnabled(stack)
        self.summary.setText(run.summary())
        self.plots.draw(run)
        if stack and not run.shares_structure:
            show_warning(f"Drift correction of {run.request.source_name}: {NO_COMMON_STRUCTURE}.")

    def show_range(self, start: int, stop: int) -> None:
        """Say which frames the aligned sum layer holds now (unless the boxes hold an empty range: that note stays
        beside them until they are corrected)."""
        if self._empty_range():
            return
        self.range_note.setText(f"The aligned sum layer holds frames {start}-{stop - 1}.")

    @property
    def frame_range(self) -> tuple[int, int]:
        """(start, stop) as Python slices them: frames ``start`` to ``stop - 1``, the two the user typed."""
        return self.range_start.value(), self.range_last.value() + 1

    def _empty_range(self) -> bool:
        start, stop = self.frame_range
        return self.range_start.isEnabled() and stop <= start

    def _range_edited(self, *_args) -> None:
        start, stop = self.frame_range
        if self._empty_range():
            self.range_note.setText(f"Empty range: first frame after last ({start} > {stop - 1}); the last frame "
                                    f"must be frame {start} or later. The aligned sum layer is unchanged.")
            return
        self.range_note.setText(f"Summing frames {start}-{stop - 1}…")
        self.range_changed.emit(start, stop)
