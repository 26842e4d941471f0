"""``python -m ui``: parse the flags and start the app; ``python -m ui users|audit ...`` manage it.

Before Gradio is even imported, the app refuses to start (one line, exit 2) when it would be
reachable beyond this machine (a non-loopback ``--host``, or ``--share``) without a users file:
nothing is bound and no share link is requested.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag_qa.config import Settings, SettingsError, get_settings
from rag_qa.terminal import EXIT_USAGE, OneLineParser, fail
from ui.network import is_loopback

COMMANDS = {"users": "ui.users_cli", "audit": "ui.audit_cli"}


def build_parser() -> argparse.ArgumentParser:
    s = get_settings()
    p = OneLineParser(
        prog="python -m ui", description="Web app: upload documents, search, ask.",
        epilog="Team use: `python -m ui users --help` (accounts and roles, RAGQA_USERS_FILE) and "
               "`python -m ui audit --help` (the audit trail).")
    p.add_argument("--index", type=Path, default=None, help=f"index directory (default {s.index})")
    p.add_argument("--host", default=None,
                   help=f"address to bind (default {s.host}; beyond loopback only with a users file)")
    p.add_argument("--port", type=int, default=None, help=f"port (default {s.port})")
    p.add_argument("--share", action="store_true",
                   help="also open a public Gradio share link (off by default; needs a users file)")
    p.add_argument("--root-path", default=None,
                   help="public path prefix behind a reverse proxy, e.g. /rag (default RAGQA_ROOT_PATH)")
    return p


def exposure_error(settings: Settings, host: str, share: bool) -> str | None:
    """Why the app must not start with this host/share/users-file combination, or ``None`` when it may."""
    if share:
        reach: str | None = "a public share link (--share)"
    else:
        reach = None if is_loopback(host) else f"--host {host}"
    if settings.trusted_user_header:
        if settings.users_file is None:
            return ("RAGQA_TRUSTED_USER_HEADER needs a users file for the roles (set RAGQA_USERS_FILE; "
                    "add users with `python -m ui users add`)")
        if reach:
            return (f"refusing {reach} with RAGQA_TRUSTED_USER_HEADER: header sign-on is only safe when the "
                    "proxy on this machine is the only way in; bind 127.0.0.1 and let the proxy face the network")
    if reach and settings.users_file is None:
        return (f"refusing to start: {reach} would let anyone on the network in, and no users file is "
                "configured; set RAGQA_USERS_FILE and add users with `python -m ui users add NAME`")
    return None


def serve(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    if args.root_path is not None:
        settings = settings.model_copy(update={"root_path": args.root_path})
    index = args.index or settings.index
    if index.exists() and not index.is_dir():
        return fail(f"--index {index} is not a directory", EXIT_USAGE)
    if (problem := exposure_error(settings, args.host or settings.host, args.share)) is not None:
        return fail(problem, EXIT_USAGE)
    from ui.readers import OfferedReaders

    try:
        OfferedReaders(settings)  # the operator's reader list, checked before anything starts
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    users = None
    if settings.users_file is not None:
        from ui.users_file import UsersFileError, UsersStore

        try:
            users = UsersStore(settings.users_file).load()
        except UsersFileError as exc:
            return fail(str(exc), EXIT_USAGE)
    from ui.app import build_app, launch  # gradio loads only once the flags are fine

    launch(build_app(index, settings, users=users), settings, host=args.host, port=args.port, share=args.share,
           users=users)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        import importlib

        return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])
    try:
        return serve(argv)
    except SettingsError as exc:
        return fail(str(exc), EXIT_USAGE)
