"""Small pyqtgraph views of the tilt tool: residuals per tilt, the missing wedge, thickness histogram.

Each draws a result object (never reads a control), so it keeps describing the run it shows.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from qtpy.QtCore import QSize

from napari_cryomat.widgets._base import EmptyPlotNote, room_for_axis_label
from napari_cryomat.widgets.tilt._run import AlignRun, Quantification, Reconstruction

__all__ = ["HistogramPlot", "ResidualPlot", "WedgeView"]

PLOT_HEIGHT = 130


def _plot(left: str, bottom: str):
    import pyqtgraph as pg

    plot = pg.PlotWidget()
    plot.setBackground("k")
    plot.setMinimumHeight(PLOT_HEIGHT)
    room_for_axis_label(plot)
    plot.setMaximumHeight(PLOT_HEIGHT + 40)
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)
    for axis in ("bottom", "left"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
    plot.sizeHint = lambda: QSize(300, PLOT_HEIGHT)  # pyqtgraph's own 640x480 would widen the dock
    return plot


class ResidualPlot:
    """Residual per tilt against tilt angle (1 - correlation with the reprojection, or the bead
    residual in pixels when aligned on beads); dropped tilts grey, tilts without a bead at zero."""

    def __init__(self):
        self.widget = _plot("residual", "tilt angle (°)")
        self.note = EmptyPlotNote(self.widget, "Press Align: each tilt's residual against its angle appears here; "
                                  "a tall bar marks a tilt to drop.")
        self.bars = None

    def draw(self, run: Optional[AlignRun], kept: Optional[np.ndarray]) -> None:

        self.widget.clear()
        self.bars = None
        self._draw_bars(run, kept)
        self.note.update()

    def _draw_bars(self, run: Optional[AlignRun], kept: Optional[np.ndarray]) -> None:
        import pyqtgraph as pg

        if run is None:
            return
        a = run.alignment
        width = 0.8 * float(np.min(np.abs(np.diff(np.sort(a.angles))))) if len(a.angles) > 1 else 1.0
        brushes = [pg.mkBrush("m" if k else (110, 110, 110)) for k in kept]
        self.bars = pg.BarGraphItem(x=a.angles, height=np.nan_to_num(a.residuals), width=width, brushes=brushes)
        self.widget.addItem(self.bars)
        self.widget.setLabel("left", run.residual_label)


class WedgeView:
    """log |FFT| of the volume on its central XZ section: the missing wedge is the dark double cone
    around kz (no tilt looked along it)."""

    def __init__(self):
        import pyqtgraph as pg

        self.widget = _plot("kz (1/Å)", "kx (1/Å)")
        self.widget.setAspectLocked(True)
        self.image = pg.ImageItem()
        self.widget.addItem(self.image)
        self.note = EmptyPlotNote(self.widget, "Press Preview or Reconstruct: the volume's Fourier transform, with "
                                  "its missing wedge, appears here.")
        self.note.update(empty=True)  # the image item is there from the start, with no image yet

    def draw(self, rec: Optional[Reconstruction]) -> None:
        from qtpy.QtCore import QRectF

        self.note.update(empty=rec is None)
        if rec is None:
            self.image.clear()
            return
        wedge = rec.wedge  # (kz, kx)
        dz, dx = rec.wedge_spacing
        nz, nx = wedge.shape
        lo, hi = np.percentile(wedge, [1, 99.5])
        # pyqtgraph images are (x, y): transpose so kx runs right and kz up
        self.image.setImage(wedge.T, levels=(float(lo), float(hi)))
        self.image.setRect(QRectF(-nx / 2 * dx, -nz / 2 * dz, nx * dx, nz * dz))
        self.widget.autoRange()


class HistogramPlot:
    """Volume fraction of the structure per local-thickness bin (Å)."""

    def __init__(self):
        self.widget = _plot("volume fraction", "local thickness (Å)")
        self.note = EmptyPlotNote(self.widget, "Press Quantify: the structure's volume fraction per local "
                                  "thickness appears here.")

    def draw(self, q: Optional[Quantification]) -> None:
        self.widget.clear()
        self._draw_bars(q)
        self.note.update()

    def _draw_bars(self, q: Optional[Quantification]) -> None:
        import pyqtgraph as pg

        if q is None:
            return
        centres = 0.5 * (q.edges[1:] + q.edges[:-1])
        self.widget.addItem(pg.BarGraphItem(x=centres, height=q.fractions, width=float(np.diff(q.edges)[0]) * 0.9,
                                            brush="c"))
        mean = q.mean_thickness
        if np.isfinite(mean):
            self.widget.addItem(pg.InfiniteLine(pos=mean, angle=90, pen=pg.mkPen("y", width=2)))
