"""``cryomat batch segment INPUT... -o OUTDIR``: the command line over :func:`~.engine.segment_folder`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["segment_main", "TextProgress", "parse_option"]

DESCRIPTION = """Segment, measure and classify every image of INPUT (files or folders of MRC, TIFF,
DM3/DM4, EMD, ...; stacks frame by frame) on dask. Writes OUTDIR/<name>_labels.tif (with the pixel
size), objects.parquet and objects.csv (one row per object: file, frame, label and the measurements in
Å, Å²), summary.csv (one row per file), batch.json and report.html. A file that fails is reported and
skipped; a rerun skips the files already done with the same settings."""


class TextProgress:
    """A one-line progress bar on stderr (one line per file when stderr is not a terminal)."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.perf_counter()
        self.failed = 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int, row) -> None:
        if row is not None and row.get("status") != "ok":
            self.failed += 1
        elapsed = time.perf_counter() - self.start
        filled = int(self.width * done / max(total, 1))
        left = ""
        if row is not None and done < total:
            left = f", ~{_clock(elapsed / max(done, 1) * (total - done))} left"
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} files"
                f"{f', {self.failed} failed' if self.failed else ''}, {_clock(elapsed)}{left}")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        elif row is not None or done >= total:
            self.stream.write(line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--param``: numbers become numbers, true/false booleans, the rest text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param needs KEY=VALUE (e.g. min_size=200); got {text!r}")
    key, value = (part.strip() for part in text.split("=", 1))
    low = value.lower()
    if low in ("true", "false"):
        return key, low == "true"
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cryomat batch segment", description=DESCRIPTION)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("-o", "--outdir", required=True, help="output folder (created if missing)")
    p.add_argument("--method", choices=("particles", "classifier"), default="particles",
                   help="particles: automatic particle segmentation (default); classifier: a saved pixel "
                        "classifier (--model)")
    p.add_argument("--model", metavar="FILE", help="pixel classifier saved from the Segmentation dock")
    p.add_argument("--background-class", type=int, default=None, metavar="K",
                   help="classifier: the pixel class that is background (default: the largest class per frame)")
    p.add_argument("--pixel-size", type=float, default=None, metavar="Å",
                   help="Å per pixel for files without a calibration (calibrated files keep their own)")
    p.add_argument("--param", action="append", type=parse_option, default=[], metavar="KEY=VALUE",
                   help="a segment_particles option, repeatable (e.g. --param polarity=bright --param min_size=200)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask.distributed scheduler (default: a local cluster); "
                        "'serial' runs in this process. OUTDIR must be visible to every worker.")
    p.add_argument("-j", "--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: one per CPU core, at most one per file)")
    p.add_argument("-r", "--recursive", action="store_true", help="also the images in sub-folders of a folder")
    p.add_argument("--rerun", action="store_true", help="run every file again, even those already done")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    return p


def segment_main(argv: list[str]) -> int:
    """Entry point of ``cryomat batch segment``. Exit code 0 all ok, 1 some failed, 2 nothing ran."""
    from napari_cryomat.batch.engine import BatchError, segment_folder

    args = _parser().parse_args(argv)
    if args.workers is not None and args.workers < 1:
        print("cryomat batch segment: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        result = segment_folder(
            args.inputs, args.outdir, method=args.method, model=args.model, pixel_size=args.pixel_size,
            options=dict(args.param), background_class=args.background_class, scheduler=args.scheduler,
            workers=args.workers, rerun=args.rerun, recursive=args.recursive, report=not args.no_report,
            progress=TextProgress(),
        )
    except BatchError as exc:
        print(f"cryomat batch segment: {exc}", file=sys.stderr)
        return 2
    for _, row in result.failed.iterrows():
        error = str(row["error"])
        name = f"{Path(row['file']).name}: "
        print(f"FAILED  {row['file']}: {error[len(name):] if error.startswith(name) else error}", file=sys.stderr)
    for note in result.notes:
        print(f"note    {note}", file=sys.stderr)
    s = result.summary
    before = int((s["run"] == "done before").sum())
    n_classes = result.classes.get("n_classes", 0)
    print(f"{result.n_ok}/{len(s)} images segmented ({before} done before, skipped); "
          f"{len(result.objects)} objects in {n_classes} shape classes")
    print(f"outputs in {result.outdir}: objects.parquet, objects.csv, summary.csv"
          + (", report.html" if result.report else ""))
    return 0 if result.n_ok == len(s) else 1
