"""Layers: find, add-or-update, pick, and the helper layers a tool owns.

Layers are identified one way: by name, plus ``metadata["cryomat_helper"]`` for helper layers (an
ROI, cut lines) that belong to a tool's view and are never offered as inputs. No Qt widgets here
except :class:`LayerCombo`; models import the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QWidget

from napari_cryomat.core.units import PIXEL, length_to_angstrom
from napari_cryomat.io.spectral import is_spectrum_image_layer
from napari_cryomat.widgets._base.choices import placeholder_while_empty

if TYPE_CHECKING:
    import napari

__all__ = [
    "CLASS_PALETTE",
    "HELPER_KEY",
    "HelperLayer",
    "LayerCombo",
    "camera_of",
    "class_colormap",
    "compact_labels",
    "frame_stack",
    "image_data",
    "is_frame_stack",
    "is_grey_image",
    "is_helper_layer",
    "palette_colour",
    "pixel_size_of",
    "real_layer",
    "upsert_layer",
    "value_colormap",
]

HELPER_KEY = "cryomat_helper"


def camera_of(viewer):
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera

#: the one palette for classes (segmentation classes, shape classes of objects): Sasha Trubetskoy's
#: 20 distinct colours, first ten.
CLASS_PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                 "#bfef45", "#fabed4", "#469990")


def real_layer(layer):
    """The layer itself, not napari's plugin proxy (proxies are new objects on every lookup, so
    ``is`` comparisons and signal connections on them fail)."""
    return getattr(layer, "__wrapped__", layer)


def is_helper_layer(layer) -> bool:
    return bool(getattr(layer, "metadata", {}).get(HELPER_KEY))


def is_grey_image(layer) -> bool:
    """A grey image, stack or volume a pixel tool (segment, denoise, measure) can take: not RGB, not a
    spectrum image or its frames (an axis is energy: its planes are not slices or frames; maps and PCA live in
    the Spectrum imaging dock)."""
    return not getattr(layer, "rgb", False) and not is_spectrum_image_layer(layer)


def image_data(layer):
    """The pixels of an image layer at full resolution: level 0 of a multiscale layer (a big micrograph
    opens with binned overview levels, io/_pyramid.py), else ``layer.data``. Never ``np.asarray`` a
    multiscale layer's data: napari gives its smallest level."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def is_frame_stack(layer) -> bool:
    """A grey (T, Y, X) stack of images, or the (T, 1, Y, X) image frames a reader puts beside a spectrum
    image's frames (the singleton keeps their time off the energy slider); not a spectrum image."""
    if not is_grey_image(layer):
        return False
    shape = np.shape(image_data(layer))
    return len(shape) == 3 or (len(shape) == 4 and shape[1] == 1)


def frame_stack(data):
    """The (T, Y, X) frames of an :func:`is_frame_stack` layer's data (a view: a lazy stack stays lazy)."""
    return data[:, 0] if np.ndim(data) == 4 and np.shape(data)[1] == 1 else data


def pixel_size_of(layer: "napari.layers.Layer", axis: int = -1) -> float:
    """Size in Å of one pixel of ``layer`` along ``axis`` (default X), from its scale and units.

    A layer with napari's default unit-less scale gives its scale as is ("pixels"), which keeps
    every computation defined. A non-length unit (eV, s) raises ValueError naming it.
    """
    scale = float(layer.scale[axis])
    units = getattr(layer, "units", None)
    unit = str(units[axis]) if units is not None else PIXEL
    if unit in (PIXEL, "", "None"):
        return scale
    return length_to_angstrom(scale, unit)


def upsert_layer(viewer: "napari.viewer.Viewer", data, *, name: str, kind: str = "image", overview: bool = False,
                 **kwargs):
    """Update the layer called ``name`` with ``data`` and ``kwargs``, or add it.

    ``kind`` is napari's add method suffix ("image", "labels", "shapes", "points"). An existing
    layer of another type, dimensionality or scale structure is replaced. Returns the (real) layer.

    ``overview``: a big image, or a stack of big frames (a 3D ``data`` is taken as frames unless its
    ``axis_labels`` start with "z"), gets binned overview levels and their contrast limits, as the readers
    give a file's (io/_pyramid.py): a tool's 4k result would otherwise show aliased pixel noise. For
    images whose pixels may be averaged (not a wrapped phase).
    """
    if overview and kind == "image":
        data, kwargs = _with_overview_levels(data, kwargs)
    multiscale = bool(kwargs.get("multiscale"))
    existing = real_layer(viewer.layers[name]) if name in viewer.layers else None
    if existing is not None and existing._type_string == kind \
            and bool(getattr(existing, "multiscale", False)) == multiscale \
            and np.ndim(image_data(existing)) == np.ndim(data[0] if multiscale else data):
        existing.data = data
        for key, value in kwargs.items():
            if key in ("rgb", "multiscale", "cache", "ndim") or _unchanged(existing, key, value):
                continue
            setattr(existing, key, value)
        return existing
    if existing is not None:
        viewer.layers.remove(existing)
    return real_layer(getattr(viewer, f"add_{kind}")(data, name=name, **kwargs))


