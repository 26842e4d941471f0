"""Question -> retriever -> reader, composed as a LangChain runnable (LCEL).

``invoke`` returns an :class:`Answer`, ``batch`` reads all questions' passages in shared
forward passes, and ``stream`` yields answer text pieces as the reader produces them, then
the final :class:`Answer` (the UI streams generative answers this way).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
)

from rag_qa.readers.base import Reader
from rag_qa.retrieval import passages as to_passages
from rag_qa.types import Answer


class ReaderRunnable(Runnable[dict, Answer]):
    """Wraps a :class:`Reader`: input ``{"question", "passages", "t0"}``, output an :class:`Answer`.

    ``t0`` is when the question came in: the reader times its answers from there, so
    ``Answer.seconds`` is retrieval plus reading, what a user waits.
    """

    def __init__(self, reader: Reader):
        self.reader = reader

    @property
    def InputType(self) -> type:  # noqa: N802 - LangChain's name
        return dict

    @property
    def OutputType(self) -> type:  # noqa: N802
        return Answer

    def invoke(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        return self._call_with_config(
            lambda x: self.reader.read(x["question"], x["passages"], started=x.get("t0")), input, config
        )

    def batch(self, inputs: list[dict], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Answer]:
        if not inputs:
            return []
        starts = [x["t0"] for x in inputs if x.get("t0") is not None]
        return self.reader.read_batch([x["question"] for x in inputs], [x["passages"] for x in inputs],
                                      started=min(starts) if starts else None)

    def transform(self, input: Iterator[dict], config: RunnableConfig | None = None,
                  **kwargs: Any) -> Iterator[str | Answer]:
        x: dict = {}
        for chunk in input:  # RunnableParallel streams its keys as separate partial dicts
            x.update(chunk)
        yield from self.reader.stream(x["question"], x["passages"], started=x.get("t0"))

    def stream(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[str | Answer]:
        yield from self.transform(iter([input]), config, **kwargs)


def build_chain(retriever: BaseRetriever, reader: Reader) -> Runnable:
    """``question -> {question, passages, t0} -> Answer`` as one LCEL runnable."""
    retrieve = RunnableParallel(
        t0=RunnableLambda(lambda _: time.perf_counter()),
        question=RunnablePassthrough(),
        passages=retriever | RunnableLambda(to_passages),
    )
    return retrieve | ReaderRunnable(reader)
