"""Reader training throughput on this machine, against the compute floor of a step.

Runs the real training path (``rag_qa.train.trainer.train``: Trainer, collator, sampler, loss)
for a few steps per variant, from the shipped weights on a seeded slice of SQuAD train, and
times each optimizer step after two warm-up steps:

* **before**: what the trainer did before issue 13 (attention dropout 0.1 -> PyTorch's math
  attention with a (batch, heads, seq, seq) dropout mask, one AdamW kernel per tensor);
* **after**: today's defaults (attention dropout 0 -> fused flash attention, fused AdamW);
* single changes on top of *after*: fp32 instead of bf16, one thread, no length grouping,
  ``torch.compile``.

The **floor** of a step is its FLOPs (forward + backward = 3x forward, over the real tokens,
with attention over each batch's padded length) over this machine's measured bf16 (or fp32)
matmul rate at the encoder's shapes.  Also timed: building the tokenised features of the
whole training file vs loading them from the on-disk cache.

    .venv/bin/python benchmarks/train_throughput.py [--steps 12] [--out benchmarks/results/train_throughput.json]

Run it with the cores to yourself: anything else running makes every number worse.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from rag_qa.env import set_offline_defaults

set_offline_defaults()

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO.parent / "shared" / "data" / "squad" / "train-v1.1.json.gz"
DEV_MINI = REPO / "tests" / "data" / "squad" / "dev-mini.json"


def matmul_rate(dtype, rows: int = 6656, inner: int = 384, cols: int = 1536, reps: int = 20) -> float:
    """GFLOP/s of one (rows x inner) @ (inner x cols) product, the encoder's feed-forward shape."""
    import torch

    a, w = torch.randn(rows, inner, dtype=dtype), torch.randn(inner, cols, dtype=dtype)
    for _ in range(3):
        a @ w
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ w
    return 2 * rows * inner * cols * reps / (time.perf_counter() - t0) / 1e9


def step_flops(config, real_tokens: int, batch: int, padded_len: int) -> float:
    """Forward + backward FLOPs of one step: 6 x (linear params) per real token, plus attention
    (QK^T and AV: 4 x seq x hidden per token per layer) over the padded length."""
    h, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = layers * (4 * h * h + 2 * h * ff) + 2 * h  # + the span head
    attention = layers * 4 * padded_len * h * padded_len * batch
    return 3 * (2 * linear * real_tokens + attention)


class StepTimer:
    """Trainer callback: wall time and batch shape of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.t = 0.0

    def callback(self):
        from transformers import TrainerCallback

        timer = self

        class _CB(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer.t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                timer.times.append(time.perf_counter() - timer.t)

        return _CB()


class BatchShapes:
    """Wraps the collator to record (windows, padded length, real tokens) of each batch."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int, int]] = []


def run_variant(name: str, steps: int, cache: Path, threads: int | None = None, **overrides) -> dict:
    import torch

    from rag_qa.train.config import TrainConfig
    from rag_qa.train.loop import QACollator
    from rag_qa.train.trainer import train

    shapes = BatchShapes()
    original = QACollator.__call__

    def recording(self, items):
        batch = original(self, items)
        if "start_positions" in batch:
            shapes.shapes.append((int(batch["input_ids"].shape[0]), int(batch["input_ids"].shape[1]),
                                  int(batch["attention_mask"].sum())))
        return batch

    QACollator.__call__ = recording
    timer = StepTimer()
    try:
        with tempfile.TemporaryDirectory() as out:
            cfg = TrainConfig(train=str(TRAIN), eval=str(DEV_MINI), output=out,
                              base=str(REPO / "models" / "minilm-squad"),
                              max_steps=steps + 2, eval_steps=10_000, save_steps=10_000, logging_steps=10_000,
                              max_train_examples=4000, max_eval_examples=4, feature_cache=str(cache),
                              threads=threads, save_dtype="float16", **overrides)
            train(cfg, progress=False, callbacks=[timer.callback()])
    finally:
        QACollator.__call__ = original
    times = timer.times[2:]
    used = shapes.shapes[2 : 2 + len(times)]
    windows = sum(s[0] for s in used)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(REPO / "models" / "minilm-squad")
    flops = statistics.fmean(step_flops(config, real, n, length) for n, length, real in used)
    real = sum(s[2] for s in used)
    padded = sum(s[0] * s[1] for s in used)
    return {"variant": name, "s_per_step": round(statistics.median(times), 3),
            "windows_per_s": round(windows / sum(times), 2), "windows_per_step": round(windows / len(times), 1),
            "padding_waste": round(1 - real / padded, 3), "gflop_per_step": round(flops / 1e9, 1),
            "threads": threads or torch.get_num_threads(), "steps": len(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=12, help="timed steps per variant (after 2 warm-up steps)")
    ap.add_argument("--variants", default="before,after,fp32,one-thread,no-grouping,compile")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "train_throughput.json"))
    args = ap.parse_args()
    import torch
    from transformers import AutoTokenizer

    from rag_qa.qa_data import load_examples
    from rag_qa.train.config import TrainConfig
    from rag_qa.train.data import load_train_features

    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    rates = {"bf16": round(matmul_rate(torch.bfloat16), 1), "fp32": round(matmul_rate(torch.float32), 1)}
    print(f"matmul GFLOP/s: {rates}", flush=True)

    # features for the whole training file: built from scratch vs loaded from the cache
    tok = AutoTokenizer.from_pretrained(REPO / "models" / "minilm-squad")
    with tempfile.TemporaryDirectory() as cache_dir:
        cfg = TrainConfig(train=str(TRAIN), eval=str(DEV_MINI), output="-", feature_cache=cache_dir)
        examples, _ = load_examples(TRAIN)
        t0 = time.perf_counter()
        feats = load_train_features(cfg, tok, examples, progress=False)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_train_features(cfg, tok, examples, progress=False)
        loaded = time.perf_counter() - t0
    features = {"windows": feats.n_windows, "build_s": round(built, 1), "cache_load_s": round(loaded, 2)}
    print(f"features: {features}", flush=True)

    variants = {
        # 0.1 is BERT's attention dropout, which the trainer kept before (the shipped config now says 0)
        "before": {"attention_dropout": 0.1, "optim": "adamw_torch"},
        "after": {},
        "fp32": {"precision": "fp32"},
        "one-thread": {"threads": 1},
        "no-grouping": {"length_grouping": False},
        "compile": {"compile": True},
    }
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for name in args.variants.split(","):
            row = run_variant(name, args.steps, Path(cache), **variants[name])
            rate = rates["fp32" if name == "fp32" else "bf16"]
            row["floor_s_per_step"] = round(row["gflop_per_step"] / rate, 3)
            row["x_floor"] = round(row["s_per_step"] / row["floor_s_per_step"], 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"cores": cores, "matmul_gflops": rates, "features": features, "variants": rows,
              "speedup_after_vs_before": None}
    by = {r["variant"]: r for r in rows}
    if "before" in by and "after" in by:
        result["speedup_after_vs_before"] = round(by["before"]["s_per_step"] / by["after"]["s_per_step"], 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
