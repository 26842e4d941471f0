"""``python -m ui audit --index DIR``: print an index's audit trail, with the server's events merged in.

Events that belong to no index (sign-ins, ended sessions, account changes, refusals naming no index
on offer) live in the server's log (``RAGQA_SIGNIN_LOG``); they are shown with every index's trail
(``--no-sign-ins`` leaves them out) and alone with ``--sign-ins``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag_qa.config import get_settings
from rag_qa.terminal import EXIT_USAGE, OneLineParser, emit_json, fail
from ui import audit


def build_parser() -> argparse.ArgumentParser:
    s = get_settings()
    p = OneLineParser(prog="python -m ui audit",
                                description="Print the audit trail: uploads, removals, index creation, "
                                            "refusals, sign-ins, sessions ended, account changes (and questions, "
                                            "if RAGQA_AUDIT_QUESTIONS is on).")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=Path, help="the index whose log to print")
    which.add_argument("--sign-ins", action="store_true",
                       help="only the server's log (sign-ins, sessions, account changes, refusals naming no index)")
    p.add_argument("--no-sign-ins", action="store_true", help="leave the server's events out of --index")
    p.add_argument("--signin-log", type=Path, default=s.signin_log,
                   help=f"the server's log (default RAGQA_SIGNIN_LOG, {s.signin_log})")
    p.add_argument("--last", type=int, default=0, metavar="N", help="only the last N events")
    p.add_argument("--json", action="store_true", help='print {"index", "events": [...]} on stdout')
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.index is not None and not args.index.is_dir():
        return fail(f"--index {args.index} is not a directory", EXIT_USAGE)
    paths = [] if args.index is None else [audit.index_log(args.index)]
    if args.sign_ins or not args.no_sign_ins:
        paths.append(args.signin_log)
    events = audit.merged(*paths)
    if args.last > 0:
        events = events[-args.last:]
    if args.json:
        emit_json({"index": str(args.index) if args.index else None, "events": events})
    elif not events:
        print(f"no audit events yet ({', '.join(str(p) for p in paths)})", file=sys.stderr)
    else:
        print("\n".join(audit.format_record(e) for e in events))
    return 0
