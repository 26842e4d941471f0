"""What an extractive training run leaves in its output folder, and exporting a checkpoint as one.

The folder is a model directory any reader loads: safetensors weights and the tokenizer, plus
``metrics.json`` (the run's summary and log), ``training_curve.png`` and the model card
(``README.md``, :mod:`rag_qa.train.card`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from rag_qa.train.card import write_card
from rag_qa.train.config import config_defaults


def cumulative(base_dir: Path, questions: int, windows: int, steps: int, seconds: float) -> dict:
    """Training totals of the base weights' own history (if they came from ``rag_qa train``) plus this run."""
    try:
        before = json.loads((base_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        before = None
    if before is None:
        prior = {"questions": 0, "windows": 0, "steps": 0, "seconds": 0.0, "runs": 0}
    else:
        prior = before.get("cumulative") or {  # metrics.json without this field: one run, one pass
            "questions": before.get("questions_seen", before.get("train_examples", 0)),
            "windows": before.get("windows_seen", before.get("train_windows", 0)),
            "steps": before.get("global_steps", 0), "seconds": before.get("seconds", 0.0), "runs": 1}
    return {"questions": prior["questions"] + questions, "windows": prior["windows"] + windows,
            "steps": prior["steps"] + steps, "seconds": round(prior["seconds"] + seconds, 1),
            "runs": prior.get("runs", 1) + 1}


def save_model(model, tokenizer, out: Path, save_dtype: str, max_shard_size: str | None = None) -> None:
    """The weights as safetensors in ``save_dtype`` (in files of at most ``max_shard_size``, e.g.
    "15MB", where something downstream limits file sizes; default: transformers'), plus the tokenizer."""
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(save_dtype)
    if dtype is not None:
        model = model.to(dtype)
    for old in out.glob("model*.safetensors*"):  # a smaller model must not leave stale shards behind
        old.unlink()
    model.save_pretrained(out, **({"max_shard_size": max_shard_size} if max_shard_size else {}))
    tokenizer.save_pretrained(out)


def write_outputs(out: Path, summary: dict) -> None:
    """metrics.json, the training curve (when matplotlib is there) and the model card."""
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    with contextlib.suppress(ImportError):  # matplotlib is optional (the `train` extra): no curve without it
        plot_curve(summary["log_history"], out / "training_curve.png")
    write_card(out, summary, config_defaults())


def export(checkpoints: Path, out: Path, summary: dict, save_dtype: str = "float16") -> Path:
    """The newest checkpoint in ``checkpoints`` as a model directory ``out`` (weights, tokenizer,
    metrics, card): for a run stopped by its time budget, or to ship progress mid-run."""
    last = max(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    model = AutoModelForQuestionAnswering.from_pretrained(last, dtype=torch.float32, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(last)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, tokenizer, out, save_dtype)
    write_outputs(out, dict(summary, exported_from=last.name))
    return last


def plot_curve(history: list[dict], path: Path) -> None:
    """Training loss and eval EM/F1 against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    ev = [(h["step"], h["eval_exact_match"], h["eval_f1"]) for h in history if "eval_f1" in h]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    if loss:
        ax1.plot(*zip(*loss, strict=True), color="tab:blue", label="train loss")
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss", color="tab:blue")
    if ev:
        ax2 = ax1.twinx()
        steps, em, f1 = zip(*ev, strict=True)
        ax2.plot(steps, em, "o-", color="tab:orange", label="dev EM")
        ax2.plot(steps, f1, "s-", color="tab:green", label="dev F1")
        ax2.set_ylabel("EM / F1 (%)")
        ax2.legend(loc="lower right")
    ax1.set_title("Reader fine-tuning")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

