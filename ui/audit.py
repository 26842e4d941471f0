"""The audit trail: append-only JSON lines, one file per index plus one for the server.

Each index keeps ``<index>/audit.jsonl``: uploads, removals, index creation, refused actions and,
when ``RAGQA_AUDIT_QUESTIONS`` is on, questions and searches.  What belongs to no index goes to the
server's log (``RAGQA_SIGNIN_LOG``, default ``indexes/sign-ins.jsonl``): sign-ins (ok, failed,
locked, refused during a lockout), sessions that ended, account changes by ``python -m ui users``,
and refusals of requests that named no index on offer (``A/../B``, an index not yet created, a
file that was not uploaded).  ``python -m ui audit --index DIR`` shows an index's log with the
server's events merged in by time.

One event is one line, written with a single ``write`` on a file opened in append mode, so lines
from concurrent writers never interleave and nothing already written is ever rewritten::

    {"time": "2026-11-29T16:03:42.123456+00:00", "user": "alice", "action": "upload",
     "files": ["report.pdf"], "outcome": "ok", "detail": "added 1"}
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ui.validation import printable

AUDIT_FILE = "audit.jsonl"
MAX_FIELD_CHARS = 500  # a hostile file name or question cannot blow up one line
log = logging.getLogger("rag_qa.ui")
_write_lock = threading.Lock()


def index_log(index: Path) -> Path:
    """Where the audit log of ``index`` lives."""
    return index / AUDIT_FILE


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        return value[:MAX_FIELD_CHARS] + "…"
    return value


def event(user: str | None, action: str, outcome: str, *, files: Iterable[str] = (), detail: str = "",
          **extra: Any) -> dict[str, Any]:
    """One audit record (time in UTC, ISO 8601, microseconds)."""
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        "user": _clip(user) if user else None,
        "action": action,
        "files": [_clip(f) for f in files],
        "outcome": outcome,
    }
    if detail:
        record["detail"] = _clip(detail)
    record.update({k: [_clip(x) for x in v] if isinstance(v, list) else _clip(v)
                   for k, v in extra.items() if v is not None})
    return record


def append(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` to the log at ``path`` as one line (the folder is made if needed).

    A failure to write is logged, not raised: the action it records has already happened.
    """
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _write_lock:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
    except OSError as exc:
        log.error("cannot write the audit log %s: %s (event: %s)", path, exc.strerror or exc, line.decode().strip())


def read(path: Path) -> Iterator[dict[str, Any]]:
    """The records in the log at ``path``, oldest first (none if it does not exist); bad lines are skipped."""
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def merged(*paths: Path) -> list[dict[str, Any]]:
    """The records of several logs in time order (ISO times in UTC sort as strings)."""
    records = [r for p in paths for r in read(p)]
    return sorted(records, key=lambda r: str(r.get("time", "")))


def format_record(record: dict[str, Any]) -> str:
    """One readable line: time, user, action, outcome, files, then the other fields that are set (every
    value printable, so a record is always exactly one line)."""
    record = {k: [printable(x) for x in v] if isinstance(v, list) else printable(v) if v else v
              for k, v in record.items()}
    when = str(record.get("time", "?")).replace("T", " ")[:19]
    files = ", ".join(str(f) for f in record.get("files") or [])
    parts = [when, f"{record.get('user') or '-':<16}", f"{record.get('action', '?'):<13}",
             f"{record.get('outcome', '?'):<8}"]
    if files:
        parts.append(files)
    for key in ("account", "roles", "index", "reader", "detail", "skipped", "question", "address", "repeated"):
        value = record.get(key)
        if value:
            parts.append(f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
    return "  ".join(parts)
