"""Session lifetimes against the real app (issue 21): a session cookie stops working after the idle time,
and after the absolute lifetime however busy it is; the page then asks for a sign-in again.

The app runs in this process with a users file and lifetimes of seconds (``RAGQA_SESSION_IDLE_S``,
``RAGQA_SESSION_MAX_S``); requests go over HTTP with the cookie the sign-in set.  The password change and
the removed user, which need the users command, are in ``test_ui_signin.py``; the rules themselves, with a
fake clock, in ``test_team_accounts.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ui_server import running_app

from rag_qa.config import Settings
from ui import audit
from ui.permissions import Role
from ui.users_file import User, UsersStore, hash_password, save_users

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
IDLE_S, MAX_S = 3.0, 8.0


@contextmanager
def ann_signs_in_here(tmp_path: Path, log: Path) -> Iterator[Any]:
    """The app with one reader, ann, sessions of IDLE_S idle and MAX_S at most, the audit trail in ``log``."""
    users_file = tmp_path / "users.json"
    save_users(users_file, {"ann": User("ann", hash_password("ann-password"), {"*": Role.READER})})
    settings = Settings(users_file=users_file, signin_log=log, session_idle_s=IDLE_S, session_max_s=MAX_S,
                        signin_failure_delay_s=0.0)
    root = tmp_path / "indexes"
    with running_app(root / "main", root, settings, users=UsersStore(users_file).load()) as demo:
        yield demo


def test_a_session_ends_after_the_idle_time_and_after_its_lifetime(tmp_path: Path) -> None:
    log = tmp_path / "server.jsonl"
    with ann_signs_in_here(tmp_path, log) as demo:
        url = demo.local_url

        def sign_in() -> tuple[dict[str, str], float]:
            answer = httpx.post(url + "login", data={"username": "ann", "password": "ann-password"}, timeout=120)
            assert answer.status_code == 200
            return dict(answer.cookies), time.monotonic()

        def works(cookie: dict[str, str]) -> bool:
            status = httpx.get(url + "config", cookies=cookie, timeout=60).status_code
            assert status in (200, 401)
            return status == 200

        cookie, _ = sign_in()
        assert works(cookie)
        time.sleep(IDLE_S + 0.5)
        assert not works(cookie)  # idle too long
        assert '"auth_required":true' in httpx.get(url, cookies=cookie, timeout=60).text.replace(" ", "")
        assert not demo.server_app.tokens  # Gradio's own record of the session is gone too

        cookie, started = sign_in()
        while works(cookie):  # a request every half second: never idle, yet it ends
            assert time.monotonic() - started < MAX_S + 5, "the session outlived its lifetime"
            time.sleep(0.5)
        assert time.monotonic() - started >= MAX_S - 0.5
    ended = [e["detail"] for e in audit.read(log) if e["action"] == "session-end"]
    assert ended == ["no request for 3 seconds", "signed in more than 8 seconds ago"]


def test_signing_out_ends_the_session_with_a_line_of_its_own(tmp_path: Path) -> None:
    log = tmp_path / "server.jsonl"
    with ann_signs_in_here(tmp_path, log) as demo:
        url = demo.local_url
        signed_in = httpx.post(url + "login", data={"username": "ann", "password": "ann-password"}, timeout=120)
        cookie = dict(signed_in.cookies)
        assert httpx.get(url + "config", cookies=cookie, timeout=60).status_code == 200
        assert httpx.get(url + "logout", cookies=cookie, timeout=60).status_code == 302
        assert httpx.get(url + "config", cookies=cookie, timeout=60).status_code == 401
        time.sleep(IDLE_S + 0.5)  # long past its idle time: the next sign-in's prune must not end it again
        httpx.post(url + "login", data={"username": "ann", "password": "ann-password"}, timeout=120)
    events = [(e["user"], e["action"]) for e in audit.read(log) if e["action"] in ("sign-out", "session-end")]
    assert events == [("ann", "sign-out")]
