"""Fit how the extractive reader ranks and scores answers, on real retrieval results, and store it beside the weights.

For a seeded sample of SQuAD dev questions asked end to end (hybrid top-5 over the dev articles),
every candidate span of every retrieved passage is kept with its margin (span score minus its
window's null score) and its passage's retrieval rank.  Two things are fitted on that sample:

* ``rank_weight``: candidates are ranked by ``margin - rank_weight * log(1 + rank)``; the weight
  with the best exact match on the fitting sample wins (0 = the reader's margin alone);
* the confidence: a logistic fit ``p = sigmoid(a * score + b)`` of whether the chosen answer is
  right (F1 >= 0.5), so the no-answer threshold is a probability.

Both are then checked on a *disjoint* held-out sample: exact match with and without the rank
term, expected calibration error, and the share of right answers the 0.3 no-answer cut would
throw away.  The result goes to ``<model>/calibration.json``.

    python benchmarks/calibrate_reader.py [--questions 400] [--holdout 400] [--model models/minilm-squad]
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from rag_qa.config import Settings  # noqa: E402
from rag_qa.eval.corpus import corpus_index, corpus_questions  # noqa: E402
from rag_qa.readers.extractive import ExtractiveConfig, ExtractiveReader  # noqa: E402
from rag_qa.retrieval import passages as to_passages  # noqa: E402
from rag_qa.service import QAService  # noqa: E402
from rag_qa.squad_metrics import exact_match, f1, max_over_truths  # noqa: E402


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 50) -> tuple[float, float]:
    """1-d logistic regression by Newton's method on the standardised margin, from zero (the
    log-likelihood is concave, so this converges; a small ridge keeps it finite if separable)."""
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    z = (x - mu) / sd
    w_ = np.zeros(2)  # slope, intercept on z
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(w_[0] * z + w_[1])))
        w = p * (1 - p)
        grad = np.array([np.sum((p - y) * z) + 1e-2 * w_[0], np.sum(p - y)])
        hess = np.array([[np.sum(w * z * z) + 1e-2, np.sum(w * z)], [np.sum(w * z), np.sum(w) + 1e-9]])
        w_ = w_ - np.linalg.solve(hess, grad)
    return float(w_[0] / sd), float(w_[1] - w_[0] * mu / sd)


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    return float(sum(abs(p[idx == i].mean() - y[idx == i].mean()) * (idx == i).mean()
                     for i in range(bins) if (idx == i).any()))


def candidate_table(reader, retriever, questions, batch: int = 16) -> list[list[tuple[float, int, bool, bool]]]:
    """Per question, every candidate as (margin, passage rank, exact match, F1 >= 0.5)."""
    out = []
    for i in tqdm(range(0, len(questions), batch), desc="reading", unit="batch"):
        chunk = questions[i : i + batch]
        retrieved = [to_passages(d) for d in retriever.batch([q.question for q in chunk])]
        for q, cands in zip(chunk, reader.candidates([q.question for q in chunk], retrieved), strict=True):
            rows = []
            for span, passage, rank in cands:
                text = passage.text[span.start : span.end]
                rows.append((span.margin, rank, bool(max_over_truths(exact_match, text, q.answers)),
                             max_over_truths(f1, text, q.answers) >= 0.5))
            out.append(rows)
    return out


def choose(table, rank_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The winning candidate of each question under ``rank_weight``: (score, exact, right) arrays."""
    score, exact, right = [], [], []
    for rows in table:
        if not rows:
            score.append(-1e9), exact.append(False), right.append(False)
            continue
        best = max(rows, key=lambda r: r[0] - rank_weight * math.log1p(r[1]))
        score.append(best[0] - rank_weight * math.log1p(best[1])), exact.append(best[2]), right.append(best[3])
    return np.array(score), np.array(exact, dtype=float), np.array(right, dtype=float)


