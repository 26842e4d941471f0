"""Read side of a FAISS index: :class:`FaissStore` opens the live version and answers searches.

Dense search is FAISS inner product over normalised vectors, lexical search is BM25; both
return :class:`~rag_qa.types.Passage` objects with their text, source, page and offsets.
Writing new versions is :mod:`rag_qa.store.faiss.writer`'s job; the layout is in
:mod:`rag_qa.store.faiss.layout`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag_qa.store.base import (
    DocumentInfo,
    IndexCorruptError,
    IndexNotFoundError,
    query_vector,
    require_embedding_model,
)
from rag_qa.store.faiss import docstore
from rag_qa.store.faiss.layout import BM25_DIR, DOCSTORE_FILE, FAISS_FILE, MANIFEST_FILE, Manifest, current_version_dir
from rag_qa.types import Passage

if TYPE_CHECKING:
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings

    from rag_qa.store.faiss.bm25 import BM25Index


@contextmanager
def _one_omp_thread() -> Iterator[None]:
    """Run a FAISS call on one OpenMP thread, then restore the count.

    One query needs no threads, and a parallel region on busy cores waits for its slowest
    thread: a 2,000-vector search took 16 ms instead of 0.2 ms while other work shared the 2
    cores.  FAISS and torch share the OpenMP runtime, and the thread count is per calling thread,
    so setting it for good would also leave torch (the reader) on one thread.
    """
    import faiss

    saved = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(saved)


class FaissStore:
    """Read-only view of the version ``CURRENT`` pointed at when :meth:`open` was called."""

    def __init__(self, path: Path, version_dir: Path, manifest: Manifest) -> None:
        import faiss

        self.path = path
        self.version_dir = version_dir
        self.manifest = manifest
        self._con = docstore.connect_readonly(version_dir / DOCSTORE_FILE)
        self._faiss = faiss.read_index(str(version_dir / FAISS_FILE))
        self._bm25: BM25Index | None = None
        self._bm25_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path, embedding_model: str | None = None) -> FaissStore:
        """Open the live version of the index at ``path``.

        With ``embedding_model``, refuse (:class:`EmbeddingMismatchError`) an index built with
        another model.
        """
        path = Path(path)
        version_dir = current_version_dir(path)
        if version_dir is None:
            raise IndexNotFoundError(path)
        if not version_dir.is_dir():
            raise IndexCorruptError(f"index {path}: CURRENT points at missing version {version_dir.name}; "
                                    "re-run `python -m ingest --rebuild PATH...`")
        manifest = Manifest.read(version_dir / MANIFEST_FILE)
        try:
            store = cls(path, version_dir, manifest)
        except (FileNotFoundError, RuntimeError) as exc:
            raise IndexCorruptError(f"index {path} version {version_dir.name} is incomplete: {exc}") from exc
        if embedding_model is not None:
            store.check_embedding_model(embedding_model)
        return store

    # -- what the index is --------------------------------------------------------------
    @property
    def embedding_model(self) -> str:
        return self.manifest.embedding_model

    @property
    def dimension(self) -> int:
        return self.manifest.dimension

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def chunk_count(self) -> int:
        return int(self._faiss.ntotal)

    def is_current(self) -> bool:
        """False once an ingest has switched ``CURRENT`` to a newer version (the service then re-opens)."""
        return current_version_dir(self.path) == self.version_dir

    def check_embedding_model(self, name: str) -> None:
        """Raise :class:`EmbeddingMismatchError` unless ``name`` is the model the index was built with."""
        require_embedding_model(name, self.path, self.embedding_model, self.dimension)

    # -- searching ----------------------------------------------------------------------
    def search_dense(self, vector: np.ndarray, k: int) -> list[Passage]:
        """The ``k`` chunks with the highest inner product with ``vector`` (score = inner product)."""
        query = query_vector(vector, self.path, self.dimension, self.embedding_model).reshape(1, -1)
        if k <= 0 or self.chunk_count == 0:
            return []
        with _one_omp_thread():
            scores, ids = self._faiss.search(np.ascontiguousarray(query), min(k, self.chunk_count))
        hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        rows = docstore.chunks_by_faiss_ids(self._con, [i for i, _ in hits])
        return [rows[i].to_passage(score) for i, score in hits if i in rows]

    def search_bm25(self, query: str, k: int) -> list[Passage]:
        """The ``k`` chunks with the highest BM25 score for ``query`` (only chunks sharing a term)."""
        index = self._bm25_index()
        if index is None:
            return []
        hits = index.search(query, k)
        rows = docstore.chunks_by_faiss_ids(self._con, [i for i, _ in hits])
        return [rows[i].to_passage(score) for i, score in hits if i in rows]

    def _bm25_index(self) -> BM25Index | None:
        with self._bm25_lock:
            if self._bm25 is None and self.chunk_count:
                from rag_qa.store.faiss.bm25 import BM25Index

                self._bm25 = BM25Index(self.version_dir / BM25_DIR)
            return self._bm25

    # -- reading ------------------------------------------------------------------------
    def get_passages(self, chunk_ids: Sequence[str]) -> list[Passage]:
        """Passages for ``chunk_ids`` in the order given (unknown ids are skipped)."""
        rows = docstore.chunks_by_ids(self._con, list(chunk_ids))
        return [rows[c].to_passage() for c in chunk_ids if c in rows]

    def all_chunk_ids(self) -> list[str]:
        return docstore.all_chunk_ids(self._con)

    def documents(self) -> list[DocumentInfo]:
        return [DocumentInfo(d.source, d.type, d.pages, d.n_chunks, d.added_at)
                for d in docstore.read_documents(self._con).values()]

    def as_langchain_faiss(self, embeddings: Embeddings) -> FAISS:
        """The same vectors and chunks as LangChain's in-memory ``FAISS`` vector store (nothing pickled)."""
        from langchain_community.docstore.in_memory import InMemoryDocstore
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy

        rows = docstore.chunks_by_faiss_ids(self._con, list(range(self.chunk_count)))
        docs: dict[str, Any] = {r.id: r.to_passage().to_document() for r in rows.values()}
        return FAISS(embedding_function=embeddings, index=self._faiss, docstore=InMemoryDocstore(docs),
                     index_to_docstore_id={i: r.id for i, r in rows.items()},
                     distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> FaissStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
