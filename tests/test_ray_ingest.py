"""``python -m ingest --ray``: the Ray Data pipeline on a local 2-CPU cluster, into a throwaway PostgreSQL.

The Ray index must equal the single-process one (chunk ids, texts, offsets, vectors within 1e-5),
stay incremental (unchanged files embed nothing; an updated and a removed file are handled), survive
a killed worker process (Ray retries it; the index is complete and identical), and report a hostile
file in one line.  A few small documents keep this quick on 2 cores; the cluster is started once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from conftest import BAD, DOCS, REPO, pg_settings

from ingest.cli import main as ingest_main
from ingest.pipeline import ingest_paths
from ingest.ray_pipeline import ingest_paths_ray
from ingest.ray_stages import EmbedChunks, read_file
from rag_qa.config import Settings
from rag_qa.store.pg.reader import drop_index
from rag_qa.store.pg.schema import connect, register_vector_type, schema_name

pytestmark = [pytest.mark.ray, pytest.mark.pgvector]

COLUMNS = 'id, source, page, "start", "end", text, unit, section, ocr, embedding'


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray cluster of 2 CPUs for this module (the pipeline uses the connection it finds)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")  # workers inherit the offline env
    yield
    ray.shutdown()


def ray_settings(dsn: str, **extra: Any) -> Settings:
    """One embedding actor of 1 CPU and half a CPU per parse task: fits the 2-CPU test cluster."""
    return pg_settings(dsn).model_copy(update={"ray_workers": 1, "ray_worker_cpus": 1.0, "ray_parse_cpus": 0.5,
                                               **extra})


@pytest.fixture
def indexes(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[Path, Path]]:
    """Two fresh index names on the test server (single-process, Ray), dropped afterwards."""
    pair = (tmp_path / f"single_{uuid.uuid4().hex[:10]}", tmp_path / f"ray_{uuid.uuid4().hex[:10]}")
    yield pair
    for index in pair:
        drop_index(index, pg_settings(pg_dsn))




def chunks_of(dsn: str, index: Path) -> dict[str, tuple[Any, ...]]:
    """Every chunk row of ``index``, by id (vector last)."""
    schema = schema_name(index)
    with connect(dsn) as conn:
        register_vector_type(conn, dsn)
        rows = conn.execute(f"SELECT {COLUMNS} FROM {schema}.chunks").fetchall()
    return {row[0]: tuple(row[1:-1]) + (np.asarray(row[-1], dtype="float32"),) for row in rows}


def documents_of(dsn: str, index: Path) -> dict[str, tuple[Any, ...]]:
    with connect(dsn) as conn:
        rows = conn.execute(f"SELECT source, sha256, size, type, pages, n_chunks FROM {schema_name(index)}.documents")
        return {row[0]: tuple(row[1:]) for row in rows}


def assert_same_index(dsn: str, single: Path, clustered: Path) -> None:
    """Same documents, chunk ids, texts, offsets and metadata; vectors within 1e-5."""
    assert documents_of(dsn, clustered) == documents_of(dsn, single)
    expected, got = chunks_of(dsn, single), chunks_of(dsn, clustered)
    assert sorted(got) == sorted(expected) and got
    for chunk_id, row in expected.items():
        assert got[chunk_id][:-1] == row[:-1], chunk_id
        assert float(np.max(np.abs(got[chunk_id][-1] - row[-1]))) < 1e-5, chunk_id


class NoEmbedding(EmbedChunks):
    """Fails the run if an embedding actor is ever started."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("an embedding actor was started although nothing needed embedding")


def test_ray_ingest_equals_single_process_and_stays_incremental(cluster: None, pg_dsn: str, folder: Path,
                                                                 indexes: tuple[Path, Path]) -> None:
    single, clustered = indexes
    settings = ray_settings(pg_dsn)
    reference = ingest_paths([folder], single, settings=settings)
    first = ingest_paths_ray([folder], clustered, settings=settings)
    assert (len(first.added), first.failed, first.documents, first.chunks) == (3, [], 3, reference.chunks)
    assert first.embedded_chunks == first.chunks > 0
    assert_same_index(pg_dsn, single, clustered)

    # nothing changed: no Ray job at all, nothing embedded, the version stays
    again = ingest_paths_ray([folder], clustered, settings=settings, embed_class=NoEmbedding)
    assert (len(again.unchanged), again.embedded_chunks, again.version) == (3, 0, first.version)

    # one file updated, one removed: only the updated one is embedded, both indexes agree again
    md = folder / "code-of-conduct.md"
    md.write_text(md.read_text(encoding="utf-8") + "\n\nThe quokka clause: every maintainer feeds the quokka.\n",
                  encoding="utf-8")
    (folder / "oxygen.html").unlink()
    ingest_paths([folder], single, settings=settings)
    changed = ingest_paths_ray([folder], clustered, settings=settings)
    assert [Path(s).name for s in changed.updated] == ["code-of-conduct.md"]
    assert [Path(s).name for s in changed.removed] == ["oxygen.html"]
    assert changed.documents == 2 and changed.embedded_chunks == len(
        [c for c in chunks_of(pg_dsn, clustered).values() if c[0] == str(md.resolve())])
    assert_same_index(pg_dsn, single, clustered)


