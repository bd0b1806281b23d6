"""Autosave view: the settings (a folded section), the Restore button and the status line (which the
dock shows at its top, so "NOT SAVING" is never hidden), the timer, and the workers that write saves
and look for an autosave to restore. The bookkeeping is :class:`._autosave.AnnotationAutosave`'s."""

from __future__ import annotations

import logging

from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QApplication, QCheckBox, QFileDialog, QLineEdit, QPushButton, QSpinBox, QWidget

from napari_cryomat.widgets._base import EventLinks, LatestWins, Section, hbox, notify
from napari_cryomat.widgets.segmentation._autosave import AnnotationAutosave, saved_when
from napari_cryomat.widgets.segmentation._controls import form, note, set_note

log = logging.getLogger(__name__)

__all__ = ["AutosavePanel"]


class _CloseWatcher(QObject):
    """Calls ``callback`` when the window holding ``parent`` (napari's main window) closes.

    Installed on the application, so it needs no private napari attribute and works whether or not
    the dock was ever shown; it reacts only to the Close of the parent's own top-level window.
    """

    def __init__(self, callback, parent: QWidget):
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, obj, event):  # noqa: N802 (Qt name)
        if event.type() == QEvent.Close and isinstance(obj, QWidget) and obj.isWindow() \
                and obj is self.parent().window():
            try:
                self._callback()
            except Exception:  # never block closing
                log.exception("autosave on close failed")
        return False


class AutosavePanel(Section):
    """Autosave settings of a :class:`SegmentationModel`, and the offer to restore."""

    def __init__(self, model, parent: QWidget | None = None):
        super().__init__("Autosave settings", expanded=False, parent=parent)
        self.model = model
        autosave: AnnotationAutosave = model.autosave
        self.autosave = autosave
        self.restore_button = QPushButton("Restore autosave")
        self.restore_button.setEnabled(False)
        self.status_label = note()
        self._show_status(autosave.status)
        self.autosave_check = QCheckBox("Autosave every")
        self.autosave_check.setChecked(autosave.enabled)
        self.autosave_check.setToolTip("Save the annotation every N seconds when it changed, and when napari closes")
        self.interval_spin = QSpinBox()
        self.interval_spin.setRange(2, 3600)
        self.interval_spin.setValue(int(autosave.interval))
        self.interval_spin.setSuffix(" s")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("default: next to the image file")
        self.folder_edit.setToolTip("Where autosaves go. Default: a .cryomat_annotations folder next to the "
                                    "image file, or the user cache folder for images without a file.")
        self.folder_button = QPushButton("…")
        self.folder_button.setMaximumWidth(30)
        rows = form()
        rows.addRow(hbox(self.autosave_check, self.interval_spin, stretch_last=True))
        rows.addRow("Folder", hbox(self.folder_edit, self.folder_button))
        self.layout_.addLayout(rows)

        self.timer = QTimer(self)
        self.timer.setInterval(int(autosave.interval * 1000))
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self.saver = LatestWins(autosave.write, name="segmentation-autosave")
        self.saver.finished.connect(self._on_saved)
        self.finder = LatestWins(autosave.find, name="segmentation-autosave-lookup")
        # the newest save and look-up whose result is still to be shown (older ones are dropped)
        self._save_shown: int | None = None
        self._find_shown: int | None = None
        self.finder.finished.connect(self._on_found)

        self.restore_button.clicked.connect(self.restore)
        self.autosave_check.toggled.connect(autosave.set_enabled)
        self.interval_spin.valueChanged.connect(self._set_interval)
        self.folder_button.clicked.connect(self._choose_folder)
        self.folder_edit.editingFinished.connect(self._on_folder_edited)
        self.links = EventLinks(self)
        self.links.connect(autosave.status_changed, self._show_status)
        self.links.connect(autosave.enabled_changed, self._show_enabled)
        self.links.connect(autosave.restorable_changed, self._show_restorable)
        self.links.connect(autosave.error, notify.show_error)
        self.links.connect(autosave.notice, notify.show_info)
        app = QApplication.instance()
        self._close_watcher = _CloseWatcher(autosave.flush, self)
        app.installEventFilter(self._close_watcher)
        self.links.connect(app.aboutToQuit, autosave.flush)
        self.links.on_close(self._stop)

    @property
    def idle(self) -> bool:
        """No save being written and no autosave being looked for (or found but not shown yet)."""
        return self.saver.idle and self.finder.idle and self._save_shown is None and self._find_shown is None

    # -- saving ---------------------------------------------------------------------------------
    def tick(self) -> None:
        """Timer: hand the pending save (if any) to the writer thread."""
        job = self.autosave.take_job()
        if job is not None:
            self._save_shown = self.saver.submit(job)

    def _on_saved(self, job_id, job, path, error) -> None:
        if job_id == self._save_shown:
            self._save_shown = None
        self.autosave.saved(job, path, error)
        if error is not None:
            notify.show_error(f"Autosave failed: {error}. Choose another autosave folder.")

    def _set_interval(self, seconds: int) -> None:
        self.autosave.interval = float(seconds)
        self.timer.setInterval(int(seconds) * 1000)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Autosave folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self._on_folder_edited()

    def _on_folder_edited(self) -> None:
        self.autosave.set_folder(self.folder_edit.text())
        self.look_for_autosave()

    def _show_status(self, text: str) -> None:
        set_note(self.status_label, f"Autosave {text}")

    def _show_enabled(self, on: bool) -> None:
        self.autosave_check.blockSignals(True)
        self.autosave_check.setChecked(on)
        self.autosave_check.blockSignals(False)

    # -- restoring ------------------------------------------------------------------------------
    def look_for_autosave(self, *_args) -> None:
        """Look (in a worker) for an autosave of the model's image."""
        image = self.model.image
        if image is None:
            self.finder.supersede()
            self._find_shown = None
            self.autosave.offer(None)
            return
        self._find_shown = self.finder.submit(self.autosave.query(image))

    def _on_found(self, job_id, _query, found, error) -> None:
        if job_id == self._find_shown:
            self._find_shown = None
        if error is not None:  # a lazy image that cannot be read: no offer, but say why in the log
            log.error("looking for an autosave failed", exc_info=error)
            found = None
        message = self.autosave.offer(found)
        if message:
            notify.show_info(message)

    def _show_restorable(self, found) -> None:
        self.restore_button.setEnabled(found is not None)
        self.restore_button.setToolTip("" if found is None else f"Autosave of {saved_when(found)} in {found.path}")

    def restore(self):
        """Add the autosaved annotation of the image as a layer."""
        found = self.autosave.restorable
        try:
            layer = self.model.restore()
        except ValueError as exc:
            notify.show_warning(str(exc))
            return None
        notify.show_info(f"Restored the annotation saved in {found.path}.")
        return layer

    def _stop(self) -> None:
        # threads first: the Qt objects below may already be gone with the widget
        self.saver.stop()
        self.finder.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self._close_watcher)
        self.timer.stop()
