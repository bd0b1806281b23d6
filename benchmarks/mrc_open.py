"""Open a 4 GiB float32 MRC and browse it: napari-cryomat's reader against a plain mrcfile.read.

One run prints one table. Each way is measured in its own fresh subprocess so that peak RSS is its
own. "open + middle slice" is the time from the call to the reader until napari's Image layer has
sliced and holds the middle section (what the canvas would draw); "slice change" is the mean of
moving 10 sections, each forcing napari to slice the layer again.

    python benchmarks/mrc_open.py            # 4 GiB file in benchmarks/_data (made once)
    python benchmarks/mrc_open.py --gib 1    # smaller, for a quick look
    python benchmarks/mrc_open.py --micrograph-only   # only the second table
    python benchmarks/mrc_open.py --movie-only        # only the third table

Targets (issue #2): open in at most 1 s and 300 MB RSS; each slice change in at most 50 ms.

A second table: one big 2D micrograph (8192 x 8192 float32, 256 MiB), opened as the overview
pyramid the reader gives a big 2D image against the same memory map as one array (the reader of
session 23). "open + full view" is from the call to the reader until napari holds what a laptop's
canvas (650 x 1030 pixels) draws of the whole image; "zoom to pixels" until it holds a canvas-sized
region in the middle at one image pixel per screen pixel; "pan" the mean of 10 moves by a third of
the canvas at that zoom.

A third table: a movie of 4096 x 4096 float32 frames (an image stack, space group 0), opened as the
per-frame overview pyramid against the same memory map as one array (the reader of session 24, where
stacks got no overview). "open + full view" as above, on the middle frame; "frame step" the mean of
moving the frame slider 6 times at full view (each frame read from a cold file), "back" the mean of
stepping back through 5 of those frames (warm file; the overview keeps what it showed); zoom and pan as above.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _bigmrc import DATA, already_written, drop_cache, make_mrc, peak_rss_mb


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


#: a laptop's canvas (pixels): napari picks the overview level for it
CANVAS = (650, 1030)


def make_micrograph(path: Path, side: int = 8192) -> tuple[int, int]:
    """A 2D float32 MRC of ``side`` x ``side`` Poisson counts (written once, reused)."""
    import mrcfile

    shape = (side, side)
    if already_written(path, shape):
        return shape
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with mrcfile.new_mmap(str(path), shape=shape, mrc_mode=2, overwrite=True) as m:
        for y in range(0, side, 1024):
            m.data[y:y + 1024] = rng.poisson(30.0, size=(min(1024, side - y), side))
        m.voxel_size = 0.85
    return shape


def _draw(layer, top_left, extent) -> float:
    """What napari does when the canvas shows ``extent`` (world units) from ``top_left``: choose
    the level and tile (multiscale), slice, and read the pixels the texture gets. Returns seconds."""
    t = time.perf_counter()
    corners = np.array([top_left, np.add(top_left, extent)], dtype=float)
    layer._update_draw(scale_factor=extent[0] / CANVAS[0], corner_pixels_displayed=corners, shape_threshold=CANVAS)
    layer.refresh()
    _ = np.asarray(layer._slice.image.raw, dtype=np.float32).sum()
    return time.perf_counter() - t


def measure_micrograph(way: str, path: str) -> dict:
    """Run in a fresh process: open the micrograph (or movie) ``way``, full view (of a movie's middle
    frame), step frames at full view (a movie), zoom to pixels, pan 10 times."""
    from napari.components import ViewerModel

    from napari_cryomat.io._pyramid import with_overview
    from napari_cryomat.io.mrc import read_mrc

    viewer = ViewerModel()
    viewer.layers.remove(viewer.add_image(np.zeros((2, 2), np.float32), units=("angstrom",) * 2))
    # the overview's levels are dask arrays: the session's first file pays ``import dask.array`` once
    # (napari itself does not import it). Shown in its own column, outside "open + full view".
    t_import = time.perf_counter()
    import dask.array  # noqa: F401
    t_import = time.perf_counter() - t_import
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    layers = read_mrc(path)  # "one array": the memory map and the pixels' limits (session 23's napari reader)
    if way == "overview pyramid":  # what napari_read_mrc gives napari now
        layers = with_overview(layers)
    [(data, kwargs, _)] = layers
    layer = viewer.add_image(data, **{k: v for k, v in kwargs.items() if k != "name"})
    ny, nx = layer.data.shape[-2:]
    n_frames = layer.data.shape[0] if layer.ndim == 3 else 1
    if n_frames > 1:
        viewer.dims.set_current_step(0, n_frames // 2)
    s = layer.scale[-1]
    whole = (ny * s, ny * s * CANVAS[1] / CANVAS[0])  # the image's height fills the canvas
    full_view = (0.0, (nx * s - whole[1]) / 2)
    _draw(layer, full_view, whole)
    t_open = time.perf_counter() - t0
    level_full = int(getattr(layer, "data_level", 0))
    frame_steps, steps_back = [], []
    stepped = [k for k in range(n_frames) if k != n_frames // 2][:6]
    for k in stepped + stepped[-2::-1]:  # 6 frames, then back through those seen (warm file)
        t = time.perf_counter()
        viewer.dims.set_current_step(0, k)  # napari slices the new frame at the level and view it holds
        _ = np.asarray(layer._slice.image.raw, dtype=np.float32).sum()
        (frame_steps if len(frame_steps) < len(stepped) else steps_back).append(time.perf_counter() - t)
    pixels = (CANVAS[0] * s, CANVAS[1] * s)
    centre = np.array([ny * s / 2 - pixels[0] / 2, nx * s / 2 - pixels[1] / 2])
    t_zoom = _draw(layer, tuple(centre), pixels)
    level_zoom = int(getattr(layer, "data_level", 0))
    pans = [_draw(layer, tuple(centre + (0.0, i * pixels[1] / 3)), pixels) for i in range(1, 11)]
    return {"open_s": t_open, "zoom_ms": 1000 * t_zoom, "frame_steps_ms": [1000 * t for t in frame_steps],
            "steps_back_ms": [1000 * t for t in steps_back],
            "dask_import_s": t_import, "pan_ms": 1000 * float(np.mean(pans)),
            "pan_max_ms": 1000 * float(np.max(pans)), "level_full": level_full, "level_zoom": level_zoom,
            "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": rss_before}


def _both_ways(path: Path) -> list[tuple[str, dict]]:
    """(way, measure_micrograph's numbers) for the overview pyramid and the one array, each in a fresh process
    with the file dropped from the page cache first."""
    rows = []
    for way in ("overview pyramid", "one array"):
        drop_cache(path)
        out = subprocess.run([sys.executable, __file__, "--child-micrograph", way, str(path)],
                             capture_output=True, text=True, check=True)
        rows.append((way, json.loads(out.stdout.strip().splitlines()[-1])))
    return rows


def micrograph_table() -> None:
    path = DATA / "bench_micrograph_8k.mrc"
    _print_table(path, f"2D micrograph {make_micrograph(path)}", frames=False)


def _print_table(path: Path, what: str, *, frames: bool) -> None:
    """The overview pyramid against the one array on ``path`` (:func:`_both_ways`), one row each; ``frames``
    adds the frame-step column of a stack."""
    rows = _both_ways(path)
    print(f"\nOpen and view a {path.stat().st_size / 2**20:.0f} MiB float32 {what}; canvas "
          f"{CANVAS[0]} x {CANVAS[1]}; 2 cores; fresh process each; cold file")
    step_head = f" {'frame step (mean/max)':>22} {'back':>8}" if frames else ""
    print(f"{'layer':<17} {'open+full view':>15} {'level':>6}{step_head} {'zoom to pixels':>15} "
          f"{'pan (mean/max)':>17} {'RSS added':>10}")
    for way, r in rows:
        added = r["peak_rss_mb"] - r["baseline_rss_mb"]
        steps = r["frame_steps_ms"]
        step = f" {np.mean(steps):>12.1f} / {max(steps):>5.1f} ms {np.mean(r['steps_back_ms']):>5.1f} ms" if frames else ""
        print(f"{way:<17} {r['open_s']:>13.3f} s {r['level_full']:>6d}{step} {r['zoom_ms']:>12.1f} ms "
              f"{r['pan_ms']:>8.1f} / {r['pan_max_ms']:>5.1f} ms {added:>7.0f} MB")
    print(f"(before the clock: the session's first 'import dask.array', {rows[0][1]['dask_import_s']:.2f} s, "
          "paid once by the first overview opened)")


def make_movie(path: Path, n_frames: int = 8, side: int = 4096) -> tuple[int, int, int]:
    """An image-stack MRC (space group 0) of ``n_frames`` float32 frames of Poisson counts, 1 per pixel
    (written once, reused)."""
    import mrcfile

    shape = (n_frames, side, side)
    if already_written(path, shape):
        return shape
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    with mrcfile.new_mmap(str(path), shape=shape, mrc_mode=2, overwrite=True) as m:
        for k in range(n_frames):
            m.data[k] = rng.poisson(1.0, size=(side, side))
        m.set_image_stack()
        m.voxel_size = 0.85
    return shape


def movie_table() -> None:
    path = DATA / "bench_movie_8x4k.mrc"
    _print_table(path, f"movie {make_movie(path)} (frames, Y, X)", frames=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--micrograph-only", action="store_true", help="only the 2D micrograph table")
    parser.add_argument("--movie-only", action="store_true", help="only the movie (stack of 4k frames) table")
    parser.add_argument("--child", nargs=2, metavar=("WAY", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--child-micrograph", nargs=2, metavar=("WAY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    if args.child_micrograph:
        print(json.dumps(measure_micrograph(*args.child_micrograph)))
        return
    if args.micrograph_only:
        micrograph_table()
        return
    if args.movie_only:
        movie_table()
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
    micrograph_table()
    movie_table()


if __name__ == "__main__":
    main()
