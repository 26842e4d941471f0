"""Turning QA examples into model features: labelled windows for training, windows for eval."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from tqdm.auto import tqdm

from rag_qa.spans import Window, encode_windows, label_window, model_inputs
from rag_qa.train.data import QAExample


def _batches(items: Sequence, size: int):
    for i in range(0, len(items), size):
        yield i, items[i : i + size]


def train_features(
    tokenizer,
    examples: Sequence[QAExample],
    max_length: int = 384,
    doc_stride: int = 128,
    negative_keep: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    windows_out: list[Window] | None = None,
) -> list[dict]:
    """Labelled windows.  The first gold answer is the target; windows without it point at CLS.

    ``negative_keep`` < 1 drops that share of answer-less windows of answerable questions
    (they teach "not in this window" but cost as much compute as positive ones).  With
    ``windows_out``, the :class:`Window` of each feature is appended to it (``example`` indexes
    ``examples``), e.g. for aligning a teacher's logits.
    """
    rng = random.Random(seed)
    feats = []
    for offset, batch in tqdm(
        list(_batches(examples, 256)), desc="tokenising train", unit="batch", disable=not progress
    ):
        windows = encode_windows(
            tokenizer, [e.question for e in batch], [e.context for e in batch], max_length, doc_stride
        )
        for w in windows:
            ex = batch[w.example]
            ans = ex.answers[0] if ex.answers else None
            s, e = label_window(w, ans["answer_start"] if ans else None, ans["text"] if ans else None)
            if ans and s == w.cls_index and rng.random() >= negative_keep:
                continue
            item = model_inputs(w)
            item["start_positions"], item["end_positions"] = s, e
            feats.append(item)
            if windows_out is not None:
                windows_out.append(replace(w, example=w.example + offset))
    return feats


def eval_windows(
    tokenizer,
    examples: Sequence[QAExample],
    max_length: int = 384,
    doc_stride: int = 128,
) -> list[Window]:
    """Unlabelled windows; ``Window.example`` indexes into ``examples``."""
    out: list[Window] = []
    for offset, batch in _batches(examples, 256):
        for w in encode_windows(
            tokenizer, [e.question for e in batch], [e.context for e in batch], max_length, doc_stride
        ):
            out.append(replace(w, example=w.example + offset))  # batch-relative -> index into examples
    return out
