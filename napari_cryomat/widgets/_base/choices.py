"""A combo box with nothing to offer yet says so: a greyed placeholder naming what will be listed and what
fills it, the control disabled with a tooltip saying why, enabled again once it has items.

An empty QComboBox draws as a blank box, which reads as broken or as a missing choice (the Spectrum dock's
element windows and ratio maps before Make maps, the Objects dock's property before Measure).
"""

from __future__ import annotations

from collections.abc import Iterable

from qtpy.QtCore import QEvent, QObject, QSize
from qtpy.QtWidgets import QComboBox, QWidget

__all__ = ["placeholder_while_empty"]


class _EmptyChoice(QObject):
    """Follows the combo's item model, so every way of filling or clearing it (addItems, clear, a model
    reset) updates the state, and the widgets' tooltips, so one set later by their owner is kept as their own;
    a child of the combo, so it lives and dies with it.

    The placeholder is set only while the combo is empty, for two reasons of Qt 6: with a placeholder set,
    items added to an empty combo leave it on no item (without one the first item is chosen, which every
    caller here relies on), and the placeholder's width enters the combo's size hints even when it has items.
    While it shows, the combo keeps the minimum width it had without it: a long placeholder is clipped
    rather than widening the dock past a laptop's screen.
    """

    def __init__(self, combo: QComboBox, text: str, why: str, also: tuple[QWidget, ...]):
        super().__init__(combo)
        self.combo, self.text, self.why = combo, text, why
        self.own_minimum_width = combo.minimumWidth()
        self.own_tips = {widget: widget.toolTip() for widget in (combo, *also)}  # shown once filled
        self._setting_tips = False
        for widget in self.own_tips:
            widget.installEventFilter(self)
        model = combo.model()
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            signal.connect(self.update)
        self.update()

    def update(self, *_args) -> None:
        filled = self.combo.count() > 0
        if filled and self.combo.placeholderText():
            self.combo.setPlaceholderText("")  # on no item, this chooses the first, as Qt does without one
            self._forget_size_hints()  # else it kept asking for the placeholder's width
            self.combo.setMinimumWidth(self.own_minimum_width)
        elif not filled and not self.combo.placeholderText():
            self._forget_size_hints()
            width = self.combo.minimumSizeHint().width()  # without the placeholder
            self.combo.setPlaceholderText(self.text)
            self.combo.setMinimumWidth(max(width, self.own_minimum_width))
        self._setting_tips = True
        for widget, tip in self.own_tips.items():
            widget.setEnabled(filled)
            widget.setToolTip(tip if filled else "\n\n".join(t for t in (self.why, tip) if t))
        self._setting_tips = False

    def _forget_size_hints(self) -> None:
        """Qt keeps a combo's size hints until its icon size or font change (not its items' or placeholder's,
        unless it adjusts to its contents); a change of icon size, and back, makes it compute them again."""
        size = self.combo.iconSize()
        self.combo.setIconSize(size + QSize(1, 1))
        self.combo.setIconSize(size)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt names it)
        if event.type() == QEvent.ToolTipChange and not self._setting_tips and watched in self.own_tips:
            self.own_tips[watched] = watched.toolTip()  # its owner set it: keep it as its own, say why first
            self.update()
        return False


def placeholder_while_empty(combo: QComboBox, text: str, why: str, *, also: Iterable[QWidget] = ()) -> QComboBox:
    """While ``combo`` has no item it shows ``text`` greyed (say what will be listed and what fills it, short
    enough for the combo's width: Qt clips it), is disabled, and its tooltip starts with ``why`` (a sentence:
    what to do). ``also``: widgets that act on the choice (a button next to it), disabled with it.
    Returns ``combo``."""
    _EmptyChoice(combo, text, why, tuple(also))
    return combo
