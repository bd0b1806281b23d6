"""What the Drift correction tests share: the notifications shown, recorded."""

import pytest


@pytest.fixture
def messages(monkeypatch):
    """The texts of the errors, warnings and infos shown, in order."""
    shown = []
    for kind in ("show_error", "show_warning", "show_info"):
        monkeypatch.setattr(f"napari.utils.notifications.{kind}", shown.append)
    return shown
