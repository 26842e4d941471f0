"""Training and evaluation items for the generative reader: numbered passages, a question, a cited target.

Each SQuAD question becomes what the reader sees at run time: its gold paragraph and one or two
same-article paragraphs that BM25 ranks high for the question but that hold no answer
(:func:`rag_qa.train.distractors.add_distractors`), shuffled, so the gold passage may be any
number.  The target is the gold answer copied from its passage and that passage's citation,
``Paul Baran [2]``.  About one item in ten loses its gold paragraph; its target is the refusal
the grounding code recognises (:data:`rag_qa.readers.prompting.REFUSAL`), so the model learns
to say so instead of answering from a passage that does not hold the answer.

Long paragraphs are cut to a window of whole sentences (the answer's sentence kept), the size
of the chunks ingest writes (about 200 tokens), so training prompts look like serving prompts.
Standard library only: the tokenising half lives in :mod:`rag_qa.train.gen_trainer`.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rag_qa.qa_data import QAExample
from rag_qa.readers.prompting import REFUSAL
from rag_qa.train.gen_config import MAX_PASSAGE_WORDS
from rag_qa.types import Passage

# a sentence ends at . ! or ? (optionally closed by a quote or bracket) followed by space
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"')\]]?)\s+")


@dataclass(frozen=True)
class GenItem:
    """One prompt's content and its answer.  ``gold`` is the 1-based number of the passage that
    holds the answer, ``None`` when the gold paragraph was removed (the target is the refusal)."""

    id: str
    question: str
    passages: tuple[str, ...]  # in prompt order, [1]..[n]
    title: str
    gold: int | None
    answers: tuple[str, ...]  # every gold answer text (the first is the training target); () for refusals
    sentence: str = ""  # the gold passage's sentence holding the first answer (quote-then-answer format)

    @property
    def refusal(self) -> bool:
        return self.gold is None

    def target(self, style: str = "terse") -> str:
        """The reply the model is trained towards: ``answer [n]`` (``terse``), or the answer's sentence
        quoted first (``quote``: ``"sentence" [n] -> answer [n]``); the refusal when gold is removed."""
        if self.gold is None:
            return REFUSAL
        if style == "quote":
            return f'"{self.sentence}" [{self.gold}] -> {self.answers[0]} [{self.gold}]'
        if style != "terse":
            raise ValueError(f"unknown target style {style!r} (terse or quote)")
        return f"{self.answers[0]} [{self.gold}]"

    def as_passages(self) -> list[Passage]:
        """The passages as the reader gets them from retrieval (source named like an ingested file)."""
        source = f"{self.title.replace('_', ' ')}.txt" if self.title else "document.txt"
        return [Passage(text, source, None, 0, len(text)) for text in self.passages]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (a split after . ! ? and whitespace)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.end(1)))  # the sentence keeps its closing quote or bracket
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def answer_sentence(text: str, start: int, answer: str) -> str:
    """The sentence(s) of ``text`` that hold the answer at ``start`` (whole sentences, joined)."""
    end = start + len(answer)
    parts = [text[a:b].strip() for a, b in sentence_spans(text) if a < end and b > start]
    return " ".join(parts) or answer


def trim_passage(text: str, keep: tuple[int, int] | None = None, max_words: int = MAX_PASSAGE_WORDS) -> str:
    """``text`` cut to at most ``max_words`` words of whole sentences, always keeping the character span
    ``keep`` (the answer): sentences are added around the one holding it, nearest first.  A text
    that fits is returned unchanged; a single sentence longer than the limit is kept whole."""
    if len(text.split()) <= max_words:
        return text
    spans = sentence_spans(text)
    centre = 0 if keep is None else next((i for i, (a, b) in enumerate(spans) if a <= keep[0] < b), 0)

    def words(i: int) -> int:
        return len(text[spans[i][0]:spans[i][1]].split())

    lo = hi = centre
    count = words(centre)
    while True:
        for j in (hi + 1, lo - 1):  # the following sentence first: context after the answer
            if 0 <= j < len(spans) and count + words(j) <= max_words:
                count += words(j)
                lo, hi = min(lo, j), max(hi, j)
                break
        else:
            break
    if keep is not None and not (spans[lo][0] <= keep[0] and keep[1] <= spans[hi][1]):
        return text  # the answer spans a sentence break the splitter did not expect: keep it all
    return text[spans[lo][0]:spans[hi][1]]


def build_items(examples: Sequence[QAExample], distractors: Sequence[tuple[int, QAExample]], *,
                refusal_rate: float = 0.1, max_distractors: int = 2, min_distractors: int = 1,
                max_words: int = MAX_PASSAGE_WORDS, seed: int = 0) -> list[GenItem]:
    """One :class:`GenItem` per answerable question that has at least one distractor.

    ``distractors`` are ``(question index, paragraph)`` pairs from ``add_distractors``; each item
    takes between ``min_distractors`` and ``max_distractors`` of its own (seeded draw).  With
    probability ``refusal_rate`` the gold paragraph is left out and the item becomes a refusal.
    """
    rng = random.Random(seed)
    by_question: dict[int, list[str]] = defaultdict(list)
    for qi, d in distractors:
        by_question[qi].append(d.context)
    items = []
    for qi, ex in enumerate(examples):
        others = by_question.get(qi, [])
        if not ex.answers or not others:
            continue
        k = min(len(others), rng.randint(min_distractors, max_distractors))
        chosen = [trim_passage(t, None, max_words) for t in others[:k]]
        answer = ex.answers[0]
        if rng.random() < refusal_rate:
            rng.shuffle(chosen)
            items.append(GenItem(ex.id, ex.question, tuple(chosen), ex.title, None, ()))
            continue
        start = int(answer.get("answer_start", ex.context.find(answer["text"])))
        gold_text = trim_passage(ex.context, (start, start + len(answer["text"])), max_words)
        sentence = answer_sentence(ex.context, start, answer["text"])
        order = [gold_text, *chosen]
        rng.shuffle(order)
        answers = tuple(dict.fromkeys(a["text"] for a in ex.answers))
        items.append(GenItem(ex.id, ex.question, tuple(order), ex.title, order.index(gold_text) + 1, answers,
                             sentence))
    return items


def eval_items(examples: Sequence[QAExample], distractors: Sequence[tuple[int, QAExample]], n: int,
               seed: int = 11, max_words: int = MAX_PASSAGE_WORDS) -> tuple[list[GenItem], list[GenItem]]:
    """The evaluation set: ``n`` questions, each with its gold paragraph and two distractors in a
    seeded order, and the same ``n`` questions with the gold paragraph removed (refusal checks)."""
    answered = build_items(examples, distractors, refusal_rate=0.0, min_distractors=2, max_distractors=2,
                           max_words=max_words, seed=seed)
    answered = [it for it in answered if len(it.passages) == 3]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(answered)), min(n, len(answered))))
    with_gold = [answered[i] for i in chosen]
    without = [GenItem(f"{it.id}#nogold", it.question,
                       tuple(p for j, p in enumerate(it.passages, 1) if j != it.gold), it.title, None, ())
               for it in with_gold]
    return with_gold, without
