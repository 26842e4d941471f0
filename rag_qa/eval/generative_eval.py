"""Scoring a generative reader on SQuAD-shaped prompts: EM, F1, ROUGE-L, BLEU, citations, refusals, speed.

Each item is a question with numbered passages whose gold number is known
(:func:`rag_qa.train.gen_data.eval_items`): the gold paragraph and two same-article distractors,
and the same question with the gold paragraph removed.  What is measured:

- EM / F1 (official SQuAD normalisation) and ROUGE-L on the answered items, refusals scoring 0;
- BLEU: ``sacrebleu``'s corpus BLEU over the answers (references: every gold answer);
- citation accuracy: of the answers citing a passage, the share whose first citation is the gold
  passage, both as the user sees it (after :func:`~rag_qa.readers.grounding.ground_answer`) and as
  the model wrote it (``[n]`` in the raw reply).  A wrong answer taken from a distractor counts
  against it too, so two more split the answer's errors from the citation's: of the right answers
  (exact match), the share citing the gold passage; and of all cited answers, the share whose cited
  passage holds the answer's words (the citation is faithful to the answer, right or wrong);
- refusals on gold-removed items (should be high) and false refusals when the gold is there (low);
- where the misses come from (:func:`miss_kinds`): a false refusal, a span overlapping the gold answer
  (too long or too short), another span of the gold passage, a distractor's words, words of no passage;
- generated tokens, latency, and tokens per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

from rag_qa.readers.base import Reader
from rag_qa.readers.grounding import parse_citations
from rag_qa.squad_metrics import exact_match, max_over_truths, normalize_answer, rouge_l, squad_scores
from rag_qa.squad_metrics import f1 as token_f1
from rag_qa.train.gen_data import GenItem
from rag_qa.types import Answer


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def bleu(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (sacrebleu, 13a tokenisation, lower-cased) of ``predictions`` against every reference."""
    import sacrebleu

    width = max((len(r) for r in references), default=1)
    streams = [[refs[min(k, len(refs) - 1)] if refs else "" for refs in references] for k in range(width)]
    return float(sacrebleu.corpus_bleu(list(predictions), streams, lowercase=True).score)


def cited_numbers(item: GenItem, answer: Answer) -> list[int]:
    """The numbers ([1]..[n]) of the item's passages that ``answer`` cites, in its order (0: a text not among them).
    A reader that cuts its passages (``passage_words``) cites the cut, which lies inside the passage it came from."""
    return [next((n for n, p in enumerate(item.passages, 1) if p == c.text), 0)
            or next((n for n, p in enumerate(item.passages, 1) if c.text and c.text in p), 0)
            for c in answer.citations]


def _holds(passage: str, text: str) -> bool:
    """Whether ``passage`` contains ``text``'s words in order (SQuAD normalisation: case, punctuation, articles)."""
    words = normalize_answer(text)
    return bool(words) and f" {words} " in f" {normalize_answer(passage)} "


def miss_kinds(rows: Sequence[dict[str, Any]], passages: dict[str, Sequence[str]]) -> dict[str, float]:
    """Of the gold questions, the share (%) missed in each way: refused; a span overlapping a gold answer (F1 > 0:
    its edges are off); other words of the gold passage; words of a distractor only; words of no passage.
    Tells which lever could pay: the refusal threshold, the span's edges, reading, picking the passage, copying."""
    kinds = dict.fromkeys(("false_refusal", "partial_span", "gold_passage_span", "distractor_span", "not_copied"), 0)
    for r in rows:
        shown = passages[r["id"]]
        if r["no_answer"]:
            kinds["false_refusal"] += 1
        elif max_over_truths(exact_match, r["prediction"], r["answers"]):
            continue
        elif max_over_truths(token_f1, r["prediction"], r["answers"]) > 0:
            kinds["partial_span"] += 1
        elif _holds(shown[r["gold"] - 1], r["prediction"]):
            kinds["gold_passage_span"] += 1
        elif any(_holds(p, r["prediction"]) for p in shown):
            kinds["distractor_span"] += 1
        else:
            kinds["not_copied"] += 1
    return {k: 100 * v / max(len(rows), 1) for k, v in kinds.items()}


