"""A script that starts a tool's job and ends: Python stops the job and waits for its thread before it
exits (widgets/_base/shutdown.py), instead of exiting with the job still running and touching deleted Qt
objects from its thread (tracebacks at every such exit, and a segfault in superqt's worker now and then)."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import sys, time
    from qtpy.QtWidgets import QApplication
    app = QApplication([])
    from napari_cryomat.widgets._base import LatestWins, TaskRunner

    marker = sys.argv[1]

    def long_job(*, progress):  # 20 s if nobody stops it
        for step in range(400):
            time.sleep(0.05)
            progress(step / 400)
        open(marker + ".task", "w").write("finished")

    def live_job(request):  # a live view's computation that polls whether it is still wanted
        for step in range(400):
            time.sleep(0.05)
            if live.is_stale():
                open(marker + ".live", "w").write(f"stopped at {step}")
                return None
        open(marker + ".live", "w").write("finished")

    runner = TaskRunner("Long job")
    runner.start(long_job)
    live = LatestWins(live_job)
    live.submit("request")
    t = time.time()
    while time.time() - t < 0.5:
        app.processEvents()
        time.sleep(0.01)
    print("script ends", flush=True)
''')


def test_jobs_are_stopped_and_waited_for_at_exit(tmp_path):
    script = tmp_path / "job_script.py"
    script.write_text(SCRIPT)
    marker = str(tmp_path / "marker")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, str(script), marker], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "script ends" in done.stdout
    assert "Traceback" not in done.stderr and "has been deleted" not in done.stderr, done.stderr[-2000:]
    assert not os.path.exists(marker + ".task")  # cancelled at exit, not run to its end
    assert open(marker + ".live").read().startswith("stopped at")  # the live job saw it was stale, and ended
