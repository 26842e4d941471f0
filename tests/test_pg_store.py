"""What only the pgvector store has: FAISS-equal scores through HNSW, a LangChain view, crash-safe
transactions, CLI + service + UI on a real server, and one-line configuration errors.

The behaviour both stores share is tested on both in ``test_store.py`` and ``test_ingest_incremental.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import DOCS, pg_settings

from ingest.pipeline import ingest_paths
from rag_qa.config import Settings
from rag_qa.store import open_store
from rag_qa.store.faiss.reader import FaissStore
from rag_qa.store.pg.reader import PgVectorStore, drop_index
from rag_qa.store.pg.schema import PgConnectionError, connect, schema_name

QUERIES = ("Who developed packet switching?", "oxygen atomic number", "Broncos Panthers quarterback",
           "Where is Normandy?", "What must maintainers do?")


@pytest.fixture
def pg_index(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[Path, Settings]]:
    """A fresh, uniquely named index on the test server (dropped afterwards) and its settings."""
    index, settings = tmp_path / f"pg_{uuid.uuid4().hex[:12]}", pg_settings(pg_dsn)
    yield index, settings
    drop_index(index, settings)


def test_schema_names_are_safe_and_distinct() -> None:
    assert schema_name("indexes/default") == schema_name("/elsewhere/default") == "ragqa_default"
    odd = {schema_name(n) for n in ("My Index", "my_index", "my-index", "x" * 80, "x" * 81, "'; DROP TABLE x; --")}
    assert len(odd) == 6
    assert all(len(s) <= 63 and s.replace("_", "").isalnum() and s == s.lower() for s in odd)


def test_configuration_errors_are_one_line(tmp_path: Path) -> None:
    cases = {
        "needs a server: set RAGQA_PG_DSN": Settings(store="pgvector", pg_dsn=None),
        "cannot connect to PostgreSQL database 'db' on 127.0.0.1:1 .*check RAGQA_PG_DSN":
            Settings(store="pgvector", pg_dsn="postgresql://me:s3cret@127.0.0.1:1/db"),
        "not a valid connection string": Settings(store="pgvector", pg_dsn="host=x password=s3cret nonsense"),
    }
    for message, settings in cases.items():
        with pytest.raises(PgConnectionError, match=message) as caught:
            open_store(tmp_path / "index", settings)
        assert "\n" not in str(caught.value) and "s3cret" not in str(caught.value)
        with pytest.raises(PgConnectionError, match=message):
            ingest_paths([DOCS / "oxygen.html"], tmp_path / "index", settings=settings)


@pytest.mark.pgvector
def test_dense_scores_equal_faiss_inner_products(built_index: Path, built_pg_index: Path, pg_dsn: str,
                                                 embeddings) -> None:
    with FaissStore.open(built_index) as faiss_store, open_store(built_pg_index, pg_settings(pg_dsn)) as pg_store:
        assert pg_store.chunk_count == faiss_store.chunk_count
        for query in QUERIES:
            vector = np.asarray(embeddings.embed_query(query))
            ours, theirs = pg_store.search_dense(vector, 5), faiss_store.search_dense(vector, 5)
            assert [p.chunk_id for p in ours] == [p.chunk_id for p in theirs], query
            assert [p.score for p in ours] == pytest.approx([p.score for p in theirs], abs=1e-5)
            assert ours[0].to_dict() == pytest.approx(theirs[0].to_dict(), abs=1e-5)


@pytest.mark.pgvector
def test_hnsw_and_gin_indexes_serve_the_queries(built_pg_index: Path, pg_dsn: str, embeddings) -> None:
    schema = schema_name(built_pg_index)
    vector = "[" + ",".join(map(str, embeddings.embed_query("oxygen"))) + "]"
    with connect(pg_dsn) as conn:
        conn.execute("SET enable_seqscan = off")  # a 24-row table would be scanned; show the index can serve it
        dense = conn.execute(f"EXPLAIN SELECT id FROM {schema}.chunks ORDER BY embedding <#> %s::vector LIMIT 5",
                             [vector]).fetchall()
        lexical = conn.execute(f"EXPLAIN SELECT id FROM {schema}.chunks WHERE tsv @@ 'oxygen'::tsquery").fetchall()
    assert "chunks_embedding_hnsw" in " ".join(r[0] for r in dense)
    assert "chunks_tsv" in " ".join(r[0] for r in lexical)


@pytest.mark.pgvector
def test_langchain_vectorstore_view_uses_the_same_rows(built_pg_index: Path, pg_dsn: str, embeddings) -> None:
    with PgVectorStore.open(built_pg_index, pg_settings(pg_dsn)) as store:
        ours = store.search_dense(np.asarray(embeddings.embed_query("oxygen atomic number")), 2)
        vector_store = store.as_langchain_vectorstore(embeddings)
        theirs = vector_store.similarity_search_with_score("oxygen atomic number", k=2)
        retrieved = vector_store.as_retriever(search_kwargs={"k": 1}).invoke("Broncos Panthers quarterback")
    assert [d.id for d, _ in theirs] == [p.chunk_id for p in ours]
    assert [score for _, score in theirs] == pytest.approx([p.score for p in ours], abs=1e-5)
    doc = theirs[0][0]
    assert doc.metadata["source"].endswith("oxygen.html") and doc.page_content == ours[0].text
    assert (doc.metadata["start"], doc.metadata["end"]) == (ours[0].start, ours[0].end)
    assert retrieved[0].metadata["source"].endswith("super_bowl.docx")


def _three_docs(tmp_path: Path) -> Path:
    """A folder with three of the fixture documents (txt, html, md), free to edit."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("normans_latin1.txt", "oxygen.html", "code-of-conduct.md"):
        shutil.copy(DOCS / name, folder / name)
    return folder


