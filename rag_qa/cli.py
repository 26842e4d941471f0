"""`python -m rag_qa`: search, ask, readers, eval and train (contract in DESIGN.md)."""

from __future__ import annotations

import argparse
import sys

from rag_qa.train import cli as train_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag_qa", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
