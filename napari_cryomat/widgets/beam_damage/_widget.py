"""Dock widget "Beam damage": a dose series in, resolution and Bragg intensity against dose out.

The run goes through the TaskRunner (progress, Cancel); nothing in the viewer changes, the widget
only draws and exports. The dose per frame is read from the layer's metadata when it is there;
0 means unknown, and every dose axis then counts frames (the summary says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.widgets._base import (
    LayerCombo,
    ScrollPanel,
    Section,
    TaskRunner,
    hbox,
    is_frame_stack,
    show_error,
    show_info,
)
from napari_cryomat.widgets.beam_damage._figure import write_figure
from napari_cryomat.widgets.beam_damage._model import (
    DamageParams,
    DamageRun,
    dose_from_metadata,
    make_request,
    run_damage,
    summary_lines,
    write_table,
)
from napari_cryomat.widgets.beam_damage._plots import DamagePlots

if TYPE_CHECKING:
    import napari

__all__ = ["BeamDamageWidget"]


class BeamDamageWidget(QWidget):
    """Measure how a structure fades with dose: FRC/FRPR resolution and Bragg spot critical doses.

    ``run()`` starts the measurement; ``result`` is the last finished :class:`DamageRun`;
    ``export_table(path)`` and ``export_figure(path)`` write the CSV and the PNG.
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: QWidget | None = None):
        super().__init__(parent)
        from napari.layers import Image

        self.viewer = napari_viewer
        self.result: DamageRun | None = None
        self.layer_combo = LayerCombo(napari_viewer, (Image,), predicate=is_frame_stack, placeholder="no dose series",
                                      why="No stack of frames in the viewer: open the dose series (File > Open).")
        self.pixel_label = QLabel("")
        self.dose_spin = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=1e4, singleStep=0.1)
        self.dose_spin.setSuffix(" e/Å²")
        self.dose_spin.setSpecialValueText("unknown (frames)")
        self.dose_spin.setToolTip("Dose per frame. Unknown: every dose axis counts frames.")
        self.points_spin = QSpinBox(minimum=0, maximum=10000)
        self.points_spin.setSpecialValueText("auto")
        self.points_spin.setToolTip("Frames per dose point for the FRC/FRPR (even frames against odd ones).")
        self.snr_spin = QDoubleSpinBox(decimals=0, minimum=3, maximum=1e4, value=30)
        self.snr_spin.setToolTip("Bragg spots are found in the first quarter of the frames above this SNR.")
        self.budget_spin = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1e4)
        self.budget_spin.setSuffix(" Å")
        self.budget_spin.setSpecialValueText("none")
        self.budget_spin.setToolTip("Resolution you need: the dose at which it is lost is reported.")
        self.run_button = QPushButton("Run")
        form = Section("Series")
        grid = QWidget()
        fl = QFormLayout(grid)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addRow("Series", self.layer_combo)
        fl.addRow("Pixel size", self.pixel_label)
        fl.addRow("Dose per frame", self.dose_spin)
        fl.addRow("Frames per point", self.points_spin)
        fl.addRow("Spot SNR", self.snr_spin)
        fl.addRow("Resolution needed", self.budget_spin)
        form.add(grid)
        form.add(self.run_button)
        self.summary = QLabel("Choose a dose series and press Run.")
        self.summary.setWordWrap(True)
        self.plots = DamagePlots()
        self.table_button = QPushButton("Export table…")
        self.figure_button = QPushButton("Export figure…")
        for b in (self.table_button, self.figure_button):
            b.setEnabled(False)
        self.runner = TaskRunner("Beam damage")
        panel = ScrollPanel()
        panel.add(form)
        panel.add(self.summary)
        panel.add(self.plots, 1)
        panel.add(hbox(self.table_button, self.figure_button))
        panel.add_footer(self.runner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel)
        self.layer_combo.currentIndexChanged.connect(self._layer_changed)
        self.run_button.clicked.connect(self.run)
        self.table_button.clicked.connect(self._table_clicked)
        self.figure_button.clicked.connect(self._figure_clicked)
        self._layer_changed()

    def params(self) -> DamageParams:
        return DamageParams(self.dose_spin.value(), self.points_spin.value(), self.snr_spin.value(),
                            self.budget_spin.value())

    def run(self) -> None:
        try:
            request = make_request(self.layer_combo.layer(), self.params())
        except ValueError as exc:
            show_error(str(exc))
            return
        self.runner.start(run_damage, request, on_done=self._accept, label="Beam damage")

    def export_table(self, path: str | Path) -> Path:
        return write_table(self._need_result(), path)

    def export_figure(self, path: str | Path) -> Path:
        return write_figure(self._need_result(), path)

    def _need_result(self) -> DamageRun:
        if self.result is None:
            raise ValueError("Nothing to export yet: press Run first.")
        return self.result

    def _layer_changed(self, *_args) -> None:
        from napari_cryomat.widgets._base import pixel_size_of

        layer = self.layer_combo.layer()
        if layer is None:
            self.pixel_label.setText("—")
            return
        try:
            self.pixel_label.setText(f"{pixel_size_of(layer):.4g} Å")
        except ValueError as exc:
            self.pixel_label.setText(str(exc))
        self.dose_spin.setValue(dose_from_metadata(layer))

    def _accept(self, run: DamageRun) -> None:
        self.result = run
        self.summary.setText("\n".join(summary_lines(run)))
        self.plots.draw(run)
        for b in (self.table_button, self.figure_button):
            b.setEnabled(True)

    def _table_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export beam-damage table", "beam_damage.csv", "CSV (*.csv)")
        if path:
            self._export(self.export_table, path)

    def _figure_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export beam-damage figure", "beam_damage.png",
                                              "PNG (*.png);;PDF (*.pdf);;SVG (*.svg)")
        if path:
            self._export(self.export_figure, path)

    @staticmethod
    def _export(write, path: str) -> None:
        try:
            show_info(f"Saved {write(path)}.")
        except (OSError, ValueError) as exc:
            show_error(f"Could not save {path}: {exc}")
