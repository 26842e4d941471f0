"""`rag_qa readers [--json]`: the registered readers and where their weights come from."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from rag_qa.cli.output import console, emit_json


def add_parser(sub) -> None:
    r = sub.add_parser("readers", help="list the registered readers and where their weights come from")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag_qa.readers.registry import list_readers

    rows = list_readers()
    if args.json:
        emit_json({"readers": rows})
        return 0
    table = Table("name", "kind", "default", "weights")
    for r in rows:
        table.add_row(r["name"], r["kind"], "yes" if r.get("default") else "", escape(str(r["weights"])))
    console.print(table)
    return 0
