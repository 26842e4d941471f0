"""`rag_qa eval reader|retrieval|open` (contract in DESIGN.md)."""

from __future__ import annotations

import argparse

from rag_qa.cli_output import console, emit_json


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a reader, retrieval, or the whole chain on SQuAD-format data")
    ev = p.add_subparsers(dest="eval_command", required=True, metavar="WHAT")

    r = ev.add_parser("reader", help="reader EM/F1 with each question's gold paragraph")
    r.add_argument("--data", required=True, help="SQuAD-format .json(.gz) (v1.1 or v2.0), .jsonl or .csv")
    r.add_argument("--reader", default=None, help="reader name or a model directory (default: extractive)")
    r.add_argument("--limit", type=int, default=None, help="only the first N questions")
    r.add_argument("--batch-size", type=int, default=16)
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run_reader)


def _show(title: str, result: dict) -> None:
    console.print(f"[bold]{title}[/]")
    for k, v in result.items():
        console.print(f"  {k:<28} {v:.2f}" if isinstance(v, float) else f"  {k:<28} {v}")


def run_reader(args: argparse.Namespace) -> int:
    from rag_qa.eval.reader_eval import evaluate_reader

    result = evaluate_reader(args.data, args.reader, args.limit, args.batch_size, progress=not args.json)
    emit_json(result) if args.json else _show("reader evaluation", result)
    return 0
