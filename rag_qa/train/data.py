"""What an extractive training run reads: examples, distractor passages, labelled windows, and
the teacher's targets when distilling.

Windows are built once per (data file, tokenizer, windowing, distractor settings, subset, seed)
and cached on disk (:class:`~rag_qa.train.features.TrainFeatures`), so a second run with the
same data starts training at once.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from rag_qa.qa_data import QAExample, load_examples
from rag_qa.train.config import TrainConfig
from rag_qa.train.features import TrainFeatures, build_train_features, features_key, file_digest


def _subsample(examples: list[QAExample], n: int | None, seed: int) -> list[QAExample]:
    if n is None or n >= len(examples):
        return examples
    rng = random.Random(seed)
    return rng.sample(examples, n)


def load_data(cfg: TrainConfig) -> tuple[list[QAExample], list[QAExample]]:
    """(training, dev) examples, each a seeded subset when the config asks for one; rows that
    cannot be used are reported on stdout."""
    train_ex, skipped_train = load_examples(cfg.train)
    eval_ex, skipped_eval = load_examples(cfg.eval)
    for s in skipped_train + skipped_eval:
        print(f"skipped {s.where}: {s.reason}")
    return _subsample(train_ex, cfg.max_train_examples, cfg.seed), _subsample(eval_ex, cfg.max_eval_examples, cfg.seed)


def distractor_pairs(cfg: TrainConfig, train_ex: list[QAExample]) -> list[tuple[int, QAExample]]:
    """(question index, distractor passage) pairs: chosen now by BM25 (``distractors``), or read
    from ``distractor_file``; none when neither is set."""
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
    from rag_qa.models import cache_dir

    off = (cfg.feature_cache or "").lower() == "none"
    cache_dir = None if off else Path(cfg.feature_cache or cache_dir() / "features")
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
    feats = build_train_features(tokenizer, train_ex, distractor_pairs(cfg, train_ex), cfg.max_length,
                                 cfg.doc_stride, cfg.negative_keep, cfg.seed, progress)
    if path is not None:
        feats.save(path)
    return feats


def add_teacher_targets(cfg: TrainConfig, feats: TrainFeatures, train_ex: list[QAExample], precision: str,
                        progress: bool) -> None:
    """Run the teacher (``cfg.teacher``) once over every training window; its logits, aligned to
    the student's tokens, join the features as ``teacher_start``/``teacher_end``."""
    from rag_qa.models import resolve_model
    from rag_qa.train.distill import teacher_targets

    # the windows index questions first, then the distractors (the same draw again: same seed)
    examples = train_ex + ([d for _, d in distractor_pairs(cfg, train_ex)] if feats.distractors else [])
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
