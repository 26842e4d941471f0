"""Word documents (.docx) via python-docx: paragraphs and tables in document order.

Each table row keeps its column headers (``Team: Denver Broncos, Score: 24.``) instead of a stream
of cell words; the archive is checked for zip bombs before python-docx opens it.
"""

from __future__ import annotations

from pathlib import Path

from ingest.errors import LoadError, one_line
from ingest.formats.tables import table_lines
from ingest.safety import check_zip_archive
from rag_qa.config import Settings


def _table_rows(table) -> list[list[str]]:  # noqa: ANN001 - python-docx's Table
    """Cell texts row by row, one per grid column.

    python-docx repeats a horizontally merged cell in each column it spans: its text is kept in
    the first of them and the others are left empty, so every later cell stays under its own
    header (dropping the repeats instead shifted them left, and a total spanning two columns
    was read as the value of the wrong one).
    """
    rows = []
    for row in table.rows:
        seen, cells = set(), []
        for cell in row.cells:
            cells.append("" if id(cell._tc) in seen else cell.text.strip())
            seen.add(id(cell._tc))
        rows.append(cells)
    return rows


def load_docx(path: Path, settings: Settings) -> str:
    """Paragraphs and table rows in document order, separated by blank lines."""
    check_zip_archive(path, settings.max_docx_uncompressed_mb, settings.max_zip_ratio, ".docx")
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
        blocks: list[str] = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                blocks.append("\n".join(table_lines(_table_rows(item))))
            else:
                blocks.append(item.text.strip())
    except Exception as exc:  # python-docx/lxml raise many types on damaged files
        raise LoadError(f"corrupt or unreadable .docx ({one_line(exc)})") from exc
    return "\n\n".join(b for b in blocks if b)
