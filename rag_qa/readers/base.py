"""The reader interface every reader implements (extractive, generative, ...).

A reader implements :meth:`Reader.answer_batch` (and :meth:`Reader.answer_stream` if it can stream);
callers use :meth:`Reader.read`, :meth:`Reader.read_batch` and :meth:`Reader.stream`, which are
the one place an answer's time (``Answer.seconds``) is set: from ``started`` when the caller
measures from earlier (the chain: from the question, retrieval included), else the reading alone.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from rag_qa.types import Answer, Passage


class Reader(ABC):
    """Reads passages and answers a question.  Heavy models load lazily in :meth:`warm_up`."""

    name: str = "reader"

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load weights; called once before first use (idempotent)."""

    # -- what a reader implements ----------------------------------------------------------
    @abstractmethod
    def answer_batch(self, questions: Sequence[str], passages: Sequence[Sequence[Passage]]) -> list[Answer]:
        """Answer each question from its passages only; ``no_answer=True`` when they do not hold one."""

    def answer_stream(self, question: str, passages: Sequence[Passage]) -> Iterator[str | Answer]:
        """Answer text pieces as they are produced, then the final :class:`Answer`."""
        answer = self.answer_batch([question], [passages])[0]
        yield answer.answer
        yield answer

    # -- what callers use ---------------------------------------------------------------------
    def read(self, question: str, passages: Sequence[Passage], *, started: float | None = None) -> Answer:
        """Answer from these passages only; ``no_answer=True`` when they do not hold one."""
        return self.read_batch([question], [passages], started=started)[0]

    def read_batch(self, questions: Sequence[str], passages: Sequence[Sequence[Passage]], *,
                   started: float | None = None) -> list[Answer]:
        """All questions at once; each answer's ``seconds`` is the time since ``started`` or, without
        it, the batch's reading time shared out per question (weights are loaded before the clock)."""
        if started is None:
            self.warm_up()
        t0 = time.perf_counter() if started is None else started
        answers = self.answer_batch(questions, passages)
        elapsed = time.perf_counter() - t0
        for answer in answers:
            answer.seconds = elapsed if started is not None else elapsed / max(len(questions), 1)
        return answers

    def stream(self, question: str, passages: Sequence[Passage], *,
               started: float | None = None) -> Iterator[str | Answer]:
        """Yield answer text pieces as they are produced, then the final :class:`Answer`."""
        if started is None:
            self.warm_up()
        t0 = time.perf_counter() if started is None else started
        for piece in self.answer_stream(question, passages):
            if isinstance(piece, Answer):
                piece.seconds = time.perf_counter() - t0
            yield piece

    def describe(self) -> dict:
        """Name and where the weights come from (for ``rag_qa readers``)."""
        return {"name": self.name}
