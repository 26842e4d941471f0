"""The reader interface every reader implements (extractive, generative, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from rag_qa.types import Answer, Passage


class Reader(ABC):
    """Reads passages and answers a question.  Heavy models load lazily in :meth:`warm_up`."""

    name: str = "reader"

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load weights; called once before first use (idempotent)."""

    @abstractmethod
    def read(self, question: str, passages: Sequence[Passage]) -> Answer:
        """Answer from these passages only; ``no_answer=True`` when they do not hold one."""

    def read_batch(self, questions: Sequence[str], passages: Sequence[Sequence[Passage]]) -> list[Answer]:
        return [self.read(q, p) for q, p in zip(questions, passages, strict=True)]

    def stream(self, question: str, passages: Sequence[Passage]) -> Iterator[str | Answer]:
        """Yield answer text pieces as they are produced, then the final :class:`Answer`."""
        answer = self.read(question, passages)
        yield answer.answer
        yield answer

    def describe(self) -> dict:
        """Name and where the weights come from (for ``rag_qa readers``)."""
        return {"name": self.name}
