"""`python -m rag_qa`: search, ask, readers, eval and train (contract in DESIGN.md)."""

from __future__ import annotations

import argparse
import os
import sys

from rag_qa import ask_cli, search_cli
from rag_qa.cli_output import EXIT_ERROR, fail, user_errors
from rag_qa.eval import cli as eval_cli
from rag_qa.train import cli as train_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag_qa", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ask_cli.add_parser(sub)
    search_cli.add_parser(sub)
    eval_cli.add_parser(sub)
    train_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # offline first: never phone home unless the user asked for it
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
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
        return fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
