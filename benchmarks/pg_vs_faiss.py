"""pgvector store vs FAISS store on the same chunks: search latency and recall@5 on SQuAD dev questions.

    python benchmarks/pg_vs_faiss.py [--articles 8] [--questions 600] [--dsn postgresql://...]

The first ``--articles`` SQuAD v1.1 dev articles are ingested into a FAISS index by the real
pipeline; the very same chunks and vectors are then loaded into a pgvector index (one
transaction: binary COPY, then the HNSW and GIN indexes).  Each question is embedded once and
both stores answer it: dense (FAISS exact inner product, one OpenMP thread, vs HNSW with
``ef_search`` from the settings), lexical (bm25s vs BM25 in SQL over PostgreSQL full-text) and
hybrid (the same fusion over each).
Reported: p50/p95 latency per query (embedding excluded), recall@5 against the gold paragraph,
the share of FAISS's exact top-5 that HNSW returns, and pgvector/FAISS ratios.  The server is
``--dsn``/``RAGQA_PG_DSN`` or a throwaway local one.  Writes ``benchmarks/results/pg_vs_faiss.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
from baselines.common import percentile

from ingest.pipeline import ingest_paths
from rag_qa.config import Settings
from rag_qa.embeddings import SentenceTransformerEmbeddings
from rag_qa.eval.corpus import CorpusQuestion, read_corpus
from rag_qa.eval.retrieval_eval import is_hit
from rag_qa.retrieval import make_retriever, passages
from rag_qa.store.faiss.reader import FaissStore
from rag_qa.store.faiss.writer import PreviousVersion
from rag_qa.store.pg.local import server_or_local  # noqa: E402
from rag_qa.store.pg.reader import PgVectorStore, drop_index
from rag_qa.store.pg.writer import PgIndexWriter
from rag_qa.types import Passage

HERE = Path(__file__).resolve().parent

K = 5
DATA = HERE.parents[1] / "shared" / "data" / "squad" / "dev-v1.1-public.json"


server = server_or_local  # the given DSN, or a throwaway local server


def timed(search: Callable[[Any], list[Passage]], inputs: list[Any]) -> tuple[list[list[Passage]], list[float]]:
    """Run ``search`` on each input (after two warm-up calls); results and per-call milliseconds."""
    for item in inputs[:2]:
        search(item)
    results, ms = [], []
    for item in inputs:
        started = time.perf_counter()
        results.append(search(item))
        ms.append((time.perf_counter() - started) * 1000)
    return results, ms


def leg(name: str, results: list[list[Passage]], ms: list[float], questions: list[CorpusQuestion]) -> dict:
    hits = sum(any(is_hit(p, q) for p in r[:K]) for r, q in zip(results, questions, strict=True))
    return {"store": name, f"recall@{K}": round(hits / max(len(questions), 1), 4),
            "p50_ms": round(percentile(ms, 50), 3), "p95_ms": round(percentile(ms, 95), 3)}


def compare(faiss: dict, pg: dict) -> dict:
    return {"faiss": faiss, "pgvector": pg,
            "latency_ratio_p50": round(pg["p50_ms"] / max(faiss["p50_ms"], 1e-9), 2),
            "recall_ratio": round(pg[f"recall@{K}"] / max(faiss[f"recall@{K}"], 1e-9), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--articles", type=int, default=8, help="first N articles of the SQuAD file (default 8)")
    ap.add_argument("--questions", type=int, default=600, help="at most this many of their questions")
    ap.add_argument("--dsn", default=os.environ.get("RAGQA_PG_DSN"), help="server (default: a throwaway one)")
    ap.add_argument("--out", default=str(HERE / "results" / "pg_vs_faiss.json"))
    args = ap.parse_args()
    started = time.perf_counter()

    texts, all_questions = read_corpus(args.data)
    names = list(texts)[: args.articles]
    questions = [q for q in all_questions if q.source in set(names)][: args.questions]
    settings = Settings(store="faiss")
    with tempfile.TemporaryDirectory(prefix="bench-pgvector-") as tmp, server(args.dsn) as dsn:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for name in names:
            (corpus / name).write_text(texts[name], encoding="utf-8")
        faiss_index = Path(tmp) / "faiss"
        t0 = time.perf_counter()
        report = ingest_paths([corpus], faiss_index, settings=settings)
        ingest_s = time.perf_counter() - t0

        # the same chunks and vectors into pgvector (the FAISS version read back, nothing re-embedded)
        pg_settings = Settings(store="pgvector", pg_dsn=dsn)
        pg_index = Path(tmp) / f"bench_{uuid.uuid4().hex[:8]}"
        with FaissStore.open(faiss_index) as faiss_store:
            previous = PreviousVersion(faiss_store.version_dir)
            rows, vectors = previous.chunks_and_vectors(list(previous.documents))
            documents = list(previous.documents.values())
            previous.close()
        t0 = time.perf_counter()
        with PgIndexWriter(pg_index, pg_settings) as writer:
            writer.commit_changes([], rows, vectors, documents, faiss_store.embedding_model, faiss_store.dimension)
        load_s = time.perf_counter() - t0

        embeddings = SentenceTransformerEmbeddings(settings=settings)
        qvecs = embeddings.embed_array([q.question for q in questions])
        by_text = {q.question: v for q, v in zip(questions, qvecs, strict=True)}

        def embed(text: str) -> list[float]:
            return by_text[text].tolist()

        out: dict[str, Any] = {}
        try:
            with FaissStore.open(faiss_index) as fs, PgVectorStore.open(pg_index, pg_settings) as ps:
                assert fs.chunk_count == ps.chunk_count == len(rows)
                # as shipped, FAISS runs each one-vector search on all OpenMP threads; beside torch on a
                # busy machine that costs ms of thread wake-ups, so the comparison below uses one thread
                _, shipped_ms = timed(lambda v: fs.search_dense(v, K), list(qvecs))
                threads = faiss.omp_get_max_threads()
                faiss.omp_set_num_threads(1)
                dense_f, ms_f = timed(lambda v: fs.search_dense(v, K), list(qvecs))
                dense_p, ms_p = timed(lambda v: ps.search_dense(v, K), list(qvecs))
                out["dense"] = compare(leg("faiss", dense_f, ms_f, questions),
                                       leg("pgvector", dense_p, ms_p, questions))
                agree = [len({p.chunk_id for p in a} & {p.chunk_id for p in b}) / K
                         for a, b in zip(dense_f, dense_p, strict=True)]
                out["dense"]["hnsw_recall_of_exact_top5"] = round(statistics.fmean(agree), 4)
                out["dense"]["faiss_default_threads"] = {
                    "threads": threads, "p50_ms": round(percentile(shipped_ms, 50), 3),
                    "p95_ms": round(percentile(shipped_ms, 95), 3)}
                texts_q = [q.question for q in questions]
                lex_f, ms_f = timed(lambda t: fs.search_bm25(t, K), texts_q)
                lex_p, ms_p = timed(lambda t: ps.search_bm25(t, K), texts_q)
                out["lexical"] = compare(leg("faiss (bm25s)", lex_f, ms_f, questions),
                                         leg("pgvector (BM25 in SQL)", lex_p, ms_p, questions))
                hy_f, hy_p = make_retriever(fs, embed, "hybrid", K), make_retriever(ps, embed, "hybrid", K)
                res_f, ms_f = timed(lambda t: passages(hy_f.invoke(t)), texts_q)
                res_p, ms_p = timed(lambda t: passages(hy_p.invoke(t)), texts_q)
                out["hybrid"] = compare(leg("faiss", res_f, ms_f, questions), leg("pgvector", res_p, ms_p, questions))
        finally:
            drop_index(pg_index, pg_settings)

    result = {
        "what": "pgvector store vs FAISS store, same chunks and vectors, SQuAD v1.1 dev questions",
        "data": Path(args.data).name, "articles": len(names), "chunks": report.chunks, "questions": len(questions),
        "k": K, "ef_search": pg_settings.pg_ef_search,
        "faiss_ingest_s": round(ingest_s, 2), "pgvector_load_s": round(load_s, 2), **out,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "server": "given DSN" if args.dsn else "throwaway local pgserver (PostgreSQL 16, pgvector 0.6)"},
        "seconds": round(time.perf_counter() - started, 1),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
