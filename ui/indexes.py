"""Which indexes the app can open, creating new ones by name, and one shared QAService per index.

Indexes live as folders under ``indexes/`` (plus the one given with ``--index``).  Services are
cached, so switching back and forth never reloads an index or a model.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from rag_qa.config import Settings
from rag_qa.service import QAService

_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def sanitise_index_name(name: str) -> str:
    """A folder name for a new index: letters, digits, ``_`` and ``-`` only; empty if nothing is left."""
    return _NAME.sub("-", name.strip()).strip("-_")[:64]


class IndexCatalog:
    """The indexes on offer (folders under ``root`` plus the start-up one) and their services."""

    def __init__(self, root: Path, initial: Path, settings: Settings) -> None:
        self.root = root.expanduser().resolve()
        self.initial = initial.expanduser().resolve()
        self.settings = settings
        self._services: dict[Path, QAService] = {}
        self._lock = threading.Lock()

    def choices(self) -> list[tuple[str, str]]:
        """Known index folders as (label, path), the start-up index first; labels are short under the root."""
        found = [self.initial]
        if self.root.is_dir():
            found += sorted(p.resolve() for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        paths = list(dict.fromkeys(found))
        return [(f"{self.root.name}/{p.name}" if p.parent == self.root else str(p), str(p)) for p in paths]

    def resolve(self, value: str | None) -> Path:
        """The index folder for a dropdown value; anything not on offer falls back to the start-up index."""
        if value and value in {path for _, path in self.choices()}:
            return Path(value)
        return self.initial

    def create(self, name: str) -> Path:
        """The folder for a new (still empty) index called ``name`` under the root; it is made now."""
        safe = sanitise_index_name(name)
        if not safe:
            raise ValueError("give the new index a name made of letters, digits, '-' or '_'")
        path = self.root / safe
        path.mkdir(parents=True, exist_ok=True)
        return path

    def service(self, index: Path) -> QAService:
        """The shared :class:`QAService` for ``index`` (created on first use; models load lazily)."""
        key = index.resolve()
        with self._lock:
            if key not in self._services:
                self._services[key] = QAService(key, self.settings)
            return self._services[key]
