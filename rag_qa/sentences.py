"""Sentences of a passage, and windows of whole sentences: how long passages are cut to size.

Training cuts SQuAD paragraphs to the size of ingest's chunks around the answer
(:mod:`rag_qa.train.gen_data`); the generative reader cuts retrieved passages to the sentences
around the one most like the question (:func:`focus`), so a small LLM reads fewer tokens.
A leaf module: standard library only.
"""

from __future__ import annotations

import re

# a sentence ends at . ! or ? (optionally closed by a quote or bracket) followed by space
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"')\]]?)\s+")
_WORD = re.compile(r"\w+")
_STOPWORD_TEXT = ("a an the of in on at to for from by with and or is are was were be been it its this that these "
                  "those as which who whom what when where why how did do does many much")
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
#: words per passage at most where training cuts paragraphs: ingest's chunks hold ~200 MiniLM tokens,
#: about 150 English words
MAX_PASSAGE_WORDS = 150


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
    start, end = trim_span(text, keep, max_words)
    return text[start:end]


def trim_span(text: str, keep: tuple[int, int] | None, max_words: int) -> tuple[int, int]:
    """Where :func:`trim_passage`'s cut of ``text`` around ``keep`` lies in ``text``: ``(start, end)``."""
    if len(text.split()) <= max_words:
        return 0, len(text)
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
        return 0, len(text)  # the answer spans a sentence break the splitter did not expect: keep it all
    return spans[lo][0], spans[hi][1]


def _content_words(text: str) -> set[str]:
    return {w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOPWORDS}


def focus(question: str, text: str, max_words: int) -> tuple[int, int]:
    """The span ``(start, end)`` of ``text`` to read for ``question``: whole sentences, at most ``max_words``
    words, around the sentence sharing the most content words with the question (the passage's first
    sentence on a tie).  The whole text when it fits or ``max_words`` is 0."""
    if max_words <= 0 or len(text.split()) <= max_words:
        return 0, len(text)
    spans = sentence_spans(text)
    if not spans:
        return 0, len(text)
    asked = _content_words(question)
    best = max(range(len(spans)), key=lambda i: (len(asked & _content_words(text[slice(*spans[i])])), -i))
    return trim_span(text, spans[best], max_words)

