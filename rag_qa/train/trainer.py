"""Fine-tune a span-extraction reader with the Hugging Face ``Trainer``: :func:`train`.

One path: load examples (+ same-article BM25 distractors) -> windows with start/end labels,
grouped by question and cached on disk (:mod:`rag_qa.train.data`) -> ``Trainer`` (optionally LoRA,
optionally distilling a teacher's start/end distributions, optionally a shared-normalisation loss
across a question's passages: :mod:`rag_qa.train.loop`) -> best checkpoint by dev F1 ->
safetensors + tokenizer + model card + metrics JSON + training-curve PNG in ``output``
(:mod:`rag_qa.train.outputs`).  The settings are :class:`rag_qa.train.config.TrainConfig`.

CPU cost: attention dropout is off by default.  With it on, PyTorch's fused (flash) attention
cannot run and the math fallback spends most of a step drawing and applying a
(batch, heads, seq, seq) dropout mask: 4.0 s vs 1.5 s per step of 32 windows on 2 cores
(benchmarks/train_throughput.py).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, TrainerCallback, TrainingArguments, set_seed

from rag_qa.hardware import pick_precision
from rag_qa.models import ModelSpec, resolve_model
from rag_qa.spans import model_inputs
from rag_qa.train.callbacks import Budget, ShareCores, WallClock
from rag_qa.train.config import TrainConfig
from rag_qa.train.data import add_teacher_targets, augmented_counts, load_data, load_train_features
from rag_qa.train.features import TrainFeatures, eval_windows
from rag_qa.train.loop import EvalPrinter, QACollator, QATrainer
from rag_qa.train.outputs import cumulative, save_model, write_outputs


def train(cfg: TrainConfig, progress: bool = True, callbacks: Sequence[TrainerCallback] = ()) -> dict:
    """Run one fine-tuning job end to end; returns the summary written to ``output/metrics.json``."""
    t0 = time.time()
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cfg.threads or cores)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    base, tokenizer, model = _load_base(cfg)
    train_ex, eval_ex = load_data(cfg)
    feats = load_train_features(cfg, tokenizer, train_ex, progress)
    wins = eval_windows(tokenizer, eval_ex, cfg.max_length, cfg.doc_stride)
    if cfg.lora:
        model = _with_lora(model, cfg)
    precision = pick_precision(cfg.precision)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.teacher:
        add_teacher_targets(cfg, feats, train_ex, precision, progress)
    # batch_size counts windows; a batch holds whole question groups (a question + its distractors)
    groups_per_batch = max(1, round(cfg.batch_size * len(feats) / max(feats.n_windows, 1)))
    checkpoints = out / "checkpoints"
    resume = cfg.resume and any(checkpoints.glob("checkpoint-*"))
    clock = WallClock(WallClock.resumed(checkpoints) if resume else 0.0)
    args = _training_arguments(cfg, checkpoints, groups_per_batch, precision, progress)
    budget = Budget(cfg.stop_after_steps, cfg.stop_after_minutes)
    trainer = QATrainer(
        model=model,
        args=args,
        train_dataset=feats,
        eval_dataset=[model_inputs(w) for w in wins],
        data_collator=QACollator(tokenizer),
        processing_class=tokenizer,
        eval_examples=eval_ex,
        eval_wins=wins,
        qa_config=cfg,
        group_lengths=feats.group_lengths() if cfg.length_grouping else None,
        callbacks=[*callbacks, EvalPrinter(), clock, budget, *([] if cfg.threads else [ShareCores(cores)])],
    )
    trainer.train(resume_from_checkpoint=True if resume else None)
    final = {} if budget.stopped else trainer.evaluate()
    seconds = clock.total() if resume else time.time() - t0
    summary = _summary(cfg, base, trainer, feats, groups_per_batch, len(train_ex), len(eval_ex), final, precision,
                       seconds, budget.stopped, augmented_counts(train_ex))
    if budget.stopped:  # a checkpoint to resume from; the finished model comes at the last step
        print(f"stopped at step {trainer.state.global_step} of {trainer.state.max_steps}; "
              f"resume with --resume (checkpoints in {checkpoints})")
        return summary
    model = trainer.model
    if cfg.lora:
        model = model.merge_and_unload()  # a plain model again: loads without peft
    save_model(model, tokenizer, out, cfg.save_dtype)
    write_outputs(out, summary)
    return summary


def _load_base(cfg: TrainConfig) -> tuple[ModelSpec, Any, Any]:
    """(where the base came from, its tokenizer, the model with a span head) for ``cfg.base``."""
    base = resolve_model(cfg.base, kind="encoder")
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    # fp32 master weights whatever dtype the checkpoint was saved in (ours ship as fp16, and
    # transformers 5 loads a checkpoint's own dtype by default); autocast does the bf16/fp16 part
    set_seed(cfg.seed)  # a base without a span head gets a freshly initialised one: the same every run
    overrides = {} if cfg.attention_dropout is None else {"attention_probs_dropout_prob": cfg.attention_dropout}
    model = AutoModelForQuestionAnswering.from_pretrained(base.path, dtype=torch.float32, use_safetensors=True,
                                                          **overrides)
    return base, tokenizer, model


def _with_lora(model: Any, cfg: TrainConfig) -> Any:
    """``model`` with LoRA adapters on its attention and dense layers; only those train."""
    from peft import LoraConfig, TaskType, get_peft_model

    return get_peft_model(model, LoraConfig(task_type=TaskType.QUESTION_ANS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                            lora_dropout=0.05, target_modules=["query", "key", "value", "dense"]))


def _training_arguments(cfg: TrainConfig, checkpoints: Path, groups_per_batch: int, precision: str,
                        progress: bool) -> TrainingArguments:
    """The ``Trainer``'s settings: the config's schedule, evaluation by dev F1 (the best checkpoint
    is loaded at the end), checkpoints in ``checkpoints``."""
    use_cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(checkpoints),
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",  # decays to zero at the last step
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=groups_per_batch,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        optim=cfg.optim,
        torch_compile=cfg.compile,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="f1",
        greater_is_better=True,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not use_cuda,
        report_to="none",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        remove_unused_columns=False,  # items are question groups; the collator builds the batch
    )


def _summary(cfg: TrainConfig, base: ModelSpec, trainer: QATrainer, feats: TrainFeatures, groups_per_batch: int,
             train_examples: int, eval_examples: int, final: dict, precision: str, seconds: float,
             stopped: bool, augmented: dict[str, int] | None = None) -> dict:
    """What metrics.json and the card say about this run (``augmented``: examples each augmentation
    arm added, counted in ``train_examples``)."""
    state = trainer.state
    questions_seen = state.global_step * groups_per_batch * cfg.grad_accum
    windows_seen = round(questions_seen * feats.n_windows / max(len(feats), 1))
    return {
        "base": cfg.base,
        "base_path": str(base.path),
        "train_examples": train_examples,
        "train_augmented": augmented or {},
        "train_windows": feats.n_windows,
        "train_distractors": feats.distractors,
        "groups_per_batch": groups_per_batch,
        # a batch holds whole question groups (a question + its distractors): what this run read
        "questions_seen": questions_seen,
        "windows_seen": windows_seen,
        "eval_examples": eval_examples,
        "eval_exact_match": final.get("eval_exact_match"),
        "eval_f1": final.get("eval_f1"),
        "global_steps": state.global_step,
        "max_steps": state.max_steps,
        "stopped": stopped,
        "best_checkpoint": state.best_model_checkpoint,
        "precision": precision,
        "hardware": torch.cuda.get_device_name(0) if torch.cuda.is_available()
        else f"CPU ({platform.processor() or 'x86_64'})",
        "seconds": round(seconds, 1),
        # this run plus every run the base weights came from (their metrics.json), for the card
        "cumulative": cumulative(Path(base.path), questions_seen, windows_seen, state.global_step, seconds),
        "config": asdict(cfg),
        "log_history": state.log_history,
    }
