"""`rag_qa eval reader|retrieval|open --data SQUAD.json [...]`: EM/F1, recall@k/MRR, end-to-end scores
(:mod:`rag_qa.eval`; contract in docs/design.md)."""

from __future__ import annotations

import argparse

from rag_qa.cli.ask import positive_int
from rag_qa.cli.output import console, emit_json, fail
from rag_qa.config import MODES


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

    t = ev.add_parser("retrieval", help="recall@k and MRR over the file's articles as a corpus")
    t.add_argument("--data", required=True, help="SQuAD-format .json(.gz)")
    t.add_argument("--mode", choices=MODES, default="hybrid")
    t.add_argument("--k", default="1,5,20", help="comma-separated cut-offs (default: 1,5,20)")
    t.add_argument("--limit", type=int, default=None, help="only the first N questions")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=run_retrieval)

    o = ev.add_parser("open", help="end to end (retrieve + read) over the file's articles as a corpus")
    o.add_argument("--data", required=True, help="SQuAD-format .json(.gz)")
    o.add_argument("--reader", default=None)
    o.add_argument("--mode", choices=MODES, default=None)
    o.add_argument("--top-k", type=positive_int, default=None)
    o.add_argument("--limit", type=int, default=None, help="only the first N questions")
    o.add_argument("--batch-size", type=int, default=16)
    o.add_argument("--json", action="store_true")
    o.set_defaults(func=run_open)


def _show(title: str, result: dict) -> None:
    console.print(f"[bold]{title}[/]")
    for k, v in result.items():
        console.print(f"  {k:<28} {v:.2f}" if isinstance(v, float) else f"  {k:<28} {v}")


def run_reader(args: argparse.Namespace) -> int:
    from rag_qa.eval.reader_eval import evaluate_reader

    result = evaluate_reader(args.data, args.reader, args.limit, args.batch_size, progress=not args.json)
    emit_json(result) if args.json else _show("reader evaluation", result)
    return 0


def run_retrieval(args: argparse.Namespace) -> int:
    from rag_qa.eval.retrieval_eval import evaluate_retrieval

    try:
        ks = tuple(sorted({int(k) for k in args.k.split(",") if k.strip()}))
    except ValueError:
        return fail(f"--k takes comma-separated whole numbers, e.g. 1,5,20 (got '{args.k}')")
    if not ks or ks[0] < 1:
        return fail("--k needs at least one cut-off of 1 or more")
    result = evaluate_retrieval(args.data, args.mode, ks, args.limit, progress=not args.json)
    emit_json(result) if args.json else _show("retrieval evaluation", result)
    return 0


def run_open(args: argparse.Namespace) -> int:
    from rag_qa.eval.reader_eval import reader_name
    from rag_qa.eval.retrieval_eval import evaluate_open

    result = evaluate_open(args.data, reader_name(args.reader), args.mode, args.top_k, args.limit,
                           args.batch_size, progress=not args.json)
    emit_json(result) if args.json else _show("open-domain evaluation", result)
    return 0
