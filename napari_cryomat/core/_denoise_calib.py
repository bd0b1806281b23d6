"""Noise2Self calibration: choose each denoiser's strength, and the denoiser, without clean data.

Batson & Royer (2019): a denoiser g is *J-invariant* when its output at a pixel does not use that
pixel's own noisy value. For such a g and noise independent between pixels,
``E|g(y) - y|² = E|g(y) - x|² + E|y - x|²``: the self-supervised loss against the noisy image
ranks denoisers exactly as the true error against the clean image x would. Any denoiser f becomes
J-invariant by masking: the pixels of a sparse grid (every 4th row and column, one offset at a time)
are replaced by the mean of their 4 neighbours, f runs on that image, and its output is kept on the
masked pixels only.

Here the loss is measured in the raw (counts) domain, after the exact unbiased inverse of the
variance-stabilising transform (a pointwise map keeps J-invariance), so denoisers that work in
different domains compare fairly. The two best denoisers are then blended with the weight that
minimises the same loss (a blend of J-invariant outputs is J-invariant).

Cost control: the loss is measured on a few crops of the image (about 256² pixels in all) and on a
few of the 16 mask offsets; the chosen denoiser then runs once, unmasked, on the whole image.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core._denoise_methods import METHODS, apply_tiled
from napari_cryomat.core._denoise_noise import NoiseModel, unstabilise
from napari_cryomat.core._progress import ProgressCallback, report

__all__ = ["Calibration", "calibrate_all", "calibration_crops", "blend_weight"]

STRIDE = 4
#: A loss still falling at an end of a method's coarse grid is followed past that end by up to this many of the grid's
#: own steps (x1.78 for the default 7-point grids: 3 steps reach 5.7x beyond, e.g. spectral beta 8 -> 45, gaussian
#: sigma 0.5 -> 0.09 px): enough for a noise model off by an order of magnitude (the real EPU micrograph, whole
#: numbers taken as counts at gain 1, needs beta ~ 13), while a loss that flattens out (a denoiser that helps
#: nothing at any strength) costs at most 3 more evaluations.
EXTRA_STEPS = 3
MASK_OFFSETS = ((0, 0), (2, 2), (1, 3), (3, 1))
_DONUT = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)


@dataclass(frozen=True)
class Calibration:
    """The self-supervised loss of one denoiser against its strength.

    ``values`` and ``losses`` are sorted by value; ``losses`` are mean squared differences to the
    noisy image in its own units (counts²), i.e. true MSE plus the noise variance.
    """

    method: str
    parameter: str
    values: np.ndarray
    losses: np.ndarray

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.losses))

    @property
    def best(self) -> float:
        return float(self.values[self.best_index])

    @property
    def best_loss(self) -> float:
        return float(self.losses[self.best_index])

    @property
    def at_end(self) -> str | None:
        """"low" or "high" when the best strength is the smallest or largest one tried (the minimum is not
        bracketed: the optimum may lie beyond), None when it lies inside the scanned range."""
        if self.values.size < 2:
            return None  # one strength given: nothing was scanned
        return "low" if self.best_index == 0 else "high" if self.best_index == self.values.size - 1 else None

    def end_note(self) -> str:
        """What a user should know when the best strength sits at the end of the scan, else ""."""
        if self.at_end is None:
            return ""
        name = self.parameter.split(" ")[0]
        lo, hi = float(self.values[0]), float(self.values[-1])
        side, beyond = ("smallest", "weaker") if self.at_end == "low" else ("largest", "stronger")
        return (f"{self.method} {name}: optimum at the end of the scanned range ({lo:.3g}-{hi:.3g}; {self.best:.3g} "
                f"is the {side} tried): a {beyond} setting may do better; set the strength by hand to try one.")


def calibration_crops(image: np.ndarray, size: int = 128, count: int = 4) -> list[tuple[slice, slice]]:
    """Up to ``count`` crops of ``size``² spread over the image (the whole image if it is small)."""
    ny, nx = image.shape
    if ny * nx <= count * size * size or min(ny, nx) < 2 * size:
        return [(slice(0, ny), slice(0, nx))]
    side = int(np.ceil(np.sqrt(count)))
    boxes = []
    for i in range(side):
        for j in range(side):
            if len(boxes) == count:
                break
            cy = int((i + 0.5) * ny / side) - size // 2
            cx = int((j + 0.5) * nx / side) - size // 2
            boxes.append((slice(max(cy, 0), max(cy, 0) + size), slice(max(cx, 0), max(cx, 0) + size)))
    return boxes


class _Sample:
    """Masked copies of the stabilised crops, and the raw values on the masked pixels."""

    def __init__(self, stabilised: list[np.ndarray], raw: list[np.ndarray], n_masks: int):
        self.inputs: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        targets = []
        for v, y in zip(stabilised, raw):
            interp = ndi.convolve(v, _DONUT, mode="mirror")
            for oy, ox in MASK_OFFSETS[:n_masks]:
                mask = np.zeros(v.shape, bool)
                mask[oy::STRIDE, ox::STRIDE] = True
                masked = v.copy()
                masked[mask] = interp[mask]
                self.inputs.append(masked)
                self.masks.append(mask)
                targets.append(y[mask])
        self.target = np.concatenate(targets).astype(np.float64)

    def invariant(self, method: str, value: float, noise: NoiseModel) -> np.ndarray:
        """J-invariant output of ``method`` at ``value`` on the masked pixels, raw units."""
        m = METHODS[method]
        run = lambda img: m.run(img, value)  # noqa: E731
        # a short mirror margin: the loss compares strengths on the same pixels, so full context is not needed
        parts = [apply_tiled(x, run, min(m.margin(value), 32), workers=1)[mask] for x, mask in zip(self.inputs, self.masks)]
        return unstabilise(np.concatenate(parts), noise).astype(np.float64)

    def loss(self, values: np.ndarray) -> float:
        return float(np.mean((values - self.target) ** 2))


def _calibrate_one(sample: _Sample, method: str, noise: NoiseModel, strength: float | None):
    """(Calibration, J-invariant output at the best strength). A coarse geometric grid, extended past
    an end while the loss still falls there (up to ``EXTRA_STEPS`` steps), then the two geometric
    midpoints around its minimum."""
    m = METHODS[method]
    grid = [float(strength)] if strength is not None else [float(v) for v in m.grid]
    outputs = {v: sample.invariant(method, v, noise) for v in grid}
    losses = {v: sample.loss(o) for v, o in outputs.items()}
    if strength is None:
        ratio = grid[1] / grid[0]
        for _ in range(EXTRA_STEPS):
            best = min(losses, key=losses.get)
            if best == grid[-1]:
                grid.append(grid[-1] * ratio)
                new = grid[-1]
            elif best == grid[0]:
                grid.insert(0, grid[0] / ratio)
                new = grid[0]
            else:
                break  # bracketed
            outputs[new] = sample.invariant(method, new, noise)
            losses[new] = sample.loss(outputs[new])
        best = min(losses, key=losses.get)
        i = grid.index(best)
        for j in (i - 1, i + 1):
            if 0 <= j < len(grid):
                mid = float(np.sqrt(best * grid[j]))
                outputs[mid] = sample.invariant(method, mid, noise)
                losses[mid] = sample.loss(outputs[mid])
    values = np.array(sorted(losses))
    calibration = Calibration(method, m.parameter, values, np.array([losses[v] for v in values]))
    return calibration, outputs[calibration.best]


def calibrate_all(stabilised: list[np.ndarray], raw: list[np.ndarray], noise: NoiseModel, methods: tuple,
                  *, strength: float | None = None, n_masks: int = 2,
                  progress: ProgressCallback = None) -> tuple[dict, dict, np.ndarray]:
    """Calibrate each of ``methods`` on the crops: ({method: Calibration}, {method: J-invariant
    output at its best}, the noisy target values), methods run two at a time in threads."""
    sample = _Sample(stabilised, raw, n_masks)
    calibrations, outputs = {}, {}
    workers = min(len(methods), os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max(workers, 1))
    try:
        futures = {name: pool.submit(_calibrate_one, sample, name, noise, strength) for name in methods}
        for i, name in enumerate(methods):
            calibrations[name], outputs[name] = futures[name].result()
            report(progress, (i + 1) / len(methods))  # Cancelled raised here drops the rest
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return calibrations, outputs, sample.target


def blend_weight(first: np.ndarray, second: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Weight w in [0, 1] of ``first`` in ``w first + (1 - w) second`` minimising the loss to
    ``target``, and that loss."""
    diff = first - second
    denom = float(np.dot(diff, diff))
    w = 1.0 if denom == 0 else float(np.clip(np.dot(target - second, diff) / denom, 0.0, 1.0))
    blended = w * first + (1 - w) * second
    return w, float(np.mean((blended - target) ** 2))
