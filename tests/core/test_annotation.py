import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from napari_cryomat.core.annotation import (
    Autosaver,
    autosave_path,
    check_writable,
    default_folder,
    find_autosave,
    image_key,
    load_annotation,
    save_annotation,
)

CLASSES = [{"id": 1, "name": "particle", "colour": "#e6194b"}, {"id": 2, "name": "ice", "colour": "#42d4f4"}]


def test_save_and_restore_roundtrip(tmp_path):
    lab = np.zeros((30, 40), np.uint16)
    lab[5:10, 5:10] = 2
    path = save_annotation(tmp_path, "k1", lab, classes=CLASSES, metadata={"pixel_size": 2.0})
    assert path == autosave_path(tmp_path, "k1") and path.is_file()
    ann = load_annotation(tmp_path, "k1")
    assert ann.labels.dtype == np.uint16 and np.array_equal(ann.labels, lab)
    assert ann.classes == CLASSES and ann.metadata == {"pixel_size": 2.0}
    assert load_annotation(tmp_path, "other") is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left


def test_image_key_is_stable_and_specific(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((64, 64))
    assert image_key(a) == image_key(a.copy())
    assert image_key(a) != image_key(a + 1)
    assert image_key(a, source=tmp_path / "x.mrc") == image_key(a * 2, source=tmp_path / "x.mrc")
    assert image_key(a, source=tmp_path / "x.mrc") != image_key(a, source=tmp_path / "y.mrc")
    assert image_key(a, name="my image!").startswith("my_image_-")
    assert default_folder(tmp_path / "x.mrc") == tmp_path / ".cryomat_annotations"


def test_find_autosave_takes_newest(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    save_annotation(a, "k", np.ones((2, 2), int))
    time.sleep(0.01)
    save_annotation(b, "k", np.full((2, 2), 2))
    assert find_autosave("k", [a, None, b, tmp_path / "missing"]).labels[0, 0] == 2


def test_torn_file_is_ignored(tmp_path):
    (tmp_path / "k.labels.npz").write_bytes(b"PK\x03\x04garbage")
    assert load_annotation(tmp_path, "k") is None


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_is_reported_at_once(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="Cannot write autosaves"):
            check_writable(ro)
    finally:
        ro.chmod(0o700)


def test_folder_under_a_file_is_reported(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ValueError, match="Choose another autosave folder"):
        check_writable(f / "sub")
    with pytest.raises(ValueError):
        Autosaver(f / "sub", "k")


def test_autosaver_saves_only_changes_at_interval(tmp_path):
    s = Autosaver(tmp_path, "k", interval=10)
    lab = np.zeros((4, 4), int)
    assert s.maybe_save(lab, now=1e12) is None  # nothing changed
    s.mark_dirty()
    assert s.maybe_save(lab, now=1e12) is not None
    s.mark_dirty()
    assert s.maybe_save(lab, now=s.last_save + 5) is None  # too early
    lab[0, 0] = 3
    assert s.flush(lab, classes=CLASSES) is not None  # on close: save at once
    assert load_annotation(tmp_path, "k").labels[0, 0] == 3


def test_autosave_survives_a_killed_process(tmp_path):
    """A child paints and autosaves in a loop, and is killed with SIGKILL at a random moment
    (possibly mid-write). The parent then restores the last complete save."""
    script = textwrap.dedent(
        f"""
        import sys, numpy as np
        from napari_cryomat.core.annotation import Autosaver
        saver = Autosaver({str(tmp_path)!r}, "killed", interval=0)
        lab = np.zeros((256, 256), np.int32)
        i = 0
        while True:
            i += 1
            lab[i % 256, :] = i          # "paint" a stroke
            saver.mark_dirty()
            saver.maybe_save(lab, classes=[{{"id": 1, "name": "particle", "colour": "#ff0000"}}],
                             metadata={{"stroke": i}})
            if i == 5:
                print("saving", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "saving"
        time.sleep(0.3)  # let it save many more times
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    ann = load_annotation(tmp_path, "killed")
    assert ann is not None
    stroke = ann.metadata["stroke"]
    assert stroke >= 5
    # the labels are exactly the state at that stroke: nothing torn, nothing half-written
    expected = np.zeros((256, 256), np.int32)
    for i in range(1, stroke + 1):
        expected[i % 256, :] = i
    assert np.array_equal(ann.labels, expected)
    assert ann.classes[0]["name"] == "particle"
