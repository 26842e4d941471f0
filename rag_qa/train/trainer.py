"""Fine-tune a span-extraction reader with the Hugging Face ``Trainer``.

One path: load examples -> windows with start/end labels -> ``Trainer`` (optionally LoRA,
optionally distilling a teacher's start/end distributions) -> best checkpoint by dev F1
-> safetensors + tokenizer + model card + metrics JSON + training-curve PNG in ``output``.
"""

from __future__ import annotations

import json
import platform
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import SequentialSampler
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from rag_qa.eval.squad_metrics import best_null_threshold, squad_scores
from rag_qa.spans import decode_example, model_inputs
from rag_qa.train.data import QAExample, load_examples
from rag_qa.train.distill import MASKED
from rag_qa.train.features import eval_windows, train_features


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved verbatim into metrics.json and the card."""

    train: str
    eval: str
    output: str
    base: str = "minilm"
    max_length: int = 384
    doc_stride: int = 128
    learning_rate: float = 1e-4
    epochs: float = 2.0
    batch_size: int = 32
    eval_batch_size: int = 64
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    eval_steps: int = 500
    save_steps: int = 500
    save_total_limit: int = 2
    logging_steps: int = 25
    seed: int = 42
    max_steps: int = -1
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    negative_keep: float = 1.0
    resume: bool = False
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    teacher: str | None = None
    distill_alpha: float = 0.5  # weight of the teacher's soft loss; 1 - alpha on the hard labels
    distill_temperature: float = 2.0
    max_answer_length: int = 30
    save_dtype: str = "float16"
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    extra: dict = field(default_factory=dict)


def pick_precision(requested: str) -> str:
    """bf16 where the hardware does it natively (Ampere+ GPUs, AVX512-BF16/AMX CPUs), else fp16/fp32."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"


class QATrainer(Trainer):
    """``Trainer`` whose evaluation decodes spans and reports SQuAD EM/F1 (as HF's trainer_qa.py).

    With teacher targets in the batch, the loss mixes the hard start/end cross-entropy with a KL
    term towards the teacher's temperature-softened start/end distributions (DistilBERT/TinyBERT
    recipe); the teacher may use another tokenizer (targets are aligned by character offsets).
    """

    def __init__(self, *args, eval_examples=None, eval_wins=None, qa_config=None, **kw):
        super().__init__(*args, **kw)
        self.eval_examples, self.eval_wins = eval_examples, eval_wins
        self.qa_config = qa_config

    def _get_eval_sampler(self, eval_dataset):
        # Evaluation must keep window order: predictions are matched back to windows by index
        # (with group_by_length, Trainer would otherwise sort the eval set by length too).
        return SequentialSampler(eval_dataset)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "teacher_start" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # (batch, seq) teacher logits already aligned to these tokens (rag_qa.train.distill)
        t_start, t_end = inputs.pop("teacher_start"), inputs.pop("teacher_end")
        outputs = model(**inputs)
        hard = outputs.loss  # mean of start/end cross-entropy
        temp = self.qa_config.distill_temperature
        mask = t_start > MASKED / 2  # CLS + context tokens; question, separators, padding get no mass

        def soft(student, teacher):
            s = student.float().masked_fill(~mask, MASKED) / temp
            t = teacher.masked_fill(~mask, MASKED) / temp
            return F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")

        soft_loss = (soft(outputs.start_logits, t_start) + soft(outputs.end_logits, t_end)) / 2
        a = self.qa_config.distill_alpha
        loss = (1 - a) * hard + a * soft_loss * temp**2  # T^2 keeps soft gradients on the hard scale
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


def _add_teacher_targets(cfg: TrainConfig, feats: list[dict], examples: list, windows: list, precision: str,
                         progress: bool) -> None:
    """Run the teacher once over every training window; its aligned logits join the features."""
    from rag_qa.models import resolve_model
    from rag_qa.train.distill import teacher_targets

    spec = resolve_model(cfg.teacher, kind="reader")
    tok = AutoTokenizer.from_pretrained(spec.path)
    teacher = AutoModelForQuestionAnswering.from_pretrained(spec.path, dtype=torch.float32, use_safetensors=True)
    teacher.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    targets = teacher_targets(teacher, tok, [e.question for e in examples], [e.context for e in examples], windows,
                              batch_size=cfg.eval_batch_size, progress=progress, bf16=precision == "bf16")
    for feat, (start, end) in zip(feats, targets, strict=True):
        feat["teacher_start"], feat["teacher_end"] = start.tolist(), end.tolist()
    del teacher


