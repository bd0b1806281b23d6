"""The Batch results dock: open an output folder of ``cryomat batch segment``; a table of the files,
a gallery of objects per shape class and a sortable table of all objects. Clicking an object (in
the gallery or the table) opens its image and labels with the object selected and centred.

The state is in :class:`~._model.BatchResultsModel`; reading files runs off the GUI thread (the
folder through a :class:`TaskRunner`, thumbnails and objects through :class:`LatestWins`: a new
click supersedes the pending one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QFileDialog, QLabel, QLineEdit, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import (
    EmptyViewNote,
    EventLinks,
    LatestWins,
    ScrollPanel,
    Section,
    TaskRunner,
    hbox,
    notify,
)
from napari_cryomat.widgets.batch_results._model import BatchResultsModel
from napari_cryomat.widgets.batch_results.gallery import GalleryPanel
from napari_cryomat.widgets.objects.table_model import FeaturesTableView

if TYPE_CHECKING:
    import napari

__all__ = ["BatchResultsWidget"]


#: what the two tables say before a folder is open
FILES_NOTE = "Open an output folder of cryomat batch segment: one row per file appears here."
OBJECTS_NOTE = "Open an output folder: every object of every file appears here; click one to open its image."


class BatchResultsWidget(QWidget):
    """Open a batch output folder; browse files, classes and objects; click to see one."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = BatchResultsModel(napari_viewer)
        self.runner = TaskRunner("Batch results")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("output folder of cryomat batch segment")
        self.browse_button = QPushButton("Browse…")
        self.open_button = QPushButton("Open")
        self.info = QLabel("No folder open.")
        self.info.setWordWrap(True)
        self.files_table = FeaturesTableView()
        self.files_table.setMinimumHeight(110)
        self.gallery = GalleryPanel()
        self.objects_table = FeaturesTableView()
        self.objects_table.setMinimumHeight(150)
        self.table_notes = {"files": EmptyViewNote(self.files_table, FILES_NOTE),
                            "objects": EmptyViewNote(self.objects_table, OBJECTS_NOTE)}
        self._thumbs = LatestWins(self.model.make_thumbnails, name="batch-thumbnails")
        self._loader = LatestWins(self.model.load_object, name="batch-object")

        panel = ScrollPanel()
        self.sections = {"folder": Section("Output folder"), "files": Section("Files", expanded=False),
                         "gallery": Section("Objects by shape class"), "objects": Section("All objects")}
        self.sections["folder"].add(hbox(self.folder_edit, self.browse_button, self.open_button))
        self.sections["folder"].add(self.info)
        self.sections["files"].add(self.files_table)
        self.sections["gallery"].add(self.gallery)
        self.sections["objects"].add(self.objects_table)
        for section in self.sections.values():
            panel.add(section)
        panel.finish()
        panel.add_footer(self.runner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)

        self.browse_button.clicked.connect(self._browse)
        self.open_button.clicked.connect(self.open_folder)
        self.folder_edit.returnPressed.connect(self.open_folder)
        self.gallery.class_changed.connect(self._request_thumbnails)
        self.gallery.object_clicked.connect(self.open_object)
        self.objects_table.selectionModel().selectionChanged.connect(self._on_object_rows)
        self._thumbs.finished.connect(self._on_thumbnails)
        self._loader.finished.connect(self._on_object_loaded)
        self.model.opened.connect(self._on_opened)
        self._links = EventLinks(self)
        self._links.on_close(self._close)

    # -- actions ---------------------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Batch output folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self.open_folder()

    def open_folder(self, folder: str | None = None) -> None:
        """Read the folder's tables in a worker, then show them."""
        folder = folder if isinstance(folder, str) and folder else self.folder_edit.text().strip()
        if not folder:
            notify.show_error("Batch results: choose the output folder that cryomat batch segment -o wrote.")
            return
        self.folder_edit.setText(folder)
        self.runner.start(_read, folder, on_done=self.model.set_results, label="Opening")

    def open_object(self, row: int) -> None:
        """Open the object in row ``row`` of the objects table (its file is read in a worker)."""
        if self.model.results is not None:
            self.info.setText(f"opening {self.model.results.objects.loc[row, 'name']}…")
            self._loader.submit(int(row))

    # -- results ---------------------------------------------------------------------------------
    def _on_opened(self, results) -> None:
        s, objects = results.summary, results.objects
        n_ok = int((s["status"] == "ok").sum()) if len(s) else 0
        counts = self.model.class_counts()
        # class 0 holds the objects left out of the classes (a cautioned file's specks): not a shape class; the
        # dock had said "331273 objects in 3 shape classes" where the run said 2
        n_classes = sum(1 for class_id in counts if class_id > 0)
        unclassified = f", {counts[0]} not classified" if counts.get(0) else ""
        text = (f"{len(s)} files, {n_ok} segmented, {len(s) - n_ok} failed; {len(objects)} objects"
                f"{f' in {n_classes} shape classes{unclassified}' if counts else ''}.")
        notes = results.run.get("notes", [])
        self.info.setText(text + "".join(f"\n• {n}" for n in notes))
        self.files_table.set_features(self.model.summary_table())
        self.objects_table.set_features(self.model.objects_table())
        self.sections["files"].set_expanded(n_ok < len(s))  # failures: show the files at once
        self.gallery.set_classes(counts or ({0: len(objects)} if len(objects) else {}), self.model.class_descriptions())

    def _request_thumbnails(self, class_id: int) -> None:
        if self.model.results is not None:
            self._thumbs.submit(self.model.gallery_rows(class_id))

    def _on_thumbnails(self, _job, rows, thumbnails, error) -> None:
        if error is not None:
            notify.show_error(f"Batch results: thumbnails could not be made ({error}).")
            return
        objects = self.model.results.objects
        tips = {r: f"{objects.loc[r, 'name']} frame {int(objects.loc[r, 'frame'])} label {int(objects.loc[r, 'label'])}"
                for r in rows}
        self.gallery.show_thumbnails(thumbnails, tips)

    def _on_object_rows(self, *_args) -> None:
        rows = self.objects_table.selected_rows()
        if rows and rows[0] != self.model.shown_row:
            self.open_object(rows[0])

    def _on_object_loaded(self, _job, row, loaded, error) -> None:
        if error is not None:
            notify.show_error(f"Batch results: {error}")
            self.info.setText(f"could not open the object's image: {error}")
            return
        try:
            self.model.show_object(loaded)
        except (ValueError, TypeError, IndexError) as exc:  # e.g. labels that no longer match the image
            notify.show_error(f"Batch results: {loaded.name} could not be shown ({exc}).")
            return
        obj = self.model.results.objects.loc[row]
        self.info.setText(f"{obj['name']}, frame {int(obj['frame'])}, label {int(obj['label'])}"
                          f"{f', class {int(obj.shape_class)}' if 'shape_class' in obj else ''}: "
                          f"{obj.get('equivalent_diameter', float('nan')):.0f} Å across")
        if self.objects_table.selected_rows()[:1] != [row]:
            self.objects_table.blockSignals(True)
            self.objects_table.select_rows([row])
            self.objects_table.blockSignals(False)

    def _close(self) -> None:
        self._thumbs.stop()
        self._loader.stop()
        self.model.close()

    @property
    def idle(self) -> bool:
        return not self.runner.busy and self._thumbs.idle and self._loader.idle


def _read(folder: str, progress=None):
    """The worker: read the folder's tables (progress is reported at the end only)."""
    results = BatchResultsModel.read_folder(folder)
    if progress is not None:
        progress(1.0)
    return results
