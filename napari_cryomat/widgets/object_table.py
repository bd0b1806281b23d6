"""Objects and classes dock: measure labelled objects in physical units, a sortable table that
selects objects in the viewer, colour by a property, histograms, shape classes, tracking over time
with growth curves, CSV export.

Thin: the science is in :mod:`napari_cryomat.core.measure` and :mod:`napari_cryomat.core.tracking`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_cryomat.core import measure as core_measure
from napari_cryomat.core import tracking as core_tracking
from napari_cryomat.widgets._common import (
    LayerCombo,
    TaskRunner,
    pixel_size_of,
    show_error,
    show_info,
    show_warning,
)

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

__all__ = ["ObjectTableWidget"]

_CLASS_PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                  "#bfef45", "#fabed4", "#469990"]


class _NumericItem(QTableWidgetItem):
    """A table cell that sorts by number."""

    def __init__(self, value):
        v = float(value)
        text = f"{int(v)}" if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
        super().__init__(text)
        self.setData(Qt.UserRole, v)
        self.setFlags(self.flags() & ~Qt.ItemIsEditable)

    def __lt__(self, other):
        try:
            return self.data(Qt.UserRole) < other.data(Qt.UserRole)
        except TypeError:
            return super().__lt__(other)


def _value_colormap(labels: np.ndarray, values: np.ndarray, cmap: str = "viridis"):
    """DirectLabelColormap colouring each label by a value (NaN -> grey)."""
    from napari.utils.colormaps import DirectLabelColormap, ensure_colormap

    cm = ensure_colormap(cmap)
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    lo, hi = (np.nanmin(v[finite]), np.nanmax(v[finite])) if finite.any() else (0.0, 1.0)
    t = np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    colours = cm.map(np.where(finite, t, 0.0))
    d = {None: [0.5, 0.5, 0.5, 1.0], 0: [0, 0, 0, 0]}
    for lab, c, ok in zip(labels, colours, finite):
        d[int(lab)] = list(c) if ok else [0.5, 0.5, 0.5, 1.0]
    return DirectLabelColormap(color_dict=d)


class ObjectTableWidget(QWidget):
    """Measure, table, colour, histogram, classify, track, export."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent: QWidget | None = None):
        super().__init__(parent)
        import pyqtgraph as pg
        from napari.layers import Image, Labels

        self.viewer = napari_viewer
        self.table = None  # pandas.DataFrame of the last measurement
        self.objects_layer = None  # the labels layer whose values are the table's "label"
        self.time_series = False
        self.tracks = None
        self.rates = None
        self.tags: dict[tuple, int] = {}

        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.labels_combo = LayerCombo(napari_viewer, (Labels,))
        self.image_combo = LayerCombo(napari_viewer, (Image,), predicate=lambda l: not l.rgb)
        self.intensity_check = QCheckBox("mean intensity from")
        self.intensity_check.setChecked(True)
        self.classes_check = QCheckBox("labels are classes: each connected region is an object")
        self.time_check = QCheckBox("first axis is time (measure per frame, track)")
        self.measure_button = QPushButton("Measure")
        form.addRow("Labels", self.labels_combo)
        form.addRow(self.intensity_check, self.image_combo)
        form.addRow(self.classes_check)
        form.addRow(self.time_check)
        form.addRow(self.measure_button)
        layout.addLayout(form)

        self.table_widget = QTableWidget(0, 0)
        self.table_widget.setSortingEnabled(True)
        self.table_widget.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table_widget.setMinimumHeight(180)
        layout.addWidget(self.table_widget)
        row = QHBoxLayout()
        self.highlight_check = QCheckBox("show only the selected object")
        self.export_button = QPushButton("Export CSV…")
        row.addWidget(self.highlight_check)
        row.addStretch(1)
        row.addWidget(self.export_button)
        layout.addLayout(row)

        tabs = QTabWidget()
        # --- colour and histogram ---------------------------------------------------------------
        tab = QWidget()
        tl = QVBoxLayout(tab)
        row = QHBoxLayout()
        self.property_combo = QComboBox()
        self.colour_button = QPushButton("Colour labels")
        self.reset_colour_button = QPushButton("Reset")
        row.addWidget(QLabel("Property"))
        row.addWidget(self.property_combo, 1)
        row.addWidget(self.colour_button)
        row.addWidget(self.reset_colour_button)
        tl.addLayout(row)
        self.histogram = pg.PlotWidget()
        self.histogram.setMinimumHeight(150)
        self.histogram.setLabel("left", "objects")
        tl.addWidget(self.histogram)
        tabs.addTab(tab, "Histogram")
        # --- classification ---------------------------------------------------------------------
        tab = QWidget()
        fl = QFormLayout(tab)
        self.class_method = QComboBox()
        self.class_method.addItems(["k-means", "Gaussian mixture", "random forest (from tags)"])
        self.n_classes_spin = QSpinBox()
        self.n_classes_spin.setRange(0, 20)
        self.n_classes_spin.setSpecialValueText("auto")
        self.n_classes_spin.setToolTip("auto: 2 to 6 classes, best silhouette (k-means) or BIC (mixture)")
        row = QHBoxLayout()
        self.tag_spin = QSpinBox()
        self.tag_spin.setRange(1, 20)
        self.tag_button = QPushButton("Tag selected rows as class")
        self.clear_tags_button = QPushButton("Clear tags")
        row.addWidget(self.tag_button)
        row.addWidget(self.tag_spin)
        row.addWidget(self.clear_tags_button)
        self.classify_button = QPushButton("Classify shapes")
        self.class_status = QLabel("")
        self.class_status.setWordWrap(True)
        fl.addRow("Method", self.class_method)
        fl.addRow("Classes", self.n_classes_spin)
        fl.addRow(row)
        fl.addRow(self.classify_button)
        fl.addRow(self.class_status)
        tabs.addTab(tab, "Classes")
        # --- tracking ---------------------------------------------------------------------------
        tab = QWidget()
        fl = QFormLayout(tab)
        self.max_distance_spin = QDoubleSpinBox()
        self.max_distance_spin.setRange(1, 1e6)
        self.max_distance_spin.setValue(60.0)
        self.max_distance_spin.setSuffix(" Å")
        self.max_distance_spin.setToolTip("Largest move of an object between frames, drift included.")
        self.gap_spin = QSpinBox()
        self.gap_spin.setRange(0, 10)
        self.gap_spin.setValue(1)
        self.gap_spin.setToolTip("Frames an object may be missed and still keep its track.")
        row = QHBoxLayout()
        self.track_button = QPushButton("Track")
        self.growth_export_button = QPushButton("Export growth CSV…")
        row.addWidget(self.track_button)
        row.addWidget(self.growth_export_button)
        self.growth_plot = pg.PlotWidget()
        self.growth_plot.setMinimumHeight(150)
        self.growth_plot.setLabel("bottom", "frame")
        self.growth_plot.setLabel("left", "area (Å²)")
        fl.addRow("Max. distance", self.max_distance_spin)
        fl.addRow("Gap closing", self.gap_spin)
        fl.addRow(row)
        fl.addRow(self.growth_plot)
        tabs.addTab(tab, "Tracking")
        layout.addWidget(tabs)
        self.tabs = tabs

        self.runner = TaskRunner("Objects")
        layout.addWidget(self.runner)

        self.measure_button.clicked.connect(self.measure)
        self.table_widget.itemSelectionChanged.connect(self._on_row_selected)
        self.export_button.clicked.connect(lambda: self.export_csv())
        self.growth_export_button.clicked.connect(lambda: self.export_growth_csv())
        self.property_combo.currentIndexChanged.connect(self._update_histogram)
        self.colour_button.clicked.connect(self.colour_by_property)
        self.reset_colour_button.clicked.connect(self.reset_colours)
        self.tag_button.clicked.connect(self.tag_selected)
        self.clear_tags_button.clicked.connect(self._clear_tags)
        self.classify_button.clicked.connect(self.classify)
        self.track_button.clicked.connect(self.track)
        self.highlight_check.toggled.connect(self._on_row_selected)
        self.labels_combo.currentIndexChanged.connect(self._guess_options)
        self._guess_options()

    # ============================================================================ measuring
    def _guess_options(self, *args) -> None:
        layer = self.labels_combo.layer()
        if layer is None:
            return
        role = layer.metadata.get("cryomat_role")
        self.classes_check.setChecked(role in ("annotation", "prediction"))
        is_t = False
        if layer.data.ndim == 3:
            try:
                is_t = str(layer.axis_labels[0]).lower() in ("t", "time", "frame")
            except (AttributeError, IndexError):
                pass
            img = self.image_combo.layer()
            if img is not None and img.metadata.get("axes") == "TYX":
                is_t = True
        self.time_check.setChecked(is_t)

    def measure(self):
        """Measure the objects of the chosen labels layer in a worker; fill the table."""
        labels_layer = self.labels_combo.layer()
        if labels_layer is None:
            show_error("Choose a labels layer to measure (segment or annotate first).")
            return None
        image_layer = self.image_combo.layer() if self.intensity_check.isChecked() else None
        lab = np.asarray(labels_layer.data)
        img = None
        if image_layer is not None:
            if tuple(image_layer.data.shape) != lab.shape:
                show_error(
                    f"The labels '{labels_layer.name}' have shape {lab.shape} but the image "
                    f"'{image_layer.name}' has shape {tuple(image_layer.data.shape)}: choose the image "
                    "they were drawn on, or untick 'mean intensity from'."
                )
                return None
            img = np.asarray(image_layer.data)
        ps = pixel_size_of(labels_layer)
        as_classes = self.classes_check.isChecked()
        series = self.time_check.isChecked()
        if series and lab.ndim < 3:
            show_error("A 2D labels layer is not a time series: untick 'first axis is time'.")
            return None

        def job(progress=None):
            objects = lab
            classes = None
            if as_classes:
                if series:
                    objects = np.zeros(lab.shape, np.int32)
                    classes = {}
                    for t in range(lab.shape[0]):
                        objects[t], cls = core_measure.instances_from_classes(lab[t])
                        classes[t] = cls
                else:
                    objects, classes = core_measure.instances_from_classes(lab)
            if series:
                table = core_measure.measure_series(objects, img, pixel_size=ps, progress=progress)
                if classes is not None and len(table):
                    table.insert(2, "class", [classes[f][l] for f, l in zip(table.frame, table.label)])
            else:
                table = core_measure.measure(objects, img, pixel_size=ps, progress=progress)
                if classes is not None and len(table):
                    table.insert(1, "class", classes[table.label.to_numpy()])
            return objects, table

        def done(result):
            objects, table = result
            if as_classes:
                name = f"{labels_layer.name} objects"
                if name in self.viewer.layers:
                    self.viewer.layers[name].data = objects
                    layer = self.viewer.layers[name]
                else:
                    kw = dict(name=name, scale=tuple(labels_layer.scale),
                              translate=tuple(labels_layer.translate))
                    try:
                        kw["units"] = tuple(labels_layer.units)
                    except AttributeError:
                        pass
                    layer = self.viewer.add_labels(objects, **kw)
            else:
                layer = labels_layer
            self.objects_layer = layer
            self.time_series = series
            self.tracks = None
            self.tags = {}
            self.set_table(table)
            show_info(f"{len(table)} objects measured.")

        return self.runner.start(job, on_done=done)

    # ============================================================================ table
    def set_table(self, table) -> None:
        """Show a DataFrame in the table widget and refresh the property lists."""
        self.table = table.reset_index(drop=True)
        tw = self.table_widget
        tw.setSortingEnabled(False)
        tw.clear()
        cols = list(self.table.columns)
        tw.setColumnCount(len(cols))
        tw.setRowCount(len(self.table))
        tw.setHorizontalHeaderLabels([self._header(c) for c in cols])
        values = self.table.to_numpy()
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                v = values[r, c]
                try:
                    item = _NumericItem(v)
                except (TypeError, ValueError):
                    item = QTableWidgetItem(str(v))
                    item.setFlags(item.flags() & ~Qt.ItemIsEditable)
                tw.setItem(r, c, item)
            tw.item(r, 0).setData(Qt.UserRole + 1, r)  # the row of self.table
        tw.setSortingEnabled(True)
        numeric = [c for c in cols if c not in ("label", "frame", "track_id")
                   and np.issubdtype(self.table[c].dtype, np.number)]
        current = self.property_combo.currentText()
        self.property_combo.blockSignals(True)
        self.property_combo.clear()
        self.property_combo.addItems(numeric)
        idx = self.property_combo.findText(current)
        if idx < 0:
            idx = max(self.property_combo.findText("area"), self.property_combo.findText("volume"), 0)
        self.property_combo.setCurrentIndex(idx)
        self.property_combo.blockSignals(False)
        self._update_histogram()

    @staticmethod
    def _header(col: str) -> str:
        units = {"area": "Å²", "volume": "Å³", "surface_area": "Å²", "perimeter": "Å",
                 "equivalent_diameter": "Å", "major_axis_length": "Å", "minor_axis_length": "Å",
                 "feret_diameter_max": "Å", "orientation": "°", "centroid_x": "Å", "centroid_y": "Å",
                 "centroid_z": "Å"}
        return f"{col} ({units[col]})" if col in units else col

    def selected_rows(self) -> list[int]:
        """Rows of :attr:`table` selected in the (possibly sorted) table widget."""
        rows = {i.row() for i in self.table_widget.selectedItems()}
        out = []
        for r in sorted(rows):
            item = self.table_widget.item(r, 0)
            if item is not None and item.data(Qt.UserRole + 1) is not None:
                out.append(int(item.data(Qt.UserRole + 1)))
        return out

    def select_object(self, row: int) -> None:
        """Select the object of table row ``row`` in the viewer: its label, its frame or slice, and
        centre the camera on it."""
        if self.table is None or self.objects_layer is None:
            return
        rec = self.table.iloc[row]
        layer = self.objects_layer
        layer.selected_label = int(rec["label"])
        layer.show_selected_label = self.highlight_check.isChecked()
        coords = [c for c in ("centroid_z", "centroid_y", "centroid_x") if c in rec.index]
        centre = [float(rec[c]) for c in coords]  # Å, relative to the layer origin
        if self.time_series:
            centre = [float(rec["frame"]) * float(layer.scale[0])] + centre
        world = np.asarray(centre) + np.asarray(layer.translate)[-len(centre):]
        if self.time_series or len(centre) == 3:
            step = list(self.viewer.dims.point)
            step[-len(centre)] = world[0]
            self.viewer.dims.point = step
        scene = getattr(self.viewer, "scene", None)  # napari >= 0.9; viewer.camera before
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.center = tuple(world[-2:])

    def _on_row_selected(self, *args) -> None:
        rows = self.selected_rows()
        if rows:
            self.select_object(rows[0])
        elif self.objects_layer is not None:
            self.objects_layer.show_selected_label = False

    def export_csv(self, path: str | None = None) -> str | None:
        """Write the table (with classes and track ids when present) to CSV."""
        if self.table is None:
            show_warning("Measure first: the table is empty.")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export objects", "objects.csv", "CSV (*.csv)")
            if not path:
                return None
        table = self.table.rename(columns={c: self._header(c) for c in self.table.columns})
        try:
            table.to_csv(path, index=False)
        except OSError as exc:
            show_error(f"Could not write {path}: {exc.strerror or exc}. Choose another file.")
            return None
        show_info(f"{len(table)} objects written to {path}")
        return path

    # ============================================================================ colour
    def _update_histogram(self, *args) -> None:
        import pyqtgraph as pg

        self.histogram.clear()
        col = self.property_combo.currentText()
        if self.table is None or not col:
            return
        v = self.table[col].to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return
        counts, edges = np.histogram(v, bins=min(40, max(5, int(np.sqrt(v.size)))))
        bar = pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush=(90, 160, 230))
        self.histogram.addItem(bar)
        self.histogram.setLabel("bottom", self._header(col))

    def colour_by_property(self, prop: str | None = None) -> None:
        """Colour the objects by a measured property (viridis, low to high)."""
        if self.table is None or self.objects_layer is None:
            show_warning("Measure first.")
            return
        prop = prop or self.property_combo.currentText()
        if self.time_series and "track_id" not in self.table:
            show_warning("In a time series labels repeat from frame to frame: track first, then colour.")
            return
        key = "track_id" if self.time_series else "label"
        per = self.table.groupby(key)[prop].mean() if self.time_series else self.table.set_index(key)[prop]
        self.objects_layer.colormap = _value_colormap(per.index.to_numpy(), per.to_numpy())
        self.objects_layer.metadata["coloured_by"] = prop

    def reset_colours(self) -> None:
        from napari.utils.colormaps import label_colormap

        if self.objects_layer is not None:
            self.objects_layer.colormap = label_colormap()

    # ============================================================================ classes
    def _row_key(self, r: int) -> tuple:
        rec = self.table.iloc[r]
        return (int(rec["frame"]) if "frame" in rec.index else 0, int(rec["label"]))

    def tag_selected(self, value: int | None = None) -> None:
        """Tag the selected rows with a class for supervised classification."""
        if self.table is None:
            show_warning("Measure first.")
            return
        rows = self.selected_rows()
        if not rows:
            show_warning("Select some rows (objects) in the table first.")
            return
        value = int(value or self.tag_spin.value())
        for r in rows:
            self.tags[self._row_key(r)] = value
        self.class_status.setText(f"{len(self.tags)} objects tagged "
                                  f"({len(set(self.tags.values()))} classes)")

    def _clear_tags(self) -> None:
        self.tags = {}
        self.class_status.setText("tags cleared")

    def classify(self) -> None:
        """Classify the shapes; adds a ``shape_class`` column and colours the objects by class."""
        if self.table is None or len(self.table) == 0:
            show_error("Measure some objects first.")
            return
        method = self.class_method.currentIndex()
        try:
            if method == 2:
                tags = np.array([self.tags.get(self._row_key(r), 0) for r in range(len(self.table))])
                classes, conf = core_measure.classify_supervised(self.table, tags)
                msg = f"random forest from {int((tags > 0).sum())} tagged objects"
                extra = {"class_confidence": conf}
            else:
                k = self.n_classes_spin.value() or None
                classes, info = core_measure.classify(
                    self.table, method="kmeans" if method == 0 else "gmm", n_classes=k)
                msg = f"{info['n_classes']} classes from {', '.join(info['properties'])}"
                extra = {}
        except ValueError as exc:
            show_error(str(exc))
            return
        table = self.table.copy()
        table["shape_class"] = classes
        for k, v in extra.items():
            table[k] = v
        self.set_table(table)
        self.class_status.setText(msg)
        self.colour_by_class()

    def colour_by_class(self) -> None:
        from napari.utils.colormaps import DirectLabelColormap

        if self.table is None or "shape_class" not in self.table or self.objects_layer is None:
            return
        d = {None: [0.5, 0.5, 0.5, 1.0], 0: [0, 0, 0, 0]}
        key = "track_id" if (self.time_series and "track_id" in self.table) else "label"
        if self.time_series and key == "label":
            show_info("Classes are in the table; track the series to see them as colours.")
            return
        for lab, c in zip(self.table[key], self.table["shape_class"]):
            d[int(lab)] = _CLASS_PALETTE[(int(c) - 1) % len(_CLASS_PALETTE)]
        self.objects_layer.colormap = DirectLabelColormap(color_dict=d)

    # ============================================================================ tracking
    def track(self):
        """Link the measured objects frame to frame; add a Tracks layer and the growth curves."""
        if self.table is None or not self.time_series:
            show_error("Measure a time series first (tick 'first axis is time', then Measure).")
            return None
        table = self.table
        layer = self.objects_layer
        ps = pixel_size_of(layer)
        opts = dict(max_distance=self.max_distance_spin.value(), gap_frames=self.gap_spin.value())

        def job(progress=None):
            tracks = core_tracking.link_table(table, **opts)
            relabelled = core_tracking.relabel_by_track(np.asarray(layer.data), tracks)
            value = "area" if "area" in tracks else "volume"
            curves, rates = core_tracking.growth_curves(tracks, value=value)
            return tracks, relabelled, curves, rates, value

        def done(result):
            tracks, relabelled, curves, rates, value = result
            coords = [c for c in ("centroid_z", "centroid_y", "centroid_x") if c in tracks]
            data = np.column_stack([tracks["track_id"], tracks["frame"]]
                                   + [tracks[c].to_numpy() / ps for c in coords])
            name = f"{layer.name} tracks"
            scale = tuple(layer.scale)
            if name in self.viewer.layers:
                self.viewer.layers[name].data = data
            else:
                kw = dict(name=name, scale=scale, translate=tuple(layer.translate), tail_length=10)
                try:
                    kw["units"] = tuple(layer.units)
                except AttributeError:
                    pass
                self.viewer.add_tracks(data, **kw)
            # colours follow the objects: a labels layer whose values are the track ids
            tname = f"{layer.name} tracked"
            if tname in self.viewer.layers:
                self.viewer.layers[tname].data = relabelled
                tracked = self.viewer.layers[tname]
            else:
                kw = dict(name=tname, scale=scale, translate=tuple(layer.translate))
                try:
                    kw["units"] = tuple(layer.units)
                except AttributeError:
                    pass
                tracked = self.viewer.add_labels(relabelled, **kw)
            self.objects_layer = tracked
            # same colour for a track's labels, its tail and its growth curve
            import pyqtgraph as pg
            from napari.utils.colormaps import DirectLabelColormap

            tids = sorted(tracks["track_id"].unique())
            colours = {None: [0.5, 0.5, 0.5, 1.0], 0: [0, 0, 0, 0]}
            for k, tid in enumerate(tids):
                colours[int(tid)] = list(pg.intColor(k, hues=max(len(tids), 1)).getRgbF())
            tracked.colormap = DirectLabelColormap(color_dict=colours)
            tracks = tracks.assign(label=tracks["track_id"])
            self.tracks = tracks
            self.rates = rates
            self.set_table(tracks)
            self._plot_growth(curves, value)
            show_info(f"{tracks.track_id.nunique()} tracks.")

        return self.runner.start(job, on_done=done)

    def _plot_growth(self, curves, value: str) -> None:
        import pyqtgraph as pg

        self.growth_plot.clear()
        self.growth_plot.addLegend(offset=(5, 5))
        self.growth_plot.setLabel("left", f"{value} ({'Å²' if value == 'area' else 'Å³'})")
        for k, tid in enumerate(sorted(curves.columns)):
            y = curves[tid].to_numpy(float)
            ok = np.isfinite(y)
            colour = pg.intColor(k, hues=max(len(curves.columns), 1))
            self.growth_plot.plot(curves.index.to_numpy(float)[ok], y[ok], pen=pg.mkPen(colour, width=2),
                                  symbol="o", symbolSize=5, symbolBrush=colour, name=f"track {tid}")
        self.growth_curves = curves

    def export_growth_csv(self, path: str | None = None) -> str | None:
        """Growth curves (one column per track) and growth rates to CSV."""
        if self.tracks is None:
            show_warning("Track first.")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export growth curves", "growth.csv", "CSV (*.csv)")
            if not path:
                return None
        curves = self.growth_curves.copy()
        curves.columns = [f"track_{c}" for c in curves.columns]
        try:
            curves.to_csv(path, index_label="frame")
            rates_path = str(path).rsplit(".", 1)[0] + "_rates.csv"
            self.rates.to_csv(rates_path, index=False)
        except OSError as exc:
            show_error(f"Could not write {path}: {exc.strerror or exc}. Choose another file.")
            return None
        show_info(f"Growth curves written to {path} and rates to {rates_path}")
        return path
