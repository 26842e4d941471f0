"""What every UI event does around its own work: who asks, whether they may, one of their request slots,
the audit trail, and every failure turned into one line on the page, so the app stays up.

A handler runs its body inside :meth:`Guard.event` and says what the page shows when the body did not
run to its end::

    with self.guard.event(Action.SEARCH, request, index_value, log_as="search failed") as event:
        index = event.open()        # the access check (AccessDenied when the user may not)
        with event.slot():          # one of the user's request slots (TooManyRequests when none is free)
            return results(index)
    return render.notice_message(event.message, "error")  # reached only after a refusal or a failure

What ends a body early is sorted here, the same way for every event:

- a refusal (:data:`REFUSALS`: no right, a field the app does not take, a question over the length limit,
  too many requests running) has changed nothing.  Refusals of what was asked (:data:`AUDITED`; the
  per-user cap is load, not intent) go to the audit trail: the index's log if the request named an index
  on offer, else the server's log with the index as the request named it (``A/../B``, another team's path);
- an error the handler ``expected`` (an index not built yet, a locked index, a file that cannot be read)
  is a state to report, without a traceback;
- anything else is a bug or an outage: logged with its traceback, shown in one line.

Failures of an event that changes an index (``audit_failures``: uploads and removals) are also written
to that index's trail.  Only :class:`Exception` is caught: a generator closed by Gradio passes through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from rag_qa.store import IndexStoreError
from ui import audit
from ui.access import Access, AccessDenied
from ui.limits import QuestionTooLong, TooManyRequests, UserSlots
from ui.permissions import Action
from ui.validation import RequestRefused

log = logging.getLogger("rag_qa.ui")
REFUSALS = (AccessDenied, TooManyRequests, RequestRefused, QuestionTooLong)
AUDITED = (AccessDenied, RequestRefused)


def user_error(exc: BaseException) -> str:
    """A one-line message for the page; our own errors already say what to do."""
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, ValueError | IndexStoreError | RuntimeError | PermissionError) else (
        f"{type(exc).__name__}: {text}")


def user_of(request: gr.Request | None) -> str | None:
    """The signed-in user Gradio attached to the request (``None`` without sign-in)."""
    return getattr(request, "username", None) if request is not None else None


def _name(action: Action | str) -> str:
    return action.value if isinstance(action, Action) else action


@dataclass
class Event:
    """One event under guard: who asks for what on which index and, after a refusal or failure, why not."""

    guard: Guard
    action: Action
    user: str | None
    index_value: object  # the index as the request named it (any JSON from the API)
    opened: Path | None = None  # the index the access check let the user use
    error: Exception | None = None
    message: str = ""  # what the page says about ``error``

    def open(self) -> Path:
        """The index the request named, if the user may do this there; else :class:`AccessDenied`."""
        self.opened = self.guard.access.index(self.user, self.index_value, self.action)  # type: ignore[arg-type]
        return self.opened

    def slot(self) -> AbstractContextManager[None]:
        """One of the user's request slots for the block (:class:`TooManyRequests` when none is free)."""
        return self.guard.slots.slot(self.user)

    def audit(self, outcome: str, index: Path | None = None, **fields: Any) -> None:
        """One line in the trail of ``index`` (default: the one opened) for this user and action."""
        self.guard.audit(index or self.opened, self.user, self.action, outcome, **fields)

    @property
    def refused(self) -> bool:
        return isinstance(self.error, REFUSALS)


class Guard:
    """The checks, limits and trail every handler goes through, for one catalogue's :class:`Access`."""

    def __init__(self, access: Access, slots: UserSlots, server_log: Path) -> None:
        self.access = access
        self.slots = slots
        self.server_log = server_log  # events that belong to no index

    def audit(self, index: Path | None, user: str | None, action: Action | str, outcome: str, **fields: Any) -> None:
        """Append one event to ``index``'s audit log (the user is ``None`` when sign-in is off)."""
        if index is not None:
            audit.append(audit.index_log(index), audit.event(user, _name(action), outcome, **fields))

    def audit_refusal(self, user: str | None, action: Action | str, index_value: object, detail: str,
                      server: bool = False, **fields: Any) -> None:
        """A refusal in the trail: the index's log if the request named an index on offer, else (or when
        ``server``) the server's log with the index as the request named it (``A/../B``, another team's path)."""
        index = self.access.known(index_value) if isinstance(index_value, str) and not server else None
        if index is not None:
            self.audit(index, user, action, "refused", detail=detail, **fields)
        else:
            audit.append(self.server_log, audit.event(user, _name(action), "refused", detail=detail,
                                                      index=index_value if isinstance(index_value, str) else
                                                      repr(index_value), **fields))

    @contextmanager
    def event(self, action: Action, request: gr.Request | None, index_value: object, *, log_as: str,
              expected: tuple[type[Exception], ...] = (), audit_failures: bool = False,
              audit_as: str | None = None, server: bool = False, **fields: Any) -> Iterator[Event]:
        """Run an event's body; a refusal or failure ends it with :attr:`Event.error` and :attr:`Event.message`.

        ``log_as`` names the event in the server's log; ``fields`` (``files``, ``reader``...) go into its
        refusals and failures in the trail.  A refusal is recorded as ``audit_as`` (default: ``action``), in
        the server's log when ``server``."""
        event = Event(self, action, user_of(request), index_value)
        try:
            yield event
        except REFUSALS as exc:
            event.error, event.message = exc, str(exc)
            if isinstance(exc, AUDITED):
                self.audit_refusal(event.user, audit_as or action, index_value, event.message, server=server,
                                   **fields)
        except Exception as exc:
            if not isinstance(exc, expected):
                log.exception(log_as)
            event.error, event.message = exc, user_error(exc)
            if audit_failures:
                event.audit("failed", detail=event.message, **fields)
