"""Official SQuAD v1.1 / v2.0 answer normalisation, Exact Match and F1.

Re-implemented from the official evaluation scripts (``evaluate.load`` would fetch
metric code from the hub at run time). Tests pin it on hand-computed cases.  A leaf module
(standard library only): readers, training and evaluation all score with it.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Iterable, Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    """Token-level F1 of the normalised strings (v2.0 rule: empty vs empty scores 1)."""
    pred_tokens = normalize_answer(prediction).split()
    true_tokens = normalize_answer(truth).split()
    if not pred_tokens or not true_tokens:
        return float(pred_tokens == true_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(true_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(true_tokens)
    return 2 * precision * recall / (precision + recall)


def max_over_truths(metric, prediction: str, truths: Sequence[str]) -> float:
    """Best score against any gold answer; an unanswerable question has truths == [""]."""
    truths = list(truths) or [""]
    return max(metric(prediction, t) for t in truths)


def squad_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> dict[str, float | int]:
    """EM/F1 (percent) over the questions in ``references``; missing predictions count as "".

    For SQuAD v2.0 pass ``[]`` as the gold answers of unanswerable questions: they then
    score 1 only for an empty prediction, and HasAns/NoAns splits are added.
    """
    em_by_id, f1_by_id = {}, {}
    for qid, truths in references.items():
        pred = predictions.get(qid, "")
        em_by_id[qid] = max_over_truths(exact_match, pred, truths)
        f1_by_id[qid] = max_over_truths(f1, pred, truths)
    out: dict[str, float | int] = _summary(em_by_id, f1_by_id, references.keys())
    has_ans = [q for q, t in references.items() if len(t) > 0]
    no_ans = [q for q, t in references.items() if len(t) == 0]
    if no_ans:
        for name, ids in (("HasAns", has_ans), ("NoAns", no_ans)):
            part = _summary(em_by_id, f1_by_id, ids)
            out[f"{name}_exact"] = part["exact_match"]
            out[f"{name}_f1"] = part["f1"]
            out[f"{name}_total"] = part["n"]
    return out


def _summary(em_by_id: Mapping[str, float], f1_by_id: Mapping[str, float], ids: Iterable[str]):
    ids = list(ids)
    n = len(ids)
    if n == 0:
        return {"exact_match": 0.0, "f1": 0.0, "n": 0}
    return {
        "exact_match": 100.0 * sum(em_by_id[i] for i in ids) / n,
        "f1": 100.0 * sum(f1_by_id[i] for i in ids) / n,
        "n": n,
    }


def best_null_threshold(
    predictions: Mapping[str, str],
    null_margins: Mapping[str, float],
    references: Mapping[str, Sequence[str]],
    metric=f1,
) -> tuple[float, float]:
    """The no-answer threshold that maximises the metric (official v2.0 ``find_best_thresh``).

    ``null_margins[qid]`` is how much the null score beats the best span (higher = more
    likely unanswerable). Predicting "no answer" when margin > threshold; returns
    (best score in percent, threshold).
    """
    scores = {q: max_over_truths(metric, predictions.get(q, ""), t) for q, t in references.items()}
    # Start with "answer everything"; walk thresholds from the most confident no-answer down.
    order = sorted((q for q in references if q in null_margins), key=lambda q: -null_margins[q])
    cur = sum(scores.values())
    best, best_thresh = cur, float("inf")
    for i, qid in enumerate(order):
        # switching this question to "no answer": gains 1 if unanswerable, loses its score otherwise
        cur += (0.0 if references[qid] else 1.0) - scores[qid]
        margin = null_margins[qid]
        below = null_margins[order[i + 1]] if i + 1 < len(order) else float("-inf")
        if below == margin:
            continue  # no threshold splits equal margins: cut after the whole tie
        if cur > best:
            # strictly between this margin and the next, so "margin > threshold" abstains on exactly these
            best, best_thresh = cur, (margin + below) / 2 if below > float("-inf") else margin - 1.0
    n = max(len(references), 1)
    return 100.0 * best / n, best_thresh


def rouge_l(prediction: str, truth: str) -> float:
    """ROUGE-L F-measure over normalised tokens (longest common subsequence), for generative answers."""
    a, b = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not a or not b:
        return float(a == b)
    # classic O(len(a) * len(b)) LCS table, one row at a time
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)
