"""Distractor passages: what open-domain reading looks like, added to SQuAD-style training data.

SQuAD gives every question the one paragraph that answers it, but at run time the reader sees
five retrieved passages, most of which do not.  For each question we add the paragraphs of the
*same article* that BM25 ranks highest for it and that do not hold a gold answer: on-topic text
with the question's words in it, which is exactly what retrieval hands the reader.  Each one is
an unanswerable example, so all its windows are labelled "no answer" (CLS) and the reader learns
to keep its null score above every span of a passage that does not answer.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag_qa.qa_data import DataError, QAExample
from rag_qa.squad_metrics import normalize_answer


def holds_answer(paragraph: str, answers: Sequence[str], _forms: tuple[str, str] | None = None) -> bool:
    """Does ``paragraph`` contain any of ``answers``, raw (case-insensitive) or after SQuAD
    normalisation (word boundaries, no punctuation/articles)?  Either way it is no distractor."""
    lowered, normal = _forms or _searchable(paragraph)
    for a in answers:
        if a.strip() and a.strip().lower() in lowered:
            return True
        na = normalize_answer(a)
        if na and f" {na} " in normal:
            return True
    return False


def _searchable(paragraph: str) -> tuple[str, str]:
    return paragraph.lower(), f" {normalize_answer(paragraph)} "


def add_distractors(examples: Sequence[QAExample], per_question: int = 1, pool: int = 5,
                    seed: int = 0) -> list[tuple[int, QAExample]]:
    """Distractor examples for answerable ``examples``: ``(question index, unanswerable example)``.

    For each question, the article's other paragraphs are ranked by BM25 against the question;
    of the top ``pool`` that hold no gold answer, ``per_question`` are drawn (seeded), so the
    reader sees the hardest on-topic negatives without always the very same one.
    """
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    rng = random.Random(seed)
    by_article: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        if ex.answers:
            by_article[ex.title or ex.context[:64]].append(i)
    out: list[tuple[int, QAExample]] = []
    for _, idxs in sorted(by_article.items()):
        paragraphs = list(dict.fromkeys(examples[i].context for i in idxs))
        if len(paragraphs) < 2:
            continue
        forms = [_searchable(p) for p in paragraphs]
        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenize(paragraphs, stopwords="en", show_progress=False), show_progress=False)
        vocab = bm25.vocab_dict
        tokenized = bm25s.tokenize([examples[i].question for i in idxs], stopwords="en", return_ids=False,
                                   show_progress=False)
        for i, query in zip(idxs, tokenized, strict=True):
            ex = examples[i]
            query = [t for t in query if t in vocab]
            scores = np.asarray(bm25.get_scores(query), dtype=float) if query else np.zeros(len(paragraphs))
            order = np.argsort(-scores, kind="stable")
            gold = [a["text"] for a in ex.answers]
            candidates = []
            for j in order:
                if paragraphs[j] != ex.context and not holds_answer(paragraphs[j], gold, forms[j]):
                    candidates.append(paragraphs[j])
                    if len(candidates) == pool:
                        break
            for n, text in enumerate(rng.sample(candidates, min(per_question, len(candidates)))):
                out.append((i, QAExample(f"{ex.id}#d{n}", ex.question, text, [], ex.title)))
    return out


def _paragraphs_by_article(examples: Sequence[QAExample]) -> dict[str, list[str]]:
    by_article: dict[str, list[str]] = defaultdict(list)
    for ex in examples:
        paras = by_article[ex.title or ex.context[:64]]
        if ex.context not in paras:
            paras.append(ex.context)
    return by_article


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def save_distractors(path: str | Path, examples: Sequence[QAExample], pairs: Sequence[tuple[int, QAExample]]) -> None:
    """Write the chosen distractors as (question id, article, paragraph digest) -- a few MB of gzipped JSON
    instead of the paragraph texts, so they travel to a machine without bm25s.  A digest, not a position,
    so the rows mean the same paragraphs whatever subset or order of the examples reads them back."""
    rows = [[examples[qi].id, examples[qi].title or examples[qi].context[:64], _digest(d.context)] for qi, d in pairs]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump({"version": 2, "rows": rows}, fh)


def load_distractors(path: str | Path, examples: Sequence[QAExample]) -> list[tuple[int, QAExample]]:
    """The ``(question index, distractor example)`` pairs saved by :func:`save_distractors`, for the questions
    of ``examples`` (a subset keeps those whose distractor paragraph it still holds)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        saved = json.load(fh)
    if saved.get("version") != 2:
        raise DataError(f"{path}: distractor choices of an older format; pack them again")
    paragraphs = {title: {_digest(p): p for p in paras} for title, paras in _paragraphs_by_article(examples).items()}
    position = {ex.id: i for i, ex in enumerate(examples)}
    out, seen = [], defaultdict(int)
    for qid, title, digest in saved["rows"]:
        text = paragraphs.get(title, {}).get(digest)
        if qid not in position or text is None:
            continue
        qi = position[qid]
        ex = examples[qi]
        out.append((qi, QAExample(f"{qid}#d{seen[qid]}", ex.question, text, [], ex.title)))
        seen[qid] += 1
    return out
