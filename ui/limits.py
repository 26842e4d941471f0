"""Limits that keep one user from starving the others: question length and requests per user.

Gradio's queue bounds the work the whole app does at once (``ui.app.CONCURRENCY``); on its own it
is first come, first served, so one user firing many requests would fill every worker.
:class:`UserSlots` caps how many requests each signed-in user has running: one more is refused at
once with a message (it does not wait, so it never holds a worker while it waits).  Without
sign-in there are no users to tell apart, and only the queue applies.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TooManyRequests(RuntimeError):
    """The user already has their share of requests running."""


class QuestionTooLong(ValueError):
    """A question or query over the length limit (the message says by how much)."""


def question_too_long(text: str, max_chars: int, what: str = "question") -> str | None:
    """A one-line refusal when ``text`` is over ``max_chars`` characters, else ``None``."""
    if len(text) <= max_chars:
        return None
    return (f"That {what} has {len(text):,} characters; the limit is {max_chars:,}. "
            f"Shorten it and try again.")


def check_length(text: str, max_chars: int, what: str = "question") -> None:
    """:class:`QuestionTooLong` when ``text`` is over ``max_chars`` characters (see :func:`question_too_long`)."""
    if (too_long := question_too_long(text, max_chars, what)) is not None:
        raise QuestionTooLong(too_long)


class UserSlots:
    """At most ``per_user`` requests running for each user name; ``None`` (no sign-in) is not capped."""

    def __init__(self, per_user: int) -> None:
        self.per_user = max(1, per_user)
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, user: str | None) -> Iterator[None]:
        """Hold one of ``user``'s slots for the block; :class:`TooManyRequests` if none is free."""
        if user is None:
            yield
            return
        with self._lock:
            if self._running.get(user, 0) >= self.per_user:
                raise TooManyRequests(f"You already have {self.per_user} requests running; "
                                      "wait for one to finish, then try again.")
            self._running[user] = self._running.get(user, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._running[user] - 1
                if left:
                    self._running[user] = left
                else:
                    del self._running[user]

    def running(self, user: str) -> int:
        """How many requests ``user`` has running now."""
        with self._lock:
            return self._running.get(user, 0)
