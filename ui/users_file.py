"""The users file: accounts with argon2id password hashes and a role per index (``RAGQA_USERS_FILE``).

A JSON object the administrator owns (``python -m ui users ...`` edits it)::

    {"format": "rag-qa users 1",
     "users": {"alice": {"password": "$argon2id$v=19$m=65536,t=3,p=4$...", "roles": {"*": "admin"}},
               "bob":   {"password": "$argon2id$...", "roles": {"default": "reader", "team": "editor"}}}}

Passwords are only ever stored as salted argon2id hashes (``argon2-cffi``, its RFC 9106 defaults).
Every write goes to a temporary file in the same folder that is flushed to disk and then renamed
over the old one (``os.replace``), with mode 0600, under a lock file so two edits cannot interleave:
a crash leaves either the old file or the new one, never half of one.  The server reads it through
:class:`UsersStore`, which notices edits without a restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from filelock import FileLock

from ui.permissions import Role, check_index_key, parse_role

FORMAT = "rag-qa users 1"
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; this only bounds the work a request can cause
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HASHER = PasswordHasher()
log = logging.getLogger("rag_qa.ui")


class UsersFileError(ValueError):
    """The users file cannot be read or holds something invalid (the message says which and where)."""


@dataclass(frozen=True)
class User:
    """One account: its name, its argon2id hash and its role per index name (or ``*``)."""

    name: str
    password_hash: str
    roles: Mapping[str, Role] = field(default_factory=dict)


def check_user_name(name: str) -> str:
    """``name`` if it is a valid user name (letters, digits, ``. _ @ -``; at most 64), else ``ValueError``."""
    if not _NAME.match(name):
        raise ValueError(f"user name {name!r} must start with a letter or digit and use only letters, digits, "
                         "'.', '_', '@' and '-' (at most 64 characters)")
    return name


def check_password(password: str) -> str:
    """``password`` if it is long enough (and not absurdly long), else ``ValueError``."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"the password must have at most {MAX_PASSWORD_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    """A salted argon2id hash of ``password`` (a new random salt every call)."""
    return _HASHER.hash(check_password(password))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_dummy_hash: str | None = None


def dummy_hash() -> str:
    """A hash of a random password, checked against for unknown users so they cost the same time."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _HASHER.hash(secrets.token_urlsafe(24))
    return _dummy_hash


def parse_roles(items: Mapping[str, str] | list[str]) -> dict[str, Role]:
    """Roles from ``{"index": "role"}`` or ``["index=role", ...]``; ``ValueError`` on a bad entry."""
    pairs: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), str(v)) for k, v in items.items()]
    else:
        for item in items:
            index, sep, role = item.partition("=")
            if not sep:
                raise ValueError(f"role {item!r} must look like INDEX=ROLE, e.g. default=reader or '*=admin'")
            pairs.append((index.strip(), role))
    return {check_index_key(index): parse_role(role) for index, role in pairs}


def _user_from_json(name: str, entry: Any) -> User:
    if not isinstance(entry, dict) or not isinstance(entry.get("password"), str):
        raise ValueError("needs a \"password\" hash")
    if not entry["password"].startswith("$argon2"):
        raise ValueError("has a password that is not an argon2 hash (use `python -m ui users passwd`)")
    roles = entry.get("roles", {})
    if not isinstance(roles, dict):
        raise ValueError("needs \"roles\" as an object of index name -> role")
    return User(check_user_name(name), entry["password"], parse_roles(roles))


def load_users(path: Path) -> dict[str, User]:
    """All accounts in the users file at ``path`` (none if it does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsersFileError(f"cannot read the users file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsersFileError(f"the users file {path} is not valid JSON (line {exc.lineno}): fix or recreate it "
                             "with `python -m ui users add`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("users"), dict):
        raise UsersFileError(f"{path} is not a rag-qa users file (expected {{\"format\": \"{FORMAT}\", "
                             "\"users\": {...}})")
    users = {}
    for name, entry in data["users"].items():
        try:
            users[name] = _user_from_json(name, entry)
        except ValueError as exc:
            raise UsersFileError(f"users file {path}: user {name!r} {exc}") from None
    return users


def _to_json(users: Mapping[str, User]) -> str:
    body = {name: {"password": u.password_hash, "roles": {k: r.value for k, r in sorted(u.roles.items())}}
            for name, u in sorted(users.items())}
    return json.dumps({"format": FORMAT, "users": body}, indent=2) + "\n"


def save_users(path: Path, users: Mapping[str, User]) -> None:
    """Write ``users`` to ``path`` atomically (temp file, fsync, rename) with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_to_json(users))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def edit_users(path: Path) -> Iterator[dict[str, User]]:
    """Load, let the caller change the dict, save atomically; one editor at a time (a lock file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=30):
        users = load_users(path)
        yield users
        save_users(path, users)


class UsersStore:
    """The server's view of the users file: re-read when the file changes, so edits need no restart.

    If an edit leaves the file unreadable, the last good version stays in force and the problem is
    logged; at start-up an unreadable file is an error (:meth:`load` raises).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, User] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def load(self) -> UsersStore:
        """Read the file now; :class:`UsersFileError` if it is missing or invalid."""
        if not self.path.is_file():
            raise UsersFileError(f"users file {self.path} does not exist: create it with "
                                 "`python -m ui users add NAME --role '*=admin'`")
        self._users = load_users(self.path)
        self._stamp = self._stat()
        return self

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def users(self) -> dict[str, User]:
        """The current accounts (re-read if the file changed since the last look)."""
        stamp = self._stat()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self._users = load_users(self.path) if stamp is not None else {}
                    except UsersFileError as exc:
                        log.error("%s; keeping the previous accounts", exc)
                    self._stamp = stamp
        return self._users

    def get(self, name: str | None) -> User | None:
        return self.users().get(name) if name else None

    def authenticate(self, name: str, password: str) -> User | None:
        """The account, if ``password`` is its right password (the hash it was checked against comes with it).

        Unknown users are checked against a dummy hash, so a wrong user name takes as long as a wrong
        password (no user enumeration by timing)."""
        if len(password) > MAX_PASSWORD_CHARS:
            return None
        user = self.get(name)
        ok = _verify(user.password_hash if user else dummy_hash(), password)
        return user if ok and user is not None else None

    def verify(self, name: str, password: str) -> bool:
        """True for the right password of an existing user (see :meth:`authenticate`)."""
        return self.authenticate(name, password) is not None
