"""Collect the generative reader's ablation arms (``gen_ablation_arms.sh``) into one table.

Each arm is a `rag_qa train generative` output folder; its metrics.json holds the training time
and the generation scores on the shared dev questions.  Prints a Markdown table (for the card and
the README) and writes the rows as JSON.

    python benchmarks/gen_ablation.py runs/gen-ablation/smollm2 runs/gen-ablation/gemma3 \
        [--out benchmarks/results/gen_ablation.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("exact_match", "f1", "rouge_l", "bleu", "citation_accuracy", "refusals_gold_removed",
           "false_refusals", "latency_p50_s", "tokens_per_s")


def row(arm: Path) -> dict:
    metrics = json.loads((arm / "metrics.json").read_text())
    final = metrics.get("final_eval") or {}
    steps = max(metrics["global_steps"], 1)
    return {"arm": arm.name, "base": metrics["base"], "steps": metrics["global_steps"],
            "prompts": metrics["prompts_seen"], "s_per_prompt": metrics["seconds"] / max(metrics["prompts_seen"], 1),
            "s_per_step": metrics["seconds"] / steps, "hardware": metrics["hardware"],
            **{k: final.get(k) for k in COLUMNS}}


def table(rows: list[dict]) -> str:
    head = ("| base | steps x prompts | s / prompt | EM | F1 | ROUGE-L | BLEU | citations | refusals (gold removed) "
            "| false refusals | p50 latency |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['base']} | {r['steps']} x {r['prompts'] // max(r['steps'], 1)} | {r['s_per_prompt']:.2f} | "
        f"{r['exact_match']:.1f} | {r['f1']:.1f} | {r['rouge_l']:.1f} | {r['bleu']:.1f} | "
        f"{r['citation_accuracy']:.1f}% | {r['refusals_gold_removed']:.1f}% | {r['false_refusals']:.1f}% | "
        f"{r['latency_p50_s']:.2f} s |\n" for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arms", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = [row(a) for a in args.arms if (a / "metrics.json").is_file()]
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "table": table(rows)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
