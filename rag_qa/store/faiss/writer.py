"""Write side of a FAISS index: new versions written beside the live one and switched in atomically.

A version is built in ``versions/.tmp-NNNNNN-PID/``, fsynced, renamed to ``versions/NNNNNN``,
and only then does ``CURRENT`` move to it (temp file + ``os.replace``).  ``kill -9`` at any
point therefore leaves the previous version live and complete; whatever the dead writer left
is removed by the next writer, which says so.  A ``filelock`` serialises writers.  Unchanged
documents are carried into the new version by copying their chunks and vectors from the old one
(:meth:`FaissIndexWriter.commit_changes`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from rag_qa.store.base import (
    ChunkRow,
    Committed,
    DocumentRow,
    IndexCorruptError,
    IndexInfo,
    IndexLockedError,
    as_matrix,
    require_dimension,
)
from rag_qa.store.faiss import docstore
from rag_qa.store.faiss.bm25 import build_bm25
from rag_qa.store.faiss.layout import (
    BM25_DIR,
    CURRENT_FILE,
    DOCSTORE_FILE,
    FAILURES_FILE,
    FAISS_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    TMP_PREFIX,
    Manifest,
    current_version,
    fsync_dir,
    version_name,
    versions_dir,
)


@dataclass
class VersionData:
    """Everything one version holds; chunk ``i`` has vector ``vectors[i]`` and faiss id ``i``."""

    chunks: list[ChunkRow]
    vectors: np.ndarray
    documents: list[DocumentRow]
    embedding_model: str
    dimension: int
    chunking: dict[str, Any] = field(default_factory=dict)


class PreviousVersion:
    """The live version as a writer sees it: documents at once, chunks and vectors on demand."""

    def __init__(self, version_dir: Path) -> None:
        self.dir = version_dir
        self.manifest = Manifest.read(version_dir / MANIFEST_FILE)
        self.info = IndexInfo.of(asdict(self.manifest))
        try:
            self._con = docstore.connect_readonly(version_dir / DOCSTORE_FILE)
        except FileNotFoundError as exc:
            raise IndexCorruptError(f"index version {version_dir} has no docstore") from exc
        self.documents = docstore.read_documents(self._con)
        self._positions: dict[int, int] | None = None
        self._flat: np.ndarray | None = None  # the version's vectors, by position in its FAISS file

    def chunks_and_vectors(self, sources: Iterable[str]) -> tuple[list[ChunkRow], np.ndarray]:
        """The stored chunks of ``sources`` with their vectors, read back from the FAISS file."""
        import faiss

        pairs = docstore.chunks_of_sources(self._con, sources)
        if not pairs:
            return [], np.zeros((0, self.manifest.dimension), dtype="float32")
        if self._positions is None:
            index = faiss.read_index(str(self.dir / FAISS_FILE))
            ids = faiss.vector_to_array(index.id_map)
            self._positions = {int(i): p for p, i in enumerate(ids)}
            flat = faiss.downcast_index(index.index)
            self._flat = flat.reconstruct_n(0, flat.ntotal)  # every vector at once, not one call per kept chunk
        vectors = self._flat[[self._positions[fid] for fid, _ in pairs]]
        return [row for _, row in pairs], np.ascontiguousarray(vectors, dtype="float32")

    def close(self) -> None:
        self._con.close()


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


class FaissIndexWriter:
    """Context manager holding the index's write lock; ``commit`` switches a new version in."""

    def __init__(self, path: Path, *, timeout: float = 60.0, keep_versions: int = 2,
                 log: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.keep_versions = max(1, keep_versions)
        self.log = log or (lambda message: None)
        self._lock: FileLock | None = None

    def __enter__(self) -> FaissIndexWriter:
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path / LOCK_FILE), timeout=self.timeout)
        try:
            self._lock.acquire()
        except Timeout as exc:
            raise IndexLockedError(
                f"index {self.path} is locked by another writer (waited {self.timeout:g}s); "
                "try again when that ingest has finished"
            ) from exc
        try:
            self._remove_stale()
        except BaseException:  # __exit__ is not called when __enter__ raises
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()

    def previous(self) -> PreviousVersion | None:
        name = current_version(self.path)
        if name is None:
            return None
        version_dir = versions_dir(self.path) / name
        if not version_dir.is_dir():
            raise IndexCorruptError(f"index {self.path}: CURRENT points at missing version {name}; "
                                    "re-run with --rebuild")
        return PreviousVersion(version_dir)

    # -- housekeeping -------------------------------------------------------------------
    def _version_numbers(self) -> list[int]:
        root = versions_dir(self.path)
        if not root.is_dir():
            return []
        return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())

    def _remove_stale(self) -> None:
        """Remove what an interrupted writer left: temp dirs and versions never switched in."""
        root = versions_dir(self.path)
        (self.path / f"{CURRENT_FILE}.tmp").unlink(missing_ok=True)
        if not root.is_dir():
            return
        current = current_version(self.path)
        numbered = sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())
        if current is not None and not current.isdigit():
            raise IndexCorruptError(f"index {self.path}: CURRENT holds {current[:40]!r}, not a version number; "
                                    f"write the live version's number into it (versions here: {numbered[-3:]})")
        if current is None and numbered and numbered != [1]:
            # only a first version can be written but never switched in; anything else means CURRENT was lost
            raise IndexCorruptError(f"index {self.path}: CURRENT is missing but versions {numbered[-3:]} exist; "
                                    f"write the live version's number into it (e.g. {version_name(numbered[-1])})")
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(TMP_PREFIX):
                self.log(f"removed unfinished index version {entry.name} left by an interrupted ingest")
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.isdigit() and (current is None or int(entry.name) > int(current)):
                self.log(f"removed index version {entry.name}, written but never switched in")
                shutil.rmtree(entry, ignore_errors=True)

    def _prune(self, current: int) -> None:
        old = [n for n in self._version_numbers() if n < current]
        for number in old[: max(0, len(old) - (self.keep_versions - 1))]:
            shutil.rmtree(versions_dir(self.path) / version_name(number), ignore_errors=True)

    # -- writing ------------------------------------------------------------------------
    def commit_changes(self, kept_sources: Sequence[str], chunks: Sequence[ChunkRow], vectors: np.ndarray,
                       new_documents: Sequence[DocumentRow], embedding_model: str, dimension: int,
                       chunking: dict[str, Any] | None = None) -> Committed:
        """A new version holding the chunks of ``kept_sources`` (copied from the live version) plus ``chunks``."""
        kept_rows: list[ChunkRow] = []
        kept_vectors = np.zeros((0, dimension), dtype="float32")
        kept_documents: list[DocumentRow] = []
        previous = self.previous() if kept_sources else None
        if previous is not None:
            try:
                require_dimension(self.path, previous.info.dimension, dimension)
                kept_rows, kept_vectors = previous.chunks_and_vectors(kept_sources)
                kept_documents = [previous.documents[s] for s in kept_sources]
            finally:
                previous.close()
        rows, all_vectors = merge_rows(kept_rows, kept_vectors, chunks, vectors, dimension)
        documents = kept_documents + list(new_documents)
        version = self.commit(VersionData(chunks=rows, vectors=all_vectors, documents=documents,
                                          embedding_model=embedding_model, dimension=dimension,
                                          chunking=dict(chunking or {})))
        return Committed(version, len(documents), len(rows))

    def read_failures(self) -> dict[str, Any]:
        """The failure memory beside the versions (``{}`` when there is none or it is unreadable)."""
        try:
            data = json.loads((self.path / FAILURES_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_failures(self, data: dict[str, Any]) -> None:
        """Replace the failure memory atomically (temp file + ``os.replace``, under the write lock)."""
        target = self.path / FAILURES_FILE
        tmp = target.with_name(f"{FAILURES_FILE}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, target)

    def commit(self, data: VersionData) -> int:
        """Write ``data`` as the next version and make it live; returns its number."""
        if self._lock is None or not self._lock.is_locked:
            raise RuntimeError("FaissIndexWriter.commit outside its `with` block")
        number = max(self._version_numbers() + [0]) + 1
        name = version_name(number)
        root = versions_dir(self.path)
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f"{TMP_PREFIX}{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self._write_files(tmp, data, number)
        _fsync_tree(tmp)
        os.rename(tmp, root / name)
        fsync_dir(root)
        pointer = self.path / f"{CURRENT_FILE}.tmp"
        with open(pointer, "w", encoding="utf-8") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pointer, self.path / CURRENT_FILE)
        fsync_dir(self.path)
        self._prune(number)
        return number

    @staticmethod
    def _write_files(target: Path, data: VersionData, number: int) -> None:
        import faiss

        vectors = as_matrix(data.vectors, len(data.chunks), data.dimension)
        index = faiss.IndexIDMap(faiss.IndexFlatIP(data.dimension))
        if len(vectors):
            index.add_with_ids(vectors, np.arange(len(vectors), dtype="int64"))
        faiss.write_index(index, str(target / FAISS_FILE))
        docstore.write_docstore(target / DOCSTORE_FILE, data.chunks, data.documents)
        build_bm25([c.text for c in data.chunks], target / BM25_DIR)
        Manifest(
            embedding_model=data.embedding_model, dimension=data.dimension, version=number,
            documents=len(data.documents), chunks=len(data.chunks),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"), chunking=data.chunking,
        ).write(target / MANIFEST_FILE)


def merge_rows(kept: Sequence[ChunkRow], kept_vectors: np.ndarray, new: Sequence[ChunkRow],
               new_vectors: np.ndarray, dimension: int) -> tuple[list[ChunkRow], np.ndarray]:
    """Concatenate kept and new chunks (and their vectors) in a stable order."""
    chunks = list(kept) + list(new)
    parts = [np.asarray(v, dtype="float32").reshape(-1, dimension) for v in (kept_vectors, new_vectors)]
    return chunks, np.concatenate(parts, axis=0)
