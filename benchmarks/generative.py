"""The generative reader, measured: prompt formats x models on the same SQuAD dev questions.

    .venv/bin/python benchmarks/generative.py [--limit 100] [--models base,tuned,smollm2] \
        [--styles terse,few-shot,cot,quote] [--adapter models/gemma3-squad-lora] \
        [--passage-words 60 --focus reader] [--dump DIR] [--json]

Every question is asked twice: with its gold paragraph and two same-article BM25 distractors in a
seeded order, and with the gold paragraph removed (``rag_qa.train.gen_data.dev_eval_items``, the
items the training run's own evaluation uses).  For each model (``base``: the adapter's base as released,
Gemma 3 270M; ``tuned``: that base with our LoRA adapter merged; ``smollm2``: SmolLM2-135M-Instruct)
and each prompt format
(:data:`rag_qa.readers.prompting.PROMPT_STYLES`: terse, few-shot, chain-of-thought, quote-then-answer)
it reports EM, F1, ROUGE-L, BLEU (sacrebleu), citation accuracy, refusals with the gold removed,
false refusals, tokens generated, p50 latency and tokens/s (``rag_qa.eval.generative_eval``).  The
extractive reader reads the same passages for comparison (``--no-extractive`` skips it).
Greedy decoding throughout, so a run is repeatable.  ``--passage-words N`` cuts every passage to N words
of whole sentences, around the sentence most like the question or (``--focus reader``) around the
extractive reader's best span in it, as ``RAGQA_LLM_PASSAGE_WORDS`` and ``RAGQA_LLM_FOCUS`` do when serving.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rag_qa.env import set_offline_defaults

set_offline_defaults()

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
DEFAULT_ADAPTER = REPO / "models" / "gemma3-squad-lora"
SHOWN = ("exact_match", "f1", "rouge_l", "bleu", "citation_accuracy", "citation_accuracy_right_answers",
         "citation_supported", "refusals_gold_removed", "false_refusals", "tokens_mean", "latency_p50_s",
         "tokens_per_s")


def backend(model: str, adapter: Path):
    """transformers backends, so the two models differ only by the adapter (llama.cpp not involved): fp32, the
    full vocabulary and no fp16 decode copies for every model (the tuned reader's serving shortcuts give the
    same answers faster, and would make its latency columns incomparable; benchmarks/gen_speed.py measures them)."""
    from rag_qa.config import Settings
    from rag_qa.readers.generative import make_backend

    settings = Settings(llm_backend="transformers", llm_precision="fp32", llm_vocab="full", llm_decode_weights="fp32")
    if model == "base":  # the tuned model's base as released: the name its adapter_config.json gives
        model = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    return make_backend(str(adapter) if model == "tuned" else model, settings)


def table(results: dict) -> str:
    """Markdown: one row per model x format (and the extractive reader)."""
    lines = ["| model | prompt | EM | F1 | ROUGE-L | BLEU | citations | refusals (gold removed) | false refusals "
             "| tokens | p50 | tokens/s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        if not isinstance(r, dict) or "f1" not in r:
            continue
        model, _, style = key.partition("/")
        tps = f"{r['tokens_per_s']:.1f}" if r.get("tokens_per_s") else "-"
        tokens = f"{r['tokens_mean']:.1f}" if r.get("tokens_mean") else "-"
        refusals = f"{r['refusals_gold_removed']:.0f}%" if r.get("refusals_gold_removed") is not None else "-"
        lines.append(f"| {model} | {style or '-'} | {r['exact_match']:.1f} | {r['f1']:.1f} | {r['rouge_l']:.1f} | "
                     f"{r['bleu']:.1f} | {r['citation_accuracy']:.0f}% | {refusals} | {r['false_refusals']:.0f}% | "
                     f"{tokens} | {r['latency_p50_s']:.2f} s | {tps} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=100, help="dev questions (each also asked without its gold)")
    parser.add_argument("--models", default="base,tuned,smollm2",
                        help="comma-separated: base (the adapter's base as released), tuned, or any generative name")
    parser.add_argument("--styles", default="terse,few-shot,cot,quote")
    parser.add_argument("--adapter", type=Path, default=DEFAULT_ADAPTER, help="the tuned model's LoRA adapter")
    parser.add_argument("--no-extractive", action="store_true", help="skip the extractive reader's run")
    parser.add_argument("--passage-words", type=int, default=0,
                        help="cut each passage to this many words of whole sentences (0: whole passages)")
    parser.add_argument("--focus", choices=("question", "reader"), default="question",
                        help="what picks the sentences --passage-words keeps (RAGQA_LLM_FOCUS)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "generative.json")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--dump", type=Path, help="also write every reply, one JSON line per question, to "
                        "DUMP/MODEL_FORMAT.jsonl (for reading the misses one by one)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"no SQuAD file at {args.data}; pass --data")

    import torch

    from rag_qa.config import Settings
    from rag_qa.eval.generative_eval import evaluate_items
    from rag_qa.readers.generative import GenerativeReader, focus_reader_for
    from rag_qa.readers.prompting import PROMPT_STYLES
    from rag_qa.readers.registry import get_reader
    from rag_qa.train.gen_data import dev_eval_items

    with_gold, without = dev_eval_items(str(args.data), args.limit)
    results: dict = {"n": len(with_gold), "data": args.data.name, "threads": torch.get_num_threads(),
                     "passage_words": args.passage_words, "focus": args.focus if args.passage_words else None}
    focus = focus_reader_for(Settings(llm_passage_words=args.passage_words, llm_focus=args.focus))
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        chat = backend(model, args.adapter)
        started = time.perf_counter()
        chat.load()
        results[f"{model}/load_s"] = round(time.perf_counter() - started, 1)
        for style in [s.strip() for s in args.styles.split(",") if s.strip()]:
            reader = GenerativeReader(chat, name=f"{model}/{style}", style=PROMPT_STYLES[style],
                                      passage_words=args.passage_words, focus_reader=focus)
            with torch.inference_mode():
                result = evaluate_items(reader, with_gold, without, count_tokens=chat.count_tokens,
                                        keep_rows=args.dump is not None)
            if args.dump:
                args.dump.mkdir(parents=True, exist_ok=True)
                rows = "".join(json.dumps(row) + "\n" for row in result.pop("rows"))
                (args.dump / f"{model}_{style}.jsonl").write_text(rows)
            results[f"{model}/{style}"] = result
            print(f"{model}/{style}: " + json.dumps({k: round(result[k], 2) for k in SHOWN
                                                    if result.get(k) is not None}), file=sys.stderr)
            misses = {k: round(v, 1) for k, v in result["misses"].items()}
            print(f"  misses (% of gold questions): {json.dumps(misses)}", file=sys.stderr)
            # written after every format: a study of hours keeps what it has measured if it is stopped
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_extractive:
        results["extractive"] = evaluate_items(get_reader("extractive"), with_gold, without)
    results["table"] = table(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results) if args.json else results["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
