"""The summary of one ingest run (what ``--json`` prints; DESIGN.md fixes its keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class IngestReport:
    """Counts for the JSON summary, plus the source lists behind them for callers like the UI."""

    index: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0
    version: int | None = None  # the live index version after the run
    embedded_chunks: int = 0  # chunks embedded in this run (0 when nothing changed)
    notes: list[str] = field(default_factory=list)  # housekeeping messages (stale versions removed...)

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
            "documents": self.documents,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }

    def summary_line(self) -> str:
        return (f"{self.index}: {len(self.added)} added, {len(self.updated)} updated, "
                f"{len(self.removed)} removed, {len(self.unchanged)} unchanged, {len(self.failed)} failed; "
                f"{self.documents} documents, {self.chunks} chunks in {self.seconds:.1f}s")
