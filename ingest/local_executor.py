"""The single-machine executor: read, chunk and embed the plan's files in this process and its parser workers.

The order matters on a machine with few cores.  The embedding model starts loading first (in a
thread: importing torch and transformers is most of a cold start, and only this process can do
it; :meth:`~rag_qa.embeddings.SentenceTransformerEmbeddings.load_for_token_ids`), and at once a
small pool of parser workers (``RAGQA_PARSE_PROCESSES``;
:mod:`ingest.parse_pool`) parses, chunks and tokenises the files on the other cores, so for plain
text every chunk is ready, with its token ids, by the time the model is.  Embedding then takes the
longest waiting batch each time (:mod:`ingest.embed_batches`) straight from those ids.  While
parser workers are still busy (PDFs, OCR), torch runs one thread fewer per busy worker, so the two
do not fight over the same cores; when the last file is read it gets them all back.

A mail's readable attachments come back as documents of their own (``mail.eml/name``); its
unreadable ones are failed lines and its unsupported ones are listed as skipped.  Outcomes come out
in the plan's order whichever worker finished first.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ingest.embed_batches import LengthSortedEmbedder
from ingest.outcome import FileOutcome
from ingest.parse_pool import Pages, ParsePool, default_processes
from ingest.report import IngestReport
from ingest.worker import ParserWorker
from rag_qa.config import Settings
from rag_qa.embeddings import SentenceTransformerEmbeddings

ProgressFn = Callable[[int, int, str], None]
WAIT_S = 0.25  # while the model loads, how often the reading progress is brought up to date


def make_embeddings(settings: Settings) -> SentenceTransformerEmbeddings:
    """The embedder for new chunks (a seam: tests check it is not called when nothing changed)."""
    return SentenceTransformerEmbeddings(settings=settings)


class _ModelLoad(threading.Thread):
    """Loads the embedding model beside the parser workers; ``done`` is set when it is ready (or failed:
    the embedding call meets the error again and reports it)."""

    def __init__(self, embeddings: SentenceTransformerEmbeddings, timings: dict[str, float]) -> None:
        super().__init__(name="load-model", daemon=True)
        self.embeddings, self.timings = embeddings, timings
        self.done = threading.Event()

    def run(self) -> None:
        started = time.perf_counter()
        try:
            self.embeddings.load_for_token_ids()
            self.timings["model_load_s"] = time.perf_counter() - started
        except Exception:  # noqa: S110 - the embedding call meets it again and reports it
            pass
        finally:
            self.done.set()


class _Threads:
    """torch's thread count: one fewer per busy parser worker while files are being read (at least 1)."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.full = torch.get_num_threads()
        self.now = self.full

    def beside(self, busy_workers: int) -> None:
        wanted = max(1, min(self.full, (os.cpu_count() or 1) - busy_workers))
        if wanted != self.now:
            self.torch.set_num_threads(wanted)
            self.now = wanted

    def restore(self) -> None:
        self.beside(0)


class LocalExecutor:
    """Reads with a pool of parser workers and embeds in this process (module docstring)."""

    #: outcomes go into one commit at the end (:class:`~ingest.commit.OneCommit`)
    pieces = False

    def run(self, todo: list[tuple[Path, str]], settings: Settings, report: IngestReport, progress: ProgressFn,
            note: Callable[[str], None]) -> Iterator[FileOutcome]:
        """One outcome per file of ``todo``, in its order, each with its chunks' vectors."""
        if not todo:
            return
        timings = report.timings
        started = time.perf_counter()
        embeddings = make_embeddings(settings)
        loading = _ModelLoad(embeddings, timings)
        loading.start()  # first: the longest step of a cold start, and the parser workers need none of it
        workers = [ParserWorker(settings) for _ in range(default_processes(settings.parse_processes, len(todo)))]
        timings["parse_processes"] = len(workers)
        embedder = LengthSortedEmbedder(embeddings)
        arrived: list[FileOutcome] = []
        threads: _Threads | None = None
        progress(0, len(todo), "reading")
        try:
            with ParsePool(workers, todo) as pool:
                while pool.running or embedder.waiting:
                    ready = loading.done.is_set()
                    block = pool.running > 0 and not (ready and embedder.full_batch())
                    for event in pool.events(block=block, timeout=None if ready else WAIT_S):
                        if isinstance(event, Pages):
                            progress(event.done, event.total, f"ocr {event.path.name}")
                            continue
                        arrived.append(event)
                        progress(len(arrived), len(todo), f"reading {event.path.name}")
                        for doc in event.documents:
                            embedder.add([row.text for row in doc.rows], doc.token_ids)
                            doc.token_ids = None  # the embedder holds them until they are embedded
                    if not ready:
                        if pool.running:
                            continue  # the model is still loading: keep reading
                        loading.done.wait()
                    if embedder.full_batch() or (not pool.running and embedder.waiting):
                        if not embedder.embedded:  # the phase starts (the CLI prints its line now, not after a batch)
                            progress(0, embedder.added, "embedding")
                            timings["first_batch_s"] = time.perf_counter() - started
                        if threads is None:
                            embeddings.load_for_token_ids()  # raises the model's own error if it did not load
                            threads = _Threads()
                        threads.beside(pool.running)
                        embedder.embed_next()
                        progress(embedder.embedded, embedder.added, "embedding")
                timings["embed_s"] = embedder.seconds
                vectors = embedder.vectors()
        finally:
            if threads is not None:
                threads.restore()
        first = 0
        for outcome in arrived:  # the vectors came back in the order the chunks were added
            outcome.vectors = vectors[first:first + outcome.chunk_count]
            first += outcome.chunk_count
        timings["parse_s"] = sum(o.parse_s for o in arrived)
        timings["chunk_s"] = sum(o.chunk_s for o in arrived)
        timings["read_and_embed_s"] = time.perf_counter() - started
        yield from sorted(arrived, key=lambda o: o.position)
