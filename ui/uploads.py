"""Checking and storing uploaded files: allowed types, size limit, safe names inside the index folder.

The allowed types are the ones ingestion reads (:data:`ingest.loaders.SUPPORTED_SUFFIXES`).

Uploads land in ``<index>/uploads/`` under a sanitised base name, so a name like
``../../etc/passwd`` can never write outside that folder.  Files that fail a check are
reported (name + reason) and the others still go in.  Two files of one upload that sanitise to the same
name are both kept (the later one as ``name-2.ext``); a file that replaces an earlier upload of the same
name keeps that copy aside until its ingest is done, so a failed re-upload leaves the indexed document's
file as it was (:meth:`SavedUploads.settle`).  Deleting copies that have no use left (a stored
upload whose document is not in the index, Gradio's temporary copy) is :mod:`ui.discard`'s.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.loaders import SUPPORTED_SUFFIXES

UPLOADS_DIR = "uploads"
PREVIOUS_DIR = ".replaced"  # hidden: ingesting the uploads folder passes over it
MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 240  # file systems count a name's bytes (255): 120 CJK characters are 360
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
    stem = stem[: MAX_NAME_CHARS - len(ext) - 1] if ext else stem[:MAX_NAME_CHARS]
    while len(stem.encode()) + len(ext.encode()) + 1 > MAX_NAME_BYTES:
        stem = stem[:-1]
    return f"{stem}.{ext}" if ext else stem


@dataclass
class SavedUploads:
    """What :func:`save_uploads` stored and what it refused (``{"path", "error"}`` like ingestion);
    ``replaced`` maps a stored upload to the earlier copy of the same name it displaced, kept aside."""

    saved: list[Path] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    replaced: dict[Path, Path] = field(default_factory=dict)

    def settle(self, not_indexed: Iterable[str | Path]) -> None:
        """After the ingest: an upload that did not get in is deleted, and the copy it displaced (still
        the file behind the indexed document) goes back; the displaced copies of the others are deleted.
        Call it with every saved path when the ingest raised."""
        out = {Path(p).resolve() for p in not_indexed}
        for target in self.saved:
            previous = self.replaced.get(target)
            if target in out:
                if previous is not None:
                    os.replace(previous, target)
                else:
                    target.unlink(missing_ok=True)
            elif previous is not None:
                previous.unlink(missing_ok=True)


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
    """Copy acceptable uploads into ``<index_dir>/uploads/`` under sanitised names; an earlier upload of
    the same name is moved aside (``replaced``) until :meth:`SavedUploads.settle`."""
    result = SavedUploads()
    target_dir = index_dir / UPLOADS_DIR
    taken: dict[str, Path] = {}  # sanitised name -> the file of this upload stored under it
    for raw in paths:
        path = Path(raw)
        name = sanitise_filename(path.name)
        error = check_upload(path, name, max_mb)
        if error is None and name in taken and filecmp.cmp(path, taken[name], shallow=False):
            error = f"the same file as {taken[name].name} in this upload"
        if error is not None:
            result.failed.append({"path": path.name, "error": error})
            continue
        name = _free_name(name, taken)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = (target_dir / name).resolve()
        try:
            if target.exists():
                aside = target_dir / PREVIOUS_DIR / name
                aside.parent.mkdir(exist_ok=True)
                os.replace(target, aside)
                result.replaced[target] = aside.resolve()
            shutil.copyfile(path, target)
        except OSError as exc:
            result.failed.append({"path": path.name, "error": f"cannot store the upload: {exc.strerror or exc}"})
            if target in result.replaced:
                os.replace(result.replaced.pop(target), target)
            continue
        taken[name] = target
        result.saved.append(target)
    return result


def _free_name(name: str, taken: dict[str, Path]) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``... when another file of this upload already has it."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    n = 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
    return name


def gradio_upload_folder() -> Path:
    """Where Gradio keeps the files a browser or client uploads (``GRADIO_TEMP_DIR``), resolved."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()
