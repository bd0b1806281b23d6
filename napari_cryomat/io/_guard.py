"""Refuse what no reader should open: missing paths, directories, FIFOs, sockets and devices.

Opening a FIFO blocks until a writer appears (forever, in a GUI); reading a device such as
``/dev/zero`` never ends. Every reader calls :func:`refuse_special_file` before it opens anything.
"""

from __future__ import annotations

import os
import stat

__all__ = ["refuse_special_file"]


def refuse_special_file(path, error: type[Exception] = ValueError) -> os.stat_result:
    """Return ``os.stat(path)`` for a regular file; raise ``error`` naming the file otherwise.

    Symbolic links are followed (a link to ``/dev/zero`` is a device). Nothing is opened.

    Examples
    --------
    >>> refuse_special_file("/dev/zero")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: zero: is a character device, not a regular file; ...
    """
    name = os.path.basename(os.fspath(path).rstrip(os.sep)) or os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{name}: file not found (or a broken link).") from None
    except OSError as exc:
        raise error(f"{name}: cannot be opened ({exc.strerror or exc}).") from None
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return st
    if stat.S_ISDIR(mode):
        kind = "a folder"
    elif stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode):
        kind = "a character device"
    elif stat.S_ISBLK(mode):
        kind = "a block device"
    else:
        kind = "not a regular file"
    raise error(
        f"{name}: is {kind}, not a regular file; reading it could block or never end. "
        "Choose the data file itself."
    )
