"""Accuracy and speed of segmentation, measurement and tracking, next to baselines from the same run.

    python benchmarks/segment.py

Prints one table. Rows:

- F1 (objects matched at IoU > 0.5) and mean IoU of each assisted method against the synthetic truth
  of the "particles" sample; baseline: a plain Otsu threshold + connected components (no smoothing,
  no split).
- train + predict of the pixel classifier on a 2048² image (target <= 15 s on 2 cores); baseline:
  scikit-image's ``future.fit_segmenter`` / ``predict_segmenter`` with the same features and forest,
  on the whole image at once.
- measurement of 10,000 objects (target <= 2 s); baseline: ``skimage.measure.regionprops_table``
  with the same properties.
- tracking of the "growth" series segmented by ``segment_particles``: link precision / recall and
  fraction of perfectly followed crystals; baseline: greedy nearest-centroid linking.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core.measure import match_labels, measure
from napari_cryomat.core.segment import (
    click_segment,
    pixel_features,
    segment_particles,
    split_touching,
    train_pixel_classifier,
)
from napari_cryomat.core.synthetic.particles import make_growth, make_particles
from napari_cryomat.core.tracking import link_accuracy, track_objects

ROWS: list[tuple] = []


def row(task, method, metric, value, target="", baseline=""):
    ROWS.append((task, method, metric, value, target, baseline))


def fmt(v):
    if isinstance(v, str):
        return v
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"


def scribbles_from_truth(truth, rng, n_strokes=40, length=12):
    """Short straight strokes (3 px wide) inside particles (class 2) and on the support (class 1),
    like a user's first few strokes."""
    scr = np.zeros(truth.shape, np.uint8)
    inner = ndi.binary_erosion(truth > 0, iterations=4)
    outer = ndi.binary_erosion(truth == 0, iterations=6)
    for value, region in ((2, inner), (1, outer)):
        ys, xs = np.nonzero(region)
        for i in rng.choice(ys.size, n_strokes, replace=False):
            y, x = ys[i], xs[i]
            for d in range(length):
                yy, xx = y, min(x + d, truth.shape[1] - 1)
                if region[yy, xx]:
                    scr[max(yy - 1, 0):yy + 2, max(xx - 1, 0):xx + 2] = value
    return scr


def bench_accuracy():
    image, truth, info = make_particles()
    ps = info["pixel_size"]
    # baseline: Otsu on the raw image, connected components
    from skimage.filters import threshold_otsu

    base_lab, _ = ndi.label(image < threshold_otsu(image))
    base = match_labels(base_lab, truth)
    for th in ("otsu", "li", "local"):
        m = match_labels(segment_particles(image, pixel_size=ps, threshold=th), truth)
        row("accuracy (particles sample)", f"segment_particles {th}", "F1 / mean IoU",
            f"{m['f1']:.3f} / {m['mean_iou']:.3f}", "F1 >= 0.9" if th == "otsu" else "",
            f"{base['f1']:.3f} / {base['mean_iou']:.3f}")
    rng = np.random.default_rng(0)
    scr = scribbles_from_truth(truth, rng)
    model = train_pixel_classifier(image, scr)
    pred = model.predict(image)
    inst = split_touching(pred == 2, pixel_size=ps, split_distance=30.0, min_size=400.0)
    m = match_labels(inst, truth)
    row("accuracy (particles sample)", "pixel classifier + split_touching", "F1 / mean IoU",
        f"{m['f1']:.3f} / {m['mean_iou']:.3f}", "", f"{base['f1']:.3f} / {base['mean_iou']:.3f}")
    for method in ("flood", "watershed", "random_walker"):
        lab = np.zeros(truth.shape, np.int32)
        for k, c in enumerate(info["center_px"], start=1):
            mask = click_segment(image, [c], pixel_size=ps, method=method, max_radius=150.0)
            lab[mask & (lab == 0)] = k
        m = match_labels(lab, truth)
        row("accuracy (particles sample)", f"click_segment {method} (1 click each)", "F1 / mean IoU",
            f"{m['f1']:.3f} / {m['mean_iou']:.3f}", "", f"{base['f1']:.3f} / {base['mean_iou']:.3f}")


