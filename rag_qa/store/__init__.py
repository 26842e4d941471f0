"""Index stores: one reader/writer protocol (:mod:`rag_qa.store.base`) and its backends.

``RAGQA_STORE`` picks the backend: ``faiss`` (:mod:`rag_qa.store.faiss`: a versioned folder of
FAISS + SQLite + BM25 files, the default) or ``pgvector`` (:mod:`rag_qa.store.pg`: a schema on a
PostgreSQL server).  The service, the retrievers, the UI and the ingest pipeline only see
:class:`~rag_qa.store.base.StoreReader` and :class:`~rag_qa.store.base.StoreWriter`, so switching
backend changes where the chunks live and nothing else.

A backend is a package with three functions, ``open_store(index, settings, embedding_model)``,
``open_writer(index, settings, log)`` and ``index_exists(index, settings)``; adding one (Qdrant,
Elasticsearch...) is that package plus one line in :data:`BACKENDS` (and its name in
``Settings.store``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from types import ModuleType

from rag_qa.config import Settings
from rag_qa.store.base import (
    EmbeddingMismatchError,
    IndexCorruptError,
    IndexLockedError,
    IndexNotFoundError,
    IndexStoreError,
    StoreReader,
    StoreWriter,
)

__all__ = [
    "BACKENDS", "EmbeddingMismatchError", "IndexCorruptError", "IndexLockedError", "IndexNotFoundError",
    "IndexStoreError", "StoreReader", "StoreWriter", "index_exists", "open_store", "open_writer",
]

#: ``Settings.store`` -> the package implementing it (imported on first use: psycopg only when asked for)
BACKENDS: dict[str, str] = {
    "faiss": "rag_qa.store.faiss",
    "pgvector": "rag_qa.store.pg",
}


def _backend(settings: Settings) -> ModuleType:
    return import_module(BACKENDS[settings.store])


def open_store(index: str | Path, settings: Settings, embedding_model: str | None = None) -> StoreReader:
    """Open the live version of ``index`` in the configured store.

    Raises :class:`IndexNotFoundError` when nothing was ingested there yet and, with
    ``embedding_model``, :class:`EmbeddingMismatchError` for an index built with another model.
    """
    return _backend(settings).open_store(Path(index), settings, embedding_model)


def open_writer(index: Path, settings: Settings, log: Callable[[str], None] | None = None) -> StoreWriter:
    """The writer (a context manager holding the index's write lock) for the configured store."""
    return _backend(settings).open_writer(Path(index), settings, log)


def index_exists(index: Path, settings: Settings) -> bool:
    """True when ``index`` has a committed version in the configured store."""
    return _backend(settings).index_exists(Path(index), settings)
