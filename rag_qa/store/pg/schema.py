"""PostgreSQL side of the pgvector store: connecting, naming and the tables of one index.

Every index is one schema (``ragqa_<name>``, from the index folder's name) so several indexes,
and several app instances, share one server::

    ragqa_<name>.meta        one row: embedding model + dimension, version (bumped by each ingest), counts
                             (chunks, and their total token count for BM25's average length)
    ragqa_<name>.documents   one row per source file (sha256 decides re-embedding), as in the SQLite docstore
    ragqa_<name>.chunks      chunk text + offsets, unit/section/ocr (what page counts, sheet or chapter
                             name, read by OCR; added in format 2), vector(dim) with an HNSW index (vector_ip_ops),
                             tsv = to_tsvector('english', text) with a GIN index, n_tokens (its length)
    ragqa_<name>.terms       document frequency of every lexeme (BM25's idf), kept current by each ingest
    ragqa_<name>.failures    one row: files that could not be read, with their sha256 (skipped while unchanged)

Errors are :class:`~rag_qa.store.base.IndexStoreError` subclasses with one actionable line;
the DSN's user and password never appear in them.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag_qa.store.base import IndexStoreError

if TYPE_CHECKING:
    import psycopg

    from rag_qa.config import Settings

SCHEMA_PREFIX = "ragqa_"
FORMAT_VERSION = 2  # of the tables below; an index in an unknown format is refused with "rebuild it"
#: formats this code reads; a writer brings a format-1 schema up to 2 in its transaction (migrate_chunks)
READABLE_FORMATS = (1, 2)
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64  # pgvector's defaults, spelled out so the README can quote them
CONNECT_TIMEOUT_S = 10

META_DDL = """
CREATE TABLE {schema}.meta (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    format_version INTEGER NOT NULL,
    embedding_model TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    version BIGINT NOT NULL,
    documents INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    tokens BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    chunking JSONB NOT NULL
)"""
DOCUMENTS_DDL = """
CREATE TABLE {schema}.documents (
    source TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    mtime DOUBLE PRECISION NOT NULL,
    size BIGINT NOT NULL,
    type TEXT NOT NULL,
    pages INTEGER,
    n_chunks INTEGER NOT NULL,
    added_at TEXT NOT NULL
)"""
CHUNKS_DDL = """
CREATE TABLE {schema}.chunks (
    id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    source TEXT NOT NULL REFERENCES {schema}.documents(source) ON DELETE CASCADE,
    page INTEGER,
    "start" INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    unit TEXT,
    section TEXT,
    ocr BOOLEAN NOT NULL DEFAULT false,
    embedding vector({dimension}) NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    n_tokens INTEGER GENERATED ALWAYS AS ({schema}.token_count(to_tsvector('english', text))) STORED
)"""
TERMS_DDL = """
CREATE TABLE {schema}.terms (
    lexeme TEXT PRIMARY KEY,
    df INTEGER NOT NULL
)"""
FAILURES_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.failures (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    data JSONB NOT NULL
)"""
# a chunk's length for BM25: its lexemes counted with repeats (stop words are not lexemes)
TOKEN_COUNT_DDL = """
CREATE FUNCTION {schema}.token_count(tsvector) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS 'SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::integer FROM unnest($1)'"""
# built after a bulk load (much faster than growing an HNSW graph row by row), kept up to date after
CHUNK_INDEXES = (
    "CREATE INDEX chunks_source ON {schema}.chunks (source)",
    "CREATE INDEX chunks_seq ON {schema}.chunks (seq)",
    "CREATE INDEX chunks_embedding_hnsw ON {schema}.chunks USING hnsw (embedding vector_ip_ops) "
    f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})",
    "CREATE INDEX chunks_tsv ON {schema}.chunks USING gin (tsv)",
)


class PgConnectionError(IndexStoreError):
    """The PostgreSQL server is not configured, unreachable, or lacks the pgvector extension."""


def schema_name(index: str | Path) -> str:
    """The schema of the index called ``index`` (its folder name): ``ragqa_`` + a safe identifier.

    Names that had to be changed to fit (other characters, too long) get a short hash so two
    different names never share a schema.
    """
    name = Path(index).name or str(index)
    safe = re.sub(r"[^a-z0-9_]+|__+", "_", name.lower()).strip("_")[:40]  # never "__": staging schemas have it
    if safe != name or not safe:
        safe = f"{safe}_{hashlib.sha256(name.encode()).hexdigest()[:8]}".lstrip("_")
    return SCHEMA_PREFIX + safe


