"""Find the files to ingest under the paths given: folders recursively, files as named.

Inside a folder only supported suffixes are taken; files of other types are listed as skipped
(the report says how many, of which types), hidden entries are passed over, and a symlink that
resolves outside the folder is refused (listed as failed) rather than followed.  A folder that cannot
be listed is reported as failed and its documents stay in the index (``Discovery.unlisted``).  A file named
on the command line is always tried, so an unsupported one fails with its reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import IngestUsageError
from ingest.loaders import SUPPORTED_SUFFIXES


@dataclass
class Discovery:
    """Resolved files to load, folders that were walked, and entries refused on the way."""

    files: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # files of types that are not read
    unlisted: list[Path] = field(default_factory=list)  # folders that could not be listed (their files unknown)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _walk(root: Path, found: Discovery, seen: set[Path]) -> None:
    def unlisted(err: OSError) -> None:  # os.walk would pass over the folder in silence
        found.unlisted.append(Path(err.filename))
        found.failed.append((str(err.filename), f"cannot list the folder: {err.strerror or err}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted):
        here = Path(dirpath)
        for name in list(dirnames):
            entry = here / name
            if name.startswith("."):
                dirnames.remove(name)
            elif entry.is_symlink() and not _inside(entry.resolve(), root):
                found.failed.append((str(entry), f"symlink points outside the ingested folder ({entry.resolve()})"))
        dirnames.sort()
        for name in sorted(filenames):
            entry = here / name
            if name.startswith("."):
                continue
            if entry.suffix.lower() not in SUPPORTED_SUFFIXES:
                if not entry.is_symlink():
                    found.skipped.append(entry)
                continue
            target = entry.resolve()
            if not _inside(target, root):
                found.failed.append((str(entry), f"symlink points outside the ingested folder ({target})"))
            elif not target.is_file():
                found.failed.append((str(entry), "not a regular file (broken symlink?)"))
            elif target not in seen:
                seen.add(target)
                found.files.append(target)


def discover(paths: list[str | Path]) -> Discovery:
    """Expand ``paths``; a path that does not exist is a usage error (nothing is ingested)."""
    found = Discovery()
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise IngestUsageError(f"path does not exist: {raw}")
        resolved = path.resolve()
        if resolved.is_dir():
            found.folders.append(resolved)
            _walk(resolved, found, seen)
        elif resolved.is_file():
            if resolved not in seen:
                seen.add(resolved)
                found.files.append(resolved)
        else:
            raise IngestUsageError(f"not a file or folder: {raw}")
    return found
