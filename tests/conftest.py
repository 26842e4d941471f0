"""Shared fixtures: the committed test documents and one real index built from them.

Store tests run against both backends (``backend_settings`` / ``built_store``): FAISS folders
and PostgreSQL + pgvector.  The pgvector ones are marked ``pgvector`` and use the server in
``RAGQA_PG_DSN`` or, when none is set, a throwaway one that ``pgserver`` starts (PostgreSQL 16
+ pgvector from PyPI, no system packages; as root it runs the server as a ``pgserver`` user).

What is expensive is made once per test run: the index (:func:`built_index`, shared by pytest-xdist's
workers too; copy it before changing it), the embedder and the extractive reader (process-wide caches of
their own); each GGUF model's dequantised weights are made once and kept in the user's cache
(``rag_qa.models.dequantised``).  ``make test`` runs the suite on two xdist workers (:func:`xdist_group`
says which tests stay together, and why).
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from rag_qa.env import set_offline_defaults

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from rag_qa.config import Settings

set_offline_defaults()
if os.environ.get("PYTEST_XDIST_WORKER"):
    # two workers on two cores: one thread each for torch (and the processes tests start), or each process's
    # threads wait at every parallel region for a core the other worker holds
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
DOCS = DATA / "docs"  # one small real file of each supported type
BAD = DATA / "bad"  # files ingestion must refuse, one reason each
BENCHMARKS = REPO / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """A benchmarks/ script as a module.  benchmarks/ goes on sys.path (last) so that its scripts find
    ``baselines.common``; no file there shadows a package any more."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.append(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium through playwright (never a downloaded browser build)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make browser)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def docs_image(name: str, tmp_path: Path) -> Path:
    """Where a test saves a screenshot: ``docs/NAME`` (tracked, shown in the README) only when
    ``RAGQA_REFRESH_DOCS=1`` asks for it, else a temporary file, so a test run changes no tracked file."""
    if os.environ.get("RAGQA_REFRESH_DOCS") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        return REPO / "docs" / name
    return tmp_path / name


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index (MiniLM + FAISS + SQLite + BM25) over ``tests/data/docs``, built once per test run
    (with xdist, by the first worker that needs it, in the folder all workers share).

    Treat it as read-only; copy it (``shutil.copytree``) before changing it.
    """
    from filelock import FileLock

    from ingest.pipeline import ingest_paths
    from rag_qa.config import Settings

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.mktemp("built")
    else:  # every worker's basetemp is inside the run's own folder
        root = tmp_path_factory.getbasetemp().parent / "built"
    index, done = root / "index", root / "index.built"
    with FileLock(str(root) + ".lock"):
        if not done.exists():
            report = ingest_paths([DOCS], index, settings=Settings())
            assert not report.failed, report.failed
            done.touch()
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


BACKENDS = [pytest.param("faiss", id="faiss"), pytest.param("pgvector", id="pgvector", marks=pytest.mark.pgvector)]


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A PostgreSQL server with pgvector: ``RAGQA_PG_DSN`` if set, else a throwaway ``pgserver`` one."""
    configured = os.environ.get("RAGQA_PG_DSN")
    if configured:
        yield configured
        return
    from rag_qa.store.pg.local import local_server

    with local_server() as dsn:
        yield dsn


def pg_settings(dsn: str) -> Settings:
    """Settings selecting the pgvector store on ``dsn``."""
    from rag_qa.config import Settings

    return Settings(store="pgvector", pg_dsn=dsn)


@pytest.fixture(params=BACKENDS)
def backend_settings(request: pytest.FixtureRequest) -> Settings:
    """Default settings for each store backend in turn (the pgvector run starts/uses the server)."""
    from rag_qa.config import Settings

    if request.param == "pgvector":
        return pg_settings(request.getfixturevalue("pg_dsn"))
    return Settings(store="faiss")


@pytest.fixture
def fresh_index(tmp_path: Path, backend_settings: Settings) -> Iterator[Path]:
    """An index path no other test uses (pgvector schemas are per folder name); dropped afterwards."""
    index = tmp_path / f"index_{uuid.uuid4().hex[:12]}"
    yield index
    if backend_settings.store == "pgvector":
        from rag_qa.store.pg.reader import drop_index

        drop_index(index, backend_settings)


