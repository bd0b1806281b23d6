"""The estimator's fast paths give the answers of the slow ones they replace.

- refinement passes that move the windowed spectra by phase ramps (no FFT) instead of re-windowing
  every frame every pass;
- Newton's method on the continuous correlation instead of a fine DFT grid for the sub-pixel peak;
- the pruned inverse FFT of the pair maps (only the searched rows) instead of the full map.
"""

import numpy as np
import pytest
import scipy.fft as sfft

from napari_cryomat.core import _drift_refine
from napari_cryomat.core._drift_fourier import _grid_peak, _local_peak
from napari_cryomat.core._drift_unwrap import _cc_window
from napari_cryomat.core.drift import estimate_drift
from napari_cryomat.core.synthetic.movie import drifting_movie


@pytest.mark.parametrize("counts", [0.05, 2.0])
def test_phase_ramp_passes_match_rewindowing_every_pass(monkeypatch, counts):
    m = drifting_movie((128, 128), 12, counts_per_pixel=counts, period=6.0, lattice="hexagonal", angle=0.4,
                       crystal_fraction=0.6, velocity=(0.3, -0.5), step=0.2, seed=11)
    fast = estimate_drift(m.frames).shifts
    monkeypatch.setattr(_drift_refine, "REWINDOW_PX", 0.0)  # re-window every frame at every pass
    slow = estimate_drift(m.frames).shifts
    assert np.abs((fast - fast.mean(0)) - (slow - slow.mean(0))).max() < 0.01


def test_newton_peak_is_the_maximum_of_the_continuous_correlation():
    rng = np.random.default_rng(3)
    shape = (96, 80)
    ky = sfft.fftfreq(shape[0])[:, None]
    kx = sfft.rfftfreq(shape[1])[None, :]
    for _ in range(5):
        true = rng.uniform(-2, 2, 2)
        # a smooth correlation peak (Gaussian spectrum) at a sub-pixel shift, plus weak noise
        x = np.exp(-40 * (ky**2 + kx**2) + 2j * np.pi * (ky * -true[0] + kx * -true[1]))
        x = (x + 0.02 * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))).astype(np.complex64)
        pos, val = _local_peak(x, shape, np.round(true), radius=1.0, upsample=50)
        # a dense grid (1/200 px) around it never finds a higher value
        fine, fine_val = _grid_peak(x, shape, pos, 0.05, 0.005)
        assert np.abs(pos - fine).max() < 0.004
        assert val >= fine_val - 1e-4 * abs(fine_val)


def test_pruned_correlation_window_equals_the_full_map():
    rng = np.random.default_rng(0)
    cshape = (64, 48)
    x = (rng.standard_normal((64, 25)) + 1j * rng.standard_normal((64, 25))).astype(np.complex64)
    full = sfft.irfft2(x, s=cshape)
    ry, rx = 10, 7
    want = full[np.r_[64 - ry: 64, 0: ry + 1]][:, np.r_[48 - rx: 48, 0: rx + 1]]
    assert np.allclose(_cc_window(x.copy(), cshape, ry, rx), want, atol=1e-6 * np.abs(full).max())
