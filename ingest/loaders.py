"""Turn one file into its extracted text: .txt/.md, .html/.htm, .pdf (per page), .docx.

Each loader returns a :class:`LoadedDocument` whose ``text`` is what chunk offsets refer to.
For a PDF that text is the pages joined with a blank line, and ``page_starts`` says where each
page begins.  Anything unreadable raises :class:`~ingest.errors.LoadError` with a one-line reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import LoadError
from ingest.safety import check_size, check_zip_archive, looks_binary
from rag_qa.config import Settings

PAGE_SEPARATOR = "\n\n"
TEXT_TYPES = {".txt": "txt", ".md": "md", ".markdown": "md"}
HTML_TYPES = {".html": "html", ".htm": "html"}
SUPPORTED_SUFFIXES = (*TEXT_TYPES, *HTML_TYPES, ".pdf", ".docx")

# not visible text, or page furniture rather than content
_HTML_DROP = ["script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside",
              "form", "button", "iframe", "head"]
_HTML_DROP_SELECTORS = ['[role="navigation"]', '[aria-hidden="true"]', ".mw-editsection", ".navbox",
                        ".noprint", "#mw-navigation", "#toc", ".reflist", "sup.reference"]
_HTML_BLOCKS = ["p", "div", "section", "article", "main", "li", "ul", "ol", "table", "tr", "h1", "h2",
                "h3", "h4", "h5", "h6", "pre", "blockquote", "dd", "dt", "dl", "br", "hr", "figcaption",
                "caption", "title"]


@dataclass
class LoadedDocument:
    """A document's extracted text (what offsets point into) and its page layout."""

    source: str
    type: str
    text: str
    page_starts: list[int] | None = None  # PDF only: offset of each page in ``text``

    @property
    def pages(self) -> int | None:
        return len(self.page_starts) if self.page_starts is not None else None

    def segments(self) -> list[tuple[int | None, int, str]]:
        """(page, offset, text) pieces to chunk separately: one per PDF page, else the whole text."""
        if self.page_starts is None:
            return [(None, 0, self.text)]
        ends = [s - len(PAGE_SEPARATOR) for s in self.page_starts[1:]] + [len(self.text)]
        return [(i + 1, s, self.text[s:e]) for i, (s, e) in enumerate(zip(self.page_starts, ends, strict=True))]


def _decode(data: bytes) -> str:
    """UTF-8 first (BOM allowed), then charset-normalizer's best guess (e.g. latin-1)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("cannot detect the text encoding")
    return str(best)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_text(path: Path) -> str:
    data = path.read_bytes()
    if looks_binary(data):
        raise LoadError("binary content, not a text file")
    return _normalise_newlines(_decode(data))


def load_html(path: Path) -> str:
    """Visible text only: scripts, styles, navigation and other page furniture are dropped."""
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    if looks_binary(data):
        raise LoadError("binary content, not an HTML file")
    soup = BeautifulSoup(data, "lxml")
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    for selector in _HTML_DROP_SELECTORS:
        for tag in soup.select(selector):
            tag.decompose()
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    text = soup.get_text()
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in _normalise_newlines(text).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def load_pdf_pages(path: Path) -> list[str]:
    """Text of each page, in order (page 1 first); runs of spaces (justified text) become one."""
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
        raise LoadError(f"encrypted PDF that cannot be opened ({_one_line(exc)})") from exc
    except Exception as exc:  # pypdf raises many types on damaged files
        raise LoadError(f"corrupt or unreadable PDF ({_one_line(exc)})") from exc


def load_docx(path: Path, settings: Settings) -> str:
    """Paragraphs and table rows in document order, separated by blank lines."""
    check_zip_archive(path, settings.max_docx_uncompressed_mb, settings.max_zip_ratio)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
        blocks: list[str] = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                blocks.extend(" | ".join(c.text.strip() for c in row.cells) for row in item.rows)
            else:
                blocks.append(item.text.strip())
    except Exception as exc:  # python-docx/lxml raise many types on damaged files
        raise LoadError(f"corrupt or unreadable .docx ({_one_line(exc)})") from exc
    return "\n\n".join(b for b in blocks if b)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def load_document(path: Path, settings: Settings) -> LoadedDocument:
    """Load ``path`` (already resolved) into a :class:`LoadedDocument`, or raise :class:`LoadError`."""
    suffix = path.suffix.lower()
    check_size(path, settings.max_file_mb)
    loaders: dict[str, Callable[[Path], str]] = {s: load_text for s in TEXT_TYPES}
    loaders.update({s: load_html for s in HTML_TYPES})
    loaders[".docx"] = lambda p: load_docx(p, settings)
    source = str(path)
    if suffix == ".pdf":
        pages = load_pdf_pages(path)
        starts, offset = [], 0
        for page in pages:
            starts.append(offset)
            offset += len(page) + len(PAGE_SEPARATOR)
        doc = LoadedDocument(source, "pdf", PAGE_SEPARATOR.join(pages), starts)
    elif suffix in loaders:
        doc = LoadedDocument(source, TEXT_TYPES.get(suffix) or HTML_TYPES.get(suffix) or "docx",
                             loaders[suffix](path))
    else:
        raise LoadError(f"unsupported file type '{suffix or path.name}' "
                        f"(supported: {', '.join(SUPPORTED_SUFFIXES)})")
    if not doc.text.strip():
        raise LoadError("no text found" + (" (scanned PDF without a text layer?)" if suffix == ".pdf" else ""))
    return doc
