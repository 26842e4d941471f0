"""The scale-out store: an index is a schema on a PostgreSQL server with pgvector.

``schema`` (connecting, naming, the tables), ``reader``
(:class:`~rag_qa.store.pg.reader.PgVectorStore`), ``writer``
(:class:`~rag_qa.store.pg.writer.PgIndexWriter`: one ingest = one transaction) and ``local`` (a
throwaway server from PyPI for tests and benchmarks).  Selected with ``RAGQA_STORE=pgvector`` and
``RAGQA_PG_DSN``; needs the ``pgvector`` extra.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag_qa.config import Settings
    from rag_qa.store.pg.reader import PgVectorStore
    from rag_qa.store.pg.writer import PgIndexWriter


def open_store(index: Path, settings: Settings, embedding_model: str | None = None) -> PgVectorStore:
    from rag_qa.store.pg.reader import PgVectorStore

    return PgVectorStore.open(index, settings, embedding_model=embedding_model)


def open_writer(index: Path, settings: Settings, log: Callable[[str], None] | None = None) -> PgIndexWriter:
    from rag_qa.store.pg.writer import PgIndexWriter

    return PgIndexWriter(index, settings, timeout=settings.lock_timeout_s, log=log)


def index_exists(index: Path, settings: Settings) -> bool:
    from rag_qa.store.pg.schema import connect, read_meta, require_dsn, schema_name

    with connect(require_dsn(settings)) as conn:
        return read_meta(conn, schema_name(index)) is not None
