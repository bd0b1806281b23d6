"""A few hundred fast cases of ``benchmarks/fuzz.py`` in the suite: damaged MRC, TIFF, .msa and
.hspy files opened through the napari reader entry points, each in a forked child with a memory cap
and a timeout.

Every reader must end every case in a clean refusal naming the file or in layers that survive the
first look; no source file is ever changed. (A crash inside a third-party C library, e.g. libhdf5 on
a damaged .hspy, is listed by the benchmark but not failed on here for the vendor formats.)
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("cryomat_fuzz", ROOT / "benchmarks" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("cryomat_fuzz", fuzz)
_spec.loader.exec_module(fuzz)

# cases per reader: enough to hit every mutation kind, few enough to stay fast
N_CASES = {"mrc": 150, "tiff": 40, "msa": 25, "hspy": 25}


@pytest.fixture(scope="module")
def fuzz_runs(tmp_path_factory):
    """Run the fuzz in a fresh interpreter: forking this test process (which may hold FFT, BLAS or
    dask threads from earlier tests) could deadlock the children. Compressed MRC above 1 MiB is
    streamed to a temporary file there, so the in-suite bombs take the streaming path too."""
    out = tmp_path_factory.mktemp("fuzz") / "cases.json"
    counts = ",".join(f"{k}={v}" for k, v in N_CASES.items())
    env = {**os.environ, "CRYOMAT_MRC_MAX_INMEMORY": str(1 << 20)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fuzz.py"), "--per-reader", counts, "--seed", "11",
         "--quick-bombs", "--timeout", "20", "--quiet", "--json", str(out)],
        capture_output=True, text=True, timeout=1200, env=env,
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    cases = json.loads(out.read_text())
    return {row: {"cases": [c for c in cases if c["row"] == row]} for row in N_CASES} | {
        "seed": {"cases": [c for c in cases if c["row"] == "seed"]}}


def _problems(result, outcomes) -> list[str]:
    return [f"case {c.get('case')} {c.get('mutation')}: {c['outcome']}: {str(c.get('detail'))[:60]}"
            for c in result["cases"] if c["outcome"] in outcomes]


def _listing(result, outcomes) -> str:
    return "\n".join(
        f"case {c.get('case')} ({c.get('mutation')}: {c.get('seed_file')}): {c['outcome']}: {str(c.get('detail'))[:200]}"
        for c in result["cases"] if c["outcome"] in outcomes
    )


def test_mrc_every_case_refused_cleanly_or_opened(fuzz_runs):
    res = fuzz_runs["mrc"]
    counts = Counter(c["outcome"] for c in res["cases"])
    bad = ("escaped", "hang", "memory", "late", "changed", "crash", "unnamed")
    assert not any(counts[o] for o in bad), f"{dict(counts)}\n" + _listing(res, bad)
    # the mix really exercises both sides
    assert counts["refused"] > 20 and counts["opened"] > 20, dict(counts)
    kinds = Counter(c["mutation"] for c in res["cases"])
    assert set(kinds) == set(fuzz.MUTATIONS), kinds


@pytest.mark.parametrize("row", sorted(N_CASES) + ["seed"])
def test_no_source_file_changed_and_nothing_hangs(fuzz_runs, row):
    res = fuzz_runs[row]
    assert not _problems(res, ("changed",)), _listing(res, ("changed",))
    if row == "mrc":
        assert not _problems(res, ("hang",)), _listing(res, ("hang",))


@pytest.mark.parametrize("row", ["tiff", "msa", "hspy"])
def test_other_readers_refuse_cleanly(fuzz_runs, row):
    res = fuzz_runs[row]
    bad = ("escaped", "hang", "memory", "late", "changed", "unnamed")
    assert not _problems(res, bad), _listing(res, bad)
