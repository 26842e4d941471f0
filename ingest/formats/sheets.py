"""Spreadsheets (.xlsx via openpyxl) and delimited text (.csv, .tsv via the standard library).

Every data row is one part whose text keeps the column headers (``Region: North, Revenue: 1.2M.``),
numbered with the row number a spreadsheet program shows (the header is row 1 of a plain CSV);
for a workbook the part's section is the sheet's name, so a citation reads "sheet Sales, row 14".
The header is the first row with at least two filled cells; single-cell rows above it (a title)
are kept as text.  Workbooks are opened read-only with cached values (``data_only``), so a
formula cell gives its last computed value, never the formula; rows are streamed, and reading
stops with a one-line error as soon as the text passes ``RAGQA_MAX_TEXT_CHARS``, so a huge sheet
costs neither the time nor the memory of reading all of it.  CSV dialects (comma, semicolon,
tab, pipe; quoting) are sniffed from the first 64 KB.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ingest.document import LoadedDocument
from ingest.errors import LoadError, one_line
from ingest.formats.tables import cell_text, header_names, row_text
from ingest.formats.text import decode_text
from ingest.safety import check_zip_archive
from rag_qa.config import Settings

SNIFF_CHARS = 64 * 1024
_DELIMITERS = ",;\t|"
Piece = tuple[str, int | None, str | None, bool]


class _Rows:
    """Turns (row number, cells) into parts: headers found, text budget kept."""

    def __init__(self, settings: Settings, sheet: str | None, used: int = 0) -> None:
        self.limit = settings.max_text_chars
        self.sheet = sheet
        self.used = used
        self.headers: list[str] | None = None
        self.header_row: tuple[int, str] | None = None
        self.pieces: list[Piece] = []

    def add(self, number: int, cells: list[object]) -> None:
        filled = sum(1 for c in cells if cell_text(c))
        if not filled:
            return
        if self.headers is None and filled < 2:
            text = " ".join(t for t in (cell_text(c) for c in cells) if t)  # a title line above the table
        elif self.headers is None:
            self.headers = header_names(cells)
            self.header_row = (number, " | ".join(t for t in (cell_text(c) for c in cells) if t))
            return
        else:
            text = row_text(self.headers, cells)
        self.used += len(text) + 1
        if self.used > self.limit:
            where = f"sheet '{self.sheet}' " if self.sheet is not None else ""
            raise LoadError(f"{where}passes the {self.limit:,}-character text limit at row {number:,} "
                            "(RAGQA_MAX_TEXT_CHARS); split the file or raise the limit")
        self.pieces.append((text, number, self.sheet, False))

    def finish(self) -> list[Piece]:
        """The parts; a table that is only a header row is kept as that row's text."""
        if self.header_row is not None and not any((n or 0) > self.header_row[0] for _, n, _, _ in self.pieces):
            number, text = self.header_row
            self.pieces.append((text, number, self.sheet, False))
            self.pieces.sort(key=lambda p: p[1] or 0)
        return self.pieces


def load_xlsx(path: Path, source: str, settings: Settings) -> LoadedDocument:
    """One part per row of every worksheet, in sheet order (see the module docstring)."""
    check_zip_archive(path, settings.max_docx_uncompressed_mb, settings.max_zip_ratio, ".xlsx")
    from openpyxl import load_workbook

    pieces: list[Piece] = []
    try:
        workbook = load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except MemoryError:
        raise
    except Exception as exc:  # openpyxl raises many types on damaged files
        raise LoadError(f"corrupt or unreadable .xlsx ({one_line(exc)})") from exc
    try:
        for sheet in workbook.worksheets:
            if not hasattr(sheet, "iter_rows"):  # a chart sheet
                continue
            sheet.reset_dimensions()  # a crafted dimension tag must not pad every row to 16,384 columns
            rows = _Rows(settings, sheet.title, sum(len(p[0]) + 1 for p in pieces))
            for cells in sheet.iter_rows():
                number = next((c.row for c in cells if getattr(c, "row", None)), None)
                if number is not None:
                    rows.add(number, [c.value for c in cells])
            pieces += rows.finish()
    except (LoadError, MemoryError):
        raise
    except Exception as exc:
        raise LoadError(f"corrupt or unreadable .xlsx ({one_line(exc)})") from exc
    finally:
        workbook.close()
    return LoadedDocument.from_parts(source, "xlsx", pieces, unit="row", separator="\n")


def _dialect(sample: str, suffix: str) -> type[csv.Dialect] | csv.Dialect:
    """The sniffed dialect of ``sample``; a file too regular or too odd to sniff gets its suffix's default."""
    fallback = csv.excel_tab if suffix == ".tsv" else csv.excel
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        return fallback
    first = sample.split("\n", 1)[0]
    if suffix == ".tsv" and "\t" in first and dialect.delimiter != "\t":
        return fallback  # a tab-separated file whose cells hold commas: trust the suffix
    return dialect


def load_delimited(path: Path, source: str, settings: Settings) -> LoadedDocument:
    """One part per CSV/TSV record; ``page`` is the record's row number (the header is row 1)."""
    suffix = path.suffix.lower()
    kind = "tsv" if suffix == ".tsv" else "csv"
    text = decode_text(path.read_bytes(), f"a {kind.upper()} file")
    rows = _Rows(settings, None)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), _dialect(text[:SNIFF_CHARS], suffix))
        for number, cells in enumerate(reader, 1):
            rows.add(number, list(cells))
    except csv.Error as exc:
        raise LoadError(f"malformed {kind.upper()} ({one_line(exc)})") from exc
    return LoadedDocument.from_parts(source, kind, rows.finish(), unit="row", separator="\n")
