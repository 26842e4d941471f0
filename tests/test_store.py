"""Index stores on a real built index: search, metadata, no pickle, model checks, atomic versions, locking.

Tests taking ``built_store``/``backend_settings`` run against both backends (FAISS and pgvector).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DOCS

from ingest.loaders import load_document
from rag_qa.config import Settings
from rag_qa.store import EmbeddingMismatchError, IndexLockedError, IndexNotFoundError, open_store, open_writer
from rag_qa.store.faiss.layout import CURRENT_FILE, current_version
from rag_qa.store.faiss.reader import FaissStore
from rag_qa.store.faiss.writer import FaissIndexWriter


def test_open_reports_what_the_index_is(built_store: tuple[Path, Settings]) -> None:
    index, settings = built_store
    with open_store(index, settings, embedding_model="minilm") as store:
        assert store.embedding_model == "minilm" and store.dimension == 384
        assert store.path == index and store.version >= 1 and store.is_current()
        docs = store.documents()
        assert {d.type for d in docs} == {"txt", "md", "html", "pdf", "docx"}
        assert {Path(d.source).name for d in docs} == {p.name for p in DOCS.iterdir()}
        assert all(Path(d.source).is_absolute() for d in docs)
        assert next(d for d in docs if d.type == "pdf").pages == 2
        assert store.chunk_count == sum(d.chunks for d in docs) == len(store.all_chunk_ids())


def test_dense_search_leaves_the_readers_threads_alone(built_store: tuple[Path, Settings], embeddings) -> None:
    """FAISS and torch share one OpenMP runtime: a search must not leave torch on one thread."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with open_store(*built_store) as store:
            assert store.search_dense(np.asarray(embeddings.embed_query("packet switching")), 3)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


def test_dense_search_finds_the_right_passage_with_exact_offsets(built_store: tuple[Path, Settings],
                                                                 embeddings) -> None:
    with open_store(*built_store) as store:
        hits = store.search_dense(np.asarray(embeddings.embed_query("Who developed packet switching?")), 3)
    assert len(hits) == 3
    assert hits[0].source.endswith("packet_switching_2p.pdf") and hits[0].page in (1, 2)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert 0.3 < hits[0].score <= 1.0001  # inner product of unit vectors
    for hit in hits:
        text = load_document(Path(hit.source), Settings()).text
        assert text[hit.start:hit.end] == hit.text


def test_bm25_search_scores_term_matches(built_store: tuple[Path, Settings]) -> None:
    with open_store(*built_store) as store:
        hits = store.search_bm25("Broncos Panthers quarterback", 5)
        assert hits and hits[0].source.endswith("super_bowl.docx")
        assert all(h.score > 0 for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert store.search_bm25("zzzunknownword", 5) == []
        assert store.search_bm25("the and of", 5) == []  # stop words only


def test_get_passages_keeps_the_order_asked(built_store: tuple[Path, Settings]) -> None:
    with open_store(*built_store) as store:
        ids = store.all_chunk_ids()
        wanted = [ids[3], ids[0], "no-such-id", ids[-1]]
        got = store.get_passages(wanted)
    assert [p.chunk_id for p in got] == [ids[3], ids[0], ids[-1]]


def test_langchain_faiss_view_uses_the_same_vectors(built_index: Path, embeddings) -> None:
    with FaissStore.open(built_index) as store:
        vector_store = store.as_langchain_faiss(embeddings)
        ours = store.search_dense(np.asarray(embeddings.embed_query("oxygen atomic number")), 2)
        theirs = vector_store.similarity_search_with_score("oxygen atomic number", k=2)
    assert [d.id for d, _ in theirs] == [p.chunk_id for p in ours]
    assert theirs[0][0].metadata["source"].endswith("oxygen.html")


def test_nothing_in_an_index_is_pickled(built_index: Path) -> None:
    files = [p for p in built_index.rglob("*") if p.is_file()]
    assert files
    assert not [p for p in files if p.suffix in (".pkl", ".pickle")]
    for path in files:
        head = path.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), path  # pickle magic
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # raises if the array needed pickle


def test_missing_index_says_what_to_do(fresh_index: Path, backend_settings: Settings) -> None:
    with pytest.raises(IndexNotFoundError, match=r"no index at .*; run `python -m ingest PATH\.\.\.` first"):
        open_store(fresh_index, backend_settings)


def test_other_embedding_model_is_refused(built_store: tuple[Path, Settings]) -> None:
    from rag_qa.models import resolve_model

    other = resolve_model("minilm").path  # same weights, but named as a local directory: another model id
    with pytest.raises(EmbeddingMismatchError, match="built with embedding model 'minilm'"):
        open_store(*built_store, embedding_model=other)
    store = open_store(*built_store, embedding_model="all-MiniLM-L6-v2")  # an alias of the same model
    with store, pytest.raises(EmbeddingMismatchError, match="384"):
        store.search_dense(np.ones(768, dtype="float32"), 3)


