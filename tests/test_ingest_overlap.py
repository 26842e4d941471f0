"""Reading overlapped with embedding (issue 17): the parser pool and the length-sorted embedder.

Whatever the number of parser processes and whichever file finishes first, an ingest produces the
same chunks, vectors, failures and report order; the embedder always takes the longest waiting
batch and hands vectors back in the order the chunks were added.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from conftest import BAD, DOCS

from ingest.embed_batches import LengthSortedEmbedder
from ingest.parse_pool import default_processes
from ingest.pipeline import ingest_paths
from rag_qa.config import Settings
from rag_qa.store import open_store
from rag_qa.store.faiss.reader import FaissStore


class FakeEmbeddings:
    """A deterministic stand-in: a text's vector is (its length, its first character code, ...)."""

    batch_size = 3
    dimension = 2

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_array(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), ord(t[0])] for t in texts], dtype="float32")


def test_embedder_takes_the_longest_batch_and_returns_vectors_in_order() -> None:
    fake = FakeEmbeddings()
    embedder = LengthSortedEmbedder(fake)
    texts = ["a" * n for n in (5, 1, 9, 3)] + ["b" * n for n in (7, 2, 8)]
    embedder.add(texts[:4])
    assert embedder.full_batch()
    assert embedder.embed_next() == 3 and fake.calls[0] == ["a" * 9, "a" * 5, "a" * 3]
    embedder.add(texts[4:])
    vectors = embedder.vectors()
    assert fake.calls[1] == ["b" * 8, "b" * 7, "b" * 2] and fake.calls[2] == ["a"]
    assert vectors.tolist() == [[len(t), ord(t[0])] for t in texts]
    assert embedder.embedded == embedder.added == 7 and embedder.waiting == 0


def test_default_parse_processes() -> None:
    assert default_processes(3, 10) == 3 and default_processes(3, 2) == 2 and default_processes(0, 1) == 1
    assert 1 <= default_processes(0, 100) <= 4


def _index_contents(index: Path) -> dict[str, tuple]:
    with open_store(index, Settings()) as store:
        return {p.chunk_id: (p.source, p.page, p.start, p.end, p.text)
                for p in store.get_passages(store.all_chunk_ids())}


def test_two_parser_processes_give_the_same_index_as_one(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("normans_latin1.txt", "code-of-conduct.md", "oxygen.html", "packet_switching_2p.pdf"):
        shutil.copy(DOCS / name, folder / name)
    shutil.copy(BAD / "truncated.pdf", folder / "truncated.pdf")
    one = ingest_paths([folder], tmp_path / "one", settings=Settings(parse_processes=1))
    two = ingest_paths([folder], tmp_path / "two", settings=Settings(parse_processes=2))
    assert two.timings["parse_processes"] == 2
    assert (two.added, two.failed, two.chunks) == (one.added, one.failed, one.chunks)
    assert [Path(f["path"]).name for f in two.failed] == ["truncated.pdf"]
    assert _index_contents(tmp_path / "two") == _index_contents(tmp_path / "one")
    with FaissStore.open(tmp_path / "one") as a, FaissStore.open(tmp_path / "two") as b:
        query = np.ones(a.dimension, dtype="float32") / np.sqrt(a.dimension)
        hits_a, hits_b = a.search_dense(query, 50), b.search_dense(query, 50)
    assert [h.chunk_id for h in hits_a] == [h.chunk_id for h in hits_b]
    assert np.allclose([h.score for h in hits_a], [h.score for h in hits_b], atol=1e-5)
