"""The one code path from a question to an answer, shared by the CLI, the UI and the benchmarks.

:class:`QAService` owns the opened index (any store, through the reader protocol), the embedding
model and its readers, all built from the service's own settings; answers come from the LCEL
chain in :mod:`rag_qa.chain`, built in one place (:meth:`QAService.chain`).  After an ingest
writes a new index version the next question sees it (the store is re-opened when ``CURRENT``
moves, or the pgvector store's version changes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable

from rag_qa.chain import build_chain
from rag_qa.condense import clean_history
from rag_qa.config import Settings, get_settings
from rag_qa.readers.base import Reader
from rag_qa.readers.registry import get_reader
from rag_qa.retrieval import make_retriever, passages
from rag_qa.store import StoreReader, open_store
from rag_qa.types import Answer, Passage


class EmptyQuestionError(ValueError):
    pass


#: a conversation as the UI and the API hold it: ``[{"role": "user" | "assistant", "content": str}, ...]``
History = Sequence[Mapping[str, str]]


class QAService:
    """Ask and search over one index with any registered reader."""

    def __init__(self, index: str | Path | None = None, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.index = Path(index or self.settings.index)
        self._store: StoreReader | None = None
        self._embeddings = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ resources
    @property
    def store(self) -> StoreReader:
        """The live index version (re-opened if an ingest committed a newer one since)."""
        with self._lock:
            if self._store is None or not self._store.is_current():
                fresh = open_store(self.index, self.settings, embedding_model=self.settings.embedding_model)
                old, self._store = self._store, fresh
                if old is not None:
                    old.close()
            return self._store

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
