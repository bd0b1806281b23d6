"""Detector defects in an image: single pixels far off all their neighbours (hot pixels, X-ray and cosmic-ray hits).

A direct-detector micrograph or a CCD frame holds a few pixels many noise deviations above (rarely below) every one
of their eight neighbours: a hot pixel, or an X-ray that struck the sensor. No specimen detail is one pixel across
and that far off (the microscope's point spread spans several pixels), and no photon or electron noise makes it: on
a Gaussian image of 16 million pixels no pixel exceeds all its neighbours by more than 4.6 noise deviations. Left in, a
hit of 13x the mean (as in mrcfile's ``fei-extended.mrc``) is the strongest "blob" of the image, and its ringing
in a Laplacian of Gaussian makes blobs of both signs around it. They are replaced by the median of their
neighbours, as IMOD's ``ccderaser -find`` and DigitalMicrograph's "Remove X-rays" do.

No Qt, no napari.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core._particle_blobs import _noise_sigma  # the pixel noise the blob search reads too
from napari_cryomat.core._validate import number, real_array

__all__ = ["OUTLIER_Z", "outlier_pixels", "replace_outlier_pixels"]

#: A pixel is a defect where it stands this many pixel-noise deviations above the highest (below the lowest) of its
#: eight neighbours. On white Gaussian noise the largest such margin over 16 million pixels is 4.5; Poisson images of
#: 3, 20 or 60 counts per pixel make none in 4 million, of 1 count 2 (each replaced by its neighbours' median: a loss
#: of nothing). At 5 a few Poisson pixels per million went (benchmark F1 moved by up to 0.005); at 7 enough weaker hits
#: stayed in fei-extended.mrc (margins 6-7) for its dark particles to be read as bright.
OUTLIER_Z = 6.0

_RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], bool)


def outlier_pixels(image, *, z: float = OUTLIER_Z) -> np.ndarray:
    """Boolean mask of the defect pixels of a 2D ``image``: more than ``z`` pixel-noise deviations above the highest or
    below the lowest of their eight neighbours (mirrored at the border, without the pixel itself).

    Parameters
    ----------
    image : array (Y, X)
    z : float
        The margin over the neighbours, in pixel-noise deviations (the noise is read off the image); at least 3.
    """
    img = real_array(image, "image", ndim=2, min_size=3).astype(np.float32, copy=False)
    z = number(z, "z", low=3.0, high=1e6)
    noise = _noise_sigma(img)
    if not noise > 0:  # a noise-free or constant image: nothing is "many noise deviations" off, by definition
        return np.zeros(img.shape, bool)
    high = ndi.maximum_filter(img, footprint=_RING, mode="mirror")
    low = ndi.minimum_filter(img, footprint=_RING, mode="mirror")
    return (img - high > z * noise) | (low - img > z * noise)


def replace_outlier_pixels(image, *, z: float = OUTLIER_Z) -> tuple[np.ndarray, int]:
    """``(cleaned, count)``: a float32 copy of the 2D ``image`` whose defect pixels (:func:`outlier_pixels`) hold the
    median of their eight neighbours, and how many were replaced. The image itself is left untouched; with nothing
    to replace the copy equals it."""
    mask = outlier_pixels(image, z=z)
    img = np.array(image, np.float32)
    ys, xs = np.nonzero(mask)
    if ys.size:
        padded = np.pad(img, 1, mode="reflect")
        around = np.stack([padded[ys + 1 + dy, xs + 1 + dx]
                           for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
        img[ys, xs] = np.median(around, axis=0)
    return img, int(ys.size)
