"""The default store: an index is a folder of versions, each FAISS + SQLite + BM25 files.

``layout`` (the folder, its manifest), ``docstore`` (SQLite chunks and documents), ``bm25``
(bm25s arrays), ``reader`` (:class:`~rag_qa.store.faiss.reader.FaissStore`, searches the live
version) and ``writer`` (:class:`~rag_qa.store.faiss.writer.FaissIndexWriter`, writes a new version
beside it and switches it in atomically).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag_qa.config import Settings
    from rag_qa.store.faiss.reader import FaissStore
    from rag_qa.store.faiss.writer import FaissIndexWriter


def open_store(index: Path, settings: Settings, embedding_model: str | None = None) -> FaissStore:
    from rag_qa.store.faiss.reader import FaissStore

    return FaissStore.open(index, embedding_model=embedding_model)


def open_writer(index: Path, settings: Settings, log: Callable[[str], None] | None = None) -> FaissIndexWriter:
    from rag_qa.store.faiss.writer import FaissIndexWriter

    return FaissIndexWriter(index, timeout=settings.lock_timeout_s, keep_versions=settings.keep_versions, log=log)


def index_exists(index: Path, settings: Settings) -> bool:
    from rag_qa.store.faiss.layout import current_version

    return index.is_dir() and current_version(index) is not None
