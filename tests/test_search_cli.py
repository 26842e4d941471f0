"""`python -m rag_qa search` over a real index: JSON passages, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from rag_qa.cli import main


def test_search_json_passages(built_index: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["search", "Which team won Super Bowl 50?", "--index", str(built_index), "--top-k", "3", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and set(out) == {"passages"} and len(out["passages"]) == 3
    for p in out["passages"]:
        assert set(p) == {"text", "source", "page", "start", "end", "score", "unit", "section", "ocr"}
        assert p["end"] - p["start"] == len(p["text"])
    assert out["passages"][0]["source"].endswith("super_bowl.docx")
    assert "Denver Broncos" in out["passages"][0]["text"]


def test_search_human_output_and_bad_top_k(built_index: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["search", "oxygen", "--index", str(built_index), "--top-k", "1"]) == 0
    assert "oxygen.html" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["search", "oxygen", "--index", str(built_index), "--top-k", "0"])
    assert refused.value.code == 2 and "--top-k: must be at least 1" in capsys.readouterr().err
    assert main(["search", "  ", "--index", str(built_index)]) == 2


def test_missing_index_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "rag_qa", "search", "q", "--index", str(tmp_path / "none"),
                             "--json"], cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no index at" in lines[0] and "python -m ingest" in lines[0]
