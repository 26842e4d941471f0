"""HTML for answers, source cards, search hits and upload reports (pure functions, all text escaped).

Chat messages are one HTML block with no blank lines, so the chatbot's markdown renderer passes
them through untouched and document text is never read as markdown or HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from rag_qa.types import Answer, Citation, Passage

NO_ANSWER = "No answer in your documents."
EMPTY_INDEX_HINT = "No documents indexed yet. Upload some in the <b>Documents</b> tab, then ask again."
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "how", "in", "is", "it",
    "of", "on", "or", "the", "to", "was", "were", "what", "when", "where", "which", "who", "whom", "whose", "why",
    "with",
))
_WORD = re.compile(r"\w+")


def _escape(text: str) -> str:
    """HTML-escape ``text``; line breaks (``\n``, ``\r``) become ``<br>`` so a passage never holds a blank line,
    which would end the chatbot's HTML block and let the rest be read as markdown (``![](https://...)``)."""
    return html.escape(text, quote=True).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


#: documents whose attachments are indexed as ``<container>/<attachment>``
ATTACHMENT_CONTAINERS = (".eml",)


def display_name(source: str) -> str:
    """A document's file name, as shown on cards and in the documents table (``mail.eml/report.pdf``
    for an attachment)."""
    path = Path(source)
    if path.parent.suffix.lower() in ATTACHMENT_CONTAINERS:
        return f"{path.parent.name}/{path.name}"
    return path.name or source


def highlight_span(text: str, start: int, end: int) -> str:
    """``text`` escaped, with ``text[start:end]`` wrapped in ``<mark>`` (no mark if the span is invalid)."""
    if not 0 <= start < end <= len(text):
        return _escape(text)
    return f"{_escape(text[:start])}<mark>{_escape(text[start:end])}</mark>{_escape(text[end:])}"


