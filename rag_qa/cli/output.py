"""Output conventions shared by every command: ``--json`` prints one object on stdout, people
get rich text on stderr, and user errors become one line and a non-zero exit code."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

console = Console(stderr=True, highlight=False)

EXIT_USAGE = 2
EXIT_ERROR = 1


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print ``error: message`` (one line) to stderr and return the exit code."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True)
    return code


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is meant for the user (no traceback)."""
    from rag_qa.condense import HistoryError
    from rag_qa.eval.corpus import CorpusIndexError
    from rag_qa.models import ModelNotFoundError
    from rag_qa.qa_data import DataError
    from rag_qa.readers.registry import UnknownReaderError
    from rag_qa.service import EmptyQuestionError
    from rag_qa.store.base import IndexStoreError

    return (ModelNotFoundError, UnknownReaderError, EmptyQuestionError, IndexStoreError, DataError, CorpusIndexError,
            HistoryError)
