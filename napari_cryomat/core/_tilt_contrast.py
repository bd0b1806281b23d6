"""Do the tilts share contrast? Neighbour correlations against the same correlations with noise.

Fiducial-free alignment follows what neighbouring tilts have in common. Tilts of pure shot noise
(or of a specimen too faint at that dose) still give every correlation a highest peak, and shifts
fitted to such peaks are noise. They used to be refused only because they happened to wander beyond
half the field: an accident (with the blind axis scan on the round area, the 41 noise tilts of the
widget's test, 96², stayed within 46 of the 48 px allowed).

The test here is explicit. Each neighbour pair's correlation peak (the band-passed, normalised
correlation coefficient at its best shift, :func:`._tilt_xcorr.xcorr_shift`) is compared with the
same correlation after the reference tilt's pixels are shuffled within its own frame and then rotated
and stretched as the real one: same tilt, window, band-pass, search radius and values, no shared
pattern. Under pure noise the two sets of peaks come from one distribution; a rank test (Mann-Whitney)
asks whether the real ones stand higher. Measured at the chain's level (41-61 tilts, 64²-512², 0.1-100
counts/px, axis 0° and 33°, 49 noise series): rank z -2.2..+2.4; catalyst phantoms at 0.1-4 counts/px
and bead-only series at 1-20 counts/px: every real peak above every shuffled one but for the faintest
beads (6 px beads at 1 count/px: rank z 6.2). The robust z-score of the peak (what the chain weighs
pairs by) is no such test: a specimen's broad correlation hill has a wide spread, and one phantom at
1 count/px scored below its shuffled null (rank z -2.7) although it aligns to 0.5 px.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu

from napari_cryomat.core._tilt_xcorr import xcorr_shift

#: largest rank-test p-value (real neighbour peaks higher than shuffled ones) at which the tilts are
#: taken to share contrast: pure noise passes one time in a thousand; specimens measured give < 1e-9
P_SHARED = 1e-3
#: fewer neighbour pairs than this cannot reach ``P_SHARED`` reliably (all 7 real peaks above all 7
#: shuffled ones is p = 3e-4): the test is skipped and only the shifts' reach is checked
MIN_PAIRS = 8


class NoSharedContrast(ValueError):
    """The neighbouring tilts correlate no better than noise does."""

    def __init__(self, p: float, real: float, null: float):
        self.p, self.real, self.null = p, real, null
        super().__init__(f"neighbouring tilts correlate no better than noise does (median correlation peak "
                         f"{real:.2f} against {null:.2f} with one tilt's pixels shuffled, rank test p = {p:.2g})")


def _peak(a, b, **kw):
    """``xcorr_shift`` with the correlation coefficient at the peak in the place of the significance."""
    d, peak, _ = xcorr_shift(a, b, **dict(kw, significance=True))
    return d, peak, peak


def neighbour_peaks(work: np.ndarray, rot0: np.ndarray, angles, alpha: float, kw: dict, seed: int = 0):
    """Correlation peaks of the neighbour pairs, and of the same pairs with each reference tilt's pixels
    shuffled in its own frame before the same rotation (the null keeps the interpolation's smoothing)."""
    from napari_cryomat.core._tilt_align import resample
    from napari_cryomat.core._tilt_pairs import pair_shifts

    rng = np.random.default_rng(seed)
    shape = rot0.shape[1:]
    shuffled = np.stack([resample(rng.permutation(w.ravel()).reshape(w.shape), alpha, (0, 0), shape, cval=0.0)
                         for w in work])
    opts = dict(kw, xcorr=_peak)
    real = np.array([p[3] for p in pair_shifts(rot0, angles, separations=[1], **opts)])
    null = np.array([p[3] for p in pair_shifts(rot0, angles, separations=[1], references=shuffled, **opts)])
    return real, null


def check_shared_contrast(work, rot0, angles, alpha, kw) -> float:
    """Rank-test p-value that the neighbour peaks stand no higher than with shuffled pixels; raises
    :class:`NoSharedContrast` above ``P_SHARED`` (``nan``, no test, below ``MIN_PAIRS`` pairs).
    ``work``: the binned tilts, ``rot0`` them resampled to the aligned frame at ``alpha``, ``kw`` the
    correlation settings of the chain (max_shift, band, win)."""
    if len(work) - 1 < MIN_PAIRS:
        return float("nan")
    real, null = neighbour_peaks(work, rot0, angles, alpha, kw)
    p = float(mannwhitneyu(real, null, alternative="greater", method="asymptotic").pvalue)
    if p > P_SHARED:
        raise NoSharedContrast(p, float(np.median(real)), float(np.median(null)))
    return p
