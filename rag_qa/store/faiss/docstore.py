"""SQLite docstore of one index version: chunk text + metadata, and the source documents.

Plain SQL rows (no pickled objects).  ``chunks.faiss_id`` is the int64 id of the chunk's vector
in ``faiss.index`` and its row number in the BM25 index.

Format 2 has ``unit``, ``section`` and ``ocr`` in ``chunks`` (where a citation points).  A version written in
format 1 has no such columns; it is read as it is (NULL, NULL, 0 in their place), and the next
ingest writes its new version in format 2, carrying the old chunks over.  Versions are never
changed in place, so there is no migration step that a crash could interrupt.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag_qa.store.base import ChunkRow, DocumentRow

SCHEMA = """
CREATE TABLE chunks (
    id TEXT PRIMARY KEY,
    faiss_id INTEGER NOT NULL UNIQUE,
    source TEXT NOT NULL,
    page INTEGER,
    "start" INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    unit TEXT,
    section TEXT,
    ocr INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX chunks_source ON chunks(source);
CREATE TABLE documents (
    source TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    mtime REAL NOT NULL,
    size INTEGER NOT NULL,
    type TEXT NOT NULL,
    pages INTEGER,
    n_chunks INTEGER NOT NULL,
    added_at TEXT NOT NULL
);
"""

_CHUNK_COLUMNS = 'id, faiss_id, source, page, "start", "end", text, unit, section, ocr'
_V1_CHUNK_COLUMNS = 'id, faiss_id, source, page, "start", "end", text, NULL, NULL, 0'  # format 1 had no metadata


def _columns(con: sqlite3.Connection) -> str:
    """The SELECT list for this docstore's chunks: format 1 lacks unit/section/ocr (see the module docstring)."""
    names = {row[1] for row in con.execute("PRAGMA table_info(chunks)")}
    return _CHUNK_COLUMNS if "ocr" in names else _V1_CHUNK_COLUMNS


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Read-only connection usable from several threads (the UI serves requests in threads)."""
    if not path.is_file():
        raise FileNotFoundError(path)
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    return con


def write_docstore(path: Path, chunks: Sequence[ChunkRow], documents: Iterable[DocumentRow]) -> None:
    """Create ``path`` with chunk ``i`` stored under faiss id ``i``."""
    con = sqlite3.connect(path)
    try:
        con.executescript(SCHEMA)
        con.executemany(
            f"INSERT INTO chunks ({_CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((c.id, i, c.source, c.page, c.start, c.end, c.text, c.unit, c.section, int(c.ocr))
             for i, c in enumerate(chunks)),
        )
        con.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ((d.source, d.sha256, d.mtime, d.size, d.type, d.pages, d.n_chunks, d.added_at)
             for d in documents),
        )
        con.commit()
    finally:
        con.close()


def read_documents(con: sqlite3.Connection) -> dict[str, DocumentRow]:
    rows = con.execute("SELECT source, sha256, mtime, size, type, pages, n_chunks, added_at "
                       "FROM documents ORDER BY source").fetchall()
    return {r[0]: DocumentRow(*r) for r in rows}


def _row(r: tuple) -> tuple[int, ChunkRow]:
    return r[1], ChunkRow(id=r[0], source=r[2], page=r[3], start=r[4], end=r[5], text=r[6], unit=r[7],
                          section=r[8], ocr=bool(r[9]))


def chunks_by_faiss_ids(con: sqlite3.Connection, ids: Sequence[int]) -> dict[int, ChunkRow]:
    """Chunks keyed by faiss id (missing ids are simply absent)."""
    out: dict[int, ChunkRow] = {}
    columns = _columns(con)
    for i in range(0, len(ids), 500):
        part = [int(x) for x in ids[i:i + 500]]
        marks = ",".join("?" * len(part))
        for r in con.execute(f"SELECT {columns} FROM chunks WHERE faiss_id IN ({marks})", part):
            fid, row = _row(r)
            out[fid] = row
    return out


def chunks_by_ids(con: sqlite3.Connection, chunk_ids: Sequence[str]) -> dict[str, ChunkRow]:
    out: dict[str, ChunkRow] = {}
    columns = _columns(con)
    for i in range(0, len(chunk_ids), 500):
        part = list(chunk_ids[i:i + 500])
        marks = ",".join("?" * len(part))
        for r in con.execute(f"SELECT {columns} FROM chunks WHERE id IN ({marks})", part):
            out[r[0]] = _row(r)[1]
    return out


def chunks_of_sources(con: sqlite3.Connection, sources: Iterable[str]) -> list[tuple[int, ChunkRow]]:
    """(faiss id, chunk) of every chunk of ``sources``, in document order."""
    out: list[tuple[int, ChunkRow]] = []
    columns = _columns(con)
    for source in sources:
        rows = con.execute(f'SELECT {columns} FROM chunks WHERE source = ? ORDER BY "start"',
                           (source,))
        out.extend(_row(r) for r in rows)
    return out


def all_chunk_ids(con: sqlite3.Connection) -> list[str]:
    return [r[0] for r in con.execute("SELECT id FROM chunks ORDER BY faiss_id")]
