"""Checking and storing uploaded files: allowed types, size limit, safe names inside the index folder.

The allowed types are the ones ingestion reads (:data:`ingest.loaders.SUPPORTED_SUFFIXES`).

Uploads land in ``<index>/uploads/`` under a sanitised base name, so a name like
``../../etc/passwd`` can never write outside that folder.  Files that fail a check are
reported (name + reason) and the others still go in.  Deleting copies that have no use left (a stored
upload whose document is not in the index, Gradio's temporary copy) is :mod:`ui.discard`'s.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ingest.loaders import SUPPORTED_SUFFIXES

UPLOADS_DIR = "uploads"
MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\- ]+")  # \w is unicode-aware: letters and digits of any script stay


def sanitise_filename(name: str) -> str:
    """A safe base name for ``name``: no directories, control characters, leading dots or dashes.

    Unicode letters are kept (NFC-normalised); anything else odd becomes ``_``.  Never
    returns an empty string, ``.`` or ``..``.
    """
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch if ch.isprintable() else "_" for ch in base)
    base = _UNSAFE.sub("_", base).strip(" .")
    base = re.sub(r"[ _]*_[ _]*", "_", re.sub(r"\s+", " ", base))
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = re.sub(r"^[ ._-]+", "", stem).rstrip(" ._") or "upload"  # "-rf.txt" must not read as an option
    ext = ext.lower()
    budget = MAX_NAME_CHARS - len(ext) - 1
    return f"{stem[:budget]}.{ext}" if ext else stem[:MAX_NAME_CHARS]


@dataclass
class SavedUploads:
    """What :func:`save_uploads` stored and what it refused (``{"path", "error"}`` like ingestion)."""

    saved: list[Path] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


def check_upload(path: Path, display_name: str, max_mb: float) -> str | None:
    """The reason ``path`` cannot be accepted, or ``None`` when it is fine."""
    suffix = Path(display_name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "no extension"
        return f"file type {shown} is not supported (allowed: {', '.join(SUPPORTED_SUFFIXES)})"
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot read the upload: {exc.strerror or exc}"
    if size > max_mb * 1024 * 1024:
        return f"file is {size / 1024 / 1024:.1f} MB, over the {max_mb:g} MB upload limit"
    if size == 0:
        return "file is empty"
    return None


def save_uploads(paths: list[str | Path], index_dir: Path, max_mb: float) -> SavedUploads:
    """Copy acceptable uploads into ``<index_dir>/uploads/`` under sanitised names."""
    result = SavedUploads()
    target_dir = index_dir / UPLOADS_DIR
    for raw in paths:
        path = Path(raw)
        name = sanitise_filename(path.name)
        error = check_upload(path, name, max_mb)
        if error is not None:
            result.failed.append({"path": path.name, "error": error})
            continue
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / name
        try:
            shutil.copyfile(path, target)
        except OSError as exc:
            result.failed.append({"path": path.name, "error": f"cannot store the upload: {exc.strerror or exc}"})
            continue
        result.saved.append(target.resolve())
    return result


def gradio_upload_folder() -> Path:
    """Where Gradio keeps the files a browser or client uploads (``GRADIO_TEMP_DIR``), resolved."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()
