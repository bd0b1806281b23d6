"""Batch alignment: ``cryomat align INPUT... -o OUTDIR`` (many movies in parallel with dask).

Each movie (MRC, read memory-mapped; or TIFF) is aligned with
:func:`napari_cryomat.core.drift.estimate_drift`; its aligned sum, dose-weighted sum (if the dose
is given) and shift table are written to OUTDIR as ``<stem>_sum.mrc``, ``<stem>_dw.mrc`` and
``<stem>_shifts.csv``. A file that fails is reported and skipped; the others finish. Local dask
workers (processes) by default; ``--scheduler ADDRESS`` uses an existing dask.distributed cluster.
No Qt, no napari.
"""

from __future__ import annotations

import argparse
import csv
import sys
import traceback
from pathlib import Path
from typing import Optional

import numpy as np

__all__ = ["align_main", "align_file", "read_movie", "write_stack_mrc", "write_image_mrc", "write_shifts_csv"]


def read_movie(path: str | Path):
    """Open a movie lazily: (frames (T, Y, X) array-like, pixel size in Å or None)."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".tif", ".tiff")):
        import tifffile

        try:
            data = tifffile.memmap(str(path))
        except Exception:  # compressed or tiled TIFF: read through zarr-less fallback
            data = tifffile.imread(str(path))
        return data, None
    if name.endswith((".mrc", ".mrcs", ".st", ".map")):
        import mrcfile

        mrc = mrcfile.mmap(str(path), mode="r", permissive=False)
        px = float(mrc.voxel_size.x) or None
        return mrc.data, px
    raise ValueError(f"{path.name}: unknown movie format (use .mrc/.mrcs/.st or .tif/.tiff).")


def write_stack_mrc(path: Path, data, pixel_size: float, progress=None) -> None:
    """Write (T, Y, X) float32 as MRC with the voxel size in Å, frame by frame for lazy data.

    ``progress`` (optional) is called with the fraction of frames written; raising from it stops.
    """
    import mrcfile

    n, ny, nx = data.shape
    with mrcfile.new_mmap(str(path), shape=(n, ny, nx), mrc_mode=2, overwrite=True) as mrc:
        for i in range(n):
            f = data[i]
            mrc.data[i] = np.asarray(f.compute() if hasattr(f, "compute") else f, np.float32)
            if progress is not None:
                progress((i + 1) / n)
        mrc.voxel_size = (pixel_size, pixel_size, pixel_size)
        mrc.set_image_stack()
        mrc.update_header_stats()


def write_image_mrc(path: Path, image: np.ndarray, pixel_size: float) -> None:
    """Write a 2D float32 image as MRC with the pixel size in Å."""
    import mrcfile

    with mrcfile.new(str(path), data=np.asarray(image, np.float32), overwrite=True) as mrc:
        mrc.voxel_size = (pixel_size, pixel_size, pixel_size)


def write_shifts_csv(path: Path, res) -> None:
    """CSV: frame, dy_px, dx_px, dy_A, dx_A, residual_px (sign: frame_i(r) = frame_0(r - shift_i))."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "dy_px", "dx_px", "dy_A", "dx_A", "residual_px"])
        for i, ((dy, dx), r) in enumerate(zip(res.shifts, res.residuals)):
            w.writerow([i, f"{dy:.4f}", f"{dx:.4f}", f"{dy * res.pixel_size:.4f}", f"{dx * res.pixel_size:.4f}",
                        f"{r:.4f}"])