@pytest.fixture(scope="session")
def built_pg_index(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The :func:`built_index` documents ingested into the pgvector store, once per session (read-only)."""
    from ingest.pipeline import ingest_paths
    from rag_qa.store.pg.reader import drop_index

    settings = pg_settings(pg_dsn)
    index = tmp_path_factory.mktemp("built_pg") / f"built_{uuid.uuid4().hex[:12]}"
    report = ingest_paths([DOCS], index, settings=settings)
    assert not report.failed, report.failed
    yield index
    drop_index(index, settings)


@pytest.fixture
def built_store(request: pytest.FixtureRequest, backend_settings: Settings) -> tuple[Path, Settings]:
    """(index, settings) of the built test documents in each backend; treat it as read-only."""
    if backend_settings.store == "pgvector":
        return request.getfixturevalue("built_pg_index"), backend_settings
    return request.getfixturevalue("built_index"), backend_settings


CHEAP = ("normans_latin1.txt", "code-of-conduct.md", "oxygen.html")  # three formats, few chunks: quick to embed


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder holding copies of three small test documents (ingest tests change and remove them)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in CHEAP:
        shutil.copy(DOCS / name, docs / name)
    return docs


def rag_qa_in_process(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m rag_qa ARGS`` through :func:`rag_qa.cli.main` in this process, returned as a child process's
    result would be (exit code, stdout, stderr): the embedder and the readers load once per test process
    instead of once per command (a child spends 5-10 s on imports and model loads before it reads a question).
    ``stdin`` is what the command reads.  Settings are read afresh from the environment, and torch's thread
    count is put back afterwards (a training run takes every core; an xdist worker keeps its one)."""
    import torch

    from rag_qa.cli import main
    from rag_qa.config import get_settings

    stdout, stderr, threads, real_stdin = io.StringIO(), io.StringIO(), torch.get_num_threads(), sys.stdin
    get_settings.cache_clear()
    sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse's usage errors exit as they would in a child
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.stdin = real_stdin
        torch.set_num_threads(threads)
        get_settings.cache_clear()  # the next caller reads its own environment's settings
    return subprocess.CompletedProcess(["rag_qa", *args], code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture
def rag_qa_here(monkeypatch: pytest.MonkeyPatch):
    """:func:`rag_qa_in_process` with ``env`` entries set for the rest of the test.  What only a real process
    shows (exactly one JSON object on stdout, no stray output from imports) stays with a few subprocess
    tests."""

    def run(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        return rag_qa_in_process(*args, stdin=stdin)

    return run


#: files whose tests use the PostgreSQL server (besides the ``[pgvector]`` cases of the store tests), and
#: files whose tests load SmolLM2 (the first to run dequantises its GGUF into the cache for the others)
POSTGRES_FILES = ("test_pg_store.py", "test_ray_ingest.py")
SMOLLM2_FILES = ("test_generative.py", "test_gen_train.py")
#: the groups that start first on xdist's workers: the longest (a minute or more of 2 cores each), so that
#: no worker is left with one of them at the end while the other waits
LONGEST_FIRST = ("test_benchmarks.py", "postgres", "test_train.py", "smollm2", "test_generative_tuned.py",
                 "test_eval_cli.py", "test_train_recipe.py", "test_ingest_crash.py", "test_ui_signin.py")


def xdist_group(nodeid: str) -> str:
    """The tests that share an xdist worker: those of the PostgreSQL server (one server is started), those
    that load SmolLM2 (loaded once), else each file's (its module fixtures, a running app or a training
    run, are made once)."""
    path, _, rest = nodeid.partition("::")
    name = path.rsplit("/", 1)[-1]
    if name in POSTGRES_FILES or "[pgvector" in rest:
        return "postgres"
    return "smollm2" if name in SMOLLM2_FILES else name


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` (what ``make test`` runs) hands out whole :func:`xdist_group` groups.  (xdist's own
    ``xdist_group`` mark works by renaming test ids, which pytest 9.2 no longer lets it do.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return GroupScheduling(config, log)


#: where every test that starts a Ray cluster lives: ``make test`` runs this file on its own, after the rest,
#: by path (``pytest -m ray`` alone would import all ~50 test modules to deselect them: 12 s of 2 cores)
RAY_FILE = "test_ray_ingest.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A Ray test outside :data:`RAY_FILE` is an error (``make test`` would not run it); on xdist's
    workers, the :data:`LONGEST_FIRST` groups first (each file keeps its own order)."""
    stray = [item.nodeid for item in items if item.get_closest_marker("ray") and item.path.name != RAY_FILE]
    if stray:
        raise pytest.UsageError(f"Ray tests belong in tests/{RAY_FILE} (make test runs only that file with -m ray): "
                                + ", ".join(stray))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        rank = {group: n for n, group in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(xdist_group(item.nodeid), len(rank)))
