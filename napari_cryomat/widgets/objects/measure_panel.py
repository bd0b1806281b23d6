"""Measure (which labels, which image, classes or objects, time series) and colour / histogram."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.widgets._base import (
    EmptyPlotNote,
    LayerCombo,
    TaskRunner,
    is_grey_image,
    placeholder_while_empty,
    room_for_axis_label,
    show_error,
)
from napari_cryomat.widgets.objects._jobs import compute_colours, compute_measure
from napari_cryomat.widgets.objects._layers import guess_time_series, is_class_map, matching_image
from napari_cryomat.widgets.objects._model import ObjectsModel
from napari_cryomat.widgets.objects._view import narrow_plot, refill, start_job

__all__ = ["ColourPanel", "MeasurePanel"]


class MeasurePanel(QWidget):
    """Choose the labels (and the image for intensities) and measure them in a worker.

    Choosing a labels layer guesses the options from it: "labels are classes" for an annotation or
    a prediction, "first axis is time" when its first axis (or that of the movie it was made from)
    is time, and the image of the same shape for the mean intensity.
    """

    def __init__(self, viewer, model: ObjectsModel, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        from napari.layers import Image, Labels

        self.viewer = viewer
        self.model = model
        self.runner = runner
        self.labels_combo = LayerCombo(viewer, (Labels,), placeholder="no labels layer",
                                       why="No labels layer in the viewer: segment the image (Segmentation dock), "
                                           "annotate one (Layers > New Labels) or open a labels file.")
        self.labels_combo.setToolTip("The objects to measure: a labels layer (segment or annotate first).")
        self.image_combo = LayerCombo(viewer, (Image,), predicate=is_grey_image, placeholder="no grey image",
                                      why="No grey image in the viewer to read the objects' mean intensity "
                                          "from; they are measured without it.")
        self.intensity_check = QCheckBox("mean intensity from")
        self.intensity_check.setChecked(True)
        self.classes_check = QCheckBox("labels are classes")
        self.classes_check.setToolTip("Each connected region of a class is an object. On for an annotation or a "
                                      "prediction, whose values are classes.")
        self.time_check = QCheckBox("first axis is time")
        self.time_check.setToolTip("Measure frame by frame, then track the objects over time (Tracking section).")
        self.measure_button = QPushButton("Measure")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Labels", self.labels_combo)
        form.addRow(self.intensity_check, self.image_combo)
        form.addRow(self.classes_check)
        form.addRow(self.time_check)
        form.addRow(self.measure_button)
        self.measure_button.clicked.connect(self.measure)
        self.labels_combo.currentIndexChanged.connect(self.guess_options)
        self.guess_options()

    def _images(self) -> list:
        return list(self.image_combo.candidates())

    def guess_options(self, *_args) -> None:
        """Set the options from the chosen labels layer (see the class docstring)."""
        layer = self.labels_combo.layer()
        if layer is None:
            return
        self.classes_check.setChecked(is_class_map(layer))
        images = self._images()
        self.time_check.setChecked(guess_time_series(layer, images))
        image = matching_image(layer, images)
        if image is not None:
            self.image_combo.set_layer(image)
        self.intensity_check.setChecked(image is not None)

    def measure(self):
        """Measure the chosen labels in a worker; returns the worker (None if nothing started)."""
        image = self.image_combo.layer() if self.intensity_check.isChecked() else None
        try:
            request = self.model.measure_request(self.labels_combo.layer(), image,
                                                 as_classes=self.classes_check.isChecked(),
                                                 time_series=self.time_check.isChecked())
        except ValueError as exc:
            show_error(str(exc))
            return None
        return start_job(self.runner, compute_measure, request, self.model.apply_measure, label="Measure",
                         message=lambda result: _measured(result.table))


def _measured(table) -> str:
    """What Measure found: a time series counts object-frames (the demo's 6 crystals in 8 frames had said
    "48 objects measured", where the histogram says "48 object-frames")."""
    if "frame" in table:
        return f"{len(table)} object-frames measured in {table['frame'].nunique()} frames."
    return f"{len(table)} objects measured."


class ColourPanel(QWidget):
    """Colour the objects by a measured column, and its histogram (from the table shown)."""

    def __init__(self, model: ObjectsModel, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        import pyqtgraph as pg

        self.model = model
        self.runner = runner
        self.property_combo = QComboBox()
        self.property_combo.setToolTip("A measured column; shape_class colours by class.")
        self.property_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.property_combo.setMinimumContentsLength(8)
        self.colour_button = QPushButton("Colour")
        self.colour_button.setToolTip("Colour the objects by the property (viridis, low to high).")
        placeholder_while_empty(self.property_combo, "press Measure",
                                "Nothing measured yet: press Measure; the measured columns are listed here.",
                                also=(self.colour_button,))
        self.reset_colour_button = QPushButton("Reset")
        self.histogram = pg.PlotWidget()
        narrow_plot(self.histogram)
        room_for_axis_label(self.histogram)
        self.histogram.setMinimumHeight(120)
        self.histogram.setMaximumHeight(200)  # the table, not the plot, takes a tall dock's room
        self.histogram.setLabel("left", "objects")
        self.histogram_note = EmptyPlotNote(self.histogram, "Press Measure: the histogram of the chosen property "
                                            "appears here.")
        row = QHBoxLayout()
        row.addWidget(QLabel("Property"))
        row.addWidget(self.property_combo, 1)
        row.addWidget(self.colour_button)
        row.addWidget(self.reset_colour_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.histogram)
        self.property_combo.currentIndexChanged.connect(self.draw_histogram)
        self.colour_button.clicked.connect(lambda: self.colour_by_property())
        self.reset_colour_button.clicked.connect(self.model.reset_colours)
        model.features_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """The measured columns changed: refill the list and redraw the histogram."""
        preferred = tuple(c for c in self.model.numeric_columns() if c.startswith(("area", "volume")))
        refill(self.property_combo, self.model.numeric_columns(), preferred=preferred)
        self.draw_histogram()

    def colour_by_property(self, column: str | None = None):
        """Colour the objects by ``column`` (default: the chosen property); the colormap is built
        in a worker. Returns the worker (None if nothing started)."""
        try:
            request = self.model.colour_request(column or self.property_combo.currentText())
        except ValueError as exc:
            show_error(str(exc))
            return None
        return start_job(self.runner, compute_colours, request, self.model.apply_colour, label="Colour")

    def draw_histogram(self, *_args) -> None:
        """Histogram of the chosen column of the table shown, labelled from that table."""
        self.histogram.clear()
        self.histogram.setTitle(None)
        self._draw_bars()
        self.histogram_note.update()

    def _draw_bars(self) -> None:
        import pyqtgraph as pg

        column = self.property_combo.currentText()
        features = self.model.features
        if features is None or column not in features:
            return
        values = features[column].to_numpy(float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        counts, edges = np.histogram(values, bins=min(40, max(5, int(np.sqrt(values.size)))))
        self.histogram.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush=(90, 160, 230)))
        self.histogram.setLabel("bottom", column)
        what = "object-frames" if self.model.time_series else "objects"
        self.histogram.setTitle(f"{values.size} {what} of {self.model.layer.name}", size="9pt")
