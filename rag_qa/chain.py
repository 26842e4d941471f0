"""Question (+ conversation) -> condense -> retriever -> reader, composed as a LangChain runnable (LCEL).

The input is a question, or ``{"input": question, "chat_history": [{"role", "content"}, ...]}``.
At the head of the chain sits the "condense question" step of LangChain's history-aware
retrieval pattern (``create_history_aware_retriever``: a ``RunnableBranch`` that passes the
question straight through when there is no history, else rewrites it); here the rewrite is
:func:`rag_qa.condense.condense` -- rules, offline, well under a millisecond -- instead of an LLM
call.  The retriever searches for the condensed ``query``, the reader reads the condensed
``question``, and with a history the answer says what was searched for (``Answer.searched_for``).

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
    RunnableBranch,
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
)

from rag_qa.condense import Condensed, condense
from rag_qa.readers.base import Reader
from rag_qa.retrieval import passages as to_passages
from rag_qa.types import Answer


class ReaderRunnable(Runnable[dict, Answer]):
    """Wraps a :class:`Reader`: input ``{"question", "passages", "t0", "searched_for"}``, output an :class:`Answer`.

    ``t0`` is when the question came in: the reader times its answers from there, so
    ``Answer.seconds`` is condensing, retrieval and reading, what a user waits.  ``searched_for``
    (None without a conversation) is copied onto the answer.
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
            lambda x: _searched(self.reader.read(x["question"], x["passages"], started=x.get("t0")), x), input, config
        )

    def batch(self, inputs: list[dict], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Answer]:
        if not inputs:
            return []
        starts = [x["t0"] for x in inputs if x.get("t0") is not None]
        answers = self.reader.read_batch([x["question"] for x in inputs], [x["passages"] for x in inputs],
                                         started=min(starts) if starts else None)
        return [_searched(a, x) for a, x in zip(answers, inputs, strict=True)]

    def transform(self, input: Iterator[dict], config: RunnableConfig | None = None,
                  **kwargs: Any) -> Iterator[str | Answer]:
        x: dict = {}
        for chunk in input:  # RunnableParallel streams its keys as separate partial dicts
            x.update(chunk)
        for piece in self.reader.stream(x["question"], x["passages"], started=x.get("t0")):
            yield _searched(piece, x) if isinstance(piece, Answer) else piece

    def stream(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[str | Answer]:
        yield from self.transform(iter([input]), config, **kwargs)


def _searched(answer: Answer, x: dict) -> Answer:
    answer.searched_for = x.get("searched_for")
    return answer


def condense_question(rewrite: bool = True, expand: bool = True) -> Runnable[dict, Condensed]:
    """``{"input", "chat_history"} -> Condensed``: the question as it is without a history (the branch
    of LangChain's history-aware retriever), else :func:`rag_qa.condense.condense`."""
    return RunnableBranch(
        (lambda x: not x.get("chat_history"), RunnableLambda(lambda x: Condensed.unchanged(x["input"]))),
        RunnableLambda(lambda x: condense(x["input"], x["chat_history"], rewrite=rewrite, expand=expand)),
    ).with_config(run_name="condense_question")


def _start(x: str | dict) -> dict:
    """A question or ``{"input", "chat_history"}`` as the chain's state, stamped with the time it came in."""
    if isinstance(x, str):
        return {"input": x, "chat_history": None, "t0": time.perf_counter()}
    return {"input": x["input"], "chat_history": x.get("chat_history"), "t0": time.perf_counter()}


def build_chain(retriever: BaseRetriever, reader: Reader, condenser: Runnable | None = None) -> Runnable:
    """``question | {input, chat_history} -> condense -> {question, passages, t0, searched_for} -> Answer``."""
    retrieve = RunnableParallel(
        t0=RunnableLambda(lambda x: x["t0"]),
        question=RunnableLambda(lambda x: x["condensed"].question),
        passages=RunnableLambda(lambda x: x["condensed"].query) | retriever | RunnableLambda(to_passages),
        searched_for=RunnableLambda(lambda x: None if x["chat_history"] is None else x["condensed"].query),
    )
    condensed = RunnablePassthrough.assign(condensed=condenser or condense_question())
    return RunnableLambda(_start) | condensed | retrieve | ReaderRunnable(reader)