def _with_overview_levels(data, kwargs: dict) -> tuple[Any, dict]:
    """(levels, kwargs with multiscale and the overview's contrast limits) for a big image or stack of big
    frames; else (data, kwargs) as they were."""
    from napari_cryomat.io._pyramid import overview_contrast_limits, overview_pyramid, wants_overview

    if "spectrum_image" in (kwargs.get("metadata") or {}) or \
            not wants_overview(data, rgb=bool(kwargs.get("rgb")), axis_labels=kwargs.get("axis_labels") or ("frames",)):
        return data, kwargs  # a spectrum image's first axis is energy, and the Spectrum dock takes its data as is
    limits = overview_contrast_limits(data)
    kwargs = {**kwargs, "multiscale": True}
    if limits is not None:
        kwargs["contrast_limits"] = limits
    return overview_pyramid(data), kwargs


def _unchanged(layer, key: str, value) -> bool:
    """True if ``layer.key`` already equals ``value``, for a few numbers only (scale, contrast
    limits, opacity): setting them again refreshes the layer, tens of ms for nothing."""
    if not isinstance(value, (int, float, tuple, list, np.ndarray)) or np.size(value) > 16:
        return False
    try:
        current = np.asarray(getattr(layer, key))
        new = np.asarray(value)
        return current.dtype.kind in "biuf" and new.dtype.kind in "biuf" and np.array_equal(current, new)
    except Exception:  # anything else is compared by setting it
        return False


class HelperLayer:
    """A layer that belongs to a tool's view (an ROI rectangle, cut lines).

    It is added the first time its tool is in front, shown only while the tool is in front
    (:meth:`show` / :meth:`hide`) and removed when the tool closes (:meth:`remove`). ``make(data)``
    returns ``(data, kwargs)`` for ``viewer.add_<kind>``; ``data`` is the kept data or None the
    first time.

    Why hidden rather than removed while the tool is behind: with napari 0.9 and vispy 0.17 (Mesa),
    removing the last Shapes layer and adding a new one later crashes the GL draw (segfault in
    ``glDrawArrays``; reproduced with plain napari, three add/remove cycles). Hiding keeps the
    layer's GL objects alive; the ROI also keeps where the user left it.
    """

    def __init__(self, viewer, name: str, kind: str, make: Callable[[Any], tuple[Any, dict]]):
        self.viewer = viewer
        self.name = name
        self.kind = kind
        self._make = make
        self._kept = None  # data of a layer the user deleted, for the next show
        self.layer = None
        self._listeners: list[tuple[str, Callable]] = []  # (layer event name, callback)

    @property
    def present(self) -> bool:
        """The layer is in the viewer (shown or hidden)."""
        return self.layer is not None and self.layer in self.viewer.layers

    @property
    def shown(self) -> bool:
        """The layer is in the viewer and visible: the tool is in front."""
        return self.present and bool(self.layer.visible)

    def on_data(self, callback: Callable, *, events: tuple[str, ...] = ("data",)) -> None:
        """Call ``callback(event)`` whenever the helper's data change.

        ``events`` names the layer events to follow: a Shapes layer emits ``data`` only when a drag
        ends; add ``"set_data"`` to follow the drag itself (it fires at every move).
        """
        for name in events:
            self._listeners.append((name, callback))
            if self.present:
                getattr(self.layer.events, name).connect(callback)

    def show(self, *, reset: bool = False):
        """Show the layer (adding it the first time) and return it; ``reset`` puts its data back
        to the default. The previously selected layer stays selected."""
        if self.layer is not None and not self.present:  # the user deleted it
            self._kept = self.layer.data
            self._detach()
        if self.present:
            if reset:
                self._refill(*self._make(None))
            self.layer.visible = True
            return self.layer
        active = self.viewer.layers.selection.active
        data, kwargs = self._make(None if reset else self._kept)
        metadata = dict(kwargs.pop("metadata", {}), **{HELPER_KEY: True})
        self.layer = real_layer(getattr(self.viewer, f"add_{self.kind}")(data, name=self.name, metadata=metadata, **kwargs))
        for name, callback in self._listeners:
            getattr(self.layer.events, name).connect(callback)
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active
        return self.layer

    def _refill(self, data, kwargs: dict) -> None:
        """Put default data and placement into the existing layer (never remove and re-add it)."""
        for key in ("scale", "translate", "units"):
            if key in kwargs:
                setattr(self.layer, key, kwargs[key])
        if self.kind != "shapes":
            self.layer.data = data
            return
        style = {k: kwargs[k] for k in ("shape_type", "edge_width", "edge_color", "face_color") if k in kwargs}
        self.layer.selected_data = set(range(self.layer.nshapes))
        self.layer.remove_selected()
        if data is not None and len(data):
            self.layer.add(data, **style)

    def hide(self) -> None:
        """Hide the layer (the tool went behind another tab); :meth:`show` brings it back as it was."""
        if self.present:
            self.layer.visible = False

    def remove(self) -> None:
        """Remove the layer and forget its data (the tool is closing)."""
        self._kept = None
        if self.layer is not None:
            self._detach()

    def _detach(self) -> None:
        layer, self.layer = self.layer, None
        for name, callback in self._listeners:
            try:
                getattr(layer.events, name).disconnect(callback)
            except Exception:
                pass
        if layer in self.viewer.layers:
            self.viewer.layers.remove(layer)


