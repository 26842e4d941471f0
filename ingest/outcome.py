"""What happened to one file of an ingest: the shape every executor hands to the commit step.

An executor (one machine: :mod:`ingest.local_executor`; a Ray cluster: :mod:`ingest.ray_pipeline`)
reads, chunks and embeds the files a plan lists and yields one :class:`FileOutcome` per file: its
documents (the file itself and, for a mail, its readable attachments) with their chunks and the
chunks' vectors, or the one-line error that stopped it.  The commit step (:mod:`ingest.commit`)
writes outcomes into the index and fills the report from them the same way whichever executor made
them, so the two engines cannot drift apart in what they record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag_qa.store.base import ChunkRow


@dataclass
class ReadDocument:
    """One document of a file's family as read and chunked (a mail's attachment is one of its own)."""

    source: str
    type: str
    pages: int | None
    rows: list[ChunkRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one-line remarks for the report (pages OCRed, ...)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (attachment source, one-line error)
    skipped: list[str] = field(default_factory=list)  # attachments of types that are not read
    # each row's token ids as the encoder takes them (computed where the file was chunked); the
    # executor drops them once the rows are embedded
    token_ids: list[np.ndarray] | None = None


@dataclass
class FileOutcome:
    """One file read (``documents``, their chunks' ``vectors`` once embedded) or refused (``error``)."""

    position: int  # the file's place in the plan's list of files to read
    path: Path
    sha: str
    mtime: float = 0.0
    size: int = 0
    documents: list[ReadDocument] = field(default_factory=list)
    error: str | None = None
    remember: bool = False  # the error is the file's own fault (remembered by content hash)
    vectors: np.ndarray | None = None  # one row per chunk of ``rows``, in that order
    parse_s: float = 0.0
    chunk_s: float = 0.0

    @property
    def rows(self) -> list[ChunkRow]:
        """Every chunk of the file's documents, in document order."""
        return [row for doc in self.documents for row in doc.rows]

    @property
    def chunk_count(self) -> int:
        return sum(len(doc.rows) for doc in self.documents)