@pytest.mark.pgvector
def test_bm25_statistics_stay_exact_through_incremental_ingests(tmp_path: Path, pg_index: tuple[Path, Settings],
                                                                pg_dsn: str) -> None:
    index, settings = pg_index
    folder = _three_docs(tmp_path)
    ingest_paths([folder], index, settings=settings)
    md = folder / "code-of-conduct.md"
    md.write_text(md.read_text(encoding="utf-8") + "\n\nThe quokka clause: every maintainer feeds the quokka.\n")
    ingest_paths([folder], index, settings=settings)  # one updated, two kept: the incremental path
    (folder / "oxygen.html").unlink()
    ingest_paths([folder], index, settings=settings)  # one removed
    schema = schema_name(index)
    with connect(pg_dsn) as conn:
        kept = dict(conn.execute(f"SELECT lexeme, df FROM {schema}.terms").fetchall())
        recomputed = dict(conn.execute(f"SELECT lexeme, count(*) FROM {schema}.chunks, "
                                       "unnest(tsvector_to_array(tsv)) AS lexeme GROUP BY lexeme").fetchall())
        meta = conn.execute(f"SELECT documents, chunks, tokens FROM {schema}.meta").fetchone()
        actual = conn.execute(f"SELECT (SELECT count(*) FROM {schema}.documents), count(*), sum(n_tokens) "
                              f"FROM {schema}.chunks").fetchone()
    assert kept == recomputed and "quokka" in kept and "oxygen" not in kept
    assert meta == actual and meta is not None and meta[0] == 2
    with open_store(index, settings) as store:
        hits = store.search_bm25("quokka maintainers", 3)
    assert hits[0].source == str(md) and "quokka" in hits[0].text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True) and hits[-1].score > 0


# ingests argv[1] into index argv[2] on server argv[3] (a rebuild if argv[4]), stalling inside the transaction
STALL_INSIDE_TRANSACTION = """import sys, time
from pathlib import Path
from typing import Any
import rag_qa.store.pg.writer as pg_writer
from ingest.pipeline import ingest_paths
from rag_qa.config import Settings
insert = pg_writer.PgIndexWriter._insert
def stall(self, *args):
    insert(*args)  # old rows deleted (or a staging schema filled), new ones copied in: nothing committed
    print('inside', flush=True)
    time.sleep(60)
pg_writer.PgIndexWriter._insert = stall
ingest_paths([Path(sys.argv[1])], Path(sys.argv[2]), rebuild=bool(sys.argv[4]),
             settings=Settings(store='pgvector', pg_dsn=sys.argv[3]))
"""


