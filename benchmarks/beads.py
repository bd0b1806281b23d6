"""Gold-bead alignment of tilt series: shift and axis errors, next to fiducial-free alignment.

Random bead tilt series (``core/synthetic/beads.py``: 61 tilts -60..60°, beads of 5-12 px on a
textured specimen with shot noise, random shifts of up to ±20 px per tilt and axis, a random axis
angle), at three doses. For each: ``track_beads`` with the axis NOT given, and the fiducial-free
``align_tilt_series`` with the axis given (the baseline, same series, same run). Errors are RMS over
tilts and both axes after removing the part no data fixes (the gauge of ``TiltAlignment``).

    python benchmarks/beads.py            # 9 series of 256² (a few minutes on 2 cores)
    python benchmarks/beads.py --n 1 --size 192
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_cryomat.core.fiducials import _remove_gauge, track_beads
from napari_cryomat.core.synthetic.beads import bead_tilt_series
from napari_cryomat.core.tilt import align_tilt_series


def _rms(est, ref):
    return float(np.sqrt(np.mean((est - ref) ** 2)))


def run_series(size: int, dose: float, seed: int, fiducial_free: bool) -> dict:
    rng = np.random.default_rng(1000 + seed)
    alpha = float(rng.uniform(-85, 85))
    diam = float(rng.uniform(5, 12))
    tilts, truth = bead_tilt_series((size, size), n_beads=int(rng.integers(8, 30)), bead_diameter_px=diam,
                                    tilt_axis_angle=alpha, dose=dose, seed=seed)
    th = np.deg2rad(truth["angles"])
    ref, _ = _remove_gauge(truth["shifts"], truth["beads"], th, alpha)
    t0, c0 = time.perf_counter(), time.process_time()
    model = track_beads(tilts, truth["angles"], bead_diameter=diam)
    out = {"alpha": alpha, "diam": diam, "beads": int(np.isfinite(model.beads[:, 0]).sum()),
           "bead_rms": _rms(model.shifts, ref),
           "bead_axis": abs(((model.tilt_axis_angle - alpha + 90) % 180) - 90),
           "bead_s": time.perf_counter() - t0, "bead_cpu": time.process_time() - c0, "model_rms": model.rms_px}
    if fiducial_free:
        t0 = time.perf_counter()
        al = align_tilt_series(tilts, truth["angles"], tilt_axis_angle=alpha)
        out["ff_rms"] = _rms(al.shifts, ref)
        out["ff_s"] = time.perf_counter() - t0
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3, help="series per dose")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--no-baseline", action="store_true", help="skip fiducial-free alignment")
    args = parser.parse_args()
    print(f"Gold-bead alignment, {args.size}² x 61 tilts, shifts ±20 px, random axis (not given to track_beads)")
    print("| counts/px | series | beads | bead shift RMS px | axis error ° | bead fit RMS px | time s (CPU) "
          "| fiducial-free RMS px (axis given) | its time s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dose in (5.0, 20.0, 100.0):
        for k in range(args.n):
            r = run_series(args.size, dose, seed=int(dose) * 10 + k, fiducial_free=not args.no_baseline)
            ff = f"{r['ff_rms']:.3f} | {r['ff_s']:.1f}" if "ff_rms" in r else "— | —"
            print(f"| {dose:g} | {k} (axis {r['alpha']:+.1f}°, {r['diam']:.1f} px) | {r['beads']} | "
                  f"{r['bead_rms']:.3f} | {r['bead_axis']:.3f} | {r['model_rms']:.3f} | "
                  f"{r['bead_s']:.1f} ({r['bead_cpu']:.1f}) | {ff} |", flush=True)


if __name__ == "__main__":
    main()
