"""Refusal by score (issue 22): the generative reader's refusals against its false refusals as the threshold moves.

    .venv/bin/python benchmarks/refusal_threshold.py [--data dev-v1.1-public.json] [--fit 200] [--limit 200]

The tuned reader (``models/gemma3-squad-lora``) reads two disjoint samples of SQuAD dev questions, each with
its gold paragraph and two same-article BM25 distractors and again with the gold paragraph removed
(:func:`rag_qa.train.gen_data.eval_items`): ``fit`` picks the threshold, ``check`` (the 200 questions every
generative score in this project is measured on) reports it.  Each prompt is read once with the refusal
ruled out at the first token (threshold above 1) while :class:`rag_qa.readers.refusal.RefusalThreshold`
notes the refusal's first-token probability p.  At a threshold t the reader refuses where p >= t and gives
that answer elsewhere, so the one pass scores every threshold.

Kept: the threshold with the best F1 on the fit sample among those with at least 80% refusals (gold
removed) and at most 10% false refusals.  Writes ``benchmarks/results/refusal_threshold.json`` (every
prompt's p and answer, so the choice can be redone) and a chart beside it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from rag_qa.env import set_offline_defaults

set_offline_defaults()

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
RESULTS = REPO / "benchmarks" / "results"
MIN_REFUSALS, MAX_FALSE_REFUSALS = 80.0, 10.0  # issue 22's targets
THRESHOLDS = [round(0.02 * i, 2) for i in range(1, 50)]  # 0.02 .. 0.98


def samples(data: Path, fit: int, check: int) -> tuple[list, list]:
    """(fit items, check items), each the answerable questions followed by the same with the gold removed."""
    from rag_qa.qa_data import load_examples
    from rag_qa.train.distractors import add_distractors
    from rag_qa.train.gen_data import eval_items, gold_removed

    examples, _ = load_examples(str(data))
    distractors = add_distractors(examples, 2, 3, seed=0)
    checked, _ = eval_items(examples, distractors, check)  # the standard sample (seed 11)
    every, _ = eval_items(examples, distractors, len(examples))  # same passages and order, all questions
    taken = {it.id for it in checked}
    rest = [it for it in every if it.id not in taken]
    fitted = sorted(random.Random(5).sample(rest, min(fit, len(rest))), key=lambda it: it.id)
    return [*fitted, *gold_removed(fitted)], [*checked, *gold_removed(checked)]


def read_all(reader: Any, items: list, label: str) -> list[dict]:
    """Every item read once with the refusal ruled out; its answer, citation and refusal probability."""
    from tqdm import tqdm

    from rag_qa.eval.generative_eval import cited_numbers
    from rag_qa.readers.refusal import recorded

    rules = recorded(reader.backend)  # each reply's rule, to read its p
    rows = []
    for item in tqdm(items, desc=label, unit="q"):
        t0 = time.perf_counter()
        answer = reader.read(item.question, item.as_passages())
        cited = cited_numbers(item, answer)
        rows.append({"id": item.id, "gold": item.gold, "answers": list(item.answers), "p": rules[-1].probabilities[0],
                     "no_answer": answer.no_answer, "prediction": "" if answer.no_answer else answer.answer,
                     "cited": cited, "seconds": round(time.perf_counter() - t0, 3)})
    return rows


def score(rows: list[dict], threshold: float) -> dict[str, float]:
    """The reader's scores had it refused where p >= threshold (and where it refused in words anyway)."""
    from rag_qa.squad_metrics import squad_scores

    answered = [r for r in rows if r["gold"] is not None]
    removed = [r for r in rows if r["gold"] is None]

    def refused(r: dict) -> bool:
        return r["p"] >= threshold or r["no_answer"]

    s = squad_scores({r["id"]: "" if refused(r) else r["prediction"] for r in answered},
                     {r["id"]: r["answers"] for r in answered})
    cited = [r for r in answered if not refused(r) and r["cited"]]
    return {"threshold": threshold, "exact_match": round(s["exact_match"], 2), "f1": round(s["f1"], 2),
            "refusals_gold_removed": round(100 * sum(map(refused, removed)) / max(len(removed), 1), 1),
            "false_refusals": round(100 * sum(map(refused, answered)) / max(len(answered), 1), 1),
            "citation_accuracy": round(100 * sum(r["cited"][0] == r["gold"] for r in cited) / max(len(cited), 1), 1)}


def choose(curve: list[dict]) -> dict | None:
    """The best F1 among the thresholds that meet both refusal targets (None: no threshold does)."""
    ok = [c for c in curve if c["refusals_gold_removed"] >= MIN_REFUSALS and c["false_refusals"] <= MAX_FALSE_REFUSALS]
    return max(ok, key=lambda c: (c["f1"], c["refusals_gold_removed"])) if ok else None


def chart(curve: list[dict], chosen: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [c["threshold"] for c in curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("f1", "F1 (answerable)"), ("refusals_gold_removed", "refusals, gold removed (%)"),
                       ("false_refusals", "false refusals (%)")):
        ax.plot(xs, [c[key] for c in curve], label=label)
    ax.axhline(MIN_REFUSALS, color="grey", linestyle=":", linewidth=1)
    ax.axhline(MAX_FALSE_REFUSALS, color="grey", linestyle=":", linewidth=1)
    if chosen:
        ax.axvline(chosen["threshold"], color="black", linestyle="--", linewidth=1,
                   label=f"chosen: {chosen['threshold']}")
    ax.set_xlabel("refuse when P(refusal's first token) >= threshold")
    ax.set_title("Generative reader: refusal threshold on the fit sample")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fit", type=int, default=200, help="questions that pick the threshold")
    parser.add_argument("--limit", type=int, default=200, help="questions the threshold is checked on")
    parser.add_argument("--adapter", default="gemma3-squad-lora")
    parser.add_argument("--out", type=Path, default=RESULTS / "refusal_threshold.json")
    args = parser.parse_args(argv)

    import torch

    from rag_qa.config import Settings
    from rag_qa.readers.generative import make_generative_reader

    fit_items, check_items = samples(args.data, args.fit, args.limit)
    reader = make_generative_reader(args.adapter, Settings(llm_refusal_threshold=1.01))  # never refuse: one pass
    reader.warm_up()
    fit_rows = read_all(reader, fit_items, "fit")
    check_rows = read_all(reader, check_items, "check")
    curve = [score(fit_rows, t) for t in THRESHOLDS]
    chosen = choose(curve)
    result = {
        "what": "refusal by score: one pass per prompt with the refusal ruled out, its first-token probability kept",
        "adapter": args.adapter, "precision": reader.backend.precision, "threads": torch.get_num_threads(),
        "fit_questions": args.fit, "check_questions": args.limit, "targets": {
            "min_refusals_gold_removed": MIN_REFUSALS, "max_false_refusals": MAX_FALSE_REFUSALS},
        "chosen": chosen, "check": score(check_rows, chosen["threshold"]) if chosen else None,
        "check_curve": [score(check_rows, t) for t in THRESHOLDS], "fit_curve": curve,
        "rows": {"fit": fit_rows, "check": check_rows},
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    chart(curve, chosen, args.out.with_suffix(".png"))
    print(json.dumps({"chosen": chosen, "check": result["check"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
