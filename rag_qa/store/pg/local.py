"""A throwaway local PostgreSQL 16 + pgvector server from PyPI (``pgserver``), for tests and benchmarks.

``pgserver`` ships the server binaries and pgvector inside its wheel, so nothing is needed from
the system.  Run as root, it runs ``postgres`` as a separate ``pgserver`` user (created on first
use) and opens the parent folders of the data directory and of its binaries for that user to
traverse (``o+rx``); the data directory is therefore made outside pytest's private temp root.
Users point ``RAGQA_PG_DSN`` at their own server instead.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def local_server() -> Iterator[str]:
    """Start a fresh server in a temporary folder, yield its DSN, then stop it and delete the folder."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root)
        warnings.simplefilter("ignore")
        import pgserver

    root = Path(tempfile.mkdtemp(prefix="rag-qa-pg-"))
    try:
        server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def server_or_local(dsn: str | None) -> Iterator[str]:
    """The given server's DSN, or a throwaway local server's for the length of the block."""
    if dsn:
        yield dsn
        return
    with local_server() as local:
        yield local
