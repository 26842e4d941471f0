"""Lexical BM25 index over chunk texts, persisted with bm25s (``.npy`` arrays + JSON, no pickle).

Row ``i`` of the BM25 index is the chunk with faiss id ``i``; queries and documents are
tokenised the same way (lower-case words, English stop words removed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

STOPWORDS = "en"


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords=STOPWORDS, return_ids=False, show_progress=False)


def build_bm25(texts: Sequence[str], directory: Path) -> None:
    """Index ``texts`` and save them into ``directory`` (created); nothing is written for no texts."""
    if not texts:
        return
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    retriever = bm25s.BM25()
    retriever.index(_tokenize(texts), show_progress=False)
    retriever.save(str(directory), allow_pickle=False, show_progress=False)


class BM25Index:
    """A loaded BM25 index: ``search`` returns (row, score) pairs with score > 0, best first."""

    def __init__(self, directory: Path) -> None:
        import bm25s

        self._retriever = bm25s.BM25.load(str(directory), allow_pickle=False, mmap=False,
                                          show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        tokens = [t for t in _tokenize([query])[0] if t in self._retriever.vocab_dict]
        if not tokens or k <= 0:
            return []
        scores = np.asarray(self._retriever.get_scores(tokens), dtype="float64")
        k = min(k, scores.shape[0])
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
