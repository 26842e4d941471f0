"""Model card (README.md in the model directory) written from a training run's metrics."""

from __future__ import annotations

import json
from pathlib import Path

from rag_qa.train.config import TrainConfig, command_line


def reproduce_command(cfg: dict, defaults: dict) -> str:
    """The `python -m rag_qa train` line for this config: every setting that differs from ``defaults``."""
    return command_line("python -m rag_qa train", TrainConfig, cfg, defaults)


def _score(x) -> str:
    return "not evaluated" if x is None else f"{x:.2f}"


def write_card(out: Path, summary: dict, defaults: dict) -> None:
    """README.md in ``out``; ``defaults``: the TrainConfig defaults (:func:`rag_qa.train.config.config_defaults`)."""
    cfg = summary["config"]
    cmd = reproduce_command(cfg, defaults)
    hp = {k: cfg.get(k) for k in (
        "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "warmup_ratio", "weight_decay",
        "max_length", "doc_stride", "seed", "lora", "teacher", "negative_keep", "distractors", "distractor_pool",
        "shared_norm", "attention_dropout",
    )}
    if cfg.get("augment"):  # only then: cards of runs without augmentation stay as they were
        hp.update({k: cfg.get(k) for k in ("augment", "augment_ratio", "augment_tables")})
    em, f1 = _score(summary.get("eval_exact_match")), _score(summary.get("eval_f1"))
    n_train = summary["train_examples"]
    base_path = summary["base_path"].split("site-packages/")[-1]
    distractors, windows = summary.get("train_distractors", 0), summary["train_windows"]
    train_name = Path(cfg["train"]).name
    augmented = summary.get("train_augmented") or {}
    data = f"`{train_name}`: {n_train:,} questions"
    if augmented:
        data += (f" ({n_train - sum(augmented.values()):,} from the file, augmented: "
                 + ", ".join(f"{arm} +{n:,}" for arm, n in augmented.items()) + ")")
    seen_q, seen_w = summary.get("questions_seen", n_train), summary.get("windows_seen", windows)
    total = summary.get("cumulative")
    cumulative = ""
    if total:
        runs = f"{total['runs']} run" + ("s" if total["runs"] != 1 else "")
        cumulative = (f"| all training behind these weights | {runs}, {total['questions']:,} questions, "
                      f"{total['windows']:,} windows, {total['steps']:,} steps, {total['seconds'] / 3600:.1f} h |\n")
    text = f"""---
library_name: transformers
pipeline_tag: question-answering
license: apache-2.0
datasets: [squad]
base_model: sentence-transformers/all-MiniLM-L6-v2
---
# {Path(cfg['output']).name}

Extractive question-answering reader fine-tuned by `rag_qa train` (a span head: start/end logits).

| | |
|---|---|
| base model | `{summary['base']}` ({base_path}) |
| training data | {data}, {distractors:,} distractor passages, {windows:,} windows |
| this run read | {seen_q:,} question groups, {seen_w:,} windows |
| dev data | `{Path(cfg['eval']).name}`: {summary['eval_examples']:,} questions |
| dev Exact Match | {em} |
| dev F1 | {f1} |
| steps | {summary['global_steps']:,} |
| hardware | {summary['hardware']}, {summary['precision']} |
| training time | {summary['seconds'] / 60:.1f} min |
{cumulative}"""
    (out / "README.md").write_text(text + _hyperparameters_and_command(hp, cmd, summary))


def _hyperparameters_and_command(hp: dict, command: str, summary: dict) -> str:
    """How both cards end: the hyperparameters, the command that reproduces the run, notes, the curve."""
    return f"""
Hyperparameters:

```json
{json.dumps(hp, indent=2)}
```

Reproduce:

```bash
{command}
```
{_notes(summary)}
![training curve](training_curve.png)
"""


def _notes(summary: dict) -> str:
    """Extra sections: scores on the full dev set, and how this run compares with a full one."""
    parts = []
    for note in summary.get("notes", []):
        parts.append(f"\n{note}\n")
    full = summary.get("full_eval")
    if full:
        parts.append(
            f"\n## Full dev evaluation\n\n`python -m rag_qa eval reader --data {full['data']}` "
            f"({full['n']:,} questions): **EM {full['exact_match']:.2f}, F1 {full['f1']:.2f}**, "
            f"{full['ms_per_question']:.0f} ms per question on {full['hardware']}.\n"
        )
    return "".join(parts)


