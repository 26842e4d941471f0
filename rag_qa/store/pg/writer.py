"""Write side of the pgvector store: one ingest = one PostgreSQL transaction under an advisory lock.

Unlike the FAISS store, which writes a complete new version folder, only the changes travel:
the chunks of files that are new or changed are copied in (binary ``COPY``, vectors included),
the rows of changed and removed files are deleted (their chunks cascade), and the ``meta``
version is bumped, all in one transaction.  ``kill -9`` at any point therefore leaves the
previous state live: the server rolls the transaction back when the connection drops.  A
session-level advisory lock (one key per index) serialises writers on every machine that
shares the server; a second writer waits ``lock_timeout_s`` and then fails with
:class:`~rag_qa.store.base.IndexLockedError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag_qa.store.base import (
    ChunkRow,
    Committed,
    DocumentRow,
    IndexInfo,
    IndexLockedError,
    IndexStoreError,
    as_matrix,
    require_dimension,
)
from rag_qa.store.pg.schema import (
    FAILURES_DDL,
    FORMAT_VERSION,
    advisory_key,
    connect,
    create_chunk_indexes,
    create_tables,
    describe_dsn,
    ensure_extension,
    migrate_chunks,
    read_meta,
    register_vector_type,
    require_dsn,
    schema_name,
)

if TYPE_CHECKING:
    import psycopg

    from rag_qa.config import Settings

_DOCUMENT_COLUMNS = "source, sha256, mtime, size, type, pages, n_chunks, added_at"
STAGING_SUFFIX = "__next"  # a rebuilt index is written into <schema>__next, then renamed over <schema>


class PgPreviousVersion:
    """The committed state as the pipeline sees it (a :class:`~rag_qa.store.base.PreviousIndex`)."""

    def __init__(self, meta: dict[str, Any], documents: dict[str, DocumentRow]) -> None:
        self.info = IndexInfo.of(meta)
        self.documents = documents

    def close(self) -> None:
        """Nothing to release (the rows were read up front); here for the pipeline's ``finally``."""


