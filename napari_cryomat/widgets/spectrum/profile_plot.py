"""Composition profiles: every map of the last run along the "composition line", live.

A :class:`LivePanel`: the line's end points and the maps are read on the GUI thread, the
profiles are sampled in the live worker, the newest line wins while the user drags it.
"""

from __future__ import annotations

import pyqtgraph as pg
from qtpy.QtWidgets import QVBoxLayout, QWidget

from napari_cryomat.widgets._base import EmptyPlotNote, LivePanel
from napari_cryomat.widgets.spectrum._jobs import map_colour
from napari_cryomat.widgets.spectrum._model import SpectrumModel
from napari_cryomat.widgets.spectrum._sampling import Profile, ProfileRequest, compute_profile
from napari_cryomat.widgets.spectrum._view_parts import CompactPlot

__all__ = ["ProfilePlot"]

#: what the plot says while no map has been sampled along a line
EMPTY_NOTE = "Make maps, then Draw profile line: each map along the line (÷ its peak) appears here."


class ProfilePlot(LivePanel):
    """Each map's values along the line divided by its peak, coloured like its layer, with ±1 σ
    counting error bars for EELS maps; the model
    keeps the values (``model.profile``) for the CSV export."""

    def __init__(self, viewer, model: SpectrumModel, parent: QWidget | None = None):
        super().__init__(viewer, parent)
        self.model = model
        # 180 px: the title (the legend) and the axes left a 120 px plot 51 px of data area, its 0-1 tick labels
        # overlapping (4 pairs) under a 97 px axis label (1366x768, EELS sample); 'Draw profile line' scrolls it into view
        self.plot = CompactPlot(180)
        self.plot.setLabel("bottom", "distance", units="Å")
        self.plot.setLabel("left", "÷ its peak")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.note = EmptyPlotNote(self.plot, EMPTY_NOTE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.links.connect(model.maps_changed, self.update_live)
        model.overlays.line.on_data(self.update_live, events=("data", "set_data"))  # follow a drag live

    def request(self) -> ProfileRequest | None:
        return self.model.profile_request()

    def compute(self, request: ProfileRequest) -> Profile:
        return compute_profile(request)

    def draw(self, request: ProfileRequest, profile: Profile) -> None:
        self.model.set_profile(profile)
        self.plot.clear()
        distance = profile.columns["distance_A"]
        names = []  # the title is the legend: a legend box would cover the curves of a low plot
        for i, element in enumerate(request.maps.maps):
            rgb = map_colour(i)[1]
            values = profile.columns[element] / profile.peaks[element]
            self.plot.plot(distance, values, pen=pg.mkPen(rgb, width=2))
            err = profile.columns.get(f"{element}_err")
            if err is not None:  # ±1 σ from counting statistics
                self.plot.addItem(pg.ErrorBarItem(x=distance, y=values, height=2 * err / profile.peaks[element],
                                                  pen=pg.mkPen(rgb, width=1)))
            names.append(f"<span style='color: rgb{rgb}'>{element}</span>")
        self.plot.setTitle(f"<small>maps of {request.maps.request.source.name}: {' '.join(names)}</small>")
        self.note.update()

    def clear(self) -> None:
        self.plot.clear()
        self.plot.setTitle(None)
        self.note.update()
        if self.model.profile is not None:
            self.model.set_profile(None)
