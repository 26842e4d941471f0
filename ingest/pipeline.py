"""Incremental ingestion: what the CLI and the UI call to add, update and remove documents.

A file whose sha256 is already in the index is left alone (the store carries its chunks and
vectors over, and the embedding model is not even loaded when nothing changed).  New or changed
files are loaded, chunked and embedded; files gone from a folder being re-ingested, and ``remove``
paths, are dropped.  Reading overlaps embedding: a small pool of parser workers
(``RAGQA_PARSE_PROCESSES``) parses and chunks files while this process embeds the chunks already
made, longest first, with the model loaded once, beside the first parse.  A file that could not
be read is remembered by its sha256
(:mod:`ingest.failures`): while it is unchanged it is reported again with the same error without
being parsed.  Everything goes through the store's writer protocol
(:class:`~rag_qa.store.base.StoreWriter`): under the index's write lock, one ``commit_changes``
(a new FAISS version switched in atomically, or one PostgreSQL transaction with
``RAGQA_STORE=pgvector``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ingest.chunking import chunk_document, load_tokenizer, make_splitter
from ingest.discovery import discover
from ingest.embed_batches import LengthSortedEmbedder
from ingest.errors import IngestUsageError
from ingest.failures import FailureMemory
from ingest.parse_pool import Pages, Parsed, ParsePool, default_processes
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


def make_embeddings(settings: Settings) -> SentenceTransformerEmbeddings:
    """The embedder for new chunks (a seam: tests check it is not called when nothing changed)."""
    return SentenceTransformerEmbeddings(settings=settings)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _under(source: str, folder: Path) -> bool:
    return Path(source).is_relative_to(folder)


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
        self.vectors: np.ndarray | None = None  # the new rows' vectors, once embedded
        self.embeddings: SentenceTransformerEmbeddings | None = None
        self.unreadable: list[tuple[Path, str, str]] = []  # (path, sha256, error) of files the parser refused
        self.loaded: set[str] = set()  # the files read in this run (their attachments are not in it)

    def fail(self, path: Path | str, error: str) -> None:
        self.report.failed.append({"path": str(path), "error": error})

    def read_and_embed(self, todo: list[tuple[Path, str]], previous: dict[str, DocumentRow]) -> None:
        """Read, chunk and embed each new or changed file; a bad file is recorded and skipped.

        Files are parsed (and chunked) by a small pool of parser workers while this thread embeds
        the chunks already made, longest first (:mod:`ingest.parse_pool`, :mod:`ingest.embed_batches`).
        The embedding model starts loading beside the first parse, and only when some file needs
        reading.  A mail's readable attachments come back as documents of their own
        (``mail.eml/name``), stored with the mail's hash; its unreadable ones are failed lines and
        its unsupported ones are listed as skipped.  Rows come out in the order of ``todo``
        whichever worker finished first.
        """
        if not todo:
            return
        timings = self.report.timings
        started = time.perf_counter()
        splitter = make_splitter(load_tokenizer(self.settings.embedding_model),
                                 self.settings.chunk_tokens, self.settings.chunk_overlap)
        timings["tokenizer_s"] = time.perf_counter() - started
        embeddings = self.embeddings = make_embeddings(self.settings)
        embedder = LengthSortedEmbedder(embeddings)
        loading = threading.Thread(target=_load_model, args=(embeddings, timings), name="load-model", daemon=True)
        loading.start()  # beside the parser workers' start: neither waits for the other
        workers = [ParserWorker(self.settings)
                   for _ in range(default_processes(self.settings.parse_processes, len(todo)))]
        timings["parse_processes"] = len(workers)
        results: list[Parsed] = []
        files_done, row_count = 0, 0
        self.progress(0, len(todo), "reading")
        with ParsePool(workers, todo, lambda doc: chunk_document(doc, splitter)) as pool:
            while pool.running or embedder.waiting:
                for event in pool.events(block=pool.running and not embedder.full_batch()):
                    if isinstance(event, Pages):
                        self.progress(event.done, event.total, f"ocr {event.path.name}")
                        continue
                    files_done += 1
                    self.progress(files_done, len(todo), f"reading {event.path.name}")
                    results.append(event)
                    for _, rows in event.loaded:
                        embedder.add([row.text for row in rows])
                        row_count += len(rows)
                if embedder.full_batch() or (not pool.running and embedder.waiting):
                    if not embedder.embedded:  # the phase starts (the CLI prints its line now, not after a batch)
                        self.progress(0, embedder.added, "embedding")
                    embedder.embed_next()
                    self.progress(embedder.embedded, embedder.added, "embedding")
            timings["embed_s"] = embedder.seconds
            arrival = embedder.vectors()
        self._collect(sorted(results, key=lambda r: r.position), previous, arrival, results)
        timings["parse_s"] = sum(r.parse_s for r in results)
        timings["chunk_s"] = sum(r.chunk_s for r in results)
        timings["read_and_embed_s"] = time.perf_counter() - started

    def _collect(self, ordered: list[Parsed], previous: dict[str, DocumentRow], arrival: np.ndarray,
                 arrived: list[Parsed]) -> None:
        """Record each file's outcome in ``todo`` order, with its rows' vectors in the same order."""
        first_row: dict[int, int] = {}  # a file's position -> the index of its first row in ``arrival``
        n = 0
        for result in arrived:
            first_row[result.position] = n
            n += sum(len(rows) for _, rows in result.loaded)
        order: list[int] = []
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for result in ordered:
            if result.error is not None:
                self.fail(result.path, result.error)
                if result.remember:
                    self.unreadable.append((result.path, result.sha, result.error))
                continue
            self.loaded.add(str(result.path))
            index = first_row[result.position]
            for doc, rows in result.loaded:
                (self.report.updated if doc.source in previous else self.report.added).append(doc.source)
                self.new_rows.extend(rows)
                order.extend(range(index, index + len(rows)))
                index += len(rows)
                self.new_docs.append(DocumentRow(doc.source, result.sha, result.mtime, result.size, doc.type,
                                                 doc.pages, len(rows), now))
                for note in doc.notes:
                    self.report.file_notes.append({"path": doc.source, "note": note})
                    self.note(f"{doc.source}: {note}")
                for source, error in doc.failed:
                    self.fail(source, error)
                self.report.skipped.extend(doc.skipped)
        self.vectors = arrival[order] if order else arrival[:0]
        self.report.embedded_chunks = len(self.new_rows)


def _load_model(embeddings: SentenceTransformerEmbeddings, timings: dict[str, float]) -> None:
    """Load the embedding model (in a thread; a failure is raised again where the model is used)."""
    started = time.perf_counter()
    try:
        embeddings.model  # noqa: B018 - the property loads and caches it
    except Exception:  # noqa: S110 - the embedding thread meets it again and reports it
        return
    timings["model_load_s"] = time.perf_counter() - started


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
            run.read_and_embed(todo, known)
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
    if run.new_rows and run.embeddings is not None and run.vectors is not None:
        vectors, dimension = run.vectors, run.embeddings.dimension
    elif previous is not None and previous.info.embedding_model == model:
        dimension = previous.info.dimension
        vectors = np.zeros((0, dimension), dtype="float32")
    else:  # an empty first version: only the model knows its dimension
        dimension = make_embeddings(settings).dimension
        vectors = np.zeros((0, dimension), dtype="float32")
    chunking = {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap}
    run.progress(0, 1, "writing index")
    started = time.perf_counter()
    committed = writer.commit_changes(kept_sources, run.new_rows, vectors, run.new_docs, model, dimension, chunking)
    report.timings["write_s"] = time.perf_counter() - started
    run.progress(1, 1, "writing index")
    report.version, report.documents, report.chunks = committed.version, committed.documents, committed.chunks


def remove_sources(sources: Iterable[str | Path], index_dir: str | Path | None = None, *,
                   settings: Settings | None = None, progress: ProgressFn | None = None) -> IngestReport:
    """Drop ``sources`` (files, or folders meaning everything under them) from the index."""
    return ingest_paths([], index_dir, remove=list(sources), settings=settings, progress=progress)
