"""What a list or table shows before it has any row.

An empty ``QTableView`` or ``QListWidget`` is a blank box: it reads as a broken panel. Like
:class:`~napari_cryomat.widgets._base.plots.EmptyPlotNote` for plots, :class:`EmptyViewNote` centres a
sentence in the view saying what will fill it and what does ("Press Measure: ...").
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QLabel

from napari_cryomat.widgets._base.plots import NOTE_COLOUR, NOTE_MARGIN

__all__ = ["EmptyViewNote"]


class EmptyViewNote(QObject):
    """A centred, word-wrapped sentence over ``view``'s viewport (any ``QAbstractItemView``) while its
    model has no rows. It follows the model by itself (rows inserted or removed, a reset), lets clicks
    through to the view, and keeps to the viewport's size."""

    def __init__(self, view, text: str):
        super().__init__(view)
        self.view = view
        self.label = QLabel(text, view.viewport())
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setStyleSheet(f"color: {NOTE_COLOUR}; background: transparent;")
        self.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.model = model = view.model()
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset, model.layoutChanged):
            signal.connect(self.update)
        view.viewport().installEventFilter(self)
        self._fit()
        self.update()

    @property
    def text(self) -> str:
        return self.label.text()

    @property
    def shown(self) -> bool:
        return not self.label.isHidden()

    def update(self, *_args) -> None:
        """Show the note exactly when the view's model has no rows."""
        try:
            self.label.setHidden(self.model.rowCount() > 0)
        except RuntimeError:  # the view is being destroyed: its model empties itself as it goes
            pass

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.Resize:
            self._fit()
        return False

    def _fit(self) -> None:
        self.label.setGeometry(self.view.viewport().rect().adjusted(NOTE_MARGIN, 0, -NOTE_MARGIN, 0))
