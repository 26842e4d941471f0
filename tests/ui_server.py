"""Start the real Gradio app in this process on a free loopback port (models load once per process)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import ui  # noqa: F401 - sets the offline environment defaults before gradio is imported

if TYPE_CHECKING:
    import gradio as gr

    from rag_qa.config import Settings
    from ui.handlers import Handlers
    from ui.users_file import UsersStore


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection made to it (what the server must never call)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(65536) or b"(connected)")
                except OSError:
                    self.received.append(b"(connected)")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(index: Path, indexes_root: Path, settings: Settings | None = None,
                users: UsersStore | None = None) -> Iterator[gr.Blocks]:
    """Serve the app over ``index`` on a free port and yield it (``.local_url``); closed afterwards.

    No host is passed, exactly as ``python -m ui`` does: the default binding (127.0.0.1) applies.
    With ``users``, everyone must sign in, as with ``RAGQA_USERS_FILE``.
    """
    from rag_qa.config import Settings
    from ui.app import build_app, launch

    settings = (settings or Settings()).model_copy(update={"port": free_port()})
    demo = build_app(index, settings, indexes_root=indexes_root, users=users)
    launch(demo, settings, block=False, users=users)
    try:
        yield demo
    finally:
        demo.close()


@contextmanager
def app_process(index: Path, cwd: Path, env: dict[str, str], *args: str, timeout: float = 300) -> Iterator[str]:
    """``python -m ui --index INDEX --port P ARGS`` as a child process (this checkout's code, ``env`` added),
    waited for until its page answers; yields its URL and stops it afterwards.  Its output goes to
    ``cwd/app.log``."""
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from rag_qa.env import child_env

    port = free_port()
    log = cwd / "app.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ui", "--index", str(index), "--port", str(port), *args],
                                cwd=cwd, env=child_env(**env), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except urllib.error.HTTPError:
                break  # it answers (a 401 is an answer)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not answer within {timeout:.0f} s") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# never checked (no one signs in: handlers called directly get the user name as Gradio would attach it)
NOT_A_REAL_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


def team_handlers(tmp_path: Path, user: str, role: str, settings: Settings) -> tuple[Handlers, Path]:
    """The app's ``Handlers`` over a new empty index ``indexes/team`` where ``user`` has ``role``; no server."""
    from ui.access import Access
    from ui.handlers import Handlers
    from ui.indexes import IndexCatalog
    from ui.users_file import User, UsersStore, parse_roles, save_users

    root = (tmp_path / "indexes").resolve()
    index = root / "team"
    index.mkdir(parents=True)
    users_file = tmp_path / "users.json"
    save_users(users_file, {user: User(user, NOT_A_REAL_HASH, parse_roles([f"team={role}"]))})
    catalog = IndexCatalog(root, index, settings)
    return Handlers(catalog, settings.max_upload_mb, Access(catalog, UsersStore(users_file).load())), index
