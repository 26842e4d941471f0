"""`python -m ingest` as users run it: JSON summary, exit codes, one-line errors, and kill -9 safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import BAD, DOCS, REPO

from ingest.cli import main
from rag_qa.store.faiss.reader import FaissStore

SUMMARY_KEYS = {"index", "added", "updated", "removed", "unchanged", "failed", "skipped", "documents", "chunks",
                "seconds"}  # the keys docs/design.md fixes


def _ingest(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "ingest", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args", [[], ["/definitely/not/here"], ["--bogus", "x"], ["--index"]])
def test_usage_errors_exit_2_with_one_line(args: list[str]) -> None:
    result = _ingest(*args, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ingest: error:"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_help_exits_0() -> None:
    result = _ingest("--help", timeout=60)
    assert result.returncode == 0 and "--remove" in result.stdout and "--rebuild" in result.stdout


def test_json_summary_and_exit_3_when_some_files_fail(index_copy: Path, capsys: pytest.CaptureFixture) -> None:
    with FaissStore.open(index_copy) as store:
        version = store.version
    code = main([str(DOCS), str(BAD), "--index", str(index_copy), "--json"])
    out, err = capsys.readouterr()
    summary = json.loads(out)  # exactly one JSON object on stdout
    assert code == 3
    assert set(summary) == SUMMARY_KEYS
    assert summary["index"] == str(index_copy.resolve())
    assert (summary["added"], summary["unchanged"], summary["documents"]) == (0, 5, 5)
    assert {Path(f["path"]).name for f in summary["failed"]} == {p.name for p in BAD.iterdir()}
    assert all(set(f) == {"path", "error"} and f["error"] for f in summary["failed"])
    assert isinstance(summary["seconds"], float) and summary["chunks"] > 0
    assert "failed:" in err and "5 unchanged" in err  # human output goes to stderr
    with FaissStore.open(index_copy) as store:
        assert store.version == version  # only failures: no new version was written

    code = main([str(DOCS), "--index", str(index_copy), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["failed"] == []


def test_embedding_model_mismatch_is_a_usage_error(index_copy: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_qa.config import get_settings
    from rag_qa.models import resolve_model

    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", resolve_model("minilm").path)
    get_settings.cache_clear()
    try:
        code = main([str(DOCS), "--index", str(index_copy)])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("ingest: error: index") and "--rebuild" in err[-1]


def test_sigkill_mid_ingest_leaves_the_previous_index_queryable(index_copy: Path, embeddings) -> None:
    with FaissStore.open(index_copy) as store:
        before_version, before_docs = store.version, store.documents()
    proc = subprocess.Popen([sys.executable, "-m", "ingest", str(REPO / "examples" / "docs"), "--index",
                             str(index_copy)], cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    embedding = threading.Event()

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("embedding"):
                embedding.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert embedding.wait(timeout=180), "ingest never started embedding"
        time.sleep(1.0)  # well inside the embedding of ~400 chunks
        assert proc.poll() is None, "ingest finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with FaissStore.open(index_copy) as store:
        assert store.version == before_version
        assert store.documents() == before_docs
        hits = store.search_dense(np.asarray(embeddings.embed_query("Who developed packet switching?")), 2)
        assert hits and hits[0].source.endswith("packet_switching_2p.pdf")
        assert store.search_bm25("Broncos", 1)
