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
from typing import TYPE_CHECKING

from ingest.errors import LoadError
from ingest.safety import check_size, check_zip_archive, looks_binary
from rag_qa.config import Settings

if TYPE_CHECKING:
    from bs4 import Tag

PAGE_SEPARATOR = "\n\n"
TEXT_TYPES = {".txt": "txt", ".md": "md", ".markdown": "md"}
HTML_TYPES = {".html": "html", ".htm": "html"}
#: every suffix ingestion reads: folder discovery, the CLI's help and the UI's upload check use this one list
SUPPORTED_SUFFIXES = (*TEXT_TYPES, *HTML_TYPES, ".pdf", ".docx")

# not visible text, or page furniture rather than content
_HTML_DROP = {"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside",
              "form", "button", "iframe", "head"}
# what the CSS selectors [role=navigation], [aria-hidden=true], #id and .class would pick out
_HTML_DROP_IDS = {"mw-navigation", "toc"}
_HTML_DROP_CLASSES = {"mw-editsection", "navbox", "noprint", "reflist"}  # and sup.reference
_HTML_BLOCKS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "table", "tr", "h1", "h2",
                "h3", "h4", "h5", "h6", "pre", "blockquote", "dd", "dt", "dl", "br", "hr", "figcaption",
                "caption", "title"}


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


#: byte-order marks of the encodings whose text is full of NUL bytes (UTF-32 before UTF-16: it starts alike)
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _wide_bom(data: bytes) -> str | None:
    """``utf-16``/``utf-32`` when ``data`` starts with that byte-order mark, else ``None``."""
    return next((codec for bom, codec in _BOMS if data.startswith(bom)), None)


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with its few broken bytes replaced (U+FFFD), when valid multi-byte characters are at
    least as many as the broken sequences.

    In a legacy 8-bit file (latin-1, cp1252) every accented letter is a broken sequence and
    valid multi-byte ones almost never occur, so it falls through to encoding detection; a
    UTF-8 file with a damaged byte or two keeps its accents instead of turning into mojibake.
    """
    text = data.decode("utf-8-sig", errors="replace")
    broken = text.count("\ufffd") - data.count("\ufffd".encode())
    valid = sum(1 for ch in text if ch > "\x7f" and ch != "\ufffd")
    return text if valid >= broken else None


def _decode(data: bytes) -> str:
    """UTF-8 (BOM allowed), UTF-16/32 with a BOM, mostly-UTF-8, then charset-normalizer's best guess.

    charset-normalizer ranks cp1250 above cp1252 when both read the bytes equally well, which
    turns French "è" into "č"; on such a tie the far more common cp1252 wins.
    """
    wide = _wide_bom(data)
    if wide is not None:
        try:
            return data.decode(wide).removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise LoadError(f"broken {wide.upper()} text ({exc.reason} at byte {exc.start})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    text = _mostly_utf8(data)
    if text is not None:
        return text
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        raise LoadError("cannot detect the text encoding (not UTF-8, UTF-16 or a known 8-bit encoding)")
    for match in results:
        if (match.encoding == "cp1252" and match.chaos <= best.chaos and match.coherence >= best.coherence):
            best = match
            break
    return str(best)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_decoded(text: str) -> str:
    """Refuse text that decoded but is binary after all (e.g. NULs behind a UTF-16 BOM)."""
    if looks_binary(text[:8192].encode("utf-8", errors="replace")):
        raise LoadError("binary content, not a text file")
    return text


def load_text(path: Path) -> str:
    data = path.read_bytes()
    if _wide_bom(data) is None and looks_binary(data):
        raise LoadError("binary content, not a text file")
    return _check_decoded(_normalise_newlines(_decode(data)))


def _is_furniture(tag: Tag) -> bool:
    """True for elements whose text is not content: scripts, styles, navigation, edit links..."""
    if tag.name in _HTML_DROP:
        return True
    attrs = tag.attrs
    if attrs.get("role") == "navigation" or attrs.get("aria-hidden") == "true":
        return True
    if attrs.get("id") in _HTML_DROP_IDS:
        return True
    classes = attrs.get("class") or ()
    return bool(_HTML_DROP_CLASSES.intersection(classes)) or (tag.name == "sup" and "reference" in classes)


def _visible_text(root: Tag) -> str:
    """The text of ``root`` outside page furniture, block elements set apart by blank lines.

    An explicit stack, not recursion or tree edits: 100,000 nested ``<div>`` s take linear time
    and never reach Python's recursion limit.
    """
    from bs4 import CData, NavigableString, Tag

    out: list[str] = []
    block_end = object()
    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if node is block_end:
            out.append("\n\n")
        elif type(node) in (NavigableString, CData):  # not comments, doctypes or script strings
            out.append(str(node))
        elif isinstance(node, Tag) and not _is_furniture(node):
            if node.name in _HTML_BLOCKS:
                out.append("\n\n")
                stack.append(block_end)
            stack.extend(reversed(node.contents))
    return "".join(out)


def load_html(path: Path) -> str:
    """Visible text only: scripts, styles, navigation and other page furniture are dropped."""
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    if _wide_bom(data) is None and looks_binary(data):
        raise LoadError("binary content, not an HTML file")
    soup = BeautifulSoup(data, "lxml")
    text = _visible_text(soup)
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
    if len(doc.text) > settings.max_text_chars:
        raise LoadError(f"text is {len(doc.text):,} characters, over the {settings.max_text_chars:,} limit "
                        "(RAGQA_MAX_TEXT_CHARS)")
    return doc
