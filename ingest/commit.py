"""The last step of every ingest: write what the executor made into the index and fill the report.

Both commits take the executor's :class:`~ingest.outcome.FileOutcome` s one by one (:meth:`Commit.add`)
and, at the end (:meth:`Commit.finish`), record them the same way: in the plan's file order, a
refused file is a failed line (remembered by content hash when it is the file's own fault), a read
one adds or updates each of its documents, with their notes, failed and skipped attachments; the
old attachments a re-read mail no longer has are removed.  They differ only in how the index is
written:

- :class:`OneCommit` (one machine): one ``commit_changes`` at the end, under the write lock: a new
  FAISS version switched in atomically, or one PostgreSQL transaction.  A file read again replaces
  its old version and old attachments; one that failed keeps them.
- :class:`PieceCommit` (a Ray cluster, PostgreSQL only): groups of whole files
  (``RAGQA_RAY_COMMIT_CHUNKS`` chunks) are written as they come, each group one transaction that
  replaces its documents (:meth:`~rag_qa.store.base.PieceWriter.replace_documents`); removals are
  the last transaction, and ``--rebuild`` streams into a staging schema switched in at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ingest.errors import IngestUsageError
from ingest.outcome import FileOutcome
from ingest.plan import Plan, belongs
from ingest.report import IngestReport
from rag_qa.config import Settings
from rag_qa.store.base import ChunkRow, DocumentRow, PieceWriter, StoreWriter

ProgressFn = Callable[[int, int, str], None]


def model_dimension(settings: Settings) -> int:
    """The embedding model's dimension, loaded here (only for an index that gets nothing embedded)."""
    from rag_qa.embeddings import SentenceTransformerEmbeddings

    return SentenceTransformerEmbeddings(settings=settings).dimension


def document_rows(outcome: FileOutcome, now: str) -> list[DocumentRow]:
    """The documents of a file that was read, as the store keeps them (with the file's hash)."""
    return [DocumentRow(doc.source, outcome.sha, outcome.mtime, outcome.size, doc.type, doc.pages, len(doc.rows),
                        now) for doc in outcome.documents]


def stack_vectors(outcomes: list[FileOutcome], dimension: int) -> np.ndarray:
    """The vectors of ``outcomes``' chunks, in order, as one float32 matrix."""
    parts = [np.asarray(o.vectors, dtype="float32").reshape(-1, dimension) for o in outcomes
             if o.vectors is not None and o.chunk_count]
    return np.concatenate(parts) if parts else np.zeros((0, dimension), dtype="float32")


class Commit:
    """What both commits share: the outcomes collected so far and the report filled from them."""

    def __init__(self, writer: StoreWriter, plan: Plan, settings: Settings, report: IngestReport,
                 progress: ProgressFn, note: Callable[[str], None]) -> None:
        self.writer, self.plan, self.settings, self.report = writer, plan, settings, report
        self.progress, self.note = progress, note
        self.outcomes: list[FileOutcome] = []
        self.dimension: int | None = None  # of the vectors that came back
        self.chunking = {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap}

    def add(self, outcome: FileOutcome) -> None:
        """Take one file's outcome (the executor's order; the report's is the plan's)."""
        self.outcomes.append(outcome)
        if outcome.vectors is not None and outcome.chunk_count:
            self.dimension = int(np.asarray(outcome.vectors).shape[1])

    def fail(self, path: Path | str, error: str) -> None:
        self.report.failed.append({"path": str(path), "error": error})

    def finish(self) -> None:
        """Record every outcome in the report, write what is left to write, keep the failure memory."""
        plan, report = self.plan, self.report
        ordered = sorted(self.outcomes, key=lambda o: o.position)
        loaded: set[str] = set()  # the files read in this run (their attachments are not in it)
        new_sources: set[str] = set()
        for outcome in ordered:
            if outcome.error is not None:
                self.fail(outcome.path, outcome.error)
                if outcome.remember:
                    plan.memory.remember(outcome.path, outcome.sha, outcome.error)
                continue
            loaded.add(str(outcome.path))
            for doc in outcome.documents:
                (report.updated if doc.source in plan.known else report.added).append(doc.source)
                new_sources.add(doc.source)
                for text in doc.notes:
                    report.file_notes.append({"path": doc.source, "note": text})
                    self.note(f"{doc.source}: {text}")
                for source, error in doc.failed:
                    self.fail(source, error)
                report.skipped.extend(doc.skipped)
        report.embedded_chunks = sum(o.chunk_count for o in ordered if o.error is None)
        # attachments that a re-read mail no longer has
        removed = plan.removed | {s for s in plan.known if belongs(s, loaded) and s not in new_sources}
        report.removed = sorted(removed)
        if plan.rebuild and plan.previous is not None and not loaded and report.failed:
            # every file failed (a corrupt copy, a worker that would not start): an empty index is no rebuild
            first = report.failed[0]
            raise IngestUsageError(f"--rebuild read none of its files ({len(report.failed)} failed, e.g. "
                                   f"{first['path']}: {first['error']}); the index is left as it was")
        self._write(ordered, loaded, removed)
        if plan.memory.changed:
            self.writer.write_failures(plan.memory.data())

    def _write(self, ordered: list[FileOutcome], loaded: set[str], removed: set[str]) -> None:
        raise NotImplementedError

    def _dimension(self) -> int:
        """The vectors' dimension: of those embedded, else the index's, else the model's (loads it)."""
        if self.dimension is not None:
            return self.dimension
        previous = self.plan.previous
        if previous is not None and previous.info.embedding_model == self.plan.model:
            return previous.info.dimension
        return model_dimension(self.settings)

    def _committed(self, version: int, documents: int, chunks: int) -> None:
        self.report.version, self.report.documents, self.report.chunks = version, documents, chunks