class PgIndexWriter:
    """Context manager holding the index's advisory lock; :meth:`commit_changes` applies one ingest."""

    def __init__(self, path: Path, settings: Settings, *, timeout: float | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.dsn = require_dsn(settings)
        self.schema = schema_name(self.path)
        self.timeout = settings.lock_timeout_s if timeout is None else timeout
        self.log = log or (lambda message: None)
        self._conn: psycopg.Connection | None = None

    @property
    def location(self) -> str:
        """Where the index lives, for messages: server and schema (no credentials)."""
        return f"schema {self.schema} in {describe_dsn(self.dsn)}"

    def __enter__(self) -> PgIndexWriter:
        import psycopg

        conn = connect(self.dsn)
        try:
            ensure_extension(conn, self.dsn)
            register_vector_type(conn, self.dsn)
            conn.execute(f"SET lock_timeout = '{max(1, int(self.timeout * 1000))}ms'")
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", [advisory_key(self.schema)])
            except psycopg.errors.LockNotAvailable as exc:
                raise IndexLockedError(
                    f"index {self.path} ({self.location}) is locked by another writer (waited {self.timeout:g}s); "
                    "try again when that ingest has finished"
                ) from exc
            conn.execute("RESET lock_timeout")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()  # ends the session: the advisory lock goes with it
            self._conn = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None:
            raise RuntimeError("PgIndexWriter used outside its `with` block")
        return self._conn

    def previous(self) -> PgPreviousVersion | None:
        """The committed index (None when this schema holds none yet)."""
        conn = self._connection()
        meta = read_meta(conn, self.schema)
        if meta is None:
            return None
        rows = conn.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM {self.schema}.documents ORDER BY source").fetchall()
        return PgPreviousVersion(meta, {r[0]: DocumentRow(*r) for r in rows})

    def commit_changes(self, kept_sources: Sequence[str], chunks: Sequence[ChunkRow], vectors: np.ndarray,
                       new_documents: Sequence[DocumentRow], embedding_model: str, dimension: int,
                       chunking: dict[str, Any] | None = None) -> Committed:
        """Make the index hold the chunks of ``kept_sources`` (already stored) plus ``chunks``.

        With nothing kept (first ingest, ``--rebuild``, or every file replaced) the index is
        built in a staging schema for ``dimension`` (its HNSW/GIN indexes after the bulk load) and
        renamed over the live one at the end of the same transaction, so readers are never blocked
        by a long rebuild.
        """
        conn = self._connection()
        vectors = as_matrix(vectors, len(chunks), dimension)
        with conn.transaction():
            meta = read_meta(conn, self.schema)
            version = (meta["version"] if meta else 0) + 1
            fresh = meta is None or not kept_sources
            if not fresh:
                migrate_chunks(conn, self.schema, meta["format_version"])
            if not fresh and meta is not None:
                require_dimension(self.path, meta["dimension"], dimension)
            if fresh or meta is None:  # built beside the live schema, which readers use until the switch at the end
                target = self.schema + STAGING_SUFFIX
                conn.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")
                create_tables(conn, target, dimension)
                n_chunks, n_tokens = 0, 0
            else:  # row changes only: readers see the previous rows (MVCC) until the commit
                target = self.schema
                kept = set(kept_sources)
                gone = [r[0] for r in conn.execute(f"SELECT source FROM {target}.documents") if r[0] not in kept]
                gone_chunks, gone_tokens = _delete(conn, target, gone)
                n_chunks, n_tokens = meta["chunks"] - gone_chunks, meta["tokens"] - gone_tokens
                if not chunks:
                    embedding_model = meta["embedding_model"]  # nothing embedded: the recorded model stands
            new_chunks, new_tokens = self._insert(conn, target, chunks, vectors, new_documents)
            if fresh:
                create_chunk_indexes(conn, target)
            counts = _write_meta(conn, target, embedding_model, dimension, version, n_chunks + new_chunks,
                                 n_tokens + new_tokens, chunking)
            if fresh:  # the switch: locks the old tables only for the moment before the commit
                conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
                conn.execute(f"ALTER SCHEMA {target} RENAME TO {self.schema}")
        return Committed(version, *counts)

    # ------------------------------------------------------------ an ingest in pieces (python -m ingest --ray)

    @property
    def staging_schema(self) -> str:
        return self.schema + STAGING_SUFFIX

    def replace_documents(self, removed_sources: Sequence[str], chunks: Sequence[ChunkRow], vectors: np.ndarray,
                          new_documents: Sequence[DocumentRow], embedding_model: str, dimension: int,
                          chunking: dict[str, Any] | None = None, *, staging: bool = False) -> Committed:
        """One transaction: drop ``removed_sources`` and the old rows of every source in ``new_documents``,
        then add ``new_documents`` with their ``chunks``; the version is bumped.

        Each call is atomic on its own, so an ingest made of many calls replaces every document
        atomically and can be repeated after a crash (what is committed stays; unchanged files
        are skipped by their sha256).  The first call on an index without a committed version
        creates it (with its HNSW and GIN indexes, grown row by row).  With ``staging`` the calls
        build ``<schema>__next`` instead, without indexes, and :meth:`publish_staging` switches it
        in: the live index is untouched until then.
        """
        conn = self._connection()
        vectors = as_matrix(vectors, len(chunks), dimension)
        target = self.staging_schema if staging else self.schema
        with conn.transaction():
            meta = read_meta(conn, target)
            if meta is None:  # a schema without a meta row is an earlier run's leftover
                live = read_meta(conn, self.schema) if staging else None
                conn.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")
                create_tables(conn, target, dimension)
                if not staging:
                    create_chunk_indexes(conn, target)
                version, n_chunks, n_tokens = (live["version"] if live else 0) + 1, 0, 0
            else:
                migrate_chunks(conn, target, meta["format_version"])
                require_dimension(self.path, meta["dimension"], dimension)
                gone = sorted(set(removed_sources) | {d.source for d in new_documents})
                present = [r[0] for r in conn.execute(f"SELECT source FROM {target}.documents WHERE source = ANY(%s)",
                                                      [gone])]
                gone_chunks, gone_tokens = _delete(conn, target, present)
                version = meta["version"] + 1
                n_chunks, n_tokens = meta["chunks"] - gone_chunks, meta["tokens"] - gone_tokens
                if not chunks:
                    embedding_model = meta["embedding_model"]  # nothing embedded: the recorded model stands
            new_chunks, new_tokens = self._insert(conn, target, chunks, vectors, new_documents)
            counts = _write_meta(conn, target, embedding_model, dimension, version, n_chunks + new_chunks,
                                 n_tokens + new_tokens, chunking)
        return Committed(version, *counts)

    def publish_staging(self) -> Committed:
        """Build the staged index's HNSW and GIN indexes and switch it in for the live one (one transaction)."""
        conn = self._connection()
        with conn.transaction():
            meta = read_meta(conn, self.staging_schema)
            if meta is None:
                raise IndexStoreError(f"index {self.path} has nothing staged to publish ({self.location})")
            create_chunk_indexes(conn, self.staging_schema)
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            conn.execute(f"ALTER SCHEMA {self.staging_schema} RENAME TO {self.schema}")
        return Committed(int(meta["version"]), int(meta["documents"]), int(meta["chunks"]))

    def drop_staging(self) -> None:
        """Forget a staged index (an interrupted ``--rebuild``'s leftover)."""
        self._connection().execute(f"DROP SCHEMA IF EXISTS {self.staging_schema} CASCADE")

    def read_failures(self) -> dict[str, Any]:
        """The failure memory kept in the index's schema (``{}`` when there is none)."""
        conn = self._connection()
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{self.schema}.failures"]).fetchone()
        if not exists or not exists[0]:
            return {}
        row = conn.execute(f"SELECT data FROM {self.schema}.failures").fetchone()
        return row[0] if row and isinstance(row[0], dict) else {}

    def write_failures(self, data: dict[str, Any]) -> None:
        """Replace the failure memory (nothing is kept for an index with no committed version)."""
        conn = self._connection()
        if read_meta(conn, self.schema) is None:
            return
        with conn.transaction():
            conn.execute(FAILURES_DDL.format(schema=self.schema))
            conn.execute(f"INSERT INTO {self.schema}.failures (data) VALUES (%s) "
                         "ON CONFLICT (singleton) DO UPDATE SET data = EXCLUDED.data", [json.dumps(data)])

    @staticmethod
    def _insert(conn: psycopg.Connection, schema: str, chunks: Sequence[ChunkRow], vectors: np.ndarray,
                documents: Sequence[DocumentRow]) -> tuple[int, int]:
        """Insert the new documents' rows, their chunks (one binary ``COPY``) and their lexemes'
        document frequencies; returns the (chunks, tokens) added."""
        last = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {schema}.chunks").fetchone()
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {schema}.documents ({_DOCUMENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(d.source, d.sha256, d.mtime, d.size, d.type, d.pages, d.n_chunks, d.added_at) for d in documents],
            )
            if not chunks:
                return 0, 0
            with cur.copy(f'COPY {schema}.chunks (id, source, page, "start", "end", text, unit, section, ocr, '
                          "embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "int4", "int4", "int4", "text", "text", "text", "bool", "vector"])
                for row, vector in zip(chunks, vectors, strict=True):
                    copy.write_row((row.id, row.source, row.page, row.start, row.end, row.text, row.unit,
                                    row.section, row.ocr, vector))
        since = last[0] if last else 0
        conn.execute(
            f"INSERT INTO {schema}.terms AS t (lexeme, df) SELECT lexeme, count(*) FROM {schema}.chunks AS c, "
            "unnest(tsvector_to_array(c.tsv)) AS lexeme WHERE c.seq > %s GROUP BY lexeme "
            "ON CONFLICT (lexeme) DO UPDATE SET df = t.df + EXCLUDED.df", [since])
        stats = conn.execute(f"SELECT count(*), coalesce(sum(n_tokens), 0) FROM {schema}.chunks WHERE seq > %s",
                             [since]).fetchone()
        return (int(stats[0]), int(stats[1])) if stats else (0, 0)


def _write_meta(conn: psycopg.Connection, schema: str, embedding_model: str, dimension: int, version: int,
                chunks: int, tokens: int, chunking: dict[str, Any] | None) -> tuple[int, int]:
    """Upsert the ``meta`` row of ``schema``; returns its (documents, chunks)."""
    documents = conn.execute(f"SELECT count(*) FROM {schema}.documents").fetchone()
    counts = (int(documents[0]) if documents else 0, chunks)
    conn.execute(
        f"INSERT INTO {schema}.meta (format_version, embedding_model, dimension, version, documents, "
        "chunks, tokens, created_at, chunking) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (singleton) DO UPDATE SET format_version = EXCLUDED.format_version, "
        "embedding_model = EXCLUDED.embedding_model, "
        "version = EXCLUDED.version, documents = EXCLUDED.documents, chunks = EXCLUDED.chunks, "
        "tokens = EXCLUDED.tokens, created_at = EXCLUDED.created_at, chunking = EXCLUDED.chunking",
        [FORMAT_VERSION, embedding_model, dimension, version, *counts, tokens,
         datetime.now(UTC).isoformat(timespec="seconds"), json.dumps(chunking or {})],
    )
    return counts


def _delete(conn: psycopg.Connection, schema: str, gone: Sequence[str]) -> tuple[int, int]:
    """Delete the documents ``gone`` (chunks cascade), keeping the lexeme statistics right; returns the
    (chunks, tokens) that went."""
    if not gone:
        return 0, 0
    gone = list(gone)
    stats = conn.execute(f"SELECT count(*), coalesce(sum(n_tokens), 0) FROM {schema}.chunks "
                         "WHERE source = ANY(%s)", [gone]).fetchone()
    conn.execute(
        f"UPDATE {schema}.terms AS t SET df = t.df - d.n FROM ("
        f"SELECT lexeme, count(*) AS n FROM {schema}.chunks AS c, unnest(tsvector_to_array(c.tsv)) AS lexeme "
        "WHERE c.source = ANY(%s) GROUP BY lexeme) AS d WHERE t.lexeme = d.lexeme", [gone])
    conn.execute(f"DELETE FROM {schema}.terms WHERE df <= 0")
    conn.execute(f"DELETE FROM {schema}.documents WHERE source = ANY(%s)", [gone])
    return (int(stats[0]), int(stats[1])) if stats else (0, 0)
