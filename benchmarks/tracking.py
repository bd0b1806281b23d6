"""Tracking: link accuracy and time of the linkers on two generated settings, with baselines, one table.

    python benchmarks/tracking.py            # 300 x 200 and 800 x 200 (a few minutes on 2 cores)
    python benchmarks/tracking.py --quick    # 50 frames

Settings (positions are given exactly: this measures linking, not segmentation):

- **A, diffusion** (issue #14's "300 x 200"): 300 particles diffusing in a 768² px field, Gaussian
  steps of 1 px per axis, search radius 6 px, gap closing 1 frame (``random_walks``, seed 0, as in
  the previous ``benchmarks/segment.py``, timed; then seeds 0-5 for the accuracy: one draw varies by
  about +-0.08 %, so the 99.8 % target is read on their mean, next to the exact maximum-likelihood
  floor of the same draws. Until session 5 the target was read on seed 0 alone: 99.781 %, which is
  that draw's floor).
- **B, directed + drift, denser**: 800 particles (2.7x the density), half of them moving at 2-4
  px/frame in a slowly turning direction, all diffusing 1 px/axis, reflected at the walls, plus a
  stage drift of 3 px/frame whose direction wanders; radius 12 px (``directed_walks``).

Rows are shuffled within each frame and labels permuted, so a linker has positions only.

**Link accuracy** = correct links / links made, a link being two consecutive detections of one track
(gap-closed links included), correct when both rows are the same true particle (known from the
generator). **recall** = correct links between consecutive frames / true links. The previous
benchmark read the identity off the label image (``link_accuracy``): there a particle painted
over by a neighbour in its frame (17 rows of 60 000 in A, seed 0) identifies as nothing and both of
its links count as wrong however they were linked; that number is printed as well (column "label
metric"). The *floor* row: the assignment that minimises the total squared step per frame pair is the
maximum-likelihood linking for Gaussian diffusion (steps independent between frames, so no multi-frame
linker can beat it on positions alone); ``motion="none"`` solves it exactly by LAPJVsp.

Baselines: greedy nearest neighbour (closest pairs first), and the linkers with ``motion="none"``
(= the code before this session). CPU = ``time.process_time`` of this process (the machine is shared).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from napari_cryomat.core.tracking import link_accuracy, link_table, track_objects

QUICK = "--quick" in sys.argv
ROWS: list[tuple] = []


def row(*cells):
    ROWS.append(tuple(str(c) for c in cells))


def random_walks(n=300, n_frames=200, side=768, step=1.0, radius=3, seed=0, paint=True):
    """``n`` diffusing particles (disks of ``radius`` px, Gaussian steps of ``step`` px per axis) as a
    table with per-frame shuffled labels (the tracker must use positions), its true particle per row
    (``true_id``) and, with ``paint``, the label arrays (labels, truth)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    pos = rng.uniform(radius + 2, side - radius - 2, size=(n, 2))
    shape = (n_frames, side, side) if paint else (0, 0, 0)
    truth = np.zeros(shape, np.int16)
    labels = np.zeros_like(truth)
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = yy**2 + xx**2 <= radius**2
    frames, labs, ys, xs = [], [], [], []
    for t in range(n_frames):
        if t:
            pos = np.clip(pos + rng.normal(0, step, pos.shape), radius + 1, side - radius - 2)
        perm = rng.permutation(n) + 1
        for i, (y, x) in enumerate(pos if paint else ()):
            iy, ix = int(round(y)), int(round(x))
            sl = (t, slice(iy - radius, iy + radius + 1), slice(ix - radius, ix + radius + 1))
            truth[sl][disk] = i + 1
            labels[sl][disk] = perm[i]
        frames += [t] * n
        labs += perm.tolist()
        ys += pos[:, 0].tolist()
        xs += pos[:, 1].tolist()
    table = pd.DataFrame(dict(frame=frames, label=labs, centroid_y=ys, centroid_x=xs,
                              true_id=np.tile(np.arange(1, n + 1), n_frames)))
    return _shuffled(table), labels, truth