def align_file(path: str, outdir: str, *, pixel_size: Optional[float] = None, dose_per_frame: Optional[float] = None,
               bfactor: float = 150.0, max_shift: Optional[float] = None, group: Optional[int] = None,
               patches: Optional[tuple[int, int]] = None) -> dict:
    """Align one movie and write its outputs. Never raises: returns a status dict."""
    from napari_cryomat.core import drift as core

    path = Path(path)
    out = Path(outdir)
    stem = path.name.split(".")[0]
    try:
        frames, px_file = read_movie(path)
        px = pixel_size or px_file or 1.0
        res = core.estimate_drift(frames, pixel_size=px, bfactor=bfactor, max_shift=max_shift, group=group,
                                  patches=patches)
        written = []
        total = core.aligned_sum(frames, res.shifts, local=res.local)
        write_image_mrc(out / f"{stem}_sum.mrc", total, px)
        written.append(f"{stem}_sum.mrc")
        if dose_per_frame:
            dw = core.dose_weighted_sum(frames, res.shifts, pixel_size=px, dose_per_frame=dose_per_frame,
                                        local=res.local)
            write_image_mrc(out / f"{stem}_dw.mrc", dw, px)
            written.append(f"{stem}_dw.mrc")
        write_shifts_csv(out / f"{stem}_shifts.csv", res)
        written.append(f"{stem}_shifts.csv")
        return {"file": str(path), "ok": True, "written": written, "drift_A": res.total_drift,
                "frames": int(res.shifts.shape[0])}
    except Exception as exc:  # reported and skipped, the other files go on
        msg = str(exc) if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {exc}"
        return {"file": str(path), "ok": False, "error": msg,
                "trace": "" if isinstance(exc, (ValueError, OSError)) else traceback.format_exc()}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cryomat align", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="movies: .mrc/.mrcs/.st or .tif/.tiff")
    p.add_argument("-o", "--outdir", required=True, help="output folder (created if missing)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask.distributed scheduler (default: local processes)")
    p.add_argument("-j", "--workers", type=int, default=None, help="local worker processes (default: CPU count)")
    p.add_argument("--pixel-size", type=float, default=None, help="Å/px (default: from the MRC header, else 1)")
    p.add_argument("--dose", type=float, default=None, help="dose per frame, e/Å² (enables dose-weighted sums)")
    p.add_argument("--bfactor", type=float, default=150.0, help="B-factor for alignment, Å² (default 150)")
    p.add_argument("--max-shift", type=float, default=None, help="largest drift searched, Å (default ¼ frame)")
    p.add_argument("--group", type=int, default=None, help="frames grouped for correlation (default auto)")
    p.add_argument("--patches", type=int, nargs=2, default=None, metavar=("ROWS", "COLS"),
                   help="local motion on a ROWS×COLS patch grid")
    return p


def align_main(argv: list[str]) -> int:
    """Entry point of ``cryomat align``. Returns the exit code (0 all ok, 1 some failed, 2 usage)."""
    import dask
    from dask import delayed

    args = _parser().parse_args(argv)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    opts = dict(pixel_size=args.pixel_size, dose_per_frame=args.dose, bfactor=args.bfactor,
                max_shift=args.max_shift, group=args.group,
                patches=tuple(args.patches) if args.patches else None)
    missing = [f for f in args.inputs if not Path(f).is_file()]
    files = [f for f in args.inputs if Path(f).is_file()]
    results = [{"file": f, "ok": False, "error": "no such file"} for f in missing]
    tasks = [delayed(align_file)(f, str(out), **opts) for f in files]
    if tasks:
        if args.scheduler:
            try:
                from distributed import Client, progress
            except ImportError:
                print("--scheduler needs dask.distributed: pip install 'napari-cryomat[distributed]'", file=sys.stderr)
                return 2
            with Client(args.scheduler) as client:
                futures = client.compute(tasks)
                progress(futures)
                results += client.gather(futures)
        else:
            from dask.diagnostics import ProgressBar

            n_workers = args.workers or None
            scheduler = "processes" if len(tasks) > 1 and (n_workers is None or n_workers > 1) else "synchronous"
            with ProgressBar():
                results += list(dask.compute(*tasks, scheduler=scheduler, num_workers=n_workers))
    n_ok = sum(r["ok"] for r in results)
    for r in results:
        if r["ok"]:
            print(f"ok      {r['file']}: {r['frames']} frames, drift {r['drift_A']:.1f} Å -> {', '.join(r['written'])}")
        else:
            print(f"FAILED  {r['file']}: {r['error']}", file=sys.stderr)
    print(f"{n_ok}/{len(results)} movies aligned; outputs in {out}")
    return 0 if n_ok == len(results) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(align_main(sys.argv[1:]))
