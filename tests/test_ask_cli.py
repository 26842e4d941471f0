"""`python -m rag_qa ask|readers|search` as a user runs them: JSON contract and one-line errors.

The JSON contract of ``ask`` runs in a child process, as a user runs it; the other commands run through
the same entry point in this process (the ``rag_qa_here`` fixture), where the models are loaded once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def rag_qa(*args: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "rag_qa", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)


@pytest.mark.slow
def test_ask_json_contract(built_index):
    out = rag_qa("ask", "Which team won Super Bowl 50?", "--index", str(built_index), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # exactly one JSON object on stdout
    assert set(result) >= {"answer", "score", "reader", "no_answer", "citations", "seconds"}
    assert "Broncos" in result["answer"] and result["reader"] == "extractive"
    (c,) = result["citations"]
    assert set(c) == {"source", "page", "start", "end", "text", "unit", "section", "ocr"}
    assert c["source"].endswith("super_bowl.docx")
    assert (c["page"], c["unit"], c["section"], c["ocr"]) == (None, None, None, False)  # a .docx has no pages


def test_search_modes_json(built_index, rag_qa_here):
    for mode in ("bm25", "hybrid"):
        out = rag_qa_here("search", "Paul Baran packet switching", "--index", str(built_index), "--mode", mode,
                          "--top-k", "2", "--json")
        assert out.returncode == 0, out.stderr
        passages = json.loads(out.stdout)["passages"]
        assert len(passages) == 2 and passages[0]["source"].endswith("packet_switching_2p.pdf")


def test_readers_lists_the_shipped_reader(rag_qa_here):
    out = rag_qa_here("readers", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)["readers"]}
    assert rows["extractive"]["default"] is True
    assert "models/minilm-squad" in rows["extractive"]["weights"]
    assert "generative" in rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "   "], "question is empty"),
        (["ask", "Who?", "--index", "/nonexistent/index"], "python -m ingest"),
        (["ask", "Who?", "--reader", "telepathic"], "unknown reader"),
        (["ask", "Who?", "--top-k", "0"], "argument --top-k: must be at least 1, not 0"),  # was read as 5
        (["chat", "--top-k", "-1"], "argument --top-k: must be at least 1, not -1"),  # read ~all passages
        (["search", "oxygen", "--top-k", "two"], "argument --top-k: not a whole number: 'two'"),
    ],
)
def test_user_errors_are_one_line(built_index, rag_qa_here, args, message):
    if "--index" not in args:
        args = [*args, "--index", str(built_index)]
    out = rag_qa_here(*args)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_bad_setting_is_one_line_naming_it_in_every_entry_point(rag_qa_here, tmp_path):
    """A value that does not validate (here RAGQA_TOP_K=0) was a pydantic traceback."""
    bad = {"RAGQA_TOP_K": "0"}
    here = rag_qa_here("search", "oxygen", env=bad)
    import os

    children = [subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                               env={**os.environ, **bad, "HF_HUB_OFFLINE": "1"}, timeout=120)
                for module, args in (("ingest", [str(tmp_path / "docs"), "--index", str(tmp_path / "index")]),
                                     ("ui", ["--port", "7997"]))]
    for out in [here, *children]:
        assert out.returncode == 2 if out is not here else out.returncode != 0
        assert "invalid setting top_k (RAGQA_TOP_K or rag-qa.toml): input should be greater than or equal to 1, " \
               "not '0'" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "index").exists()


def test_embedding_model_mismatch_is_refused(built_index, rag_qa_here):
    out = rag_qa_here("ask", "Who?", "--index", str(built_index), env={"RAGQA_EMBEDDING_MODEL": "mpnet"})
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "embedding model" in out.stderr or "mpnet" in out.stderr