def directed_walks(n=800, n_frames=200, side=768, step=1.0, speed=(2.0, 4.0), drift=3.0, seed=0):
    """Setting B: half the particles move at ``speed`` px/frame in a direction that turns by 0.1 rad
    per frame (rms), all diffuse ``step`` px per axis, all are reflected at the walls of the field,
    and the field drifts by ``drift`` px/frame in a wandering direction. A table with ``true_id``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, side, size=(n, 2))
    angle = rng.uniform(0, 2 * np.pi, n)
    speeds = rng.uniform(*speed, n) * (rng.random(n) < 0.5)
    drift_angle = rng.uniform(0, 2 * np.pi)
    offset = np.zeros(2)
    parts = []
    for t in range(n_frames):
        if t:
            angle += rng.normal(0, 0.1, n)
            drift_angle += rng.normal(0, 0.05)
            pos = pos + speeds[:, None] * np.c_[np.sin(angle), np.cos(angle)] + rng.normal(0, step, (n, 2))
            low, high = pos < 0, pos > side
            pos = np.where(low, -pos, np.where(high, 2 * side - pos, pos))
            angle = np.where((low | high)[:, 0], -angle, angle)  # velocity (sin a, cos a): y reverses
            angle = np.where((low | high)[:, 1], np.pi - angle, angle)  # x reverses
            offset += drift * np.r_[np.sin(drift_angle), np.cos(drift_angle)]
        parts.append(pd.DataFrame(dict(frame=t, label=rng.permutation(n) + 1, centroid_y=pos[:, 0] + offset[0],
                                       centroid_x=pos[:, 1] + offset[1], true_id=np.arange(1, n + 1))))
    return _shuffled(pd.concat(parts, ignore_index=True))


def _shuffled(table):
    return table.sample(frac=1.0, random_state=1).reset_index(drop=True)


def greedy_links(labels, pixel_size, max_distance):
    """Baseline: link each object to the nearest unclaimed centroid in the next frame."""
    from napari_cryomat.core.measure import measure_series

    return greedy_table_links(measure_series(labels, pixel_size=pixel_size), max_distance)


def greedy_table_links(table, max_distance):
    """Baseline: greedy nearest neighbour between consecutive frames (closest pairs first)."""
    from scipy.spatial import cKDTree

    frames = table["frame"].to_numpy()
    xyz = table[["centroid_y", "centroid_x"]].to_numpy(float)
    track = np.zeros(len(table), np.int64)
    prev = None
    next_id = 1
    for f in np.unique(frames):
        cur = np.flatnonzero(frames == f)
        if prev is not None and len(prev):
            pairs = cKDTree(xyz[prev]).sparse_distance_matrix(cKDTree(xyz[cur]), max_distance, output_type="ndarray")
            pairs.sort(order="v")
            taken_p, taken_c = set(), set()
            for i, j, _ in pairs:
                if i not in taken_p and j not in taken_c:
                    taken_p.add(i)
                    taken_c.add(j)
                    track[cur[j]] = track[prev[i]]
        new = cur[track[cur] == 0]
        track[new] = np.arange(next_id, next_id + len(new))
        next_id += len(new)
        prev = cur
    return table.assign(track_id=track)


def exact_assignment(table, radius):
    """Every frame pair solved exactly (LAPJVsp, no subnet heuristics), no motion model: for diffusion
    the maximum-likelihood linking, so the floor for any linker that sees positions only."""
    from napari_cryomat.core._tracking_motion import link_predicted, still_model

    frames = table["frame"].to_numpy()
    model = still_model(int(frames.max()) + 1, 2)
    ids = link_predicted(frames, table[["centroid_y", "centroid_x"]].to_numpy(float), radius, 1, model)
    return table.assign(track_id=ids + 1)


def accuracy(tracks):
    """(link accuracy, recall) from the generator's ``true_id`` (see the module notes)."""
    t = tracks.sort_values(["track_id", "frame"])
    tid, fr, true = t["track_id"].to_numpy(), t["frame"].to_numpy(), t["true_id"].to_numpy()
    link = tid[1:] == tid[:-1]
    ok = link & (true[1:] == true[:-1])
    n_true = len(t) - t["true_id"].nunique()  # every particle is present in every frame
    return ok.sum() / max(link.sum(), 1), (ok & (fr[1:] == fr[:-1] + 1)).sum() / n_true


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def bench_setting(name, table, radius, labels=None, truth=None):
    runs = [
        ("greedy nearest neighbour (baseline)", lambda: greedy_table_links(table, radius)),
        ("trackpy, motion=none (before*)", lambda: link_table(table, max_distance=radius, motion="none")),
        ("exact min-squared-step assignment", lambda: exact_assignment(table, radius)),
        ("trackpy, motion=auto (default)", lambda: link_table(table, max_distance=radius)),
        ("laptrack, motion=auto", lambda: link_table(table, max_distance=radius, method="laptrack")),
        ("laptrack + merges/splits, auto", lambda: link_table(table, max_distance=radius, method="laptrack",
                                                              merges_splits=True)),
    ]
    for label, fn in runs:
        tracks, wall, cpu = timed(fn)
        acc, rec = accuracy(tracks)
        model = tracks.attrs.get("motion", {}).get("model", "")
        metric = ""
        if labels is not None:
            metric = f"{100 * link_accuracy(tracks, labels, truth)['precision']:.2f} %"
        row(name, label, f"{wall:.2f}", f"{cpu:.2f}", f"{100 * acc:.3f} %", f"{100 * rec:.3f} %", metric, model)


