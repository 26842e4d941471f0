"""Word documents (.docx) via python-docx: paragraphs and tables in document order.

Each table row keeps its column headers (``Team: Denver Broncos; Score: 24``) instead of a stream
of cell words; the archive is checked for zip bombs before python-docx opens it.
"""

from __future__ import annotations

from pathlib import Path

from ingest.errors import LoadError, one_line
from ingest.formats.tables import table_lines
from ingest.safety import check_zip_archive
from rag_qa.config import Settings


def _table_rows(table) -> list[list[str]]:  # noqa: ANN001 - python-docx's Table
    """Cell texts row by row; a merged cell (python-docx repeats it in each column it spans) counts once."""
    rows = []
    for row in table.rows:
        seen, cells = set(), []
        for cell in row.cells:
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(cell.text.strip())
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
