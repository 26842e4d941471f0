"""`rag_qa chat [--index DIR] [--reader NAME] [--top-k K] [--mode M] [--json]`: a conversation on the command line.

Reads one question a line from standard input (a terminal or a pipe) and answers each one with
the conversation so far, so follow-ups work ("Who was the Norse leader?" then "What did he agree
to?").  ``/clear`` starts a new conversation, ``/quit`` (or end of input) ends.  People get the
answer, what was searched for when the conversation changed the question, and the sources on
stderr; ``--json`` prints one JSON object a line on stdout for each question:
``{"question", "searched_for", "answer", "score", "reader", "no_answer", "citations", "seconds"}``.
"""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape

from rag_qa.cli.ask import add_reading_options
from rag_qa.cli.output import console, emit_json

CLEAR, QUIT = "/clear", "/quit"


def add_parser(sub) -> None:
    p = sub.add_parser("chat", help="ask questions in a conversation (follow-ups read the turns before them)")
    add_reading_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object a line per question, on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag_qa.condense import MAX_TURNS
    from rag_qa.service import QAService

    service = QAService(args.index)
    service.chain(args.reader, args.mode, args.top_k)  # a missing index or reader fails before the first prompt
    interactive = sys.stdin.isatty()
    if interactive and not args.json:
        console.print(f"Ask away; {CLEAR} starts a new conversation, {QUIT} or Ctrl-D ends.")
    history: list[dict[str, str]] = []
    while True:
        if interactive:
            console.print("[bold]you>[/] ", end="")
        line = sys.stdin.readline()
        if not line:
            return 0
        question = line.strip()
        if not question:
            continue
        if question == QUIT:
            return 0
        if question == CLEAR:
            history = []
            if not args.json:
                console.print("[dim]new conversation[/]")
            continue
        answer = service.ask(question, reader=args.reader, mode=args.mode, top_k=args.top_k, history=history)
        history += [{"role": "user", "content": question},
                    {"role": "assistant", "content": "" if answer.no_answer else answer.answer}]
        history = history[-2 * MAX_TURNS:]
        if args.json:
            emit_json({"question": question, "searched_for": answer.searched_for, **answer.to_dict()})
        else:
            show(question, answer)


def show(question: str, answer) -> None:
    """The answer for people: text (or "no answer"), the rewritten search, confidence and sources."""
    if answer.searched_for and answer.searched_for != question:
        console.print(f"[dim]searched for: {escape(answer.searched_for)}[/]")
    if answer.no_answer:
        console.print(f"[yellow]No answer in your documents[/] (best confidence {answer.score:.2f})")
        return
    console.print(f"[bold green]{escape(answer.answer)}[/]  [dim]confidence {answer.score:.2f} · "
                  f"{answer.seconds:.2f}s[/]")
    for c in answer.citations:
        where = ", ".join(x for x in (c.source, c.location) if x)
        console.print(f"  [dim]from {escape(where)}[/]")
