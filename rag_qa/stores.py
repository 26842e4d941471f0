"""Which index store a setting selects: FAISS folders (default) or PostgreSQL + pgvector.

The service, the retrievers, the UI and the ingest pipeline only see the :class:`ReadableStore`
protocol and the writer :func:`open_writer` returns, so ``RAGQA_STORE=pgvector`` changes where
the chunks live and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag_qa.config import Settings
from rag_qa.types import Passage

if TYPE_CHECKING:
    from rag_qa.pg_writer import PgIndexWriter
    from rag_qa.store import DocumentInfo
    from rag_qa.store_writer import IndexWriter


class ReadableStore(Protocol):
    """What readers of an index use: both :class:`~rag_qa.store.IndexStore` and ``PgVectorStore`` have it."""

    path: Path

    @property
    def embedding_model(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def version(self) -> int: ...

    @property
    def chunk_count(self) -> int: ...

    def is_current(self) -> bool: ...

    def check_embedding_model(self, name: str) -> None: ...

    def search_dense(self, vector: np.ndarray, k: int) -> list[Passage]: ...

    def search_bm25(self, query: str, k: int) -> list[Passage]: ...

    def get_passages(self, chunk_ids: Sequence[str]) -> list[Passage]: ...

    def all_chunk_ids(self) -> list[str]: ...

    def documents(self) -> list[DocumentInfo]: ...

    def close(self) -> None: ...

    def __enter__(self) -> ReadableStore: ...

    def __exit__(self, *exc: object) -> None: ...


def open_store(index: str | Path, settings: Settings, embedding_model: str | None = None) -> ReadableStore:
    """Open the live version of ``index`` in the configured store (see ``IndexStore.open``)."""
    if settings.store == "pgvector":
        from rag_qa.pg_store import PgVectorStore

        return PgVectorStore.open(index, settings, embedding_model=embedding_model)
    from rag_qa.store import IndexStore

    return IndexStore.open(index, embedding_model=embedding_model)


def open_writer(index: Path, settings: Settings,
                log: Callable[[str], None] | None = None) -> IndexWriter | PgIndexWriter:
    """The writer (a context manager holding the index's write lock) for the configured store."""
    if settings.store == "pgvector":
        from rag_qa.pg_writer import PgIndexWriter

        return PgIndexWriter(index, settings, timeout=settings.lock_timeout_s, log=log)
    from rag_qa.store_writer import IndexWriter

    return IndexWriter(index, timeout=settings.lock_timeout_s, keep_versions=settings.keep_versions, log=log)


def index_exists(index: Path, settings: Settings) -> bool:
    """True when ``index`` has a committed version in the configured store."""
    if settings.store == "pgvector":
        from rag_qa.pg_schema import connect, read_meta, require_dsn, schema_name

        with connect(require_dsn(settings)) as conn:
            return read_meta(conn, schema_name(index)) is not None
    from rag_qa.index_layout import current_version

    return index.is_dir() and current_version(index) is not None
