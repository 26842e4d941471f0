"""What each UI event does: ask, search, upload, remove, switch or create an index.

Every handler catches its own failures and turns them into a message on the page, so a bad
question or file never takes the app down.  Answers come from :class:`rag_qa.service.QAService`,
the same code path as the CLI.

With a users file, every handler first asks :class:`ui.access.Access` whether the signed-in user
(``gr.Request.username``, set by Gradio's sign-in) may do this on this index, so a refusal holds for
the HTTP API as much as for the page; a refused request changes nothing and gets a clear message.
The other fields of a request are checked on the server too: the reader must be one the operator
offers (:class:`ui.readers.OfferedReaders`: a typed spec never reaches the reader registry), the
mode and top-k must be valid (:mod:`ui.validation`).  Uploads, removals, index creation and every
refusal are written to the audit trail: the index's own log, or the server's log when the request
named no index on offer.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
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
from ui.indexes import IndexCatalog, sanitise_index_name
from ui.limits import QuestionTooLong, TooManyRequests, UserSlots, question_too_long
from ui.permissions import Action, Role, role_on
from ui.readers import OfferedReaders
from ui.sources import source_label, source_labels
from ui.uploads import discard_gradio_copies, save_uploads, uploaded_copy
from ui.validation import RequestRefused, check_mode, check_top_k

log = logging.getLogger("rag_qa.ui")
History = list[dict[str, Any]]
IndexView = tuple[dict[str, Any], str, list[list[Any]], dict[str, Any]]
DocumentsView = tuple[list[list[Any]], dict[str, Any]]
DOCUMENT_HEADERS = ["Name", "Type", "Pages", "Chunks", "Added", "Source"]
_REFUSALS = (AccessDenied, TooManyRequests, RequestRefused)
_AUDITED = (AccessDenied, RequestRefused)  # refusals of what was asked (the per-user cap is load, not intent)


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

    def __init__(self, catalog: IndexCatalog, max_upload_mb: float, access: Access | None = None,
                 readers: OfferedReaders | None = None) -> None:
        self.catalog = catalog
        self.settings = catalog.settings
        self.max_upload_mb = max_upload_mb
        self.access = access or Access(catalog, None)
        self.readers = readers or OfferedReaders(self.settings)
        self.slots = UserSlots(self.settings.user_concurrency)
        self.server_log = self.settings.signin_log  # events that belong to no index

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

    def audit_refusal(self, user: str | None, action: Action | str, index_value: object, detail: str,
                      server: bool = False, **fields: Any) -> None:
        """A refusal in the trail: the index's log if the request named an index on offer, else (or when
        ``server``) the server's log with the index as the request named it (``A/../B``, another team's path)."""
        name = action.value if isinstance(action, Action) else action
        index = self.access.known(index_value) if isinstance(index_value, str) and not server else None
        if index is not None:
            self._audit(index, user, name, "refused", detail=detail, **fields)
        else:
            audit.append(self.server_log, audit.event(user, name, "refused", detail=detail,
                                                      index=index_value if isinstance(index_value, str) else
                                                      repr(index_value), **fields))

    def _refused(self, exc: Exception, user: str | None, action: Action, index_value: str | None,
                 files: list[str] | None = None, **fields: Any) -> str:
        """Log a refusal of what was asked in the audit trail and return its message."""
        if isinstance(exc, _AUDITED):
            self.audit_refusal(user, action, index_value, str(exc), files=files or [], **fields)
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
        label = reader or self.readers.default
        try:
            if (too_long := question_too_long(question, self.settings.max_question_chars)) is not None:
                raise QuestionTooLong(too_long)
            # every field is checked before anything is opened, loaded or called
            spec, mode, k = self.readers.spec(reader), check_mode(mode), check_top_k(top_k)
            index = self.access.index(user, index_value, Action.ASK)
            with self.slots.slot(user):
                if self.settings.audit_questions:
                    self._audit(index, user, Action.ASK, "ok", question=question, reader=label)
                service = self._ready_service(index)
                if service is None:
                    history.append({"role": "assistant", "content": render.hint_html(render.EMPTY_INDEX_HINT)})
                    yield history, {"hint": "empty index"}, ""
                    return
                history.append({"role": "assistant", "content": "…"})
                yield history, {}, ""
                text = ""
                for piece in service.stream(question, reader=spec, mode=mode, top_k=k, history=conversation):
                    if isinstance(piece, Answer):
                        if self.readers.hides_spec(label):  # answers name the operator's reader, not its URL
                            piece = dataclasses.replace(piece, reader=label)
                        history[-1] = {"role": "assistant",
                                       "content": render.answer_message(piece, self._shown(index), question)}
                        yield history, piece.to_dict(), ""
                    else:
                        text += piece
                        history[-1] = {"role": "assistant", "content": render.notice_message(text, "partial")}
                        yield history, {}, ""
        except (IndexNotFoundError, EmptyQuestionError) as exc:
            history.append({"role": "assistant", "content": render.hint_html(html.escape(str(exc)))})
            yield history, {"hint": str(exc)}, ""
        except (*_REFUSALS, QuestionTooLong) as exc:  # refused before any work: nothing changed
            message = self._refused(exc, user, Action.ASK, index_value, reader=label if isinstance(label, str)
                                    else repr(label))
            history.append({"role": "assistant", "content": render.notice_message(message, "error")})
            yield history, {"error": message}, question if isinstance(exc, QuestionTooLong) else ""
        except Exception as exc:  # any failure is shown in the chat; the app stays up
            log.exception("question failed: %r", question[:200])
            message = _user_error(exc)
            if isinstance(label, str) and self.readers.hides_spec(label):  # its error may name the URL
                message = f"The reader {label!r} failed; the server's log says why."
            if history and history[-1]["role"] == "assistant" and history[-1]["content"] == "…":
                history.pop()
            history.append({"role": "assistant", "content": render.notice_message(message, "error")})
            yield history, {"error": message}, ""

    # ------------------------------------------------------------------ Search
    def search(self, query: str, mode: str, top_k: float, index_value: str, request: gr.Request | None = None) -> str:
        """Top-k passages as HTML cards, query words marked; hints and errors as HTML too."""
        if not query or not query.strip():
            return render.hint_html("Type a query to search your documents.")
        user = user_of(request)
        try:
            if (too_long := question_too_long(query, self.settings.max_question_chars, "query")) is not None:
                return render.notice_message(too_long, "error")
            mode, k = check_mode(mode), check_top_k(top_k)
            index = self.access.index(user, index_value, Action.SEARCH)
            with self.slots.slot(user):
                if self.settings.audit_questions:
                    self._audit(index, user, Action.SEARCH, "ok", question=query)
                service = self._ready_service(index)
                if service is None:
                    return render.hint_html(render.EMPTY_INDEX_HINT)
                return render.passages_html(service.search(query, mode=mode, top_k=k), query, self._shown(index))
        except _REFUSALS as exc:
            return render.notice_message(self._refused(exc, user, Action.SEARCH, index_value), "error")
        except Exception as exc:
            log.exception("search failed: %r", query[:200])
            return render.notice_message(_user_error(exc), "error")

    # ------------------------------------------------------------------ Documents
    def _shown(self, index: Path) -> Callable[[str], str]:
        """How the page names a source of ``index``: as the documents table does (relative to the index or
        its uploads folder, never the absolute path); the index's list is read once, on first use."""
        labels: dict[str, str] | None = None

        def shown(source: str) -> str:
            nonlocal labels
            if labels is None:
                docs = self.catalog.service(index).store.documents() if index_exists(index, self.settings) else []
                labels = source_labels([d.source for d in docs], PurePath(index))
            return labels.get(source) or source_label(source, PurePath(index))

        return shown

    def documents(self, index: Path | None) -> DocumentsView:
        """The documents table rows and the remove-dropdown update for ``index`` (already permitted).

        Sources are shown relative to the index or its uploads folder; the remove list names them so too.
        """
        docs = list(self.catalog.service(index).store.documents()) if index is not None and index_exists(
            index, self.settings) else []
        labels = source_labels([d.source for d in docs], PurePath(index)) if index is not None else {}
        rows: list[list[Any]] = [[render.display_name(d.source), d.type, d.pages if d.pages is not None else "",
                                  d.chunks, d.added_at, labels[d.source]] for d in docs]
        return rows, gr.update(choices=[(r[5], r[5]) for r in rows], value=None)

    def _kept(self, user: str | None, index_value: str | None) -> DocumentsView:
        """The documents view after a refused upload or removal: the table as the page had it (the index's
        documents, if the user may see that index at all), never emptied because of the refusal."""
        try:
            return self.documents(self.access.index(user, index_value, Action.LIST))
        except AccessDenied:
            return self.documents(None)

    def _held(self, index: Path) -> dict[str, str]:
        """The documents ``index`` holds: their label and their absolute source, each to its source."""
        if not index_exists(index, self.settings):
            return {}
        sources = [d.source for d in self.catalog.service(index).store.documents()]
        held = {label: source for source, label in source_labels(sources, PurePath(index)).items()}
        held.update({source: source for source in sources})
        return held

    def upload(self, files: list[str] | None, index_value: str, request: gr.Request | None = None,
               progress: gr.Progress = gr.Progress()) -> tuple[str, list[list[Any]], dict[str, Any]]:  # noqa: B008
        """Store the uploads under sanitised names in ``<index>/uploads/`` and ingest them with progress.

        Gradio's own copies of the files are deleted afterwards, whatever the outcome."""
        user = user_of(request)
        names = [Path(f).name for f in files or []]
        try:
            try:
                index = self.access.index(user, index_value, Action.UPLOAD)
            except AccessDenied as exc:
                return render.notice_message(self._refused(exc, user, Action.UPLOAD, index_value, names), "error"), \
                    *self._kept(user, index_value)
            if not files:
                return render.hint_html("Choose or drop files to upload."), *self.documents(index)
            try:
                with self.slots.slot(user):
                    status = self._ingest(list(files), index, user, progress)
            except TooManyRequests as exc:
                status = render.notice_message(str(exc), "error")
            return status, *self.documents(index)
        finally:
            discard_gradio_copies(files)

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
        """Drop one document from the index (and its stored upload, if it was uploaded here).

        ``source`` is the document as the remove list names it (relative to the index), or its absolute path."""
        user = user_of(request)
        try:
            index = self.access.index(user, index_value, Action.REMOVE)
        except AccessDenied as exc:
            names = [render.display_name(source)] if isinstance(source, str) and source else []
            return render.notice_message(self._refused(exc, user, Action.REMOVE, index_value, names), "error"), \
                *self._kept(user, index_value)
        if not source or not isinstance(source, str):
            return render.hint_html("Pick a document to remove."), *self.documents(index)
        name = render.display_name(source)
        try:
            with self.slots.slot(user):
                held = self._held(index)
                target = held.get(source) or held.get(str(Path(source).expanduser().resolve()))
                if target is None:
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
    def _role(self, user: str | None, index: Path | None) -> Role | None:
        return role_on(self.access.roles(user), index.name) if index is not None else None

    def account(self, request: gr.Request | None = None, index_value: str | None = None) -> str:
        """Who is signed in, with their role on the index in use, a sign-out link, and the empty state for a
        user without any index."""
        user = user_of(request)
        if user is None:
            return ""
        text = f"Signed in as <b>{html.escape(user)}</b>"
        try:
            index: Path | None = self.access.index(user, index_value, Action.LIST) if index_value else None
        except AccessDenied:
            index = None
        role = self._role(user, index)
        if role is not None and index is not None:
            text += (f' · <span class="account-role">{role.value}</span> of '
                     f"{html.escape(self._label(user, index))}")
        if not self.settings.trusted_user_header:  # behind single sign-on the proxy owns the session
            text += ' · <a href="logout">Sign out</a>'
        if not self.access.choices(user):
            text += f"<br>{html.escape(NO_INDEX_HINT)}"
        return render.hint_html(text)

    def page(self, index_value: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """The parts of the page that depend on the user's role on the index in use: the account line, and
        Upload, Remove and Create index shown only to those who may use them (the handlers check anyway)."""
        if not self.access.enabled:
            return gr.update(), gr.update(visible=True), gr.update(visible=True), gr.update(visible=True)
        user = user_of(request)
        try:
            index: Path | None = self.access.index(user, index_value, Action.LIST) if index_value else None
        except AccessDenied:
            index = None
        role = self._role(user, index)
        edits = role is not None and role.rank >= Role.EDITOR.rank
        creates = any(r is Role.ADMIN for r in self.access.roles(user).values())
        return (self.account(request, index_value), gr.update(visible=edits), gr.update(visible=edits),
                gr.update(visible=creates))

    def _label(self, user: str | None, index: Path) -> str:
        """The index as the Index list names it (``indexes/team``), never its absolute path."""
        for label, path in self.access.choices(user):
            if path == str(index):
                return label
        return index.name

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
                if index_value:  # choosing an index is not acting on it: the server's log records the try
                    self.audit_refusal(user, "open-index", index_value, str(exc), server=True)
                view = self._index_view(user, Path(choices[0][1]) if choices else None, "")
                return view[0], render.notice_message(str(exc), "error" if index_value else "hint"), *view[2:]
            index = Path(choices[0][1])
        return self._index_view(user, index, f"Using index {html.escape(self._label(user, index))}.")

    def create_index(self, name: str, index_value: str | None, request: gr.Request | None = None) -> IndexView:
        """Create an empty index folder under the indexes root and switch to it."""
        user = user_of(request)
        try:
            self.access.check_create(user, name)
            index = self.catalog.create(name)
        except (ValueError, OSError, AccessDenied) as exc:
            if isinstance(exc, AccessDenied):
                wanted = sanitise_index_name(name) if isinstance(name, str) else ""
                self.audit_refusal(user, Action.CREATE, str(self.catalog.root / wanted) if wanted else name,
                                   str(exc), name=name)
            try:
                current = self.access.index(user, index_value, Action.LIST)
            except AccessDenied:
                current = None
            view = self._index_view(user, current, "")
            return view[0], render.notice_message(_user_error(exc), "error"), view[2], view[3]
        self._audit(index, user, Action.CREATE, "ok")
        return self._index_view(user, index, f"Created index {html.escape(self._label(user, index))}.")
