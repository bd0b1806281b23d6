"""The noise side of denoising: noise model, variance stabilisation and Fourier destriping.

- :class:`NoiseModel` says how the variance of a pixel depends on its mean:
  ``var = gain * mean + read_noise**2`` (Poisson-Gaussian; ``gain`` = 1 for counted electrons), or
  a constant (``kind="gaussian"``).
- :func:`stabilise` / :func:`unstabilise`: the generalised Anscombe transform, which makes that noise
  roughly Gaussian with unit variance, and its *exact unbiased* inverse (Mäkitalo & Foi 2011, 2013):
  the inverse maps a denoised value D to the mean λ for which E[f(z) | λ] = D, tabulated by summing
  over the Poisson distribution (Gauss-Hermite quadrature for the Gaussian part), so that low counts
  (0.1 per pixel) come back without the bias of the algebraic inverse.
- :func:`stripe_correction`: row (or column) offsets found in Fourier space from per-row projections
  only, so it streams over a lazy image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi
from scipy.special import gammaln

__all__ = ["NoiseModel", "estimate_noise", "stabilise", "unstabilise", "stripe_correction", "stripe_ratio"]

_SPLIT = 100.0  # above this mean (in counts) the asymptotic expansion of E[f] is exact to < 1e-5


@dataclass(frozen=True)
class NoiseModel:
    """Pixel variance against mean: ``gain * mean + read_noise**2`` ("poisson") or ``read_noise**2``
    ("gaussian"). ``gain`` is in image units per count (1 for counts)."""

    kind: str = "poisson"
    gain: float = 1.0
    read_noise: float = 0.0

    @property
    def stabilised(self) -> bool:
        return self.kind == "poisson"

    def describe(self) -> str:
        if self.kind == "poisson":
            extra = f", read noise {self.read_noise:.3g}" if self.read_noise > 0 else ""
            return f"Poisson (gain {self.gain:.3g}{extra}), Anscombe-stabilised"
        return f"Gaussian (σ {self.read_noise:.3g})"


def _count_gain(sample: np.ndarray) -> float | None:
    """The gain of counted data, None if these are not counts: whole numbers (or whole numbers plus
    an offset per row, a counting detector's row read-out), in steps of the gain (their GCD)."""
    steps = sample - sample[:, :1]
    if not np.all(np.abs(steps - np.round(steps)) < 1e-3):
        return None
    if not np.all(sample == np.round(sample)) or sample.min() < 0:
        values = np.round(steps).astype(np.int64)
    else:
        values = sample.astype(np.int64)
    gain = int(np.gcd.reduce(np.abs(values[values != 0]))) if np.any(values) else 1
    return float(max(gain, 1))


def estimate_noise(crops: list[np.ndarray]) -> NoiseModel:
    """The noise model of an image from crops of it.

    Whole numbers are counts (Poisson; gain the GCD of their steps, 1 for electron counts). Otherwise the variance of a high-pass
    residual is fitted against the local mean, ``var = a * mean + b``: a clear slope means
    Poisson-Gaussian with gain a and read noise sqrt(b), no slope means Gaussian.
    """
    gains = [_count_gain(np.asarray(c, np.float64)) for c in crops]
    if all(g is not None for g in gains):
        return NoiseModel("poisson", min(gains), 0.0)
    x = np.concatenate([np.asarray(c, np.float64) for c in crops], axis=1)
    # the finest diagonal Haar band: a mixed second difference, var = var(noise) for white noise and
    # little leakage of a smooth specimen (Donoho's noise estimate), binned by the local mean
    x = x[: x.shape[0] // 2 * 2, : x.shape[1] // 2 * 2]
    a, b, c, d = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]
    resid = (a - b - c + d) / 2
    local = ndi.uniform_filter((a + b + c + d) / 4, 3, mode="mirror")
    edges = np.unique(np.quantile(local, np.linspace(0, 1, 17)))
    means, variances = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (local >= lo) & (local <= hi)
        if sel.sum() < 30:
            continue
        r = resid[sel]
        mad = np.median(np.abs(r - np.median(r)))
        means.append(local[sel].mean())
        variances.append((1.4826 * mad) ** 2)
    means, variances = np.array(means), np.array(variances)
    if means.size >= 3 and np.ptp(means) > 0:
        a, b = np.polyfit(means, variances, 1)
        spread = a * np.ptp(means)
        if a > 0 and spread > 0.25 * np.median(variances):
            return NoiseModel("poisson", float(a), float(np.sqrt(max(b, 0.0))))
    sigma = float(np.sqrt(np.median(variances))) if variances.size else float(np.std(resid))
    return NoiseModel("gaussian", 1.0, max(sigma, 1e-12))


def stabilise(image: np.ndarray, noise: NoiseModel) -> np.ndarray:
    """Generalised Anscombe transform (unit-variance noise); identity scaled by 1/σ for Gaussian noise."""
    x = np.asarray(image, np.float32)
    if not noise.stabilised:
        return x / np.float32(noise.read_noise)
    s = noise.read_noise / noise.gain
    return 2.0 * np.sqrt(np.maximum(x / np.float32(noise.gain) + np.float32(0.375 + s * s), 0)).astype(np.float32)


@lru_cache(maxsize=16)
def _inverse_table(read_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """(E[f(z)], λ) for f(z) = 2 sqrt(z + 3/8 + s²), z = Poisson(λ) + N(0, s²), on a grid of λ."""
    s2 = read_noise**2
    lam = np.concatenate([np.linspace(0, 2, 101)[:-1], np.geomspace(2, _SPLIT, 300)])
    k = np.arange(0, int(_SPLIT + 12 * np.sqrt(_SPLIT) + 20))
    if read_noise > 0:
        nodes, weights = np.polynomial.hermite_e.hermegauss(24)
        weights = weights / weights.sum()
        fk = (2 * np.sqrt(np.maximum(k[:, None] + read_noise * nodes[None] + 0.375 + s2, 0)) * weights).sum(1)
    else:
        fk = 2 * np.sqrt(k + 0.375)
    with np.errstate(divide="ignore", invalid="ignore"):  # λ = 0 is set just below
        logp = k[None] * np.log(lam[:, None]) - lam[:, None] - gammaln(k[None] + 1)
    logp[0] = np.where(k == 0, 0.0, -np.inf)
    expect = np.exp(logp) @ fk
    # beyond the table: E[f] = 2 sqrt(m) - var / (4 m^1.5) + O(m^-2.5), m = λ + 3/8 + s², var = λ + s²
    hi = np.geomspace(_SPLIT, 1e9, 200)[1:]
    m = hi + 0.375 + s2
    expect_hi = 2 * np.sqrt(m) - (hi + s2) / (4 * m**1.5)
    return np.concatenate([expect, expect_hi]), np.concatenate([lam, hi])


def unstabilise(values: np.ndarray, noise: NoiseModel) -> np.ndarray:
    """Exact unbiased inverse of :func:`stabilise` (the mean whose expected transform is ``values``)."""
    v = np.asarray(values, np.float32)
    if not noise.stabilised:
        return v * np.float32(noise.read_noise)
    expect, lam = _inverse_table(round(float(noise.read_noise / noise.gain), 6))
    out = np.interp(v.ravel(), expect, lam).reshape(v.shape)
    return (out * noise.gain).astype(np.float32)


# -------------------------------------------------------------------------------------------------
# destriping
# -------------------------------------------------------------------------------------------------
def _projections(image: np.ndarray, n_side: int = 3) -> np.ndarray:
    """Row projections onto the first Fourier components along X: (n_side + 1, Y) complex."""
    nx = image.shape[1]
    k = np.arange(n_side + 1)[:, None]
    phase = np.exp(-2j * np.pi * k * np.arange(nx)[None] / nx)  # (n_side+1, X)
    return np.asarray(image.astype(np.float64) @ phase.T).T  # (n_side+1, Y); streams over a dask image


def _line_spectra(image: np.ndarray, n_side: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """F(ky, kx=0) and the mean power of the columns kx = ±1..±n_side of the 2D FFT."""
    proj = sfft.fft(_projections(image, n_side), axis=1)  # F(ky, kx) for kx = 0..n_side
    # real image: |F(ky, -kx)| = |F(-ky, kx)|, so the negative side is the positive side reversed in ky
    side = np.abs(proj[1:]) ** 2
    side = 0.5 * (side + np.roll(side[:, ::-1], 1, axis=1))
    return proj[0], side.mean(0)


def stripe_ratio(image: np.ndarray, axis: int = 0) -> float:
    """How much stronger the line kx = 0 (row offsets; axis=0) is than its neighbours at high ky,
    where a specimen has little power: about 1 without stripes, >> 1 with them."""
    img = np.asarray(image, np.float64)
    if axis == 1:
        img = img.T
    centre, side = _line_spectra(img - img.mean())
    ky = np.abs(sfft.fftfreq(img.shape[0]))
    high = ky > 0.125
    if not np.any(high):
        return 1.0
    return float(np.median(np.abs(centre[high]) ** 2) / max(np.median(side[high]), 1e-30))


def stripe_correction(image: np.ndarray, axis: int = 0) -> np.ndarray:
    """Offsets to subtract from every row (axis=0) or column (axis=1): a 1D profile.

    In the 2D spectrum, row offsets live on the line kx = 0 and are white along ky, while a
    specimen's structure there (layers parallel to the rows, for one) is strong at low ky. The
    offsets' power per ky is the median excess of that line over its neighbours kx = ±1..±3 at high
    ky (where a specimen has little power); each value of the line is then Wiener-shrunk by it, so
    low-ky structure stays and the mean (ky = 0) is kept. The change, transformed back, is the profile.
    """
    img = image.T if axis == 1 else image  # numpy or dask: only its row projections are computed
    centre, side = _line_spectra(img)
    power = np.abs(centre) ** 2
    ky = np.abs(sfft.fftfreq(img.shape[0]))
    high = ky > 0.125
    # |F|² of white offsets is exponentially distributed: its mean is the median / ln 2
    offsets = float(np.median((power - side)[high])) / np.log(2) if np.any(high) else 0.0
    if offsets <= 0:
        return np.zeros(img.shape[0], np.float32)
    # the specimen's expected power on the line: its neighbours', or the line's own excess over the
    # offsets averaged over 9 ky (layers parallel to the rows) beyond 3 standard errors of that mean
    # (offsets' power averaged over 9 values fluctuates by 1/3 of it), never one noisy coefficient
    smooth = ndi.uniform_filter1d(power, 9, mode="wrap")
    specimen = np.maximum(side, smooth - 2.0 * offsets)
    shrink = specimen / (specimen + offsets)
    shrink[0] = 1.0
    change = centre * (1 - shrink)
    return (sfft.ifft(change).real / img.shape[1]).astype(np.float32)
