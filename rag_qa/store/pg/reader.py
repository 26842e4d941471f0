"""Read side of the pgvector store: :class:`PgVectorStore` answers like the FAISS store's ``FaissStore``.

Selected with ``RAGQA_STORE=pgvector`` and ``RAGQA_PG_DSN``; the tables are described in
:mod:`rag_qa.store.pg.schema`, writing is :mod:`rag_qa.store.pg.writer`'s job.  Dense search is the
HNSW index over ``vector_ip_ops`` on unit vectors, so scores are the same inner products FAISS gives;
the lexical leg is BM25 computed in SQL over PostgreSQL full-text search (the query's English
lexemes OR-ed over a GIN index; idf from a per-index document-frequency table that each ingest
keeps current; tf and length from the tsvector), so hybrid fusion works as it does over bm25s.
Plain ``ts_rank_cd`` has no idf: on SQuAD it put the gold paragraph in the top 5 for 69% of
questions where bm25s does for 90% (``benchmarks/pg_vs_faiss.py``, before this BM25).

Why psycopg 3 + the ``pgvector`` adapter and not LangChain's ``PGVector``/``PGVectorStore`` for
the store itself: their writes insert row by row, one transaction per call, so an ingest could
not replace a document's chunks, update the documents table and bump the version atomically;
they keep no documents table, their full-text query is an AND of terms (``plainto_tsquery``),
and ``PGVector`` has no HNSW index.  The tables are still a plain LangChain vector store:
:meth:`PgVectorStore.as_langchain_vectorstore` opens them as ``langchain_postgres.PGVectorStore``,
and the retrievers in :mod:`rag_qa.retrieval` are LangChain ``BaseRetriever``\\ s over this class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag_qa.store.base import ChunkRow, DocumentInfo, IndexNotFoundError, query_vector, require_embedding_model
from rag_qa.store.pg.schema import (
    chunk_columns,
    connect,
    describe_dsn,
    read_meta,
    register_vector_type,
    require_dsn,
    schema_name,
)
from rag_qa.types import Passage

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
    from psycopg_pool import ConnectionPool

    from rag_qa.config import Settings

MAX_EF_SEARCH = 1000  # pgvector's upper limit for hnsw.ef_search
BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults, so both stores rank the lexical leg alike
# Okapi BM25 (Lucene's idf) in SQL.  w: the query's English lexemes with their idf from the terms
# table; candidates: the GIN index on tsv for an OR of those lexemes (scalar subqueries, so the
# planner can use the index); tf: positions of the query's lexemes only (setweight + ts_filter keep
# just those, so a long chunk is not unnested whole); length: the chunk's n_tokens
_BM25_QUERY = r"""
WITH w AS (
    SELECT t.lexeme, ln(1 + (m.chunks - t.df + 0.5) / (t.df + 0.5)) AS idf
    FROM (SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('english', %(query)s))) AS lexeme) AS q
    JOIN {schema}.terms AS t USING (lexeme) CROSS JOIN {schema}.meta AS m
), tsq AS (
    SELECT string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery AS q,
           array_agg(lexeme) AS lexemes
    FROM w
)
SELECT {columns},
       sum(w.idf * u.tf * (%(k1)s + 1) / (u.tf + %(k1)s * (1 - %(b)s + %(b)s * c.n_tokens / (
           SELECT greatest(tokens::float8 / greatest(chunks, 1), 1) FROM {schema}.meta)))) AS score
FROM {schema}.chunks AS c
CROSS JOIN LATERAL (SELECT lexeme, coalesce(array_length(positions, 1), 1) AS tf
                    FROM unnest(ts_filter(setweight(c.tsv, 'A', (SELECT lexemes FROM tsq)), '{{a}}'))) AS u
