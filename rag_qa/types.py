"""The data that flows through the system: passages in, answers with citations out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # LangChain only where documents cross into it: training imports these types without it
    from langchain_core.documents import Document


def location(page: int | None, unit: str | None, section: str | None) -> str:
    """``page 2``, ``slide 3``, ``sheet Sales, row 14``, ``row 9``, ``chapter 2 (Title)``; ``""`` for none.

    ``unit`` None is a page (what indexes written before slides and sheets held).
    """
    unit = unit or "page"
    number = f"{unit} {page}" if page is not None else ""
    if not section:
        return number
    if unit == "row":
        return f"sheet {section}, {number}" if number else f"sheet {section}"
    return f"{number} ({section})" if number else section


@dataclass
class Passage:
    """A retrieved chunk.  ``start``/``end`` are character offsets into the source document's
    extracted text, so ``document_text[start:end] == text`` always holds."""

    text: str
    source: str
    page: int | None
    start: int
    end: int
    score: float = 0.0
    chunk_id: str = ""
    unit: str | None = None  # what ``page`` counts: page, slide, row, chapter (None: page)
    section: str | None = None  # the sheet of a spreadsheet row, the title of an e-book chapter
    ocr: bool = False  # the text was read from a picture (scanned page, image file)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("text", "source", "page", "start", "end", "score", "unit",
                                                "section", "ocr")}

    @property
    def location(self) -> str:
        """Where in its document this passage is, for people: ``sheet Sales, row 14``, ``slide 3``..."""
        return location(self.page, self.unit, self.section)

    def to_document(self) -> Document:
        """As a LangChain ``Document`` (what ``BaseRetriever`` returns)."""
        from langchain_core.documents import Document

        meta = {k: v for k, v in asdict(self).items() if k != "text"}
        return Document(page_content=self.text, metadata=meta, id=self.chunk_id or None)

    @classmethod
    def from_document(cls, doc: Document) -> Passage:
        m = doc.metadata
        return cls(
            text=doc.page_content,
            source=m["source"],
            page=m.get("page"),
            start=int(m["start"]),
            end=int(m["end"]),
            score=float(m.get("score", 0.0)),
            chunk_id=m.get("chunk_id") or doc.id or "",
            unit=m.get("unit"),
            section=m.get("section"),
            ocr=bool(m.get("ocr", False)),
        )


@dataclass
class Citation:
    """Where an answer came from.  For extractive answers ``start``/``end`` locate the answer
    span in the source document; for generative ones, the cited passage.  ``text`` is the passage."""

    source: str
    page: int | None
    start: int
    end: int
    text: str
    passage_start: int | None = None  # offset of ``text`` in the document, to highlight the span
    unit: str | None = None  # as in :class:`Passage`
    section: str | None = None
    ocr: bool = False

    @classmethod
    def of(cls, passage: Passage, start: int | None = None, end: int | None = None) -> Citation:
        """A citation of ``passage`` (of its ``start:end`` span in the document, else of all of it)."""
        return cls(passage.source, passage.page, passage.start if start is None else start,
                   passage.end if end is None else end, passage.text, passage_start=passage.start,
                   unit=passage.unit, section=passage.section, ocr=passage.ocr)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("source", "page", "start", "end", "text", "unit", "section", "ocr")}

    @property
    def location(self) -> str:
        """Where in its document the cited text is, for people (see :func:`location`)."""
        return location(self.page, self.unit, self.section)


@dataclass
class Answer:
    answer: str
    score: float
    reader: str
    no_answer: bool = False
    citations: list[Citation] = field(default_factory=list)
    seconds: float = 0.0
    grounded: bool | None = None  # generative readers: did the answer cite a real passage?
    alternatives: list[dict[str, Any]] = field(default_factory=list)  # the n-best, for the UI/debugging
    # in a conversation: what was searched for, the question made standalone (None: asked alone)
    searched_for: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "answer": self.answer,
            "score": round(float(self.score), 4),
            "reader": self.reader,
            "no_answer": self.no_answer,
            "citations": [c.to_dict() for c in self.citations],
            "seconds": round(self.seconds, 3),
        }
        if self.grounded is not None:
            out["grounded"] = self.grounded
        if self.searched_for is not None:
            out["searched_for"] = self.searched_for
        return out
