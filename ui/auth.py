"""Sign-in on top of Gradio's own: the password check it calls, limits on failures, and a gate.

Gradio provides the login page, the session cookie and ``gr.Request.username``; this module adds
only what it lacks:

- :meth:`PasswordSignIn.check` is the ``auth=`` callable.  It checks the users file's argon2id hashes in
  a worker thread (never blocking the server), answers a wrong user name exactly like a wrong
  password (same message, same hashing work, same pause), counts failures per name and per address
  (:class:`ui.signin_limits.SignInLimiter`) and refuses a locked name or address with HTTP 429 and
  a message saying when to try again.  Each failure, lockout and sign-in goes to the sign-in log.
- :func:`header_user` is the ``auth_dependency`` for single sign-on from an authenticating proxy
  (``RAGQA_TRUSTED_USER_HEADER``): it believes the header only from a loopback peer, and only for a
  user in the users file.
- :class:`AuthGate` is ASGI middleware that refuses every request but the login page, its static
  files and the sign-in itself until a user is signed in: Gradio leaves a few routes open (stream,
  cancel, heartbeat, run history), and "every page and every API call needs a signed-in user" is
  easier to keep true as a rule with a short allow-list than route by route.  It also drops the
  session of a user who has been removed from the users file, and adds a few lines of script to
  the login page so a lockout message is shown (Gradio's page shows only its fixed "incorrect
  credentials" text, and nothing at all for other answers).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import HTTPException, Request
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ui import audit
from ui.network import is_loopback
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
                 concurrent_checks: int = 2) -> None:
        self.users, self.limiter, self.log_path = users, limiter, log_path
        self.failure_delay_s = failure_delay_s
        self._checks = asyncio.Semaphore(concurrent_checks)  # argon2 takes 64 MiB a check: bound them
        self._name_locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, int] = {}

    def _record(self, user: str, outcome: str, address: str, detail: str = "") -> None:
        audit.append(self.log_path, audit.event(user, "sign-in", outcome, detail=detail, address=address))

    def _refuse_if_locked(self, username: str, address: str) -> None:
        wait = self.limiter.locked_for(username, address)
        if wait > 0:
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
                ok = await anyio.to_thread.run_sync(self.users.verify, username, password)
                locked = False if ok else self.limiter.failed(username, address)
        finally:
            self._pending[key] -= 1
            if not self._pending[key]:
                del self._pending[key], self._name_locks[key]
        if ok:
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
    """ASGI middleware: nothing but the login page and sign-in until a user from the users file is signed in."""

    def __init__(self, app: ASGIApp, users: UsersStore, sso: bool = False) -> None:
        self.app, self.users, self.sso = app, users, sso

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
        for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
            token = cookies.get(name)
            if token and token in tokens:
                user = tokens[token]
                if self.users.get(user) is None:  # removed from the users file: that session ends now
                    tokens.pop(token, None)
                    return None
                return user
        return None

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
                else:
                    await self.app(scope, receive, send)
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
