"""What a plot shows before it has anything to show.

An empty pyqtgraph plot is a pair of bare 0-1 axes: it reads as a plot of nothing, or as a broken
one. :class:`EmptyPlotNote` puts a sentence in its middle instead, saying what the plot will show and
what draws it ("Press Run: resolution against cumulative dose"), as DigitalMicrograph and Velox do
in their empty panes.
"""

from __future__ import annotations

import re

from qtpy.QtCore import Qt
from qtpy.QtGui import QTextOption

__all__ = ["AXIS_LABEL_ROOM", "EmptyPlotNote", "legend_html", "room_for_axis_label"]

#: the note's colour: readable on the plots' black, quieter than their data
NOTE_COLOUR = "#9a9a9a"
#: room left between the wrapped note and the plot's frame (px)
NOTE_MARGIN = 12
#: room under a plot's x-axis label (px): pyqtgraph reserves 0.8 of the label's height and sets its text 5 px below
#: the axis, so the descenders of "energy (keV)", "tilt angle (°)", "strength: sigma (px)" were cut off at the plot's
#: lower edge
AXIS_LABEL_ROOM = 6


class EmptyPlotNote:
    """A centred, word-wrapped sentence over ``plot`` (a ``pg.PlotWidget``) while it shows no data.

    The note is not one of the plot's items, so ``plot.clear()`` keeps it; call :meth:`update` after
    drawing into the plot or clearing it, and it shows itself exactly when the plot holds nothing but
    reference lines (a threshold line alone is not a result). :meth:`say` changes the sentence, for a
    run that drew nothing and should say why.
    """

    def __init__(self, plot, text: str):
        import pyqtgraph as pg

        self.plot = plot
        view = plot.getViewBox()
        self.label = pg.LabelItem(text, color=NOTE_COLOUR, size="9pt")
        self.label.item.document().setDefaultTextOption(QTextOption(Qt.AlignmentFlag.AlignCenter))
        self.label.setParentItem(view)  # in the view's pixels, not its data range: it never pans away
        self.label.anchor(itemPos=(0.5, 0.5), parentPos=(0.5, 0.5))
        view.sigResized.connect(self._wrap)
        self._wrap()
        self.update()

    @property
    def text(self) -> str:
        return self.label.text

    @property
    def shown(self) -> bool:
        return self.label.isVisible()

    def update(self, empty: bool | None = None) -> None:
        """Show the note if the plot holds nothing but reference lines, hide it otherwise; ``empty``
        decides instead, for a plot that keeps an item of its own (an ImageItem cleared of its image)."""
        import pyqtgraph as pg

        if empty is None:
            empty = all(isinstance(item, pg.InfiniteLine) for item in self.plot.getPlotItem().items)
        self.label.setVisible(empty)

    def say(self, text: str) -> None:
        """Word the note ``text`` from now on (shown or not as :meth:`update` decides)."""
        self.label.setText(text)
        self._wrap()

    def _wrap(self, *_args) -> None:
        width = max(60.0, self.plot.getViewBox().width() - 2 * NOTE_MARGIN)
        self.label.item.setTextWidth(width)
        # The label is centred by its own size, and places its text in that size only when it is resized. Outside a
        # layout a widget grows to its minimum but never shrinks back, and a new wrap width that keeps the size
        # moves nothing: the text stayed where an earlier width put it, off centre, its left cut off by the view.
        # So the label is made exactly the text's size (which re-centres it on the view) and lays out the text anew.
        self.label.updateMin()
        self.label.resize(self.label.minimumSize())
        self.label.resizeEvent(None)


def legend_html(entries: list[tuple[str, str, str]]) -> str:
    """One line of coloured (symbol, name) pairs saying what each curve of a plot is: set it on a QLabel
    under the plot (a legend inside the plot covers data wherever the curves reach its corner). Where the
    line wraps, it wraps between entries: each is kept whole. A line may break after an em dash, which left
    the "—" of "—●" at a line's end and the dot and name on the next (Denoise dock at 1366x768), so the
    symbol's characters are held together by word joiners (U+2060)."""
    def joined(symbol: str) -> str:
        return "&#8288;".join(re.findall(r"&#?\w+;|.", symbol))  # characters or HTML entities

    return "&nbsp;&nbsp; ".join(
        f'<span style="color:{colour}; white-space:nowrap">{joined(symbol)}&nbsp;{name}</span>'
        for name, colour, symbol in entries)


def room_for_axis_label(plot):
    """Leave room under ``plot``'s (a ``pg.PlotWidget``) x-axis label for its descenders; returns the plot."""
    plot.getPlotItem().layout.setContentsMargins(1, 1, 1, AXIS_LABEL_ROOM)
    return plot
