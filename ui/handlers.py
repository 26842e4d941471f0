"""What each UI event does: ask, search, upload, remove, switch or create an index.

Every handler catches its own failures and turns them into a message on the page, so a bad
question or file never takes the app down.  Answers come from :class:`rag_qa.service.QAService`,
the same code path as the CLI.

With a users file, every handler first asks :class:`ui.access.Access` whether the signed-in user
(``gr.Request.username``, set by Gradio's sign-in) may do this on this index, so a refusal holds for
the HTTP API as much as for the page; a refused request changes nothing and gets a clear message.
Uploads, removals, index creation and refusals are written to the index's audit log.
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
from rag_qa.store import IndexNotFoundError, IndexStoreError, index_exists
from rag_qa.types import Answer
from ui import audit, render
from ui.access import NO_INDEX_HINT, Access, AccessDenied
from ui.conversation import plain_history
from ui.indexes import IndexCatalog
from ui.limits import QuestionTooLong, TooManyRequests, UserSlots, question_too_long
from ui.permissions import Action
from ui.uploads import save_uploads, uploaded_copy

log = logging.getLogger("rag_qa.ui")
History = list[dict[str, Any]]
IndexView = tuple[dict[str, Any], str, list[list[Any]], dict[str, Any]]
DOCUMENT_HEADERS = ["Name", "Type", "Pages", "Chunks", "Added", "Source"]
_REFUSALS = (AccessDenied, TooManyRequests)


def _user_error(exc: BaseException) -> str:
    """A one-line message for the page; our own errors already say what to do."""
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, ValueError | IndexStoreError | RuntimeError | PermissionError) else (
        f"{type(exc).__name__}: {text}")


def user_of(request: gr.Request | None) -> str | None:
    """The signed-in user Gradio attached to the request (``None`` without sign-in)."""
    return getattr(request, "username", None) if request is not None else None


class Handlers:
    """The event functions, bound to one catalogue of indexes, its access rules and the app's limits."""

    def __init__(self, catalog: IndexCatalog, max_upload_mb: float, access: Access | None = None) -> None:
        self.catalog = catalog
        self.settings = catalog.settings
        self.max_upload_mb = max_upload_mb
        self.access = access or Access(catalog, None)
        self.slots = UserSlots(self.settings.user_concurrency)

    def _ready_service(self, index: Path) -> QAService | None:
        """The service for ``index``, or ``None`` when that index has no documents yet."""
        if not index_exists(index, self.settings):
            return None
        service = self.catalog.service(index)
        return service if service.store.chunk_count > 0 else None

    def _audit(self, index: Path | None, user: str | None, action: Action | str, outcome: str, **fields: Any) -> None:
        """Append one event to ``index``'s audit log (the user is ``None`` when sign-in is off)."""
        if index is not None:
            name = action.value if isinstance(action, Action) else action
            audit.append(audit.index_log(index), audit.event(user, name, outcome, **fields))

    def _refused(self, exc: Exception, user: str | None, action: Action, index_value: str | None,
                 files: list[str] | None = None) -> str:
        """Log a refusal in the index's audit log (if that index exists) and return its message."""
        if isinstance(exc, AccessDenied):
            self._audit(self.access.known(index_value), user, action, "refused", files=files or [], detail=str(exc))
        return str(exc)

    # ------------------------------------------------------------------ Ask
    def ask(self, question: str, history: History | None, reader: str, mode: str, top_k: float,
            index_value: str, request: gr.Request | None = None) -> Iterator[tuple[History, dict[str, Any], str]]:
        """Stream an answer into the chat: text pieces as they come, then the answer with its source cards.

        The chat's earlier turns (``history``, the last few) are the conversation a follow-up is read
        against; the answer shows what was searched for when that changed the question."""
        history = list(history or [])
        if not question or not question.strip():
            yield history, {}, question
            return
        user = user_of(request)
        conversation = plain_history(history)  # the turns before this question, plain text, capped
        history.append({"role": "user", "content": html.escape(question[:self.settings.max_question_chars])})
        try:
            if (too_long := question_too_long(question, self.settings.max_question_chars)) is not None:
                raise QuestionTooLong(too_long)
            index = self.access.index(user, index_value, Action.ASK)
            with self.slots.slot(user):
                if self.settings.audit_questions:
                    self._audit(index, user, Action.ASK, "ok", question=question)
                service = self._ready_service(index)
                if service is None:
                    history.append({"role": "assistant", "content": render.hint_html(render.EMPTY_INDEX_HINT)})
                    yield history, {"hint": "empty index"}, ""
                    return
                history.append({"role": "assistant", "content": "…"})
                yield history, {}, ""
                text = ""
                for piece in service.stream(question, reader=reader or None, mode=mode or None, top_k=int(top_k),
                                            history=conversation):
                    if isinstance(piece, Answer):
                        history[-1] = {"role": "assistant", "content": render.answer_message(piece, question)}
                        yield history, piece.to_dict(), ""
                    else:
                        text += piece
                        history[-1] = {"role": "assistant", "content": render.notice_message(text, "partial")}
                        yield history, {}, ""
        except (IndexNotFoundError, EmptyQuestionError) as exc:
            history.append({"role": "assistant", "content": render.hint_html(html.escape(str(exc)))})
            yield history, {"hint": str(exc)}, ""
        except (*_REFUSALS, QuestionTooLong) as exc:  # refused before any work: nothing changed
            message = self._refused(exc, user, Action.ASK, index_value)
            history.append({"role": "assistant", "content": render.notice_message(message, "error")})
            yield history, {"error": message}, question if isinstance(exc, QuestionTooLong) else ""
        except Exception as exc:  # any failure is shown in the chat; the app stays up
            log.exception("question failed: %r", question[:200])
            if history and history[-1]["role"] == "assistant" and history[-1]["content"] == "…":
                history.pop()
            history.append({"role": "assistant", "content": render.notice_message(_user_error(exc), "error")})
            yield history, {"error": _user_error(exc)}, ""

    # ------------------------------------------------------------------ Search
    def search(self, query: str, mode: str, top_k: float, index_value: str, request: gr.Request | None = None) -> str:
        """Top-k passages as HTML cards, query words marked; hints and errors as HTML too."""
        if not query or not query.strip():
            return render.hint_html("Type a query to search your documents.")
        user = user_of(request)
        try:
            if (too_long := question_too_long(query, self.settings.max_question_chars, "query")) is not None:
                return render.notice_message(too_long, "error")
            index = self.access.index(user, index_value, Action.SEARCH)
            with self.slots.slot(user):
                if self.settings.audit_questions:
                    self._audit(index, user, Action.SEARCH, "ok", question=query)
                service = self._ready_service(index)
                if service is None:
                    return render.hint_html(render.EMPTY_INDEX_HINT)
                return render.passages_html(service.search(query, mode=mode or None, top_k=int(top_k)), query)
        except _REFUSALS as exc:
            return render.notice_message(self._refused(exc, user, Action.SEARCH, index_value), "error")
        except Exception as exc:
            log.exception("search failed: %r", query[:200])
            return render.notice_message(_user_error(exc), "error")

    # ------------------------------------------------------------------ Documents
    def documents(self, index: Path | None) -> tuple[list[list[Any]], dict[str, Any]]:
        """The documents table rows and the remove-dropdown update for ``index`` (already permitted)."""
        rows: list[list[Any]] = []
        if index is not None and index_exists(index, self.settings):
            for d in self.catalog.service(index).store.documents():
                rows.append([render.display_name(d.source), d.type, d.pages if d.pages is not None else "",
                             d.chunks, d.added_at, d.source])
        choices = [(f"{r[0]}  ({r[5]})", r[5]) for r in rows]
        return rows, gr.update(choices=choices, value=None)

    def _sources(self, index: Path) -> set[str]:
        """The sources of the documents ``index`` holds (none before its first version)."""
        if not index_exists(index, self.settings):
            return set()
        return {d.source for d in self.catalog.service(index).store.documents()}

    def upload(self, files: list[str] | None, index_value: str, request: gr.Request | None = None,
               progress: gr.Progress = gr.Progress()) -> tuple[str, list[list[Any]], dict[str, Any]]:  # noqa: B008
        """Store the uploads under sanitised names in ``<index>/uploads/`` and ingest them with progress."""
        user = user_of(request)
        names = [Path(f).name for f in files or []]
        try:
            index = self.access.index(user, index_value, Action.UPLOAD)
        except AccessDenied as exc:
            return render.notice_message(self._refused(exc, user, Action.UPLOAD, index_value, names), "error"), \
                *self.documents(None)
        if not files:
            return render.hint_html("Choose or drop files to upload."), *self.documents(index)
        try:
            with self.slots.slot(user):
                status = self._ingest(list(files), index, user, progress)
        except TooManyRequests as exc:
            status = render.notice_message(str(exc), "error")
        return status, *self.documents(index)

    def _ingest(self, files: list[str], index: Path, user: str | None, progress: gr.Progress) -> str:
        progress(0.0, desc="saving uploads")
        saved = save_uploads(files, index, self.max_upload_mb)
        failed = list(saved.failed)
        added: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        skipped: list[str] = []
        notes: list[dict[str, str]] = []
        try:
            if saved.saved:
                def report_progress(done: int, total: int, desc: str) -> None:
                    progress(done / total if total > 0 else 1.0, desc=desc)

                report = ingest_paths(saved.saved, index, settings=self.settings, progress=report_progress)
                failed += report.failed
                added, updated, unchanged, skipped = report.added, report.updated, report.unchanged, report.skipped
                notes = report.file_notes
                for item in report.failed:  # a stored upload that could not be indexed is not kept
                    copy = uploaded_copy(item["path"], index)
                    if copy is not None:
                        copy.unlink(missing_ok=True)
        except Exception as exc:
            if not isinstance(exc, IngestUsageError | IndexStoreError | OSError):
                log.exception("ingest failed")
            self._audit(index, user, Action.UPLOAD, "failed", files=[Path(f).name for f in files],
                        detail=_user_error(exc))
            return render.notice_message(_user_error(exc), "error")
        names = [render.display_name(str(p)) for p in added + updated + unchanged]
        # skipped: mail attachments of types that are not read, named in the trail as on the page
        self._audit(index, user, Action.UPLOAD, "failed" if failed and not names else "ok", files=names,
                    detail="; ".join(f"{render.display_name(f['path'])}: {f['error']}" for f in failed),
                    skipped=[render.display_name(p) for p in skipped] or None)
        rows, _ = self.documents(index)
        return render.upload_report_html(added, updated, unchanged, failed, len(rows), sum(int(r[3]) for r in rows),
                                         skipped, notes)

    def remove(self, source: str | None, index_value: str, request: gr.Request | None = None,
               progress: gr.Progress = gr.Progress()) -> tuple[str, list[list[Any]], dict[str, Any]]:  # noqa: B008
        """Drop one document from the index (and its stored upload, if it was uploaded here)."""
        user = user_of(request)
        try:
            index = self.access.index(user, index_value, Action.REMOVE)
        except AccessDenied as exc:
            names = [render.display_name(source)] if source else []
            return render.notice_message(self._refused(exc, user, Action.REMOVE, index_value, names), "error"), \
                *self.documents(None)
        if not source:
            return render.hint_html("Pick a document to remove."), *self.documents(index)
        name = render.display_name(source)
        try:
            with self.slots.slot(user):
                held = self._sources(index)
                target = source if source in held else str(Path(source).expanduser().resolve())
                if target not in held:
                    # one document of this index, never a folder: remove_sources would take everything under
                    # a path such as the index's uploads folder or "/", in one request the trail names as one
                    self._audit(index, user, Action.REMOVE, "not-found", files=[name])
                    return render.hint_html(html.escape(f"{name} was not in the index.")), *self.documents(index)
                progress(0.0, desc="removing")
                report = remove_sources([target], index, settings=self.settings)
                copy = uploaded_copy(target, index)
                if copy is not None:
                    copy.unlink(missing_ok=True)
            removed = [render.display_name(s) for s in report.removed]  # a mail goes with its attachments
            message = f"Removed {', '.join(removed)}." if removed else f"{name} was not in the index."
            self._audit(index, user, Action.REMOVE, "ok" if removed else "not-found", files=removed or [name])
            status = render.hint_html(html.escape(message))
        except TooManyRequests as exc:
            status = render.notice_message(str(exc), "error")
        except Exception as exc:
            log.exception("remove failed: %s", source)
            self._audit(index, user, Action.REMOVE, "failed", files=[name], detail=_user_error(exc))
            status = render.notice_message(_user_error(exc), "error")
        return status, *self.documents(index)

    # ------------------------------------------------------------------ Indexes
    def account(self, request: gr.Request | None = None) -> str:
        """Who is signed in, a sign-out link, and the empty state for a user without any index."""
        user = user_of(request)
        if user is None:
            return ""
        text = f"Signed in as <b>{html.escape(user)}</b>"
        if not self.settings.trusted_user_header:  # behind single sign-on the proxy owns the session
            text += ' · <a href="logout">Sign out</a>'
        if not self.access.choices(user):
            text += f"<br>{html.escape(NO_INDEX_HINT)}"
        return render.hint_html(text)

    def _index_view(self, user: str | None, index: Path | None, status: str) -> IndexView:
        choices = self.access.choices(user)
        if index is None:  # nothing this user may open: a polite empty state, not an error
            message = NO_INDEX_HINT if not choices else "Pick an index."
            return gr.update(choices=choices, value=None), render.notice_message(message, "hint"), \
                *self.documents(None)
        rows, remove_choices = self.documents(index)
        if not rows:
            status += " " + render.EMPTY_INDEX_HINT
        return gr.update(choices=choices, value=str(index)), render.hint_html(status), rows, remove_choices

    def open_index(self, index_value: str | None, request: gr.Request | None = None) -> IndexView:
        """Switch to an index from the dropdown (on page load: the first one the user may open)."""
        user = user_of(request)
        try:
            index = self.access.index(user, index_value, Action.LIST)
        except AccessDenied as exc:
            choices = self.access.choices(user)
            if index_value or not choices:  # an explicit, refused choice is said so; none at all is the empty state
                view = self._index_view(user, Path(choices[0][1]) if choices else None, "")
                return view[0], render.notice_message(str(exc), "error" if index_value else "hint"), *view[2:]
            index = Path(choices[0][1])
        return self._index_view(user, index, f"Using index {html.escape(str(index))}.")

    def create_index(self, name: str, index_value: str | None, request: gr.Request | None = None) -> IndexView:
        """Create an empty index folder under the indexes root and switch to it."""
        user = user_of(request)
        try:
            self.access.check_create(user, name)
            index = self.catalog.create(name)
        except (ValueError, OSError, AccessDenied) as exc:
            try:
                current = self.access.index(user, index_value, Action.LIST)
            except AccessDenied:
                current = None
            view = self._index_view(user, current, "")
            return view[0], render.notice_message(_user_error(exc), "error"), view[2], view[3]
        self._audit(index, user, Action.CREATE, "ok")
        return self._index_view(user, index, f"Created index {html.escape(str(index))}.")
