"""What an extractive training run reads: examples, distractor passages, labelled windows, and
the teacher's targets when distilling.

Augmented examples (:mod:`rag_qa.train.augment`) follow the originals in the training list; their
distractors come from their own arm's examples of the same article (or table), so a shuffled
paragraph is contrasted with shuffled ones, a table row with its table's other rows.

Windows are built once per (data file, tokenizer, windowing, distractor settings, subset, seed,
augmentation) and cached on disk (:class:`~rag_qa.train.features.TrainFeatures`), so a second
run with the same data starts training at once.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from rag_qa.qa_data import DataError, QAExample, load_examples
from rag_qa.train import augment
from rag_qa.train.config import TrainConfig
from rag_qa.train.features import TrainFeatures, build_train_features, features_key, file_digest, tokenizer_key


def _subsample(examples: list[QAExample], n: int | None, seed: int) -> list[QAExample]:
    if n is None or n >= len(examples):
        return examples
    rng = random.Random(seed)
    return rng.sample(examples, n)


def augment_arms(cfg: TrainConfig) -> dict[str, float]:
    """The config's augmentation arms and ratios ({} when none)."""
    return augment.parse_spec(cfg.augment, cfg.augment_ratio)


def load_data(cfg: TrainConfig) -> tuple[list[QAExample], list[QAExample]]:
    """(training, dev) examples, each a seeded subset when the config asks for one, the training
    subset followed by the augmented examples the config asks for; rows that cannot be used are
    reported on stdout."""
    arms = augment_arms(cfg)
    train_all, skipped_train = load_examples(cfg.train)
    eval_ex, skipped_eval = load_examples(cfg.eval)
    for s in skipped_train + skipped_eval:
        print(f"skipped {s.where}: {s.reason}")
    train_ex = _subsample(train_all, cfg.max_train_examples, cfg.seed)
    if arms:
        if "tables" in arms and not cfg.augment_tables:
            raise DataError("--augment tables needs --augment-tables FILE (make one with "
                            "`python -m ingest.table_questions --out FILE --questions N`)")
        tables = load_examples(cfg.augment_tables)[0] if "tables" in arms else []
        # neighbouring paragraphs come from the whole file, in its order, even when training on a subset
        train_ex, added = augment.augment_examples(train_ex, arms, cfg.seed, augment.article_paragraphs(train_all),
                                                    tables)
        print("augmented: " + ", ".join(f"{arm} +{n:,}" for arm, n in added.items()))
    return train_ex, _subsample(eval_ex, cfg.max_eval_examples, cfg.seed)


def augmented_counts(train_ex: list[QAExample]) -> dict[str, int]:
    """How many examples each augmentation arm added to ``train_ex`` (for metrics and the card)."""
    counts: dict[str, int] = defaultdict(int)
    for ex in train_ex:
        arm = augment.arm_of(ex)
        if arm is not None:
            counts[arm] += 1
    return dict(counts)


def distractor_pairs(cfg: TrainConfig, train_ex: list[QAExample]) -> list[tuple[int, QAExample]]:
    """(question index, distractor passage) pairs: chosen now by BM25 (``distractors``), or read
    from ``distractor_file`` (chosen by this same function where ``gpu pack`` ran, for the augmented
    questions too); none when neither is set.

    The original questions get exactly the distractors they get without augmentation (same call,
    same seed).  Augmented ones (after them in ``train_ex``) get ``distractors`` BM25 choices from
    their own arm's examples of the same article, drawn with a seed of their own.
    """
    if cfg.distractor_file:
        from rag_qa.train.distractors import load_distractors

        return load_distractors(cfg.distractor_file, train_ex)
    originals = next((i for i, ex in enumerate(train_ex) if augment.arm_of(ex) is not None), len(train_ex))
    pairs: list[tuple[int, QAExample]] = []
    if cfg.distractors:
        from rag_qa.train.distractors import add_distractors

        pairs = add_distractors(train_ex[:originals], cfg.distractors, cfg.distractor_pool, cfg.seed)
    if cfg.distractors and originals < len(train_ex):
        from rag_qa.train.distractors import add_distractors

        by_arm: dict[str, list[int]] = defaultdict(list)
        for i in range(originals, len(train_ex)):
            by_arm[augment.arm_of(train_ex[i]) or ""].append(i)
        order = {arm: n for n, arm in enumerate(augment.ARMS)}
        for arm in sorted(by_arm, key=lambda a: order.get(a, len(order))):
            idxs = by_arm[arm]
            chosen = add_distractors([train_ex[i] for i in idxs], cfg.distractors, cfg.distractor_pool,
                                     cfg.seed + 1 + order.get(arm, len(order)))
            pairs += [(idxs[q], d) for q, d in chosen]
    return pairs


def _tokenizer_key(tokenizer, cfg: TrainConfig) -> str:
    """The tokenizer's cache key with truncation as :func:`~rag_qa.spans.encode_windows` sets it for ``cfg``."""
    return tokenizer_key(tokenizer, dict(max_length=cfg.max_length, stride=cfg.doc_stride, strategy="only_second",
                                         direction="right"))


def load_train_features(cfg: TrainConfig, tokenizer, train_ex: list[QAExample], progress: bool) -> TrainFeatures:
    """Distractors + grouped, labelled windows, from the on-disk cache when nothing they depend on
    changed (the data file, the tokenizer, windowing, distractor settings, subset, seed and the
    augmentation: its arms and ratios, the arms' code version, the table-question file)."""
    from rag_qa.models import cache_dir

    off = (cfg.feature_cache or "").lower() == "none"
    cache_dir = None if off else Path(cfg.feature_cache or cache_dir() / "features")
    path = None
    if cache_dir is not None:
        key = features_key(data=file_digest(cfg.train), tokenizer=_tokenizer_key(tokenizer, cfg),
                           max_length=cfg.max_length, doc_stride=cfg.doc_stride, negative_keep=cfg.negative_keep,
                           seed=cfg.seed, subset=cfg.max_train_examples, distractors=cfg.distractors,
                           pool=cfg.distractor_pool,
                           distractor_file=file_digest(cfg.distractor_file) if cfg.distractor_file else None,
                           **_augment_key(cfg))
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


def _augment_key(cfg: TrainConfig) -> dict:
    """What the feature-cache key adds for augmentation: nothing without it (caches made before
    augmentation existed stay valid), else the arms, their code version and the table file's digest."""
    arms = augment_arms(cfg)
    if not arms:
        return {}
    key = {"augment": augment.canonical_spec(arms), "augment_version": augment.AUGMENT_VERSION}
    if "tables" in arms and cfg.augment_tables:
        key["augment_tables"] = file_digest(cfg.augment_tables)
    return key


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
