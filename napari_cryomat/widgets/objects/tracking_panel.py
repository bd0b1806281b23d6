"""Tracking a time series: link the measured objects frame to frame (in a worker), show the tracks
and the objects coloured by track, and plot each track's growth in the same colour."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QPushButton, QSpinBox, QWidget

from napari_cryomat.core.tracking import LINKERS
from napari_cryomat.widgets._base import EmptyPlotNote, TaskRunner, palette_colour, room_for_axis_label, show_error
from napari_cryomat.widgets.objects._jobs import compute_track
from napari_cryomat.widgets.objects._model import ObjectsModel
from napari_cryomat.widgets.objects._view import narrow_plot, start_job

__all__ = ["TrackingPanel"]

# the linker choices: (label, core method, merges and splits)
LINKER_CHOICES = (
    ("trackpy (fast)", "trackpy", False),
    ("laptrack", "laptrack", False),
    ("laptrack, merges & splits", "laptrack", True),
)

# the motion choices: (label, core motion, what it assumes)
MOTION_CHOICES = (
    ("auto (measured)", "auto", "measure the stage drift and each object's persistence on a first linking, "
                                "and use what shortens the steps"),
    ("diffusion", "none", "each object is looked for where it was (random, undirected motion)"),
    ("drift", "drift", "all objects move with the stage drift, measured from a first linking"),
    ("directed", "directed", "each object keeps its own recent velocity, on top of the drift (trackpy only)"),
)


class TrackingPanel(QWidget):
    """Linker, largest move, gap closing, Track, and the growth curves of the last tracking."""

    def __init__(self, model: ObjectsModel, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        import pyqtgraph as pg

        self.model = model
        self.runner = runner
        self.max_distance_spin = QDoubleSpinBox()
        self.max_distance_spin.setRange(1, 1e6)
        self.max_distance_spin.setValue(60.0)
        self.max_distance_spin.setSuffix(" Å")
        self.max_distance_spin.setToolTip("Largest move of an object between frames, drift included.")
        self.gap_spin = QSpinBox()
        self.gap_spin.setRange(0, 10)
        self.gap_spin.setValue(1)
        self.gap_spin.setToolTip("Frames an object may be missed and still keep its track.")
        self.linker_combo = QComboBox()
        for label, method, splits in LINKER_CHOICES:
            self.linker_combo.addItem(label)
            tip = LINKERS[method] + (" — follows objects that coalesce or break up" if splits else "")
            self.linker_combo.setItemData(self.linker_combo.count() - 1, tip, 3)  # Qt.ToolTipRole
        self.linker_combo.setToolTip("trackpy: fast, for objects that stay one object (growth, drift).\n"
                                     "laptrack: global assignment; the only one that follows merges and splits.")
        self.motion_combo = QComboBox()
        for label, _motion, tip in MOTION_CHOICES:
            self.motion_combo.addItem(label)
            self.motion_combo.setItemData(self.motion_combo.count() - 1, tip[0].upper() + tip[1:] + ".", 3)
        self.motion_combo.setToolTip("Where each object is looked for in the next frame. 'auto' measures it; the "
                                     "message after tracking says what was assumed.")
        self.linker_note = QLabel()
        self.linker_note.setWordWrap(True)
        self.track_button = QPushButton("Track")
        self.growth_plot = room_for_axis_label(narrow_plot(pg.PlotWidget()))
        self.growth_plot.setMinimumHeight(120)
        self.growth_plot.setMaximumHeight(220)
        # no legend (it would cover the curves of a small plot): colours are those in the viewer
        self.growth_plot.setToolTip("Each track in the colour of its objects and of its tail in the viewer.")
        self.growth_note = EmptyPlotNote(self.growth_plot, "Press Track on a time series of objects: each track's "
                                         "area against time appears here.")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Linker", self.linker_combo)
        form.addRow("Motion", self.motion_combo)
        form.addRow(self.linker_note)  # what the linker and the motion choice suit
        form.addRow("Max. distance", self.max_distance_spin)
        form.addRow("Gap closing", self.gap_spin)
        form.addRow(self.track_button)
        form.addRow(self.growth_plot)
        self.track_button.clicked.connect(self.track)
        self.linker_combo.currentIndexChanged.connect(self._show_linker)
        self.motion_combo.currentIndexChanged.connect(self._show_linker)
        self._show_linker()
        model.features_changed.connect(self._follow_units)
        model.tracks_changed.connect(self.draw_growth)
        self.draw_growth()

    def linker(self) -> tuple[str, bool]:
        """(core method, merges and splits) of the chosen linker."""
        _label, method, splits = LINKER_CHOICES[self.linker_combo.currentIndex()]
        return method, splits

    def motion(self) -> str:
        """The core motion model chosen (``core.tracking.MOTIONS``)."""
        return MOTION_CHOICES[self.motion_combo.currentIndex()][1]

    def _show_linker(self, *_args) -> None:
        method, splits = self.linker()
        text = LINKERS[method] + ("; tracks of one family share a tree_id" if splits else "")
        text += "; " + MOTION_CHOICES[self.motion_combo.currentIndex()][2]
        self.linker_note.setText(f"<small>{text[0].upper() + text[1:]}.</small>")

    def _follow_units(self) -> None:
        self.max_distance_spin.setSuffix(f" {self.model.length_unit}")

    def track(self):
        """Track in a worker; returns the worker (None if nothing started)."""
        try:
            method, splits = self.linker()
            request = self.model.track_request(self.max_distance_spin.value(), self.gap_spin.value(), method, splits,
                                               self.motion())
        except ValueError as exc:
            show_error(str(exc))
            return None
        return start_job(self.runner, compute_track, request, self.model.apply_track, label="Track",
                         message=_track_message)

    def draw_growth(self) -> None:
        """Growth curves of the last tracking, labelled from its parameters and units."""
        plot = self.growth_plot
        plot.clear()
        self._draw_tracks(plot)
        self.growth_note.update()

    def _draw_tracks(self, plot) -> None:
        import pyqtgraph as pg

        run = self.model.tracked
        if run is None:
            plot.setTitle(None)
            plot.setLabel("bottom", "frame")
            plot.setLabel("left", "area")
            return
        value_unit, time_unit = self.model.growth_units()
        request = run.request
        plot.setLabel("left", f"{run.value} ({value_unit})")
        plot.setLabel("bottom", "time (s)" if time_unit == "s" else "frame")
        plot.setTitle(f"{run.curves.shape[1]} tracks ({request.method}), max. distance {request.max_distance:g} "
                      f"{request.length_unit}, gap {request.gap_frames}", size="9pt")
        times = run.curves.index.to_numpy(float)
        for track_id in run.curves.columns:
            y = run.curves[track_id].to_numpy(float)
            ok = np.isfinite(y)
            colour = palette_colour(track_id)
            plot.plot(times[ok], y[ok], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5, symbolBrush=colour)


def _track_message(result) -> str:
    """How many tracks, and which motion the linker assumed (measured from a first linking)."""
    text = f"{result.tracks['track_id'].nunique()} tracks"
    motion = result.tracks.attrs.get("motion") or {}
    model = motion.get("model")
    if model and model != "none":
        drift = motion.get("drift_per_frame")
        unit = result.request.length_unit
        text += f"; motion: {model}" + (f", drift {float(drift):.1f} {unit}/frame" if drift is not None else "")
    return text + "."
