"""The summary of one ingest run (what ``--json`` prints; docs/design.md fixes its keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def type_of(path: str) -> str:
    """A file's type as the skipped line names it: its suffix, lower-case, or ``(no extension)``."""
    return Path(path).suffix.lower() or "(no extension)"


@dataclass
class IngestReport:
    """Counts for the JSON summary, plus the source lists behind them for callers like the UI."""

    index: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files (and mail attachments) of types that are not read
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0
    version: int | None = None  # the live index version after the run
    embedded_chunks: int = 0  # chunks embedded in this run (0 when nothing changed)
    notes: list[str] = field(default_factory=list)  # every message of the run (as the CLI prints them)
    # what the files themselves had to say ({"path", "note"}): pages read with OCR, scanned pages left
    # unread, attachments over the limit; the UI's upload report shows them (they are also in ``notes``)
    file_notes: list[dict[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage (benchmarks; not in --json)

    @property
    def exit_code(self) -> int:
        """0 when every file went in, 3 when some failed (the rest was still indexed)."""
        return 3 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "failed": [{"path": f["path"], "error": f["error"]} for f in self.failed],
            "skipped": list(self.skipped),
            "documents": self.documents,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }

    def skipped_line(self) -> str | None:
        """``skipped: 4 files of unsupported types: .csv, .eml, .pptx, .xlsx`` (None when nothing was skipped)."""
        if not self.skipped:
            return None
        types = sorted({type_of(p) for p in self.skipped})
        files = "1 file" if len(self.skipped) == 1 else f"{len(self.skipped)} files"
        kinds = "type" if len(types) == 1 else "types"
        return f"skipped: {files} of unsupported {kinds}: {', '.join(types)}"

    def summary_line(self) -> str:
        return (f"{self.index}: {len(self.added)} added, {len(self.updated)} updated, "
                f"{len(self.removed)} removed, {len(self.unchanged)} unchanged, {len(self.failed)} failed; "
                f"{self.documents} documents, {self.chunks} chunks in {self.seconds:.1f}s")
