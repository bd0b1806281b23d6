"""Open a 4 GiB float32 MRC and browse it: napari-cryomat's reader against a plain mrcfile.read.

One run prints one table. Each way is measured in its own fresh subprocess so that peak RSS is its
own. "open + middle slice" is the time from the call to the reader until napari's Image layer has
sliced and holds the middle section (what the canvas would draw); "slice change" is the mean of
moving 10 sections, each forcing napari to slice the layer again.

    python benchmarks/mrc_open.py            # 4 GiB file in benchmarks/_data (made once)
    python benchmarks/mrc_open.py --gib 1    # smaller, for a quick look

Targets (issue #2): open in at most 1 s and 300 MB RSS; each slice change in at most 50 ms.
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


def make_file(path: Path, gib: float) -> tuple[int, int, int]:
    return make_mrc(path, gib, section=2048, voxel_size=13.6)


def measure(way: str, path: str) -> dict:
    """Run in a fresh process: open ``path`` ``way``, show the middle slice, move 10 slices."""
    from napari.components import ViewerModel

    viewer = ViewerModel()
    # napari builds its pint unit registry on the first layer that has units (~0.6 s, once per
    # session). That is napari start-up, not the reader: pay it here, before the clock starts.
    viewer.layers.remove(viewer.add_image(np.zeros((2, 2), np.float32), units=("angstrom",) * 2))
    rss_before = peak_rss_mb()  # Python + napari + an empty viewer: not the reader's doing
    t0 = time.perf_counter()
    if way == "napari-cryomat":
        from napari_cryomat.io.mrc import read_mrc

        [(data, kwargs, _)] = read_mrc(path)
        layer = viewer.add_image(data, **{k: v for k, v in kwargs.items() if k != "name"})
    else:  # what simple readers do: read the whole file, let napari find the contrast itself
        import mrcfile

        data = mrcfile.read(path)
        layer = viewer.add_image(data)
    nz = layer.data.shape[0]
    viewer.dims.set_current_step(0, nz // 2)
    _ = np.asarray(layer._slice.image.raw).sum()  # the section napari would draw
    t_open = time.perf_counter() - t0

    steps = []
    for i in range(1, 11):
        t = time.perf_counter()
        viewer.dims.set_current_step(0, nz // 2 + i)
        _ = np.asarray(layer._slice.image.raw).sum()
        steps.append(time.perf_counter() - t)
    return {
        "open_s": t_open,
        "step_ms": 1000 * float(np.mean(steps)),
        "step_max_ms": 1000 * float(np.max(steps)),
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": rss_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--child", nargs=2, metavar=("WAY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return

    path = DATA / f"bench_{args.gib:g}GiB.mrc"
    shape = make_file(path, args.gib)
    size_gib = path.stat().st_size / 2**30
    # Drop this file from the page cache where we may (root on Linux), so both ways start cold.
    rows = []
    for way in ("napari-cryomat", "mrcfile.read"):
        drop_cache(path)
        out = subprocess.run([sys.executable, __file__, "--child", way, str(path)],
                             capture_output=True, text=True, check=True)
        rows.append((way, json.loads(out.stdout.strip().splitlines()[-1])))

    print(f"\nOpen and browse a {size_gib:.2f} GiB float32 MRC {shape} (Z, Y, X); "
          f"2 cores; fresh process each; RSS includes Python+napari imports")
    print(f"{'reader':<16} {'open+middle slice':>18} {'slice change (mean/max)':>24} "
          f"{'RSS added':>10} {'peak RSS':>9} {'empty viewer':>13}")
    for way, r in rows:
        added = r['peak_rss_mb'] - r['baseline_rss_mb']
        print(f"{way:<16} {r['open_s']:>16.3f} s {r['step_ms']:>14.1f} / {r['step_max_ms']:>5.1f} ms "
              f"{added:>7.0f} MB {r['peak_rss_mb']:>6.0f} MB {r['baseline_rss_mb']:>10.0f} MB")
    ours = rows[0][1]
    added = ours['peak_rss_mb'] - ours['baseline_rss_mb']
    print(f"targets: open <= 1 s [{'met' if ours['open_s'] <= 1 else 'MISSED'}], "
          f"RSS added by opening <= 300 MB [{'met' if added <= 300 else 'MISSED'}], "
          f"slice change <= 50 ms [{'met' if ours['step_max_ms'] <= 50 else 'MISSED'}]")


if __name__ == "__main__":
    main()
