"""Question answering end to end on a real index: retrieval modes, the LCEL chain, offsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import load_document
from rag_qa.config import Settings
from rag_qa.service import EmptyQuestionError, QAService
from rag_qa.types import Answer

# (question, file the answer is in, words that must be in the answer)
QUESTIONS = [
    ("Which team won Super Bowl 50?", "super_bowl.docx", "Broncos"),
    ("Normandy is a region in which country?", "normans_latin1.txt", "France"),
    ("What is the atomic number of oxygen?", "oxygen.html", "8"),
    ("Who developed the concept of Distributed Adaptive Message Block Switching?", "packet_switching_2p.pdf",
     "Baran"),
]


@pytest.fixture(scope="module")
def service(built_index: Path) -> QAService:
    return QAService(built_index, Settings())


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize(("question", "source", "_words"), QUESTIONS)
def test_each_mode_retrieves_the_gold_document(service, mode, question, source, _words):
    passages = service.search(question, mode=mode, top_k=3)
    assert len(passages) == 3
    assert Path(passages[0].source).name == source, [Path(p.source).name for p in passages]
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(("question", "source", "words"), QUESTIONS)
def test_answer_is_exact_text_of_its_source_document(service, question, source, words):
    """answer == document_text[start:end] for txt (latin-1), html, docx and pdf sources."""
    answer = service.ask(question)
    assert not answer.no_answer
    assert words in answer.answer
    (c,) = answer.citations
    assert Path(c.source).name == source
    document = load_document(Path(c.source), Settings())
    assert document.text[c.start : c.end] == answer.answer
    assert answer.answer in c.text  # the cited passage holds the span
    if source.endswith(".pdf"):
        assert c.page == 1


def test_chain_invoke_batch_and_stream_agree(service):
    chain = service.chain(mode="hybrid", top_k=5)
    questions = [q for q, _, _ in QUESTIONS]
    one = chain.invoke(questions[0])
    many = chain.batch(questions)
    assert isinstance(one, Answer) and one.answer == many[0].answer
    assert [w in a.answer for (_, _, w), a in zip(QUESTIONS, many, strict=True)] == [True] * len(QUESTIONS)
    pieces = list(chain.stream(questions[0]))
    assert isinstance(pieces[-1], Answer) and pieces[-1].answer == one.answer
    assert all(a.seconds > 0 for a in many)


def test_question_the_documents_cannot_answer(service):
    answer = service.ask("What is the melting point of tungsten in kelvin?")
    assert answer.no_answer
    assert answer.answer == "" and not answer.citations


def test_empty_question_is_refused(service):
    with pytest.raises(EmptyQuestionError):
        service.ask("   ")


def test_new_index_version_is_picked_up(built_index, tmp_path):
    """After an ingest switches CURRENT, the same service answers from the new version."""
    import shutil

    from ingest.pipeline import ingest_paths

    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    svc = QAService(index, Settings())
    before = svc.store.version
    extra = tmp_path / "docs"
    extra.mkdir()
    (extra / "zorblax.txt").write_text("The zorblax festival is held every spring in the town of Quillmoor.")
    ingest_paths([extra], index, settings=Settings())
    answer = svc.ask("Where is the zorblax festival held?")
    assert svc.store.version > before
    assert "Quillmoor" in answer.answer


def test_a_retriever_reading_while_another_call_switches_versions_keeps_working(built_index, tmp_path):
    """A question's retriever is made before it searches (a follow-up is condensed in between, for seconds);
    another user's upload meanwhile commits a version and the next call re-opens the index.  The retriever
    used to hold the replaced store, which that call closed ('Cannot operate on a closed database')."""
    import shutil

    from ingest.pipeline import ingest_paths

    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    svc = QAService(index, Settings())
    retriever = svc.retriever("hybrid", 3)  # the question's retriever, made first
    extra = tmp_path / "docs"
    extra.mkdir()
    (extra / "zorblax.txt").write_text("The zorblax festival is held every spring in the town of Quillmoor.")
    ingest_paths([extra], index, settings=Settings())
    assert "zorblax.txt" in {Path(d.source).name for d in svc.store.documents()}  # the re-opening call
    found = retriever.invoke("Where is the zorblax festival held?")
    assert Path(found[0].metadata["source"]).name == "zorblax.txt"  # and it reads the live version

    with svc.lease() as held:  # a read under way when a newer version comes: its store stays open
        (extra / "more.txt").write_text("Quillmoor lies on the river Wend.")
        ingest_paths([extra], index, settings=Settings())
        assert svc.store.chunk_count > held.chunk_count
        assert held.get_passages(held.all_chunk_ids()[:1])
    with pytest.raises(Exception, match="closed"):  # closed by its last user
        held.all_chunk_ids()
