"""PDF: the text of each page, tables kept row by row, and OCR for pages that are pictures of text.

- **Text layer**: pypdf extracts each page's text (fast, and what every page starts with).
- **Tables**: a page that draws lines or boxes (counted with pypdfium2, which costs almost nothing)
  is handed to pdfplumber, whose table finder locates ruled tables; such a page's text becomes
  the text around the tables plus one ``Header: value, Header: value.`` line per table row, in
  the order they stand on the page.  pypdf and pypdfium2 have no table support; pdfplumber
  (MIT, on pdfminer.six) does, at about 0.3 s a page, which is why only pages with drawings pay
  for it.  Tables without ruling lines stay as pypdf reads them.
- **OCR**: a page with (almost) no text layer but an image on it, or with a text layer that is
  junk (mostly unassigned, private-use or control characters: fonts without a Unicode map), is
  rendered with pypdfium2 at ``RAGQA_OCR_DPI`` and read by Tesseract (:mod:`ingest.formats.ocr`),
  several pages at once.  Its part is marked as OCR so the citation can say so.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.document import LoadedDocument
from ingest.errors import LoadError, one_line
from ingest.formats.ocr import OcrPool, PageProgress, page_image_bytes
from ingest.formats.tables import cell_text, table_lines
from rag_qa.config import Settings

if TYPE_CHECKING:
    import pypdfium2

#: a page with fewer visible characters than this has no real text layer (a page number at most)
MIN_TEXT_CHARS = 20
#: a text layer with a smaller share of readable characters than this is junk
MIN_READABLE_SHARE = 0.85
#: a page drawing at least this many paths may hold a ruled table (each rule or cell box is a path)
MIN_TABLE_PATHS = 3
_UNREADABLE = {"Co", "Cn", "Cs", "Cc", "Cf"}


def _page_texts(path: Path) -> list[str]:
    """Text layer of each page, in order (page 1 first); runs of spaces (justified text) become one."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("password-protected PDF")
        return [re.sub(r"[ \t]+", " ", page.extract_text() or "") for page in reader.pages]
    except LoadError:
        raise
    except (FileNotDecryptedError, DependencyError) as exc:
        raise LoadError(f"encrypted PDF that cannot be opened ({one_line(exc)})") from exc
    except Exception as exc:  # pypdf raises many types on damaged files
        raise LoadError(f"corrupt or unreadable PDF ({one_line(exc)})") from exc


def text_layer_is_junk(text: str) -> bool:
    """True when ``text`` has real characters but too few of them are readable (see the module docstring)."""
    visible = [c for c in text if not c.isspace()]
    if len(visible) < MIN_TEXT_CHARS:
        return False
    readable = sum(1 for c in visible if c != "\ufffd" and unicodedata.category(c) not in _UNREADABLE)
    return readable / len(visible) < MIN_READABLE_SHARE


def _has_little_text(text: str) -> bool:
    return sum(1 for c in text if not c.isspace()) < MIN_TEXT_CHARS


def _count_objects(page: pypdfium2.PdfPage, kind: int, enough: int) -> int:
    """How many objects of ``kind`` the page draws, counting no further than ``enough``."""
    return sum(1 for _ in itertools.islice(page.get_objects(filter=(kind,), max_depth=4), enough))


# ---------------------------------------------------------------------------- tables


def _is_table(rows: list[list[Any]]) -> bool:
    """A grid worth reading as a table: 2+ rows, 2+ named columns, mostly filled, real text.

    pdfplumber also finds grids in figures and plots (axes, boxes); those have empty headers or
    mostly empty cells and are left to the text layer.
    """
    if len(rows) < 2 or max(len(r) for r in rows) < 2:
        return False
    cells = [cell_text(c) for r in rows for c in r]
    filled = [c for c in cells if c]
    header = [c for c in (cell_text(x) for x in rows[0]) if c]
    return len(header) >= 2 and len(filled) * 2 >= len(cells) and not any("(cid:" in c for c in filled)


def _tables_page_text(page: Any) -> str | None:
    """The page's text with each ruled table as header-keyed rows, or None when it holds no table."""
    tables = [(t.bbox, rows) for t in page.find_tables() if _is_table(rows := t.extract())]
    if not tables:
        return None
    tables.sort(key=lambda t: t[0][1])
    boxes = [bbox for bbox, _ in tables]

    def outside_tables(obj: dict[str, Any]) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)

    rest = page.filter(outside_tables)
    x0, top, x1, bottom = page.bbox
    blocks, cursor = [], top
    for (_, t_top, _, t_bottom), rows in tables:
        if t_top > cursor:
            blocks.append(rest.crop((x0, cursor, x1, t_top), strict=False).extract_text() or "")
        blocks.append("\n".join(table_lines(rows)))
        cursor = max(cursor, t_bottom)
    if bottom > cursor:
        blocks.append(rest.crop((x0, cursor, x1, bottom), strict=False).extract_text() or "")
    return "\n".join(re.sub(r"[ \t]+", " ", b).strip() for b in blocks if b.strip())


