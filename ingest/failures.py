"""Files that could not be read, remembered by content hash so that an unchanged one is not parsed again.

Without this, one broken PDF in a folder made every re-ingest parse it again in a fresh parser
worker (seconds each time, even when nothing else had changed).  The pipeline keeps
``{source: {"sha256", "error"}}`` through the store's writer (``failures.json`` beside a FAISS
index's versions, a ``failures`` table in a PostgreSQL index's schema) and reports an unchanged
file's remembered one-line error instead of parsing it (unchanged: same path, same sha256, as for
indexed documents).  The memory only holds for the limits it
was made with (the parse limits and the rag-qa version): other limits, or ``--rebuild``, parse
every file again.  A failure that is not the file's fault (the parser worker did not start, the
file could not be opened) is not remembered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag_qa import __version__
from rag_qa.config import Settings

#: settings that decide whether a file can be read; a run with other values forgets the memory
LIMITS = ("max_file_mb", "max_docx_uncompressed_mb", "max_zip_ratio", "max_text_chars", "parse_timeout_s",
          "parse_memory_mb", "ocr", "ocr_lang", "ocr_dpi", "ocr_max_pages", "ocr_max_megapixels", "max_attachments")


class FailureMemory:
    """The remembered failures of one index, as read at the start of an ingest run."""

    def __init__(self, settings: Settings, stored: dict[str, Any], forget: bool = False) -> None:
        self.limits = {"rag_qa": __version__, **{name: getattr(settings, name) for name in LIMITS}}
        files = stored.get("files")
        usable = not forget and stored.get("limits") == self.limits and isinstance(files, dict)
        self.files: dict[str, dict[str, str]] = {
            source: entry for source, entry in (files.items() if usable else ())
            if isinstance(entry, dict) and Path(source).exists()
        }
        self.changed = bool(stored) and (not usable or len(self.files) != len(files))

    def seen(self, path: Path, sha: str) -> None:
        """``path`` now has content ``sha``: what was remembered for its older content is dropped."""
        entry = self.files.get(str(path))
        if entry is not None and entry.get("sha256") != sha:
            del self.files[str(path)]
            self.changed = True

    def error(self, path: Path, sha: str) -> str | None:
        """The remembered one-line error of ``path`` with content ``sha`` (None: not known to fail)."""
        entry = self.files.get(str(path))
        return entry.get("error") if entry is not None and entry.get("sha256") == sha else None

    def remember(self, path: Path, sha: str, error: str) -> None:
        self.files[str(path)] = {"sha256": sha, "error": error}
        self.changed = True

    def data(self) -> dict[str, Any]:
        """What the writer stores."""
        return {"limits": self.limits, "files": self.files}
