"""How the page names a document: by its path relative to the index, never the server's absolute path.

An index stores each document's absolute source path (the CLI and the JSON API report it so).  The
page shows everyone a shorter name that gives nothing of the server's layout away:

- an upload (``<index>/uploads/report.pdf``, or a mail's attachment under it) as ``uploads/report.pdf``;
- another file inside the index folder relative to that folder;
- a file ingested from elsewhere (``python -m ingest /srv/docs``) relative to the folder that holds
  all such files of the index, starting with that folder's name (``docs/q3/report.pdf``).

:func:`source_labels` maps each source to its label; the documents table, the remove list and the
source cards use it, and a removal may name a document by its label.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import PurePath

from ui.render import ATTACHMENT_CONTAINERS, display_name


def _inside(source: PurePath, folder: PurePath) -> str | None:
    try:
        return source.relative_to(folder).as_posix()
    except ValueError:
        return None


def source_label(source: str, index: PurePath, outside_base: PurePath | None = None) -> str:
    """The label of one ``source`` of ``index``; files from elsewhere relative to ``outside_base``'s parent
    (``None``: by their file name, as :func:`ui.render.display_name` has it)."""
    path = PurePath(source)
    inner = _inside(path, PurePath(index))
    if inner:
        return inner
    if outside_base is not None and (rest := _inside(path, outside_base)):
        return f"{outside_base.name}/{rest}" if outside_base.name else rest
    return display_name(source)


def source_labels(sources: Iterable[str], index: PurePath) -> dict[str, str]:
    """Each source of ``index`` with its label; files from outside the index relative to their common folder."""
    sources = list(sources)
    outside = [PurePath(s).parent for s in sources if _inside(PurePath(s), PurePath(index)) is None]
    base: PurePath | None = None
    if outside:
        try:
            base = PurePath(os.path.commonpath([str(p) for p in outside]))
        except ValueError:  # paths on different drives
            base = None
        while base is not None and base.suffix.lower() in ATTACHMENT_CONTAINERS:
            base = base.parent  # a mail's attachments alone: start at the mail's folder
    return {s: source_label(s, index, base) for s in sources}