JOIN w ON w.lexeme = u.lexeme
WHERE c.tsv @@ (SELECT q FROM tsq)
GROUP BY c.id
ORDER BY score DESC, c.seq
LIMIT %(k)s
"""


def _passage(row: Sequence[Any], score: float = 0.0) -> Passage:
    return ChunkRow(id=row[0], source=row[1], page=row[2], start=row[3], end=row[4], text=row[5], unit=row[6],
                    section=row[7], ocr=bool(row[8])).to_passage(score)


class PgVectorStore:
    """Read view of one index on a PostgreSQL server; thread-safe (a small connection pool)."""

    def __init__(self, path: Path, dsn: str, schema: str, meta: dict[str, Any], pool: ConnectionPool,
                 ef_search: int = 100) -> None:
        self.path = path
        self.dsn = dsn
        self.schema = schema
        self.meta = meta
        self.ef_search = ef_search
        self._pool = pool
        self._format = int(meta["format_version"])
        self._columns = chunk_columns(self._format)

    @classmethod
    def open(cls, path: str | Path, settings: Settings, embedding_model: str | None = None) -> PgVectorStore:
        """Open the index named by ``path``'s folder name on the server at ``settings.pg_dsn``.

        Raises :class:`IndexNotFoundError` when nothing was ingested there yet and, with
        ``embedding_model``, :class:`EmbeddingMismatchError` for an index built with another model.
        """
        from pgvector.psycopg import register_vector
        from psycopg_pool import ConnectionPool

        path = Path(path)
        dsn, schema = require_dsn(settings), schema_name(path)
        with connect(dsn) as probe:  # a clear one-line error when the server is unreachable
            meta = read_meta(probe, schema)
            if meta is None:
                raise IndexNotFoundError(f"{path} (schema {schema} in {describe_dsn(dsn)})")
            register_vector_type(probe, dsn)
        pool: ConnectionPool = ConnectionPool(
            dsn, min_size=1, max_size=4, num_workers=1, open=True, name=schema,
            kwargs={"autocommit": True}, configure=register_vector, check=ConnectionPool.check_connection,
        )
        store = cls(path, dsn, schema, meta, pool, ef_search=settings.pg_ef_search)
        if embedding_model is not None:
            try:
                store.check_embedding_model(embedding_model)
            except BaseException:
                store.close()
                raise
        return store

    # -- what the index is --------------------------------------------------------------
    @property
    def location(self) -> str:
        return f"schema {self.schema} in {describe_dsn(self.dsn)}"

    @property
    def embedding_model(self) -> str:
        return str(self.meta["embedding_model"])

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    @property
    def version(self) -> int:
        return int(self.meta["version"])

    @property
    def chunk_count(self) -> int:
        return int(self.meta["chunks"])

    def is_current(self) -> bool:
        """False once an ingest has committed a newer version (the service then re-opens the store)."""
        try:
            with self._pool.connection() as conn:
                row = conn.execute(f"SELECT version FROM {self.schema}.meta").fetchone()
        except Exception:  # schema dropped, server restarted...: re-opening says what is wrong
            return False
        return row is not None and int(row[0]) == self.version

    def check_embedding_model(self, name: str) -> None:
        """Raise :class:`EmbeddingMismatchError` unless ``name`` is the model the index was built with."""
        require_embedding_model(name, self.path, self.embedding_model, self.dimension, f" ({self.location})")

    # -- searching ----------------------------------------------------------------------
    def search_dense(self, vector: np.ndarray, k: int) -> list[Passage]:
        """The ``k`` chunks with the highest inner product with ``vector`` (HNSW, score = inner product)."""
        query = query_vector(vector, self.path, self.dimension, self.embedding_model)
        if k <= 0:
            return []
        ef_search = min(MAX_EF_SEARCH, max(self.ef_search, k))
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)])
            rows = conn.execute(
                f"SELECT {self._columns}, -(embedding <#> %s) AS score FROM {self.schema}.chunks "
                "ORDER BY embedding <#> %s LIMIT %s", [query, query, k],
            ).fetchall()
        return [_passage(r, float(r[9])) for r in rows]

    def search_bm25(self, query: str, k: int) -> list[Passage]:
        """The ``k`` chunks with the highest BM25 score for ``query`` (only chunks sharing a lexeme)."""
        if k <= 0 or not query.strip():
            return []
        params = {"query": query, "k": k, "k1": BM25_K1, "b": BM25_B}
        with self._pool.connection() as conn:
            query = _BM25_QUERY.format(schema=self.schema, columns=chunk_columns(self._format, "c"))
            rows = conn.execute(query, params).fetchall()
        return [_passage(r, float(r[9])) for r in rows]

    # -- reading ------------------------------------------------------------------------
    def get_passages(self, chunk_ids: Sequence[str]) -> list[Passage]:
        """Passages for ``chunk_ids`` in the order given (unknown ids are skipped)."""
        with self._pool.connection() as conn:
            rows = conn.execute(f"SELECT {self._columns} FROM {self.schema}.chunks WHERE id = ANY(%s)",
                                [list(chunk_ids)]).fetchall()
        found = {r[0]: _passage(r) for r in rows}
        return [found[c] for c in chunk_ids if c in found]

    def all_chunk_ids(self) -> list[str]:
        """Every chunk id, oldest first (the order they were ingested in)."""
        with self._pool.connection() as conn:
            return [r[0] for r in conn.execute(f"SELECT id FROM {self.schema}.chunks ORDER BY seq")]

    def documents(self) -> list[DocumentInfo]:
        """The indexed files, as the UI lists them."""
        with self._pool.connection() as conn:
            rows = conn.execute(f"SELECT source, type, pages, n_chunks, added_at FROM {self.schema}.documents "
                                "ORDER BY source").fetchall()
        return [DocumentInfo(*r) for r in rows]

    def as_langchain_vectorstore(self, embeddings: Embeddings) -> VectorStore:
        """The same table as LangChain's ``PGVectorStore`` (inner product, our chunk ids and offsets as metadata).

        Needs the ``pgvector`` extra (``langchain-postgres``); close it with ``.close()`` on the result's engine.
        """
        import psycopg
        from langchain_postgres import PGEngine, PGVectorStore
        from langchain_postgres.v2.indexes import DistanceStrategy

        dsn = self.dsn

        async def creator() -> psycopg.AsyncConnection:
            return await psycopg.AsyncConnection.connect(dsn)

        engine = PGEngine.from_connection_string("postgresql+psycopg://", async_creator=creator)
        return PGVectorStore.create_sync(
            engine, embeddings, table_name="chunks", schema_name=self.schema, id_column="id",
            content_column="text", embedding_column="embedding", metadata_columns=["source", "page", "start", "end"],
            metadata_json_column=None, distance_strategy=DistanceStrategy.INNER_PRODUCT,
        )

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PgVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def drop_index(path: str | Path, settings: Settings) -> bool:
    """Drop the index named by ``path`` from the server (tests and clean-ups); True if it existed."""
    dsn, schema = require_dsn(settings), schema_name(path)
    with connect(dsn) as conn:
        existed = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", [schema]).fetchone()
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return bool(existed and existed[0])
