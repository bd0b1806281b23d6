"""Volume-series drift as a long worker job sees it: one progress bar, each volume read once, Cancel."""

import numpy as np
import pytest
from scipy import ndimage

from napari_cryomat.core._progress import Cancelled
from napari_cryomat.core.drift_regions import estimate_volume_drift


class CountingVolumes:
    """A (T, Z, Y, X) series that counts how often each volume is read (as a lazy reader would)."""

    def __init__(self, volumes):
        self.volumes, self.reads = volumes, np.zeros(len(volumes), int)
        self.shape, self.ndim = volumes.shape, volumes.ndim

    def __len__(self):
        return len(self.volumes)

    def __getitem__(self, i):
        self.reads[i] += 1
        return self.volumes[i]


@pytest.fixture(scope="module")
def drifting_volumes():
    rng = np.random.default_rng(3)
    truth = np.cumsum(rng.normal(0, 0.6, (6, 3)), 0) + np.arange(6)[:, None] * np.array([0.5, -0.4, 0.3])
    truth -= truth[0]
    base = ndimage.gaussian_filter(rng.standard_normal((24, 40, 40)), 1.5)
    vols = np.stack([rng.poisson(8 * np.clip(1 + 0.5 * ndimage.shift(base, s, order=1, mode="grid-wrap") / base.std(),
                                             0.05, None)) for s in truth]).astype(np.float32)
    return vols, truth


def test_one_progress_bar_and_each_volume_read_once(drifting_volumes):
    vols, truth = drifting_volumes
    source, seen = CountingVolumes(vols), []
    est = estimate_volume_drift(source, progress=seen.append)
    assert np.sqrt(((est - truth) ** 2).sum(1).mean()) < 0.5
    assert np.all(source.reads == 1)  # not once per projection
    assert seen[-1] == pytest.approx(1.0) and np.all(np.diff(seen) >= -1e-9)  # never starts again from 0


def test_cancel_stops_while_reading(drifting_volumes):
    vols, _ = drifting_volumes
    source = CountingVolumes(vols)

    def cancel_at_half(fraction):
        if fraction >= 0.1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        estimate_volume_drift(source, progress=cancel_at_half)
    assert source.reads.sum() < len(vols)


def test_bad_pixel_size_named_before_any_volume_is_read(drifting_volumes):
    source = CountingVolumes(drifting_volumes[0])
    with pytest.raises(ValueError, match="pixel_size"):
        estimate_volume_drift(source, pixel_size=float("nan"))
    assert source.reads.sum() == 0
