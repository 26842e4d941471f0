"""HTML: the visible text of a page, without scripts, styles, navigation and other page furniture.

Also used for the XHTML chapters of an e-book and the HTML body of an e-mail (:func:`html_to_text`).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import LoadError
from ingest.formats.text import normalise_newlines, wide_bom
from ingest.safety import looks_binary

if TYPE_CHECKING:
    from bs4 import Tag

# not visible text, or page furniture rather than content
# (not ``form``: ASP.NET and SharePoint pages wrap the whole body in one; its controls are dropped instead)
_HTML_DROP = {"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside",
              "button", "select", "textarea", "iframe", "head"}
# what the CSS selectors [role=navigation], [aria-hidden=true], #id and .class would pick out
_HTML_DROP_IDS = {"mw-navigation", "toc"}
_HTML_DROP_CLASSES = {"mw-editsection", "navbox", "noprint", "reflist"}  # and sup.reference
_HTML_BLOCKS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "table", "tr", "h1", "h2",
                "h3", "h4", "h5", "h6", "pre", "blockquote", "dd", "dt", "dl", "br", "hr", "figcaption",
                "caption", "title"}
_HTML_CELLS = {"td", "th"}  # a row stays one line, its cells apart ("Denver 24", not "Denver24")


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
    block_end, cell_end = object(), object()
    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if node is block_end:
            out.append("\n\n")
        elif node is cell_end:
            out.append(" ")
        elif type(node) in (NavigableString, CData):  # not comments, doctypes or script strings
            out.append(str(node))
        elif isinstance(node, Tag) and not _is_furniture(node):
            if node.name in _HTML_BLOCKS:
                out.append("\n\n")
                stack.append(block_end)
            elif node.name in _HTML_CELLS:
                stack.append(cell_end)
            stack.extend(reversed(node.contents))
    return "".join(out)


def html_to_text(data: bytes | str, what: str = "an HTML file") -> str:
    """The visible text of an HTML (or XHTML) document, blocks set apart by blank lines."""
    return soup_text(parse_html(data, what))


def parse_html(data: bytes | str, what: str = "an HTML file") -> Tag:
    """``data`` parsed by lxml's forgiving HTML parser (no entities fetched); binary data is refused."""
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    if isinstance(data, bytes) and wide_bom(data) is None and looks_binary(data):
        raise LoadError(f"binary content, not {what}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)  # XHTML (e-book chapters) on purpose
        return BeautifulSoup(data, "lxml")


def soup_text(root: Tag) -> str:
    """The visible text under ``root``: one space for runs of spaces, at most one blank line between blocks."""
    text = _visible_text(root)
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in normalise_newlines(text).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def first_heading(root: Tag) -> str | None:
    """The text of the first ``h1``-``h3`` (else the ``title``), for naming an e-book chapter."""
    tag = root.find(["h1", "h2", "h3"]) or root.find("title")
    text = " ".join(tag.get_text(" ").split()) if tag is not None else ""
    return text[:200] or None


def load_html(path: Path) -> str:
    """Visible text only: scripts, styles, navigation and other page furniture are dropped."""
    return html_to_text(path.read_bytes())
