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
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rag_qa.qa_data import QAExample
from rag_qa.readers.prompting import REFUSAL
from rag_qa.sentences import answer_sentence, trim_passage
from rag_qa.train.gen_config import MAX_PASSAGE_WORDS
from rag_qa.types import Passage


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
        quoted first (``quote``: ``"sentence" [n]``, then a line ``Answer: answer [n]``, read by
        :func:`~rag_qa.readers.prompting.trained_style`); the refusal when gold is removed."""
        if self.gold is None:
            return REFUSAL
        if style == "quote":
            return f'"{self.sentence}" [{self.gold}]\nAnswer: {self.answers[0]} [{self.gold}]'
        if style != "terse":
            raise ValueError(f"unknown target style {style!r} (terse or quote)")
        return f"{self.answers[0]} [{self.gold}]"

    def as_passages(self) -> list[Passage]:
        """The passages as the reader gets them from retrieval (source named like an ingested file)."""
        source = f"{self.title.replace('_', ' ')}.txt" if self.title else "document.txt"
        return [Passage(text, source, None, 0, len(text)) for text in self.passages]


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


def build_groups(examples: Sequence[QAExample], distractors: Sequence[tuple[int, QAExample]], *,
                 per_group: int, refusal_rate: float = 0.1, max_distractors: int = 2, min_distractors: int = 1,
                 max_words: int = MAX_PASSAGE_WORDS, seed: int = 0) -> list[list[GenItem]]:
    """Items in groups of up to ``per_group`` questions that share one prompt's passages.

    Each paragraph's questions are shuffled and cut into groups; the group's first question (its
    anchor) draws the distractors, the gold passage's number and whether the gold is removed, as
    :func:`build_items` does, and the others ask against the very same passages.  A sibling whose
    answers all fall outside the anchor's trimmed gold passage is dropped.  Training reads such a
    group as one row whose passages are read once (:mod:`rag_qa.train.gen_trainer`).
    """
    items = {it.id: it for it in build_items(examples, distractors, refusal_rate=refusal_rate,
                                              max_distractors=max_distractors, min_distractors=min_distractors,
                                              max_words=max_words, seed=seed)}
    by_context: dict[str, list[QAExample]] = defaultdict(list)
    for ex in examples:
        if ex.id in items:
            by_context[ex.context].append(ex)
    rng = random.Random(seed + 1)
    groups: list[list[GenItem]] = []
    for questions in by_context.values():
        rng.shuffle(questions)
        for at in range(0, len(questions), per_group):
            anchor, *siblings = questions[at:at + per_group]
            group = [items[anchor.id]]
            for ex in siblings:  # the same question twice would ask one row to learn two replies
                if (item := _sibling(ex, group[0])) and item.question not in {it.question for it in group}:
                    group.append(item)
            groups.append(group)
    return groups


def _sibling(ex: QAExample, anchor: GenItem) -> GenItem | None:
    """``ex`` asked against ``anchor``'s passages: the refusal when they lack the gold paragraph, else
    the answers that the (trimmed) gold passage still holds.  ``None`` when it holds none of them, or
    when a passage drawn as a distractor for the anchor holds this question's answer (its label, the
    refusal or one citation, would be wrong)."""
    from rag_qa.train.distractors import holds_answer  # numpy: this module stays standard library only

    gold = [a["text"] for a in ex.answers]
    others = [p for n, p in enumerate(anchor.passages, 1) if n != anchor.gold]
    if any(holds_answer(p, gold) for p in others):
        return None
    if anchor.gold is None:
        return GenItem(ex.id, ex.question, anchor.passages, anchor.title, None, ())
    passage = anchor.passages[anchor.gold - 1]
    answers = tuple(dict.fromkeys(a["text"] for a in ex.answers if a["text"] in passage))
    if not answers:
        return None
    first = next(a for a in ex.answers if a["text"] == answers[0])
    start = int(first.get("answer_start", ex.context.find(answers[0])))
    return GenItem(ex.id, ex.question, anchor.passages, anchor.title, anchor.gold, answers,
                   answer_sentence(ex.context, start, answers[0]))


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
    return with_gold, gold_removed(with_gold)


def gold_removed(items: Sequence[GenItem]) -> list[GenItem]:
    """The same questions with the gold paragraph taken out: the right reply is the refusal."""
    return [GenItem(f"{it.id}#nogold", it.question, tuple(p for j, p in enumerate(it.passages, 1) if j != it.gold),
                    it.title, None, ()) for it in items]


def dev_eval_items(path: str, n: int, max_words: int = MAX_PASSAGE_WORDS) -> tuple[list[GenItem], list[GenItem]]:
    """:func:`eval_items` over a SQuAD dev file with its BM25 distractors: the questions every
    generative score in this project is measured on (training's final eval, the ablation, the study)."""
    from rag_qa.qa_data import load_examples
    from rag_qa.train.distractors import add_distractors

    examples, _ = load_examples(path)
    return eval_items(examples, add_distractors(examples, 2, 3, seed=0), n, max_words=max_words)
