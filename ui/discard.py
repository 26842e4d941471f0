"""Deleting the copies of uploaded files that have no use left, and never anything else.

Two kinds of copy would otherwise stay behind:

- the stored upload in ``<index>/uploads/`` (:func:`ui.uploads.save_uploads`) of a document that could
  not be indexed, or that was removed from the index;
- Gradio's own copy of every upload in its temporary folder, served at ``/gradio_api/file=`` to anyone
  who knows the path until the server stops.  Once an upload is stored in the index (or refused), that
  copy has no use left.

Only files inside those two folders are deleted: a source that lives anywhere else (a folder the
operator ingested, a path a request named) is left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from ui.uploads import UPLOADS_DIR, gradio_upload_folder


def stored_upload(source: str, index_dir: Path) -> Path | None:
    """The stored upload behind an indexed ``source``, if it lives in this index's uploads folder."""
    path = Path(source)
    folder = (index_dir / UPLOADS_DIR).resolve()
    return path if path.parent == folder and path.is_file() else None


def discard_stored_uploads(sources: Iterable[str], index_dir: Path) -> None:
    """Delete the stored uploads behind ``sources`` (those not stored in ``index_dir``'s uploads are kept)."""
    for source in sources:
        copy = stored_upload(source, index_dir)
        if copy is not None:
            copy.unlink(missing_ok=True)


def discard_gradio_copies(paths: list[str | Path] | None) -> None:
    """Delete Gradio's own copies of uploaded files (and the folder Gradio made for each, once empty).

    Only paths inside Gradio's upload folder are touched, nothing else.
    """
    if not paths:
        return
    folder = gradio_upload_folder()
    for raw in paths:
        path = Path(raw).resolve()
        if not path.is_relative_to(folder) or path == folder:
            continue
        if not path.is_file():
            continue
        with contextlib.suppress(OSError):
            path.unlink()
        parent = path.parent
        if parent != folder and parent.is_relative_to(folder):
            with contextlib.suppress(OSError):  # not empty: another upload of the same content is there
                parent.rmdir()


@contextlib.contextmanager
def gradio_copies_discarded(paths: list[str | Path] | None) -> Iterator[None]:
    """Delete Gradio's copies of ``paths`` when the block ends, whatever its outcome."""
    try:
        yield
    finally:
        discard_gradio_copies(paths)
