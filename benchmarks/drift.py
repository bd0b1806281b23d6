"""Drift-correction benchmark: accuracy vs dose (with Cramér–Rao bound and a phase-correlation
baseline), speed at 1024², peak memory at 4096². One run, one table.

    python benchmarks/drift.py

Accuracy: synthetic 256² × 20-frame movies of a crystal grain (8 px square lattice with a
1/3-order superlattice modulation) in amorphous ice, random-walk-plus-linear drift, Poisson noise
at 0.01, 0.03, 0.1 and 1 counts/px/frame; 3 seeds per dose. Error = RMS over frames of the
2D trajectory error after removing the common offset (a trajectory is defined up to a global
translation). CRB = Cramér–Rao bound of the same quantity for an estimator that knows the
noise-free specimen (Poisson Fisher information, exact Fourier gradients), i.e. sqrt((1-1/N) tr I⁻¹)
averaged over frames. It ignores that the trajectory is smooth, so an estimator that groups
frames can go below it at the lowest dose; BCRB adds the information of the true random-walk prior
and bounds such estimators too. Baseline: skimage.registration.phase_cross_correlation
of each frame against the first (upsample 20), as napari-correct-drift and most scripts do, with
skimage's default phase normalisation ("PCC-first") and without it (plain cross-correlation, "CC-first").
"jumps": runs (of 3) where any frame is off by more than half the lattice period.
"no smoother px": the same estimator with ``smooth=False`` (no random-walk-plus-drift trajectory
smoother), to show what the smoother adds; "walk step": the random-walk step the smoother chose
from the data (the true step is never given to the estimator).

Row "0.01 hard": the same generator and columns at 0.01 counts/px/frame over generator seeds
HARD_SEEDS (300-305), never used to tune anything. Why: the 0.01 row's three seeds (100-102) are
easy ones. On 12 fresh seeds of this generator (142-153, then 166-177) the estimator failed on
153 (7.9 px RMS), 169 (12.4 px) and 176 (22.1 px) — a weak false reflection of the low-dose lattice
stage set the drift velocity — while the 0.01 row showed 0.45 px and no jump. The old rows are
kept as they were, for comparison with earlier tables; this row shows what a user meets at 0.01.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import scipy.fft as sfft

from napari_cryomat.core.drift import estimate_drift
from napari_cryomat.core.synthetic.movie import drifting_movie


def crb_rms(clean: np.ndarray) -> float:
    n = len(clean)
    ny, nx = clean.shape[1:]
    ky = sfft.fftfreq(ny)[:, None]
    kx = sfft.fftfreq(nx)[None, :]
    tr = []
    for lam in clean.astype(np.float64):
        f = sfft.fft2(lam)
        gy = sfft.ifft2(2j * np.pi * ky * f).real
        gx = sfft.ifft2(2j * np.pi * kx * f).real
        lam = np.clip(lam, 1e-12, None)
        fisher = np.array([[(gy * gy / lam).sum(), (gy * gx / lam).sum()], [(gy * gx / lam).sum(), (gx * gx / lam).sum()]])
        tr.append(np.trace(np.linalg.inv(fisher)))
    return float(np.sqrt((1 - 1 / n) * np.mean(tr)))


def bayes_crb_rms(clean: np.ndarray, step: float) -> float:
    """Bayesian (Van Trees) bound with the true random-walk prior (steps of ``step`` px per axis).

    Frame Fisher information (known specimen, Poisson) plus the prior information of the walk,
    ``DᵀD/step²`` (D: first differences; the linear part is given to the estimator for free),
    so it bounds any estimator that exploits a smooth trajectory, e.g. by grouping frames.
    """
    n = len(clean)
    ny, nx = clean.shape[1:]
    ky = sfft.fftfreq(ny)[:, None]
    kx = sfft.fftfreq(nx)[None, :]
    info = np.zeros((n, 2))
    for i, lam in enumerate(clean.astype(np.float64)):
        f = sfft.fft2(lam)
        lam = np.clip(lam, 1e-12, None)
        info[i, 0] = ((sfft.ifft2(2j * np.pi * ky * f).real) ** 2 / lam).sum()
        info[i, 1] = ((sfft.ifft2(2j * np.pi * kx * f).real) ** 2 / lam).sum()
    d = np.diff(np.eye(n), axis=0)
    p = np.eye(n) - 1.0 / n
    total = 0.0
    for a in range(2):
        cov = np.linalg.inv(np.diag(info[:, a]) + d.T @ d / step**2)
        total += np.trace(p @ cov @ p) / n
    return float(np.sqrt(total))


def rms(est, truth) -> float:
    e = np.asarray(est) - truth
    e = e - e.mean(0)
    return float(np.sqrt((e**2).sum(1).mean()))


def baseline_shifts(frames, normalization="phase") -> np.ndarray:
    from skimage.registration import phase_cross_correlation

    # returns the shift that registers moving onto reference: -(our convention)
    return np.array([-phase_cross_correlation(frames[0], f, upsample_factor=20, normalization=normalization)[0]
                     for f in frames])


STEP = 0.25  # random-walk step per frame and axis, px (plus a linear drift of (0.35, 0.6) px/frame)


#: Generator seeds of the "0.01 hard" row (never used to tune anything; see the module docstring).
HARD_SEEDS = tuple(range(300, 306))


def accuracy_rows(seeds=(100, 101, 102), hard_seeds=HARD_SEEDS):
    """One row per dose over ``seeds`` (generator seeds), then the "0.01 hard" row over ``hard_seeds``."""
    rows = [(f"{c:g}",) + accuracy_row(c, seeds) for c in (0.01, 0.03, 0.1, 1.0)]
    if len(hard_seeds):
        rows.append(("0.01 hard",) + accuracy_row(0.01, hard_seeds))
    return rows


def accuracy_row(c, seeds):
    """The accuracy columns at ``c`` counts/px/frame, means over the generator ``seeds``."""
    ours, base, base_cc, bound, bbound, jumps, groups, wide_max = [], [], [], [], [], 0, [], 0.0
    plain, walk = [], []
    for seed in seeds:
        m = drifting_movie((256, 256), 20, counts_per_pixel=c, period=8.0, step=STEP, seed=seed)
        r = estimate_drift(m.frames, pixel_size=1.0)
        ours.append(rms(r.shifts, m.shifts))
        groups.append(r.group)
        walk.append(r.walk_step)
        # the same without the random-walk-plus-drift trajectory smoother
        plain.append(rms(estimate_drift(m.frames, pixel_size=1.0, smooth=False).shifts, m.shifts))
        err = np.abs(r.shifts - r.shifts[0] - m.shifts)
        jumps += int(np.any(np.abs(err - np.median(err, 0)) > m.period / 2))
        # search range wider than the lattice period (40 Å vs 8 Å) on the same data
        rw = estimate_drift(m.frames, pixel_size=1.0, max_shift=40.0)
        e = rw.shifts - m.shifts
        wide_max = max(wide_max, float(np.abs(e - e.mean(0)).max()))
        base.append(rms(baseline_shifts(m.frames), m.shifts))
        base_cc.append(rms(baseline_shifts(m.frames, normalization=None), m.shifts))
        bound.append(crb_rms(m.clean))
        bbound.append(bayes_crb_rms(m.clean, STEP))
    return (np.mean(bound), np.mean(bbound), np.mean(ours), np.mean(base), np.mean(base_cc), jumps, wide_max, groups,
            np.mean(plain), walk)


def speed_row():
    m = drifting_movie((1024, 1024), 40, counts_per_pixel=0.5, seed=7)
    estimate_drift(m.frames[:4, :256, :256])  # warm-up (imports, FFT plans)
    t = time.perf_counter()
    r = estimate_drift(m.frames, pixel_size=1.0)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    b = baseline_shifts(m.frames)
    t_base = time.perf_counter() - t
    return t_ours, t_base, rms(r.shifts, m.shifts), rms(b, m.shifts)


MEMORY_CHILD = r"""
import sys, time, numpy as np, mrcfile
from napari_cryomat.core.drift import estimate_drift, aligned_sum

