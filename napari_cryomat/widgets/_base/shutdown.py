"""Stop our background work before Python exits.

A script that opens napari, starts a tool's job and ends (or closes the viewer) leaves the job's thread
running while the interpreter shuts down: napari asks its workers to quit only when its own event loop
quits (``napari.run()``), and live views run in daemon threads. Such a thread went on computing, then
touched Qt objects already deleted ("wrapped C/C++ object of type _ProgressRelay has been deleted",
tracebacks from the worker thread), and a thread still running Python or numpy code while the
interpreter finalizes is a classic cause of crashes at exit. At exit every running job is cancelled (it
stops at its next progress report) and waited for, up to :data:`EXIT_WAIT_S` in all.
"""

from __future__ import annotations

import atexit
import time
import weakref

#: the longest Python waits at exit for running jobs to stop (a job reports progress every second or so)
EXIT_WAIT_S = 10.0

_RUNNING = weakref.WeakSet()  # objects with stop_for_exit() and wait_for_exit(timeout) -> bool


def track(job_owner) -> None:
    """Stop ``job_owner``'s work at exit (a :class:`.TaskRunner` or :class:`.LatestWins`)."""
    _RUNNING.add(job_owner)


def stop_all(timeout: float = EXIT_WAIT_S) -> bool:
    """Cancel every tracked job and wait for them, ``timeout`` seconds in all; True if all stopped."""
    owners = list(_RUNNING)
    for owner in owners:
        owner.stop_for_exit()
    deadline = time.monotonic() + timeout
    return all(owner.wait_for_exit(max(0.0, deadline - time.monotonic())) for owner in owners)


atexit.register(stop_all)  # registered after Qt is imported, so it runs before Qt's own clean-up