@pytest.mark.pgvector
@pytest.mark.parametrize("rebuild", [False, True], ids=["incremental", "rebuild"])
def test_a_killed_ingest_leaves_the_previous_state(tmp_path: Path, pg_index: tuple[Path, Settings], pg_dsn: str,
                                                   rebuild: bool) -> None:
    index, settings = pg_index
    folder = _three_docs(tmp_path)
    first = ingest_paths([folder], index, settings=settings)
    with open_store(index, settings) as store:
        before = (store.version, store.documents(), store.all_chunk_ids())
    (folder / "oxygen.html").unlink()
    (folder / "normans_latin1.txt").write_text("The quokka clause: every maintainer feeds the quokka.\n")
    writer = subprocess.Popen([sys.executable, "-c", STALL_INSIDE_TRANSACTION, str(folder), str(index),
                               settings.pg_dsn or "", "yes" if rebuild else ""], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "inside"
        with open_store(index, settings) as store:  # readers are neither blocked nor shown a half-done ingest
            assert (store.version, store.documents(), store.all_chunk_ids()) == before
            assert store.search_bm25("quokka", 3) == []
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    with open_store(index, settings) as store:
        assert (store.version, store.documents(), store.all_chunk_ids()) == before
    with connect(pg_dsn) as conn:  # nothing of the dead writer is left, not even its staging schema
        left = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [schema_name(index) + "%"])
        assert [r[0] for r in left] == [schema_name(index)]
    again = ingest_paths([folder], index, rebuild=rebuild, settings=settings.model_copy(update={"lock_timeout_s": 10}))
    assert (again.version, again.documents) == (first.version + 1, 2)
    assert [Path(s).name for s in again.removed] == ([] if rebuild else ["oxygen.html"])
    with open_store(index, settings) as store:
        assert store.search_bm25("quokka", 3)[0].source.endswith("normans_latin1.txt")
        assert sorted(Path(d.source).name for d in store.documents()) == ["code-of-conduct.md", "normans_latin1.txt"]