class OneCommit(Commit):
    """Everything in one ``commit_changes`` at the end (the single-machine engine)."""

    def _write(self, ordered: list[FileOutcome], loaded: set[str], removed: set[str]) -> None:
        plan, report = self.plan, self.report
        if plan.previous is not None and not plan.rebuild and not (report.added or report.updated or removed):
            # nothing changed (at most some files failed): the live version stays as it is
            self._committed(plan.previous.info.version, len(plan.known), plan.previous.info.chunks)
            return
        # a file read again replaces its old version and old attachments; one that failed keeps them
        kept_sources = [s for s in plan.known if s not in removed and not belongs(s, loaded)]
        read = [o for o in ordered if o.error is None]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [row for o in read for row in o.rows]
        dimension = self._dimension()
        self.progress(0, 1, "writing index")
        started = time.perf_counter()
        committed = self.writer.commit_changes(kept_sources, rows, stack_vectors(read, dimension),
                                               [d for o in read for d in document_rows(o, now)], plan.model,
                                               dimension, self.chunking)
        report.timings["write_s"] = time.perf_counter() - started
        self.progress(1, 1, "writing index")
        self._committed(committed.version, committed.documents, committed.chunks)


class PieceCommit(Commit):
    """Groups of whole files written as they come, one transaction each (the Ray engine; PostgreSQL only).

    Each document's replacement is atomic and a run that dies leaves every committed group in
    place; running it again skips those files by their sha256.  ``--rebuild`` streams into a
    staging schema, switched in at the end.
    """

    def __init__(self, writer: StoreWriter, plan: Plan, settings: Settings, report: IngestReport,
                 progress: ProgressFn, note: Callable[[str], None]) -> None:
        if not isinstance(writer, PieceWriter):
            raise IngestUsageError("--ray needs an index store that takes documents in pieces (pgvector)")
        super().__init__(writer, plan, settings, report, progress, note)
        self.pieces: PieceWriter = writer
        todo_paths = {str(path) for path, _ in plan.todo}
        self.old_of: dict[str, list[str]] = {}  # a file read again -> the sources it had in the index
        for source in plan.known:
            for candidate in (source, *map(str, Path(source).parents)):
                if candidate in todo_paths:
                    self.old_of.setdefault(candidate, []).append(source)
                    break
        self.ready: list[FileOutcome] = []
        self.ready_chunks = 0
        self.replaced: set[str] = set()  # old sources deleted with their files' new versions
        self.committed = 0  # groups written
        self.write_s = 0.0
        if plan.rebuild:
            self.pieces.drop_staging()

    def add(self, outcome: FileOutcome) -> None:
        super().add(outcome)
        if outcome.error is None:
            self.ready.append(outcome)
            self.ready_chunks += outcome.chunk_count
        if self.ready_chunks >= self.settings.ray_commit_chunks:
            self.flush()

    def flush(self) -> None:
        """Write the complete files waiting (one transaction)."""
        if not self.ready:
            return
        now = datetime.now(UTC).isoformat(timespec="seconds")
        removed: list[str] = []
        rows: list[ChunkRow] = []
        documents: list[DocumentRow] = []
        group = sorted(self.ready, key=lambda o: o.position)
        for outcome in group:
            removed.extend(self.old_of.get(str(outcome.path), []))
            self.replaced.update(self.old_of.get(str(outcome.path), []))
            rows.extend(outcome.rows)
            documents.extend(document_rows(outcome, now))
        dimension = self._dimension()
        started = time.perf_counter()
        committed = self.pieces.replace_documents(removed, rows, stack_vectors(group, dimension), documents,
                                                  self.plan.model, dimension, self.chunking,
                                                  staging=self.plan.rebuild)
        self.write_s += time.perf_counter() - started
        self._committed(committed.version, committed.documents, committed.chunks)
        self.committed += 1
        self.ready, self.ready_chunks = [], 0

    def _write(self, ordered: list[FileOutcome], loaded: set[str], removed: set[str]) -> None:
        plan = self.plan
        if self.ready:
            self.progress(0, 1, "writing index")
            self.flush()
            self.progress(1, 1, "writing index")
        gone = sorted(s for s in removed if s in plan.known and s not in self.replaced)
        if gone or (self.committed == 0 and (plan.previous is None or plan.rebuild)):
            # removals, or an index that must exist although nothing went in
            dimension = self._dimension()
            committed = self.pieces.replace_documents(gone, [], np.zeros((0, dimension), dtype="float32"), [],
                                                      plan.model, dimension, self.chunking, staging=plan.rebuild)
            self._committed(committed.version, committed.documents, committed.chunks)
        elif self.committed == 0 and plan.previous is not None:
            self._committed(plan.previous.info.version, len(plan.known), plan.previous.info.chunks)
        if plan.rebuild:
            committed = self.pieces.publish_staging()
            self._committed(committed.version, committed.documents, committed.chunks)
        self.report.timings["write_s"] = self.write_s


def commit_for(pieces: bool, writer: StoreWriter, plan: Plan, settings: Settings, report: IngestReport,
               progress: ProgressFn, note: Callable[[str], None]) -> Commit:
    """:class:`PieceCommit` for an executor that streams into a store in pieces, else :class:`OneCommit`."""
    kind: type[Commit] = PieceCommit if pieces else OneCommit
    return kind(writer, plan, settings, report, progress, note)

