"""Word documents (.docx) via python-docx: paragraphs and tables in document order.

Each table row keeps its column headers (``Team: Denver Broncos, Score: 24.``) instead of a stream
of cell words; the archive is checked for zip bombs before python-docx opens it.

The body is read from its XML rather than python-docx's ``Paragraph.text``, which sees only plain runs
and hyperlinks: text in content controls (``w:sdt``: cover pages, templates, forms), in tracked
insertions (``w:ins``), in text boxes and in tables nested in a cell is document text too.  Deleted and
moved-away text (``w:del``, ``w:moveFrom``) and the fallback copy of a text box (``mc:Fallback``) are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.errors import LoadError, one_line
from ingest.formats.tables import table_lines
from ingest.safety import check_zip_archive
from rag_qa.config import Settings

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
#: subtrees whose text is not in the document as it reads now (or is a second copy of text that is)
_SKIP = {f"{W}del", f"{W}moveFrom", MC_FALLBACK}
#: elements that hold blocks (paragraphs, tables) of their own
_WRAPPERS = {f"{W}sdt", f"{W}sdtContent", f"{W}customXml", f"{W}ins", f"{W}moveTo"}


def _paragraph_text(p: Any) -> str:
    """The text of a ``w:p``: every ``w:t`` under it (inserted, in content controls, in text boxes), tabs
    and line breaks as whitespace, nothing under :data:`_SKIP`.  An explicit stack: no recursion limit."""
    out: list[str] = []
    stack = [p]
    while stack:
        node = stack.pop()
        tag = node.tag
        if not isinstance(tag, str) or tag in _SKIP:
            continue
        if tag == f"{W}t":
            out.append(node.text or "")
        elif tag == f"{W}tab":
            out.append("\t")
        elif tag in (f"{W}br", f"{W}cr"):
            out.append("\n")
        elif tag == f"{W}p" and node is not p:  # a paragraph of a text box inside this one
            out.append(" ")
        stack.extend(reversed(node))
    return "".join(out)


def _cell_text(tc: Any) -> str:
    """A table cell's blocks on one line (a nested table's rows included)."""
    return " ".join(" ".join(block.split()) for block in _blocks(tc) if block.strip())


def _table_rows(tbl: Any) -> list[list[str]]:
    """Cell texts row by row, one per grid column.

    A horizontally merged cell (``w:gridSpan``) keeps its text in the first column it spans and leaves
    the others empty, so every later cell stays under its own header (dropping the span instead shifted
    them left, and a total spanning two columns was read as the value of the wrong one).  Columns a row
    skips before its first cell (``w:gridBefore``) are empty too.  A vertically merged cell (``w:vMerge``)
    gives its text to every row it spans, as each row is read on its own.
    """
    rows: list[list[str]] = []
    for tr in tbl.iterchildren(f"{W}tr"):
        before = tr.find(f"{W}trPr/{W}gridBefore")
        cells = [""] * int(before.get(f"{W}val", "0")) if before is not None else []
        above = rows[-1] if rows else []
        for tc in _row_cells(tr):
            span, merged = tc.find(f"{W}tcPr/{W}gridSpan"), tc.find(f"{W}tcPr/{W}vMerge")
            continued = merged is not None and merged.get(f"{W}val", "continue") == "continue"
            column = len(cells)
            cells.append(above[column] if continued and column < len(above) else _cell_text(tc).strip())
            cells += [""] * (int(span.get(f"{W}val", "1")) - 1 if span is not None else 0)
        rows.append(cells)
    return rows


def _row_cells(tr: Any) -> Iterator[Any]:
    """The ``w:tc`` of a row, also those wrapped in a content control or a tracked insertion."""
    for child in tr:
        if child.tag == f"{W}tc":
            yield child
        elif child.tag in _WRAPPERS:
            yield from _row_cells(child)


def _blocks(container: Any) -> Iterator[str]:
    """Paragraph texts and table lines of a body or a cell, in document order."""
    for child in container:
        tag = child.tag
        if tag == f"{W}p":
            yield _paragraph_text(child).strip()
        elif tag == f"{W}tbl":
            yield "\n".join(table_lines(_table_rows(child)))
        elif tag in _WRAPPERS:
            yield from _blocks(child)


def load_docx(path: Path, settings: Settings) -> str:
    """Paragraphs and table rows in document order, separated by blank lines."""
    check_zip_archive(path, settings.max_docx_uncompressed_mb, settings.max_zip_ratio, ".docx")
    import docx

    try:
        body = docx.Document(str(path)).element.body
        blocks = list(_blocks(body))
    except Exception as exc:  # python-docx/lxml raise many types on damaged files
        raise LoadError(f"corrupt or unreadable .docx ({one_line(exc)})") from exc
    return "\n\n".join(b for b in blocks if b)