def query_terms(query: str) -> list[str]:
    """The words of ``query`` worth highlighting (no stopwords, no single letters), lower-cased, unique."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if len(word) > 1 and word not in _STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def highlight_terms(text: str, terms: Iterable[str]) -> str:
    """``text`` escaped, with whole-word, case-insensitive matches of ``terms`` wrapped in ``<mark>``."""
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    if not words:
        return _escape(text)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(_escape(text[last:match.start()]))
        out.append(f"<mark>{_escape(match.group())}</mark>")
        last = match.end()
    out.append(_escape(text[last:]))
    return "".join(out)


def _where(item: Citation | Passage) -> str:
    """`` · sheet Sales, row 14`` / `` · page 2`` and an OCR badge, escaped HTML for after the file name."""
    location = item.location
    out = f" · {html.escape(location)}" if location else ""
    if item.ocr:
        out += ' · <span class="ocr-badge" title="this text was read from a scanned image by OCR">text from OCR</span>'
    return out


def citation_card(citation: Citation, number: int, *, open_: bool = False,
                  shown: Callable[[str], str] = display_name) -> str:
    """An expandable source card: file, where in it (page, slide, sheet and row...) and whether the text came
    from OCR in the summary, the passage with the answer span marked.  Its tooltip names the document as
    ``shown`` does (a path relative to the index, never the server's absolute path)."""
    text = citation.text
    body = _escape(text)
    if citation.passage_start is not None:
        start, end = citation.start - citation.passage_start, citation.end - citation.passage_start
        if (start, end) != (0, len(text)):  # generative citations point at whole passages: nothing to mark
            body = highlight_span(text, start, end)
    name = html.escape(display_name(citation.source))
    return (f'<details class="source-card"{" open" if open_ else ""}>'
            f'<summary title="{html.escape(shown(citation.source))}">[{number}] {name}{_where(citation)}</summary>'
            f'<div class="passage">{body}</div></details>')


def answer_meta(answer: Answer) -> str:
    """Reader, confidence and time on one line."""
    parts = [f"reader: {answer.reader}", f"confidence: {answer.score:.0%}", f"{answer.seconds:.1f} s"]
    if answer.grounded is False:
        parts.append("not grounded in a cited passage")
    return html.escape(" · ".join(parts))


_ANSWER_ATTR = re.compile(r'^<div class="rag-answer" data-answer="([^"]*)">')


def answer_message(answer: Answer, shown: Callable[[str], str] = display_name, asked: str | None = None) -> str:
    """The chat message for a finished answer: text (or the no-answer notice), what was searched for when
    the conversation changed the question ``asked``, meta line, source cards (sources named by ``shown``).

    The plain answer also goes in ``data-answer`` (escaped), so a follow-up reads it back with
    :func:`answer_text` instead of parsing the cards."""
    if answer.no_answer:
        head = f'<div class="answer no-answer"><b>{NO_ANSWER}</b></div>'
    else:
        head = f'<div class="answer"><b>{_escape(answer.answer)}</b></div>'
    if answer.searched_for and answer.searched_for.strip() != (asked or "").strip():
        head += f'<div class="searched-for">searched for: <i>{_escape(answer.searched_for)}</i></div>'
    cards = "".join(citation_card(c, i, open_=i == 1, shown=shown) for i, c in enumerate(answer.citations, 1))
    # no raw line break in the attribute either: a blank line there ends the HTML block just the same
    plain = "" if answer.no_answer else html.escape(answer.answer, quote=True).replace("\r", "&#13;").replace(
        "\n", "&#10;")
    return (f'<div class="rag-answer" data-answer="{plain}">{head}<div class="answer-meta">{answer_meta(answer)}'
            f'</div>{cards}</div>')


def answer_text(message: str) -> str | None:
    """The plain answer an :func:`answer_message` carries (``""`` for "no answer"); None for other messages."""
    found = _ANSWER_ATTR.match(message)
    return html.unescape(found.group(1)) if found else None


def notice_message(text: str, kind: str = "hint") -> str:
    """A hint or error shown in place of an answer (``text`` is escaped)."""
    return f'<div class="rag-{kind}">{_escape(text)}</div>'


def hint_html(inner_html: str) -> str:
    """A friendly hint box around trusted, already-built HTML."""
    return f'<div class="rag-hint">{inner_html}</div>'


def passages_html(passages: Sequence[Passage], query: str, shown: Callable[[str], str] = display_name) -> str:
    """Search results: rank, score, file and page, the passage with the query's words marked."""
    if not passages:
        return hint_html("No passages matched.")
    terms = query_terms(query)
    cards = []
    for rank, p in enumerate(passages, 1):
        cards.append(
            f'<div class="search-hit"><div class="hit-head">#{rank} · score {p.score:.3f} · '
            f'<span title="{html.escape(shown(p.source))}">{html.escape(display_name(p.source))}</span>'
            f'{_where(p)}</div>'
            f'<div class="passage">{highlight_terms(p.text, terms)}</div></div>'
        )
    return "".join(cards)


def upload_report_html(added: Sequence[str], updated: Sequence[str], unchanged: Sequence[str],
                       failed: Sequence[dict[str, str]], documents: int, chunks: int,
                       skipped: Sequence[str] = (), notes: Sequence[dict[str, str]] = ()) -> str:
    """An upload's summary: what went in, each failed file with its reason, what was skipped, and what the
    files had to say (``{"path", "note"}``: pages read with OCR, attachments left out...), all escaped."""
    items = []
    for label, names in (("Added", added), ("Updated", updated), ("Unchanged", unchanged)):
        if names:
            items.append(f"<li>{label}: {html.escape(', '.join(display_name(n) for n in names))}</li>")
    for item in failed:
        items.append(f'<li class="upload-failed">Failed: <b>{html.escape(display_name(item["path"]))}</b>: '
                     f'{html.escape(item["error"])}</li>')
    if skipped:
        items.append(f'<li class="upload-skipped">Skipped (type not read): '
                     f'{html.escape(", ".join(display_name(n) for n in skipped))}</li>')
    for item in notes:
        items.append(f'<li class="upload-note">{html.escape(display_name(item["path"]))}: '
                     f'{html.escape(item["note"])}</li>')
    summary = f"<b>The index now holds {documents} documents, {chunks} chunks.</b>"
    return f'<div class="upload-report">{summary}<ul>{"".join(items)}</ul></div>'
