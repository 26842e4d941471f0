"""On-disk layout of a FAISS index directory and its manifest.

::

    INDEX/
      CURRENT                 name of the live version ("000007"), switched with os.replace
      write.lock              filelock serialising writers
      failures.json           files that could not be read, with their sha256 (skipped while unchanged)
      versions/000007/        one complete version
        manifest.json         format version, embedding model + dimension, counts
        faiss.index           IndexIDMap(IndexFlatIP), written with faiss.write_index
        docstore.sqlite       chunks + documents tables
        bm25/                 bm25s arrays (.npy, no pickle) and vocab/params (.json)
      versions/.tmp-000008-<pid>/   a version being written (removed if its writer died)

Readers only ever follow ``CURRENT``, so a version is visible only once it is complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag_qa.store.base import IndexCorruptError

FORMAT_VERSION = 2  # 2: chunks carry unit, section and ocr (docstore.py); format 1 versions are still read
READABLE_FORMATS = (1, 2)
CURRENT_FILE = "CURRENT"
LOCK_FILE = "write.lock"
VERSIONS_DIR = "versions"
TMP_PREFIX = ".tmp-"
MANIFEST_FILE = "manifest.json"
FAISS_FILE = "faiss.index"
DOCSTORE_FILE = "docstore.sqlite"
BM25_DIR = "bm25"
FAILURES_FILE = "failures.json"


@dataclass
class Manifest:
    """What a version was built with; checked before the index is extended or queried."""

    embedding_model: str
    dimension: int
    version: int
    documents: int = 0
    chunks: int = 0
    format_version: int = FORMAT_VERSION
    created_at: str = ""
    chunking: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read index manifest {path}: {exc}") from exc
        if data.get("format_version") not in READABLE_FORMATS:
            raise IndexCorruptError(
                f"index {path.parent} has format {data.get('format_version')}, this code reads "
                f"{FORMAT_VERSION}; rebuild it with `python -m ingest --rebuild PATH...`"
            )
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def version_name(number: int) -> str:
    return f"{number:06d}"


def versions_dir(index: Path) -> Path:
    return index / VERSIONS_DIR


def current_version(index: Path) -> str | None:
    """Name of the live version, or None when the index has never been switched in."""
    try:
        name = (index / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def current_version_dir(index: Path) -> Path | None:
    name = current_version(index)
    return versions_dir(index) / name if name else None


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
