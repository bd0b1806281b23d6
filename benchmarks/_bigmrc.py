"""Shared by the MRC benchmarks: a big test file written once, peak RSS, a cold page cache."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "_data"


def make_mrc(path: Path, gib: float, *, section: int, voxel_size: float, min_sections: int = 1):
    """Write a float32 MRC of about ``gib`` GiB, section by section (never all in memory).

    Sections are ``section`` × ``section`` Gaussian noise, each rolled along X so that no two
    are alike. An existing file of the same shape is reused. Returns the shape (Z, Y, X).
    """
    import mrcfile

    ny = nx = section
    nz = max(min_sections, int(round(gib * 2**30 / (4 * ny * nx))))
    shape = (nz, ny, nx)
    if already_written(path, shape):
        return shape
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with mrcfile.new_mmap(str(path), shape=shape, mrc_mode=2, overwrite=True) as m:
        noise = rng.normal(size=(ny, nx)).astype(np.float32)
        for z in range(nz):
            m.data[z] = np.roll(noise, 7 * z, axis=1)
        m.voxel_size = voxel_size
    return shape


def already_written(path: Path, shape: tuple) -> bool:
    """True where ``path`` is an MRC of ``shape`` already (a benchmark's big file is written once and reused)."""
    import mrcfile

    if not path.exists():
        return False
    with mrcfile.mmap(str(path), mode="r") as m:
        return m.data.shape == tuple(shape)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM). ru_maxrss is not used: Linux carries it
    over exec from the parent, which may just have written a multi-GB file."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def drop_cache(path: Path) -> None:
    """Evict ``path`` from the page cache (Linux), so a read starts cold."""
    try:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    except (OSError, AttributeError):
        pass
