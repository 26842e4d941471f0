"""The one guard every UI event goes through (``ui/guard.py``), called directly and without models: each
event's refusal lands in the trail in the same shape, a failure anywhere becomes one line on the page (the
handler returns), and the copies of uploads that are deleted are only ever those in their own folders.

The events with real indexes and models are in ``test_ui_handlers.py``, ``test_ui_api.py`` and
``test_ui_signin.py``."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ui_server import team_handlers

from rag_qa.config import Settings
from ui import audit
from ui.discard import discard_gradio_copies, discard_stored_uploads
from ui.handlers import Handlers

READER = SimpleNamespace(username="rita")  # a reader of ``team``: may ask and search, not change it


def no_progress(*_: Any, **__: Any) -> None:
    """Stands in for gr.Progress outside a Gradio event."""


@pytest.fixture
def team(tmp_path: Path) -> tuple[Handlers, Path]:
    return team_handlers(tmp_path, "rita", "reader", Settings(signin_log=tmp_path / "sign-ins.jsonl"))


def test_every_refusal_is_one_line_in_the_trail_in_the_same_shape(team: tuple[Handlers, Path],
                                                                   tmp_path: Path) -> None:
    handlers, index = team
    upload = tmp_path / "notes.txt"
    upload.write_text("a note")
    status, rows, _ = handlers.upload([str(upload)], str(index), READER, no_progress)
    assert "You are a reader of index 'team'" in html.unescape(status) and rows == []
    status, rows, _ = handlers.remove("uploads/notes.txt", str(index), READER, no_progress)
    assert "You are a reader of index 'team'" in html.unescape(status) and rows == []
    assert "unknown retrieval mode" in handlers.search("packets", "telepathy", 3, str(index), READER)
    *_, (history, details, box) = handlers.ask("Who?", [], "extractive", "hybrid", 99, str(index), READER)
    assert "top-k" in details["error"] and box == "" and history[-1]["role"] == "assistant"
    records = list(audit.read(audit.index_log(index)))
    assert [(r["user"], r["action"], r["outcome"], r["files"]) for r in records] == [
        ("rita", "upload", "refused", ["notes.txt"]), ("rita", "remove", "refused", ["notes.txt"]),
        ("rita", "search", "refused", []), ("rita", "ask", "refused", [])]
    assert records[-1]["reader"] == "extractive" and all(r["detail"] for r in records)
    # an index not on offer: the server's log, with the index as the request named it
    handlers.search("packets", "hybrid", 3, f"{index}/../elsewhere", READER)
    (elsewhere,) = audit.read(handlers.settings.signin_log)
    assert (elsewhere["action"], elsewhere["outcome"], elsewhere["index"]) == ("search", "refused",
                                                                               f"{index}/../elsewhere")


def test_a_failure_anywhere_is_one_line_on_the_page_and_in_the_servers_log(
        team: tuple[Handlers, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    handlers, index = team

    def broken(_: Path) -> None:
        raise KeyError("chunk 7")

    monkeypatch.setattr(handlers, "_ready_service", broken)
    with caplog.at_level(logging.ERROR, logger="rag_qa.ui"):
        assert handlers.search("packets", "hybrid", 3, str(index), READER) == (
            "<div class=\"rag-error\">KeyError: &#x27;chunk 7&#x27;</div>")
        *_, (history, details, _) = handlers.ask("Who?", [], "extractive", "hybrid", 3, str(index), READER)
    assert details == {"error": "KeyError: 'chunk 7'"} and [m["role"] for m in history] == ["user", "assistant"]
    assert [r.getMessage() for r in caplog.records] == ["search failed: 'packets'", "question failed: 'Who?'"]
    assert all(r.exc_info for r in caplog.records)  # with the traceback, for the operator
    assert not audit.index_log(index).exists()  # reading is not audited unless RAGQA_AUDIT_QUESTIONS is on


def test_only_copies_inside_their_own_folders_are_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = tmp_path / "index"
    stored = index / "uploads" / "a.txt"
    stored.parent.mkdir(parents=True)
    stored.write_text("a")
    elsewhere = tmp_path / "docs" / "b.txt"
    elsewhere.parent.mkdir()
    elsewhere.write_text("b")
    discard_stored_uploads([str(elsewhere), str(index / "uploads"), str(stored.resolve())], index)
    assert not stored.exists() and elsewhere.exists() and (index / "uploads").is_dir()

    gradio_tmp = tmp_path / "gradio"
    copy = gradio_tmp / "0123abcd" / "c.txt"
    copy.parent.mkdir(parents=True)
    copy.write_text("c")
    monkeypatch.setattr("ui.discard.gradio_upload_folder", lambda: gradio_tmp.resolve())
    discard_gradio_copies([str(elsewhere), str(gradio_tmp), str(copy)])
    assert not copy.exists() and not copy.parent.exists() and gradio_tmp.is_dir() and elsewhere.exists()
