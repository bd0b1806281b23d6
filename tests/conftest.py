"""Shared fixtures.

``make_napari_viewer`` comes from napari's pytest plugin. End-to-end tests (marker ``e2e``) need a
real display with OpenGL: scripts/test.sh runs the suite under Xvfb with Mesa.
"""

import gc
import importlib.util
import os
import pathlib

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch):
    """Tests never touch the user's home: autosaves and caches go to a temporary folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CRYOMAT_AUTOSAVE_DIR", str(home / "annotations"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


class Notifications(list):
    """The notifications shown, in order, as ``(kind, text)`` with kind "error", "warning" or "info";
    ``shown["error"]`` is the texts of one kind, in order."""

    def __getitem__(self, key):
        if isinstance(key, str):
            return [text for kind, text in self if kind == key]
        return super().__getitem__(key)


@pytest.fixture
def messages(monkeypatch):
    """Every notification a tool shows (:class:`Notifications`). The tools look napari's functions up at
    call time (``widgets._base.notify``), so replacing them here catches all."""
    shown = Notifications()
    for kind in ("error", "warning", "info"):
        monkeypatch.setattr(f"napari.utils.notifications.show_{kind}",
                            lambda m, *a, kind=kind, **k: shown.append((kind, str(m))))
    return shown


@pytest.fixture(scope="session")
def benchmark_module():
    """``load(name)``: the script ``benchmarks/<name>.py`` as a module (the benchmarks are scripts, not a
    package), loaded once per session, for tests that reuse a benchmark's generators and metrics."""
    loaded = {}

    def load(name: str):
        if name not in loaded:
            path = pathlib.Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
            spec = importlib.util.spec_from_file_location(f"benchmark_{name}_for_tests", path)
            loaded[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded[name])
        return loaded[name]

    return load


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY")) or os.environ.get("QT_QPA_PLATFORM") == "offscreen"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DISPLAY"):
        return
    skip = pytest.mark.skip(reason="needs a display with OpenGL: run scripts/test.sh (Xvfb)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After each test, freeze what is still alive out of the garbage collector's sight.

    Between tests that is the imports (napari, Qt, scipy: ~160,000 objects) and what earlier tests left
    (caches, module fixtures: ~780,000 objects after the 50 spectrum widget tests). napari runs a full
    ``gc.collect()`` each time layers are removed, so every viewer's teardown, and every automatic full
    collection inside a test, scanned all of it again, more each time. Frozen objects are still freed by
    reference counting; only cycles among them that die later are kept. Measured on tests/widgets/spectrum
    (50 tests, one process, two alternations): full collections 16.3 / 15.5 -> 6.6 / 5.8 CPU-s, user time
    140 / 132 -> 133 / 115 s, peak memory the same (1.6 GB). The GUI-thread watch (widgets/conftest.py)
    unfreezes on exit; the next test's teardown freezes again.
    ``CRYOMAT_TEST_GC_FREEZE=0`` turns it off (to look for a leak, say).
    """
    yield
    if os.environ.get("CRYOMAT_TEST_GC_FREEZE", "1") != "0":
        gc.collect()
        gc.freeze()
