"""Fine-tune a span-extraction reader with the Hugging Face ``Trainer``.

One path: load examples (+ same-article BM25 distractors) -> windows with start/end labels,
grouped by question and cached on disk -> ``Trainer`` (optionally LoRA, optionally distilling a
teacher's start/end distributions, optionally a shared-normalisation loss across a question's
passages) -> best checkpoint by dev F1 -> safetensors + tokenizer + model card + metrics JSON +
training-curve PNG in ``output``.

CPU cost: attention dropout is off by default.  With it on, PyTorch's fused (flash) attention
cannot run and the math fallback spends most of a step drawing and applying a
(batch, heads, seq, seq) dropout mask: 4.0 s vs 1.5 s per step of 32 windows on 2 cores
(benchmarks/train_throughput.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Sampler, SequentialSampler
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_pt_utils import get_length_grouped_indices

from rag_qa.hardware import native_bf16
from rag_qa.qa_data import QAExample, load_examples
from rag_qa.spans import decode_example, model_inputs
from rag_qa.squad_metrics import best_null_threshold, squad_scores
from rag_qa.train.callbacks import Budget, WallClock
from rag_qa.train.config import TrainConfig, config_defaults
from rag_qa.train.distill import MASKED
from rag_qa.train.features import TrainFeatures, build_train_features, eval_windows, features_key, file_digest


def pick_precision(requested: str) -> str:
    """bf16 where the hardware does it natively (Ampere+ GPUs, AVX512-BF16/AMX CPUs), else fp16/fp32."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if native_bf16("cuda") else "fp16"
    return "bf16" if native_bf16("cpu") else "fp32"


