"""Exports: the maps as TIFFs, their RGB composite as PNG, the profile as CSV, the shown spectrum
(ROI sum, else the pixel under the cursor) as EMSA or CSV.

The path is asked on the GUI thread (or given by a script); writing runs in the tool's
:class:`TaskRunner`. Each export returns the started worker, or None (nothing to export, with a
message, or the dialog was cancelled).
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QFileDialog, QGridLayout, QPushButton, QWidget

from napari_cryomat.widgets._base import TaskRunner, show_error, show_info
from napari_cryomat.widgets.spectrum._exports import write_map_tiffs, write_profile, write_rgb, write_spectrum
from napari_cryomat.widgets.spectrum._model import SpectrumModel

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
        try:
            result = self.model.maps_to_export()
        except ValueError as exc:
            return show_error(str(exc))
        directory = directory or QFileDialog.getExistingDirectory(self, "Folder for the map TIFFs", str(Path.home()))
        return self._write(write_map_tiffs, result, directory) if directory else None

    def export_rgb(self, path: str | None = None):
        """The maps coloured like their layers (at their contrast limits), added, as a PNG."""
        try:
            result = self.model.maps_to_export()
        except ValueError as exc:
            return show_error(str(exc))
        path = path or self._ask("Save RGB composite", "composite.png", "PNG (*.png)")
        return self._write(write_rgb, result, self.model.map_limits(), path) if path else None

    def export_profile(self, path: str | None = None):
        try:
            profile = self.model.profile_to_export()
        except ValueError as exc:
            return show_error(str(exc))
        path = path or self._ask("Save profile", "profile.csv", "CSV (*.csv)")
        return self._write(write_profile, profile, path) if path else None

    def export_spectrum(self, path: str | None = None):
        """``.csv``: energy_eV, counts; anything else: EMSA (.msa)."""
        try:
            spectrum = self.model.spectrum_to_export()
        except ValueError as exc:
            return show_error(str(exc))
        path = path or self._ask(f"Save spectrum ({spectrum.what})", "spectrum.msa", "EMSA (*.msa);;CSV (*.csv)")
        return self._write(write_spectrum, spectrum, path) if path else None

    def _ask(self, title: str, name: str, file_filter: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.home() / name), file_filter)
        return path or None

    def _write(self, func, *args):
        self.written = None
        return self.runner.start(func, *args, on_done=self._done, label="Export")

    def _done(self, written) -> None:
        self.written = written
        paths = written if isinstance(written, list) else [written]
        show_info(f"Wrote {', '.join(Path(p).name for p in paths)} to {Path(paths[0]).parent}.")
