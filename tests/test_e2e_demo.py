"""`cryomat demo`: every widget docks through napari's plugin machinery (the proxy viewer that
real users get), for every demo topic, and the window shows the sample."""

import pytest

from napari_cryomat.cli import DEMOS, WIDGETS, open_demo

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("topic", sorted(DEMOS))
def test_demo_opens_sample_with_all_widgets(make_napari_viewer, topic, monkeypatch):
    problems = []
    monkeypatch.setattr("napari.utils.notifications.show_warning", problems.append)
    viewer = make_napari_viewer(show=True)
    open_demo(topic, viewer=viewer)
    assert problems == [], problems  # every widget loaded
    docked = set(viewer.window._wrapped_dock_widgets)
    for name in WIDGETS:
        assert any(name in key for key in docked), f"{name} not docked"
    assert len(viewer.layers) >= 1
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot[..., :3].std() > 5
