"""Small pieces the tool's panels share: run a job and apply its result, refill a combo box, a plot
that fits a narrow dock."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import QComboBox, QSizePolicy, QWidget

from napari_cryomat.widgets._base import TaskRunner, show_error, show_info

__all__ = ["narrow_plot", "refill", "start_job"]


def start_job(runner: TaskRunner, compute: Callable, request, apply: Callable, *, label: str,
              message: Callable[[object], str] | None = None):
    """Run ``compute(request)`` in ``runner``'s worker, then ``apply(result)`` on the GUI thread.

    A ValueError from ``apply`` (the viewer changed meanwhile) becomes a message; ``message(result)``
    is shown once the result is applied. Returns the worker, or None if another job is running.
    """

    def done(result) -> None:
        try:
            apply(result)
        except ValueError as exc:
            show_error(str(exc))
            return
        if message is not None:
            show_info(message(result))

    return runner.start(compute, request, on_done=done, label=label)


def refill(combo: QComboBox, items: list[str], *, preferred: tuple[str, ...] = ()) -> None:
    """Replace the items of ``combo``, keeping the current one if it is still there, else the
    first of ``preferred`` present, else the first item; emits one change at most."""
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(items)
    for choice in (current, *preferred):
        if choice in items:
            combo.setCurrentIndex(items.index(choice))
            break
    combo.blockSignals(False)
    if combo.currentText() != current:
        combo.currentIndexChanged.emit(combo.currentIndex())


def narrow_plot(plot: QWidget) -> QWidget:
    """Let a pyqtgraph plot take the dock's width without asking for its own 640 px (layouts then
    count it as 0 px wide, so the dock fits a 1366 px laptop screen; the plot still fills the row)."""
    plot.setSizePolicy(QSizePolicy.Ignored, plot.sizePolicy().verticalPolicy())
    return plot
