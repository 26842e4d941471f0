"""Model card (README.md in the model directory) written from a training run's metrics."""

from __future__ import annotations

import json
from pathlib import Path


def write_card(out: Path, summary: dict) -> None:
    cfg = summary["config"]
    cmd = (
        f"python -m rag_qa train --train {cfg['train']} --eval {cfg['eval']} --base {cfg['base']} "
        f"--output {cfg['output']} --lr {cfg['learning_rate']} --epochs {cfg['epochs']} "
        f"--batch-size {cfg['batch_size']} --max-length {cfg['max_length']} --doc-stride {cfg['doc_stride']}"
    )
    if cfg.get("max_train_examples"):
        cmd += f" --max-train-examples {cfg['max_train_examples']}"
    if cfg.get("max_steps", -1) > 0:
        cmd += f" --max-steps {cfg['max_steps']}"
    if cfg.get("lora"):
        cmd += " --lora"
    if cfg.get("teacher"):
        cmd += f" --teacher {cfg['teacher']}"
    hp = {k: cfg[k] for k in (
        "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "warmup_ratio", "weight_decay",
        "max_length", "doc_stride", "seed", "lora", "teacher", "negative_keep",
    )}
    em, f1 = summary.get("eval_exact_match"), summary.get("eval_f1")
    n_train = summary["train_examples"]
    base_path = summary["base_path"].split("site-packages/")[-1]
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
| training data | `{Path(cfg['train']).name}`: {n_train:,} questions, {summary['train_windows']:,} windows |
| dev data | `{Path(cfg['eval']).name}`: {summary['eval_examples']:,} questions |
| dev Exact Match | {em:.2f} |
| dev F1 | {f1:.2f} |
| steps | {summary['global_steps']:,} |
| hardware | {summary['hardware']}, {summary['precision']} |
| training time | {summary['seconds'] / 60:.1f} min |

Hyperparameters:

```json
{json.dumps(hp, indent=2)}
```

Reproduce:

```bash
{cmd}
```
{_notes(summary)}
![training curve](training_curve.png)
"""
    (out / "README.md").write_text(text)


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
    if str(summary.get("hardware", "")).startswith("CPU"):
        cfg = summary["config"]
        parts.append(
            "\n## Trained on a CPU\n\nNo GPU was available for this run, so it saw "
            f"{summary['train_examples']:,} of SQuAD v1.1's 87,599 training questions once "
            f"({summary['global_steps']:,} steps). The full run, a few minutes on a modern GPU:\n\n"
            f"```bash\npython -m rag_qa train --train {cfg['train']} --eval {cfg['eval']} "
            f"--base {cfg['base']} --output {cfg['output']} --lr 1e-4 --epochs 2 --batch-size 32\n```\n"
        )
    return "".join(parts)
