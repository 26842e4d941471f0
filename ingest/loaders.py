"""Turn one file into its extracted text: the list of formats ingestion reads, and the dispatch.

Each format lives in its own module under :mod:`ingest.formats` (text, html, pdf with tables and
OCR, docx, pptx, xlsx/csv/tsv, epub, eml, pictures through OCR).  :func:`load_document` checks
the size limit, calls the format's loader, and applies the rules every format shares: a
document without text or over the text limit is refused with one line (:class:`LoadError`).
It runs inside the parser worker (:mod:`ingest.worker`), with its time limit and memory cap.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from ingest.document import PAGE_SEPARATOR, LoadedDocument, Part
from ingest.errors import LoadError
from ingest.formats.ocr import PageProgress
from ingest.safety import check_size
from rag_qa.config import Settings

__all__ = ["PAGE_SEPARATOR", "SUPPORTED_SUFFIXES", "LoadedDocument", "Part", "load_document"]

TEXT_TYPES = {".txt": "txt", ".md": "md", ".markdown": "md"}
HTML_TYPES = {".html": "html", ".htm": "html"}
IMAGE_TYPES = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".tif": "tiff", ".tiff": "tiff"}
#: every suffix ingestion reads: folder discovery, the CLI's help and the UI's upload check use this one list
SUPPORTED_SUFFIXES = (*TEXT_TYPES, *HTML_TYPES, ".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".tsv", ".epub",
                      ".eml", *IMAGE_TYPES)

Loader = Callable[[Path, str, Settings, PageProgress | None, int], LoadedDocument]


@lru_cache(maxsize=1)
def _loaders() -> dict[str, Loader]:
    """Suffix -> loader ``(path, source, settings, progress, depth)``; the format modules are imported here."""
    from ingest.formats import docx, epub, html, images, mail, pdf, sheets, slides, text

    def plain(type_: str, read: Callable[[Path], str]) -> Loader:
        return lambda path, source, settings, progress, depth: LoadedDocument(source, type_, read(path))

    def eml(path: Path, source: str, settings: Settings, progress: PageProgress | None, depth: int) -> LoadedDocument:
        def attachment(file: Path, child: str, settings: Settings, depth: int) -> LoadedDocument:
            return load_document(file, settings, progress=progress, source=child, depth=depth)

        return mail.load_eml(path, source, settings, attachment, SUPPORTED_SUFFIXES, depth)

    table: dict[str, Loader] = {s: plain(t, text.load_text) for s, t in TEXT_TYPES.items()}
    table.update({s: plain(t, html.load_html) for s, t in HTML_TYPES.items()})
    table[".pdf"] = lambda path, source, settings, progress, depth: pdf.load_pdf(path, source, settings, progress)
    table[".docx"] = lambda path, source, settings, progress, depth: LoadedDocument(
        source, "docx", docx.load_docx(path, settings))
    table[".pptx"] = lambda path, source, settings, progress, depth: slides.load_pptx(path, source, settings)
    table[".xlsx"] = lambda path, source, settings, progress, depth: sheets.load_xlsx(path, source, settings)
    table[".csv"] = table[".tsv"] = lambda path, source, settings, progress, depth: sheets.load_delimited(
        path, source, settings)
    table[".epub"] = lambda path, source, settings, progress, depth: epub.load_epub(path, source, settings)
    table[".eml"] = eml
    for suffix, type_ in IMAGE_TYPES.items():
        table[suffix] = lambda path, source, settings, progress, depth, t=type_: images.load_image(
            path, source, t, settings, progress)
    return table


def load_document(path: Path, settings: Settings, progress: PageProgress | None = None, *,
                  source: str | None = None, depth: int = 0) -> LoadedDocument:
    """Load ``path`` (already resolved) into a :class:`LoadedDocument`, or raise :class:`LoadError`.

    ``source`` names the document (default: the path; a mail's attachment is ``mail.eml/name``),
    ``progress(done, total)`` hears about OCRed pages, ``depth`` counts mails inside mails.
    """
    suffix = path.suffix.lower()
    check_size(path, settings.max_file_mb)
    loader = _loaders().get(suffix)
    if loader is None:
        raise LoadError(f"unsupported file type '{suffix or path.name}' "
                        f"(supported: {', '.join(SUPPORTED_SUFFIXES)})")
    doc = loader(path, source or str(path), settings, progress, depth)
    if not doc.text.strip():
        raise LoadError("no text found" + (" (scanned PDF without a text layer, and OCR found none?)"
                                           if suffix == ".pdf" else ""))
    if len(doc.text) > settings.max_text_chars:
        raise LoadError(f"text is {len(doc.text):,} characters, over the {settings.max_text_chars:,} limit "
                        "(RAGQA_MAX_TEXT_CHARS)")
    return doc


def preload() -> None:
    """Import the format modules now (the worker does so before capping its memory).

    They import their parser libraries (pypdf, pdfplumber, openpyxl...) on first use only: a
    worker that reads three Markdown files should not pay a second or more of imports, which on
    busy cores was enough to miss the worker's start timeout.
    """
    _loaders()
