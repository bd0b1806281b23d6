"""Shape classes across a whole batch, and ``report.html``.

:func:`classify_objects` runs :func:`napari_cryomat.core.measure.classify` (unsupervised, on the
scale-free shape descriptors) over the objects of every file at once, so that class 2 means the
same shape in every image. :func:`write_report` writes one self-contained HTML page: per-class
counts and statistics, histograms (inline SVG), example thumbnails per class (inline PNG), the
per-file summary and the failures. No CDN, no script: it opens from a laptop, a cluster's
scratch folder, or an e-mail.
"""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

import numpy as np

__all__ = ["classify_objects", "write_report", "svg_histogram", "class_colour", "MAX_CLASSIFY"]

#: above this many objects the classes are fitted on a seeded random sample of this size and the
#: other objects join the nearest class centre (the silhouette score that picks k is O(n²))
MAX_CLASSIFY = 5000


#: the plugin's class palette, as ``widgets._base.layers.CLASS_PALETTE`` (a test keeps them equal):
#: importing it from there would load Qt and napari (5 s) on a headless batch node
CLASS_PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                 "#bfef45", "#fabed4", "#469990")


def class_colour(class_id: int) -> str:
    """The colour of shape class ``class_id`` (1-based), the one the Objects dock uses."""
    return CLASS_PALETTE[(int(class_id) - 1) % len(CLASS_PALETTE)]


def _standardised(table, columns):
    x = np.asarray(table[columns], dtype=np.float64)
    finite = np.isfinite(x)
    med = np.nanmedian(np.where(finite, x, np.nan), axis=0)
    x = np.where(finite, x, np.where(np.isfinite(med), med, 0.0))
    return x


def classify_objects(objects, *, max_objects: int = MAX_CLASSIFY, random_state: int = 0, leave_out=None):
    """Add ``shape_class`` (1..k, 1 the most common; 0 unclassified) to ``objects``.

    ``leave_out``: a boolean mask of rows that stay unclassified (0) and take no part in the classes (the objects of
    files whose particles were read at the pixel noise's scale: 331,000 specks of one micrograph made every class).
    Returns ``(objects, info)``: info is classify()'s (``n_classes``, ``scores``, ``properties``)
    plus ``n_fitted``, or ``{"error": reason}`` when there is nothing to classify.
    """
    if leave_out is not None and np.any(leave_out):
        keep = ~np.asarray(leave_out, bool)
        kept, info = classify_objects(objects[keep].reset_index(drop=True), max_objects=max_objects,
                                      random_state=random_state)
        objects = objects.copy()
        objects["shape_class"] = 0
        objects.loc[keep, "shape_class"] = kept["shape_class"].to_numpy()
        return objects, info
    from napari_cryomat.core.measure import SHAPE_FEATURES, classify

    objects = objects.copy()
    objects["shape_class"] = 0
    columns = [c for c in SHAPE_FEATURES if c in objects]
    if len(objects) < 3 or not columns:
        return objects, {"error": f"{len(objects)} object(s) measured: at least 3 are needed for shape classes."}
    rng = np.random.default_rng(random_state)
    fit_rows = np.arange(len(objects))
    if len(objects) > max_objects:
        fit_rows = np.sort(rng.choice(len(objects), size=max_objects, replace=False))
    sample = objects.iloc[fit_rows]
    try:
        labels, info = classify(sample, random_state=random_state)
    except ValueError as exc:
        return objects, {"error": str(exc)}
    classes = np.zeros(len(objects), dtype=int)
    classes[fit_rows] = labels
    if fit_rows.size < len(objects):  # the rest: nearest class centre in the standardised features
        x = _standardised(objects, info["properties"])
        mu, sd = x[fit_rows].mean(0), x[fit_rows].std(0)
        z = (x - mu) / np.where(sd > 0, sd, 1.0)
        ids = np.unique(labels)
        centres = np.stack([z[fit_rows][labels == k].mean(0) for k in ids])
        rest = np.setdiff1d(np.arange(len(objects)), fit_rows)
        d = ((z[rest, None, :] - centres[None]) ** 2).sum(-1)
        classes[rest] = ids[np.argmin(d, axis=1)]
    objects["shape_class"] = classes
    info = dict(info, n_fitted=int(fit_rows.size), scores={int(k): v for k, v in info["scores"].items()})
    return objects, info


