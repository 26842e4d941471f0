"""Shared fixtures: the committed test documents and one real index built from them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
DOCS = DATA / "docs"  # one small real file of each supported type
BAD = DATA / "bad"  # files ingestion must refuse, one reason each


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index (MiniLM + FAISS + SQLite + BM25) over ``tests/data/docs``, built once per session.

    Treat it as read-only; copy it (``shutil.copytree``) before changing it.
    """
    from ingest.pipeline import ingest_paths
    from rag_qa.config import Settings

    index = tmp_path_factory.mktemp("built") / "index"
    report = ingest_paths([DOCS], index, settings=Settings())
    assert not report.failed, report.failed
    return index


@pytest.fixture(scope="session")
def embeddings():
    """The real default embedding model (loaded once per process)."""
    from rag_qa.embeddings import SentenceTransformerEmbeddings

    return SentenceTransformerEmbeddings("minilm")


@pytest.fixture
def index_copy(built_index: Path, tmp_path: Path) -> Path:
    """A private, writable copy of :func:`built_index`."""
    target = tmp_path / "index"
    shutil.copytree(built_index, target)
    return target
