"""Click to segment: one object from a few clicks, refined by more clicks. No Qt.

A click session is one object: the first click seeds it, a Ctrl-click adds a part, a Shift-click
marks what is not the object. Each click makes a :class:`ClickRequest` holding every click of the
session so far (GUI thread, cheap). :meth:`ClickTool.compute` segments a batch of requests in a
worker (random walker and Segment Anything take seconds) and :meth:`ClickTool.apply` paints them,
each replacing its session's previous version of the object.

The batch is :meth:`ClickTool.unpainted`: the newest request of every session not painted yet. So
a view can run batches "latest request wins": a refinement supersedes the older request of the same
object, while an object whose computation was overtaken by a click on the next object is still
painted (its mask, once computed, is kept on the request and not computed again).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_cryomat.core import segment as seg
from napari_cryomat.widgets._base.layers import image_data

__all__ = ["ClickOptions", "ClickRequest", "ClickSession", "ClickTool", "CLICK_METHODS", "SAM_METHOD"]

CLICK_METHODS = ("flood", "watershed", "random_walker")
SAM_METHOD = "segment anything"


@dataclass(frozen=True)
class ClickOptions:
    """How to segment from clicks (see :func:`core.segment.click_segment`); lengths in Å."""

    method: str = "flood"
    tolerance: float | None = None  # None: from the clicked value and the local background
    max_radius: float = 300.0
    split_distance: float = 30.0
    sam_weights: str = ""
    sam_model: str = "vit_b"


@dataclass
class ClickSession:
    """The clicks of one object and what its last version painted (to undo on refinement)."""

    layer: Any
    value: int
    z: int | None  # the slice of a stack or tomogram the object lies in
    points: list = field(default_factory=list)
    background: list = field(default_factory=list)
    painted: tuple | None = None  # index arrays of the pixels the last version painted


@dataclass(eq=False)
class ClickRequest:
    """One version of one object: its clicks and how to segment it; ``mask`` once computed."""

    session: ClickSession
    image: Any = field(repr=False)  # (Y, X): the image, or the slice the object lies in (lazy)
    points: tuple
    background: tuple
    pixel_size: float
    options: ClickOptions
    mask: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None


class ClickTool:
    """Click sessions on one annotation, and the Segment Anything model (loaded once)."""

    def __init__(self):
        self.session: ClickSession | None = None
        self.pending: dict[int, ClickRequest] = {}  # id(session) -> its newest unpainted request
        self._sam = None

    def reset(self) -> None:
        """Forget the current object and what is not painted yet (the annotation changed)."""
        self.session = None
        self.pending.clear()

    def unpainted(self) -> tuple[ClickRequest, ...]:
        """The batch to compute: the newest request of every session that is not painted yet."""
        return tuple(self.pending.values())

    def request(self, image, annotation, point, *, mode: str, pixel_size: float,
                options: ClickOptions) -> ClickRequest | None:
        """GUI thread: record a click at ``point`` (data coordinates of ``image``, pixels).

        ``mode``: ``"new"`` starts an object, ``"add"`` adds a part, ``"background"`` marks what is
        not the object. Returns None for a click outside the image; ValueError for what the user
        must fix (no SAM weights chosen).
        """
        if options.method == SAM_METHOD and not options.sam_weights.strip():
            raise ValueError("Choose a local Segment Anything weights file first (SAM weights).")
        point = np.round(np.asarray(point, dtype=float)).astype(int)
        shape = np.asarray(image.data.shape)
        if point.size != shape.size or np.any(point < 0) or np.any(point >= shape):
            return None
        session = self.session
        if mode == "new" or session is None or session.layer is not annotation:
            z = int(point[0]) if point.size == 3 else None  # clicks in a volume segment one slice
            session = ClickSession(annotation, int(annotation.selected_label), z)
            self.session = session
        target = session.background if mode == "background" else session.points
        target.append(point)
        if not session.points:
            return None  # only background so far: nothing to segment
        on_slice = [p for p in session.points if session.z is None or p[0] == session.z]
        off = [p for p in session.background if session.z is None or p[0] == session.z]
        if session.z is not None:
            on_slice, off = [p[1:] for p in on_slice], [p[1:] for p in off]
        pixels = image_data(image)  # full resolution, not a multiscale layer's overview
        data = pixels if session.z is None else pixels[session.z]
        request = ClickRequest(session, data, tuple(map(tuple, on_slice)), tuple(map(tuple, off)),
                               float(pixel_size), options)
        self.pending[id(session)] = request
        return request

    def compute(self, batch: tuple[ClickRequest, ...]) -> tuple[ClickRequest, ...]:
        """Worker: the mask of every request of ``batch`` (kept on the request); a ValueError (a
        click the method cannot use, missing weights) is kept as the request's ``error``."""
        for request in batch:
            if request.mask is None and request.error is None:
                try:
                    request.mask = self._segment(request)
                except ValueError as exc:
                    request.error = str(exc)
        return batch

    def _segment(self, request: ClickRequest) -> np.ndarray:
        options = request.options
        if options.method == SAM_METHOD:
            segmenter = self._sam_segmenter(options.sam_weights.strip(), options.sam_model)
            return segmenter.segment(np.asarray(request.image), request.points,
                                     background_points=request.background)
        return seg.click_segment(request.image, request.points, background_points=request.background,
                                 pixel_size=request.pixel_size, method=options.method,
                                 tolerance=options.tolerance, max_radius=options.max_radius,
                                 split_distance=options.split_distance)

    def _sam_segmenter(self, weights: str, model_type: str) -> seg.SamSegmenter:
        sam = self._sam
        if sam is None or str(sam.checkpoint) != os.path.expanduser(weights) or sam.model_type != model_type:
            sam = self._sam = seg.SamSegmenter(weights, model_type=model_type)
        return sam

    def apply(self, batch: tuple[ClickRequest, ...]) -> list[str]:
        """GUI thread: paint the computed objects of ``batch`` that are still the newest version of
        their object. Returns the errors to show."""
        errors = []
        for request in batch:
            key = id(request.session)
            if self.pending.get(key) is not request or (request.mask is None and request.error is None):
                continue  # superseded by a newer click on the same object, or not computed
            del self.pending[key]
            if request.error is not None:
                errors.append(request.error)
            else:
                self._paint(request)
        return errors

    def drop(self, batch: tuple[ClickRequest, ...]) -> None:
        """Forget ``batch`` (its computation failed unexpectedly): it is not tried again."""
        for request in batch:
            if self.pending.get(id(request.session)) is request:
                del self.pending[id(request.session)]

    @staticmethod
    def _paint(request: ClickRequest) -> int:
        """Paint the object with the session's class on unpainted pixels, replacing the session's
        previous version. Returns the number of pixels painted."""
        session, layer, mask = request.session, request.session.layer, request.mask
        if session.painted is not None:
            layer.data_setitem(session.painted, 0, refresh=False)
        current = np.asarray(layer.data if session.z is None else layer.data[session.z])
        index = np.nonzero(mask & (current == 0))
        if session.z is not None:
            index = (np.full(index[0].size, session.z),) + index
        session.painted = index
        layer.data_setitem(index, session.value)
        return int(index[0].size)