def generative_command(cfg: dict, defaults: dict) -> str:
    """The `python -m rag_qa train generative` line for this config (settings that differ from ``defaults``)."""
    from rag_qa.train.gen_config import GenConfig

    return command_line("python -m rag_qa train generative", GenConfig, cfg, defaults)


def _generative_eval_table(final: dict | None) -> str:
    if not final:
        return "Not evaluated by generation (the run ended before its last step).\n"
    rows = [("questions (gold + 2 distractors)", f"{final['n']}"),
            ("Exact Match / F1", f"{final['exact_match']:.1f} / {final['f1']:.1f}"),
            ("ROUGE-L / BLEU", f"{final['rouge_l']:.1f} / {final['bleu']:.1f}"),
            ("citation accuracy (as shown / as the model wrote it)",
             f"{final['citation_accuracy']:.1f}% / {final['model_citation_accuracy']:.1f}%"),
            ("refusals with the gold passage removed", f"{final['refusals_gold_removed']:.1f}%"),
            ("false refusals", f"{final['false_refusals']:.1f}%"),
            ("latency p50, tokens per answer", f"{final['latency_p50_s']:.2f} s, {final['tokens_mean'] or 0:.1f}")]
    if "misses" in final:  # cards written before the breakdown existed lack it
        m = final["misses"]
        rows.append(("misses: refused / span edges / other span of the gold passage / a distractor's / not copied",
                     " / ".join(f"{m[k]:.1f}%" for k in ("false_refusal", "partial_span", "gold_passage_span",
                                                         "distractor_span", "not_copied"))))
    return "| dev evaluation | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def _base_licence(base: str) -> str:
    """The adapter's licence is its base's: Gemma's terms carry over to what is trained from it."""
    return "gemma" if base.lower().startswith("gemma") else "apache-2.0"


def _lineage(summary: dict) -> str:
    """The card rows for an adapter that continued an earlier one (``--init-adapter``); empty otherwise."""
    earlier = summary.get("continues")
    if not earlier:
        return ""
    return (f"| continued from | `{earlier['adapter']}` ({earlier['prompts_seen_total']:,} prompts, "
            f"{earlier['runs']} run(s), {earlier['seconds_total'] / 3600:.1f} h) |\n"
            f"| all runs together | {summary['prompts_seen_total']:,} prompts, {summary['runs']} runs, "
            f"{summary['seconds_total'] / 3600:.1f} h |\n")


def write_generative_card(out: Path, summary: dict, defaults: dict) -> None:
    """README.md for a LoRA adapter trained by `rag_qa train generative`."""
    cfg = summary["config"]
    hp = {k: cfg.get(k) for k in ("learning_rate", "epochs", "max_steps", "batch_size", "grad_accum",
                                  "warmup_ratio", "lora_r", "lora_alpha", "lora_dropout", "lora_targets",
                                  "distractors", "refusal_rate", "max_passage_words", "questions_per_prompt",
                                  "target_style", "seed")}
    questions = summary.get("train_questions", summary["train_prompts"])
    packed = questions != summary["train_prompts"]
    data = (f"`{Path(cfg['train']).name}`: {summary['train_prompts']:,} prompts"
            + (f" holding {questions:,} questions" if packed else "")
            + f" ({summary['train_refusals']:,} {'questions' if packed else 'prompts'} with the gold passage removed), "
            f"{summary['train_tokens']:,} tokens")
    read = f"{summary['prompts_seen']:,} prompts" + (
        f" (about {summary['questions_seen']:,} questions)" if packed else "")
    text = f"""---
library_name: peft
pipeline_tag: text-generation
license: {_base_licence(summary['base'])}
datasets: [squad]
base_model: {summary['base']}
---
# {Path(cfg['output']).name}

A LoRA adapter that makes `{summary['base']}` ({summary['base_source']}) a grounded reader: it answers
from numbered passages with a phrase copied from one of them and that passage's number, `Paul Baran [2]`,
and says "I cannot find the answer in the passages." when none holds the answer.  rag-qa merges it into
the base weights at load time (`--reader generative`).

| | |
|---|---|
| base model | `{summary['base']}`: {summary['base_source']} |
| training data | {data} |
| this run read | {read} in {summary['global_steps']:,} steps |
{_lineage(summary)}| dev data | `{Path(cfg['eval']).name}` |
| hardware | {summary['hardware']}, {summary['precision']} |
| training time | {summary['seconds'] / 60:.1f} min |

{_generative_eval_table(summary.get('final_eval'))}"""
    (out / "README.md").write_text(text + _hyperparameters_and_command(hp, generative_command(cfg, defaults),
                                                                       summary))