def evaluate_items(reader: Reader, with_gold: Sequence[GenItem], without_gold: Sequence[GenItem] = (), *,
                   parse: Callable[[str], str] | None = None, count_tokens: Callable[[str], int] | None = None,
                   progress: bool = True, keep_rows: bool = False) -> dict[str, Any]:
    """Run ``reader`` over the items and score it (see the module docstring).

    ``parse`` turns a raw reply into the answer text when a prompt format asks for more than the answer
    (chain-of-thought, quote-then-answer); by default the reader's own grounded answer is scored.
    """
    reader.warm_up()
    rows: list[dict[str, Any]] = []
    items = [*with_gold, *without_gold]
    for item in tqdm(items, desc="generating", disable=not progress, unit="q"):
        t0 = time.perf_counter()
        answer: Answer = reader.read(item.question, item.as_passages())
        seconds = time.perf_counter() - t0
        raw = answer.alternatives[0].get("raw", answer.answer) if answer.alternatives else answer.answer
        text = answer.answer if parse is None else parse(raw)
        no_answer = answer.no_answer if parse is None else not text
        model_cited = parse_citations(raw, len(item.passages))
        shown = cited_numbers(item, answer)
        rows.append({"id": item.id, "gold": item.gold, "answers": list(item.answers), "prediction": "" if no_answer
                     else text, "no_answer": no_answer, "raw": raw, "cited": shown, "model_cited": model_cited,
                     "seconds": seconds, "tokens": count_tokens(raw) if count_tokens else None})
    answered = [r for r in rows if r["gold"] is not None]
    removed = [r for r in rows if r["gold"] is None]
    predictions = {r["id"]: r["prediction"] for r in answered}
    references = {r["id"]: r["answers"] for r in answered}
    scores = squad_scores(predictions, references) if answered else {"exact_match": 0.0, "f1": 0.0}
    spoke = [r for r in answered if not r["no_answer"]]
    cited = [r for r in spoke if r["cited"]]
    right = [r for r in cited if max_over_truths(exact_match, r["prediction"], r["answers"])]
    passages = {item.id: item.passages for item in with_gold}
    model_cited = [r for r in spoke if r["model_cited"]]
    latencies = [r["seconds"] for r in rows]
    tokens = [r["tokens"] for r in rows if r["tokens"] is not None]
    result: dict[str, Any] = {
        "n": len(answered),
        "n_gold_removed": len(removed),
        "exact_match": scores["exact_match"],
        "f1": scores["f1"],
        "rouge_l": 100 * sum(max_over_truths(rouge_l, r["prediction"], r["answers"]) for r in answered)
        / max(len(answered), 1),
        "bleu": bleu([r["prediction"] for r in answered], [r["answers"] for r in answered]) if answered else 0.0,
        "citation_accuracy": 100 * sum(r["cited"][0] == r["gold"] for r in cited) / len(cited) if cited else 0.0,
        "citation_accuracy_right_answers": 100 * sum(r["cited"][0] == r["gold"] for r in right) / len(right)
        if right else 0.0,
        "citation_supported": 100 * sum(r["cited"][0] > 0 and _holds(passages[r["id"]][r["cited"][0] - 1],
                                                                      r["prediction"]) for r in cited) / len(cited)
        if cited else 0.0,
        "cited_share": 100 * len(cited) / max(len(spoke), 1),
        "model_citation_accuracy": 100 * sum(r["model_cited"][0] == r["gold"] for r in model_cited)
        / len(model_cited) if model_cited else 0.0,
        "model_cited_share": 100 * len(model_cited) / max(len(spoke), 1),
        "refusals_gold_removed": 100 * sum(r["no_answer"] for r in removed) / len(removed) if removed else None,
        "false_refusals": 100 * sum(r["no_answer"] for r in answered) / max(len(answered), 1),
        "misses": miss_kinds(answered, passages),
        "latency_p50_s": _percentile(latencies, 50),
        "latency_p95_s": _percentile(latencies, 95),
        "tokens_mean": sum(tokens) / len(tokens) if tokens else None,
        "tokens_per_s": sum(tokens) / sum(latencies) if tokens and sum(latencies) else None,
    }
    result["examples"] = [{k: r[k] for k in ("id", "answers", "raw", "prediction")} for r in rows[:5]]
    if keep_rows:  # every question's reply, for reading the misses one by one
        result["rows"] = rows
    return result
