"""The ingest benchmark runs end to end on a tiny corpus (``--smoke``) and writes its results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


@pytest.mark.slow
def test_benchmark_smoke(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ingest_speed.py"), "--smoke", "--output",
                             str(output)], cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1"),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(output.read_text())
    assert data["smoke"] is True and data["files"] == ["oxygen.html"]
    for key in ("plain_langchain", "ours_first_ingest", "ours_unchanged_reingest"):
        assert data[key]["seconds"] > 0 and data[key]["chunks"] > 0
    assert data["ours_unchanged_reingest"]["embedded_chunks"] == 0
    assert data["unchanged_reingest_speedup"] >= 20  # no embedding at all the second time
    assert "first ingest vs plain LangChain" in result.stdout
    # the embedding floor, measured in the same run on the same chunk texts
    assert data["embedding_floor"]["chunks"] == data["ours_first_ingest"]["chunks"]
    assert data["embedding_floor"]["tokens"] > 0 and data["first_ingest_vs_floor"] > 0
    assert "first ingest vs embedding floor" in result.stdout


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
