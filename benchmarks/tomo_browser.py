"""Tomogram browser operations on a 1 GiB float32 MRC: lazy core functions against a full read.

One run prints one table. Each way runs in its own fresh subprocess (its own peak RSS), with the
file dropped from the page cache first (posix_fadvise DONTNEED), so "open" includes disk reads.

* napari-cryomat: ``read_mrc`` (memory-mapped) then the functions the browser calls:
  ``slab_mean`` / ``slab_contrast`` / ``orthoslice`` / ``bin_volume`` / ``gaussian_lowpass``.
* baseline: what a simple script does: ``mrcfile.read`` of the whole volume, then numpy on it
  (``mean`` over the slab, ``np.percentile`` of the full slab, reshape-mean binning of the
  whole volume).

Steps (slab = 10 slices): open + XY slab at the middle + 0.5-99.5 % contrast; the XY slab 10
slices further; XZ slab; YZ slab read with a stride of 4 (the browser's preview of big
volumes) and exactly; one XY section of the 4x-binned volume; the whole 4x-binned volume in
memory (what the browser's dock computes in its worker before napari shows the binning, so that
napari never slices a lazy layer on the GUI thread); Gaussian low-pass (sigma 40 Å) of the XY slab. Times are wall clock of one run; "next 4x section" is the mean
of the three following sections (the first includes dask's start-up).

    python benchmarks/tomo_browser.py            # 1 GiB file in benchmarks/_data (made once)
    python benchmarks/tomo_browser.py --gib 0.25 # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _bigmrc import DATA, drop_cache, make_mrc, peak_rss_mb

SLAB = 10


def make_file(path: Path, gib: float) -> tuple[int, int, int]:
    return make_mrc(path, gib, section=1024, voxel_size=10.0, min_sections=16)


def measure(way: str, path: str) -> dict:
    """Run in a fresh process; returns per-step times (ms) and peak RSS (MB)."""
    import scipy.ndimage  # noqa: F401  (import cost not measured)

    from napari_cryomat.core import tomo

    rss0 = peak_rss_mb()
    t = {}
    t0 = time.perf_counter()
    if way == "napari-cryomat":
        from napari_cryomat.io.mrc import read_mrc

        [(vol, kwargs, _)] = read_mrc(path)
        vs = kwargs["scale"]
        nz, ny, nx = vol.shape
        slab = tomo.slab_mean(vol, nz // 2, thickness=SLAB)
        lims = tomo.slab_contrast(vol, nz // 2, thickness=SLAB, percentiles=(0.5, 99.5))
        t["open + XY slab + contrast"] = time.perf_counter() - t0
        s = time.perf_counter()
        slab2 = tomo.slab_mean(vol, nz // 2 + SLAB, thickness=SLAB)
        t["next XY slab (+10)"] = time.perf_counter() - s
        s = time.perf_counter()
        xz = tomo.orthoslice(vol, ny // 2, axis=1, thickness=SLAB)
        t["XZ slab"] = time.perf_counter() - s
        s = time.perf_counter()
        yz = tomo.orthoslice(vol, nx // 2 + 100, axis=2, thickness=SLAB, step=4)
        t["YZ slab, preview stride 4"] = time.perf_counter() - s
        s = time.perf_counter()
        yz = tomo.orthoslice(vol, nx // 2, axis=2, thickness=SLAB)
        t["YZ slab"] = time.perf_counter() - s
        tomo.release_pages(vol)
        s = time.perf_counter()
        binned = tomo.bin_volume(vol, 4)
        b4 = np.asarray(binned[nz // 8])
        t["4x binned XY section"] = time.perf_counter() - s
        s = time.perf_counter()
        for k in range(1, 4):
            b4 = b4 + np.asarray(binned[nz // 8 + k])
        tomo.release_pages(vol)
        t["next 4x section (mean of 3)"] = (time.perf_counter() - s) / 3
        s = time.perf_counter()
        b4 = b4 + tomo.compute_slices(binned)[nz // 8]  # what the browser's dock computes before it shows 4x
        tomo.release_pages(vol)
        t["4x volume in memory (worker)"] = time.perf_counter() - s
    else:
        import mrcfile

        vol = np.flip(mrcfile.read(path), axis=1)  # same orientation; a view, no copy
        vs = (10.0, 10.0, 10.0)
        nz, ny, nx = vol.shape
        z0, z1 = tomo.slab_bounds(nz // 2, SLAB, nz)
        slab = vol[z0:z1].mean(0, dtype=np.float32)
        lims = tuple(np.percentile(slab, [0.5, 99.5]))
        t["open + XY slab + contrast"] = time.perf_counter() - t0
        s = time.perf_counter()
        z0, z1 = tomo.slab_bounds(nz // 2 + SLAB, SLAB, nz)
        slab2 = vol[z0:z1].mean(0, dtype=np.float32)
        t["next XY slab (+10)"] = time.perf_counter() - s
        s = time.perf_counter()
        y0, y1 = tomo.slab_bounds(ny // 2, SLAB, ny)
        xz = vol[:, y0:y1, :].mean(1, dtype=np.float32)
        t["XZ slab"] = time.perf_counter() - s
        s = time.perf_counter()
        x0, x1 = tomo.slab_bounds(nx // 2 + 100, SLAB, nx)
        yz = vol[::4, ::4, x0:x1].mean(2, dtype=np.float32)
        t["YZ slab, preview stride 4"] = time.perf_counter() - s
        s = time.perf_counter()
        x0, x1 = tomo.slab_bounds(nx // 2, SLAB, nx)
        yz = vol[:, :, x0:x1].mean(2, dtype=np.float32)
        t["YZ slab"] = time.perf_counter() - s
        s = time.perf_counter()
        m = (nz // 4, ny // 4, nx // 4)
        whole = vol[: m[0] * 4, : m[1] * 4, : m[2] * 4].reshape(m[0], 4, m[1], 4, m[2], 4)
        binned = whole.mean(axis=(1, 3, 5), dtype=np.float32)
        b4 = binned[nz // 8]
        t["4x binned XY section"] = time.perf_counter() - s
        s = time.perf_counter()
        for k in range(1, 4):
            b4 = b4 + binned[nz // 8 + k]
        t["next 4x section (mean of 3)"] = (time.perf_counter() - s) / 3
        t["4x volume in memory (worker)"] = t["4x binned XY section"]  # it binned the whole volume
    s = time.perf_counter()
    lp = tomo.gaussian_lowpass(slab, sigma_A=40.0, pixel_size_A=vs[1:])
    t["low-pass XY slab (40 Å)"] = time.perf_counter() - s
    check = float(slab2.sum() + xz.sum() + yz.sum() + b4.sum() + lp.sum())
    return {
        "ms": {k: 1000 * v for k, v in t.items()},
        "limits": [float(v) for v in lims],
        "check": check,
        "peak_rss_mb": peak_rss_mb(),
        "rss_start_mb": rss0,
        "shape": [int(nz), int(ny), int(nx)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return

    path = DATA / f"tomo_browser_{args.gib:g}GiB.mrc"
    shape = make_file(path, args.gib)
    results = {}
    for way in ("napari-cryomat", "baseline"):
        drop_cache(path)
        out = subprocess.run([sys.executable, __file__, "--child", way, str(path)],
                             capture_output=True, text=True, check=True)
        results[way] = json.loads(out.stdout.strip().splitlines()[-1])
    a, b = results["napari-cryomat"], results["baseline"]
    size_gib = path.stat().st_size / 2**30
    print(f"Tomogram browser operations, float32 MRC {tuple(shape)} ({size_gib:.2f} GiB), slab {SLAB} slices,"
          f" page cache dropped before each way")
    print(f"{'step':<30}{'napari-cryomat (ms)':>21}{'baseline mrcfile.read (ms)':>28}")
    for k in a["ms"]:
        print(f"{k:<30}{a['ms'][k]:>21.1f}{b['ms'][k]:>28.1f}")
    print(f"{'peak RSS (MB, process)':<30}{a['peak_rss_mb']:>21.0f}{b['peak_rss_mb']:>28.0f}")
    print(f"{'  of which before the steps':<30}{a['rss_start_mb']:>21.0f}{b['rss_start_mb']:>28.0f}")
    print(f"{'contrast 0.5-99.5 % limits':<30}{'%.3f, %.3f' % tuple(a['limits']):>21}"
          f"{'%.3f, %.3f' % tuple(b['limits']):>28}")
    print("napari-cryomat: memmap + slab reads + strided contrast sample; baseline: whole volume read, numpy.")


if __name__ == "__main__":
    main()