def _with_tables(path: Path, texts: list[str], candidates: list[int]) -> list[str]:
    """``texts`` with the pages in ``candidates`` that hold ruled tables re-read by pdfplumber."""
    if not candidates:
        return texts
    import pdfplumber

    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    out = list(texts)
    try:
        with pdfplumber.open(path) as pdf:
            for index in candidates:
                page = pdf.pages[index]
                try:
                    text = _tables_page_text(page)
                finally:
                    page.close()
                if text is not None:
                    out[index] = text
    except MemoryError:
        raise
    except Exception:  # table finding is an improvement: a page it cannot parse keeps pypdf's text
        logging.getLogger(__name__).debug("table extraction failed for %s", path, exc_info=True)
        return texts
    return out


# ---------------------------------------------------------------------------- OCR


def _render_scale(page: pypdfium2.PdfPage, dpi: int, max_megapixels: float) -> float:
    """``dpi`` as a pdfium scale, lowered for a page so big that it would exceed the pixel limit."""
    width, height = page.get_size()
    scale = dpi / 72
    area = max(width * height, 1.0)
    limit = max_megapixels * 1_000_000
    return min(scale, math.sqrt(limit / area)) if area * scale * scale > limit else scale


def _ocr_pages(pdf: pypdfium2.PdfDocument, pages: list[int], settings: Settings,
               progress: PageProgress | None) -> dict[int, str]:
    """OCR text of the 0-based ``pages``: rendered one by one here (pdfium is not thread-safe),
    read by Tesseract in parallel."""
    with OcrPool(settings, len(pages), progress) as pool:
        for index in pages:
            page = pdf[index]
            try:
                scale = _render_scale(page, settings.ocr_dpi, settings.ocr_max_megapixels)
                bitmap = page.render(scale=scale, grayscale=True)
                image = page_image_bytes(bitmap.to_pil())
            finally:
                page.close()
            pool.add(index, image, max(1, round(scale * 72)))
        return pool.results()


def _page_ranges(numbers: list[int]) -> str:
    """``1-3, 7`` for page numbers [1, 2, 3, 7]."""
    out = []
    for _, group in itertools.groupby(enumerate(numbers), key=lambda t: t[1] - t[0]):
        run = [n for _, n in group]
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(out)


def load_pdf(path: Path, source: str, settings: Settings, progress: PageProgress | None = None) -> LoadedDocument:
    """Every page's text (see the module docstring), one part per page, OCRed pages marked."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    texts = _page_texts(path)
    notes: list[str] = []
    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        raise LoadError(f"corrupt or unreadable PDF ({one_line(exc)})") from exc
    try:
        to_ocr, table_pages = [], []
        for index in range(min(len(pdf), len(texts))):
            page = pdf[index]
            try:
                text = texts[index]
                if text_layer_is_junk(text) or (
                        _has_little_text(text) and _count_objects(page, pdfium_c.FPDF_PAGEOBJ_IMAGE, 1)):
                    to_ocr.append(index)
                elif _count_objects(page, pdfium_c.FPDF_PAGEOBJ_PATH, MIN_TABLE_PATHS) >= MIN_TABLE_PATHS:
                    table_pages.append(index)
            finally:
                page.close()
        texts = _with_tables(path, texts, table_pages)
        ocred: dict[int, str] = {}
        if to_ocr and settings.ocr:
            if len(to_ocr) > settings.ocr_max_pages:
                notes.append(f"{len(to_ocr)} pages need OCR; only the first {settings.ocr_max_pages} were read "
                             "(RAGQA_OCR_MAX_PAGES)")
                to_ocr = to_ocr[:settings.ocr_max_pages]
            ocred = {i: t for i, t in _ocr_pages(pdf, to_ocr, settings, progress).items() if t.strip()}
            if ocred:
                notes.append(f"read with OCR ({settings.ocr_lang}): page{'s' if len(ocred) > 1 else ''} "
                             f"{_page_ranges([i + 1 for i in sorted(ocred)])}")
        elif to_ocr:
            notes.append(f"{len(to_ocr)} scanned page(s) not read: OCR is switched off (RAGQA_OCR=false)")
    finally:
        pdf.close()
    pieces = [(ocred.get(i, text), i + 1, None, i in ocred) for i, text in enumerate(texts)]
    document = LoadedDocument.from_parts(source, "pdf", pieces)
    document.notes = notes
    return document
