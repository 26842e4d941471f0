"""Checking a generated answer against its passages: citations, refusals, support.

The model is asked to cite passages as ``[n]``.  Valid markers (``[1]``, ``[1, 3]``,
``[1][2]``) are parsed; malformed or out-of-range ones are ignored, never trusted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag_qa.squad_metrics import normalize_answer
from rag_qa.types import Answer, Citation, Passage

#: support (share of the answer's words in a passage) needed to count the passage as a source
SUPPORT_THRESHOLD = 0.6

# ``[1]``, ``[1, 3]``, ``[1;2]`` -- digits separated by commas/semicolons, nothing else inside.
_MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
# Anything bracketed that looks like an attempt at a citation, to strip from the answer text.
_MARKER_LIKE = re.compile(r"\s*\[[^\[\]\n]{0,20}\]|\s*\[\s*\d+[^\]\n]{0,10}$")

_REFUSALS = re.compile(
    r"\b(cannot|can ?not|can't|could not|couldn't|unable to|do not|don't|does not|doesn't) "
    r"(find|locate|determine|answer|know|contain|mention|say|provide|have)\b"
    r"|\bnot (in|found in|mentioned in|contained in|stated in|provided in) the (passages?|context|text)\b"
    r"|\bno (answer|information|mention)\b"
    r"|^\s*(unknown|n/?a|none)\s*[.!]?\s*$",
    re.IGNORECASE,
)

# What small models echo around an answer: prompt tags (``<passage id="1" ...>``, also in
# their neutralised ``‹passage`` form) and lead-ins such as "The passage 1:", "According to
# passage [2],", "Answer:".  None of it is part of the answer.
_TAGS = re.compile(r"[<‹]/?\s*passages?\b[^>\n]*>?", re.IGNORECASE)
_SOURCE = r"(?:the\s+)?(?:passage|context|text)s?(?:\s*\[?\s*\d{1,3}\s*\]?)?"  # "the passage [2]", "context"
_LEAD_IN = re.compile(
    # "According to passage 2, ...", "From the context: ..." (a separator is required: "In the text messages")
    rf"^\s*(?:according to|based on|from|in)\s+{_SOURCE}(?:\s*[:,]|\s+[-–])\s*"
    # "The passage 1: ...", "Context - ...", "passage 3 says ..."; never "Context-free", "Texts, letters"
    rf"|^\s*{_SOURCE}(?:\s*:|\s+[-–]|\s+(?:says?|states?)\b)\s*"
    r"|^\s*(?:the\s+)?(?:short\s+)?answer(?:\s+is)?\s*:\s*",
    re.IGNORECASE,
)

_STOPWORD_TEXT = (
    "a an the of in on at to for from by with and or is are was were be been it its this that these "
    "those as which who whom what when where why how"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def parse_citations(text: str, n_passages: int) -> list[int]:
    """Passage numbers (1-based, first-cited first, no repeats) validly cited in ``text``."""
    cited: list[int] = []
    for match in _MARKER.finditer(text):
        for number in re.split(r"\s*[,;]\s*", match.group(1)):
            value = int(number)
            if 1 <= value <= n_passages and value not in cited:
                cited.append(value)
    return cited


def strip_citations(text: str) -> str:
    """The answer text without ``[n]`` markers (valid or not) and the spacing they leave."""
    cleaned = _MARKER_LIKE.sub("", text)
    cleaned = re.sub(r"\s+([.,;:!?])", r"\1", cleaned)
    return " ".join(cleaned.split())


def clean_reply(text: str) -> str:
    """The answer without echoed prompt tags and lead-ins ("The passage 1: ...", "Answer: ...")."""
    text = _TAGS.sub(" ", text)
    previous = None
    while previous != text:  # lead-ins can stack: "Answer: According to passage 2, ..."
        previous, text = text, _LEAD_IN.sub("", text, count=1)
    return " ".join(text.split())


def is_refusal(text: str) -> bool:
    """Does the answer say the passages do not hold it ("I cannot find the answer ...")?"""
    return not text.strip() or bool(_REFUSALS.search(text))


def _content_tokens(text: str) -> list[str]:
    return [t for t in normalize_answer(text).split() if t not in _STOPWORDS]


def support(answer: str, passage_text: str) -> float:
    """Share of the answer's content words found in the passage (1.0 if it is a verbatim span)."""
    norm_answer, norm_passage = normalize_answer(answer), normalize_answer(passage_text)
    if norm_answer and f" {norm_answer} " in f" {norm_passage} ":
        return 1.0
    words = _content_tokens(answer)
    if not words:
        return 0.0
    vocabulary = set(norm_passage.split())
    return sum(w in vocabulary for w in words) / len(words)


def supporting_passages(
    answer: str, passages: Sequence[Passage], threshold: float = SUPPORT_THRESHOLD
) -> list[int]:
    """1-based numbers of the passages that best support ``answer`` (at least ``threshold``)."""
    scores = [support(answer, p.text) for p in passages]
    best = max(scores, default=0.0)
    if best < threshold:
        return []
    return [i + 1 for i, s in enumerate(scores) if s == best]


def to_citations(numbers: Sequence[int], passages: Sequence[Passage]) -> list[Citation]:
    """``Citation`` records (source, page, offsets, text) of the 1-based passage ``numbers``."""
    out = []
    for number in numbers:
        p = passages[number - 1]
        out.append(Citation.of(p))
    return out


def ground_answer(raw: str, passages: Sequence[Passage], reader: str) -> Answer:
    """Turn a model's raw reply into an Answer whose citations are checked against ``passages``.

    A cited passage counts only if it supports the answer (holds its words).  A 135M model
    often omits or misnumbers ``[n]`` markers, so when no valid cited passage supports the
    answer we fall back to attributing it to the passage(s) containing its words.  If no
    passage supports it, the answer keeps its text but has no citations and ``grounded=False``.
    ``score`` is the support of the best cited passage (0..1).  Refusals are ``no_answer``.
    """
    reply = raw.strip().split("\n", 1)[0]  # one-line answers: later lines are rambling
    text = clean_reply(strip_citations(reply))
    if not passages or is_refusal(text):
        return Answer("", 0.0, reader, no_answer=True, grounded=False,
                      alternatives=[{"raw": raw}])
    cited = [n for n in parse_citations(reply, len(passages))
             if support(text, passages[n - 1].text) >= SUPPORT_THRESHOLD]
    numbers = cited or supporting_passages(text, passages)
    score = max((support(text, passages[n - 1].text) for n in numbers), default=0.0)
    return Answer(
        answer=text,
        score=score,
        reader=reader,
        citations=to_citations(numbers, passages),
        grounded=bool(numbers),
        alternatives=[{"raw": raw, "cited_by_model": bool(cited)}],
    )
