"""``python -m ui users add|passwd|remove|list|grant|revoke``: manage the users file.

Passwords are never taken from the command line (it shows in ``ps`` and shell history): they are
asked for twice at a terminal, or read as the first line of standard input when that is not a
terminal (``printf '%s\\n' "$PW" | python -m ui users add alice --role '*=reader'``).  The file is
``--file`` or ``RAGQA_USERS_FILE``; every change is written atomically (:mod:`ui.users_file`).

Every change, and every change refused, is a line in the server's audit log (``RAGQA_SIGNIN_LOG``,
where sign-ins go; ``python -m ui audit --sign-ins`` shows it): the operating-system account that ran
the command, the command, the account it changed, its roles after the change and the outcome;
never a password or a hash.  A password change ends that user's open sessions in the running app.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from rag_qa.config import get_settings
from rag_qa.terminal import EXIT_ERROR, EXIT_USAGE, OneLineParser, emit_json, fail
from ui import audit
from ui.permissions import ANY_INDEX
from ui.users_file import (
    User,
    UsersFileError,
    check_password,
    check_user_name,
    edit_users,
    hash_password,
    load_users,
    parse_roles,
)

ROLE_HELP = "INDEX=ROLE, e.g. default=reader, team=editor or '*=admin' (roles: reader, editor, admin)"


class UsageError(ValueError):
    """A bad command line or input; printed as one line, exit 2."""


def _common_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """``--file`` and ``--json``, on the command and again on each subcommand, so that both
    ``users --json list`` and ``users list --json`` work; a subcommand's copies default to
    ``SUPPRESS``, so they never overwrite a value given before the subcommand."""
    file_default, json_default = (argparse.SUPPRESS, argparse.SUPPRESS) if suppress else (None, False)
    parser.add_argument("--file", type=Path, default=file_default, help="users file (default: RAGQA_USERS_FILE)")
    parser.add_argument("--json", action="store_true", default=json_default, help="print one JSON object on stdout")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m ui users", description="Manage the accounts in the users file (RAGQA_USERS_FILE).",
        epilog="Passwords are read from a prompt, or from the first line of stdin when it is not a terminal.")
    _common_options(p)
    common = OneLineParser(add_help=False)
    _common_options(common, suppress=True)
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", parents=[common], help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", action="append", default=[], metavar="INDEX=ROLE", help=ROLE_HELP + "; repeatable")
    sub.add_parser("passwd", parents=[common],
                   help="set a user's password (asks for it; their open sessions end)").add_argument("name")
    sub.add_parser("remove", parents=[common],
                   help="remove a user (their sessions end at their next request)").add_argument("name")
    sub.add_parser("list", parents=[common], help="list users and their roles (never the hashes)")
    grant = sub.add_parser("grant", parents=[common], help="give a user roles on indexes (replacing their role there)")
    grant.add_argument("name")
    grant.add_argument("roles", nargs="+", metavar="INDEX=ROLE", help=ROLE_HELP)
    revoke = sub.add_parser("revoke", parents=[common], help="take away a user's role on indexes")
    revoke.add_argument("name")
    revoke.add_argument("indexes", nargs="+", metavar="INDEX", help=f"index names, or {ANY_INDEX!r}")
    return p


def read_password(prompt: str = "Password") -> str:
    """A new password: typed twice at a terminal, else the first line of stdin."""
    if sys.stdin is None or not sys.stdin.isatty():
        line = sys.stdin.readline() if sys.stdin is not None else ""
        if not line:
            raise UsageError("no password on stdin: pipe one line, or run this at a terminal to be asked")
        return check_password(line.rstrip("\r\n"))
    first = getpass.getpass(f"{prompt}: ")
    check_password(first)
    if getpass.getpass(f"{prompt} (again): ") != first:
        raise UsageError("the two passwords differ; nothing was changed")
    return first


def _describe(user: User) -> dict:
    return {"name": user.name, "roles": {k: r.value for k, r in sorted(user.roles.items())}}


def run(args: argparse.Namespace, path: Path) -> dict:
    """Carry out one command on the users file at ``path``; what happened, as a JSON-able dict."""
    if args.command == "list":
        return {"file": str(path), "users": [_describe(u) for _, u in sorted(load_users(path).items())]}
    name = check_user_name(args.name)
    password = None
    if args.command in ("add", "passwd"):
        exists = name in load_users(path)  # look before asking for a password, so a typo costs nothing
        if args.command == "add" and exists:
            raise UsageError(f"user {name!r} already exists: use `passwd` to change the password, `grant` for roles")
        if args.command == "passwd" and not exists:
            raise UsageError(f"no user {name!r} in {path}")
        roles = parse_roles(args.role) if args.command == "add" else {}
        password = hash_password(read_password(f"Password for {name}"))
    with edit_users(path) as users:
        user = users.get(name)
        if args.command == "add":
            if user is not None:
                raise UsageError(f"user {name!r} already exists")
            users[name] = user = User(name, password, roles)
        elif user is None:
            raise UsageError(f"no user {name!r} in {path}")
        elif args.command == "passwd":
            users[name] = user = User(name, password, user.roles)
        elif args.command == "remove":
            del users[name]
        elif args.command == "grant":
            users[name] = user = User(name, user.password_hash, {**user.roles, **parse_roles(args.roles)})
        elif args.command == "revoke":
            missing = [i for i in args.indexes if i not in user.roles]
            if missing:
                raise UsageError(f"user {name!r} has no role on {', '.join(missing)}; nothing was changed")
            users[name] = user = User(name, user.password_hash,
                                      {k: r for k, r in user.roles.items() if k not in args.indexes})
    return {"file": str(path), "command": args.command, "user": _describe(user)}


def _human(result: dict) -> str:
    if "users" in result:
        if not result["users"]:
            return f"no users in {result['file']}"
        return "\n".join(f"{u['name']:<20} " + (", ".join(f"{k}={v}" for k, v in u["roles"].items()) or "(no roles)")
                         for u in result["users"])
    user = result["user"]
    roles = ", ".join(f"{k}={v}" for k, v in user["roles"].items()) or "no roles"
    done = {"add": "added", "passwd": "changed the password of", "remove": "removed", "grant": "updated",
            "revoke": "updated"}[result["command"]]
    return f"{done} {user['name']} ({roles}) in {result['file']}"


def operator() -> str:
    """Who ran the command: the operating-system account (and the one behind ``sudo``, if any)."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a bare container)
        name = f"uid {os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{name} (sudo by {sudo})" if sudo and sudo != name else name


