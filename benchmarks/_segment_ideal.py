"""Physical reference numbers for the defaults rows of ``benchmarks/segment.py`` (issue #14).

For a generated image two numbers say how much the data allow, next to our F1:

- **Rose's k** = contrast x sqrt(counts per px x particle area in px): the signal-to-noise ratio of a whole
  particle against shot noise (the median true area; Rose's criterion for a reliable detection is k >= 5).
- **the ideal detector's F1**, a ceiling for any detector that scans the image: the whitened residual
  (I - S) / sqrt(S) of the noisy image I against the true support S (noise-free, no particles) correlated with a
  bank of the image's own true particle profiles (the noise-free (M - S) / sqrt(S) around the 12 particles
  nearest the median size, M the noise-free image), the best of the bank per pixel; a particle is found where
  the best score within its own pixels passes the threshold, a false detection is a local maximum (half a
  median radius apart) more than 2 px outside every particle, and the threshold is the one of best F1, chosen
  with the truth. It knows the support, the dose, the blur, polarity
  and shapes; a real detector must estimate all of them, and must also outline the particle (F1 at IoU > 0.5),
  which this one does not. Not an upper bound in the strict sense (a non-scanning observer told the positions
  reaches ~1), but the detectability limit for particles whose positions are unknown.

The noise-free images are the generators' own at a huge dose (Poisson noise of relative size 1e-6; no random
draw before the counting noise depends on dose or contrast, so the placement is the same); S is the same draw at
zero contrast.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy import signal

BANK = 12  # true particle profiles in the bank
HUGE_DOSE = 1e12
PAD = 128  # px; particles wider than twice this are left out of the bank
SEPARATION = 0.5  # local maxima at least this many median radii apart, as the detector of _particle_detect


def noise_free(make, kw: dict) -> tuple[np.ndarray, np.ndarray]:
    """(M, S): the expected counts of the image ``make(**kw)`` and of its support alone."""
    scale = kw["dose"] / HUGE_DOSE
    mean = make(**dict(kw, dose=HUGE_DOSE))[0].astype(np.float64) * scale
    support = make(**dict(kw, dose=HUGE_DOSE, contrast=0.0))[0].astype(np.float64) * scale
    return mean, support


def rose_k(kw: dict, truth: np.ndarray) -> float:
    """contrast x sqrt(dose x median true particle area in px)."""
    areas = np.bincount(truth.ravel())[1:]
    areas = areas[areas > 0]
    return float(kw["contrast"] * np.sqrt(kw["dose"] * np.median(areas))) if areas.size else float("nan")


def _bank(mean: np.ndarray, support: np.ndarray, truth: np.ndarray) -> list[np.ndarray]:
    """Unit-norm whitened profiles of up to BANK true particles of about the median size (each its own pixels grown
    by 3 px for the blur, neighbours left out), flipped for a convolution."""
    n = int(truth.max())
    areas = np.bincount(truth.ravel(), minlength=n + 1)[1:]
    ids = np.flatnonzero(areas > 0) + 1
    # the particles nearest the median size (their shapes and orientations vary): a bank spread over sizes lets a
    # large profile score higher between neighbours than a small one on its particle (noise-free F1 0.92, not 0.99)
    median = np.median(areas[ids - 1])
    pick = ids[np.argsort(np.abs(areas[ids - 1] - median), kind="stable")[:BANK]]
    boxes = ndi.find_objects(truth)
    centres = ndi.center_of_mass(np.ones(truth.shape), truth, pick)
    whitened = np.pad((mean - support) / np.sqrt(np.maximum(support, 1e-9)), PAD)
    labels = np.pad(truth, PAD)
    bank = []
    for j, (cy, cx) in zip(pick, centres):
        sl = boxes[j - 1]
        cy, cx = int(round(cy)), int(round(cx))
        # a window centred on the particle (odd side), so that every profile's score peaks at its centre
        h = 4 + max(cy - sl[0].start, sl[0].stop - cy, cx - sl[1].start, sl[1].stop - cx)
        if h > PAD:
            continue
        window = (slice(cy - h + PAD, cy + h + 1 + PAD), slice(cx - h + PAD, cx + h + 1 + PAD))
        own = ndi.binary_dilation(labels[window] == j, iterations=3)
        t = np.where(own, whitened[window], 0.0)
        norm = np.sqrt((t**2).sum())
        if norm > 0:
            bank.append((t / norm)[::-1, ::-1])
    return bank


def ideal_f1(image: np.ndarray, truth: np.ndarray, mean: np.ndarray, support: np.ndarray) -> float:
    """F1 of the ideal scanning detector on ``image`` (see the module notes) at its best threshold."""
    if truth.max() == 0:
        return float("nan")
    residual = (image - support) / np.sqrt(np.maximum(support, 1e-9))
    score = None
    for t in _bank(mean, support, truth):
        s = signal.oaconvolve(residual, t, mode="same")
        score = s if score is None else np.maximum(score, s)
    n = int(truth.max())
    areas = np.bincount(truth.ravel(), minlength=n + 1)[1:]
    ids = np.flatnonzero(areas) + 1
    # a particle's detection is its best score within its own pixels (told where it is, a neighbour's larger score
    # cannot hide it; at k 4-6 this errs 0.01-0.02 high against counting only the score's own local maxima inside
    # a particle, Ø8-12 at 15 % and 20 counts/px: 0.956/0.971/0.981 vs 0.936/0.957/0.970); false ones are the score's local maxima (half a median radius apart)
    # more than 2 px outside every particle
    hits = np.asarray(ndi.maximum(score, truth, ids))
    radius = np.sqrt(np.median(areas[ids - 1]) / np.pi)
    size = 2 * max(1, int(round(SEPARATION * radius))) + 1
    outside = ~ndi.binary_dilation(truth > 0, iterations=2)
    false = score[(score >= ndi.maximum_filter(score, size=size)) & outside]
    thresholds = np.unique(hits)
    tp = len(hits) - np.searchsorted(np.sort(hits), thresholds, side="left")
    fp = len(false) - np.searchsorted(np.sort(false), thresholds, side="left")
    f1 = 2 * tp / (2 * tp + fp + (len(hits) - tp))
    return float(f1.max())