def test_stale_versions_of_a_dead_writer_are_removed_with_a_message(index_copy: Path) -> None:
    live = current_version(index_copy)
    versions = index_copy / "versions"
    half = versions / ".tmp-000042-99999"
    shutil.copytree(versions / live, half)
    (half / "faiss.index").write_bytes((half / "faiss.index").read_bytes()[:100])  # cut mid-write
    orphan = versions / "000041"  # renamed but CURRENT never switched to it
    shutil.copytree(versions / live, orphan)
    messages: list[str] = []
    with FaissIndexWriter(index_copy, log=messages.append):
        pass
    assert not half.exists() and not orphan.exists()
    assert len(messages) == 2 and any("interrupted" in m for m in messages)
    assert current_version(index_copy) == live
    with FaissStore.open(index_copy) as store:
        assert store.chunk_count > 0


def test_a_lost_current_pointer_is_an_error_not_a_reason_to_delete_every_version(index_copy: Path) -> None:
    from rag_qa.store import IndexCorruptError

    live = current_version(index_copy)
    shutil.copytree(index_copy / "versions" / live, index_copy / "versions" / "000009")  # a second version
    (index_copy / CURRENT_FILE).unlink()  # e.g. a copy of the index folder that left it out
    before = sorted(p.name for p in (index_copy / "versions").iterdir())
    with pytest.raises(IndexCorruptError, match=r"CURRENT is missing but versions .* exist; write the live"), \
            FaissIndexWriter(index_copy, timeout=1):
        pass
    (index_copy / CURRENT_FILE).write_text("latest\n")
    with pytest.raises(IndexCorruptError, match=r"CURRENT holds 'latest', not a version number"), \
            FaissIndexWriter(index_copy, timeout=1):  # the lock was let go: no wait, no IndexLockedError
        pass
    assert sorted(p.name for p in (index_copy / "versions").iterdir()) == before  # nothing was deleted
    (index_copy / CURRENT_FILE).write_text(live + "\n")
    with FaissIndexWriter(index_copy):
        pass
    assert (index_copy / "versions" / live).is_dir()


def test_commit_switches_atomically_and_keeps_the_previous_version(index_copy: Path, embeddings) -> None:
    from rag_qa.store.faiss.writer import VersionData

    with FaissStore.open(index_copy) as before:
        old_version, old_count = before.version, before.chunk_count
    for _ in range(3):
        with FaissIndexWriter(index_copy, keep_versions=2) as writer:
            previous = writer.previous()
            assert previous is not None
            rows, vectors = previous.chunks_and_vectors(list(previous.documents)[:2])
            docs = [previous.documents[s] for s in list(previous.documents)[:2]]
            previous.close()
            number = writer.commit(VersionData(rows, vectors, docs, "minilm", 384))
    assert (index_copy / CURRENT_FILE).read_text().strip() == f"{number:06d}"
    assert sorted(p.name for p in (index_copy / "versions").iterdir()) == [f"{number - 1:06d}", f"{number:06d}"]
    with FaissStore.open(index_copy) as store:
        assert store.version == number == old_version + 3
        assert 0 < store.chunk_count < old_count
        top = store.search_dense(np.asarray(embeddings.embed_query(rows[0].text)), 1)[0]
        assert top.chunk_id == rows[0].id and top.score > 0.99  # vectors survived the copy


# holds the write lock of index argv[1] in store argv[2] (server argv[3]) until killed
HOLD_WRITE_LOCK = """import sys, time
from pathlib import Path
from rag_qa.config import Settings
from rag_qa.store import open_writer
with open_writer(Path(sys.argv[1]), Settings(store=sys.argv[2], pg_dsn=sys.argv[3] or None)):
    print('locked', flush=True)
    time.sleep(60)
"""


def test_second_writer_waits_then_fails_clearly(fresh_index: Path, backend_settings: Settings) -> None:
    fresh_index.mkdir()
    args = [str(fresh_index), backend_settings.store, backend_settings.pg_dsn or ""]
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, *args], stdout=subprocess.PIPE, text=True)
    impatient = backend_settings.model_copy(update={"lock_timeout_s": 0.5})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(IndexLockedError, match="locked by another writer"), open_writer(fresh_index, impatient):
            pass
        assert 0.4 < time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    with open_writer(fresh_index, backend_settings.model_copy(update={"lock_timeout_s": 5.0})):  # free again
        pass
