"""`rag_qa eval reader|retrieval|open` end to end on tiny SQuAD slices (real index, real reader)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO / "tests" / "data" / "squad"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rag-qa-cache")  # eval indexes are built here, not in ~/.cache


def run(cache: Path, *args: str) -> dict:
    """`python -m rag_qa eval ARGS --json` in a child process, as a user runs it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAGQA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-m", "rag_qa", "eval", *args, "--json"], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture
def run_here(cache: Path, rag_qa_here):
    """`rag_qa eval ARGS --json` through the entry point in this process (``rag_qa_here``), with the
    module's cache folder for the eval indexes."""

    def run_command(*args: str) -> dict:
        done = rag_qa_here("eval", *args, "--json", env={"RAGQA_CACHE_DIR": str(cache)})
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    return run_command


def test_eval_retrieval_scores_every_mode(run_here):
    results = {m: run_here("retrieval", "--data", str(SQUAD / "dev-mini.json"), "--mode", m, "--k", "1,5")
               for m in ("bm25", "dense", "hybrid")}
    for r in results.values():
        assert r["n"] == 35 and set(r["recall@k"]) == {"1", "5"}
        assert 0 < r["recall@k"]["1"] <= r["recall@k"]["5"] <= 1 and 0 < r["mrr"] <= 1
    # on 12 short paragraphs the gold passage is nearly always in the top 5
    assert results["hybrid"]["recall@k"]["5"] >= 0.9


def test_eval_open_end_to_end(cache):
    r = run(cache, "open", "--data", str(SQUAD / "dev-mini.json"), "--limit", "12")
    assert r["n"] == 12
    assert r["f1"] >= 40.0  # the shipped reader over hybrid retrieval; a broken chain scores ~0
    assert r["exact_match"] <= r["f1"]


def test_eval_reader_v2_reports_splits_and_threshold(run_here):
    r = run_here("reader", "--data", str(SQUAD / "dev-v2-mini.json"))
    assert r["n"] == 22 and r["HasAns_total"] == 13 and r["NoAns_total"] == 9
    assert "best_f1" in r and "best_no_answer_threshold" in r
    # the reader's own cut-off is one of the thresholds searched, so the best is at least as good
    assert r["best_f1"] >= r["f1"] - 1e-6


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch):
    """Settings read again from the environment this test sets, and again after it."""
    from rag_qa.config import get_settings

    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_evaluation_index_is_built_again_for_other_chunking(fresh_settings, tmp_path: Path) -> None:
    """Open-domain scores come from an index built once per corpus; one built with other chunk settings
    (RAGQA_CHUNK_TOKENS) is another index, not the cached one."""
    from rag_qa.config import get_settings
    from rag_qa.eval.corpus import corpus_index

    fresh_settings.setenv("RAGQA_CACHE_DIR", str(tmp_path))
    built: list[Path] = []

    def build(folder: Path, index: Path, model: str) -> dict:  # the ingest itself is tested elsewhere
        built.append(index)
        return {}

    first = corpus_index(SQUAD / "dev-mini.json", build=build, progress=False)[1]
    assert corpus_index(SQUAD / "dev-mini.json", build=build, progress=False)[1] == first and len(built) == 1
    fresh_settings.setenv("RAGQA_CHUNK_TOKENS", "120")
    get_settings.cache_clear()
    other = corpus_index(SQUAD / "dev-mini.json", build=build, progress=False)[1]
    assert other != first and built == [first, other]
