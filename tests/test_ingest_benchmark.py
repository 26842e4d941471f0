"""The ingest benchmark's floor mode runs each measurement in a fresh process and writes its results.

Its ``--smoke`` mode (ours vs plain LangChain, the unchanged re-ingest, the embedding floor) is run and checked
by ``tests/test_benchmarks.py::test_run_all_smoke``, since ``run_all.py --smoke`` runs it anyway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


@pytest.mark.slow
def test_floor_benchmark_runs_each_measurement_in_a_fresh_process(tmp_path: Path) -> None:
    output = tmp_path / "floor.json"
    data = REPO / "tests" / "data" / "squad" / "dev-mini.json"  # CI has no shared data
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ingest_speed.py"), "--floor", "--data",
                             str(data), "--articles", "1", "--repeat", "1", "--profile", "--output", str(output)],
                            cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    after = json.loads(output.read_text())["floor"]["after"]
    run = after["runs"][0]
    assert run["chunks"] == run["floor"]["chunks"] > 0 and 0 < after["ratio_median"] == run["ratio"]
    assert run["busy_seconds"]["embed"] > 0 and run["busy_seconds"]["model load"] > 0
    assert run["timings"]["parse_processes"] >= 1
