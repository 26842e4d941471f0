"""The data that flows through the system: passages in, answers with citations out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.documents import Document


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

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("text", "source", "page", "start", "end", "score")}

    def to_document(self) -> Document:
        """As a LangChain ``Document`` (what ``BaseRetriever`` returns)."""
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

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("source", "page", "start", "end", "text")}


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
        return out
