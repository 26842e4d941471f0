"""`python -m rag_qa train [extractive|generative]`: fine-tune a reader.

``extractive`` (the default when no kind is named: ``rag_qa train --train ...``) fronts
:func:`rag_qa.train.trainer.train`, its flags made from :class:`rag_qa.train.config.TrainConfig`;
``generative`` fronts :func:`rag_qa.train.gen_trainer.train_generative`, its flags made from
:class:`rag_qa.train.gen_config.GenConfig`.  The parser imports nothing heavy (``rag_qa train
--help`` is instant, and this module loads where LangChain, FAISS and Gradio are not installed);
the trainers load when they run.
"""

from __future__ import annotations

import argparse

from rag_qa.cli.config_flags import add_config_flags, config_from_args
from rag_qa.terminal import emit_json
from rag_qa.train.config import TrainConfig
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
    p = kinds.add_parser("extractive", help="a span-extraction reader (start/end logits), e.g. from MiniLM",
                         description="Fine-tune a span head on SQuAD-style data; writes the model, its card, "
                         "metrics and training curve to OUTPUT.")
    add_config_flags(p, TrainConfig)
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


def _finish(args: argparse.Namespace, result: dict, summary: dict, done: str) -> int:
    """The run's outcome: ``result`` as one JSON object on stdout with ``--json``, else one line on
    stderr (``done`` when the run finished, how to continue when its budget stopped it)."""
    import sys

    if summary.get("stopped"):
        result.update(stopped=True, max_steps=summary["max_steps"])
    if args.json:
        emit_json(result)
    elif summary.get("stopped"):
        print(f"stopped at step {result['global_steps']} of {result['max_steps']}: continue with --resume",
              file=sys.stderr)
    else:
        print(done, file=sys.stderr)
    return 0


def _quiet_stdout(args: argparse.Namespace):
    """Trainer logs to stdout; with --json, stdout must hold only the one result object."""
    import contextlib
    import sys

    return contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()


def run_generative(args: argparse.Namespace) -> int:
    from rag_qa.train.gen_trainer import train_generative

    cfg = config_from_args(GenConfig, args)
    with _quiet_stdout(args):
        summary = train_generative(cfg, progress=not args.json)
    final = summary.get("final_eval") or {}
    result = {"output": cfg.output, "global_steps": summary["global_steps"], "seconds": summary["seconds"],
              **{k: final.get(k) for k in ("exact_match", "f1", "citation_accuracy", "refusals_gold_removed",
                                           "false_refusals")}}
    score = f": dev EM {final['exact_match']:.1f} F1 {final['f1']:.1f}" if final else ""
    return _finish(args, result, summary, f"saved the adapter in {cfg.output}{score}")


def run(args: argparse.Namespace) -> int:
    from rag_qa.train.trainer import train

    cfg = config_from_args(TrainConfig, args)
    with _quiet_stdout(args):
        summary = train(cfg, progress=not args.json)
    result = {k: summary[k] for k in ("eval_exact_match", "eval_f1", "global_steps", "seconds")}
    result["output"] = cfg.output
    done = "" if summary.get("stopped") else (
        f"saved {cfg.output}: dev EM {result['eval_exact_match']:.2f} F1 {result['eval_f1']:.2f}")
    return _finish(args, result, summary, done)
