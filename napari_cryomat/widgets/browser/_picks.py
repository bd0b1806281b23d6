"""Picks and distances of the tomogram browser: a Points layer per tomogram, CSV / RELION STAR in
the file's own voxel indices, and distances in Å drawn as a Shapes layer. No Qt widgets.

Picks are kept as displayed voxel indices (z, y, x) of the browsed layer; files hold the MRC
file's indices (the reader shows MRC files flipped in Y, as 3dmod does), converted with
:func:`napari_cryomat.io.mrc.display_to_file_zyx` on the way out and back in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from napari_cryomat.core import picks as core_picks
from napari_cryomat.core import tomo as core_tomo
from napari_cryomat.io.mrc import display_to_file_zyx, file_to_display_zyx

if TYPE_CHECKING:
    from napari_cryomat.widgets.browser._model import BrowserModel

__all__ = ["Annotations", "ImportReport"]

MEASURE_LAYER = "measurements"


class ImportReport:
    """What :meth:`Annotations.import_picks` read: ``count`` picks, ``outside`` of them out of the
    volume, and a one-line ``message`` for the user."""

    def __init__(self, count: int, outside: int, name: str, shape: tuple):
        self.count, self.outside = count, outside
        self.message = f"Imported {count} picks from {name}"
        if outside:
            self.message += (f"; {outside} lie outside the volume {shape}: were they picked on a tomogram "
                             "with another binning?")


class Annotations:
    """Picks and distance measurements on the browser's tomogram.

    Signals: ``picks_changed(count)``, ``measure_changed(text)`` (text for a "Distance" label).
    """

    picks_changed = Signal(int)
    measure_changed = Signal(str)

    def __init__(self, browser: "BrowserModel"):
        self.browser = browser
        self.viewer = browser.viewer
        self.measurements: list[float] = []  # distances in Å, in the order measured
        self._first: np.ndarray | None = None  # first point of a measurement in progress
        self._measure_layer = None
        self._watched = None  # the picks layer whose edits update the count
        browser.source_changed.connect(self._on_source)

    def _on_source(self, _layer) -> None:
        self._first = None
        self.picks_changed.emit(self.count)

    def forget(self, layer) -> None:
        """A layer left the viewer: stop using it if it was ours."""
        if layer is self._measure_layer:
            self._measure_layer = None
        self.picks_changed.emit(self.count)

    # ------------------------------------------------------------------------------- picks ----
    def _picks_name(self) -> str:
        return f"{self.browser.source.name} picks"

    def find_picks_layer(self):
        """The Points layer of the current tomogram's picks, or None (nothing created)."""
        src = self.browser.source
        if src is None or self._picks_name() not in self.viewer.layers:
            return None
        layer = self.viewer.layers[self._picks_name()]
        if layer.metadata.get("picks_for") != src.name:
            return None
        if layer is not self._watched:  # edits with napari's own point tools update the count too
            layer.events.data.connect(self._on_picks_edited)
            self._watched = layer
        return layer

    def _on_picks_edited(self, _event=None) -> None:
        self.picks_changed.emit(self.count)

    @property
    def picks_layer(self):
        """The Points layer collecting picks for the current tomogram (created on first use)."""
        layer = self.find_picks_layer()
        if layer is not None or self.browser.source is None:
            return layer
        src = self.browser.source
        layer = self.viewer.add_points(
            np.zeros((0, 3)), ndim=3, name=self._picks_name(), scale=tuple(src.scale[-3:]),
            translate=tuple(src.translate[-3:]), units=self.browser.units(3),
            size=float(np.clip(0.04 * max(src.data.shape[1:]), 6.0, 40.0)),  # voxels; napari's controls change it
            face_color="transparent", border_color="lime", border_width=0.15, symbol="disc",
            out_of_slice_display=False, metadata={"picks_for": src.name},
        )
        self.find_picks_layer()  # starts following its edits
        self.viewer.layers.selection.active = self.browser.display.layer
        return layer

    @property
    def count(self) -> int:
        layer = self.find_picks_layer()
        return 0 if layer is None else len(layer.data)

    def add_pick(self, zyx) -> None:
        """Add a pick at displayed voxel indices (z, y, x) of the tomogram."""
        self.browser.require_source()
        self.picks_layer.add(np.asarray(zyx, dtype=float)[None, :])
        self.picks_changed.emit(self.count)

    def undo_pick(self) -> None:
        """Remove the last pick."""
        layer = self.find_picks_layer()
        if layer is not None and len(layer.data):
            layer.data = layer.data[:-1]
        self.picks_changed.emit(self.count)

    def export_picks(self, path) -> Path:
        """Write the picks to ``path`` (``.star``: RELION STAR, else CSV) in the file's voxel
        indices. Returns the path; ValueError or OSError say what went wrong."""
        self.browser.require_source()
        layer = self.find_picks_layer()
        if layer is None or len(layer.data) == 0:
            raise ValueError("no picks to export. Choose 'Pick' and click particles first.")
        src = self.browser.source
        meta = src.metadata.get("mrc")
        points = display_to_file_zyx(np.asarray(layer.data, dtype=float), meta)
        tomo_name = Path(meta["path"]).name.split(".")[0] if meta and meta.get("path") else src.name
        return core_picks.write_picks(path, points, voxel_size=tuple(self.browser.voxel_size), tomo_name=tomo_name)

    def import_picks(self, path) -> ImportReport:
        """Add the picks of a CSV or STAR file (file voxel indices) to the picks layer."""
        self.browser.require_source()
        points = core_picks.read_picks(path)
        if len(points) == 0:
            raise ValueError(f"{Path(path).name} holds no picks.")
        src = self.browser.source
        points = file_to_display_zyx(points, src.metadata.get("mrc"))
        shape = np.asarray(src.data.shape)
        outside = int(np.sum(np.any((points < -0.5) | (points > shape - 0.5), axis=1)))
        self.picks_layer.add(points)
        self.picks_changed.emit(self.count)
        return ImportReport(len(points), outside, Path(path).name, tuple(int(s) for s in shape))

    # --------------------------------------------------------------------------- distances ----
    def measure_click(self, zyx) -> float | None:
        """The first call keeps a point; the second returns the distance to it in Å and draws it."""
        self.browser.require_source()
        point = np.asarray(zyx, dtype=float)
        if self._first is None:
            self._first = point
            self.measure_changed.emit("Distance: click the second point…")
            return None
        first, self._first = self._first, None
        voxel = self.browser.voxel_size
        distance = core_tomo.distance_angstrom(first, point, voxel_size=voxel)
        self.measurements.append(distance)
        self._draw(first, point, distance)
        dz = abs(point[0] - first[0]) * voxel[0]
        self.measure_changed.emit(f"Distance: {distance:.1f} Å" + (f" (Δz {dz:.0f} Å)" if dz else ""))
        return distance

    def _draw(self, p0: np.ndarray, p1: np.ndarray, distance: float) -> None:
        src = self.browser.source
        layer = self._measure_layer
        if layer is None or layer not in self.viewer.layers:
            layer = self.viewer.add_shapes(
                ndim=3, name=MEASURE_LAYER, scale=tuple(src.scale[-3:]), translate=tuple(src.translate[-3:]),
                units=self.browser.units(3), edge_color="yellow",
                edge_width=float(np.clip(0.004 * max(src.data.shape[1:]), 1.0, 6.0)),
                features={"distance_angstrom": np.zeros(0), "z0": np.zeros(0), "z1": np.zeros(0)},
                text={"string": "{distance_angstrom:.1f} Å", "color": "yellow", "size": 10, "anchor": "upper_left"},
            )
            self._measure_layer = layer
            self.viewer.layers.selection.active = self.browser.display.layer
        # drawn in the plane of the second click (napari shows planar shapes in 2D); the true
        # endpoints are kept in the features table.
        line = np.array([[p1[0], p0[1], p0[2]], [p1[0], p1[1], p1[2]]])
        layer.feature_defaults = {"distance_angstrom": distance, "z0": p0[0], "z1": p1[0]}
        layer.add_lines(line)

    def clear_measurements(self) -> None:
        """Forget every distance and remove their layer."""
        self.measurements.clear()
        self._first = None
        layer, self._measure_layer = self._measure_layer, None
        if layer is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)
        self.measure_changed.emit("Distance: -")

    @property
    def measure_layer(self):
        return self._measure_layer
