"""What each UI event does: ask, search, upload, remove, switch or create an index.

Every handler catches its own failures and turns them into a message on the page, so a bad
question or file never takes the app down.  Answers come from :class:`rag_qa.service.QAService`,
the same code path as the CLI.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ingest.errors import IngestUsageError
from ingest.pipeline import ingest_paths, remove_sources
from rag_qa.service import EmptyQuestionError, QAService
from rag_qa.store import IndexNotFoundError, IndexStoreError
from rag_qa.types import Answer
from ui import render
from ui.indexes import IndexCatalog, is_built
from ui.uploads import save_uploads, uploaded_copy

log = logging.getLogger("rag_qa.ui")
History = list[dict[str, Any]]
DOCUMENT_HEADERS = ["Name", "Type", "Pages", "Chunks", "Added", "Source"]


def _user_error(exc: BaseException) -> str:
    """A one-line message for the page; our own errors already say what to do."""
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, ValueError | IndexStoreError | RuntimeError) else f"{type(exc).__name__}: {text}"


class Handlers:
    """The event functions, bound to one catalogue of indexes and the upload size limit."""

    def __init__(self, catalog: IndexCatalog, max_upload_mb: float) -> None:
        self.catalog = catalog
        self.max_upload_mb = max_upload_mb

    def _ready_service(self, index_value: str | None) -> QAService | None:
        """The service for the chosen index, or ``None`` when that index has no documents yet."""
        index = self.catalog.resolve(index_value)
        if not is_built(index, self.catalog.settings):
            return None
        service = self.catalog.service(index)
        return service if service.store.chunk_count > 0 else None

    # ------------------------------------------------------------------ Ask
    def ask(self, question: str, history: History | None, reader: str, mode: str, top_k: float,
            index_value: str) -> Iterator[tuple[History, dict[str, Any], str]]:
        """Stream an answer into the chat: text pieces as they come, then the answer with its source cards."""
        history = list(history or [])
        if not question or not question.strip():
            yield history, {}, question
            return
        history.append({"role": "user", "content": html.escape(question)})
        try:
            service = self._ready_service(index_value)
            if service is None:
                history.append({"role": "assistant", "content": render.hint_html(render.EMPTY_INDEX_HINT)})
                yield history, {"hint": "empty index"}, ""
                return
            history.append({"role": "assistant", "content": "…"})
            yield history, {}, ""
            text = ""
            for piece in service.stream(question, reader=reader or None, mode=mode or None, top_k=int(top_k)):
                if isinstance(piece, Answer):
                    history[-1] = {"role": "assistant", "content": render.answer_message(piece)}
                    yield history, piece.to_dict(), ""
                else:
                    text += piece
                    history[-1] = {"role": "assistant", "content": render.notice_message(text, "partial")}
                    yield history, {}, ""
        except (IndexNotFoundError, EmptyQuestionError) as exc:
            history.append({"role": "assistant", "content": render.hint_html(html.escape(str(exc)))})
            yield history, {"hint": str(exc)}, ""
        except Exception as exc:  # any failure is shown in the chat; the app stays up
            log.exception("question failed: %r", question)
            if history and history[-1]["role"] == "assistant" and history[-1]["content"] == "…":
                history.pop()
            history.append({"role": "assistant", "content": render.notice_message(_user_error(exc), "error")})
            yield history, {"error": _user_error(exc)}, ""

    # ------------------------------------------------------------------ Search
    def search(self, query: str, mode: str, top_k: float, index_value: str) -> str:
        """Top-k passages as HTML cards, query words marked; hints and errors as HTML too."""
        if not query or not query.strip():
            return render.hint_html("Type a query to search your documents.")
        try:
            service = self._ready_service(index_value)
            if service is None:
                return render.hint_html(render.EMPTY_INDEX_HINT)
            return render.passages_html(service.search(query, mode=mode or None, top_k=int(top_k)), query)
        except Exception as exc:
            log.exception("search failed: %r", query)
            return render.notice_message(_user_error(exc), "error")

    # ------------------------------------------------------------------ Documents
    def documents(self, index_value: str) -> tuple[list[list[Any]], dict[str, Any]]:
        """The documents table rows and the remove-dropdown update for the chosen index."""
        index = self.catalog.resolve(index_value)
        rows: list[list[Any]] = []
        if is_built(index, self.catalog.settings):
            for d in self.catalog.service(index).store.documents():
                rows.append([render.display_name(d.source), d.type, d.pages if d.pages is not None else "",
                             d.chunks, d.added_at, d.source])
        choices = [(f"{r[0]}  ({r[5]})", r[5]) for r in rows]
        return rows, gr.update(choices=choices, value=None)

    def upload(self, files: list[str] | None, index_value: str,
               progress: gr.Progress = gr.Progress()) -> tuple[str, list[list[Any]], dict[str, Any]]:  # noqa: B008
        """Store the uploads under sanitised names in ``<index>/uploads/`` and ingest them with progress."""
        index = self.catalog.resolve(index_value)
        if not files:
            return render.hint_html("Choose or drop files to upload."), *self.documents(index_value)
        progress(0.0, desc="saving uploads")
        saved = save_uploads(list(files), index, self.max_upload_mb)
        failed = list(saved.failed)
        added: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        skipped: list[str] = []
        try:
            if saved.saved:
                def report_progress(done: int, total: int, desc: str) -> None:
                    progress(done / total if total > 0 else 1.0, desc=desc)

                report = ingest_paths(saved.saved, index, settings=self.catalog.settings, progress=report_progress)
                failed += report.failed
                added, updated, unchanged, skipped = report.added, report.updated, report.unchanged, report.skipped
                for item in report.failed:  # a stored upload that could not be indexed is not kept
                    copy = uploaded_copy(item["path"], index)
                    if copy is not None:
                        copy.unlink(missing_ok=True)
        except (IngestUsageError, IndexStoreError, OSError) as exc:
            return render.notice_message(_user_error(exc), "error"), *self.documents(index_value)
        except Exception as exc:
            log.exception("ingest failed")
            return render.notice_message(_user_error(exc), "error"), *self.documents(index_value)
        rows, choices = self.documents(index_value)
        chunks = sum(int(r[3]) for r in rows)
        status = render.upload_report_html(added, updated, unchanged, failed, len(rows), chunks, skipped)
        return status, rows, choices

    def remove(self, source: str | None, index_value: str,
               progress: gr.Progress = gr.Progress()) -> tuple[str, list[list[Any]], dict[str, Any]]:  # noqa: B008
        """Drop one document from the index (and its stored upload, if it was uploaded here)."""
        index = self.catalog.resolve(index_value)
        if not source:
            return render.hint_html("Pick a document to remove."), *self.documents(index_value)
        try:
            progress(0.0, desc="removing")
            report = remove_sources([source], index, settings=self.catalog.settings)
            copy = uploaded_copy(source, index)
            if copy is not None:
                copy.unlink(missing_ok=True)
            message = (f"Removed {render.display_name(source)}." if report.removed
                       else f"{render.display_name(source)} was not in the index.")
            status = render.hint_html(html.escape(message))
        except Exception as exc:
            log.exception("remove failed: %s", source)
            status = render.notice_message(_user_error(exc), "error")
        return status, *self.documents(index_value)

    # ------------------------------------------------------------------ Indexes
    def _index_view(self, index: Path, status: str) -> tuple[dict[str, Any], str, list[list[Any]], dict[str, Any]]:
        rows, choices = self.documents(str(index))
        if not rows:
            status += " " + render.EMPTY_INDEX_HINT
        return gr.update(choices=self.catalog.choices(), value=str(index)), render.hint_html(status), rows, choices

    def open_index(self, index_value: str) -> tuple[dict[str, Any], str, list[list[Any]], dict[str, Any]]:
        """Switch to an index from the dropdown."""
        index = self.catalog.resolve(index_value)
        return self._index_view(index, f"Using index {html.escape(str(index))}.")

    def create_index(self, name: str,
                     index_value: str) -> tuple[dict[str, Any], str, list[list[Any]], dict[str, Any]]:
        """Create an empty index folder under the indexes root and switch to it."""
        try:
            index = self.catalog.create(name)
        except (ValueError, OSError) as exc:
            view = self._index_view(self.catalog.resolve(index_value), "")
            return view[0], render.notice_message(_user_error(exc), "error"), view[2], view[3]
        return self._index_view(index, f"Created index {html.escape(str(index))}.")
