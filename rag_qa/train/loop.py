"""The extractive training loop: batches of question groups, the losses, and SQuAD evaluation.

:class:`QATrainer` is the Hugging Face ``Trainer`` with a loss that can mix in a teacher's soft
targets (distillation) and a shared-normalisation term across a question's passages, and an
evaluation that decodes spans with the serving code's decoder (:mod:`rag_qa.spans`) and reports
SQuAD EM/F1.
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch
import torch.nn.functional as F
from transformers import DataCollatorWithPadding, TrainerCallback

from rag_qa.spans import decode_example
from rag_qa.squad_metrics import best_null_threshold, squad_scores
from rag_qa.train.distill import MASKED
from rag_qa.train.sampling import GroupedTrainer


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


class QATrainer(GroupedTrainer):
    """``Trainer`` whose evaluation decodes spans and reports SQuAD EM/F1 (as HF's trainer_qa.py).

    With teacher targets in the batch, the loss mixes the hard start/end cross-entropy with a KL
    term towards the teacher's temperature-softened start/end distributions (DistilBERT/TinyBERT
    recipe); the teacher may use another tokenizer (targets are aligned by character offsets).
    With ``shared_norm`` > 0 a shared-normalisation term over each question's passages is added.
    """

    def __init__(self, *args, eval_examples=None, eval_wins=None, qa_config=None, **kw):
        super().__init__(*args, **kw)
        self.eval_examples, self.eval_wins = eval_examples, eval_wins
        self.qa_config = qa_config

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


def score_predictions(examples, wins, start_logits, end_logits, max_answer_length=30) -> dict:
    """Best span per example -> EM/F1 (and v2.0 splits + best no-answer threshold)."""
    by_example = defaultdict(list)
    for i, w in enumerate(wins):
        by_example[w.example].append(i)
    preds, margins, refs = {}, {}, {}
    for ex_idx, idxs in by_example.items():
        ex = examples[ex_idx]
        spans, _ = decode_example(
            [start_logits[i] for i in idxs],
            [end_logits[i] for i in idxs],
            [wins[i] for i in idxs],
            max_answer_length=max_answer_length,
        )
        preds[ex.id] = ex.context[spans[0].start : spans[0].end] if spans else ""
        # how far the null option beats the chosen span, both of the span's own window (spans rank by it; a
        # null logit of another window is on another input's scale)
        margins[ex.id] = -spans[0].margin if spans else 1e9
        refs[ex.id] = [a["text"] for a in ex.answers]
    metrics = dict(squad_scores(preds, refs))
    if any(not r for r in refs.values()):
        metrics["best_f1"], metrics["best_f1_thresh"] = best_null_threshold(preds, margins, refs)
    return metrics


class EvalPrinter(TrainerCallback):
    """Prints a one-line eval summary so long runs show progress in logs."""

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        if metrics and "eval_f1" in metrics:
            print(
                f"[step {state.global_step}] eval EM {metrics['eval_exact_match']:.2f} "
                f"F1 {metrics['eval_f1']:.2f}",
                flush=True,
            )