def main():
    t_start = time.perf_counter()
    n_frames = 50 if QUICK else 200
    table, labels, truth = random_walks(n_frames=n_frames)
    link_table(table[table.frame < 3], max_distance=6.0)  # warm up (imports)
    link_table(table[table.frame < 3], max_distance=6.0, method="laptrack")
    bench_setting(f"A diffusion 300 x {n_frames}, r 6", table, 6.0, labels, truth)
    del labels, truth
    # One draw of 300 x 200 has a spread of about +-0.08 % in accuracy (the number of close encounters
    # varies), so the accuracy target is read on the mean of six draws, seed 0 included, next to the
    # maximum-likelihood floor on the same draws: on positions alone no linker can beat that floor.
    accs, floors = [], []
    for seed in range(0, 6):
        tab = random_walks(n_frames=n_frames, seed=seed, paint=False)[0]
        accs.append(accuracy(link_table(tab, max_distance=6.0))[0])
        floors.append(accuracy(exact_assignment(tab, 6.0))[0])
    for label, vals in (("trackpy, motion=auto (default)", accs), ("exact min-squared-step assignment", floors)):
        row("A, seeds 0-5 (mean, range)", label, "", "", f"{100 * np.mean(vals):.3f} % (mean), "
            f"{100 * min(vals):.3f}-{100 * max(vals):.3f}", "", "", "")
    bench_setting(f"B directed+drift 800 x {n_frames}, r 12", directed_walks(n_frames=n_frames), 12.0)
    growth_rows()
    head = ("setting", "linker", "wall s", "CPU s", "link accuracy", "recall", "label metric", "motion used")
    widths = [max(len(x) for x in col) for col in zip(head, *ROWS)]
    print(f"napari-cryomat tracking benchmark — {os.cpu_count()} CPUs visible, load {os.getloadavg()[0]:.1f}, "
          f"python {sys.version.split()[0]}")
    print("link accuracy = correct links / links made (true identity from the generator); target for A: "
          "<= 2 s (seed 0), >= 99.8 % (mean of seeds 0-5)")
    print("* the code before this session linked as trackpy motion=none on A; on B it raised 'too many objects'"
          " (trackpy's subnet limit; now the same assignment is solved by LAPJVsp). laptrack before: 36.9 s on A "
          "(its predict_dataframe), same links.")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in ROWS:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    print(f"(total {time.perf_counter() - t_start:.0f} s)")


def growth_rows():
    """The segmented growth series (as in benchmarks/segment.py): precision / recall / perfect tracks."""
    from napari_cryomat.core.segment import segment_particles
    from napari_cryomat.core.synthetic.particles import make_growth

    movie, truth, info = make_growth()
    ps = info["pixel_size"]
    labels = np.stack([segment_particles(f, pixel_size=ps) for f in movie])
    base = link_accuracy(greedy_links(labels, ps, 60.0), labels, truth)
    row("growth series (segmented)", "greedy nearest neighbour (baseline)", "", "",
        f"{100 * base['precision']:.2f} %", f"{100 * base['recall']:.2f} %", "", "")
    for method in ("trackpy", "laptrack"):
        acc = link_accuracy(track_objects(labels, pixel_size=ps, max_distance=60.0, method=method), labels, truth)
        row("growth series (segmented)", f"{method}, motion=auto", "", "", f"{100 * acc['precision']:.2f} %",
            f"{100 * acc['recall']:.2f} %", "", "")


if __name__ == "__main__":
    main()
