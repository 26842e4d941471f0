"""`python -m rag_qa train [extractive|generative]`: fine-tune a reader.

``extractive`` (the default when no kind is named: ``rag_qa train --train ...``) fronts
:func:`rag_qa.train.trainer.train`; ``generative`` fronts
:func:`rag_qa.train.gen_trainer.train_generative`, its flags made from
:class:`rag_qa.train.gen_config.GenConfig`.  The parser imports nothing heavy (``rag_qa train
--help`` is instant, and this module loads where LangChain, FAISS and Gradio are not installed);
the trainers load when they run.
"""

from __future__ import annotations

import argparse

from rag_qa.cli.config_flags import add_config_flags
from rag_qa.train.gen_config import GenConfig

KINDS = ("extractive", "generative")


def default_kind(argv: list[str]) -> list[str]:
    """``train --train ...`` (no kind named) means ``train extractive --train ...``."""
    if argv and argv[0] == "train" and len(argv) > 1 and argv[1] not in (*KINDS, "-h", "--help"):
        return ["train", "extractive", *argv[1:]]
    return argv


def add_parser(sub) -> None:
    train = sub.add_parser("train", help="fine-tune a reader on SQuAD-style data (extractive or generative)",
                           description="Fine-tune a reader. Without a KIND, the flags are the extractive reader's.")
    kinds = train.add_subparsers(dest="kind", required=True, metavar="KIND")
    p = kinds.add_parser("extractive", help="a span-extraction reader (start/end logits), e.g. from MiniLM")
    p.add_argument("--train", required=True,
                   help="SQuAD .json/.json.gz, or .jsonl/.csv rows of question,context,answer")
    p.add_argument("--eval", required=True, help="dev data in the same formats")
    p.add_argument("--output", required=True, help="directory for the model, card, metrics and curve")
    p.add_argument("--base", default="minilm", help="base encoder: alias, local dir or hub id (default: minilm)")
    p.add_argument("--lr", dest="learning_rate", type=float, default=1e-4)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--warmup", dest="warmup_ratio", type=float, default=0.1, help="warm-up as a share of steps")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--eval-steps", type=int, default=500)
    p.add_argument("--save-steps", type=int, default=500)
    p.add_argument("--save-total-limit", type=int, default=2)
    p.add_argument("--logging-steps", type=int, default=25)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (short runs)")
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--max-train-examples", type=int, default=None, help="random subset of the training data")
    p.add_argument("--max-eval-examples", type=int, default=None, help="random subset of the dev data")
    p.add_argument("--negative-keep", type=float, default=1.0,
                   help="share of answer-less windows of answerable questions to keep")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTPUT")
    p.add_argument("--lora", action="store_true", help="parameter-efficient fine-tuning with PEFT LoRA")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--teacher", default=None,
                   help="distil from this fine-tuned reader (any tokenizer: logits are aligned by character offsets)")
    p.add_argument("--distill-alpha", type=float, default=0.5)
    p.add_argument("--distill-temperature", type=float, default=2.0)
    p.add_argument("--distractors", type=int, default=0,
                   help="per question, add this many same-article paragraphs BM25 ranks high that do not hold "
                        "the answer, labelled 'no answer' (teaches reading several retrieved passages)")
    p.add_argument("--distractor-pool", type=int, default=3, help="draw distractors from the top N candidates")
    p.add_argument("--shared-norm", type=float, default=0.0,
                   help="weight of a shared-normalisation loss over each question's passages (0: off)")
    p.add_argument("--attention-dropout", type=float, default=0.0,
                   help="attention dropout while training (default 0: lets PyTorch use fused attention, "
                        "2.7x faster per step on CPU); -1 keeps the checkpoint's value")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all usable cores)")
    p.add_argument("--feature-cache", default=None,
                   help="directory for tokenised features reused across runs ('none' to turn off)")
    p.add_argument("--stop-after-steps", type=int, default=None,
                   help="end this run after N steps with a checkpoint (continue with --resume)")
    p.add_argument("--stop-after-minutes", type=float, default=None,
                   help="end this run after N minutes of training with a checkpoint (continue with --resume)")
    p.add_argument("--distractor-file", default=None,
                   help="precomputed distractor choices (from `python -m rag_qa.train.gpu pack`) instead of BM25")
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"], default="auto")
    p.add_argument("--save-dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    p.set_defaults(func=run)
    _add_generative(kinds)


def _add_generative(kinds) -> None:
    p = kinds.add_parser("generative", help="a small LLM with a LoRA adapter that answers from numbered "
                         "passages, cites them and refuses", description="LoRA fine-tuning of a causal LM on "
                         "SQuAD prompts (gold passage + same-article distractors); writes the adapter, its card, "
                         "metrics and training curve to OUTPUT.")
    add_config_flags(p, GenConfig)
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    p.set_defaults(func=run_generative)


def run_generative(args: argparse.Namespace) -> int:
    import contextlib
    import json
    import sys

    from rag_qa.cli.config_flags import config_from_args
    from rag_qa.train.gen_trainer import train_generative

    cfg = config_from_args(GenConfig, args)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        summary = train_generative(cfg, progress=not args.json)
    final = summary.get("final_eval") or {}
    result = {"output": cfg.output, "global_steps": summary["global_steps"], "seconds": summary["seconds"],
              **{k: final.get(k) for k in ("exact_match", "f1", "citation_accuracy", "refusals_gold_removed",
                                           "false_refusals")}}
    if summary.get("stopped"):
        result.update(stopped=True, max_steps=summary["max_steps"])
    if args.json:
        print(json.dumps(result))
    elif summary.get("stopped"):
        print(f"stopped at step {result['global_steps']} of {result['max_steps']}: continue with --resume",
              file=sys.stderr)
    else:
        print(f"saved the adapter in {cfg.output}" + (f": dev EM {final['exact_match']:.1f} F1 {final['f1']:.1f}"
                                                      if final else ""), file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    import contextlib
    import json
    import sys

    from rag_qa.train.trainer import TrainConfig, train

    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    if cfg.attention_dropout is not None and cfg.attention_dropout < 0:
        cfg.attention_dropout = None
    # Trainer logs to stdout; with --json, stdout must hold only the one result object
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        summary = train(cfg, progress=not args.json)
    result = {k: summary[k] for k in ("eval_exact_match", "eval_f1", "global_steps", "seconds")}
    result["output"] = cfg.output
    if summary.get("stopped"):
        result.update(stopped=True, max_steps=summary["max_steps"])
    if args.json:
        print(json.dumps(result))
    elif summary.get("stopped"):
        print(f"stopped at step {result['global_steps']} of {result['max_steps']}: continue with --resume",
              file=sys.stderr)
    else:
        print(f"saved {cfg.output}: dev EM {result['eval_exact_match']:.2f} F1 {result['eval_f1']:.2f}",
              file=sys.stderr)
    return 0
