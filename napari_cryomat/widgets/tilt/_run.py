"""What the "Tilt series" tool computes: requests built on the GUI thread, results made by workers.

Plain frozen dataclasses, no Qt, no viewer. A request holds references to the layer data and the
parameters read from the controls; a result keeps the request it was computed from, so plots and
layer names describe the run they show even after the controls change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from napari_cryomat.core.fiducials import BeadModel
from napari_cryomat.core.tilt import TiltAlignment

__all__ = [
    "ANGLES_KEY",
    "ANGSTROM",
    "AlignNote",
    "AlignRequest",
    "AlignRun",
    "QuantRequest",
    "Quantification",
    "ReconRequest",
    "Reconstruction",
]

#: layer metadata key holding the tilt angles (degrees, one per image of the stack)
ANGLES_KEY = "tilt_angles"
ANGSTROM = "angstrom"


@dataclass(frozen=True)
class AlignRequest:
    """Align a tilt series: its images (the layer's data), angles (degrees) and pixel size (Å)."""

    tilts: Any
    angles: np.ndarray
    pixel_size: float
    source_name: str
    tilt_axis_angle: Optional[float] = None  # degrees CCW from Y when known (None: found from the data)
    refine_tilt_axis: bool = False
    bead_diameter: Optional[float] = None  # Å: align on gold beads of this size (None: fiducial-free)


@dataclass(frozen=True)
class AlignNote:
    """What an alignment warned of, for the dock: ``kind`` (e.g. ``"search_at_reach"``, from
    :class:`~napari_cryomat.core.tilt.TiltAxisWarning`) and the ``message`` shown, in the dock's words."""

    kind: str
    message: str


@dataclass(frozen=True)
class AlignRun:
    """One alignment and the request it came from."""

    request: AlignRequest
    alignment: TiltAlignment
    beads: Optional[BeadModel] = None  # the bead model when aligned on gold beads
    #: what the alignment warned of (e.g. :class:`~napari_cryomat.core.tilt.TiltAxisWarning`): the result is
    #: kept, and the dock shows these next to it
    notes: tuple[AlignNote, ...] = ()

    @property
    def residual_label(self) -> str:
        """What ``alignment.residuals`` measures for this run."""
        return "residual (px)" if self.beads is not None else "1 − corr."  # the plot's 180 px fit no more

    def summary(self) -> str:
        a = self.alignment
        shift = np.hypot(*a.shifts.T) * a.pixel_size
        text = f"{len(a.angles)} tilts, axis {a.tilt_axis_angle:+.2f}° from Y; shifts up to {shift.max():.1f} Å; "
        if self.beads is None:
            return text + f"residual median {np.median(a.residuals):.3f}" + "".join(f"\n⚠ {n.message}" for n in self.notes)
        b = self.beads
        n_beads = int(np.isfinite(b.beads[:, 0]).sum())
        missing = int(np.isnan(a.residuals).sum())
        return (text + f"{n_beads} beads, mean residual {b.rms_px:.2f} px"
                + (f"; {missing} tilt(s) without a bead (drop them)" if missing else ""))


@dataclass(frozen=True)
class ReconRequest:
    """Reconstruct from the kept tilts.

    Attributes
    ----------
    tilts, angles :
        The whole series (layer data) and its angles; only the tilts in ``keep`` are used.
    keep : tuple of int
        Indices of the tilts to use (the user dropped the others).
    alignment : TiltAlignment or None
        For the whole series; None: the tilts are taken as aligned already.
    method : {"wbp", "sirt"}
    iterations : int
        SIRT iterations at most (it stops sooner on noisy tilts, see ``tilt.reconstruct(early_stop=)``).
    thickness : float or None
        Z extent of the volume, Å (None: the image width).
    binning : int
        Tilts binned by this factor before reconstructing (voxel = binning x pixel size).
    invert : bool
        Reconstruct ``-tilts`` (bright-field counts: dense is dark) so dense material is bright.
    """

    tilts: Any
    angles: np.ndarray
    keep: tuple
    alignment: Optional[TiltAlignment]
    method: str
    iterations: int
    thickness: Optional[float]
    binning: int
    pixel_size: float
    source_name: str
    invert: bool = False

    @property
    def voxel_size(self) -> float:
        return self.pixel_size * self.binning

    @property
    def layer_name(self) -> str:
        return f"{self.source_name} {'WBP preview' if self.method == 'wbp' else 'tomogram'}"

    def describe(self, iterations_run: Optional[int] = None) -> str:
        """One line of what is (or was) done; ``iterations_run``: where SIRT's early stop ended, once known."""
        if self.method == "wbp":
            how = "WBP"
        elif iterations_run is None:
            how = f"SIRT ≤ {self.iterations} it."
        elif iterations_run < self.iterations:
            how = f"SIRT {iterations_run} of {self.iterations} it. (stopped: more would fit noise)"
        else:
            how = f"SIRT {iterations_run} it."
        dropped = len(self.angles) - len(self.keep)
        return (f"{how}, {len(self.keep)} tilts ({dropped} dropped), bin {self.binning}, "
                f"voxel {self.voxel_size:g} Å" + ("" if self.alignment is not None else ", unaligned"))


@dataclass(frozen=True)
class Reconstruction:
    """A volume (Z, Y, X) float32 and the central XZ section of its Fourier amplitude (log)."""

    request: ReconRequest
    volume: np.ndarray
    contrast_limits: tuple[float, float]
    wedge: np.ndarray  # (kz, kx) log |FFT|, zero frequency in the centre
    wedge_spacing: tuple[float, float]  # 1/Å per pixel along kz, kx
    iterations: Optional[int] = None  # SIRT: the iterations run (the early stop may end before the most asked)

    def describe(self) -> str:
        return self.request.describe(self.iterations)


@dataclass(frozen=True)
class QuantRequest:
    """Quantify a segmented volume: the structure (mask), optional particles (labels), voxel size."""

    mask: Any
    particles: Optional[Any]
    voxel_size: tuple[float, float, float]
    mask_name: str
    particles_name: Optional[str]
    scale: tuple
    translate: tuple


@dataclass(frozen=True)
class Quantification:
    """Local thickness map (Å), its volume-weighted histogram, porosity, particle distances."""

    request: QuantRequest
    thickness: np.ndarray
    fractions: np.ndarray
    edges: np.ndarray
    porosity: float
    distances: Optional[Any]  # pandas DataFrame from core.morph3d.particle_support_distances

    @property
    def mean_thickness(self) -> float:
        values = self.thickness[self.thickness > 0]
        return float(values.mean()) if values.size else float("nan")

    def summary(self) -> str:
        values = self.thickness[self.thickness > 0]
        text = (f"{self.request.mask_name}: local thickness {values.mean():.1f} ± {values.std():.1f} Å "
                f"(median {np.median(values):.1f} Å); porosity {100 * self.porosity:.1f} %"
                if values.size else f"{self.request.mask_name}: empty mask")
        if self.distances is not None and len(self.distances):
            d = self.distances["distance_A"]
            text += (f"; {len(d)} particles, distance to support median {np.median(d):.1f} Å "
                     f"({(d <= 1.5 * max(self.request.voxel_size)).mean():.0%} touching)")
        return text
