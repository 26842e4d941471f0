"""Collect the generative reader's ablation arms (``gen_ablation_arms.sh``) into one table.

Each arm is a `rag_qa train generative` output folder; its metrics.json holds the training time
and the generation scores on the shared dev questions.  Prints a Markdown table (for the card and
the README) and writes the rows as JSON.

    python benchmarks/gen_ablation.py runs/gen-ablation/smollm2 runs/gen-ablation/gemma3 \
        [--out benchmarks/results/gen_ablation.json] [--card models/gemma3-squad-lora/README.md]

``--card`` writes the table into a model card as its "Base-model ablation" section (replacing an
earlier one), since the card is where a reader of the adapter looks for why this base.
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


SECTION = "## Base-model ablation"


def with_ablation(card: str, rows: list[dict]) -> str:
    """``card`` with its ablation section set to ``rows``' table (anything after that section is kept)."""
    hardware = sorted({r["hardware"] for r in rows})
    section = (f"{SECTION}\n\nSame budget per base (steps x prompts, same training prompts), scored by generation "
               f"on the same 200 dev questions (gold + 2 same-article distractors) and the same 200 with the gold "
               f"passage removed; `benchmarks/gen_ablation_arms.sh`, {', '.join(hardware)}. Seconds per prompt "
               f"were measured on shared cores: compare them within a row's run only.\n\n{table(rows)}")
    head, found, tail = card.partition(SECTION)
    rest = tail.split("\n## ", 1)[1] if found and "\n## " in tail else ""
    return head.rstrip() + "\n\n" + section + (f"\n## {rest}" if rest else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arms", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--card", type=Path, default=None, help="model card to write the table into")
    args = parser.parse_args(argv)
    rows = [row(a) for a in args.arms if (a / "metrics.json").is_file()]
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "table": table(rows)}, indent=2) + "\n")
    if args.card:
        args.card.write_text(with_ablation(args.card.read_text(), rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
