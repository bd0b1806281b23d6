"""The batch engine: :func:`segment_folder` runs :func:`~.segment.segment_file` for every input on
dask and gathers the results into one table of objects, a per-file summary, shape classes across
the whole set and ``report.html``.

Where the work runs: in this process (``scheduler="serial"``), on a dask.distributed
``LocalCluster`` of worker processes (the default), or on an existing cluster (``scheduler`` the
address of its scheduler, or ``client`` a ``distributed.Client``). The workers write each file's
outputs into ``outdir``, so on a cluster ``outdir`` must be a folder every worker can see. No Qt.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_cryomat.batch._images import image_files, output_name
from napari_cryomat.batch.segment import PARTS, BatchSettingsError, SegmentSettings, is_done, segment_file

__all__ = ["BatchError", "BatchResult", "segment_folder", "check_output_folder", "SUMMARY_COLUMNS"]

SUMMARY_COLUMNS = ["name", "file", "status", "run", "error", "frames", "height", "width", "pixel_size_A",
                   "pixel_size_source", "n_objects", "objects_per_frame", "area_fraction", "mean_area_A2",
                   "median_diameter_A", "seconds", "cpu_seconds", "layer", "assumed", "caution"]


class BatchError(ValueError):
    """A problem that stops the batch before it starts (no inputs, output folder, settings)."""


@dataclass
class BatchResult:
    """What :func:`segment_folder` produced; the files are in ``outdir``."""

    outdir: Path
    summary: object  # pandas.DataFrame, one row per input (SUMMARY_COLUMNS)
    objects: object  # pandas.DataFrame, one row per object, with ``shape_class``
    classes: dict = field(default_factory=dict)  # classify()'s info, or {"error": why not}
    notes: list = field(default_factory=list)  # things the user should know (pixel sizes, ...)
    report: Path | None = None

    @property
    def failed(self):
        return self.summary[self.summary["status"] != "ok"]

    @property
    def n_ok(self) -> int:
        return int((self.summary["status"] == "ok").sum())


def check_output_folder(outdir) -> Path:
    """Create ``outdir`` (and ``outdir/parts``) and prove it is writable, before any work starts. Returns it
    as an absolute path (the workers of a cluster do not share this process' working folder)."""
    out = Path(outdir).absolute()
    probe = out / PARTS / ".cryomat-write-test"
    try:
        (out / PARTS).mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise BatchError(f"cannot write to the output folder {out}: {reason}. Choose another folder with -o.") from None
    return out


def _plan(inputs: Sequence, outdir: Path, settings: SegmentSettings, rerun: bool, recursive: bool):
    """(name, path) of the files to run, the summaries of those done before, and all names in order."""
    # absolute paths: a dask.distributed worker runs in its own working folder, and the tables (the batch
    # results dock opens each object's image from them) are read from wherever the user is
    files = [f.absolute() for f in image_files(inputs, recursive=recursive)
             if outdir.resolve() not in f.resolve().parents]
    if not files:
        raise BatchError("no input images: name files or folders holding .mrc, .tif, .dm4, .emd, ... files.")
    taken: set[str] = set()
    todo, done, names = [], [], []
    for path in files:
        name = output_name(path, taken)
        names.append(name)
        earlier = None if rerun or not path.is_file() else is_done(path, outdir, name, settings)
        if earlier is not None:
            done.append({k: earlier.get(k) for k in SUMMARY_COLUMNS} | {"run": "done before"})
        else:
            todo.append((name, path))
    return todo, done, names


def _local_cluster(n_tasks: int, workers: int | None, processes: bool):
    import logging

    import dask
    from distributed import Client, LocalCluster

    n = workers or max(1, min(os.cpu_count() or 1, n_tasks))
    # dask starts workers with MALLOC_TRIM_THRESHOLD_=65536 (to hand freed memory back to the OS); setting it
    # turns off glibc's adaptive mmap threshold, so every large array of a segmentation is page-faulted
    # afresh: 2048² particles cost 5.1-5.4 CPU-s per image with it and 4.1-4.2 without (one process, one
    # thread, measured alternately). Our tasks free their arrays when the image is done, so keep glibc's default.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=None,
                               silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _run_tasks(todo, outdir: Path, settings: SegmentSettings, *, scheduler, client, workers, processes):
    """Run every (name, path) and yield its summary row as it finishes."""
    if not todo:
        return
    if scheduler in ("serial", "synchronous"):
        for name, path in todo:
            row = segment_file(path, outdir, name, settings)
            yield row
        return
    cluster = None
    if client is None:
        from distributed import Client

        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise BatchError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
        else:
            client, cluster = _local_cluster(len(todo), workers, processes)
        own_client = True
    else:
        own_client = False
    try:
        from distributed import as_completed

        futures = {client.submit(segment_file, str(path), str(outdir), name, settings, pure=False): (name, path)
                   for name, path in todo}
        for future in as_completed(futures):
            name, path = futures[future]
            try:
                row = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died takes only its file down
                row = {"name": name, "file": str(path), "status": "failed",
                       "error": f"{path.name}: the worker running it failed ({type(exc).__name__}: {exc})"}
            yield row
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


def _pixel_size_notes(summary) -> list[str]:
    notes = []
    ok = summary[summary["status"] == "ok"]
    sizes = ok["pixel_size_A"].dropna().round(6)
    if sizes.nunique() > 1:
        counts = ", ".join(f"{n} at {px:g} Å" for px, n in sizes.value_counts().sort_index().items())
        notes.append(f"pixel sizes differ between files ({counts}); each file is measured in its own Å, so sizes "
                     "compare, but a size-dependent segmentation setting acts differently in pixels.")
    by_option = ok[ok["pixel_size_source"] == "--pixel-size"]
    if len(by_option):
        notes.append(f"{len(by_option)} file(s) had no calibration and were measured with --pixel-size "
                     f"{by_option['pixel_size_A'].iloc[0]:g} Å: {', '.join(by_option['name'].head(5))}"
                     + (" ..." if len(by_option) > 5 else ""))
    need = summary[summary["error"].astype(str).str.contains("no pixel size", na=False)]
    if len(need):
        notes.append(f"{len(need)} file(s) have no pixel size and were skipped: rerun with --pixel-size Å.")
    return notes


def _caution_notes(summary, objects) -> tuple[list[str], np.ndarray | None]:
    """Notes on the files whose particles' size was read at the pixel noise's scale, and the objects to leave out of
    the shape classes (theirs, unless every file is in doubt: then all are classified rather than none)."""
    cautious = summary[(summary["status"] == "ok") & (summary["caution"] != "")]
    if not len(cautious):
        return [], None
    notes = [f"{len(cautious)} file(s) had their particles' size read at the pixel noise's scale (under 5 px; noise "
             f"specks, or particles the estimate missed): {', '.join(cautious['name'].head(5))}"
             + (" ..." if len(cautious) > 5 else "") + ". Check them, or give the size: --param diameter=Å."]
    leave_out = objects["name"].isin(set(cautious["name"])).to_numpy() if "name" in objects else None
    if leave_out is None or leave_out.all() or not leave_out.any():
        return notes, None
    notes.append(f"the {int(leave_out.sum())} objects of the file(s) read at the pixel noise's scale are left out of "
                 "the shape classes (class 0).")
    return notes, leave_out


def _gather_objects(outdir: Path, summary):
    import pandas as pd

    parts = [outdir / PARTS / f"{name}.parquet" for name in summary.loc[summary["status"] == "ok", "name"]]
    tables = [t for t in (pd.read_parquet(p) for p in parts if p.is_file()) if len(t)]
    if not tables:
        return pd.DataFrame({"file": [], "name": [], "frame": [], "label": []})
    return pd.concat(tables, ignore_index=True)


def segment_folder(inputs, outdir, *, method: str = "particles", model=None, pixel_size: float | None = None,
                   options: dict | None = None, background_class: int | None = None,
                   scheduler: str | None = None, client=None, workers: int | None = None, processes: bool = True,
                   rerun: bool = False, recursive: bool = False, report: bool = True,
                   progress: Callable | None = None, on_file: Callable | None = None) -> BatchResult:
    """Segment, measure and classify every image of ``inputs``; write the results to ``outdir``.

    Parameters
    ----------
    inputs : sequence of paths
        Files (MRC, TIFF, DM3/DM4, EMD, ...) or folders (their readable files; ``recursive``: also
        those in sub-folders). Files inside ``outdir`` (earlier labels) are never inputs.
    outdir : path
        Output folder, created if missing; checked for writing before anything runs.
    method : {"particles", "classifier"}
        :func:`~napari_cryomat.core.segment.segment_particles`, or a saved pixel classifier
        (``model``) whose non-background regions become objects.
    pixel_size : float, optional
        Å per pixel for files without a spatial calibration (a calibrated file keeps its own).
    options : dict, optional
        Keywords of ``segment_particles`` (default: its defaults).
    scheduler : str, optional
        ``"serial"`` (this process), or the address of a dask.distributed scheduler; default a
        ``LocalCluster`` of ``workers`` processes (``processes=False``: threads).
    client : distributed.Client, optional
        An existing client to run on (then ``scheduler`` and ``workers`` are not used).
    rerun : bool
        Run files again even when a done marker with the same settings says they are done.
    progress : callable, optional
        Called with (files finished, files in total, last summary row or None).
    on_file : callable, optional
        Called with each finished file's summary row.

    Returns
    -------
    BatchResult

    Raises
    ------
    BatchError
        Before any work: no inputs, an output folder that cannot be written, bad settings (a model
        that does not load, an unknown option, a bad pixel size), an unreachable scheduler.
    """
    import pandas as pd

    from napari_cryomat.batch.report import classify_objects, write_report

    settings = SegmentSettings(method=method, model=None if model is None else str(Path(model).absolute()),
                               pixel_size=pixel_size, options=dict(options or {}), background_class=background_class)
    try:
        settings.check()
    except BatchSettingsError as exc:
        raise BatchError(str(exc)) from None
    out = check_output_folder(outdir)
    todo, rows, planned = _plan(inputs, out, settings, rerun, recursive)
    total = len(todo) + len(rows)
    if progress is not None:
        progress(len(rows), total, None)
    started = time.perf_counter()
    for row in _run_tasks(todo, out, settings, scheduler=scheduler, client=client, workers=workers,
                          processes=processes):
        row["run"] = "this run"
        rows.append(row)
        if on_file is not None:
            on_file(row)
        if progress is not None:
            progress(len(rows), total, row)
    summary = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS + (["trace"] if any("trace" in r for r in rows)
                                                                     else []))
    summary["status"] = summary["status"].fillna("failed")
    summary["error"] = summary["error"].fillna("")
    summary[["assumed", "caution"]] = summary[["assumed", "caution"]].fillna("")  # failed files, earlier runs
    for column in ("frames", "height", "width", "n_objects"):
        summary[column] = summary[column].astype("Int64")
    order = {name: i for i, name in enumerate(planned)}
    summary = summary.sort_values("name", key=lambda names: names.map(order), kind="stable", ignore_index=True)
    objects = _gather_objects(out, summary)
    caution_notes, leave_out = _caution_notes(summary, objects)
    objects, classes = classify_objects(objects, leave_out=leave_out)
    notes = _pixel_size_notes(summary) + caution_notes
    if "error" in classes:
        notes.append(f"shape classes: {classes['error']}")
    summary.to_csv(out / "summary.csv", index=False)
    objects.to_parquet(out / "objects.parquet", index=False)
    objects.to_csv(out / "objects.csv", index=False)
    run = {"settings": dict(settings.key(), pixel_size=settings.pixel_size), "classes": classes, "notes": notes,
           "n_files": total, "n_ok": int((summary["status"] == "ok").sum()),
           "wall_seconds": round(time.perf_counter() - started, 2), "version": _version()}
    (out / "batch.json").write_text(json.dumps(run, indent=1, default=_plain))
    result = BatchResult(outdir=out, summary=summary, objects=objects, classes=classes, notes=notes)
    if report:
        result.report = write_report(result, run)
    return result


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _version() -> str:
    from napari_cryomat import __version__

    return __version__
