"""Thread-level parallelism shared by the core engines (drift, tilt SIRT).

numpy and scipy.fft release the GIL, so whole frames, pairs or slabs run in parallel on threads; each
item should run its FFTs with ``workers=1`` (item-level parallelism beats splitting each FFT: far less
synchronisation).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor


def core_threads() -> int:
    """Cores this process may use (at most 4: the per-item work is memory-bound beyond that)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def thread_map(fn, items, progress=None):
    """``[fn(x) for x in items]``, in order, on the process's cores.

    ``progress(k)`` is called in this thread after item k; an exception from it (a cancel) drops the
    items not yet started.
    """
    items = list(items)
    threads = core_threads()
    if threads == 1 or len(items) < 2:
        out = []
        for k, x in enumerate(items):
            out.append(fn(x))
            if progress is not None:
                progress(k)
        return out
    pool = ThreadPoolExecutor(threads)
    try:
        out = []
        for k, y in enumerate(pool.map(fn, items)):
            out.append(y)
            if progress is not None:
                progress(k)
        return out
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