class LayerCombo(QComboBox):
    """A combo box of the viewer's layers of some types (helper layers excluded), kept in sync.

    With no such layer it is disabled and shows ``placeholder`` greyed, its tooltip starting with ``why``
    (:func:`placeholder_while_empty`); by default they name the layer kind, e.g. "no labels layer".
    """

    def __init__(
        self,
        viewer: "napari.viewer.Viewer",
        layer_types: tuple[type, ...],
        predicate: Callable[[object], bool] | None = None,
        parent: QWidget | None = None,
        *,
        placeholder: str | None = None,
        why: str | None = None,
    ):
        super().__init__(parent)
        self._viewer = viewer
        self._layer_types = layer_types
        self._predicate = predicate or (lambda layer: True)
        kinds = " or ".join(t.__name__.lower() for t in layer_types)
        self._events = (viewer.layers.events.inserted, viewer.layers.events.removed, viewer.layers.events.reordered)
        for event in self._events:
            event.connect(self.refresh)
        self.destroyed.connect(self._disconnect_factory(self._events, self.refresh))
        self.refresh()
        # with a predicate, layers of the kind may be there but none this tool takes: "no image layer" would be false
        default = f"no {kinds} layer" if predicate is None else f"no suitable {kinds} layer"
        placeholder_while_empty(self, placeholder or default,
                                why or f"No {kinds} layer in the viewer that this tool can take: open a file "
                                       "(File > Open) or make one with another tool; it is listed here.")

    @staticmethod
    def _disconnect_factory(events, callback):
        def disconnect(*_args):
            for event in events:
                try:
                    event.disconnect(callback)
                except Exception:
                    pass

        return disconnect

    def candidates(self) -> Iterable:
        for layer in self._viewer.layers:
            if isinstance(layer, self._layer_types) and not is_helper_layer(layer) and self._predicate(layer):
                yield layer

    def refresh(self, event=None) -> None:
        names = [layer.name for layer in self.candidates()]
        if names == [self.itemText(i) for i in range(self.count())]:
            return  # refilling would empty it for a moment: disabled, it would lose the keyboard focus
        current = self.currentText()
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        idx = self.findText(current)
        self.setCurrentIndex(idx if idx >= 0 else (self.count() - 1))
        self.blockSignals(False)
        if self.currentText() != current:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self):
        """The chosen (real) layer, or None."""
        name = self.currentText()
        if not name or name not in self._viewer.layers:
            return None
        return real_layer(self._viewer.layers[name])

    def set_layer(self, layer_or_name) -> None:
        name = getattr(layer_or_name, "name", layer_or_name)
        idx = self.findText(str(name))
        if idx >= 0:
            self.setCurrentIndex(idx)


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """Non-negative ``labels`` in the smallest unsigned type that holds them (uint8, uint16, else
    uint32): napari colours 8- and 16-bit labels through a lookup table, wider ones by re-mapping
    every pixel on the GUI thread (~0.1 s for 2048²) at each colour change."""
    top = int(labels.max(initial=0))
    dtype = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32
    return labels.astype(dtype, copy=False)


def class_colormap(colours: dict[int, str]):
    """A napari DirectLabelColormap: 0 transparent, each id its colour, any other id grey."""
    from napari.utils.colormaps import DirectLabelColormap

    colors = {None: [0.6, 0.6, 0.6, 1.0], 0: [0.0, 0.0, 0.0, 0.0]}
    colors.update({int(k): v for k, v in colours.items()})
    return DirectLabelColormap(color_dict=colors)


def palette_colour(class_id: int) -> str:
    """The palette's colour for class ``class_id`` (1-based)."""
    return CLASS_PALETTE[(int(class_id) - 1) % len(CLASS_PALETTE)]


def value_colormap(labels: np.ndarray, values: np.ndarray, cmap: str = "viridis"):
    """DirectLabelColormap colouring each label by a value (NaN grey)."""
    from napari.utils.colormaps import ensure_colormap

    cm = ensure_colormap(cmap)
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    lo, hi = (np.nanmin(v[finite]), np.nanmax(v[finite])) if finite.any() else (0.0, 1.0)
    t = np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    colours = cm.map(np.where(finite, t, 0.0))
    grey = [0.5, 0.5, 0.5, 1.0]
    return class_colormap({int(lab): (list(c) if ok else grey) for lab, c, ok in zip(labels, colours, finite)})
