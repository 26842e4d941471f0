"""Signed-in sessions and when they end.

Gradio's sign-in puts a random token in a cookie and the token's user name in a dict
(``app.tokens``); a token then works until the server stops, whatever happens to its user.
:class:`Sessions` keeps, for every token a sign-in makes, who signed in, the password hash they
signed in with, when, and when they were last seen.  The gate (:class:`ui.auth.AuthGate`) asks
:meth:`Sessions.user` on every request, and a session ends, its token dropped from Gradio's dict
too (so Gradio's own pages treat the cookie as signed out), when:

- its user is no longer in the users file, or the user's password has changed since the sign-in
  (``python -m ui users passwd``): an old cookie does not outlive the password it was made with;
- no request came with it for ``RAGQA_SESSION_IDLE_S`` (an hour by default), or it began more
  than ``RAGQA_SESSION_MAX_S`` ago (12 hours);
- this process never saw it made (nothing else makes tokens; such a token is refused).

A role change needs no session to end: every request reads the roles from the users file.  Each
end but the last kind is a ``session-end`` line in the server's audit log; signing out is a ``sign-out``
line.  Pure bookkeeping with an
injectable clock, so the lifetimes are tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from ui import audit
from ui.users_file import UsersStore

#: the paths a page keeps requesting by itself (the connection's heartbeat): they do not count as activity
PASSIVE_PREFIXES = ("/gradio_api/heartbeat/", "/heartbeat/")


@dataclass
class _Session:
    user: str
    password_hash: str
    started: float
    seen: float


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g} seconds"
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class Sessions:
    """The sessions sign-ins made, and the rules that end them."""

    def __init__(self, users: UsersStore, idle_s: float, max_s: float, log_path: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.users, self.idle_s, self.max_s, self.log_path = users, idle_s, max_s, log_path
        self.clock = clock
        self._sessions: dict[str, _Session] = {}
        self._verified: defaultdict[str, deque[str]] = defaultdict(deque)
        self._lock = threading.Lock()

    def verified(self, user: str, password_hash: str) -> None:
        """A password check for ``user`` just passed against ``password_hash``; the sign-in's token follows."""
        with self._lock:
            pending = self._verified[user]
            pending.append(password_hash)
            while len(pending) > 16:  # sign-ins whose token never came (the response failed): forget them
                pending.popleft()

    def started(self, token: str, user: str, tokens: MutableMapping[str, str]) -> None:
        """Gradio made ``token`` for ``user``'s sign-in: remember it with the password hash it was checked
        against.  If that password is no longer the user's (changed in between), the token is dropped now."""
        account = self.users.get(user)
        with self._lock:
            pending = self._verified.get(user)
            checked = pending.popleft() if pending else None
            if pending is not None and not pending:
                del self._verified[user]
        if account is None or (checked is not None and checked != account.password_hash):
            tokens.pop(token, None)
            return
        now = self.clock()
        with self._lock:
            self._sessions[token] = _Session(user, account.password_hash, now, now)
        self.prune(tokens)

    def _ended(self, session: _Session, now: float) -> str | None:
        """Why ``session`` is over now, or ``None`` while it lasts."""
        account = self.users.get(session.user)
        if account is None:
            return "the user was removed"
        if account.password_hash != session.password_hash:
            return "the password changed"
        if now - session.started > self.max_s:
            return f"signed in more than {_duration(self.max_s)} ago"
        if now - session.seen > self.idle_s:
            return f"no request for {_duration(self.idle_s)}"
        return None

    def user(self, token: str, tokens: MutableMapping[str, str], *, touch: bool = True) -> str | None:
        """The user of a live session ``token`` (its idle clock restarts when ``touch``); ``None`` for a token
        that is not (or no longer) one, which is then dropped from Gradio's ``tokens`` as well."""
        if token not in tokens:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(token)
        if session is None or session.user != tokens[token]:
            tokens.pop(token, None)
            return None
        reason = self._ended(session, now)
        if reason is not None:
            self._end(token, session, reason, tokens)
            return None
        if touch:
            session.seen = now
        return session.user

    def _end(self, token: str, session: _Session, reason: str, tokens: MutableMapping[str, str]) -> None:
        tokens.pop(token, None)
        with self._lock:
            if self._sessions.pop(token, None) is None:
                return  # another request ended it first
        if self.log_path is not None:
            audit.append(self.log_path, audit.event(session.user, "session-end", "ended", detail=reason))

    def signed_out(self, tokens: MutableMapping[str, str]) -> None:
        """Forget the sessions whose token Gradio dropped (its ``/logout`` drops the user's tokens), with a
        ``sign-out`` line each; before, they lingered and later ended as "no request for an hour"."""
        with self._lock:
            gone = [(token, session) for token, session in self._sessions.items() if token not in tokens]
            for token, _ in gone:
                del self._sessions[token]
        if self.log_path is not None:
            for _, session in gone:
                audit.append(self.log_path, audit.event(session.user, "sign-out", "ok"))

    def prune(self, tokens: MutableMapping[str, str]) -> None:
        """End every session that is over and drop tokens no sign-in here made (Gradio never forgets one)."""
        self.signed_out(tokens)
        now = self.clock()
        with self._lock:
            sessions = list(self._sessions.items())
        for token, session in sessions:
            reason = self._ended(session, now)
            if reason is not None:
                self._end(token, session, reason, tokens)
        with self._lock:
            known = set(self._sessions)
        for token in [t for t in list(tokens) if t not in known]:
            tokens.pop(token, None)