class _DistillCollator:
    """Pads like ``base`` and adds the teacher targets, padded with MASKED, as float tensors."""

    def __init__(self, base) -> None:
        self.base = base

    def __call__(self, features: list[dict]) -> dict:
        plain = [{k: v for k, v in f.items() if not k.startswith("teacher_")} for f in features]
        batch = self.base(plain)
        if "teacher_start" in features[0]:
            length = batch["input_ids"].shape[1]
            for key in ("teacher_start", "teacher_end"):
                rows = [f[key] + [MASKED] * (length - len(f[key])) for f in features]
                batch[key] = torch.tensor(rows, dtype=torch.float32)
        return batch


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


class _CurveRecorder(TrainerCallback):
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


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Run one fine-tuning job end to end; returns the final metrics dict."""
    from rag_qa.models import resolve_model  # local import: keeps `rag_qa train --help` fast

    t0 = time.time()
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    base = resolve_model(cfg.base, kind="encoder")
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    # fp32 master weights whatever dtype the checkpoint was saved in (ours ship as fp16, and
    # transformers 5 loads a checkpoint's own dtype by default); autocast does the bf16/fp16 part
    model = AutoModelForQuestionAnswering.from_pretrained(base.path, dtype=torch.float32, use_safetensors=True)

    train_ex, skipped_train = load_examples(cfg.train)
    eval_ex, skipped_eval = load_examples(cfg.eval)
    for s in skipped_train + skipped_eval:
        print(f"skipped {s.where}: {s.reason}")
    train_ex = _subsample(train_ex, cfg.max_train_examples, cfg.seed)
    eval_ex = _subsample(eval_ex, cfg.max_eval_examples, cfg.seed)
    train_wins: list = []
    feats = train_features(
        tokenizer, train_ex, cfg.max_length, cfg.doc_stride, cfg.negative_keep, cfg.seed, progress, train_wins
    )
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
        _add_teacher_targets(cfg, feats, train_ex, train_wins, precision, progress)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
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
        train_sampling_strategy="group_by_length",  # dynamic padding wastes little when lengths match
        report_to="none",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        remove_unused_columns=not cfg.teacher,  # keep the teacher_start/end targets in the batches
    )
    trainer = QATrainer(
        model=model,
        args=args,
        train_dataset=feats,
        eval_dataset=[model_inputs(w) for w in wins],
        data_collator=_DistillCollator(DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)),
        processing_class=tokenizer,
        eval_examples=eval_ex,
        eval_wins=wins,
        qa_config=cfg,
        callbacks=[_CurveRecorder()],
    )
    resume = cfg.resume and any((out / "checkpoints").glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume else None)
    final = trainer.evaluate()

    model = trainer.model
    if cfg.lora:
        model = model.merge_and_unload()  # a plain model again: loads without peft
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(cfg.save_dtype)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(out, max_shard_size="15MB")
    tokenizer.save_pretrained(out)
    seconds = time.time() - t0
    hardware = torch.cuda.get_device_name(0) if use_cuda else f"CPU ({platform.processor() or 'x86_64'})"
    summary = {
        "base": cfg.base,
        "base_path": str(base.path),
        "train_examples": len(train_ex),
        "train_windows": len(feats),
        "eval_examples": len(eval_ex),
        "eval_exact_match": final.get("eval_exact_match"),
        "eval_f1": final.get("eval_f1"),
        "global_steps": trainer.state.global_step,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "precision": precision,
        "hardware": hardware,
        "seconds": round(seconds, 1),
        "config": asdict(cfg),
        "log_history": trainer.state.log_history,
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    plot_curve(trainer.state.log_history, out / "training_curve.png")
    from rag_qa.train.card import write_card

    write_card(out, summary)
    return summary


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

