"""Sign-in on top of Gradio's own: the password check it calls, limits on failures, and a gate.

Gradio provides the login page, the session cookie and ``gr.Request.username``; this module adds
only what it lacks:

- :meth:`PasswordSignIn.check` is the ``auth=`` callable.  It checks the users file's argon2id hashes in
  a worker thread (never blocking the server), answers a wrong user name exactly like a wrong
  password (same message, same hashing work, same pause), counts failures per name and per address
  (:class:`ui.signin_limits.SignInLimiter`) and refuses a locked name or address with HTTP 429 and
  a message saying when to try again.  Each sign-in, failure, lockout and refusal during a lockout
  goes to the server's audit log (refusals at most one line a second per address, with a count of
  the ones in between, so hammering a locked name cannot fill the disk).
- :func:`header_user` is the ``auth_dependency`` for single sign-on from an authenticating proxy
  (``RAGQA_TRUSTED_USER_HEADER``): it believes the header only from a loopback peer, and only for a
  user in the users file.
- :class:`AuthGate` is ASGI middleware that refuses every request but the login page, its static
  files and the sign-in itself until a user is signed in: Gradio leaves a few routes open (stream,
  cancel, heartbeat, run history), and "every page and every API call needs a signed-in user" is
  easier to keep true as a rule with a short allow-list than route by route.  It also ends sessions
  (:class:`ui.sessions.Sessions`: a removed user, a changed password, idle and absolute lifetimes),
  registering each new one as Gradio's sign-in makes it, and adds a few lines of script to
  the login page so a lockout message is shown (Gradio's page shows only its fixed "incorrect
  credentials" text, and nothing at all for other answers).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import HTTPException, Request
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ui import audit
from ui.network import is_loopback
from ui.sessions import PASSIVE_PREFIXES, Sessions
from ui.signin_limits import SignInLimiter
from ui.users_file import UsersStore

log = logging.getLogger("rag_qa.ui")
client_address: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="unknown")

AUTH_MESSAGE = ("Sign in with the account your administrator gave you. After {n} failed attempts for a name "
                "(or {m} from one address) sign-in pauses for {minutes} minutes.")
SIGNED_OUT = "Not signed in: sign in first (the HTTP API too: gradio_client.Client(url, auth=(user, password)))."
_PUBLIC_PATHS = frozenset({
    "/", "/login", "/login/", "/logout", "/favicon.ico", "/manifest.json", "/robots.txt", "/theme.css",
    "/gradio_api/theme.css", "/gradio_api/login_check", "/gradio_api/login_check/", "/gradio_api/startup-events",
})
_PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon")
_LOGIN_PATHS = frozenset({"/login", "/login/"})
REFUSAL_LOG_EVERY_S = 1.0  # sign-ins refused during a lockout: at most one audit line a second per address
LOGIN_SCRIPT = b"""<script>(() => {
  const fetch0 = window.fetch;
  window.fetch = async (...args) => {
    const response = await fetch0(...args);
    try {
      const url = new URL(String((args[0] && args[0].url) || args[0]), location.href);
      if (/\\/login\\/?$/.test(url.pathname)) {
        let note = document.getElementById("signin-limit");
        if (response.status === 429) {
          const detail = (await response.clone().json()).detail;
          if (!note) {
            note = document.createElement("p");
            note.id = "signin-limit";
            note.setAttribute("role", "alert");
            note.style.cssText = "color:#d93025;font-weight:600;margin:.5em 0";
            const heading = document.querySelector("h2");
            heading ? heading.after(note) : document.body.prepend(note);
          }
          note.textContent = detail;
        } else if (note) {
          note.remove();
        }
      }
    } catch (e) {}
    return response;
  };
})();</script>"""


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class PasswordSignIn:
    """Gradio's ``auth=`` callable: the users file's hashes, failure limits, the sign-in log."""

    def __init__(self, users: UsersStore, limiter: SignInLimiter, log_path: Path, failure_delay_s: float,
                 concurrent_checks: int = 2, sessions: Sessions | None = None) -> None:
        self.users, self.limiter, self.log_path = users, limiter, log_path
        self.failure_delay_s = failure_delay_s
        self.sessions = sessions  # told which password hash each successful check used
        self._checks = asyncio.Semaphore(concurrent_checks)  # argon2 takes 64 MiB a check: bound them
        self._name_locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, int] = {}
        self._refusals: dict[str, tuple[float, int]] = {}  # address -> (last line written, refusals since)

    def _record(self, user: str, outcome: str, address: str, detail: str = "", **extra: Any) -> None:
        audit.append(self.log_path, audit.event(user, "sign-in", outcome, detail=detail, address=address, **extra))

    def _record_refusal(self, username: str, address: str, wait: float) -> None:
        """An audit line for a sign-in refused during a lockout: at most one a second per address, the next
        line counting the ones left out (``repeated``)."""
        now = time.monotonic()
        last, since = self._refusals.get(address, (float("-inf"), 0))
        if now - last < REFUSAL_LOG_EVERY_S:
            self._refusals[address] = (last, since + 1)
            return
        if len(self._refusals) > 10_000:  # forget quiet addresses; a busy one is re-added at once
            self._refusals = {a: v for a, v in self._refusals.items() if now - v[0] < REFUSAL_LOG_EVERY_S}
        self._refusals[address] = (now, 0)
        self._record(username, "refused", address, detail=f"sign-in paused for this name or address for "
                                                           f"{_minutes(wait)} more", repeated=since or None)

    def _refuse_if_locked(self, username: str, address: str) -> None:
        wait = self.limiter.locked_for(username, address)
        if wait > 0:
            self._record_refusal(username, address, wait)
            raise HTTPException(status_code=429, detail=f"Too many failed sign-ins for this name or address: "
                                                        f"try again in {_minutes(wait)}.")

    async def check(self, username: str, password: str) -> bool:
        """True for a right password; a coroutine *function*, so Gradio awaits it (an object with an async
        ``__call__`` would not be awaited, and its coroutine would count as a yes)."""
        address = client_address.get()
        self._refuse_if_locked(username, address)
        key = username.strip().lower()
        name_lock = self._name_locks.setdefault(key, asyncio.Lock())
        self._pending[key] = self._pending.get(key, 0) + 1
        try:
            # one attempt per name at a time, checked again when its turn comes, and its failure counted
            # before the next one looks: a burst of parallel guesses gets no more tries than the limit
            async with name_lock, self._checks:
                self._refuse_if_locked(username, address)
                account = await anyio.to_thread.run_sync(self.users.authenticate, username, password)
                ok = account is not None
                locked = False if ok else self.limiter.failed(username, address)
        finally:
            self._pending[key] -= 1
            if not self._pending[key]:
                del self._pending[key], self._name_locks[key]
        if account is not None:
            if self.sessions is not None:
                self.sessions.verified(account.name, account.password_hash)
            self.limiter.succeeded(username)
            self._record(username, "ok", address)
            return True
        self._record(username, "failed", address)
        if locked:
            self._record(username, "locked", address, detail=f"sign-in paused for {_minutes(self.limiter.lockout_s)}")
        # the same pause for every failure, with a little jitter, before the same answer
        await asyncio.sleep(self.failure_delay_s * random.uniform(1.0, 1.2))
        return False


def header_user(users: UsersStore, header: str) -> Callable[[Request], str | None]:
    """Gradio's ``auth_dependency`` for proxy single sign-on: the user named in ``header``.

    Believed only when the TCP peer is this machine (the proxy) and the user is in the users file;
    anything else is "not signed in".
    """

    def dependency(request: Request) -> str | None:
        peer = request.client.host if request.client else ""
        name = request.headers.get(header, "").strip()
        if not name or not is_loopback(peer):
            return None
        return name if users.get(name) is not None else None

    return dependency


class AuthGate:
    """ASGI middleware: nothing but the login page and sign-in until a user from the users file is signed in.

    With password sign-in, ``sessions`` decides whether a session cookie still works (:mod:`ui.sessions`).
    """

    def __init__(self, app: ASGIApp, users: UsersStore, sso: bool = False, sessions: Sessions | None = None) -> None:
        self.app, self.users, self.sso = app, users, sso
        self.sessions = sessions if sessions is not None else Sessions(users, float("inf"), float("inf"))

    def _user(self, scope: Scope) -> str | None:
        gradio_app = scope.get("app")
        if gradio_app is None:
            return None
        if self.sso:
            dependency = getattr(gradio_app, "auth_dependency", None)
            name = dependency(Request(scope)) if dependency is not None else None
            return name if isinstance(name, str) else None
        cookies: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            if key == b"cookie":
                cookies.update(cookie_parser(value.decode("latin-1")))
        cookie_id = getattr(gradio_app, "cookie_id", "")
        tokens: dict[str, str] = getattr(gradio_app, "tokens", {})
        touch = not scope.get("path", "").startswith(PASSIVE_PREFIXES)
        for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
            token = cookies.get(name)
            if token and token in tokens:
                return self.sessions.user(token, tokens, touch=touch)
        return None

    def _registering(self, scope: Scope, send: Send) -> Send:
        """A ``send`` for Gradio's sign-in route that registers the session token its answer sets."""
        gradio_app = scope.get("app")
        cookie = f"access-token-{getattr(gradio_app, 'cookie_id', '')}=".encode()

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200 and gradio_app is not None:
                tokens: dict[str, str] = getattr(gradio_app, "tokens", {})
                for key, value in message.get("headers", []):
                    if key.lower() == b"set-cookie" and value.startswith(cookie):
                        token = value[len(cookie):].split(b";", 1)[0].decode("latin-1").strip('"')
                        if token in tokens:
                            self.sessions.started(token, tokens[token], tokens)
            await send(message)

        return wrapped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        client = scope.get("client")
        token = client_address.set(client[0] if client else "unknown")
        try:
            user = self._user(scope)
            if user is not None or path in _PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES):
                if user is None and not self.sso and path == "/" and scope.get("method") == "GET":
                    await self.app(scope, receive, _with_login_script(send))
                elif not self.sso and path in _LOGIN_PATHS and scope.get("method") == "POST":
                    await self.app(scope, receive, self._registering(scope, send))
                else:
                    await self.app(scope, receive, send)
                    if path == "/logout" and user is not None:  # Gradio dropped the user's tokens
                        self.sessions.signed_out(getattr(scope.get("app"), "tokens", {}))
                return
            await _deny(scope, send)
        finally:
            client_address.reset(token)


async def _deny(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": SIGNED_OUT}).encode()
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _with_login_script(send: Send) -> Send:
    """A ``send`` that adds :data:`LOGIN_SCRIPT` to an HTML page (the login page) before ``</head>``."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body" or not start:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        content_type = dict(headers).get(b"content-type", b"")
        if b"text/html" in content_type and b"</head>" in body:
            body = body.replace(b"</head>", LOGIN_SCRIPT + b"</head>", 1)
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return wrapped
