"""``python -m ingest PATH --ray ADDRESS``: the same ingest spread over a Ray cluster, into PostgreSQL.

The driver (this process) plans and commits exactly as on one machine (:mod:`ingest.pipeline`:
files hashed, unchanged ones skipped, remembered bad ones reported again without being parsed,
files gone from a folder and ``--remove`` paths dropped); only the execute step differs:
:class:`RayExecutor` sends the files to read through a Ray Data pipeline (:mod:`ingest.ray_stages`)
and yields each file's outcome as soon as all its chunks are back:

    from_items(files) -> map(read_file)          tasks: parse (parser worker, limits) + chunk
                      -> flat_map(explode)       one row per chunk, then one row per file
                      -> map_batches(EmbedChunks, compute=ActorPoolStrategy(size=N))
                                                 actors, the model loaded once per actor
                      -> iter_batches on the driver -> FileOutcome -> PieceCommit
                                                 (PieceWriter.replace_documents)

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
corpus").  Ray is imported here and only here, inside the functions that need it.  The rows
between the stages and the driver are JSON strings; they are decoded back into
:class:`~ingest.outcome.FileOutcome` s here, so the rest of the ingest never sees JSON.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.commit import ProgressFn
from ingest.errors import IngestUsageError
from ingest.outcome import FileOutcome, ReadDocument
from ingest.pipeline import ingest_paths
from ingest.ray_stages import CHUNK, EmbedChunks, explode, read_file
from ingest.report import IngestReport
from rag_qa.config import Settings, get_settings
from rag_qa.env import CHECKOUT, OFFLINE_DEFAULTS, set_offline_defaults
from rag_qa.store.base import ChunkRow

if TYPE_CHECKING:
    from ray.data import Dataset

LOCAL = "local"
MAX_BLOCKS = 2000  # input blocks (one read task each) at most; one per file below that
BATCH_ROWS = 256  # rows per batch handed to an embedding actor (it sorts them by length into encoder batches)


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
    return ds.map_batches(embed_class, batch_size=BATCH_ROWS, batch_format="numpy",
                          fn_constructor_kwargs={"settings": data,
                                                 "threads": max(1, round(settings.ray_worker_cpus))},
                          compute=ActorPoolStrategy(size=workers), num_cpus=settings.ray_worker_cpus)


@dataclass
class _File:
    """A file in flight on the driver: its ``file`` row (decoded) and the chunks embedded so far, by id."""

    path: str
    info: dict[str, Any] | None = None
    chunks: dict[str, tuple[dict[str, Any], str, np.ndarray]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.info is not None and len(self.chunks) >= int(self.info["chunks"])

    def outcome(self) -> FileOutcome:
        """The file's outcome, its rows in document order (then by offset) with their vectors."""
        info = self.info or {}
        outcome = FileOutcome(int(info["position"]), Path(info["path"]), str(info["sha"]), float(info["mtime"]),
                              int(info["size"]), error=info["error"], remember=bool(info["remember"]),
                              parse_s=float(info["parse_s"]), chunk_s=float(info["chunk_s"]))
        documents = {doc["source"]: ReadDocument(doc["source"], doc["type"], doc["pages"], [], list(doc["notes"]),
                                                 [(str(s), str(e)) for s, e in doc["failed"]], list(doc["skipped"]))
                     for doc in info["documents"]}
        order = {source: i for i, source in enumerate(documents)}
        vectors: list[np.ndarray] = []
        for data, text, vector in sorted(self.chunks.values(),
                                         key=lambda c: (order.get(c[0]["source"], 0), c[0]["start"], c[0]["id"])):
            documents[data["source"]].rows.append(ChunkRow(
                id=data["id"], source=data["source"], page=data["page"], start=data["start"], end=data["end"],
                text=text, unit=data["unit"], section=data["section"], ocr=bool(data["ocr"])))
            vectors.append(vector)
        outcome.documents = list(documents.values()) if outcome.error is None else []
        if vectors:
            outcome.vectors = np.stack(vectors)
        return outcome