def _previous_fit(path: Path, hold_t, threshold: float) -> dict | None:
    """ECE and abstentions of the calibration already beside the weights, on this run's holdout."""
    try:
        old = json.loads(path.read_text())
        a, b, weight = float(old["a"]), float(old["b"]), float(old.get("rank_weight", 0.0))
    except (OSError, ValueError, KeyError):
        return None
    hx, h_exact, hy = choose(hold_t, weight)
    p = 1 / (1 + np.exp(-(a * hx + b)))
    return {"a": a, "b": b, "rank_weight": weight, "ece": round(expected_calibration_error(p, hy), 4),
            "exact_match": round(100 * float(h_exact.mean()), 2),
            "false_abstentions": round(float(((p < threshold) & (hy == 1)).mean()), 4),
            "abstentions": round(float((p < threshold).mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"))
    ap.add_argument("--model", default=str(REPO / "models" / "minilm-squad"))
    ap.add_argument("--questions", type=int, default=400, help="questions the fit uses")
    ap.add_argument("--holdout", type=int, default=400, help="other questions the fit is checked on")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--rank-weights", default="0,0.5,1,1.5,2,3,4,6")
    ap.add_argument("--threshold", type=float, default=0.3, help="the no-answer cut to report on")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    settings = Settings()
    _, index = corpus_index(args.data, settings.embedding_model)
    questions = corpus_questions(args.data, None)
    sample = random.Random(args.seed).sample(questions, min(args.questions + args.holdout, len(questions)))
    fit_q, hold_q = sample[: args.questions], sample[args.questions :]
    retriever = QAService(index, settings).retriever("hybrid", args.top_k)
    reader = ExtractiveReader(ExtractiveConfig(model=args.model, no_answer_threshold=0.0, rank_weight=0.0,
                                               calibration=(1.0, 0.0)))
    fit_t, hold_t = candidate_table(reader, retriever, fit_q), candidate_table(reader, retriever, hold_q)

    weights = [float(w) for w in args.rank_weights.split(",")]
    em_by_weight = {w: float(choose(fit_t, w)[1].mean()) for w in weights}
    best_em = max(em_by_weight.values())
    rank_weight = min(w for w, em in em_by_weight.items() if em >= best_em - 1e-12)  # ties: the smaller weight
    x, _, y = choose(fit_t, rank_weight)
    a, b = fit_logistic(x, y)
    hx, h_exact, hy = choose(hold_t, rank_weight)
    p_hold = 1 / (1 + np.exp(-(a * hx + b)))
    _, h_exact0, _ = choose(hold_t, 0.0)
    previous = _previous_fit(Path(args.model, "calibration.json"), hold_t, args.threshold)
    pairs = REPO / "benchmarks" / "results" / "calibration_pairs.json"
    pairs.parent.mkdir(parents=True, exist_ok=True)
    pairs.write_text(json.dumps({"score": x.round(4).tolist(), "right": y.tolist(), "rank_weight": rank_weight}))
    out = {
        "a": round(a, 4), "b": round(b, 4), "rank_weight": rank_weight,
        "questions": len(fit_q), "holdout_questions": len(hold_q), "accuracy": round(float(y.mean()), 4),
        "ece_fitted": round(expected_calibration_error(1 / (1 + np.exp(-(a * x + b))), y), 4),
        "ece_holdout": round(expected_calibration_error(p_hold, hy), 4),
        "exact_match_by_rank_weight": {str(w): round(100 * em, 2) for w, em in em_by_weight.items()},
        "holdout_exact_match": round(100 * float(h_exact.mean()), 2),
        "holdout_exact_match_without_rank": round(100 * float(h_exact0.mean()), 2),
        # right answers (F1 >= 0.5) that the no-answer cut would have thrown away, on the holdout
        "holdout_false_abstentions": round(float(((p_hold < args.threshold) & (hy == 1)).mean()), 4),
        "holdout_abstentions": round(float((p_hold < args.threshold).mean()), 4),
        "threshold": args.threshold,
        "data": Path(args.data).name, "retrieval": f"hybrid top-{args.top_k}", "right_if": "F1 >= 0.5",
    }
    if previous:  # the fit this one replaces, on the same holdout: did ECE or false abstentions get worse?
        out["previous_fit_on_holdout"] = previous
    Path(args.model, "calibration.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
