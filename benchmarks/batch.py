"""Batch segmentation throughput: ``cryomat batch segment`` on a LocalCluster of 1 and 2 workers
against a plain serial loop over the same files, in one run.

Images: ``--n`` generated 2048² micrographs of touching particles (core/synthetic/particles.py,
``--distinct`` different seeds, repeated), as calibrated MRC files. Every mode does the same work per
file (read, segment_particles with its defaults, measure, write labels TIFF and table part); the
dask runs also gather the table, classify shapes across the set and write report.html, and their
wall time includes starting the cluster. Prints one table: wall time, seconds per image, images per
hour, the scaling from 1 to 2 workers (target >= 1.7x) and the per-image cost (worker-seconds per
image: N workers give about N / cost images per second).

    python benchmarks/batch.py                 # 16 images of 2048², about 3 minutes on 2 cores
    python benchmarks/batch.py --n 6 --size 512  # quick look
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import mrcfile

TARGET_PER_HOUR = 500
TARGET_SCALING = 1.7


def make_inputs(folder: Path, n: int, size: int, distinct: int) -> None:
    from napari_cryomat.core.synthetic.particles import make_particles

    folder.mkdir(parents=True, exist_ok=True)
    n_particles = max(8, int(400 * (size / 2048) ** 2))
    for k in range(distinct):
        img, _, _ = make_particles(shape=(size, size), n_particles=n_particles, pixel_size=2.0, seed=100 + k)
        with mrcfile.new(str(folder / f"img{k:03d}.mrc"), data=img) as mrc:
            mrc.voxel_size = 2.0
    for k in range(distinct, n):
        shutil.copyfile(folder / f"img{k % distinct:03d}.mrc", folder / f"img{k:03d}.mrc")


def serial_loop(files, outdir: Path) -> tuple[float, int, float]:
    """The baseline: the same per-file work in a plain for loop, no dask.
    Returns (wall s, objects, CPU s per image)."""
    from napari_cryomat.batch.engine import check_output_folder
    from napari_cryomat.batch.segment import SegmentSettings, segment_file

    check_output_folder(outdir)
    settings = SegmentSettings()
    start = time.perf_counter()
    n_objects, cpu = 0, 0.0
    for path in files:
        row = segment_file(path, outdir, path.stem, settings)
        if row["status"] != "ok":
            sys.exit(f"serial loop: {row['error']}")
        n_objects += row["n_objects"]
        cpu += row["cpu_seconds"]
    return time.perf_counter() - start, n_objects, cpu / len(files)


def dask_run(folder: Path, outdir: Path, workers: int) -> tuple[float, int, float]:
    from napari_cryomat.batch import segment_folder

    start = time.perf_counter()
    result = segment_folder([folder], outdir, workers=workers, rerun=True)
    wall = time.perf_counter() - start
    if result.n_ok != len(result.summary):
        sys.exit(f"{workers} worker(s): {result.failed['error'].tolist()}")
    return wall, len(result.objects), float(result.summary["cpu_seconds"].mean())


def _print_row(name, workers, wall, n_obj, cpu, n, one_worker_wall) -> None:
    versus = f"{one_worker_wall / wall:>10.2f}x" if one_worker_wall else f"{'':>11}"
    print(f"{name:<28} {workers:>7} {wall:>7.1f} {wall / n:>8.2f} {3600 * n / wall:>9.0f} "
          f"{workers * wall / n:>10.2f} {cpu:>9.2f} {versus} {n_obj:>8}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=16, help="images (default 16)")
    p.add_argument("--size", type=int, default=2048, help="image edge in pixels (default 2048)")
    p.add_argument("--distinct", type=int, default=4, help="different images among them (default 4)")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="cryomat-batch-bench-"))
    try:
        t0 = time.perf_counter()
        make_inputs(tmp / "in", args.n, args.size, min(args.distinct, args.n))
        print(f"{args.n} images of {args.size}² generated in {time.perf_counter() - t0:.0f} s; "
              f"{os.cpu_count()} CPU cores; machine shared with other jobs, timings pessimistic", flush=True)
        files = sorted((tmp / "in").glob("*.mrc"))
        print(f"\nBatch segmentation of {args.n} images of {args.size}² (particles, defaults), one run "
              "(rows print as they finish)")
        print(f"{'mode':<28} {'workers':>7} {'wall s':>7} {'s/image':>8} {'images/h':>9} {'cost s/img':>10} "
              f"{'CPU s/img':>9} {'vs 1 worker':>11} {'objects':>8}", flush=True)
        wall0, n_obj, cpu = serial_loop(files, tmp / "serial")
        _print_row("serial loop (baseline)", 1, wall0, n_obj, cpu, args.n, None)
        walls, cpus = {}, {}
        for workers in (1, 2):
            walls[workers], n_obj, cpus[workers] = dask_run(tmp / "in", tmp / f"dask{workers}", workers)
            name = f"LocalCluster, {workers} worker{'s' if workers > 1 else ''}"
            _print_row(name, workers, walls[workers], n_obj, cpus[workers], args.n, walls[1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    scaling = walls[1] / walls[2]
    print(f"\nscaling 1 -> 2 workers: {scaling:.2f}x wall (target >= {TARGET_SCALING}x); 2 workers: "
          f"{3600 * args.n / walls[2]:.0f} images/h (target >= {TARGET_PER_HOUR}); dask at 1 worker vs the serial "
          f"loop: {walls[1] / wall0:.2f}x the wall time")
    print(f"CPU cost per image (unaffected by other jobs on the machine): serial {cpu:.2f} s, 1 worker "
          f"{cpus[1]:.2f} s, 2 workers {cpus[2]:.2f} s -> on N dedicated cores about "
          f"{3600 / cpus[2]:.0f} x N images/h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
