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


# ---------------------------------------------------------------------------- issue #11
def _holder(folder, key):
    """A second 'napari' process that saves ``key`` in ``folder`` and keeps running."""
    script = textwrap.dedent(
        f"""
        import time, numpy as np
        from napari_cryomat.core.annotation import save_annotation
        print(save_annotation({str(folder)!r}, {key!r}, np.ones((4, 4), np.int32)), flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    return proc, line


def test_second_session_saves_under_its_own_name(tmp_path):
    proc, first = _holder(tmp_path, "img")
    try:
        assert first.endswith("img.labels.npz")
        saver = Autosaver(tmp_path, "img", interval=0)
        assert saver.key == "img.2" and saver.requested_key == "img"
        assert "Another napari session" in saver.notice and "img.2.labels.npz" in saver.notice
        saver.mark_dirty()
        assert saver.flush(np.full((4, 4), 7, np.int32)).name == "img.2.labels.npz"
        # a plain save_annotation from this process goes to this process's key too, never over the other's
        assert save_annotation(tmp_path, "img", np.full((4, 4), 8, np.int32)).name == "img.2.labels.npz"
        assert load_annotation(tmp_path, "img").labels[0, 0] == 1  # the first session's work is intact
        # restore finds both sessions' saves and takes the newest
        assert find_autosave("img", [tmp_path]).labels[0, 0] == 8
        saver.close()
    finally:
        proc.kill()
        proc.wait()
    # the holder died (kill -9): its lock is reclaimed, nothing is stale
    again = Autosaver(tmp_path, "img", interval=0)
    assert again.key == "img" and again.notice is None
    again.close()


def test_stale_temp_files_cleaned_on_start(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".img.{dead_pid}.abcd1234.tmp"
    mine = tmp_path / f".img.{os.getpid()}.efgh5678.tmp"  # a live writer's file stays
    legacy_old = tmp_path / ".img-q1w2e3r4.tmp"
    legacy_new = tmp_path / ".img-a1s2d3f4.tmp"
    for p in (stale, mine, legacy_old, legacy_new):
        p.write_bytes(b"half a save")
    old = time.time() - 3600
    os.utime(legacy_old, (old, old))
    Autosaver(tmp_path, "other", interval=0).close()
    assert not stale.exists() and not legacy_old.exists()
    assert mine.exists() and legacy_new.exists()


def test_restore_skips_damaged_saves_and_says_why(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    save_annotation(b, "k", np.full((3, 3), 5, np.int32))
    time.sleep(0.01)
    path = save_annotation(a, "k", np.full((3, 3), 6, np.int32))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # a flipped byte inside the compressed labels
    path.write_bytes(bytes(raw))
    problems = []
    assert load_annotation(a, "k", problems=problems) is None
    assert problems and problems[0][0] == path and problems[0][1]
    problems = []
    found = find_autosave("k", [a, b], problems=problems)
    assert found is not None and found.labels[0, 0] == 5  # the good save elsewhere
    assert [p for p, _ in problems] == [path]
    # a save whose array header claims far more than the file holds
    import io
    import zipfile

    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 2), np.int32))
    header = buf.getvalue().replace(b"(2, 2)", b"(99999, 99999)")
    lying = a / "lie.labels.npz"
    with zipfile.ZipFile(lying, "w") as z:
        z.writestr("labels.npy", header)
        z.writestr("header.npy", buf.getvalue())
    problems = []
    assert load_annotation(a, "lie", problems=problems) is None and "claims" in problems[0][1]


@pytest.mark.parametrize("key", ["../escape", "a/b", "", ".."])
def test_keys_must_be_plain_names(tmp_path, key):
    with pytest.raises(ValueError, match="key must be a plain name"):
        save_annotation(tmp_path, key, np.zeros((2, 2), np.int32))
    assert not (tmp_path.parent / "escape.labels.npz").exists()


def test_kill_during_saves_loses_nothing_and_leaves_no_temp_file(tmp_path, benchmark_module):
    """A few rounds of benchmarks/autosave_kill.py (which runs 200)."""
    bench = benchmark_module("autosave_kill")
    stats = bench.run(6, seed=1, folder=tmp_path / "kill")
    assert stats["rounds"] == 6 and stats["acknowledged"] > 0, stats
    assert stats["lost"] == 0 and stats["torn"] == 0, stats
    assert stats["temp_left_after_next_start"] == 0 and stats["key_not_reclaimed"] == 0, stats