class _Collector:
    """Puts the rows coming back from the cluster together into complete files (JSON decoded here only)."""

    def __init__(self) -> None:
        self.in_flight: dict[str, _File] = {}
        self.expected = 0  # chunks announced by the file rows so far

    def _file(self, path: str) -> _File:
        entry = self.in_flight.get(path)
        if entry is None:
            entry = self.in_flight[path] = _File(path)
        return entry

    def add(self, batch: dict[str, np.ndarray]) -> tuple[list[FileOutcome], int]:
        """Take one output batch; returns the files it completed and the chunks in it seen for the first time."""
        done: list[FileOutcome] = []
        chunks = 0
        for kind, text, info, vector in zip(batch["kind"], batch["text"], batch["info"], batch["embedding"],
                                            strict=True):
            data = json.loads(str(info))
            if kind == CHUNK:
                entry = self._file(data["file"])
                if data["id"] not in entry.chunks:  # a retried batch cannot add a chunk twice
                    chunks += 1
                entry.chunks[data["id"]] = (data, str(text), np.asarray(vector, dtype="float32"))
            else:
                entry = self._file(data["path"])
                if entry.info is None:
                    self.expected += int(data["chunks"])
                entry.info = data
            if entry.complete:
                del self.in_flight[entry.path]
                done.append(entry.outcome())
        return done, chunks


class RayExecutor:
    """Reads, chunks and embeds on a Ray cluster (module docstring); outcomes stream into a
    :class:`~ingest.commit.PieceCommit` as their files complete.

    ``embed_class`` and ``read_fn`` replace :class:`~ingest.ray_stages.EmbedChunks` and
    :func:`~ingest.ray_stages.read_file` (the tests' fault injection).
    """

    pieces = True

    def __init__(self, address: str = LOCAL, embed_class: type = EmbedChunks,
                 read_fn: Callable[..., dict[str, Any]] = read_file) -> None:
        self.address, self.embed_class, self.read_fn = address, embed_class, read_fn

    def run(self, todo: list[tuple[Path, str]], settings: Settings, report: IngestReport, progress: ProgressFn,
            note: Callable[[str], None]) -> Iterator[FileOutcome]:
        """Run the pipeline over ``todo`` on the cluster, yielding each file as it completes."""
        if not todo:  # nothing to read: Ray is not even started
            return
        import ray

        started_here, dashboard = connect(self.address)
        try:
            if dashboard:
                note(f"Ray dashboard: {dashboard}")
            cpus = float(ray.cluster_resources().get("CPU", 0))
            workers = plan_workers(settings, cpus)
            report.timings["ray_workers"] = workers
            dataset = build_dataset(todo, settings, workers, self.embed_class, self.read_fn)
            collector = _Collector()
            files = chunks = 0
            progress(0, len(todo), "reading")
            began = time.perf_counter()
            try:
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    if "first_output_s" not in report.timings:  # actors up, model loaded: the steady state starts
                        report.timings["first_output_s"] = time.perf_counter() - began
                    done, received = collector.add(batch)
                    if "first_output_chunks" not in report.timings:
                        report.timings["first_output_chunks"] = received
                    if done:
                        files += len(done)
                        progress(files, len(todo), "reading")
                    if received:
                        chunks += received
                        progress(chunks, max(chunks, collector.expected), "embedding")
                    yield from done  # the commit writes a group as soon as it is complete
            except IngestUsageError:
                raise
            except Exception as exc:
                raise ClusterError(f"the Ray pipeline failed: {_one_line(exc)}") from exc
            report.timings["cluster_s"] = time.perf_counter() - began
            if collector.in_flight:  # pragma: no cover - every file row carries its chunk count
                raise ClusterError(f"{len(collector.in_flight)} files came back incomplete from the cluster; "
                                   "run again")
        finally:
            if started_here:
                ray.shutdown()


def ingest_paths_ray(paths: Sequence[str | Path], index_dir: str | Path | None = None, *, address: str = LOCAL,
                     rebuild: bool = False, remove: Iterable[str | Path] = (), settings: Settings | None = None,
                     progress: ProgressFn | None = None, log: Callable[[str], None] | None = None,
                     embed_class: type = EmbedChunks,
                     read_fn: Callable[..., dict[str, Any]] = read_file) -> IngestReport:
    """:func:`ingest.pipeline.ingest_paths` with a :class:`RayExecutor`, into a PostgreSQL index (module docstring).

    ``address`` is ``local`` (a cluster started in this process), ``auto``, ``host:port`` or
    ``ray://host:10001``; when this process is already connected to Ray, that connection is used.
    """
    settings = settings or get_settings()
    require_cluster_store(settings)
    return ingest_paths(paths, index_dir, rebuild=rebuild, remove=remove, settings=settings, progress=progress,
                        log=log, executor=RayExecutor(address, embed_class, read_fn))
