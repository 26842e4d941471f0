"""The single-machine executor: read, chunk and embed the plan's files in this process and its parser workers.

A small pool of parser workers (``RAGQA_PARSE_PROCESSES``) parses and chunks files while this
process embeds the chunks already made, longest first (:mod:`ingest.parse_pool`,
:mod:`ingest.embed_batches`), with the model loaded once, beside the first parse, and only when
some file needs reading.  A mail's readable attachments come back as documents of their own
(``mail.eml/name``); its unreadable ones are failed lines and its unsupported ones are listed as
skipped.  Outcomes come out in the plan's order whichever worker finished first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ingest.chunking import chunk_document, load_tokenizer, make_splitter
from ingest.embed_batches import LengthSortedEmbedder
from ingest.outcome import FileOutcome
from ingest.parse_pool import Pages, ParsePool, default_processes
from ingest.report import IngestReport
from ingest.worker import ParserWorker
from rag_qa.config import Settings
from rag_qa.embeddings import SentenceTransformerEmbeddings

ProgressFn = Callable[[int, int, str], None]


def make_embeddings(settings: Settings) -> SentenceTransformerEmbeddings:
    """The embedder for new chunks (a seam: tests check it is not called when nothing changed)."""
    return SentenceTransformerEmbeddings(settings=settings)


def _load_model(embeddings: SentenceTransformerEmbeddings, timings: dict[str, float]) -> None:
    """Load the embedding model (in a thread; a failure is raised again where the model is used)."""
    started = time.perf_counter()
    try:
        embeddings.model  # noqa: B018 - the property loads and caches it
    except Exception:  # noqa: S110 - the embedding thread meets it again and reports it
        return
    timings["model_load_s"] = time.perf_counter() - started


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
        splitter = make_splitter(load_tokenizer(settings.embedding_model), settings.chunk_tokens,
                                 settings.chunk_overlap)
        timings["tokenizer_s"] = time.perf_counter() - started
        embeddings = make_embeddings(settings)
        embedder = LengthSortedEmbedder(embeddings)
        loading = threading.Thread(target=_load_model, args=(embeddings, timings), name="load-model", daemon=True)
        loading.start()  # beside the parser workers' start: neither waits for the other
        workers = [ParserWorker(settings) for _ in range(default_processes(settings.parse_processes, len(todo)))]
        timings["parse_processes"] = len(workers)
        arrived: list[FileOutcome] = []
        files_done = 0
        progress(0, len(todo), "reading")
        with ParsePool(workers, todo, lambda doc: chunk_document(doc, splitter)) as pool:
            while pool.running or embedder.waiting:
                for event in pool.events(block=pool.running and not embedder.full_batch()):
                    if isinstance(event, Pages):
                        progress(event.done, event.total, f"ocr {event.path.name}")
                        continue
                    files_done += 1
                    progress(files_done, len(todo), f"reading {event.path.name}")
                    arrived.append(event)
                    embedder.add([row.text for row in event.rows])
                if embedder.full_batch() or (not pool.running and embedder.waiting):
                    if not embedder.embedded:  # the phase starts (the CLI prints its line now, not after a batch)
                        progress(0, embedder.added, "embedding")
                    embedder.embed_next()
                    progress(embedder.embedded, embedder.added, "embedding")
            timings["embed_s"] = embedder.seconds
            vectors = embedder.vectors()
        first = 0
        for outcome in arrived:  # the vectors came back in the order the chunks were added
            outcome.vectors = vectors[first:first + outcome.chunk_count]
            first += outcome.chunk_count
        timings["parse_s"] = sum(o.parse_s for o in arrived)
        timings["chunk_s"] = sum(o.chunk_s for o in arrived)
        timings["read_and_embed_s"] = time.perf_counter() - started
        yield from sorted(arrived, key=lambda o: o.position)

