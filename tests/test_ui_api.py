"""The running web app through its API (gradio_client): upload, ask with citations, search, readers, errors.

A real app on 127.0.0.1 over a fresh index, the real embedding model and the default extractive reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BAD, DOCS, load_benchmark
from ui_server import running_app

from rag_qa.config import Settings

pytestmark = pytest.mark.slow
gradio_client = pytest.importorskip("gradio_client")

NORMANS = DOCS / "normans_latin1.txt"
OXYGEN = DOCS / "oxygen.html"
QUESTION = "In what country is Normandy located?"


def other_reader() -> str:
    """A reader spec naming a model folder: offered by this app only because its operator lists it."""
    from rag_qa.models import DEFAULT_READER, resolve_model

    return f"extractive:{resolve_model(DEFAULT_READER, kind='reader').path}"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """A client for a real app over an index that does not exist yet, and that index's path."""
    from rag_qa.readers import registry

    offered = [*registry.BUILTIN_READERS, other_reader()]
    # as in a server's own process, no reader is built yet but those it offers: readers other tests in this
    # process built (test_reader's model server) are not this app's
    for key in [key for key in registry._instances if key[0] not in offered]:
        del registry._instances[key]
    root = tmp_path_factory.mktemp("ui-api") / "indexes"
    index = root / "main"
    with running_app(index, root, Settings(ui_readers=offered)) as demo:
        yield gradio_client.Client(demo.local_url, verbose=False), index


@pytest.fixture(scope="module")
def uploaded(app: tuple[Any, Path]) -> tuple[str, dict, dict]:
    """Upload two good files and one corrupt PDF at once; returns (status html, table, remove choices)."""
    client, index = app
    files = [gradio_client.handle_file(str(p)) for p in (NORMANS, OXYGEN, BAD / "corrupt.pdf")]
    return client.predict(files, str(index), api_name="/upload")


def ask(client: Any, index: Path, question: str, reader: str = "extractive", mode: str = "hybrid",
        top_k: int = 5) -> tuple[list[dict], dict]:
    history, details, _ = client.predict(question, [], reader, mode, top_k, str(index), api_name="/ask")
    return history, details


def last_message(history: list[dict]) -> str:
    return history[-1]["content"][0]["text"]


def test_empty_index_gives_a_hint_not_an_error(app: tuple[Any, Path]) -> None:
    client, _ = app
    _, status, table, _ = client.predict("empty one", str(app[1]), api_name="/create_index")
    empty = app[1].parent / "empty-one"
    assert empty.is_dir() and table["data"] == [] and "Upload some" in status
    history, details = ask(client, empty, QUESTION)
    assert details == {"hint": "empty index"}
    assert "No documents indexed yet" in last_message(history)
    assert "Upload some" in client.predict("rollo", "hybrid", 5, str(empty), api_name="/search")


def test_upload_indexes_good_files_and_reports_the_bad_one(app: tuple[Any, Path], uploaded: tuple) -> None:
    _, index = app
    status, table, _ = uploaded
    assert "corrupt.pdf" in status and "upload-failed" in status
    assert sorted(row[0] for row in table["data"]) == ["normans_latin1.txt", "oxygen.html"]
    stored = sorted(p.name for p in (index / "uploads").iterdir())
    assert stored == ["normans_latin1.txt", "oxygen.html"]  # the refused file is not kept


def test_ask_answers_with_a_citation_to_the_uploaded_file(app: tuple[Any, Path], uploaded: tuple) -> None:
    client, index = app
    history, details = ask(client, index, QUESTION)
    assert details["no_answer"] is False and details["reader"] == "extractive"
    assert "France" in details["answer"]
    top = details["citations"][0]
    assert top["source"] == str((index / "uploads" / "normans_latin1.txt").resolve())
    assert "France" in top["text"]
    shown = last_message(history)
    assert "normans_latin1.txt" in shown and "<mark>" in shown and "<details" in shown


def test_search_marks_query_terms_and_names_the_source(app: tuple[Any, Path], uploaded: tuple) -> None:
    client, index = app
    html = client.predict("oxygen", "bm25", 2, str(index), api_name="/search")
    assert html.count('class="search-hit"') <= 2
    assert "oxygen.html" in html.split('class="search-hit"')[1]  # the best hit
    assert "<mark>Oxygen</mark>" in html or "<mark>oxygen</mark>" in html


def test_reader_switch_takes_effect_on_the_next_question(app: tuple[Any, Path], uploaded: tuple) -> None:
    client, index = app
    other = other_reader()
    _, details = ask(client, index, QUESTION, reader=other, mode="bm25", top_k=2)
    assert details["reader"] == other and len(details["citations"]) >= 1


def test_bad_reader_is_an_error_message_and_the_app_stays_up(app: tuple[Any, Path], uploaded: tuple) -> None:
    client, index = app
    history, details = ask(client, index, QUESTION, reader="no-such-reader")
    assert "unknown reader" in details["error"] and "rag-error" in last_message(history)
    _, details = ask(client, index, QUESTION)
    assert details["no_answer"] is False


def test_typed_reader_specs_are_refused_alike_and_never_reach_the_reader_cache(app: tuple[Any, Path],
                                                                             uploaded: tuple) -> None:
    """Issue 21: a spec the operator did not list is refused before the registry is asked, so no folder is
    looked at (the same answer for one that exists and one that does not) and nothing is cached."""
    from rag_qa.readers import registry

    client, index = app
    offered = ["extractive", "generative", "generative:smollm2", other_reader()]
    before = {key[0] for key in registry._instances}
    for typed in ("extractive:/etc", "extractive:/no/such/folder", f"extractive:{DOCS}", "extractive:minilm",
                  *(f"extractive:/tmp/model-{i}" for i in range(5))):
        _, details = ask(client, index, QUESTION, reader=typed)
        assert details == {"error": f"unknown reader {typed!r}: pick one of {', '.join(offered)}"}, details
    cached = {key[0] for key in registry._instances}
    assert cached == before and cached <= set(offered), cached  # only offered names were ever built


def test_remove_drops_the_document_and_its_stored_upload(app: tuple[Any, Path], uploaded: tuple) -> None:
    client, index = app
    source = str((index / "uploads" / "oxygen.html").resolve())
    status, table, _ = client.predict(source, str(index), api_name="/remove")
    assert "Removed oxygen.html" in status
    assert [row[0] for row in table["data"]] == ["normans_latin1.txt"]
    assert not Path(source).exists()


def test_concurrent_users_each_get_the_answer_to_their_own_question(app: tuple[Any, Path], uploaded: tuple) -> None:
    """4 users at once, 4 different questions each in a rotated order: no errors, no cross-talk."""
    load_ui = load_benchmark("load_ui")
    client, index = app
    expected = {  # the Normans file only: another test removes oxygen.html from this shared app
        QUESTION: "France",
        "Who was the leader of the Norse raiders who settled Normandy?": "Rollo",
        "What were the Normans called in Latin?": "Normanni",
        "In which centuries did the Normans give their name to Normandy?": "10th and 11th",
    }
    replies: list[dict] = []
    summary = load_ui.run_round(client.src, index, list(expected), users=4, results=replies)
    assert summary["requests"] == 16 and summary["errors"] == 0, summary["first_errors"]
    assert summary["p50_ms"] > 0 and summary["p95_ms"] >= summary["p50_ms"]
    for reply in replies:
        assert expected[reply["question"]] in reply["answer"], reply
