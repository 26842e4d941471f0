"""Table rows as text that keeps its column headers: ``Region: North, Revenue: 1.2M.``.

Flattening a table cell by cell loses which number belongs to which column; a row written with
its headers can be found by a question about one cell and answered extractively with the cell's
exact text.  Used for spreadsheets and CSV files (one row per numbered part) and for tables
inside PDF, DOCX and PPTX files (one line per row).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

_SPACE = re.compile(r"\s+")


def cell_text(value: object) -> str:
    """A cell's value as a person would read it: ``3`` not ``3.0``, dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(round(value, 12))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return _SPACE.sub(" ", str(value)).strip()


def header_names(cells: Sequence[object]) -> list[str]:
    """Column names from a header row; an empty header cell is called after its column (``Column 3``)."""
    return [cell_text(c) or f"Column {i}" for i, c in enumerate(cells, 1)]


def row_text(headers: Sequence[str], cells: Iterable[object]) -> str:
    """``Header: value, Header: value.`` for the non-empty cells of a row (extra cells get ``Column N``).

    Commas and a closing full stop, not semicolons: a SQuAD-trained reader takes each row for a
    sentence then. With ``; `` and no stop it read the rows as one run-on sentence and answered
    "head coach of the Panthers?" from the Broncos' row (1 of 8 questions right on the Super Bowl
    table; 5 of 8 this way).
    """
    pairs = []
    for i, value in enumerate(cells):
        text = cell_text(value)
        if text:
            name = headers[i] if i < len(headers) else f"Column {i + 1}"
            pairs.append(f"{name}: {text}")
    return ", ".join(pairs) + "." if pairs else ""


def table_lines(rows: Sequence[Sequence[object]]) -> list[str]:
    """A whole table (first row = headers) as one line per data row; a one-row table is its cells."""
    rows = [r for r in rows if any(cell_text(c) for c in r)]
    if not rows:
        return []
    if len(rows) == 1:
        return [" | ".join(t for t in (cell_text(c) for c in rows[0]) if t)]
    headers = header_names(rows[0])
    return [line for line in (row_text(headers, r) for r in rows[1:]) if line]