def bench_classifier():
    image, truth, _ = make_particles(shape=(2048, 2048), n_particles=500, seed=3)
    rng = np.random.default_rng(1)
    scr = scribbles_from_truth(truth, rng, n_strokes=150)
    t0 = time.perf_counter()
    model = train_pixel_classifier(image, scr)
    t1 = time.perf_counter()
    pred = model.predict(image)
    t2 = time.perf_counter()
    acc = np.mean((pred == 2) == (truth > 0))
    # baseline: skimage.future trainable segmentation, whole image, same features and forest
    from skimage.future import fit_segmenter, predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    b0 = time.perf_counter()
    norm = (image - model.offset) / model.scale
    feats = pixel_features(norm, **model.feature_options)
    clf = RandomForestClassifier(n_estimators=40, max_depth=14, n_jobs=-1, random_state=0,
                                 class_weight="balanced")
    clf = fit_segmenter(scr.astype(np.int64), feats, clf)
    bpred = predict_segmenter(feats, clf)
    b1 = time.perf_counter()
    bacc = np.mean((bpred == 2) == (truth > 0))
    row("pixel classifier 2048²", "train + predict (tiled)", "seconds",
        f"{t2 - t0:.1f} (train {t1 - t0:.1f}, predict {t2 - t1:.1f})", "<= 15 s",
        f"{b1 - b0:.1f} (skimage.future, whole image)")
    row("pixel classifier 2048²", "train + predict (tiled)", "pixel accuracy", f"{acc:.4f}", "",
        f"{bacc:.4f}")
    # the same model on another image: nothing cached, features computed tile by tile
    other, other_truth, _ = make_particles(shape=(2048, 2048), n_particles=500, seed=4)
    c0 = time.perf_counter()
    other_pred = model.predict(other)
    c1 = time.perf_counter()
    row("pixel classifier 2048²", "predict a new image (no cached features)", "seconds / pixel accuracy",
        f"{c1 - c0:.1f} / {np.mean((other_pred == 2) == (other_truth > 0)):.4f}", "", "")
    del feats


