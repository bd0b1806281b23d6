"""The "Live FFT" dock: the image chooser, the live spectrum and the analysis panels in one
scrolling form, with the progress bar and Cancel below it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QCheckBox, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_cryomat.widgets._base import EventLinks, LayerCombo, ScrollPanel, TaskRunner, hbox, show_error
from napari_cryomat.widgets.live_fft._model import DEFAULT_ROI_SIZE, Job, LiveFFTModel
from napari_cryomat.widgets.live_fft.gpa_panel import GPAPanel
from napari_cryomat.widgets.live_fft.lattice_panel import LatticePanel
from napari_cryomat.widgets.live_fft.reciprocal_window import open_reciprocal_window
from napari_cryomat.widgets.live_fft.series_panel import SeriesPanel
from napari_cryomat.widgets.live_fft.spectrum_view import SpectrumView

if TYPE_CHECKING:
    import napari

__all__ = ["LiveFFTWidget"]


class LiveFFTWidget(QWidget):
    """Dock widget "Live FFT": calibrated power spectrum of a rectangle ROI, lattice/superlattice
    indexing, picks, Bragg filter, GPA, PLD, radial profile and Bragg-peak decay.

    ``model`` (:class:`LiveFFTModel`) holds the state; the views only gather parameters and draw.
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        from napari.layers import Image

        self.viewer = napari_viewer
        self.model = LiveFFTModel(napari_viewer, open_reciprocal=open_reciprocal_window)
        self.runner = TaskRunner("Live FFT")

        self.layer_combo = LayerCombo(napari_viewer, (Image,), predicate=lambda layer: not getattr(layer, "rgb", False),
                                      placeholder="no grey image", why="No grey image in the viewer: open a "
                                      "micrograph (File > Open); colour (RGB) images are not offered.")
        self.reset_roi_button = QPushButton("Reset ROI")
        self.reset_roi_button.setToolTip(f"Put a {DEFAULT_ROI_SIZE} px square ROI in the middle of the image "
                                          "and select it for dragging")
        self.reset_roi_button.clicked.connect(self.reset_roi)
        self.whole_roi_button = QPushButton("Whole image")
        self.whole_roi_button.setToolTip("ROI = the whole image: the finest spectrum (a micrograph's Thon rings "
                                         "need 512 px tiles, i.e. an ROI of at least 1536 px)")
        self.whole_roi_button.clicked.connect(self.whole_image_roi)
        self.whole_image = QCheckBox("filters, GPA and PLD on the whole frame")
        self.whole_image.setToolTip("Bragg filter, GPA and PLD on the whole current frame instead of the ROI")
        self.whole_image.toggled.connect(self._on_whole_image)

        self.spectrum_view = SpectrumView(self.model, self.start)
        self.lattice_panel = LatticePanel(self.model, self.start)
        self.gpa_panel = GPAPanel(self.model, self.start)
        self.series_panel = SeriesPanel(self.model, self.start)

        panel = ScrollPanel()
        panel.add(hbox(QLabel("Image"), self.layer_combo, self.reset_roi_button, self.whole_roi_button))
        panel.add(self.spectrum_view, stretch=1)
        panel.add(self.whole_image)
        for section in (self.lattice_panel, self.gpa_panel, self.series_panel):
            panel.add(section)
        panel.add_footer(self.runner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel)

        self.links = EventLinks(self)
        self.links.on_close(self.model.close)
        self.layer_combo.currentIndexChanged.connect(self._on_layer_chosen)
        self._on_layer_chosen()

    def start(self, make_job: Callable[[], Job]):
        """Build a model job here (a ValueError is a message for the user) and run it in a worker.

        Returns the started worker, or None.
        """
        try:
            job = make_job()
        except ValueError as exc:
            show_error(str(exc))
            return None
        extra = {} if job.on_error is None else {"_connect": {"errored": job.on_error}}  # superqt: before start
        return self.runner.start(job.run, on_done=job.apply, label=job.label, **extra)

    def reset_roi(self) -> None:
        try:
            self.model.reset_roi()
        except ValueError as exc:
            show_error(str(exc))

    def whole_image_roi(self) -> None:
        try:
            self.model.whole_image_roi()
        except ValueError as exc:
            show_error(str(exc))

    def _on_layer_chosen(self, *_args) -> None:
        self.model.set_layer(self.layer_combo.layer())

    def _on_whole_image(self, checked: bool) -> None:
        self.model.whole_image = bool(checked)
