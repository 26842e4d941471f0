"""Read and chunk files in a small pool of parser workers while the caller embeds.

Each thread of the pool owns one :class:`~ingest.worker.ParserWorker` (a child process with the
parse time limit and memory cap) and takes files from a shared queue; the worker parses each file,
chunks it and tokenises its chunks for the encoder (:meth:`~ingest.worker.ParserWorker.read`), so
the caller's process only receives finished chunks and keeps its cores for embedding.  What
happened to each file, and each OCRed page, arrives on one queue in completion order; a bad file
is one :class:`~ingest.outcome.FileOutcome` with its one-line error.

A worker process is killed by the kernel when the *thread* that started it ends
(``PR_SET_PDEATHSIG``), so each thread closes its worker before it returns and the pool's threads
live until their last file is done.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import LoadError, ToolMissing, WorkerStartError, unexpected_error
from ingest.outcome import FileOutcome
from ingest.worker import ParserWorker

MAX_PROCESSES = 4  # beyond this the embedder, not parsing, is the limit on any machine we measured


def default_processes(configured: int, files: int) -> int:
    """Parser processes for ``files`` files: ``configured`` if set, else half the cores (1 to 4)."""
    wanted = configured if configured > 0 else min(MAX_PROCESSES, max(1, (os.cpu_count() or 1) // 2))
    return max(1, min(wanted, files))


@dataclass(frozen=True)
class Pages:
    """OCR progress inside one file."""

    path: Path
    done: int
    total: int


def read_one(parser: ParserWorker, position: int, path: Path, sha: str,
             pages: Callable[[int, int], None] | None = None) -> FileOutcome:
    """Parse and chunk ``path`` (and its attachments) in ``parser``; any failure is one line."""
    result = FileOutcome(position, path, sha)
    try:
        stat = path.stat()
        result.mtime, result.size = stat.st_mtime, stat.st_size
        result.documents, result.parse_s, result.chunk_s = parser.read(path, pages)
    except (WorkerStartError, ToolMissing) as exc:  # not the file's fault: not remembered
        result.error = str(exc)
    except LoadError as exc:
        result.error, result.remember = str(exc), True
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
    except Exception as exc:  # one odd file must not stop the others
        result.error = unexpected_error(exc)
    if result.error is not None:
        result.documents = []
    return result


class ParsePool:
    """``workers`` parser processes (one thread each) reading ``todo`` in order of availability.

    Use as a context manager; :meth:`events` yields :class:`~ingest.outcome.FileOutcome` s and
    :class:`Pages` as they come.
    """

    def __init__(self, workers: Sequence[ParserWorker], todo: Sequence[tuple[Path, str]]) -> None:
        self._workers = list(workers)
        self._todo: queue.SimpleQueue[tuple[int, Path, str]] = queue.SimpleQueue()
        for position, (path, sha) in enumerate(todo):
            self._todo.put((position, path, sha))
        self._events: queue.SimpleQueue[FileOutcome | Pages | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, args=(w,), name=f"parse-{i}", daemon=True)
                         for i, w in enumerate(self._workers)]
        self._running = len(self._threads)

    def __enter__(self) -> ParsePool:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # threads finish the file they are on (bounded by the parse time limit)
        for thread in self._threads:
            thread.join()

    @property
    def running(self) -> int:
        """How many threads may still deliver events (0: all done)."""
        return self._running

    def _serve(self, parser: ParserWorker) -> None:
        try:
            while not self._stop.is_set():
                try:
                    position, path, sha = self._todo.get_nowait()
                except queue.Empty:
                    return

                def pages(done: int, total: int, path: Path = path) -> None:
                    self._events.put(Pages(path, done, total))

                self._events.put(read_one(parser, position, path, sha, pages))
        finally:
            parser.close()  # the worker dies with this thread anyway; end it cleanly first
            self._events.put(None)

    def events(self, block: bool, timeout: float | None = None) -> Iterator[FileOutcome | Pages]:
        """What arrived so far; with ``block``, wait until at least one event (or the end, or ``timeout``) comes."""
        while self._running > 0:
            try:
                event = self._events.get(block=block, timeout=timeout if block else None)
            except queue.Empty:
                return
            block = False
            if event is None:
                self._running -= 1
                continue
            yield event
