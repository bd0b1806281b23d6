"""Progress reporting shared by the long-running core functions.

Core functions never know about Qt. They accept ``progress: Callable[[float], None] | None``
and call it with the fraction done. A GUI cancels a run by raising :class:`Cancelled` from
that callback, which unwinds the computation without leaving partial results anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

ProgressCallback = Optional[Callable[[float], None]]


class Cancelled(Exception):
    """Raised (usually from a progress callback) to abandon a computation."""


def report(progress: ProgressCallback, fraction: float) -> None:
    """Call ``progress(fraction)`` if a callback was given; clamp to [0, 1]."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))))


def sub_progress(progress: ProgressCallback, start: float, stop: float) -> ProgressCallback:
    """A callback for one stage of a longer run: its fractions 0..1 map to ``start..stop`` of ``progress``.

    None stays None (no reporting), and a :class:`Cancelled` raised by ``progress`` goes through.
    """
    if progress is None:
        return None
    return lambda fraction: progress(start + (stop - start) * fraction)
