"""Fit the extractive reader's confidence on real retrieval results and store it beside the weights.

For a deterministic sample of SQuAD dev questions asked end to end (hybrid top-5 over the dev
articles), the best span's margin (span score minus its window's null score) is paired with
whether the answer is right (F1 >= 0.5).  A logistic fit, ``p = sigmoid(a * margin + b)``, turns
margins into a probability of being right; it goes to ``<model>/calibration.json``.

    python benchmarks/calibrate_reader.py [--questions 400] [--model models/minilm-squad]
"""

from __future__ import annotations

import argparse
import json
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
from rag_qa.squad_metrics import f1, max_over_truths  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"))
    ap.add_argument("--model", default=str(REPO / "models" / "minilm-squad"))
    ap.add_argument("--questions", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    settings = Settings()
    _, index = corpus_index(args.data, settings.embedding_model)
    questions = corpus_questions(args.data, None)
    questions = random.Random(args.seed).sample(questions, min(args.questions, len(questions)))
    service = QAService(index, settings)
    retriever = service.retriever("hybrid", 5)
    reader = ExtractiveReader(ExtractiveConfig(model=args.model, no_answer_threshold=0.0))
    margins, right = [], []
    for i in tqdm(range(0, len(questions), 16), desc="calibrating", unit="batch"):
        batch = questions[i : i + 16]
        retrieved = [to_passages(d) for d in retriever.batch([q.question for q in batch])]
        for q, ps in zip(batch, retrieved, strict=True):
            # the reader's own ranking; keep the winning span's margin
            ans = reader.read(q.question, ps)
            if not ans.alternatives:
                continue
            best = ans.alternatives[0]
            margins.append(best["margin"])
            right.append(float(max_over_truths(f1, best["answer"], q.answers) >= 0.5))
    x, y = np.array(margins), np.array(right)
    pairs = REPO / "benchmarks" / "results" / "calibration_pairs.json"
    pairs.write_text(json.dumps({"margin": margins, "right": right}))
    a, b = fit_logistic(x, y)
    before = 1 / (1 + np.exp(-(0.5 * x - 4.0)))
    after = 1 / (1 + np.exp(-(a * x + b)))
    out = {"a": round(a, 4), "b": round(b, 4), "questions": len(y), "accuracy": round(float(y.mean()), 4),
           "ece_default": round(expected_calibration_error(before, y), 4),
           "ece_fitted": round(expected_calibration_error(after, y), 4),
           "data": Path(args.data).name, "retrieval": "hybrid top-5", "right_if": "F1 >= 0.5"}
    Path(args.model, "calibration.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
