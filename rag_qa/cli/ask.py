"""`rag_qa ask "QUESTION" [--index DIR] [--reader NAME] [--top-k K] [--mode M] [--json]`: one answer with its
citations, through :class:`rag_qa.service.QAService`."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.panel import Panel

from rag_qa.cli.output import console, emit_json
from rag_qa.config import MODES


def positive_int(text: str) -> int:
    """``--top-k``'s type: a whole number, at least 1 (argparse turns the error into a usage line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_reading_options(p: argparse.ArgumentParser) -> None:
    """The options of a command that answers questions (``ask`` and ``chat``): where to look, how to read."""
    p.add_argument("--index", default=None, help="index directory (default: indexes/default)")
    p.add_argument("--reader", default=None, help="reader name, e.g. extractive, generative (see `readers`)")
    p.add_argument("--top-k", type=positive_int, default=None, help="passages to read (default: 5)")
    p.add_argument("--mode", choices=MODES, default=None, help="retrieval mode")


def add_parser(sub) -> None:
    p = sub.add_parser("ask", help="answer a question from the indexed documents")
    p.add_argument("question")
    add_reading_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag_qa.service import QAService

    service = QAService(args.index)
    answer = service.ask(args.question, reader=args.reader, mode=args.mode, top_k=args.top_k)
    if args.json:
        emit_json(answer.to_dict())
        return 0
    if answer.no_answer:
        console.print(f"[yellow]No answer in your documents[/] (best confidence {answer.score:.2f}, "
                      f"reader {answer.reader}, {answer.seconds:.2f}s)")
        return 0
    console.print(f"[bold green]{escape(answer.answer)}[/]")
    console.print(f"confidence {answer.score:.2f} · reader {answer.reader} · {answer.seconds:.2f}s")
    for c in answer.citations:
        where = ", ".join(x for x in (c.source, c.location, "text from OCR" if c.ocr else "") if x)
        text = c.text
        if c.passage_start is not None:
            a, b = c.start - c.passage_start, c.end - c.passage_start
            body = f"{escape(text[:a])}[bold reverse]{escape(text[a:b])}[/]{escape(text[b:])}"
        else:
            body = escape(text)
        console.print(Panel(body, title=escape(where), title_align="left"))
    return 0