def peak_rss_gib():  # VmHWM: ru_maxrss would carry over the parent's peak across exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2

path, truth = sys.argv[1], np.load(sys.argv[2])
mrc = mrcfile.mmap(path, mode="r")  # memory-mapped: frames are read one at a time
t = time.perf_counter()
r = estimate_drift(mrc.data, pixel_size=1.0)
s = aligned_sum(mrc.data, r.shifts)
e = r.shifts - truth
print(time.perf_counter() - t, peak_rss_gib(),
      float(np.sqrt(((e - e.mean(0)) ** 2).sum(1).mean())))
"""


def write_big_movie(path: str, n: int = 40, size: int = 4096, seed: int = 0) -> np.ndarray:
    """40 × 4096² float32 MRC (2.7 GB) written frame by frame: lattice grain + ice, integer drift."""
    import mrcfile
    from scipy import ndimage

    from napari_cryomat.core.synthetic.movie import drift_trajectory, lattice_specimen

    rng = np.random.default_rng(seed)
    shifts = np.round(drift_trajectory(n, velocity=(0.7, 1.1), step=0.3, seed=seed))
    pad = int(np.abs(shifts).max()) + 2
    c = size + 2 * pad
    small = ndimage.gaussian_filter(rng.standard_normal((c // 16, c // 16)), 3, mode="wrap")
    grain = ndimage.zoom((small > 0).astype(np.float32), c / small.shape[0], order=1)[:c, :c]
    grain = ndimage.gaussian_filter(grain, 4)
    yy, xx = np.mgrid[0:c, 0:c].astype(np.float32)
    ice = ndimage.gaussian_filter(rng.standard_normal((c, c)).astype(np.float32), 3)
    ice /= ice.std()
    spec = 0.7 * grain * lattice_specimen(yy, xx) + (1 - grain) * (1 + 0.3 * ice)
    del yy, xx, ice
    nrng = np.random.default_rng(seed + 1)
    with mrcfile.new_mmap(path, shape=(n, size, size), mrc_mode=2, overwrite=True) as mrc:
        for i, (dy, dx) in enumerate(shifts.astype(int)):
            # frame_i(r) = frame_0(r - s_i): crop the canvas at offset -s_i
            crop = spec[pad - dy : pad - dy + size, pad - dx : pad - dx + size]
            mrc.data[i] = nrng.poisson(0.5 * np.clip(crop, 0.05, None)).astype(np.float32)
        mrc.voxel_size = 1.0
    return shifts


def memory_row():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.mrc")
        shifts = write_big_movie(path)
        np.save(os.path.join(tmp, "truth.npy"), shifts)
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, path, os.path.join(tmp, "truth.npy")],
                             capture_output=True, text=True, check=True)
    t, peak_gib, err = map(float, out.stdout.split())
    return t, peak_gib, err


def main():
    t0 = time.perf_counter()
    acc = accuracy_rows()
    t_ours, t_base, e_ours, e_base = speed_row()
    t_mem, peak, e_mem = memory_row()
    lines = []
    lines.append(f"Drift benchmark ({os.cpu_count()} CPUs, one run, {time.perf_counter() - t0:.0f} s total)")
    lines.append("")
    lines.append("Accuracy: 256² × 20 frames, 8 px lattice + 1/3-order superlattice, random walk (0.25 px/frame/axis)"
                 " + linear drift, 3 seeds (100-102)")
    lines.append(f"0.01 hard: the same at 0.01 over {len(HARD_SEEDS)} seeds never used for tuning ({HARD_SEEDS[0]}-"
                 f"{HARD_SEEDS[-1]}; 100-102 are easy ones); jumps = seeds of {len(HARD_SEEDS)} with a frame half a period off")
    lines.append("CRB: per-frame bound (known specimen); BCRB: same plus the true random-walk prior")
    lines.append("no smoother: smooth=False; walk step: random-walk step chosen by the smoother from the data"
                 " (true 0.25; '-' = smoother skipped, frames precise alone)")
    hdr = (f"{'counts/px/frame':>15} | {'CRB px':>7} | {'BCRB px':>7} | {'ours px':>7} | {'ours/CRB':>8} | {'PCC-first px':>12} | "
           f"{'PCC/ours':>8} | {'CC-first px':>11} | {'jumps':>5} | {'max err, 40 Å search':>20} | {'no smoother px':>14} | groups"
           " | walk step px (est.)")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for c, bound, bbound, ours, base, base_cc, jumps, wide, groups, plain, walk in acc:
        walk_txt = "[" + ", ".join("-" if np.isnan(w) else f"{w:g}" for w in walk) + "]"
        lines.append(f"{c:>15} | {bound:7.3f} | {bbound:7.3f} | {ours:7.3f} | {ours / bound:8.2f} | {base:12.3f} | "
                     f"{base / ours:8.1f} | {base_cc:11.3f} | {jumps:>5d} | {wide:20.2f} | {plain:14.3f} | {groups} | "
                     f"{walk_txt}")
    lines.append("")
    lines.append("Speed: global alignment, 40 frames of 1024² (0.5 counts/px/frame)")
    lines.append(f"  ours {t_ours:.2f} s (RMS {e_ours:.3f} px)   PCC-first baseline {t_base:.2f} s (RMS {e_base:.3f} px)   "
                 f"ratio ours/baseline {t_ours / t_base:.2f}")
    lines.append("Memory: 40 frames of 4096² (2.7 GB float32 MRC, memory-mapped), estimate_drift + aligned_sum")
    lines.append(f"  peak RSS {peak:.2f} GiB (VmHWM of the child process, mapped file pages included), {t_mem:.0f} s, RMS {e_mem:.3f} px")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
