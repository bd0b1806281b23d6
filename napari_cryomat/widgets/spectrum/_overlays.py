"""The Spectrum imaging tool's own layers: the "spectrum ROI" (its last area shape is summed) and
the "composition line" (its last line gives the profile).

Both are :class:`HelperLayer` s: added when the user asks for them, shown only while the tool is
in front, removed when it closes. No Qt.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_cryomat.widgets._base.layers import HelperLayer
from napari_cryomat.widgets.spectrum._jobs import SpectrumImage
from napari_cryomat.widgets.spectrum._sampling import RoiRegion

__all__ = ["LINE_NAME", "ROI_NAME", "Overlays", "to_pixels"]

ROI_NAME = "spectrum ROI"
LINE_NAME = "composition line"
_REGION_TYPES = ("rectangle", "polygon", "ellipse")
_LINE_TYPES = ("line", "path")


class Overlays:
    """The ROI and line helper layers. ``roi_placement()`` / ``line_placement()`` give the
    scale, translate and units of a new layer (those of the SI, of the maps), and raise
    ValueError when there is nothing to draw on."""

    def __init__(self, viewer, roi_placement: Callable[[], dict], line_placement: Callable[[], dict]):
        self.viewer = viewer
        self.roi = HelperLayer(viewer, ROI_NAME, "shapes", lambda kept: (kept, dict(
            ndim=2, edge_color="#ffb000", face_color=[1, 0.7, 0, 0.15], edge_width=1, **roi_placement())))
        self.line = HelperLayer(viewer, LINE_NAME, "shapes", lambda kept: (kept, dict(
            ndim=2, edge_color="white", edge_width=1.5, **line_placement())))
        self._wanted: set[str] = set()  # helpers the user asked for

    def start_roi(self):
        """Show the ROI layer, selected, in rectangle mode."""
        return self._start(self.roi, "add_rectangle")

    def start_line(self):
        """Show the composition-line layer, selected, in line mode."""
        return self._start(self.line, "add_line")

    def _start(self, helper: HelperLayer, mode: str):
        layer = helper.show()
        self._wanted.add(helper.name)
        self.viewer.layers.selection.active = layer
        layer.mode = mode
        return layer

    def set_in_front(self, in_front: bool) -> None:
        """The tool came to the front (show the helpers asked for) or went behind (hide them)."""
        for helper in (self.roi, self.line):
            if helper.name in self._wanted:
                helper.show() if in_front else helper.hide()

    def layer_removed(self, layer) -> bool:
        """A layer left the viewer; a helper the user deleted is forgotten. True if it was one."""
        for helper in (self.roi, self.line):
            if helper.layer is not None and layer is helper.layer:
                helper.remove()
                self._wanted.discard(helper.name)
                return True
        return False

    def close(self) -> None:
        self._wanted.clear()
        self.roi.remove()
        self.line.remove()

    def roi_region(self, src: SpectrumImage) -> RoiRegion | None:
        """The ROI layer's last area shape in ``src``'s pixels, or None."""
        found = _last_shape(self.roi, _REGION_TYPES)
        if found is None:
            return None
        shape_type, pixels = found[0], to_pixels(self.roi.layer, found[1], src)
        return RoiRegion(shape_type, tuple((round(y, 6), round(x, 6)) for y, x in pixels))

    def line_ends(self, src: SpectrumImage) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """(start, end) of the line layer's last line in ``src``'s pixels, or None."""
        found = _last_shape(self.line, _LINE_TYPES)
        if found is None:
            return None
        pixels = to_pixels(self.line.layer, found[1], src)
        return tuple(pixels[0]), tuple(pixels[-1])


def _last_shape(helper: HelperLayer, types: tuple[str, ...]):
    """(shape type, vertices) of the helper's last shape of one of ``types``, or None."""
    if not helper.shown:
        return None
    layer = helper.layer
    shapes = [(t, d) for d, t in zip(layer.data, layer.shape_type) if t in types]
    return shapes[-1] if shapes else None


def to_pixels(layer, vertices, src: SpectrumImage) -> np.ndarray:
    """Vertices of a 2D shapes layer (its data coordinates) in ``src``'s pixels (y, x)."""
    vertices = np.asarray(vertices, dtype=float)[:, -2:]
    world = vertices * np.asarray(layer.scale[-2:]) + np.asarray(layer.translate[-2:])
    return (world - np.asarray(src.translate)) / src.pixel_size
