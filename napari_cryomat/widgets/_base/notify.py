"""User-facing messages through napari's notifications.

The functions look napari's up at call time, so a test captures every message of every tool with one
``monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)``.
"""

from __future__ import annotations

import napari.utils.notifications as _notifications

__all__ = ["show_error", "show_info", "show_warning"]


def show_error(message: str) -> None:
    """An error the user can fix: say what went wrong and what to do."""
    _notifications.show_error(message)


def show_warning(message: str) -> None:
    _notifications.show_warning(message)


def show_info(message: str) -> None:
    _notifications.show_info(message)
