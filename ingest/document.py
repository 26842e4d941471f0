"""What a loader returns: a document's extracted text, where its numbered parts are, and its attachments.

``text`` is what chunk offsets point into.  A document made of numbered parts (PDF pages, slides,
spreadsheet rows, e-book chapters, image frames) lists them as :class:`Part` s: where each starts
and ends in ``text``, its number (what a citation shows as page, slide, row or chapter: ``unit``
says which), an optional section name (the sheet, the chapter title) and whether its text came
from OCR.  Chunks never cross a part, so every chunk has one number.  A mail's attachments are
documents of their own (``mail.eml/report.pdf``), and ``notes`` are one-line remarks for the
person ingesting (pages read with OCR, attachments left out).  Everything here travels from the
parser worker as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PAGE_SEPARATOR = "\n\n"
#: what a part's number counts; a citation shows "page 3", "slide 3", "row 3", "chapter 3"
UNITS = ("page", "slide", "row", "chapter")


@dataclass(frozen=True)
class Part:
    """One numbered piece of a document: ``text[start:end]``, its number, sheet/chapter name and OCR flag."""

    start: int
    end: int
    page: int | None
    section: str | None = None
    ocr: bool = False


@dataclass
class LoadedDocument:
    """A document's extracted text (what offsets point into), its numbered parts and its attachments."""

    source: str
    type: str
    text: str
    parts: list[Part] | None = None  # None: the whole text is one part without a number
    unit: str = "page"  # what Part.page counts (one of UNITS)
    notes: list[str] = field(default_factory=list)
    attachments: list[LoadedDocument] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # attachments of types that are not read
    failed: list[tuple[str, str]] = field(default_factory=list)  # (attachment source, one-line error)

    @classmethod
    def from_parts(cls, source: str, type_: str, pieces: list[tuple[str, int | None, str | None, bool]],
                   unit: str = "page", separator: str = PAGE_SEPARATOR) -> LoadedDocument:
        """Join ``(text, number, section, ocr)`` pieces with ``separator`` into one document with its parts."""
        texts, parts, offset = [], [], 0
        for text, page, section, ocr in pieces:
            parts.append(Part(offset, offset + len(text), page, section, ocr))
            texts.append(text)
            offset += len(text) + len(separator)
        return cls(source, type_, separator.join(texts), parts, unit)

    @property
    def pages(self) -> int | None:
        """How many numbered parts (pages, slides, rows, chapters); None for plain text."""
        return len(self.parts) if self.parts is not None else None

    @property
    def ocr_parts(self) -> int:
        return sum(1 for p in self.parts or () if p.ocr)

    def segments(self) -> list[tuple[Part, str]]:
        """(part, text) pieces to chunk separately: one per numbered part, else the whole text."""
        if self.parts is None:
            return [(Part(0, len(self.text), None), self.text)]
        return [(p, self.text[p.start:p.end]) for p in self.parts]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the parser worker sends back)."""
        return {
            "source": self.source, "type": self.type, "text": self.text, "unit": self.unit,
            "parts": None if self.parts is None else [[p.start, p.end, p.page, p.section, p.ocr] for p in self.parts],
            "notes": self.notes, "attachments": [a.to_json() for a in self.attachments],
            "skipped": self.skipped, "failed": [list(f) for f in self.failed],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadedDocument:
        parts = data.get("parts")
        return cls(
            source=str(data["source"]), type=str(data["type"]), text=str(data["text"]),
            parts=None if parts is None else [Part(int(s), int(e), p, sec, bool(o)) for s, e, p, sec, o in parts],
            unit=str(data.get("unit") or "page"), notes=[str(n) for n in data.get("notes", [])],
            attachments=[cls.from_json(a) for a in data.get("attachments", [])],
            skipped=[str(s) for s in data.get("skipped", [])],
            failed=[(str(s), str(e)) for s, e in data.get("failed", [])],
        )
