"""The output convention of every command line here (``python -m rag_qa``, ``python -m ingest``,
``python -m ui``), written down in docs/design.md:

* ``--json``: stdout holds JSON alone, one object a line, UTF-8 (not escaped to ASCII);
* an error is one line on stderr, ``error: ...`` (``ingest: error: ...`` from ingest, whose every
  line names it), control characters escaped, never a traceback; bad flags too;
* exit codes: 0 done, 1 failed, 2 bad input, 3 partly done (ingest: some files failed), 130 interrupted.

Standard library only: every command imports it before anything heavy.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def one_line(text: str) -> str:
    """``text`` with control characters escaped (a file named ``a\\nb.pdf`` must not split its line)."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def emit_json(obj: Any) -> None:
    """``obj`` as one line of JSON on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_USAGE, prefix: str = "") -> int:
    """Print ``{prefix}error: message`` (one line) to stderr and return the exit code ``code``."""
    print(f"{prefix}error: {one_line(message)}", file=sys.stderr, flush=True)
    return code


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (exit code 2), like every other error;
    ``--help`` still shows the usage.  Its sub-command parsers are OneLineParsers too."""

    #: what the error line starts with before ``error:`` (``"ingest: "`` for ingest)
    error_prefix = ""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.error_prefix}error: {one_line(message)} (see --help)\n")