@pytest.mark.pgvector
def test_ingest_cli_then_ask_search_and_ui_through_the_service(tmp_path: Path, pg_index: tuple[Path, Settings],
                                                               pg_dsn: str) -> None:
    from rag_qa.service import QAService
    from rag_qa.store import index_exists
    from ui.handlers import Handlers
    from ui.indexes import IndexCatalog

    index, settings = pg_index
    env = dict(os.environ, RAGQA_STORE="pgvector", RAGQA_PG_DSN=pg_dsn)
    assert not index_exists(index, settings)
    cli = [sys.executable, "-m", "ingest", "--index", str(index), "--json"]
    done = subprocess.run([*cli, str(DOCS / "packet_switching_2p.pdf")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["added"], summary["documents"], summary["failed"]) == (1, 1, [])
    assert not index.exists()  # the index lives on the server, not in a folder

    service = QAService(index, settings)
    answer = service.ask("Who developed packet switching?", reader="extractive", top_k=3)
    assert not answer.no_answer and "Baran" in answer.answer + "".join(c.text for c in answer.citations)
    assert answer.citations[0].source.endswith("packet_switching_2p.pdf") and answer.citations[0].page in (1, 2)
    first_version = service.store.version

    # a second ingest (another process) is picked up by the running service on the next question
    done = subprocess.run([*cli, str(DOCS / "oxygen.html")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for mode in ("hybrid", "dense", "bm25"):
        hits = service.search("What is the atomic number of oxygen?", mode=mode, top_k=3)
        assert hits and hits[0].source.endswith("oxygen.html"), mode
    assert service.store.version == first_version + 1 and len(service.store.documents()) == 2

    # the web app's handlers see the same index through the catalogue
    handlers = Handlers(IndexCatalog(tmp_path, index, settings), max_upload_mb=5)
    rows, _ = handlers.documents(index)
    assert sorted(Path(r[5]).name for r in rows) == ["oxygen.html", "packet_switching_2p.pdf"]
    assert "oxygen.html" in handlers.search("atomic number of oxygen", "hybrid", 3, str(index))


@pytest.mark.pgvector
@pytest.mark.slow
def test_benchmark_runs_small(tmp_path: Path, pg_dsn: str) -> None:
    out = tmp_path / "results.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "pg_vs_faiss.py"
    data = Path(__file__).resolve().parent / "data" / "squad" / "dev-mini.json"  # CI has no shared data
    done = subprocess.run([sys.executable, str(script), "--data", str(data), "--articles", "1", "--questions", "10",
                           "--dsn", pg_dsn, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["articles"] == 1 and result["questions"] == 10 and result["chunks"] > 0
    for leg in ("dense", "lexical", "hybrid"):
        assert result[leg]["pgvector"]["recall@5"] > 0.5 and result[leg]["latency_ratio_p50"] > 0
    assert result["dense"]["hnsw_recall_of_exact_top5"] >= 0.9


def _piece(source: str, texts: list[str], rng: np.random.Generator) -> tuple[list, np.ndarray, list]:
    """Chunk rows, unit vectors and the document row of a made-up document (no model needed)."""
    from rag_qa.store.base import ChunkRow, DocumentRow

    rows, start = [], 0
    for text in texts:
        rows.append(ChunkRow(f"{source}:{start}", source, None, start, start + len(text), text))
        start += len(text) + 2
    vectors = rng.normal(size=(len(rows), 384)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return rows, vectors, [DocumentRow(source, source * 2, 0.0, start, "txt", None, len(rows), "now")]


@pytest.mark.pgvector
def test_replace_documents_is_one_transaction_per_piece_and_keeps_statistics_exact(
        pg_index: tuple[Path, Settings], pg_dsn: str) -> None:
    """What a Ray ingest writes through: each call atomic, counts and BM25 statistics exact, and a
    staged rebuild invisible until it is published."""
    from rag_qa.store.pg.writer import PgIndexWriter

    index, settings = pg_index
    rng = np.random.default_rng(0)
    schema = schema_name(index)

    def state() -> tuple[Any, ...]:
        with connect(pg_dsn) as conn:
            kept = dict(conn.execute(f"SELECT lexeme, df FROM {schema}.terms").fetchall())
            recomputed = dict(conn.execute(f"SELECT lexeme, count(*) FROM {schema}.chunks, "
                                           "unnest(tsvector_to_array(tsv)) AS lexeme GROUP BY lexeme").fetchall())
            meta = conn.execute(f"SELECT documents, chunks, tokens, version FROM {schema}.meta").fetchone()
            actual = conn.execute(f"SELECT (SELECT count(*) FROM {schema}.documents), count(*), sum(n_tokens) "
                                  f"FROM {schema}.chunks").fetchone()
        assert kept == recomputed and meta is not None and meta[:3] == actual
        return meta

    with PgIndexWriter(index, settings) as writer:
        a = _piece("a", ["quokkas live on Rottnest island", "the quokka smiles"], rng)
        b = _piece("b", ["wombats dig burrows", "a wombat is a marsupial", "wombat cubes"], rng)
        writer.replace_documents([], *a[:2], a[2], "minilm", 384)  # creates the index
        writer.replace_documents([], *b[:2], b[2], "minilm", 384)
        assert state() == (2, 5, state()[2], 2)
        a2 = _piece("a", ["the quokka is a small wallaby"], rng)
        writer.replace_documents([], *a2[:2], a2[2], "minilm", 384)  # a replaced: its old chunks go
        writer.replace_documents(["b"], [], np.zeros((0, 384), dtype="float32"), [], "minilm", 384)  # b removed
        assert state()[:2] == (1, 1)
        with open_store(index, settings) as store:
            assert [p.text for p in store.search_bm25("quokka", 5)] == ["the quokka is a small wallaby"]
            live = store.all_chunk_ids()

        c = _piece("c", ["echidnas lay eggs"], rng)
        writer.replace_documents([], *c[:2], c[2], "minilm", 384, staging=True)
        with open_store(index, settings) as store:  # staged: the live index is untouched
            assert store.all_chunk_ids() == live
        committed = writer.publish_staging()
        assert (committed.documents, committed.chunks) == (1, 1)
        assert state()[:2] == (1, 1)
        with open_store(index, settings) as store:
            assert [p.text for p in store.search_bm25("echidna", 5)] == ["echidnas lay eggs"]
            assert store.version > 4
