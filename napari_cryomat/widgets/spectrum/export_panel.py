"""Exports: the maps as TIFFs, their RGB composite as PNG, the profile as CSV, the shown spectrum
(ROI sum, else the pixel under the cursor) as EMSA or CSV.

The path is asked on the GUI thread (or given by a script); writing runs in the tool's
:class:`TaskRunner`. Each export returns the started worker, or None (nothing to export, with a
message, or the dialog was cancelled).
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QFileDialog, QGridLayout, QPushButton, QWidget

from napari_cryomat.widgets._base import TaskRunner, show_info
from napari_cryomat.widgets.spectrum._exports import write_map_tiffs, write_profile, write_rgb, write_spectrum
from napari_cryomat.widgets.spectrum._model import SpectrumModel
from napari_cryomat.widgets.spectrum._view_parts import guarded

__all__ = ["ExportPanel"]


class ExportPanel(QWidget):
    """Four export buttons; ``written`` holds what the last export wrote (a path or a list)."""

    def __init__(self, model: SpectrumModel, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.runner = runner
        self.written = None
        self.export_maps_button = QPushButton("Maps → TIFF")
        self.export_rgb_button = QPushButton("RGB → PNG")
        self.export_profile_button = QPushButton("Profile → CSV")
        self.export_spectrum_button = QPushButton("Spectrum → MSA/CSV")
        self.export_spectrum_button.setToolTip("The ROI sum if an ROI is drawn, else the spectrum under the cursor")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.export_maps_button, 0, 0)
        grid.addWidget(self.export_rgb_button, 0, 1)
        grid.addWidget(self.export_profile_button, 1, 0)
        grid.addWidget(self.export_spectrum_button, 1, 1)
        self.export_maps_button.clicked.connect(lambda: self.export_maps())
        self.export_rgb_button.clicked.connect(lambda: self.export_rgb())
        self.export_profile_button.clicked.connect(lambda: self.export_profile())
        self.export_spectrum_button.clicked.connect(lambda: self.export_spectrum())

    def export_maps(self, directory: str | None = None):
        """One float32 TIFF per map (and per at.% map) into ``directory``."""
        return self._export(self.model.maps_to_export, directory, write_map_tiffs, ask=lambda _maps: (
            QFileDialog.getExistingDirectory(self, "Folder for the map TIFFs", str(Path.home())) or None))

    def export_rgb(self, path: str | None = None):
        """The maps coloured like their layers (at their contrast limits), added, as a PNG."""
        return self._export(self.model.maps_to_export, path, write_rgb, self.model.map_limits(),
                            ask=lambda _maps: self._ask("Save RGB composite", "composite.png", "PNG (*.png)"))

    def export_profile(self, path: str | None = None):
        return self._export(self.model.profile_to_export, path, write_profile,
                            ask=lambda _profile: self._ask("Save profile", "profile.csv", "CSV (*.csv)"))

    def export_spectrum(self, path: str | None = None):
        """``.csv``: energy_eV, counts; anything else: EMSA (.msa)."""
        return self._export(self.model.spectrum_to_export, path, write_spectrum, ask=lambda spectrum: self._ask(
            f"Save spectrum ({spectrum.what})", "spectrum.msa", "EMSA (*.msa);;CSV (*.csv)"))

    def _export(self, get, path, write, *extra, ask):
        """``write(what, *extra, path)`` in the runner, ``what = get()`` (a message if there is
        nothing to export), the path asked with ``ask(what)`` unless given."""
        what = guarded(get)
        if what is None:
            return None
        path = path or ask(what)
        if not path:
            return None
        self.written = None
        return self.runner.start(write, what, *extra, path, on_done=self._done, label="Export")

    def _ask(self, title: str, name: str, file_filter: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.home() / name), file_filter)
        return path or None

    def _done(self, written) -> None:
        self.written = written
        paths = written if isinstance(written, list) else [written]
        show_info(f"Wrote {', '.join(Path(p).name for p in paths)} to {Path(paths[0]).parent}.")
