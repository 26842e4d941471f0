"""``python -m ui``: parse the flags and start the app."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag_qa.config import get_settings


def build_parser() -> argparse.ArgumentParser:
    s = get_settings()
    p = argparse.ArgumentParser(prog="python -m ui", description="Web app: upload documents, search, ask.")
    p.add_argument("--index", type=Path, default=None, help=f"index directory (default {s.index})")
    p.add_argument("--host", default=None, help=f"address to bind (default {s.host}; only this machine)")
    p.add_argument("--port", type=int, default=None, help=f"port (default {s.port})")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    index = args.index or settings.index
    if index.exists() and not index.is_dir():
        print(f"error: --index {index} is not a directory", file=sys.stderr)
        return 2
    from ui.app import build_app, launch  # gradio loads only once the flags are fine

    launch(build_app(index, settings), settings, host=args.host, port=args.port, share=args.share)
    return 0
