"""Small view helpers shared by the Segmentation panels."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import QDoubleSpinBox, QFormLayout, QLabel

from napari_cryomat.widgets._base import TaskRunner, notify
from napari_cryomat.widgets.segmentation._model import Job

__all__ = ["form", "note", "set_note", "spin", "start_job"]


def spin(lo: float, hi: float, value: float, *, step: float = 1.0, decimals: int = 1, suffix: str = "",
         tip: str = "") -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    if suffix:
        box.setSuffix(suffix)
    if tip:
        box.setToolTip(tip)
    return box


def form() -> QFormLayout:
    layout = QFormLayout()
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    return layout


def note(text: str = "") -> QLabel:
    """A wrapped status or hint line. Paths may break at their slashes, so a long path never makes
    the dock wider than the screen; the whole text is in the tooltip."""
    label = QLabel()
    label.setWordWrap(True)
    set_note(label, text)
    return label


def set_note(label: QLabel, text: str) -> None:
    label.setText(text.replace("/", "/\u200b").replace("\\", "\\\u200b"))
    label.setToolTip(text)


def start_job(runner: TaskRunner, make_job: Callable[[], Job]):
    """Build a job on the GUI thread and run it in ``runner``; a ValueError while building it (no
    image, wrong shape) is a message, and the job's own message is shown when it finishes."""
    try:
        job = make_job()
    except ValueError as exc:
        notify.show_error(str(exc))
        return None

    def done(result) -> None:
        message = job.finish(result)
        if message:
            notify.show_info(message)

    return runner.start(job.func, *job.args, on_done=done, label=job.label, **job.kwargs)
