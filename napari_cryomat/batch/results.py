"""Reading a batch output folder back: the tables, and thumbnails of single objects.

Shared by ``report.html`` (example thumbnails per class) and the Batch results dock (the gallery).
No Qt, no napari.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_cryomat.batch._images import open_image
from napari_cryomat.batch.segment import labels_path
from napari_cryomat.io._pyramid import area_means

__all__ = ["BatchResults", "load_results", "ThumbnailMaker", "png_bytes", "OUTLINE_RGB"]

OUTLINE_RGB = (255, 200, 0)


@dataclass
class BatchResults:
    """An output folder of ``cryomat batch segment``: objects, per-file summary, run info."""

    outdir: Path
    objects: object  # pandas.DataFrame
    summary: object  # pandas.DataFrame
    run: dict = field(default_factory=dict)

    @property
    def class_column(self) -> str | None:
        return "shape_class" if "shape_class" in self.objects else None

    def class_counts(self) -> dict[int, int]:
        if self.class_column is None:
            return {}
        counts = self.objects[self.class_column].value_counts().sort_index()
        return {int(k): int(v) for k, v in counts.items()}

    def labels_file(self, name: str) -> Path:
        return labels_path(self.outdir, name)


def load_results(outdir) -> BatchResults:
    """Open an output folder; raises ValueError naming what is missing."""
    import pandas as pd

    out = Path(outdir)
    if not out.is_dir():
        raise ValueError(f"{out} is not a folder.")
    if (out / "objects.parquet").is_file():
        objects = pd.read_parquet(out / "objects.parquet")
    elif (out / "objects.csv").is_file():
        objects = pd.read_csv(out / "objects.csv")
    else:
        raise ValueError(f"{out} holds no objects.parquet or objects.csv: choose the folder that "
                         "cryomat batch segment -o wrote.")
    summary = pd.read_csv(out / "summary.csv") if (out / "summary.csv").is_file() else pd.DataFrame()
    try:
        run = json.loads((out / "batch.json").read_text())
    except (OSError, ValueError):
        run = {}
    return BatchResults(outdir=out, objects=objects, summary=summary, run=run)


def png_bytes(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB (H, W, 3) or grey (H, W) array as PNG bytes (no imaging library needed)."""
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = img.shape[:2]
    colour = 2 if img.ndim == 3 else 0
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


class ThumbnailMaker:
    """Square RGB thumbnails of objects: the image around the object, its outline drawn on top.

    Opened images and decoded label frames are kept in small LRU caches, so a gallery of many
    objects from few files reads each file once.
    """

    def __init__(self, outdir, *, size: int = 72, cache: int = 6):
        self.outdir = Path(outdir)
        self.size = int(size)
        self._images: OrderedDict = OrderedDict()
        self._labels: OrderedDict = OrderedDict()
        self._cache = int(cache)

    def _cached(self, store: OrderedDict, key, load):
        if key in store:
            store.move_to_end(key)
            return store[key]
        value = load()
        store[key] = value
        while len(store) > self._cache:
            store.popitem(last=False)
        return value

    def _label_frame(self, name: str, frame: int) -> np.ndarray:
        import tifffile

        def load():
            with tifffile.TiffFile(labels_path(self.outdir, name)) as tif:
                return tif.pages[frame].asarray() if len(tif.pages) > 1 else tif.pages[0].asarray()

        return self._cached(self._labels, (name, frame), load)

    def window(self, row) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) in pixels: a square around the object with some context."""
        px = float(row["pixel_size_A"])
        cy, cx = float(row["centroid_y"]) / px, float(row["centroid_x"]) / px
        extent = float(row.get("feret_diameter_max", row.get("equivalent_diameter", 16 * px))) / px
        half = int(max(8, np.ceil(0.75 * extent)))
        return int(round(cy)) - half, int(round(cy)) + half + 1, int(round(cx)) - half, int(round(cx)) + half + 1

    def thumbnail(self, row) -> np.ndarray:
        """(size, size, 3) uint8 thumbnail of the object in ``row`` (a row of ``objects``)."""
        from scipy import ndimage as ndi

        src = self._cached(self._images, str(row["file"]), lambda: open_image(row["file"]))
        frame = int(row["frame"])
        lab_frame = self._label_frame(str(row["name"]), frame)
        ny, nx = lab_frame.shape
        y0, y1, x0, x1 = self.window(row)
        cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, ny), max(x0, 0), min(x1, nx)
        side = y1 - y0
        img = np.zeros((side, side), np.float32)
        mask = np.zeros((side, side), bool)
        img[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = np.asarray(src.frames[frame, cy0:cy1, cx0:cx1], np.float32)
        mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = lab_frame[cy0:cy1, cx0:cx1] == int(row["label"])
        inside = np.zeros((side, side), bool)
        inside[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = True
        shrink = side // self.size
        if shrink > 1:  # area means of shrink x shrink bins, then interpolate: sampling would alias the noise
            img, mask = area_means(img, shrink), area_means(mask, shrink) >= 0.5
            inside = area_means(inside, shrink) >= 1.0  # bins wholly inside the image
            side = img.shape[0]
        lo, hi = np.percentile(img[inside], [1, 99]) if inside.any() else (0.0, 1.0)
        grey = np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1)
        grey[~inside] = 0
        zoom = self.size / side
        grey = ndi.zoom(grey, zoom, order=1)[: self.size, : self.size]
        mask = ndi.zoom(mask.astype(np.uint8), zoom, order=0)[: self.size, : self.size].astype(bool)
        rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
        outline = mask & ~ndi.binary_erosion(mask, iterations=max(1, self.size // 48))
        rgb[outline] = OUTLINE_RGB
        out = np.zeros((self.size, self.size, 3), np.uint8)
        out[: rgb.shape[0], : rgb.shape[1]] = rgb
        return out