class QuestionGroupSampler(Sampler):
    """Length-grouped order over question groups, the same for a given (seed, epoch) on any
    machine: a resumed run walks the very batches the uninterrupted one would have (Trainer skips
    the ones already done), whatever happened to the global RNG in between."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:  # called by Trainer/accelerate at every epoch
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


class QACollator:
    """Question groups (lists of windows) or single windows -> one padded batch.

    Adds ``group`` (which question each window belongs to), ``context_mask`` and ``cls_index``
    for the shared-normalisation loss, and teacher targets padded with MASKED when present.
    """

    KEYS = ("input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions")

    def __init__(self, tokenizer) -> None:
        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)

    def __call__(self, items: list) -> dict:
        grouped = isinstance(items[0], list)
        windows = [w for g in items for w in g] if grouped else items
        batch = self.pad([{k: w[k] for k in self.KEYS if k in w} for w in windows])
        length = batch["input_ids"].shape[1]
        if grouped:
            batch["group"] = torch.tensor([i for i, g in enumerate(items) for _ in g])
        if "context_mask" in windows[0]:
            batch["context_mask"] = torch.tensor([w["context_mask"] + [0] * (length - len(w["context_mask"]))
                                                  for w in windows], dtype=torch.bool)
        if "teacher_start" in windows[0]:
            for key in ("teacher_start", "teacher_end"):
                batch[key] = torch.tensor([w[key] + [MASKED] * (length - len(w[key])) for w in windows],
                                          dtype=torch.float32)
        return batch


def shared_norm_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start_pos: torch.Tensor,
                     end_pos: torch.Tensor, context: torch.Tensor, group: torch.Tensor,
                     cls_index: int = 0) -> torch.Tensor:
    """Shared normalisation (Clark & Gardner 2018) on the scores the reader ranks by.

    At inference a span's score is its margin over its own window's null (CLS) score, compared
    across every window of every passage.  Here each question gets one softmax over the start
    (and end) margins of all context tokens of all its windows plus one "no answer" option at 0;
    the target is the gold token in whichever windows hold it, or "no answer" if none does.  So
    the loss is low only when the gold span out-scores every token of every distractor.

    logits, context: (windows, seq); positions, group: (windows,).
    """
    total = start_logits.new_zeros((), dtype=torch.float32)
    n_groups = int(group.max()) + 1
    for logits, pos in ((start_logits, start_pos), (end_logits, end_pos)):
        logits = logits.float()
        margin = (logits - logits[:, cls_index : cls_index + 1]).masked_fill(~context, float("-inf"))
        every = torch.logsumexp(margin, dim=1)  # (windows,) all context tokens of each window
        positive = pos != cls_index
        gold = torch.where(positive, margin.gather(1, pos[:, None]).squeeze(1), torch.full_like(every, -torch.inf))
        for g in range(n_groups):
            rows = group == g
            zero = every.new_zeros(1)  # the "no answer" option
            denominator = torch.logsumexp(torch.cat([every[rows], zero]), 0)
            numerator = torch.logsumexp(gold[rows], 0) if bool(positive[rows].any()) else zero[0]
            total = total + (denominator - numerator)
    return total / (2 * n_groups)


class QATrainer(Trainer):
    """``Trainer`` whose evaluation decodes spans and reports SQuAD EM/F1 (as HF's trainer_qa.py).

    With teacher targets in the batch, the loss mixes the hard start/end cross-entropy with a KL
    term towards the teacher's temperature-softened start/end distributions (DistilBERT/TinyBERT
    recipe); the teacher may use another tokenizer (targets are aligned by character offsets).
    With ``shared_norm`` > 0 a shared-normalisation term over each question's passages is added.
    """

    def __init__(self, *args, eval_examples=None, eval_wins=None, qa_config=None, group_lengths=None, **kw):
        super().__init__(*args, **kw)
        self.eval_examples, self.eval_wins = eval_examples, eval_wins
        self.qa_config = qa_config
        self.group_lengths = group_lengths

    def _get_train_sampler(self, train_dataset=None):
        if self.group_lengths is None:
            return super()._get_train_sampler(train_dataset)
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return QuestionGroupSampler(self.group_lengths, batch, self.args.seed)

    def _get_eval_sampler(self, eval_dataset):
        # Evaluation must keep window order: predictions are matched back to windows by index
        # (with group_by_length, Trainer would otherwise sort the eval set by length too).
        return SequentialSampler(eval_dataset)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        group = inputs.pop("group", None)
        context = inputs.pop("context_mask", None)
        t_start, t_end = inputs.pop("teacher_start", None), inputs.pop("teacher_end", None)
        outputs = model(**inputs)
        loss = outputs.loss  # mean of start/end cross-entropy over windows
        if t_start is not None:
            # (batch, seq) teacher logits already aligned to these tokens (rag_qa.train.distill)
            temp = self.qa_config.distill_temperature
            mask = t_start > MASKED / 2  # CLS + context tokens; question, separators, padding get no mass

            def soft(student, teacher):
                s = student.float().masked_fill(~mask, MASKED) / temp
                t = teacher.masked_fill(~mask, MASKED) / temp
                return F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")

            soft_loss = (soft(outputs.start_logits, t_start) + soft(outputs.end_logits, t_end)) / 2
            a = self.qa_config.distill_alpha
            loss = (1 - a) * loss + a * soft_loss * temp**2  # T^2 keeps soft gradients on the hard scale
        if self.qa_config.shared_norm and group is not None and context is not None:
            loss = loss + self.qa_config.shared_norm * shared_norm_loss(
                outputs.start_logits, outputs.end_logits, inputs["start_positions"], inputs["end_positions"],
                context, group)
        return (loss, outputs) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        start = time.time()
        loop = self.evaluation_loop(
            self.get_eval_dataloader(self.eval_dataset), description="Evaluation", prediction_loss_only=False
        )
        start_logits, end_logits = loop.predictions
        metrics = score_predictions(
            self.eval_examples, self.eval_wins, start_logits, end_logits, self.qa_config.max_answer_length
        )
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}
        metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - start, 2)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def _add_teacher_targets(cfg: TrainConfig, feats: TrainFeatures, examples: list, precision: str,
                         progress: bool) -> None:
    """Run the teacher once over every training window; its aligned logits join the features."""
    from rag_qa.models import resolve_model
    from rag_qa.train.distill import teacher_targets

    spec = resolve_model(cfg.teacher, kind="reader")
    tok = AutoTokenizer.from_pretrained(spec.path)
    teacher = AutoModelForQuestionAnswering.from_pretrained(spec.path, dtype=torch.float32, use_safetensors=True)
    teacher.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    targets = teacher_targets(teacher, tok, [e.question for e in examples], [e.context for e in examples],
                              feats.windows(), batch_size=cfg.eval_batch_size, progress=progress,
                              bf16=precision == "bf16")
    feats.teacher_start = np.concatenate([s for s, _ in targets]).astype(np.float32)
    feats.teacher_end = np.concatenate([e for _, e in targets]).astype(np.float32)
    del teacher


def score_predictions(examples, wins, start_logits, end_logits, max_answer_length=30) -> dict:
    """Best span per example -> EM/F1 (and v2.0 splits + best no-answer threshold)."""
    by_example = defaultdict(list)
    for i, w in enumerate(wins):
        by_example[w.example].append(i)
    preds, margins, refs = {}, {}, {}
    for ex_idx, idxs in by_example.items():
        ex = examples[ex_idx]
        spans, min_null = decode_example(
            [start_logits[i] for i in idxs],
            [end_logits[i] for i in idxs],
            [wins[i] for i in idxs],
            max_answer_length=max_answer_length,
        )
        preds[ex.id] = ex.context[spans[0].start : spans[0].end] if spans else ""
        margins[ex.id] = min_null - (spans[0].logit if spans else -1e9)
        refs[ex.id] = [a["text"] for a in ex.answers]
    metrics = dict(squad_scores(preds, refs))
    if any(not r for r in refs.values()):
        metrics["best_f1"], metrics["best_f1_thresh"] = best_null_threshold(preds, margins, refs)
    return metrics


class _EvalPrinter(TrainerCallback):
    """Prints a one-line eval summary so long runs show progress in logs."""

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        if metrics and "eval_f1" in metrics:
            print(
                f"[step {state.global_step}] eval EM {metrics['eval_exact_match']:.2f} "
                f"F1 {metrics['eval_f1']:.2f}",
                flush=True,
            )


def _subsample(examples: list[QAExample], n: int | None, seed: int) -> list[QAExample]:
    if n is None or n >= len(examples):
        return examples
    rng = random.Random(seed)
    return rng.sample(examples, n)


def _distractors(cfg: TrainConfig, train_ex: list[QAExample]) -> list[tuple[int, QAExample]]:
    """Chosen now by BM25 (``distractors``), or read from ``distractor_file``."""
    if cfg.distractor_file:
        from rag_qa.train.distractors import load_distractors

        return load_distractors(cfg.distractor_file, train_ex)
    if cfg.distractors:
        from rag_qa.train.distractors import add_distractors

        return add_distractors(train_ex, cfg.distractors, cfg.distractor_pool, cfg.seed)
    return []


def load_train_features(cfg: TrainConfig, tokenizer, train_ex: list[QAExample], progress: bool) -> TrainFeatures:
    """Distractors + grouped, labelled windows, from the on-disk cache when nothing they depend on
    changed (the data file, the tokenizer, windowing, distractor settings, subset and seed)."""
    from rag_qa.models import CACHE_DIR

    off = (cfg.feature_cache or "").lower() == "none"
    cache_dir = None if off else Path(cfg.feature_cache or CACHE_DIR / "features")
    path = None
    if cache_dir is not None:
        key = features_key(data=file_digest(cfg.train), tokenizer=tokenizer.backend_tokenizer.to_str()
                           if getattr(tokenizer, "is_fast", False) else tokenizer.name_or_path,
                           max_length=cfg.max_length, doc_stride=cfg.doc_stride, negative_keep=cfg.negative_keep,
                           seed=cfg.seed, subset=cfg.max_train_examples, distractors=cfg.distractors,
                           pool=cfg.distractor_pool,
                           distractor_file=file_digest(cfg.distractor_file) if cfg.distractor_file else None)
        path = cache_dir / f"features-{key}.npz"
        if path.is_file():
            try:
                feats = TrainFeatures.load(path)
                if progress:
                    print(f"features from cache {path} ({feats.n_windows:,} windows)")
                return feats
            except (OSError, ValueError, KeyError) as err:
                print(f"ignoring unreadable feature cache {path}: {err}")
    distractors = _distractors(cfg, train_ex)
    feats = build_train_features(tokenizer, train_ex, distractors, cfg.max_length, cfg.doc_stride,
                                 cfg.negative_keep, cfg.seed, progress)
    if path is not None:
        feats.save(path)
    return feats


def train(cfg: TrainConfig, progress: bool = True, callbacks: Sequence[TrainerCallback] = ()) -> dict:
    """Run one fine-tuning job end to end; returns the final metrics dict."""
    from rag_qa.models import resolve_model  # local import: keeps `rag_qa train --help` fast

    t0 = time.time()
    torch.set_num_threads(cfg.threads or len(os.sched_getaffinity(0)))
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    base = resolve_model(cfg.base, kind="encoder")
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    # fp32 master weights whatever dtype the checkpoint was saved in (ours ship as fp16, and
    # transformers 5 loads a checkpoint's own dtype by default); autocast does the bf16/fp16 part
    set_seed(cfg.seed)  # a base without a span head gets a freshly initialised one: the same every run
    overrides = {} if cfg.attention_dropout is None else {"attention_probs_dropout_prob": cfg.attention_dropout}
    model = AutoModelForQuestionAnswering.from_pretrained(base.path, dtype=torch.float32, use_safetensors=True,
                                                          **overrides)

    train_ex, skipped_train = load_examples(cfg.train)
    eval_ex, skipped_eval = load_examples(cfg.eval)
    for s in skipped_train + skipped_eval:
        print(f"skipped {s.where}: {s.reason}")
    train_ex = _subsample(train_ex, cfg.max_train_examples, cfg.seed)
    eval_ex = _subsample(eval_ex, cfg.max_eval_examples, cfg.seed)
    feats = load_train_features(cfg, tokenizer, train_ex, progress)
    wins = eval_windows(tokenizer, eval_ex, cfg.max_length, cfg.doc_stride)

    if cfg.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.QUESTION_ANS,
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=0.05,
                target_modules=["query", "key", "value", "dense"],
            ),
        )

    precision = pick_precision(cfg.precision)
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.teacher:
        # the windows index questions first, then the distractors (the same draw again: same seed)
        distractor_ex = [d for _, d in _distractors(cfg, train_ex)] if feats.distractors else []
        _add_teacher_targets(cfg, feats, train_ex + distractor_ex, precision, progress)
    # batch_size counts windows; a batch holds whole question groups (a question + its distractors)
    groups_per_batch = max(1, round(cfg.batch_size * len(feats) / max(feats.n_windows, 1)))
    checkpoints = out / "checkpoints"
    resume = cfg.resume and any(checkpoints.glob("checkpoint-*"))
    clock = WallClock(WallClock.resumed(checkpoints) if resume else 0.0)
    args = TrainingArguments(
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
        callbacks=[*callbacks, _EvalPrinter(), clock, budget := Budget(cfg.stop_after_steps, cfg.stop_after_minutes)],
    )
    trainer.train(resume_from_checkpoint=True if resume else None)
    final = {} if budget.stopped else trainer.evaluate()
    seconds = clock.total() if resume else time.time() - t0
    state = trainer.state
    questions_seen = state.global_step * groups_per_batch * cfg.grad_accum
    windows_seen = round(questions_seen * feats.n_windows / max(len(feats), 1))
    summary = {
        "base": cfg.base,
        "base_path": str(base.path),
        "train_examples": len(train_ex),
        "train_windows": feats.n_windows,
        "train_distractors": feats.distractors,
        "groups_per_batch": groups_per_batch,
        # a batch holds whole question groups (a question + its distractors): what this run read
        "questions_seen": questions_seen,
        "windows_seen": windows_seen,
        "eval_examples": len(eval_ex),
        "eval_exact_match": final.get("eval_exact_match"),
        "eval_f1": final.get("eval_f1"),
        "global_steps": state.global_step,
        "max_steps": state.max_steps,
        "stopped": budget.stopped,
        "best_checkpoint": state.best_model_checkpoint,
        "precision": precision,
        "hardware": torch.cuda.get_device_name(0) if use_cuda else f"CPU ({platform.processor() or 'x86_64'})",
        "seconds": round(seconds, 1),
        # this run plus every run the base weights came from (their metrics.json), for the card
        "cumulative": _cumulative(Path(base.path), questions_seen, windows_seen, state.global_step, seconds),
        "config": asdict(cfg),
        "log_history": state.log_history,
    }
    if budget.stopped:  # a checkpoint to resume from; the finished model comes at the last step
        print(f"stopped at step {state.global_step} of {state.max_steps}; "
              f"resume with --resume (checkpoints in {checkpoints})")
        return summary
    model = trainer.model
    if cfg.lora:
        model = model.merge_and_unload()  # a plain model again: loads without peft
    save_model(model, tokenizer, out, cfg.save_dtype)
    _write_outputs(out, summary)
    return summary


def _cumulative(base_dir: Path, questions: int, windows: int, steps: int, seconds: float) -> dict:
    """Training totals of the base weights' own history (if they came from ``rag_qa train``) plus this run."""
    try:
        before = json.loads((base_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        before = None
    if before is None:
        prior = {"questions": 0, "windows": 0, "steps": 0, "seconds": 0.0, "runs": 0}
    else:
        prior = before.get("cumulative") or {  # cards from before this field: one run, one pass
            "questions": before.get("questions_seen", before.get("train_examples", 0)),
            "windows": before.get("windows_seen", before.get("train_windows", 0)),
            "steps": before.get("global_steps", 0), "seconds": before.get("seconds", 0.0), "runs": 1}
    return {"questions": prior["questions"] + questions, "windows": prior["windows"] + windows,
            "steps": prior["steps"] + steps, "seconds": round(prior["seconds"] + seconds, 1),
            "runs": prior.get("runs", 1) + 1}


def save_model(model, tokenizer, out: Path, save_dtype: str) -> None:
    """safetensors in shards the device tool can return (< 16 MiB each), plus the tokenizer."""
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(save_dtype)
    if dtype is not None:
        model = model.to(dtype)
    for old in out.glob("model*.safetensors*"):  # a smaller model must not leave stale shards behind
        old.unlink()
    model.save_pretrained(out, max_shard_size="15MB")
    tokenizer.save_pretrained(out)


def _write_outputs(out: Path, summary: dict) -> None:
    """metrics.json, the training curve (when matplotlib is there) and the model card."""
    from rag_qa.train.card import write_card

    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    with contextlib.suppress(ImportError):  # no matplotlib on the GPU machine: `gpu unpack` draws it here
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
    _write_outputs(out, dict(summary, exported_from=last.name))
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

