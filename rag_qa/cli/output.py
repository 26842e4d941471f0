"""What every ``rag_qa`` command prints through: the project's output convention
(:mod:`rag_qa.terminal`: ``--json`` on stdout, one-line errors, exit codes), the rich console
people read on stderr, and the exceptions whose message is meant for the user."""

from __future__ import annotations

from rich.console import Console

from rag_qa.terminal import EXIT_ERROR, EXIT_USAGE, emit_json, fail

console = Console(stderr=True, highlight=False)

__all__ = ["EXIT_ERROR", "EXIT_USAGE", "console", "emit_json", "fail", "user_errors"]


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is meant for the user (no traceback)."""
    from rag_qa.condense import HistoryError
    from rag_qa.config import SettingsError
    from rag_qa.eval.corpus import CorpusIndexError
    from rag_qa.models import ModelNotFoundError
    from rag_qa.qa_data import DataError
    from rag_qa.readers.registry import UnknownReaderError
    from rag_qa.service import EmptyQuestionError
    from rag_qa.store.base import IndexStoreError

    return (ModelNotFoundError, UnknownReaderError, EmptyQuestionError, IndexStoreError, DataError, CorpusIndexError,
            HistoryError, SettingsError)
