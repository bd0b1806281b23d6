"""Bad-input cases of the tracking options of issue #14 (the linker, the motion model); read by
``benchmarks/core_api_fuzz.py``."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(None)
def _table():
    import pandas as pd

    rng = np.random.default_rng(0)
    pos = rng.uniform(20, 200, size=(6, 2))
    rows = []
    for t in range(4):
        pos = pos + rng.normal(0, 2.0, pos.shape)
        rows += [(t, i + 1, y, x) for i, (y, x) in enumerate(pos)]
    return pd.DataFrame(rows, columns=["frame", "label", "centroid_y", "centroid_x"])


def specs(Spec, Factory) -> list:
    from napari_cryomat.core.tracking import link_table

    table = Factory(lambda: _table().copy())
    return [
        Spec("tracking.link_table.trackpy", {"table": table, "max_distance": 20.0, "gap_frames": 1, "method": "trackpy",
                                             "motion": "auto"},
             {"table": "table", "max_distance": "len", "gap_frames": "count0", "method": "choice", "motion": "choice"},
             call=lambda **kw: link_table(**kw)),
        Spec("tracking.link_table.merges_splits",
             {"table": table, "max_distance": 20.0, "gap_frames": 0, "method": "laptrack", "merges_splits": True},
             {"table": "table", "max_distance": "len", "method": "choice"},
             call=lambda **kw: link_table(**kw)),
    ]
