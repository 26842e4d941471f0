"""`python -m rag_qa` (and the ``rag-qa`` script): search, ask, chat, readers, eval and train.

One module per command (``ask``, ``chat``, ``readers``, ``search``, ``eval``, ``train``), each with
``add_parser(subparsers)`` and its ``run``; the output conventions they share (``--json``, one-line
errors, exit codes) are in :mod:`rag_qa.cli.output`.  Importing a command module loads no model
and no LangChain: the work is imported when the command runs.  Contract in docs/design.md.
"""

from __future__ import annotations

import argparse
import os
import sys

from rag_qa.cli import ask, chat, readers, search, train
from rag_qa.cli import eval as eval_command
from rag_qa.cli.output import EXIT_ERROR, fail, user_errors
from rag_qa.env import set_offline_defaults
from rag_qa.terminal import EXIT_INTERRUPTED, OneLineParser

COMMANDS = (ask, chat, readers, search, eval_command, train)
DESCRIPTION = "`python -m rag_qa`: search, ask, chat, readers, eval and train (contract in docs/design.md)."


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m rag_qa", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    set_offline_defaults()  # offline first: never phone home unless the user asked for it
    args = build_parser().parse_args(train.default_kind(list(sys.argv[1:] if argv is None else argv)))
    if args.command != "train":  # weight-loading bars are noise for ask/search; training keeps its own
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    try:
        return args.func(args)
    except user_errors() as err:
        return fail(str(err), EXIT_ERROR)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)
