"""What an alignment of a tilt series is (:class:`TiltAlignment`) and the error raised when fiducial-free
alignment loses the specimen; both are public through :mod:`napari_cryomat.core.tilt`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from napari_cryomat.core import _tilt_align as _al
from napari_cryomat.core._validate import integer, real_array


class ShiftBeyondFieldError(ValueError):
    """Fiducial-free alignment lost the specimen (a shift beyond half the field). ``detail`` says what was
    found; ``remedy`` what to do instead, worded for the caller (a GUI names its own control)."""

    def __init__(self, detail: str, remedy: str = "gold-bead alignment (fiducials.track_beads)"):
        self.detail, self.remedy = detail, remedy
        super().__init__(f"{detail} Use {remedy} or bin the series first.")

    def with_remedy(self, remedy: str) -> ShiftBeyondFieldError:
        return ShiftBeyondFieldError(self.detail, remedy)


@dataclass
class TiltAlignment:
    """How raw tilts map to aligned ones: ``tilts[i](r) ≈ rotated_i(r - shifts[i])``.

    Attributes
    ----------
    shifts : (N, 2) float
        (dy, dx) in raw pixels of each tilt (the part no data can fix is set to zero: the mean
        along the axis, and ``x0 cosθ + z0 sinθ`` across it, which only moves the volume).
    tilt_axis_angle : float
        Degrees counter-clockwise on screen from the image Y axis (modulo 180°): the axis runs
        along (dy, dx) = (cos α, sin α).
    residuals : (N,) float
        ``1 - correlation`` of each aligned tilt, at the final angle and shifts, with its
        leave-one-out reprojection (low-passed, on the binned copy projection matching ran on):
        a tilt much above the others is blurred, cracked or badly aligned; drop it with
        :meth:`without`.
    angles : (N,) float
        Tilt angles, degrees.
    shape : (Y, X)
        Raw tilt size the shifts refer to.
    """

    shifts: np.ndarray
    tilt_axis_angle: float
    residuals: np.ndarray
    angles: np.ndarray
    shape: tuple[int, int]
    pixel_size: float = 1.0
    correlation: np.ndarray = field(default=None)

    @property
    def aligned_shape(self) -> tuple[int, int]:
        """(Y, X) of the aligned tilts (sides swapped when the axis is nearer X than Y)."""
        return _al.aligned_shape(self.shape, self.tilt_axis_angle)

    @property
    def rotated_shifts(self) -> np.ndarray:
        """Shifts in the aligned frame: (along the axis, across it), pixels."""
        return self.shifts @ _al.rotation(self.tilt_axis_angle)

    def apply(self, tilts, *, order: int = 3) -> np.ndarray:
        """Aligned tilts (N, Y', X') float32: shifted, rotated so the axis is the image Y axis; pixels
        from outside the raw image take that tilt's mean."""
        arr = real_array(tilts, "tilts", ndim=3, axes="(tilt, Y, X)", what="tilt series")
        if arr.shape[0] != len(self.shifts) or arr.shape[1:] != tuple(self.shape):
            raise ValueError(f"tilts has shape {arr.shape}; this alignment is for {len(self.shifts)} tilts of "
                             f"{self.shape[0]} x {self.shape[1]} pixels.")
        order = integer(order, "order", low=0, high=5)
        t = self.rotated_shifts
        out = self.aligned_shape
        return np.stack([_al.resample(arr[i], self.tilt_axis_angle, t[i], out, order=order)
                         for i in range(arr.shape[0])])

    def without(self, drop) -> TiltAlignment:
        """The same alignment without the tilts whose indices are in ``drop``."""
        keep = np.setdiff1d(np.arange(len(self.angles)), np.asarray(drop, int))
        corr = None if self.correlation is None else self.correlation[keep]
        return replace(self, shifts=self.shifts[keep], residuals=self.residuals[keep], angles=self.angles[keep],
                       correlation=corr)

    def to_imod_xf(self) -> np.ndarray:
        """IMOD ``.xf`` rows ``A11 A12 A21 A22 DX DY`` (X right, Y up as in the file) taking raw tilts
        to aligned ones, about the image centre."""
        a = np.deg2rad(self.tilt_axis_angle)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # rotates (x, y_up) by -alpha
        rows = []
        for dy, dx in self.shifts:
            d = -rot @ np.array([dx, -dy])  # display rows point down, file rows up
            rows.append([rot[0, 0], rot[0, 1], rot[1, 0], rot[1, 1], d[0], d[1]])
        return np.array(rows)
