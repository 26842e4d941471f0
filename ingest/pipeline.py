"""Incremental ingestion: what the CLI and the UI call to add, update and remove documents.

A file whose sha256 is already in the index is left alone (the store carries its chunks and
vectors over, and the embedding model is not even loaded when nothing changed).  New or changed
files are loaded, chunked and embedded; files gone from a folder being re-ingested, and ``remove``
paths, are dropped.  A file that could not be read is remembered by its sha256
(:mod:`ingest.failures`): while it is unchanged it is reported again with the same error without
being parsed.  Everything goes through the store's writer protocol
(:class:`~rag_qa.store.base.StoreWriter`): under the index's write lock, one ``commit_changes``
(a new FAISS version switched in atomically, or one PostgreSQL transaction with
``RAGQA_STORE=pgvector``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ingest.chunking import chunk_document, load_tokenizer, make_splitter
from ingest.discovery import discover
from ingest.document import LoadedDocument
from ingest.errors import IngestUsageError, LoadError, WorkerStartError, unexpected_error
from ingest.failures import FailureMemory
from ingest.report import IngestReport
from ingest.worker import ParserWorker
from rag_qa.config import Settings, get_settings
from rag_qa.embeddings import SentenceTransformerEmbeddings
from rag_qa.store import open_writer
from rag_qa.store.base import (
    ChunkRow,
    DocumentRow,
    PreviousIndex,
    StoreWriter,
    canonical_model_name,
    require_embedding_model,
)

ProgressFn = Callable[[int, int, str], None]
EMBED_GROUP = 256  # chunks per progress update while embedding


def make_embeddings(settings: Settings) -> SentenceTransformerEmbeddings:
    """The embedder for new chunks (a seam: tests check it is not called when nothing changed)."""
    return SentenceTransformerEmbeddings(settings=settings)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _under(source: str, folder: Path) -> bool:
    return Path(source).is_relative_to(folder)


def _family(document: LoadedDocument) -> list[LoadedDocument]:
    """``document`` and its attachments, theirs too, in order."""
    out = [document]
    for attachment in document.attachments:
        out.extend(_family(attachment))
    return out


def _belongs(source: str, files: set[str]) -> bool:
    """True when ``source`` is one of ``files`` or an attachment inside one (``mail.eml/report.pdf``)."""
    return source in files or any(str(parent) in files for parent in Path(source).parents)


class _Run:
    """State of one ingest run inside the write lock."""

    def __init__(self, settings: Settings, report: IngestReport, progress: ProgressFn | None,
                 note: Callable[[str], None]) -> None:
        self.settings = settings
        self.report = report
        self.progress = progress or (lambda done, total, desc: None)
        self.note = note
        self.new_rows: list[ChunkRow] = []
        self.new_docs: list[DocumentRow] = []
        self.unreadable: list[tuple[Path, str, str]] = []  # (path, sha256, error) of files the parser refused
        self.loaded: set[str] = set()  # the files read in this run (their attachments are not in it)

    def fail(self, path: Path | str, error: str) -> None:
        self.report.failed.append({"path": str(path), "error": error})

    def load_and_chunk(self, todo: list[tuple[Path, str]], previous: dict[str, DocumentRow]) -> None:
        """Load and chunk each new or changed file; a bad file is recorded and skipped.

        A mail's readable attachments come back as documents of their own (``mail.eml/name``),
        stored with the mail's hash; its unreadable ones are failed lines and its unsupported
        ones are listed as skipped.
        """
        if not todo:
            return
        splitter = make_splitter(load_tokenizer(self.settings.embedding_model),
                                 self.settings.chunk_tokens, self.settings.chunk_overlap)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with ParserWorker(self.settings) as parser:  # parsers run with a time limit and a memory cap
            for i, (path, sha) in enumerate(todo):
                self.progress(i, len(todo), f"reading {path.name}")

                def pages(done: int, total: int, name: str = path.name) -> None:
                    self.progress(done, total, f"ocr {name}")

                try:
                    stat = path.stat()
                    document = parser.load(path, pages)
                    loaded = [(doc, chunk_document(doc, splitter)) for doc in _family(document)]
                except WorkerStartError as exc:  # not the file's fault: not remembered
                    self.fail(path, str(exc))
                    continue
                except LoadError as exc:
                    self.fail(path, str(exc))
                    self.unreadable.append((path, sha, str(exc)))
                    continue
                except OSError as exc:
                    self.fail(path, f"cannot read: {exc.strerror or exc}")
                    continue
                except Exception as exc:  # one odd file must not stop the others
                    self.fail(path, unexpected_error(exc))
                    continue
                self.loaded.add(str(path))
                for doc, rows in loaded:
                    (self.report.updated if doc.source in previous else self.report.added).append(doc.source)
                    self.new_rows.extend(rows)
                    self.new_docs.append(DocumentRow(doc.source, sha, stat.st_mtime, stat.st_size, doc.type,
                                                     doc.pages, len(rows), now))
                    for note in doc.notes:
                        self.report.file_notes.append({"path": doc.source, "note": note})
                        self.note(f"{doc.source}: {note}")
                    for source, error in doc.failed:
                        self.fail(source, error)
                    self.report.skipped.extend(doc.skipped)
        self.progress(len(todo), len(todo), "reading")

    def embed(self, embeddings: SentenceTransformerEmbeddings) -> np.ndarray:
        """Embed the new chunks in groups (for progress), longest-first across all groups so
        every batch pads to similar lengths, and return the vectors in chunk order."""
        texts = [row.text for row in self.new_rows]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = np.zeros((len(texts), embeddings.dimension), dtype="float32")
        for start in range(0, len(texts), EMBED_GROUP):
            self.progress(start, len(texts), "embedding")
            group = order[start:start + EMBED_GROUP]
            vectors[group] = embeddings.embed_array([texts[i] for i in group])
        self.progress(len(texts), len(texts), "embedding")
        self.report.embedded_chunks = len(texts)
        return vectors


def _removals(previous: dict[str, DocumentRow], folders: Sequence[Path], present: set[str],
              remove: Iterable[str | Path], note: Callable[[str], None]) -> set[str]:
    """Sources to drop: gone from a folder being re-ingested, or named in ``remove``."""
    gone = {s for s in previous for folder in folders if _under(s, folder) and not _belongs(s, present)}
    for raw in remove:
        target = Path(raw).expanduser().resolve()
        matched = {s for s in previous if s == str(target) or _under(s, target)}
        if not matched:
            note(f"--remove {raw}: nothing in the index at or under {target}")
        gone |= matched
    return gone


def ingest_paths(paths: Sequence[str | Path], index_dir: str | Path | None = None, *, rebuild: bool = False,
                 remove: Iterable[str | Path] = (), settings: Settings | None = None,
                 progress: ProgressFn | None = None,
                 log: Callable[[str], None] | None = None) -> IngestReport:
    """Bring the index at ``index_dir`` up to date with ``paths``; see the module docstring.

    ``progress(done, total, desc)`` is called as files are read and chunks embedded; ``log``
    gets housekeeping messages (also kept in ``report.notes``).  Raises
    :class:`IngestUsageError` for a bad request and ``EmbeddingMismatchError`` when the index
    was built with another embedding model (unless ``rebuild``).
    """
    started = time.perf_counter()
    settings = settings or get_settings()
    remove = list(remove)
    if not paths and not remove:
        raise IngestUsageError("nothing to do: give files or folders to ingest, or --remove PATH")
    index = Path(index_dir if index_dir is not None else settings.index).expanduser().resolve()
    if index.exists() and not index.is_dir():
        raise IngestUsageError(f"index path is not a directory: {index}")
    found = discover(list(paths))
    model = canonical_model_name(settings.embedding_model)
    report = IngestReport(index=str(index), skipped=[str(p) for p in found.skipped])

    def note(message: str) -> None:
        report.notes.append(message)
        if log is not None:
            log(message)

    run = _Run(settings, report, progress, note)
    for path, error in found.failed:
        run.fail(path, error)

    with open_writer(index, settings, log=note) as writer:
        previous = writer.previous()
        try:
            if paths and not rebuild and previous is not None:
                require_embedding_model(model, index, previous.info.embedding_model, previous.info.dimension)
            known = previous.documents if previous is not None and not rebuild else {}
            memory = FailureMemory(settings, writer.read_failures(), forget=rebuild)
            todo: list[tuple[Path, str]] = []
            for path in found.files:
                try:
                    sha = _sha256(path)
                except OSError as exc:
                    run.fail(path, f"cannot read: {exc.strerror or exc}")
                    continue
                memory.seen(path, sha)
                if str(path) in known and known[str(path)].sha256 == sha:
                    report.unchanged.append(str(path))
                elif (error := memory.error(path, sha)) is not None:  # failed before, unchanged: not parsed again
                    run.fail(path, error)
                else:
                    todo.append((path, sha))
            removed = _removals(known, found.folders, {str(f) for f in found.files}, remove, note)
            run.load_and_chunk(todo, known)
            # attachments that a re-read mail no longer has
            new_sources = {d.source for d in run.new_docs}
            removed |= {s for s in known if _belongs(s, run.loaded) and s not in new_sources}
            report.removed = sorted(removed)
            if previous is not None and not rebuild and not (report.added or report.updated or removed):
                # nothing changed (at most some files failed): the live version stays as it is
                report.documents, report.chunks = len(known), previous.info.chunks
                report.version = previous.info.version
            else:
                _write(writer, run, previous, known, removed, model)
            for path, sha, error in run.unreadable:
                memory.remember(path, sha, error)
            if memory.changed:
                writer.write_failures(memory.data())
        finally:
            if previous is not None:
                previous.close()
    report.seconds = time.perf_counter() - started
    return report


def _write(writer: StoreWriter, run: _Run, previous: PreviousIndex | None, known: dict[str, DocumentRow],
           removed: set[str], model: str) -> None:
    """Embed the new chunks and commit them with the unchanged ones (the store carries those over)."""
    report, settings = run.report, run.settings
    # a file read again replaces its old version and old attachments; one that failed keeps them
    kept_sources = [s for s in known if s not in removed and not _belongs(s, run.loaded)]
    if run.new_rows:
        embeddings = make_embeddings(settings)
        vectors = run.embed(embeddings)
        dimension = embeddings.dimension
    elif previous is not None and previous.info.embedding_model == model:
        dimension = previous.info.dimension
        vectors = np.zeros((0, dimension), dtype="float32")
    else:  # an empty first version: only the model knows its dimension
        dimension = make_embeddings(settings).dimension
        vectors = np.zeros((0, dimension), dtype="float32")
    chunking = {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap}
    run.progress(0, 1, "writing index")
    committed = writer.commit_changes(kept_sources, run.new_rows, vectors, run.new_docs, model, dimension, chunking)
    run.progress(1, 1, "writing index")
    report.version, report.documents, report.chunks = committed.version, committed.documents, committed.chunks


def remove_sources(sources: Iterable[str | Path], index_dir: str | Path | None = None, *,
                   settings: Settings | None = None, progress: ProgressFn | None = None) -> IngestReport:
    """Drop ``sources`` (files, or folders meaning everything under them) from the index."""
    return ingest_paths([], index_dir, remove=list(sources), settings=settings, progress=progress)
