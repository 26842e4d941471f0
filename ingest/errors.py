"""Errors of the ingestion pipeline; each message is one line a user can act on."""

from __future__ import annotations


class LoadError(Exception):
    """A file could not be read; it is skipped and listed in the report's ``failed``.

    The message is made one line (runs of whitespace, line breaks included, become one space): it often
    quotes a name from inside the file (a zip member, an e-book href), which may hold line breaks."""

    def __init__(self, message: object = "") -> None:
        super().__init__(" ".join(str(message).split()))


class ToolMissing(LoadError):
    """A program the file needs is missing (Tesseract, its language data): not the file's fault, so it is
    not remembered, and the file is read once the program is installed."""


class WorkerStartError(LoadError):
    """The parser worker could not be started: not the file's fault, so it is not remembered."""


class IngestUsageError(Exception):
    """The request itself is wrong (e.g. a path that does not exist): nothing is ingested."""


def unexpected_error(exc: BaseException) -> str:
    """The one-line, at most 300-character reason for a file whose reading failed in an unforeseen way."""
    return " ".join(f"unexpected error while reading ({type(exc).__name__}: {exc})".split())[:300]


def one_line(exc: BaseException) -> str:
    """A library's exception as at most 200 characters on one line (for "corrupt or unreadable X (...)")."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