def record(args: argparse.Namespace, path: Path, outcome: str, result: dict | None = None, detail: str = "") -> None:
    """One line in the server's audit log for a change to the users file (or a refused one)."""
    if args.command == "list":
        return
    fields: dict = {"account": getattr(args, "name", None), "users_file": str(path)}
    if result is not None and args.command != "remove":
        fields["roles"] = [f"{k}={v}" for k, v in result["user"]["roles"].items()]
    audit.append(get_settings().signin_log, audit.event(operator(), f"user-{args.command}", outcome, detail=detail,
                                                         **fields))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = args.file or get_settings().users_file
    if path is None:
        return fail("no users file: pass --file PATH or set RAGQA_USERS_FILE", EXIT_USAGE)
    try:
        result = run(args, path)
    except (UsageError, UsersFileError, ValueError) as exc:
        record(args, path, "failed", detail=str(exc))
        return fail(str(exc), EXIT_USAGE)
    except (OSError, TimeoutError) as exc:
        record(args, path, "failed", detail=f"cannot update the file: {getattr(exc, 'strerror', None) or exc}")
        return fail(f"cannot update {path}: {getattr(exc, 'strerror', None) or exc}", EXIT_ERROR)
    record(args, path, "ok", result)
    if args.json:
        emit_json(result)
    else:
        print(_human(result), file=sys.stderr if args.command != "list" else sys.stdout)
    return 0