def svg_histogram(values_by_class: dict, *, title: str, unit: str = "", bins: int = 30,
                  width: int = 420, height: int = 180) -> str:
    """A stacked histogram of ``{class_id: values}`` as an inline SVG string."""
    allv = np.concatenate([np.asarray(v, float) for v in values_by_class.values()]) if values_by_class else []
    allv = np.asarray(allv)[np.isfinite(allv)]
    if allv.size == 0:
        return f"<p>{html.escape(title)}: no values.</p>"
    lo, hi = np.percentile(allv, [0.5, 99.5])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    counts = {k: np.histogram(np.clip(np.asarray(v, float), lo, hi), edges)[0] for k, v in values_by_class.items()}
    top = max(1, int(np.sum(list(counts.values()), axis=0).max()))
    left, plot_w, plot_h = 40, width - 75, height - 48  # room for the last tick label
    bar_w = plot_w / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<title>{html.escape(title)}</title>',
             f'<text x="{left}" y="14" font-size="12">{html.escape(title)}</text>']
    base = np.zeros(bins)
    for k in sorted(counts):
        colour = class_colour(k) if k > 0 else "#999999"
        for i, c in enumerate(counts[k]):
            if c:
                h = plot_h * c / top
                y = 20 + plot_h - plot_h * base[i] / top - h
                parts.append(f'<rect x="{left + i * bar_w:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" '
                             f'height="{h:.1f}" fill="{colour}"/>')
        base += counts[k]
    axis_y = 20 + plot_h
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#333"/>')
    for frac in (0.0, 0.5, 1.0):
        value = lo + frac * (hi - lo)
        parts.append(f'<text x="{left + frac * plot_w:.0f}" y="{axis_y + 14}" font-size="10" '
                     f'text-anchor="middle">{value:.3g}</text>')
    parts.append(f'<text x="{left + plot_w}" y="{height - 2}" font-size="10" text-anchor="end">'
                 f'{html.escape(unit)}</text>')
    parts.append(f'<text x="{left - 4}" y="26" font-size="10" text-anchor="end">{top}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _examples(objects, class_id: int, n: int):
    """Up to ``n`` objects of a class spread over its size range (smallest to largest)."""
    rows = objects[objects["shape_class"] == class_id]
    if "equivalent_diameter" in rows:
        rows = rows.sort_values("equivalent_diameter", kind="stable")
    if len(rows) <= n:
        return rows
    return rows.iloc[np.linspace(0, len(rows) - 1, n).round().astype(int)]


def _thumbnails_html(result, class_id: int, n: int) -> str:
    from napari_cryomat.batch.results import ThumbnailMaker, png_bytes

    maker = ThumbnailMaker(result.outdir, size=80)
    cells = []
    for _, row in _examples(result.objects, class_id, n).iterrows():
        try:
            data = base64.b64encode(png_bytes(maker.thumbnail(row))).decode()
        except (OSError, ValueError, IndexError, KeyError):  # the image moved or changed since the run
            continue
        tip = html.escape(f"{row['name']} frame {int(row['frame'])} label {int(row['label'])}: "
                          f"{row.get('equivalent_diameter', float('nan')):.0f} Å")
        cells.append(f'<img src="data:image/png;base64,{data}" width="80" height="80" title="{tip}" alt="{tip}">')
    return "".join(cells) or "<em>no thumbnails (images not readable from here)</em>"


def _table(df, columns, *, limit: int | None = None) -> str:
    cols = [c for c in columns if c in df]
    shown = df if limit is None else df.head(limit)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for _, row in shown.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            text = f"{v:.4g}" if isinstance(v, (float, np.floating)) and np.isfinite(v) else (
                "" if isinstance(v, (float, np.floating)) else str(v))
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p>{len(df) - len(shown)} more rows in the CSV.</p>" if len(shown) < len(df) else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _class_section(result) -> str:
    objects = result.objects
    if "error" in result.classes or not len(objects):
        return f"<p>No shape classes: {html.escape(str(result.classes.get('error', 'no objects')))}</p>"
    ids = sorted(k for k in objects["shape_class"].unique() if k > 0)
    rows = []
    for k in ids:
        sel = objects[objects["shape_class"] == k]
        stat = " ".join(f"<td>{sel[c].mean():.4g} ± {sel[c].std(ddof=0):.2g}</td>" if c in sel else "<td></td>"
                        for c in ("equivalent_diameter", "area", "circularity", "aspect_ratio", "solidity"))
        rows.append(f'<tr><td><span class="sw" style="background:{class_colour(k)}"></span> {k}</td>'
                    f"<td>{len(sel)}</td><td>{100 * len(sel) / len(objects):.1f} %</td>{stat}</tr>")
    table = ("<table><tr><th>class</th><th>objects</th><th>share</th><th>equivalent diameter (Å)</th>"
             "<th>area (Å²)</th><th>circularity</th><th>aspect ratio</th><th>solidity</th></tr>"
             + "".join(rows) + "</table>")
    hists = "".join(
        svg_histogram({k: objects.loc[objects["shape_class"] == k, col].to_numpy() for k in ids},
                      title=title, unit=unit)
        for col, title, unit in (("equivalent_diameter", "equivalent diameter", "Å"), ("area", "area", "Å²"),
                                 ("circularity", "circularity", ""), ("aspect_ratio", "aspect ratio", ""))
        if col in objects)
    props = ", ".join(result.classes.get("properties", []))
    gallery = "".join(f'<h3><span class="sw" style="background:{class_colour(k)}"></span> class {k}</h3>'
                      f'<div class="thumbs">{_thumbnails_html(result, k, 10)}</div>' for k in ids)
    return (f"<p>{len(ids)} classes from k-means on {html.escape(props)} (scale-free shape descriptors; "
            f"k chosen by silhouette score), fitted on {result.classes.get('n_fitted', len(objects))} objects.</p>"
            f"{table}<div class='hists'>{hists}</div><h2>Examples per class</h2>{gallery}")


_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#eee}.note{background:#fff6d5;border-left:4px solid #e0b000;padding:.4em .8em;margin:.3em 0}
.fail{background:#fde8e8;border-left:4px solid #c33;padding:.4em .8em}.sw{display:inline-block;width:12px;
height:12px;border:1px solid #555}.thumbs img{margin:2px;border:1px solid #888}.hists svg{margin:4px}"""


def write_report(result, run: dict) -> Path:
    """Write ``report.html`` in the result's folder; returns its path."""
    s = result.summary
    ok, failed = s[s["status"] == "ok"], s[s["status"] != "ok"]
    settings = run.get("settings", {})
    notes = "".join(f'<div class="note">{html.escape(n)}</div>' for n in result.notes)
    fails = "".join(f'<div class="fail">{html.escape(str(e))}</div>' for e in failed["error"])
    done_before = int((s["run"] == "done before").sum()) if "run" in s else 0
    body = f"""<h1>Batch segmentation report</h1>
<p>{time.strftime('%Y-%m-%d %H:%M')} · napari-cryomat {html.escape(str(run.get('version', '')))} ·
method <b>{html.escape(str(settings.get('method')))}</b> ·
options {html.escape(str(settings.get('options') or 'defaults'))}</p>
<p><b>{len(ok)}</b> of {len(s)} files segmented ({done_before} done in an earlier run), <b>{len(failed)}</b> failed;
<b>{len(result.objects)}</b> objects.</p>{notes}
<h2>Shape classes</h2>{_class_section(result)}
<h2>Files</h2>{_table(s, ['name', 'status', 'frames', 'pixel_size_A', 'pixel_size_source', 'n_objects',
                          'area_fraction', 'mean_area_A2', 'median_diameter_A', 'seconds', 'caution'], limit=500)}
<h2>Failed files</h2>{fails or '<p>none</p>'}
<p>Tables: objects.parquet / objects.csv (one row per object, lengths in Å, areas in Å²), summary.csv.</p>"""
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>cryomat batch report</title>'
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")
    path = Path(result.outdir) / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
