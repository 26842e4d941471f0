"""What each UI event does: ask, search, upload, remove, switch or create an index.

Every handler runs its work inside :meth:`ui.guard.Guard.event`, the one place that checks the
signed-in user's access (``gr.Request.username``, set by Gradio's sign-in) through
:class:`ui.access.Access`, holds one of the user's request slots, writes refusals to the audit
trail and turns any failure into a message on the page, so a bad question or file never takes
the app down; what follows the ``with`` block is what the page shows after a refusal or failure.
Answers come from :class:`rag_qa.service.QAService`, the same code path as the CLI.

A refusal holds for the HTTP API as much as for the page, changes nothing and gets a clear message.
The other fields of a request are checked on the server too: the reader must be one the operator
offers (:class:`ui.readers.OfferedReaders`: a typed spec never reaches the reader registry), the
mode and top-k must be valid (:mod:`ui.validation`).  Uploads, removals, index creation and every
refusal are written to the audit trail.  Copies of uploads that have no use left are deleted by
:mod:`ui.discard`.
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
from ui import render
from ui.access import NO_INDEX_HINT, Access, AccessDenied
from ui.conversation import plain_history
from ui.discard import discard_stored_uploads, gradio_copies_discarded
from ui.guard import Event, Guard, user_of
from ui.indexes import IndexCatalog, sanitise_index_name
from ui.limits import QuestionTooLong, UserSlots, check_length
from ui.permissions import Action, Role, role_on
from ui.readers import OfferedReaders
from ui.sources import source_label, source_labels
from ui.uploads import save_uploads
from ui.validation import check_mode, check_top_k

log = logging.getLogger("rag_qa.ui")
History = list[dict[str, Any]]
IndexView = tuple[dict[str, Any], str, list[list[Any]], dict[str, Any]]
DocumentsView = tuple[list[list[Any]], dict[str, Any]]
DOCUMENT_HEADERS = ["Name", "Type", "Pages", "Chunks", "Added", "Source"]
#: what an upload can run into that is not a bug: a file or index ingestion refuses, a disk or lock problem
INGEST_ERRORS = (IngestUsageError, IndexStoreError, OSError)


class Handlers:
    """The event functions, bound to one catalogue of indexes, its access rules and the app's limits."""

    def __init__(self, catalog: IndexCatalog, max_upload_mb: float, access: Access | None = None,
                 readers: OfferedReaders | None = None) -> None:
        self.catalog = catalog
        self.settings = catalog.settings
        self.max_upload_mb = max_upload_mb
        self.access = access or Access(catalog, None)
        self.readers = readers or OfferedReaders(self.settings)
        self.guard = Guard(self.access, UserSlots(self.settings.user_concurrency), self.settings.signin_log)

    def _ready_service(self, index: Path) -> QAService | None:
        """The service for ``index``, or ``None`` when that index has no documents yet."""
        if not index_exists(index, self.settings):
            return None
        service = self.catalog.service(index)
        return service if service.store.chunk_count > 0 else None

    def _may_open(self, user: str | None, index_value: object) -> Path | None:
        """The index ``index_value`` names if ``user`` may open it, else ``None``."""
        try:
            return self.access.index(user, index_value, Action.LIST)  # type: ignore[arg-type]
        except AccessDenied:
            return None

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
        conversation = plain_history(history)  # the turns before this question, plain text, capped
        history.append({"role": "user", "content": html.escape(question[:self.settings.max_question_chars])})
        label = reader or self.readers.default
        with self.guard.event(Action.ASK, request, index_value, log_as=f"question failed: {question[:200]!r}",
                              expected=(IndexNotFoundError, EmptyQuestionError),
                              reader=label if isinstance(label, str) else repr(label)) as event:
            check_length(question, self.settings.max_question_chars)
            # every field is checked before anything is opened, loaded or called
            spec, mode, k = self.readers.spec(reader), check_mode(mode), check_top_k(top_k)
            index = event.open()
            with event.slot():
                if self.settings.audit_questions:
                    event.audit("ok", question=question, reader=label)
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
            return
        if isinstance(event.error, IndexNotFoundError | EmptyQuestionError):  # a hint, not an error
            history.append({"role": "assistant", "content": render.hint_html(html.escape(str(event.error)))})
            yield history, {"hint": str(event.error)}, ""
            return
        message = event.message
        if not event.refused:  # it failed while answering
            if isinstance(label, str) and self.readers.hides_spec(label):  # its error may name the URL
                message = f"The reader {label!r} failed; the server's log says why."
            if history and history[-1]["role"] == "assistant" and history[-1]["content"] == "…":
                history.pop()
        history.append({"role": "assistant", "content": render.notice_message(message, "error")})
        # a question over the limit stays in the box, to be shortened
        yield history, {"error": message}, question if isinstance(event.error, QuestionTooLong) else ""

    # ------------------------------------------------------------------ Search
    def search(self, query: str, mode: str, top_k: float, index_value: str, request: gr.Request | None = None) -> str:
        """Top-k passages as HTML cards, query words marked; hints and errors as HTML too."""
        if not query or not query.strip():
            return render.hint_html("Type a query to search your documents.")
        with self.guard.event(Action.SEARCH, request, index_value, log_as=f"search failed: {query[:200]!r}") as event:
            check_length(query, self.settings.max_question_chars, "query")
            mode, k = check_mode(mode), check_top_k(top_k)
            index = event.open()
            with event.slot():
                if self.settings.audit_questions:
                    event.audit("ok", question=query)
                service = self._ready_service(index)
                if service is None:
                    return render.hint_html(render.EMPTY_INDEX_HINT)
                return render.passages_html(service.search(query, mode=mode, top_k=k), query, self._shown(index))
        return render.notice_message(event.message, "error")

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

    def _document_rows(self, index: Path | None) -> list[dict[str, Any]]:
        """The documents of ``index`` as table rows, each keyed by its column (:data:`DOCUMENT_HEADERS`).

        Sources are shown relative to the index or its uploads folder, never as the server's absolute path."""
        if index is None or not index_exists(index, self.settings):
            return []
        docs = list(self.catalog.service(index).store.documents())
        labels = source_labels([d.source for d in docs], PurePath(index))
        return [{"Name": render.display_name(d.source), "Type": d.type, "Pages": "" if d.pages is None else d.pages,
                 "Chunks": d.chunks, "Added": d.added_at, "Source": labels[d.source]} for d in docs]

    def documents(self, index: Path | None) -> DocumentsView:
        """The documents table and the remove-dropdown update for ``index`` (already permitted); the remove
        list names each document as the table's Source column does."""
        rows = self._document_rows(index)
        return ([[row[column] for column in DOCUMENT_HEADERS] for row in rows],
                gr.update(choices=[(row["Source"], row["Source"]) for row in rows], value=None))

    def _documents_as_they_were(self, user: str | None, index_value: object) -> DocumentsView:
        """The documents view after a refused or failed upload or removal: the table as the page had it (the
        index's documents, if the user may see that index at all), never emptied because of the refusal."""
        return self._documents_if_readable(self._may_open(user, index_value))

    def _documents_if_readable(self, index: Path | None) -> DocumentsView:
        """:meth:`documents` for a failure path, which runs outside the guard: an index that cannot be read
        (the failure itself, often) shows an empty table beside the error instead of breaking the page."""
        try:
            return self.documents(index)
        except Exception:  # noqa: BLE001 - the page must stay usable; the guard already logged the failure
            log.warning("documents of %s could not be listed", index, exc_info=True)
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
        with gradio_copies_discarded(files), self.guard.event(
                Action.UPLOAD, request, index_value, log_as="ingest failed", expected=INGEST_ERRORS,
                audit_failures=True, files=[Path(f).name for f in files or []]) as event:
            index = event.open()
            if not files:
                return render.hint_html("Choose or drop files to upload."), *self.documents(index)
            with event.slot():
                status = self._ingest(list(files), event, progress)
            return status, *self.documents(index)
        return render.notice_message(event.message, "error"), *self._documents_as_they_were(event.user, index_value)

    def _ingest(self, files: list[str], event: Event, progress: gr.Progress) -> str:
        """Store and ingest ``files`` into the event's index; the upload report, written to the trail too."""
        index = event.opened
        assert index is not None
        progress(0.0, desc="saving uploads")
        saved = save_uploads(files, index, self.max_upload_mb)
        failed = list(saved.failed)
        added: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        skipped: list[str] = []
        notes: list[dict[str, str]] = []
        if saved.saved:
            def report_progress(done: int, total: int, desc: str) -> None:
                progress(done / total if total > 0 else 1.0, desc=desc)

            try:
                report = ingest_paths(saved.saved, index, settings=self.settings, progress=report_progress)
            except BaseException:
                saved.settle(not_indexed=saved.saved)  # nothing got in: the folder is as it was
                raise
            saved.settle(not_indexed=[item["path"] for item in report.failed])
            failed += report.failed
            added, updated, unchanged, skipped = report.added, report.updated, report.unchanged, report.skipped
            notes = report.file_notes
        names = [render.display_name(str(p)) for p in added + updated + unchanged]
        # skipped: mail attachments of types that are not read, named in the trail as on the page
        event.audit("failed" if failed and not names else "ok", files=names,
                    detail="; ".join(f"{render.display_name(f['path'])}: {f['error']}" for f in failed),
                    skipped=[render.display_name(p) for p in skipped] or None)
        rows = self._document_rows(index)
        return render.upload_report_html(added, updated, unchanged, failed, len(rows),
                                         sum(int(row["Chunks"]) for row in rows), skipped, notes)

    def remove(self, source: str | None, index_value: str, request: gr.Request | None = None,
               progress: gr.Progress = gr.Progress()) -> tuple[str, list[list[Any]], dict[str, Any]]:  # noqa: B008
        """Drop one document from the index (and its stored upload, if it was uploaded here).

        ``source`` is the document as the remove list names it (relative to the index), or its absolute path."""
        name = render.display_name(source) if isinstance(source, str) and source else None
        with self.guard.event(Action.REMOVE, request, index_value, log_as=f"remove failed: {source}",
                              audit_failures=True, files=[name] if name else []) as event:
            index = event.open()
            if not isinstance(source, str) or name is None:
                return render.hint_html("Pick a document to remove."), *self.documents(index)
            with event.slot():
                status = self._remove(source, name, event, progress)
            return status, *self.documents(index)
        return render.notice_message(event.message, "error"), *self._documents_as_they_were(event.user, index_value)

    def _remove(self, source: str, name: str, event: Event, progress: gr.Progress) -> str:
        """Remove the one document ``source`` names from the event's index; the message, written to the trail."""
        index = event.opened
        assert index is not None
        held = self._held(index)
        target = held.get(source) or held.get(str(Path(source).expanduser().resolve()))
        if target is None:
            # one document of this index, never a folder: remove_sources would take everything under
            # a path such as the index's uploads folder or "/", in one request the trail names as one
            event.audit("not-found", files=[name])
            return render.hint_html(html.escape(f"{name} was not in the index."))
        progress(0.0, desc="removing")
        report = remove_sources([target], index, settings=self.settings)
        discard_stored_uploads([target], index)
        removed = [render.display_name(s) for s in report.removed]  # a mail goes with its attachments
        event.audit("ok" if removed else "not-found", files=removed or [name])
        return render.hint_html(html.escape(f"Removed {', '.join(removed)}." if removed else
                                            f"{name} was not in the index."))

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
        index = self._may_open(user, index_value) if index_value else None
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
        index = self._may_open(user, index_value) if index_value else None
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

    def _index_view(self, user: str | None, index: Path | None, status: str, failed: bool = False) -> IndexView:
        choices = self.access.choices(user)
        if index is None:  # nothing this user may open: a polite empty state, not an error
            message = NO_INDEX_HINT if not choices else "Pick an index."
            return gr.update(choices=choices, value=None), render.notice_message(message, "hint"), \
                *self.documents(None)
        rows, remove_choices = self._documents_if_readable(index) if failed else self.documents(index)
        if not rows:
            status += " " + render.EMPTY_INDEX_HINT
        return gr.update(choices=choices, value=str(index)), render.hint_html(status), rows, remove_choices

    def open_index(self, index_value: str | None, request: gr.Request | None = None) -> IndexView:
        """Switch to an index from the dropdown (on page load: the first one the user may open)."""
        user = user_of(request)
        if not index_value and self.access.enabled:  # page load: the first index this user may open, if any
            choices = self.access.choices(user)
            if not choices:  # no index at all: the empty state, not an error
                return self._index_view(user, None, "")
            index_value = choices[0][1]
        # choosing an index is not acting on it: the server's log records a refused choice
        with self.guard.event(Action.LIST, request, index_value, log_as=f"opening index failed: {index_value!r}",
                              audit_as="open-index", server=True) as event:
            index = event.open()
            return self._index_view(user, index, f"Using index {html.escape(self._label(user, index))}.")
        choices = self.access.choices(user)  # what the user may open instead, and why not this one
        view = self._index_view(user, Path(choices[0][1]) if choices else None, "", failed=True)
        return view[0], render.notice_message(event.message, "error"), *view[2:]

    def create_index(self, name: str, index_value: str | None, request: gr.Request | None = None) -> IndexView:
        """Create an empty index folder under the indexes root and switch to it."""
        wanted = sanitise_index_name(name) if isinstance(name, str) else ""
        new = str(self.catalog.root / wanted) if wanted else name  # as a refusal names it in the trail
        with self.guard.event(Action.CREATE, request, new, log_as=f"creating index failed: {name!r}",
                              expected=(ValueError, OSError), name=name) as event:
            self.access.check_create(event.user, name)
            index = self.catalog.create(name)
            event.audit("ok", index)
            return self._index_view(event.user, index, f"Created index {html.escape(self._label(event.user, index))}.")
        view = self._index_view(event.user, self._may_open(event.user, index_value), "", failed=True)
        return view[0], render.notice_message(event.message, "error"), view[2], view[3]
