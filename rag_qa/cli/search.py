"""`python -m rag_qa search "QUERY" [--index DIR] [--top-k K] [--json]`: passages for a query.

Checks an index end to end through the same retrievers the chain uses (``--mode``
dense|bm25|hybrid); the query is embedded with the index's own model (a different configured
model is refused).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.panel import Panel

from rag_qa.cli.ask import positive_int
from rag_qa.cli.output import EXIT_USAGE, console, emit_json, fail
from rag_qa.config import MODES

if TYPE_CHECKING:
    from rag_qa.types import Passage


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="show the passages an index returns for a query")
    p.add_argument("query")
    p.add_argument("--index", type=Path, default=None, help="index directory (default: indexes/default)")
    p.add_argument("--top-k", type=positive_int, default=None, help="passages to return (default: 5)")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="retrieval mode (default: hybrid)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def retrieve(index: Path, query: str, top_k: int, mode: str | None = None) -> list[Passage]:
    """The one retrieval call of this command: the chain's own retriever for ``mode``."""
    from rag_qa.service import QAService

    return QAService(index).search(query, mode=mode, top_k=top_k)


def run(args: argparse.Namespace) -> int:
    from rag_qa.config import get_settings

    settings = get_settings()
    if not args.query.strip():
        return fail("the query is empty", EXIT_USAGE)
    k = args.top_k if args.top_k is not None else settings.top_k
    passages = retrieve(args.index or settings.index, args.query, k, args.mode)
    if args.json:
        emit_json({"passages": [p.to_dict() for p in passages]})
        return 0
    if not passages:
        console.print("[yellow]no passages: the index is empty[/]")
    for rank, p in enumerate(passages, 1):
        where = ", ".join(x for x in (p.source, p.location, "text from OCR" if p.ocr else "") if x)
        where += f" [{p.start}:{p.end}]"
        console.print(Panel(escape(p.text), title=f"{rank}. {escape(where)} · score {p.score:.3f}",
                            title_align="left"))
    return 0
