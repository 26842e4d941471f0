"""``python -m ingest PATH --ray ADDRESS``: the same ingest spread over a Ray cluster, into PostgreSQL.

The driver (this process) lists the files and hashes them (sha256; reading is cheap next to
embedding, which is where a cluster's time goes), then applies the single-machine rules: an
unchanged file is skipped, a remembered bad one is reported again without being parsed, files
gone from a folder and ``--remove`` paths are dropped.  The files to read go through a Ray Data
pipeline (:mod:`ingest.ray_stages`):

    from_items(files) -> map(read_file)          tasks: parse (parser worker, limits) + chunk
                      -> flat_map(explode)       one row per chunk, then one row per file
                      -> map_batches(EmbedChunks, compute=ActorPoolStrategy(size=N))
                                                 actors, the model loaded once per actor
                      -> iter_batches on the driver -> PieceWriter.replace_documents

**Atomicity.** Each document's replacement is atomic and a run can simply be repeated: once
all of a file's chunks (and its attachments') are embedded, the file joins the next group, and
each group (``RAGQA_RAY_COMMIT_CHUNKS`` chunks of whole files) is one PostgreSQL transaction that
deletes the file's old rows and inserts its new ones.  Readers see a document's old chunks or
its new ones, never a mix; a run that dies (driver killed, cluster lost) leaves every committed
group in place, and running it again skips those files by their sha256 and does the rest.  One
transaction for the whole run would make a failure leave the previous version live, but it would
hold every vector of a large archive in the driver and lose all of a long run's work to one
fault.  ``--rebuild`` streams into a staging schema the same way and switches it in at the end,
so there the previous index stays live until the new one is complete.  Ray retries a task or
actor whose worker process died (Ray Data's defaults: ``max_retries=-1`` for tasks,
``max_restarts=-1`` and ``max_task_retries=-1`` for actors); the driver keys chunks by id, so a
retried batch cannot add a chunk twice.

Only this process writes (the index's advisory lock is held by the driver's connection), so
the PostgreSQL write rate is the ceiling of a cluster ingest (README, "Ingesting a large
corpus").  Ray is imported here and only here, inside the functions that need it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.discovery import discover
from ingest.errors import IngestUsageError
from ingest.failures import FailureMemory
from ingest.pipeline import ProgressFn, _belongs, _removals, _sha256
from ingest.ray_stages import CHUNK, EmbedChunks, explode, read_file
from ingest.report import IngestReport
from rag_qa.config import Settings, get_settings
from rag_qa.env import CHECKOUT, OFFLINE_DEFAULTS, set_offline_defaults
from rag_qa.store import open_writer
from rag_qa.store.base import (
    ChunkRow,
    DocumentRow,
    PieceWriter,
    canonical_model_name,
    require_embedding_model,
)

if TYPE_CHECKING:
    from ray.data import Dataset

LOCAL = "local"
MAX_BLOCKS = 2000  # input blocks (one read task each) at most; one per file below that
HASH_THREADS = 8  # files hashed at once on the driver (I/O bound, hashlib releases the GIL)


class ClusterError(RuntimeError):
    """The Ray cluster could not be reached or the pipeline failed there (one line)."""


def require_cluster_store(settings: Settings) -> None:
    """Refuse a Ray ingest into a FAISS index, in one line, before anything starts."""
    if settings.store != "pgvector":
        raise IngestUsageError("--ray writes into PostgreSQL, and the index store is FAISS: set RAGQA_STORE=pgvector "
                               "and RAGQA_PG_DSN (the machines of a cluster cannot share a FAISS index folder)")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def connect(address: str) -> tuple[bool, str | None]:
    """Join the cluster at ``address`` (``local``: start one in this process); returns (started
    here, so shut down after; the dashboard's URL when Ray runs one).  Already connected: kept."""
    try:
        import ray
    except ImportError as exc:
        raise IngestUsageError("--ray needs Ray: pip install -e \".[cluster]\"") from exc
    if ray.is_initialized():
        return False, None
    set_offline_defaults()  # a local cluster's workers inherit this process's environment
    runtime_env: dict[str, Any] | None = None
    if address != LOCAL:  # other machines: this checkout's code and the offline settings go with the job
        runtime_env = {"env_vars": {key: os.environ[key] for key in OFFLINE_DEFAULTS},
                       "py_modules": [str(CHECKOUT / "ingest"), str(CHECKOUT / "rag_qa")]}
    try:
        context = ray.init(address=None if address == LOCAL else address, runtime_env=runtime_env,
                           logging_level="ERROR", log_to_driver=False)
    except Exception as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {_one_line(exc)}") from exc
    url = getattr(context, "dashboard_url", None)
    return True, (f"http://{url}" if url and not str(url).startswith("http") else url) or None


def plan_workers(settings: Settings, cpus: float) -> int:
    """Embedding actors for a cluster of ``cpus`` CPUs: ``ray_workers``, or as many as leave room for
    one parse task; a request that leaves none is a one-line usage error."""
    per, parse = settings.ray_worker_cpus, settings.ray_parse_cpus
    workers = settings.ray_workers or max(1, int((cpus - parse) // per))
    if workers * per + parse > cpus + 1e-9:
        raise IngestUsageError(f"{workers} embedding workers of {per:g} CPUs leave no room for a parse task "
                               f"({parse:g} CPUs) on a cluster of {cpus:g} CPUs; lower --ray-workers or "
                               "RAGQA_RAY_WORKER_CPUS")
    return workers


def build_dataset(todo: Sequence[tuple[Path, str]], settings: Settings, workers: int,
                  embed_class: type = EmbedChunks, read_fn: Callable[..., dict[str, Any]] = read_file) -> Dataset:
    """The Ray Data pipeline for ``todo`` (nothing runs until it is iterated)."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # the driver draws its own (files read, chunks embedded)
    context.print_on_execution_start = False
    data = settings.model_dump(mode="json", exclude={"pg_dsn", "llm_api_key"})  # no secrets to the cluster
    items = [{"position": i, "path": str(path), "sha": sha} for i, (path, sha) in enumerate(todo)]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), MAX_BLOCKS)))
    ds = ds.map(read_fn, fn_kwargs={"settings": data}, num_cpus=settings.ray_parse_cpus)
    ds = ds.flat_map(explode, num_cpus=settings.ray_parse_cpus)
    return ds.map_batches(embed_class, batch_size=4 * settings.embed_batch_size, batch_format="numpy",
                          fn_constructor_kwargs={"settings": data,
                                                 "threads": max(1, round(settings.ray_worker_cpus))},
                          compute=ActorPoolStrategy(size=workers), num_cpus=settings.ray_worker_cpus)


@dataclass
class _File:
    """A file in flight: its outcome (the ``file`` row) and the chunks embedded so far, by id."""

    path: str
    info: dict[str, Any] | None = None
    chunks: dict[str, tuple[dict[str, Any], str, np.ndarray]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.info is not None and len(self.chunks) >= int(self.info["chunks"])


class _Writer:
    """Groups complete files and writes each group in one transaction (``replace_documents``)."""

    def __init__(self, writer: PieceWriter, report: IngestReport, known: dict[str, Any], todo_paths: set[str],
                 model: str, settings: Settings, staging: bool) -> None:
        self.writer, self.report, self.known = writer, report, known
        self.model, self.settings, self.staging = model, settings, staging
        self.chunking = {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap}
        self.old_of: dict[str, list[str]] = {}  # a file read again -> the sources it had in the index
        for source in known:
            for candidate in (source, *map(str, Path(source).parents)):
                if candidate in todo_paths:
                    self.old_of.setdefault(candidate, []).append(source)
                    break
        self.in_flight: dict[str, _File] = {}
        self.ready: list[_File] = []
        self.ready_chunks = 0
        self.finished: list[_File] = []  # every complete file, for the report
        self.replaced: set[str] = set()  # old sources deleted with their files' new versions
        self.expected = 0  # chunks announced by the file rows so far
        self.dimension: int | None = None  # of the vectors that came back
        self.dimension_hint: int | None = None  # the index's, for a group of documents without chunks
        self.committed = 0  # groups written
        self.write_s = 0.0

    def file(self, path: str) -> _File:
        entry = self.in_flight.get(path)
        if entry is None:
            entry = self.in_flight[path] = _File(path)
        return entry

    def add(self, batch: dict[str, np.ndarray]) -> tuple[int, int]:
        """Take one output batch; returns the (files, chunks) in it seen for the first time."""
        files = chunks = 0
        for kind, text, info, vector in zip(batch["kind"], batch["text"], batch["info"], batch["embedding"],
                                            strict=True):
            data = json.loads(str(info))
            if kind == CHUNK:
                entry = self.file(data["file"])
                if data["id"] not in entry.chunks:
                    chunks += 1
                entry.chunks[data["id"]] = (data, str(text), np.asarray(vector, dtype="float32"))
                self.dimension = len(vector)
            else:
                entry = self.file(data["path"])
                if entry.info is None:
                    self.expected += int(data["chunks"])
                    files += 1
                entry.info = data
            if entry.complete:
                del self.in_flight[entry.path]
                self.finished.append(entry)
                if entry.info is not None and entry.info["error"] is None:
                    self.ready.append(entry)
                    self.ready_chunks += len(entry.chunks)
        if self.ready_chunks >= self.settings.ray_commit_chunks:
            self.flush()
        return files, chunks

    def flush(self) -> None:
        """Write the complete files waiting (one transaction)."""
        if not self.ready:
            return
        now = datetime.now(UTC).isoformat(timespec="seconds")
        removed: list[str] = []
        rows: list[ChunkRow] = []
        vectors: list[np.ndarray] = []
        documents: list[DocumentRow] = []
        for entry in sorted(self.ready, key=lambda e: int(e.info["position"]) if e.info else 0):
            info = entry.info or {}
            removed.extend(self.old_of.get(entry.path, []))
            self.replaced.update(self.old_of.get(entry.path, []))
            order = {doc["source"]: i for i, doc in enumerate(info["documents"])}
            for data, text, vector in sorted(entry.chunks.values(),
                                             key=lambda c: (order.get(c[0]["source"], 0), c[0]["start"], c[0]["id"])):
                rows.append(ChunkRow(id=data["id"], source=data["source"], page=data["page"], start=data["start"],
                                     end=data["end"], text=text, unit=data["unit"], section=data["section"],
                                     ocr=bool(data["ocr"])))
                vectors.append(vector)
            for doc in info["documents"]:
                documents.append(DocumentRow(doc["source"], info["sha"], info["mtime"], info["size"], doc["type"],
                                             doc["pages"], doc["n_chunks"], now))
        dimension = self.dimension or self.dimension_hint or _model_dimension(self.settings)
        matrix = np.stack(vectors) if vectors else np.zeros((0, dimension), dtype="float32")
        started = time.perf_counter()
        committed = self.writer.replace_documents(removed, rows, matrix, documents, self.model, dimension,
                                                  self.chunking, staging=self.staging)
        self.write_s += time.perf_counter() - started
        self.report.version, self.report.documents, self.report.chunks = (committed.version, committed.documents,
                                                                          committed.chunks)
        self.committed += 1
        self.ready, self.ready_chunks = [], 0


def _hash_all(files: Sequence[Path]) -> list[tuple[Path, str | OSError]]:
    """(path, sha256 or the OSError that stopped reading it), in order."""

    def one(path: Path) -> tuple[Path, str | OSError]:
        try:
            return path, _sha256(path)
        except OSError as exc:
            return path, exc

    with ThreadPoolExecutor(HASH_THREADS) as pool:
        return list(pool.map(one, files))


def _model_dimension(settings: Settings) -> int:
    """The embedding model's dimension, loaded on the driver (only for an index with nothing in it)."""
    from rag_qa.embeddings import SentenceTransformerEmbeddings

    return SentenceTransformerEmbeddings(settings=settings).dimension


def ingest_paths_ray(paths: Sequence[str | Path], index_dir: str | Path | None = None, *, address: str = LOCAL,
                     rebuild: bool = False, remove: Iterable[str | Path] = (), settings: Settings | None = None,
                     progress: ProgressFn | None = None, log: Callable[[str], None] | None = None,
                     embed_class: type = EmbedChunks,
                     read_fn: Callable[..., dict[str, Any]] = read_file) -> IngestReport:
    """:func:`ingest.pipeline.ingest_paths` on a Ray cluster, into a PostgreSQL index (module docstring).

    ``address`` is ``local`` (a cluster started in this process), ``auto``, ``host:port`` or
    ``ray://host:10001``; when this process is already connected to Ray, that connection is used.
    ``embed_class`` and ``read_fn`` replace :class:`~ingest.ray_stages.EmbedChunks` and
    :func:`~ingest.ray_stages.read_file` (the tests' fault injection).
    """
    started = time.perf_counter()
    settings = settings or get_settings()
    require_cluster_store(settings)
    progress = progress or (lambda done, total, desc: None)
    remove = list(remove)
    if not paths and not remove:
        raise IngestUsageError("nothing to do: give files or folders to ingest, or --remove PATH")
    index = Path(index_dir if index_dir is not None else settings.index).expanduser().resolve()
    found = discover(list(paths))
    model = canonical_model_name(settings.embedding_model)
    report = IngestReport(index=str(index), skipped=[str(p) for p in found.skipped])

    def note(message: str) -> None:
        report.notes.append(message)
        if log is not None:
            log(message)

    def fail(path: Path | str, error: str) -> None:
        report.failed.append({"path": str(path), "error": error})

    for path, error in found.failed:
        fail(path, error)

    with open_writer(index, settings, log=note) as writer:
        if not isinstance(writer, PieceWriter):  # pragma: no cover - require_cluster_store came first
            raise IngestUsageError("--ray needs an index store that takes documents in pieces (pgvector)")
        previous = writer.previous()
        if paths and not rebuild and previous is not None:
            require_embedding_model(model, index, previous.info.embedding_model, previous.info.dimension)
        known = previous.documents if previous is not None and not rebuild else {}
        memory = FailureMemory(settings, writer.read_failures(), forget=rebuild)
        todo: list[tuple[Path, str]] = []
        hashed = time.perf_counter()
        for path, sha in _hash_all(found.files):
            if isinstance(sha, OSError):
                fail(path, f"cannot read: {sha.strerror or sha}")
                continue
            memory.seen(path, sha)
            if str(path) in known and known[str(path)].sha256 == sha:
                report.unchanged.append(str(path))
            elif (error := memory.error(path, sha)) is not None:
                fail(path, error)
            else:
                todo.append((path, sha))
        report.timings["hash_s"] = time.perf_counter() - hashed
        removed = _removals(known, found.folders, {str(f) for f in found.files}, remove, note)
        if rebuild:
            writer.drop_staging()
        out = _Writer(writer, report, known, {str(p) for p, _ in todo}, model, settings, staging=rebuild)
        out.dimension_hint = previous.info.dimension if previous is not None and not rebuild else None
        if todo:
            _run_cluster(todo, settings, address, out, report, progress, note, embed_class, read_fn)
        loaded = {f.path for f in out.finished if f.info is not None and f.info["error"] is None}
        new_sources = {doc["source"] for f in out.finished if f.info for doc in f.info["documents"]}
        removed |= {s for s in known if _belongs(s, loaded) and s not in new_sources}
        report.removed = sorted(removed)
        for entry in sorted(out.finished, key=lambda e: int(e.info["position"]) if e.info else 0):
            info = entry.info or {}
            if info.get("error") is not None:
                fail(info["path"], info["error"])
                if info.get("remember"):
                    memory.remember(Path(info["path"]), info["sha"], info["error"])
                continue
            for doc in info["documents"]:
                (report.updated if doc["source"] in known else report.added).append(doc["source"])
                for text in doc["notes"]:
                    note(f"{doc['source']}: {text}")
                for source, error in doc["failed"]:
                    fail(source, error)
                report.skipped.extend(doc["skipped"])
        gone = sorted(s for s in removed if s in known and s not in out.replaced)
        if gone or (out.committed == 0 and (previous is None or rebuild)):
            # removals, or an index that must exist although nothing went in
            dimension = out.dimension or out.dimension_hint or _model_dimension(settings)
            committed = writer.replace_documents(gone, [], np.zeros((0, dimension), dtype="float32"), [], model,
                                                 dimension, out.chunking, staging=rebuild)
            report.version, report.documents, report.chunks = committed.version, committed.documents, committed.chunks
        elif out.committed == 0 and previous is not None:
            report.version, report.documents, report.chunks = (previous.info.version, len(known),
                                                                previous.info.chunks)
        if rebuild:
            committed = writer.publish_staging()
            report.version, report.documents, report.chunks = committed.version, committed.documents, committed.chunks
        if memory.changed:
            writer.write_failures(memory.data())
    report.timings["write_s"] = out.write_s
    report.seconds = time.perf_counter() - started
    return report


def _run_cluster(todo: list[tuple[Path, str]], settings: Settings, address: str, out: _Writer,
                 report: IngestReport, progress: ProgressFn, note: Callable[[str], None], embed_class: type,
                 read_fn: Callable[..., dict[str, Any]]) -> None:
    """Run the pipeline over ``todo`` on the cluster, writing complete files as they come."""
    import ray

    started_here, dashboard = connect(address)
    try:
        if dashboard:
            note(f"Ray dashboard: {dashboard}")
        cpus = float(ray.cluster_resources().get("CPU", 0))
        workers = plan_workers(settings, cpus)
        report.timings["ray_workers"] = workers
        dataset = build_dataset(todo, settings, workers, embed_class, read_fn)
        files = chunks = 0
        progress(0, len(todo), "reading")
        began = time.perf_counter()
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                if "first_output_s" not in report.timings:  # actors up, model loaded: the steady state starts
                    report.timings["first_output_s"] = time.perf_counter() - began
                done, received = out.add(batch)
                if "first_output_chunks" not in report.timings:
                    report.timings["first_output_chunks"] = received
                if done:
                    files += done
                    progress(files, len(todo), "reading")
                if received:
                    chunks += received
                    progress(chunks, max(chunks, out.expected), "embedding")
        except IngestUsageError:
            raise
        except Exception as exc:
            raise ClusterError(f"the Ray pipeline failed: {_one_line(exc)}") from exc
        report.timings["cluster_s"] = time.perf_counter() - began
        report.embedded_chunks = chunks
        if out.in_flight:  # pragma: no cover - every file row carries its chunk count
            raise ClusterError(f"{len(out.in_flight)} files came back incomplete from the cluster; run again")
        progress(0, 1, "writing index")
        out.flush()
        progress(1, 1, "writing index")
    finally:
        if started_here:
            ray.shutdown()
