"""The one code path from a question to an answer, shared by the CLI, the UI and the benchmarks.

:class:`QAService` owns the opened index (any store, through the reader protocol), the embedding
model and its readers, all built from the service's own settings; answers come from the LCEL
chain in :mod:`rag_qa.chain`, built in one place (:meth:`QAService.chain`).  After an ingest
writes a new index version the next call sees it (the store is re-opened when ``CURRENT``
moves, or the pgvector store's version changes); a store being read when it is replaced stays open
until that read is done (:class:`LiveStore`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable

from rag_qa.chain import build_chain
from rag_qa.condense import clean_history
from rag_qa.config import Settings, get_settings
from rag_qa.readers.base import Reader
from rag_qa.readers.registry import get_reader
from rag_qa.retrieval import make_retriever, passages
from rag_qa.store import StoreReader, open_store
from rag_qa.store.base import DocumentInfo
from rag_qa.types import Answer, Passage


class EmptyQuestionError(ValueError):
    pass


#: a conversation as the UI and the API hold it: ``[{"role": "user" | "assistant", "content": str}, ...]``
History = Sequence[Mapping[str, str]]


class LiveStore:
    """The service's index as a :class:`StoreReader` that reads the live version on every call.

    Each call leases the store it reads from the service, so an ingest that switches versions while a
    question is under way (a follow-up being condensed, another user's upload) never closes a store under
    a retriever: the replaced store is closed by its last user.  ``close`` is the service's business."""

    def __init__(self, service: QAService) -> None:
        self._service = service
        self.path = service.index

    def _read(self, name: str) -> Any:
        with self._service.lease() as store:
            return getattr(store, name)

    @property
    def embedding_model(self) -> str:
        return self._read("embedding_model")

    @property
    def dimension(self) -> int:
        return self._read("dimension")

    @property
    def version(self) -> int:
        return self._read("version")

    @property
    def chunk_count(self) -> int:
        return self._read("chunk_count")

    def is_current(self) -> bool:
        return True  # every call reads the live version

    def check_embedding_model(self, name: str) -> None:
        with self._service.lease() as store:
            store.check_embedding_model(name)

    def search_dense(self, vector: np.ndarray, k: int) -> list[Passage]:
        with self._service.lease() as store:
            return store.search_dense(vector, k)

    def search_bm25(self, query: str, k: int) -> list[Passage]:
        with self._service.lease() as store:
            return store.search_bm25(query, k)

    def get_passages(self, chunk_ids: Sequence[str]) -> list[Passage]:
        with self._service.lease() as store:
            return store.get_passages(chunk_ids)

    def all_chunk_ids(self) -> list[str]:
        with self._service.lease() as store:
            return store.all_chunk_ids()

    def documents(self) -> list[DocumentInfo]:
        with self._service.lease() as store:
            return store.documents()

    def close(self) -> None:
        pass

    def __enter__(self) -> LiveStore:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class QAService:
    """Ask and search over one index with any registered reader."""

    def __init__(self, index: str | Path | None = None, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.index = Path(index or self.settings.index)
        self._store: StoreReader | None = None
        self._leases: dict[int, int] = {}  # id(store) -> calls reading it now
        self._embeddings = None
        self._lock = threading.Lock()
        self._live = LiveStore(self)

    # ------------------------------------------------------------------ resources
    @property
    def store(self) -> StoreReader:
        """The index, read at its live version on every call (re-opened once an ingest committed a newer one)."""
        return self._live

    @contextmanager
    def lease(self) -> Iterator[StoreReader]:
        """The live store, kept open until the block ends even if a newer version replaces it meanwhile."""
        with self._lock:
            if self._store is None or not self._store.is_current():
                fresh = open_store(self.index, self.settings, embedding_model=self.settings.embedding_model)
                old, self._store = self._store, fresh
                if old is not None and id(old) not in self._leases:
                    old.close()  # else its last user closes it
            store = self._store
            self._leases[id(store)] = self._leases.get(id(store), 0) + 1
        try:
            yield store
        finally:
            with self._lock:
                left = self._leases.pop(id(store)) - 1
                if left:
                    self._leases[id(store)] = left
                elif store is not self._store:
                    store.close()

    @property
    def embeddings(self):
        if self._embeddings is None:
            from rag_qa.embeddings import SentenceTransformerEmbeddings

            self._embeddings = SentenceTransformerEmbeddings(self.store.embedding_model, settings=self.settings)
        return self._embeddings

    def retriever(self, mode: str | None = None, top_k: int | None = None) -> BaseRetriever:
        return make_retriever(
            self.store, self.embeddings.embed_query, mode or self.settings.mode,
            self.settings.top_k if top_k is None else top_k,
        )

    def reader(self, name: str | None = None) -> Reader:
        """The reader ``name`` (default: the settings' reader) built from this service's settings."""
        return get_reader(name or self.settings.reader, self.settings)

    def chain(self, reader: str | None = None, mode: str | None = None, top_k: int | None = None) -> Runnable:
        """``question -> Answer`` over this index: the index is opened first (a missing one fails fast)
        and the reader's weights load before any question's clock starts."""
        retriever = self.retriever(mode, top_k)
        chosen = self.reader(reader)
        chosen.warm_up()
        return build_chain(retriever, chosen)

    # ------------------------------------------------------------------ use
    def search(self, query: str, mode: str | None = None, top_k: int | None = None) -> list[Passage]:
        _check(query)
        return passages(self.retriever(mode, top_k).invoke(query))

    def ask(self, question: str, reader: str | None = None, mode: str | None = None,
            top_k: int | None = None, history: History | None = None) -> Answer:
        """The answer to ``question``; with ``history`` (the conversation so far, oldest first) a follow-up
        is made standalone first and the answer says what was searched for (``searched_for``)."""
        _check(question)
        return self.chain(reader, mode, top_k).invoke(_turn(question, history))

    def ask_batch(self, questions: list[str], reader: str | None = None, mode: str | None = None,
                  top_k: int | None = None) -> list[Answer]:
        for q in questions:
            _check(q)
        return self.chain(reader, mode, top_k).batch(questions)

    def stream(self, question: str, reader: str | None = None, mode: str | None = None,
               top_k: int | None = None, history: History | None = None) -> Iterator[str | Answer]:
        """Answer text pieces, then the :class:`Answer` (``history`` as in :meth:`ask`)."""
        _check(question)
        turn = _turn(question, history)  # a bad history fails here, before the first piece
        yield from self.chain(reader, mode, top_k).stream(turn)


def _turn(question: str, history: History | None) -> str | dict:
    """The chain's input: the question alone, or with the (checked, capped) conversation."""
    if history is None:
        return question
    return {"input": question, "chat_history": clean_history(history)}


def _check(text: str) -> None:
    if not text or not text.strip():
        raise EmptyQuestionError("the question is empty; ask something, e.g. rag_qa ask \"Who founded Mozilla?\"")