def killing_embedder(marker: Path) -> type:
    """An :class:`EmbedChunks` whose process SIGKILLs itself on its first batch, once per ``marker``
    (a class made here travels to the actor by value; the marker file outlives the killed process)."""

    class KillOnce(EmbedChunks):
        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return super().__call__(batch)

    return KillOnce


def killing_reader(marker: Path) -> Callable[..., dict[str, Any]]:
    """:func:`read_file`, but the task's worker process SIGKILLs itself on its first file, once."""

    def read_or_die(row: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return read_file(row, settings)

    return read_or_die


def test_killed_worker_processes_are_retried_and_the_index_is_complete(
        cluster: None, pg_dsn: str, folder: Path, indexes: tuple[Path, Path], tmp_path: Path) -> None:
    single, clustered = indexes
    settings = ray_settings(pg_dsn)
    ingest_paths([folder], single, settings=settings)
    actor, task = tmp_path / "actor-killed", tmp_path / "task-killed"
    report = ingest_paths_ray([folder], clustered, settings=settings, embed_class=killing_embedder(actor),
                              read_fn=killing_reader(task))
    assert actor.exists() and task.exists(), "a worker was not killed"
    assert (report.failed, report.documents, report.embedded_chunks) == ([], 3, report.chunks)
    assert_same_index(pg_dsn, single, clustered)


def test_a_hostile_file_is_one_line_and_costs_nothing_else(cluster: None, pg_dsn: str, folder: Path,
                                                           indexes: tuple[Path, Path]) -> None:
    single, clustered = indexes
    settings = ray_settings(pg_dsn)
    ingest_paths([folder], single, settings=settings)  # the good files alone
    shutil.copy(BAD / "bomb.docx", folder / "bomb.docx")
    shutil.copy(BAD / "truncated.pdf", folder / "truncated.pdf")
    expected = {f["path"]: f["error"] for f in ingest_paths([folder], single, settings=settings).failed}
    report = ingest_paths_ray([folder], clustered, settings=settings)
    assert {f["path"]: f["error"] for f in report.failed} == expected
    assert sorted(Path(p).name for p in expected) == ["bomb.docx", "truncated.pdf"]
    assert all("\n" not in error and len(error) <= 300 for error in expected.values())
    assert report.documents == 3
    assert_same_index(pg_dsn, single, clustered)
    # remembered by content hash: the next run reports them again without sending them to the cluster
    again = ingest_paths_ray([folder], clustered, settings=settings, embed_class=NoEmbedding)
    assert {f["path"]: f["error"] for f in again.failed} == expected and again.embedded_chunks == 0


def test_ray_with_a_faiss_index_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_qa.config import get_settings

    monkeypatch.setenv("RAGQA_STORE", "faiss")
    get_settings.cache_clear()
    try:
        code = ingest_main([str(DOCS / "oxygen.html"), "--index", str(tmp_path / "index"), "--ray", "local"])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("ingest: error: --ray writes into PostgreSQL") and "RAGQA_STORE=pgvector" in err[0]
    assert not (tmp_path / "index").exists()


def test_cli_ray_local_prints_progress_and_the_json_summary(pg_dsn: str, tmp_path: Path) -> None:
    docs = tmp_path / "one"
    docs.mkdir()
    shutil.copy(DOCS / "oxygen.html", docs / "oxygen.html")
    index = tmp_path / f"cli_{uuid.uuid4().hex[:10]}"
    env = dict(os.environ, RAGQA_STORE="pgvector", RAGQA_PG_DSN=pg_dsn, RAGQA_RAY_WORKER_CPUS="1",
               RAGQA_RAY_PARSE_CPUS="0.5", RAGQA_RAY_WORKERS="1", HF_HUB_OFFLINE="1")
    try:
        result = subprocess.run([sys.executable, "-m", "ingest", str(docs), "--index", str(index), "--ray", "local",
                                 "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    finally:
        drop_index(index, pg_settings(pg_dsn))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["documents"], summary["failed"]) == (1, 1, [])
    lines = result.stderr.splitlines()
    assert any(line.startswith("reading 1 files") for line in lines), result.stderr
    assert any(line.startswith("embedding") for line in lines) and "Traceback" not in result.stderr


def test_ray_is_imported_only_on_the_ray_path() -> None:
    """The core install stays lean: nothing outside ``--ray`` imports Ray, not even the Ray modules' own imports."""
    code = ("import sys, ingest.cli, ingest.pipeline, ingest.ray_pipeline, ingest.ray_stages, rag_qa.store.pg.writer; "
            "print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr[-2000:]
