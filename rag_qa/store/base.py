"""What every index store shares: the reader and writer protocols, the rows they hold, the errors
and the checks that do not depend on where the chunks live.

Backends (:mod:`rag_qa.store.faiss`, :mod:`rag_qa.store.pg`) import this module and nothing of
each other; everything above the store (retrievers, service, ingest, UI) is typed against
:class:`StoreReader` and :class:`StoreWriter` and gets its store from the factory in
:mod:`rag_qa.store`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag_qa.models import resolve_model
from rag_qa.types import Passage

# ---------------------------------------------------------------------------- errors


class IndexStoreError(RuntimeError):
    """Base class; the message is one actionable line for the user."""


class IndexNotFoundError(IndexStoreError):
    def __init__(self, path: Path | str) -> None:
        super().__init__(f"no index at {path}; run `python -m ingest PATH...` first")


class IndexCorruptError(IndexStoreError):
    """The live version is missing files or has an unknown format."""


class EmbeddingMismatchError(IndexStoreError):
    """The index was built with another embedding model than the one asked for."""


class IndexLockedError(IndexStoreError):
    """Another writer held the index lock for longer than the timeout."""


# ---------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class ChunkRow:
    """One chunk as stored: ``text == document_text[start:end]``.

    ``page`` is the number of the part it lies in and ``unit`` what that number counts (page,
    slide, row, chapter); ``section`` names the sheet or chapter; ``ocr`` says the text was read
    from a picture.  Indexes written before these three existed read back as None/None/False.
    """

    id: str
    source: str
    page: int | None
    start: int
    end: int
    text: str
    unit: str | None = None
    section: str | None = None
    ocr: bool = False

    def to_passage(self, score: float = 0.0) -> Passage:
        return Passage(text=self.text, source=self.source, page=self.page, start=self.start,
                       end=self.end, score=score, chunk_id=self.id, unit=self.unit, section=self.section,
                       ocr=self.ocr)


@dataclass(frozen=True)
class DocumentRow:
    """A source file in the index; ``sha256`` decides whether it needs re-embedding."""

    source: str
    sha256: str
    mtime: float
    size: int
    type: str
    pages: int | None
    n_chunks: int
    added_at: str


@dataclass(frozen=True)
class DocumentInfo:
    """One indexed file, as the UI lists it."""

    source: str
    type: str
    pages: int | None
    chunks: int
    added_at: str


@dataclass(frozen=True)
class IndexInfo:
    """What a committed index was built with and holds (from a FAISS manifest or a pg ``meta`` row)."""

    embedding_model: str
    dimension: int
    version: int
    chunks: int

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> IndexInfo:
        return cls(str(record["embedding_model"]), int(record["dimension"]), int(record["version"]),
                   int(record["chunks"]))


@dataclass(frozen=True)
class Committed:
    """What a writer's :meth:`StoreWriter.commit_changes` made live."""

    version: int
    documents: int
    chunks: int


# ---------------------------------------------------------------------------- protocols


@runtime_checkable
class StoreReader(Protocol):
    """What readers of an index use (retrievers, the service, the UI)."""

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

    def __enter__(self) -> StoreReader: ...

    def __exit__(self, *exc: object) -> None: ...


class PreviousIndex(Protocol):
    """The committed index as a writer sees it before an ingest changes it."""

    info: IndexInfo
    documents: dict[str, DocumentRow]

    def close(self) -> None: ...


class StoreWriter(Protocol):
    """What the ingest pipeline writes through: a context manager holding the index's write lock.

    ``commit_changes`` makes the index hold the chunks of ``kept_sources`` (already stored) plus
    the new ``chunks``/``vectors``/``new_documents``; each backend carries the kept ones over its
    own way (a FAISS version copies them, PostgreSQL leaves their rows in place).  The failure
    memory is a small JSON object the pipeline keeps beside the index (which files could not be
    read, by content hash) so that an unchanged bad file is not parsed again.
    """

    path: Path

    def __enter__(self) -> StoreWriter: ...

    def __exit__(self, *exc: object) -> None: ...

    def previous(self) -> PreviousIndex | None: ...

    def commit_changes(self, kept_sources: Sequence[str], chunks: Sequence[ChunkRow], vectors: np.ndarray,
                       new_documents: Sequence[DocumentRow], embedding_model: str, dimension: int,
                       chunking: dict[str, Any] | None = None) -> Committed: ...

    def read_failures(self) -> dict[str, Any]: ...

    def write_failures(self, data: dict[str, Any]) -> None: ...


@runtime_checkable
class PieceWriter(Protocol):
    """A :class:`StoreWriter` that also takes one ingest as many small transactions (a cluster ingest
    streams documents in as they are embedded; see :meth:`rag_qa.store.pg.writer.PgIndexWriter.replace_documents`).

    Each ``replace_documents`` call is atomic: readers see a document's old chunks or its new ones,
    never a mix, and a crashed run can simply be repeated.  ``staging=True`` calls build a
    separate copy that ``publish_staging`` switches in at once (a rebuild that leaves the live
    index untouched until it is complete).  The FAISS store does not have this: one machine, one
    version folder per ingest.
    """

    def replace_documents(self, removed_sources: Sequence[str], chunks: Sequence[ChunkRow], vectors: np.ndarray,
                          new_documents: Sequence[DocumentRow], embedding_model: str, dimension: int,
                          chunking: dict[str, Any] | None = None, *, staging: bool = False) -> Committed: ...

    def publish_staging(self) -> Committed: ...

    def drop_staging(self) -> None: ...


# ---------------------------------------------------------------------------- shared checks


def canonical_model_name(name: str) -> str:
    """The name an index records for an embedding model (aliases collapse to one name)."""
    return resolve_model(name, kind="embedding model").name


def require_embedding_model(name: str, path: Path, built_with: str, dimension: int, where: str = "") -> None:
    """Raise :class:`EmbeddingMismatchError` unless ``name`` is ``built_with`` (any store's check)."""
    wanted = canonical_model_name(name)
    if wanted != built_with:
        raise EmbeddingMismatchError(
            f"index {path}{where} was built with embedding model '{built_with}' ({dimension}-d), not "
            f"'{wanted}'; set RAGQA_EMBEDDING_MODEL={built_with} or rebuild the index with "
            "`python -m ingest --rebuild PATH...`"
        )


def require_dimension(path: Path, stored: int, given: int) -> None:
    """Raise :class:`EmbeddingMismatchError` when new vectors would not fit the index's kept ones."""
    if stored != given:
        raise EmbeddingMismatchError(f"index {path} holds {stored}-d vectors, the embedding model gives "
                                     f"{given}-d; use --rebuild")


def query_vector(vector: np.ndarray, path: Path, dimension: int, model: str) -> np.ndarray:
    """``vector`` as a flat float32 array, or :class:`EmbeddingMismatchError` if its size is not the index's."""
    query = np.asarray(vector, dtype="float32").reshape(-1)
    if query.shape[0] != dimension:
        raise EmbeddingMismatchError(
            f"query vector has {query.shape[0]} dimensions, index {path} has {dimension} (model '{model}')"
        )
    return query


def as_matrix(vectors: np.ndarray, rows: int, dimension: int) -> np.ndarray:
    """``vectors`` as a contiguous float32 ``(rows, dimension)`` array, or ``ValueError`` if the counts differ."""
    matrix = np.ascontiguousarray(vectors, dtype="float32").reshape(-1, dimension)
    if matrix.shape[0] != rows:
        raise ValueError(f"{rows} chunks but {matrix.shape[0]} vectors")
    return matrix
