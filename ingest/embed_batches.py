"""Embed chunks as they arrive, in batches of similar length, longest first.

A transformer batch is padded to its longest text, so mixing a 10-token chunk with a 256-token one
costs the short one 246 tokens of work.  :class:`LengthSortedEmbedder` keeps the chunks waiting
for the embedder in a heap by length and embeds the ``batch_size`` longest of them at a time: when
parsing is faster than embedding (plain text) nearly everything waits and the order is the global
longest-first one a single ``encode`` call would use; when parsing is slow (PDFs, OCR) the embedder
takes what there is rather than idling.  Vectors come back in the order the chunks were added.

Chunks that come with their token ids (the parser worker tokenises each chunk once) are measured
in tokens, exactly what a batch pads to, and embedded from those ids
(:meth:`~rag_qa.embeddings.SentenceTransformerEmbeddings.embed_token_ids`); without ids, in characters.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class ArrayEmbedder(Protocol):
    """What this module needs from :class:`rag_qa.embeddings.SentenceTransformerEmbeddings`."""

    batch_size: int

    @property
    def dimension(self) -> int: ...

    def embed_array(self, texts: list[str]) -> np.ndarray: ...

    # and, optionally, ``embed_token_ids(ids, texts) -> np.ndarray`` (the same vectors from token ids)


class LengthSortedEmbedder:
    """Collects texts (:meth:`add`), embeds the longest waiting batch on :meth:`embed_next`."""

    def __init__(self, embeddings: ArrayEmbedder, batch_size: int | None = None) -> None:
        self.embeddings = embeddings
        self.batch_size = max(1, batch_size or embeddings.batch_size)
        self._waiting: list[tuple[int, int]] = []  # (-length, index): a min-heap of the longest first
        self._texts: list[str] = []
        self._ids: dict[int, Any] = {}  # index -> token ids, while the text waits
        self._done: list[tuple[list[int], np.ndarray]] = []
        self.embedded = 0
        self.seconds = 0.0  # time spent inside the model (the rest of the run overlaps it)

    @property
    def added(self) -> int:
        return len(self._texts)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def add(self, texts: list[str], ids: Sequence[Any] | None = None) -> None:
        """Queue ``texts`` (with their token ids, when known: then their length is counted in tokens)."""
        for n, text in enumerate(texts):
            index = len(self._texts)
            if ids is not None:
                self._ids[index] = ids[n]
            heapq.heappush(self._waiting, (-(len(ids[n]) if ids is not None else len(text)), index))
            self._texts.append(text)

    def full_batch(self) -> bool:
        """True when a whole batch waits (embed now rather than wait for more chunks)."""
        return len(self._waiting) >= self.batch_size

    def embed_next(self) -> int:
        """Embed the longest waiting batch (at most ``batch_size`` texts); returns how many."""
        take = [heapq.heappop(self._waiting)[1] for _ in range(min(self.batch_size, len(self._waiting)))]
        if not take:
            return 0
        started = time.perf_counter()
        texts = [self._texts[i] for i in take]
        by_ids = getattr(self.embeddings, "embed_token_ids", None)
        if by_ids is not None and all(i in self._ids for i in take):
            vectors = by_ids([self._ids.pop(i) for i in take], texts)
        else:
            vectors = self.embeddings.embed_array(texts)
            for i in take:
                self._ids.pop(i, None)
        self.seconds += time.perf_counter() - started
        self._done.append((take, vectors))
        self.embedded += len(take)
        return len(take)

    def vectors(self) -> np.ndarray:
        """Every added text's vector, in the order added (embeds whatever still waits)."""
        while self._waiting:
            self.embed_next()
        if not self._texts:
            return np.zeros((0, self.embeddings.dimension), dtype="float32")
        out = np.zeros((len(self._texts), self.embeddings.dimension), dtype="float32")
        for indices, vectors in self._done:
            out[indices] = vectors
        return out
