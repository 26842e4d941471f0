"""The first step of every ingest: which files to read, which to leave alone, which to drop.

Both engines (one machine, a Ray cluster) plan the same way, under the index's write lock: the
files found under the paths given are hashed (sha256); a file whose hash the index already holds
is unchanged and left alone (the store carries its chunks and vectors over); a file that failed
before with the same content is reported again with its remembered error without being parsed
(:mod:`ingest.failures`); the rest are the plan's ``todo``.  Files gone from a folder being
re-ingested, and ``--remove`` paths, are to be dropped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ingest.discovery import Discovery
from ingest.failures import FailureMemory
from ingest.report import IngestReport
from rag_qa.config import Settings
from rag_qa.store.base import (
    DocumentRow,
    IndexCorruptError,
    PreviousIndex,
    StoreWriter,
    require_embedding_model,
)

HASH_THREADS = 8  # files hashed at once (I/O bound; hashlib releases the GIL)


def sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def hash_files(files: Sequence[Path]) -> list[tuple[Path, str | OSError]]:
    """(path, sha256 or the OSError that stopped reading it), in order."""

    def one(path: Path) -> tuple[Path, str | OSError]:
        try:
            return path, sha256(path)
        except OSError as exc:
            return path, exc

    if len(files) <= 1:
        return [one(path) for path in files]
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        return list(pool.map(one, files))


def under(source: str, folder: Path) -> bool:
    return Path(source).is_relative_to(folder)


def belongs(source: str, files: set[str]) -> bool:
    """True when ``source`` is one of ``files`` or an attachment inside one (``mail.eml/report.pdf``)."""
    return source in files or any(str(parent) in files for parent in Path(source).parents)


def removals(previous: dict[str, DocumentRow], folders: Sequence[Path], present: set[str],
             remove: Iterable[str | Path], note: Callable[[str], None], unlisted: Sequence[Path] = ()) -> set[str]:
    """Sources to drop: gone from a folder being re-ingested (not merely in a sub-folder that could not
    be listed this time), or named in ``remove``."""
    gone = {s for s in previous for folder in folders if under(s, folder) and not belongs(s, present)
            and not any(under(s, u) for u in unlisted)}
    for raw in remove:
        target = Path(raw).expanduser().resolve()
        matched = {s for s in previous if s == str(target) or under(s, target)}
        if not matched:
            note(f"--remove {raw}: nothing in the index at or under {target}")
        gone |= matched
    return gone


@dataclass
class Plan:
    """What one ingest run will do, decided before anything is read."""

    index: Path
    model: str  # the embedding model's canonical name (what the index records)
    rebuild: bool
    previous: PreviousIndex | None  # the committed index as it was when the run started
    known: dict[str, DocumentRow]  # the documents the run builds on ({} for a rebuild)
    memory: FailureMemory
    todo: list[tuple[Path, str]] = field(default_factory=list)  # (file, sha256) to read, in order
    removed: set[str] = field(default_factory=set)  # sources to drop (gone from a folder, --remove)


def make_plan(found: Discovery, writer: StoreWriter, index: Path, model: str, settings: Settings, *,
              rebuild: bool, remove: Sequence[str | Path], check_model: bool, report: IngestReport,
              note: Callable[[str], None]) -> Plan:
    """Hash ``found.files`` and sort them into unchanged (``report.unchanged``), failed (``report.failed``)
    and to read (``todo``); work out the removals.  ``check_model``: refuse (``EmbeddingMismatchError``)
    an index built with another embedding model.  The caller closes ``plan.previous``."""
    try:
        previous = writer.previous()
    except IndexCorruptError:
        if not rebuild:
            raise
        # the error says to rebuild: a rebuild needs nothing from the live version, so it must not need to read it
        note(f"the index's live version cannot be read; --rebuild writes {index} afresh")
        previous = None
    plan = Plan(index, model, rebuild, previous, {}, FailureMemory(settings, {}, forget=True))
    try:
        if check_model and not rebuild and previous is not None:
            require_embedding_model(model, index, previous.info.embedding_model, previous.info.dimension)
        plan.known = previous.documents if previous is not None and not rebuild else {}
        plan.memory = FailureMemory(settings, writer.read_failures(), forget=rebuild)
        started = time.perf_counter()
        for path, sha in hash_files(found.files):
            if isinstance(sha, OSError):
                report.failed.append({"path": str(path), "error": f"cannot read: {sha.strerror or sha}"})
                continue
            plan.memory.seen(path, sha)
            if str(path) in plan.known and plan.known[str(path)].sha256 == sha:
                report.unchanged.append(str(path))
            elif (error := plan.memory.error(path, sha)) is not None:  # failed before, unchanged: not parsed again
                report.failed.append({"path": str(path), "error": error})
            else:
                plan.todo.append((path, sha))
        report.timings["hash_s"] = time.perf_counter() - started
        plan.removed = removals(plan.known, found.folders, {str(f) for f in found.files}, remove, note,
                                found.unlisted)
    except BaseException:
        if previous is not None:
            previous.close()
        raise
    return plan