def advisory_key(schema: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` on ``schema`` (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(f"rag-qa:{schema}".encode(), digest_size=8).digest(), "big", signed=True)


def require_dsn(settings: Settings) -> str:
    """The configured DSN, or a one-line error saying how to set it."""
    if not settings.pg_dsn:
        raise PgConnectionError("RAGQA_STORE=pgvector needs a server: set RAGQA_PG_DSN, "
                                "e.g. postgresql://user:password@host:5432/dbname")
    return settings.pg_dsn


def _dsn_parts(dsn: str) -> dict[str, str] | None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except Exception:
        return None


def describe_dsn(dsn: str) -> str:
    """``database 'db' on host:port`` for messages (never the user or password)."""
    parts = _dsn_parts(dsn)
    if parts is None:
        return "<unparsable RAGQA_PG_DSN>"
    where = parts.get("host") or "localhost"
    if parts.get("port"):
        where += f":{parts['port']}"
    return f"database '{parts.get('dbname') or parts.get('user') or 'postgres'}' on {where}"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def connect(dsn: str, **kwargs: Any) -> psycopg.Connection:
    """An autocommit connection, or :class:`PgConnectionError` with the server's reason in one line."""
    import psycopg

    if _dsn_parts(dsn) is None:  # psycopg's own message would quote the string, password and all
        raise PgConnectionError("RAGQA_PG_DSN is not a valid connection string; use "
                                "postgresql://user:password@host:5432/dbname")
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, **kwargs)
    except psycopg.Error as exc:
        raise PgConnectionError(f"cannot connect to PostgreSQL {describe_dsn(dsn)} ({_first_line(exc)}); "
                                "check RAGQA_PG_DSN and that the server is running") from exc


def register_vector_type(conn: psycopg.Connection, dsn: str) -> None:
    """Teach ``conn`` the ``vector`` type (numpy arrays in and out); fails clearly without pgvector."""
    from pgvector.psycopg import register_vector

    try:
        register_vector(conn)
    except Exception as exc:  # psycopg.ProgrammingError: vector type not found in the database
        raise PgConnectionError(f"PostgreSQL {describe_dsn(dsn)} has no pgvector extension "
                                f"({_first_line(exc)}); install pgvector on the server and run "
                                "`CREATE EXTENSION vector` (needs a superuser once)") from exc


def ensure_extension(conn: psycopg.Connection, dsn: str) -> None:
    """``CREATE EXTENSION IF NOT EXISTS vector``, turning "not installed"/"not allowed" into one line."""
    import psycopg

    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise PgConnectionError(f"cannot enable pgvector in {describe_dsn(dsn)} ({_first_line(exc)}); "
                                "install pgvector on the server and run `CREATE EXTENSION vector` "
                                "as a superuser once") from exc


def read_meta(conn: psycopg.Connection, schema: str) -> dict[str, Any] | None:
    """The ``meta`` row of ``schema`` as a dict, or None when no index has been committed there."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{schema}.meta"]).fetchone()
    if not exists or not exists[0]:
        return None
    with conn.cursor(row_factory=_dict_rows()) as cur:
        row = cur.execute(f"SELECT * FROM {schema}.meta").fetchone()
    if row is None:
        return None
    if row["format_version"] not in READABLE_FORMATS:
        raise IndexStoreError(f"index schema {schema} has format {row['format_version']}, this code reads "
                              f"{FORMAT_VERSION}; rebuild it with `python -m ingest --rebuild PATH...`")
    return dict(row)


def _dict_rows() -> Any:
    from psycopg.rows import dict_row

    return dict_row


def create_tables(conn: psycopg.Connection, schema: str, dimension: int) -> None:
    """Create ``schema`` with empty meta/documents/chunks tables (indexes come after the first load)."""
    conn.execute(f"CREATE SCHEMA {schema}")
    for ddl in (META_DDL, DOCUMENTS_DDL, TOKEN_COUNT_DDL, CHUNKS_DDL, TERMS_DDL):
        conn.execute(ddl.format(schema=schema, dimension=int(dimension)))


# format 1 -> 2: columns with a constant default are added without rewriting the table (PostgreSQL 11+)
MIGRATE_CHUNKS_DDL = """
ALTER TABLE {schema}.chunks ADD COLUMN IF NOT EXISTS unit TEXT, ADD COLUMN IF NOT EXISTS section TEXT,
    ADD COLUMN IF NOT EXISTS ocr BOOLEAN NOT NULL DEFAULT false"""


def chunk_columns(format_version: int, table: str = "") -> str:
    """The SELECT list of a chunk row in a schema of ``format_version`` (format 1 has no unit/section/ocr);
    ``table`` qualifies the column names (``c`` gives ``c.id, c.source, ...``)."""
    prefix = f"{table}." if table else ""
    names = ["id", "source", "page", '"start"', '"end"', "text"] + (["unit", "section", "ocr"] if format_version >= 2
                                                                  else [])
    extra = "" if format_version >= 2 else ", NULL, NULL, false"
    return ", ".join(prefix + n for n in names) + extra


def migrate_chunks(conn: psycopg.Connection, schema: str, format_version: int) -> None:
    """Bring the chunks table of a format-1 schema up to the current format (inside the writer's transaction)."""
    if format_version < 2:
        conn.execute(MIGRATE_CHUNKS_DDL.format(schema=schema))


def create_chunk_indexes(conn: psycopg.Connection, schema: str) -> None:
    for ddl in CHUNK_INDEXES:
        conn.execute(ddl.format(schema=schema))
