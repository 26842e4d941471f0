"""Incremental ingestion: what the CLI and the UI call to add, update and remove documents.

One ingest is three steps, whichever engine does the reading:

1. **plan** (:mod:`ingest.plan`): find the files, hash them, consult the failure memory and diff
   them against the index: a file whose sha256 is already there is left alone (the store carries
   its chunks and vectors over, and the embedding model is not even loaded when nothing changed),
   a file that failed before with the same content is reported again without being parsed, files
   gone from a folder being re-ingested and ``remove`` paths are to be dropped;
2. **execute**: an :class:`Executor` reads, chunks and embeds the files to read and yields one
   :class:`~ingest.outcome.FileOutcome` per file: :class:`~ingest.local_executor.LocalExecutor`
   on this machine (the default), :class:`~ingest.ray_pipeline.RayExecutor` on a Ray cluster;
3. **commit** (:mod:`ingest.commit`): the outcomes go into the index through the store's writer
   protocol (:class:`~rag_qa.store.base.StoreWriter`) and into the report, the same way for both.

Everything happens under the index's write lock: one ``commit_changes`` for the local executor (a
new FAISS version switched in atomically, or one PostgreSQL transaction with
``RAGQA_STORE=pgvector``), groups of whole documents for the Ray one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from ingest.commit import ProgressFn, commit_for
from ingest.discovery import discover
from ingest.errors import IngestUsageError
from ingest.local_executor import LocalExecutor
from ingest.outcome import FileOutcome
from ingest.plan import make_plan
from ingest.report import IngestReport
from rag_qa.config import Settings, get_settings
from rag_qa.store import open_writer
from rag_qa.store.base import canonical_model_name


class Executor(Protocol):
    """Reads, chunks and embeds files: one outcome per file, each with its chunks' vectors."""

    #: True: outcomes are written in groups as they come (a :class:`~rag_qa.store.base.PieceWriter`);
    #: False: in one commit at the end
    pieces: bool

    def run(self, todo: list[tuple[Path, str]], settings: Settings, report: IngestReport, progress: ProgressFn,
            note: Callable[[str], None]) -> Iterator[FileOutcome]: ...


def ingest_paths(paths: Sequence[str | Path], index_dir: str | Path | None = None, *, rebuild: bool = False,
                 remove: Iterable[str | Path] = (), settings: Settings | None = None,
                 progress: ProgressFn | None = None, log: Callable[[str], None] | None = None,
                 executor: Executor | None = None) -> IngestReport:
    """Bring the index at ``index_dir`` up to date with ``paths``: plan, execute, commit (module docstring).

    ``executor`` reads the files (default: :class:`~ingest.local_executor.LocalExecutor`).
    ``progress(done, total, desc)`` is called as files are read and chunks embedded; ``log``
    gets housekeeping messages (also kept in ``report.notes``).  Raises
    :class:`IngestUsageError` for a bad request and ``EmbeddingMismatchError`` when the index
    was built with another embedding model (unless ``rebuild``).
    """
    started = time.perf_counter()
    settings = settings or get_settings()
    executor = executor or LocalExecutor()
    progress = progress or (lambda done, total, desc: None)
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

    report.failed.extend({"path": str(path), "error": error} for path, error in found.failed)
    with open_writer(index, settings, log=note) as writer:
        plan = make_plan(found, writer, index, model, settings, rebuild=rebuild, remove=remove,
                         check_model=bool(paths), report=report, note=note)
        try:
            commit = commit_for(executor.pieces, writer, plan, settings, report, progress, note)
            for outcome in executor.run(plan.todo, settings, report, progress, note):
                commit.add(outcome)
            commit.finish()
        finally:
            if plan.previous is not None:
                plan.previous.close()
    report.seconds = time.perf_counter() - started
    return report


def remove_sources(sources: Iterable[str | Path], index_dir: str | Path | None = None, *,
                   settings: Settings | None = None, progress: ProgressFn | None = None) -> IngestReport:
    """Drop ``sources`` (files, or folders meaning everything under them) from the index."""
    return ingest_paths([], index_dir, remove=list(sources), settings=settings, progress=progress)