def bench_measure():
    # 10,000 objects of varied shapes: 100 x 100 grid of random small ellipses
    rng = np.random.default_rng(2)
    n = 100
    cell = 20
    lab = np.zeros((n * cell, n * cell), np.int32)
    yy, xx = np.mgrid[-cell // 2: cell // 2, -cell // 2: cell // 2].astype(float)
    k = 0
    for i in range(n):
        for j in range(n):
            k += 1
            a, b = rng.uniform(3, 8), rng.uniform(2, 5)
            th = rng.uniform(0, np.pi)
            u = xx * np.cos(th) + yy * np.sin(th)
            v = -xx * np.sin(th) + yy * np.cos(th)
            m = (u / a) ** 2 + (v / b) ** 2 < 1
            lab[i * cell:(i + 1) * cell, j * cell:(j + 1) * cell][m] = k
    img = rng.random(lab.shape).astype(np.float32)
    from skimage.measure import regionprops_table

    # warm up both (imports of pandas etc. are not part of the measurement)
    measure(lab[:40, :40], img[:40, :40], pixel_size=2.0)
    regionprops_table(lab[:40, :40], img[:40, :40], properties=("label", "solidity"))
    t0 = time.perf_counter()
    table = measure(lab, img, pixel_size=2.0)
    t1 = time.perf_counter()
    b0 = time.perf_counter()
    regionprops_table(lab, img, properties=(
        "label", "area", "perimeter", "equivalent_diameter_area", "axis_major_length",
        "axis_minor_length", "eccentricity", "solidity", "orientation", "feret_diameter_max",
        "intensity_mean", "centroid"), spacing=(2.0, 2.0))
    b1 = time.perf_counter()
    row("measure 10,000 objects", f"measure ({len(table)} objects, 2D)", "seconds", f"{t1 - t0:.2f}",
        "<= 2 s", f"{b1 - b0:.2f} (skimage regionprops_table)")


def greedy_links(labels, pixel_size, max_distance):
    """Baseline: link each object to the nearest unclaimed centroid in the next frame."""
    import pandas as pd

    from napari_cryomat.core.measure import measure_series

    table = measure_series(labels, pixel_size=pixel_size)
    table["track_id"] = 0
    next_id = 1
    frames = sorted(table.frame.unique())
    prev = None
    for f in frames:
        cur = table[table.frame == f]
        ids = {}
        if prev is not None:
            pc = prev[["centroid_y", "centroid_x"]].to_numpy()
            claimed = set()
            for idx, r in cur.iterrows():
                d = np.hypot(pc[:, 0] - r.centroid_y, pc[:, 1] - r.centroid_x)
                for j in np.argsort(d):
                    if d[j] <= max_distance and j not in claimed:
                        claimed.add(j)
                        ids[idx] = prev.track_id.iloc[j]
                        break
        for idx in cur.index:
            if idx not in ids:
                ids[idx] = next_id
                next_id += 1
        table.loc[list(ids), "track_id"] = list(ids.values())
        prev = table[table.frame == f]
    return pd.DataFrame(table)


def bench_tracking():
    movie, truth, info = make_growth()
    ps = info["pixel_size"]
    labels = np.stack([segment_particles(f, pixel_size=ps) for f in movie])
    seg_f1 = np.mean([match_labels(labels[t], truth[t])["f1"] for t in range(len(movie))])
    tracks = track_objects(labels, pixel_size=ps, max_distance=60.0)
    acc = link_accuracy(tracks, labels, truth)
    base = link_accuracy(greedy_links(labels, ps, 60.0), labels, truth)
    row("tracking (growth series)", f"laptrack ({tracks.track_id.nunique()} tracks, seg F1 {seg_f1:.2f})",
        "link precision / recall / perfect tracks",
        f"{acc['precision']:.3f} / {acc['recall']:.3f} / {acc['perfect_tracks']:.3f}", "",
        f"{base['precision']:.3f} / {base['recall']:.3f} / {base['perfect_tracks']:.3f} (greedy NN)")
    # a harder case: 3x larger drift, one crystal missed in one frame
    movie2, truth2, info2 = make_growth(drift=9.0, seed=5)
    labels2 = truth2.copy()
    labels2[3][labels2[3] == 2] = 0
    tracks2 = track_objects(labels2, pixel_size=ps, max_distance=60.0, gap_frames=1)
    acc2 = link_accuracy(tracks2, labels2, truth2)
    base2 = link_accuracy(greedy_links(labels2, ps, 60.0), labels2, truth2)
    row("tracking (drift 9 Å/frame, 1 miss)", "laptrack + gap closing", "link precision / recall / perfect tracks",
        f"{acc2['precision']:.3f} / {acc2['recall']:.3f} / {acc2['perfect_tracks']:.3f}", "",
        f"{base2['precision']:.3f} / {base2['recall']:.3f} / {base2['perfect_tracks']:.3f} (greedy NN)")


def main():
    t = time.perf_counter()
    bench_accuracy()
    bench_classifier()
    bench_measure()
    bench_tracking()
    head = ("task", "method", "metric", "value", "target", "baseline (same run)")
    cols = list(zip(*([head] + [tuple(fmt(x) for x in r) for r in ROWS])))
    widths = [max(len(str(x)) for x in c) for c in cols]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |"
    print(f"napari-cryomat segmentation benchmark — {os.cpu_count()} CPUs visible, "
          f"python {sys.version.split()[0]}")
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in ROWS:
        print("| " + " | ".join(fmt(x).ljust(w) for x, w in zip(r, widths)) + " |")
    print(f"(total {time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
