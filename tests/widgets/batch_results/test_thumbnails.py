"""Thumbnails of big objects are area means, not samples: a faint particle a quarter of a pixel's noise
would vanish in sampled pixels and stands out in the thumbnail."""

import mrcfile
import numpy as np
import tifffile

from napari_cryomat.batch.results import OUTLINE_RGB, ThumbnailMaker
from napari_cryomat.batch.segment import labels_path


def test_thumbnail_of_a_big_faint_particle_is_binned(tmp_path):
    rng = np.random.default_rng(21)
    n, radius, ps = 900, 150, 0.85
    yy, xx = np.mgrid[:n, :n]
    disk = (yy - 450) ** 2 + (xx - 430) ** 2 < radius ** 2
    counts = rng.poisson(np.where(disk, 90.0, 100.0)).astype(np.float32)  # 1 noise deviation darker
    image_file = tmp_path / "field.mrc"
    with mrcfile.new(str(image_file), data=counts[::-1].copy()) as m:  # shown flipped, as 3dmod does
        m.voxel_size = ps
    labels = disk.astype(np.uint16)
    tifffile.imwrite(labels_path(tmp_path, "field"), labels)
    row = {"file": str(image_file), "name": "field", "frame": 0, "label": 1, "pixel_size_A": ps,
           "centroid_y": 450 * ps, "centroid_x": 430 * ps, "feret_diameter_max": 2 * radius * ps}
    maker = ThumbnailMaker(tmp_path, size=72)
    thumb = maker.thumbnail(row)
    assert thumb.shape == (72, 72, 3)
    outline = np.all(thumb == OUTLINE_RGB, axis=2)
    assert outline.any()  # the object's outline is drawn
    # the thumbnail's grey inside and outside the particle, away from the outline
    grey = thumb[..., 0].astype(float)
    y0, _, x0, _ = maker.window(row)
    scale = 72 / (2 * int(np.ceil(0.75 * 2 * radius)) + 1)
    ty, tx = np.mgrid[:72, :72] / scale
    ty, tx = ty + y0, tx + x0
    r = np.hypot(ty - 450, tx - 430)
    inside, outside = grey[(r < 0.7 * radius) & ~outline], grey[(r > 1.3 * radius) & (ty >= 0) & ~outline]
    separation = (outside.mean() - inside.mean()) / outside.std()
    # the pixels separate the two by 1 deviation; bins of ~6 x 6 pixels by ~6
    assert separation > 3, f"particle stands {separation:.1f} deviations from the support"
