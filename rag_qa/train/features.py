"""Turning QA examples into model features: labelled windows for training, windows for eval.

Training features are grouped by question: a group holds the windows of the question's own
paragraph and of its distractor passages (:mod:`rag_qa.train.distractors`), so a batch always
carries whole groups and a loss can compare a question's passages with each other.  They are
stored as flat numpy arrays (no Python object per token), cached on disk by a digest of
everything they depend on, and reused across runs and resumes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rag_qa.qa_data import QAExample
from rag_qa.spans import Window, encode_windows, label_window, model_inputs

#: bump when the cached layout or labelling changes, so stale caches are not reused
FEATURES_VERSION = 2


def _batches(items: Sequence, size: int):
    for i in range(0, len(items), size):
        yield i, items[i : i + size]


@dataclass
class TrainFeatures:
    """Labelled training windows in flat arrays, grouped by question (a ``torch`` map-style dataset
    whose items are groups).

    Window ``w`` is ``ids[win[w]:win[w+1]]``; group ``g`` is windows ``group[g]:group[g+1]``.
    ``offsets`` are context character spans (``-1, -1`` for question/special tokens).
    """

    ids: np.ndarray  # (tokens,) int32
    type_ids: np.ndarray | None  # (tokens,) int8, None for models without token types
    offsets: np.ndarray  # (tokens, 2) int32
    win: np.ndarray  # (windows + 1,) int64 token offsets
    start: np.ndarray  # (windows,) int32 start label (cls = no answer here)
    end: np.ndarray  # (windows,) int32
    cls: np.ndarray  # (windows,) int32 cls token position
    example: np.ndarray  # (windows,) int32 index of the (question, passage) pair: questions first, then distractors
    group: np.ndarray  # (groups + 1,) int64 window offsets
    questions: int  # answerable questions among the groups
    distractors: int  # distractor passages among the examples
    teacher_start: np.ndarray | None = None  # (tokens,) float32 teacher logits aligned to our tokens
    teacher_end: np.ndarray | None = None

    # ------------------------------------------------------------------ dataset protocol
    def __len__(self) -> int:
        return len(self.group) - 1

    def __getitem__(self, g: int) -> list[dict]:
        return [self.window_item(w) for w in range(self.group[g], self.group[g + 1])]

    @property
    def n_windows(self) -> int:
        return len(self.start)

    def window_item(self, w: int) -> dict:
        a, b = int(self.win[w]), int(self.win[w + 1])
        item = {"input_ids": self.ids[a:b].tolist(), "attention_mask": [1] * (b - a)}
        if self.type_ids is not None:
            item["token_type_ids"] = self.type_ids[a:b].tolist()
        item["start_positions"], item["end_positions"] = int(self.start[w]), int(self.end[w])
        item["context_mask"] = (self.offsets[a:b, 0] >= 0).astype(np.int8).tolist()
        if self.teacher_start is not None:
            item["teacher_start"] = self.teacher_start[a:b].tolist()
            item["teacher_end"] = self.teacher_end[a:b].tolist()
        return item

    def group_lengths(self) -> list[int]:
        """Tokens in each group (what the length-grouped sampler sorts by)."""
        return (self.win[self.group[1:]] - self.win[self.group[:-1]]).tolist()

    def windows(self) -> list[Window]:
        """Every window as a :class:`Window` (``example`` as in :attr:`example`), e.g. for a teacher."""
        out = []
        for w in range(self.n_windows):
            a, b = int(self.win[w]), int(self.win[w + 1])
            offs = [tuple(o) if o[0] >= 0 else None for o in self.offsets[a:b].tolist()]
            out.append(Window(int(self.example[w]), self.ids[a:b].tolist(), [1] * (b - a),
                              None if self.type_ids is None else self.type_ids[a:b].tolist(), offs, int(self.cls[w])))
        return out

    # ------------------------------------------------------------------ cache
    _ARRAYS = ("ids", "type_ids", "offsets", "win", "start", "end", "cls", "example", "group")

    def save(self, path: Path) -> None:
        """Write to ``path`` (.npz) atomically: a killed run never leaves a half-written cache."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k) for k in self._ARRAYS if getattr(self, k) is not None}
        arrays["counts"] = np.array([self.questions, self.distractors], dtype=np.int64)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TrainFeatures:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: (z[k] if k in z.files else None) for k in cls._ARRAYS}
            questions, distractors = (int(x) for x in z["counts"])
        return cls(**arrays, questions=questions, distractors=distractors)


#: below this many (question, passage) pairs a process pool costs more than it saves
PARALLEL_MIN = 4096
#: pairs tokenised per task (one progress tick)
BATCH = 256
#: what the pool's workers read (fork shares it; nothing but batch offsets is sent to them)
_WORK: tuple | None = None


def _label_batch(offset: int) -> dict[str, np.ndarray]:
    """The windows of pairs ``offset:offset + BATCH`` of ``_WORK`` with their labels, as flat arrays
    (cheap to send back from a worker): window order as :func:`encode_windows` makes them."""
    tokenizer, everything, max_length, doc_stride = _WORK
    batch = everything[offset : offset + BATCH]
    windows = encode_windows(tokenizer, [e.question for e in batch], [e.context for e in batch], max_length,
                             doc_stride) if batch else []  # (an empty input still gets one, empty, part)
    labels = []
    for w in windows:
        ans = batch[w.example].answers[0] if batch[w.example].answers else None
        s, e = label_window(w, ans["answer_start"] if ans else None, ans["text"] if ans else None)
        labels.append((s, e, w.cls_index, bool(ans) and s == w.cls_index))
    n_tokens = sum(len(w.input_ids) for w in windows)
    return {
        "example": np.array([w.example + offset for w in windows], dtype=np.int64),
        "length": np.array([len(w.input_ids) for w in windows], dtype=np.int64),
        "ids": np.fromiter((t for w in windows for t in w.input_ids), dtype=np.int32, count=n_tokens),
        "type_ids": (np.fromiter((t for w in windows for t in w.token_type_ids), dtype=np.int8, count=n_tokens)
                     if not windows or windows[0].token_type_ids is not None else None),
        "offsets": np.array([o if o is not None else (-1, -1) for w in windows for o in w.offsets],
                            dtype=np.int32).reshape(-1, 2),
        "start": np.array([x[0] for x in labels], dtype=np.int32),
        "end": np.array([x[1] for x in labels], dtype=np.int32),
        "cls": np.array([x[2] for x in labels], dtype=np.int32),
        "negative": np.array([x[3] for x in labels], dtype=bool),  # an answerable pair's window without it
    }


def _workers(pairs: int) -> int:
    """Processes for tokenising ``pairs`` pairs: one for small inputs or where fork is missing, else a core each."""
    if pairs < PARALLEL_MIN or "fork" not in mp.get_all_start_methods():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 16)


def build_train_features(
    tokenizer,
    examples: Sequence[QAExample],
    distractors: Sequence[tuple[int, QAExample]] = (),
    max_length: int = 384,
    doc_stride: int = 128,
    negative_keep: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> TrainFeatures:
    """Labelled windows grouped by question.  The first gold answer is the target; windows without
    it, and every window of a distractor, point at CLS.

    ``negative_keep`` < 1 drops that share of answer-less windows of a question's *own* long
    paragraph (they teach "not in this window" but cost as much compute as positive ones);
    distractor windows are always kept.  ``distractors`` are ``(question index, example)`` pairs.
    Tokenising is per-window Python, so large inputs are spread over ``workers`` forked processes
    (default: every core for 4,096 pairs or more); the features are the same for any count.
    """
    global _WORK
    everything = list(examples) + [d for _, d in distractors]
    owner = np.array(list(range(len(examples))) + [q for q, _ in distractors], dtype=np.int64)
    offsets = range(0, len(everything), BATCH)
    workers = _workers(len(everything)) if workers is None else workers
    _WORK = (tokenizer, everything, max_length, doc_stride)
    try:
        if workers > 1:
            with mp.get_context("fork").Pool(workers) as pool:  # imap: results in batch order
                parts = list(tqdm(pool.imap(_label_batch, offsets), total=len(offsets), desc="tokenising train",
                                  unit="batch", disable=not progress))
        else:
            parts = [_label_batch(o) for o in tqdm(offsets, desc="tokenising train", unit="batch",
                                                   disable=not progress)]
        parts = parts or [_label_batch(0)]
    finally:
        _WORK = None
    has_types = all(p["type_ids"] is not None for p in parts)  # None only from a tokenizer without token types
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "type_ids" or has_types}
    has_types = has_types and len(cat["example"]) > 0
    # (windows,) which windows stay: the same seeded draws, in window order, as one loop over them would make
    rng = random.Random(seed)
    keep = np.ones(len(cat["example"]), dtype=bool)
    for w in np.flatnonzero(cat["negative"]):
        keep[w] = rng.random() < negative_keep
    # windows grouped by question (a stable sort keeps each question's windows in the order they were made),
    # then their tokens gathered in that order
    kept = np.flatnonzero(keep)
    order = kept[np.argsort(owner[cat["example"][kept]], kind="stable")]
    first_token = np.concatenate([[0], np.cumsum(cat["length"])])[:-1]  # (windows,) before filtering
    lengths = cat["length"][order]
    win = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = np.repeat(first_token[order] - win[:-1], lengths) + np.arange(win[-1])  # (kept tokens,)
    per_question = np.bincount(owner[cat["example"][order]], minlength=len(examples))
    return TrainFeatures(
        ids=cat["ids"][tokens], type_ids=cat["type_ids"][tokens] if has_types else None,
        offsets=cat["offsets"][tokens], win=win,
        start=cat["start"][order], end=cat["end"][order], cls=cat["cls"][order],
        example=cat["example"][order].astype(np.int32),
        group=np.concatenate([[0], np.cumsum(per_question[per_question > 0])]).astype(np.int64),
        questions=sum(1 for ex in examples if ex.answers),
        distractors=len(distractors),
    )


def features_key(**parts) -> str:
    """A digest of everything the features depend on (data, tokenizer, windowing, distractors)."""
    blob = json.dumps({"version": FEATURES_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def tokenizer_key(tokenizer, truncation: dict | None = None) -> str:
    """The tokenizer as cached features depend on it: its serialised form with the truncation state set to
    ``truncation`` (``enable_truncation``'s arguments; None: off) and padding off.  A fast tokenizer's JSON
    carries the truncation and padding of its last call, so hashing it raw keys the same features differently
    before and after the tokenizer is first used."""
    if not getattr(tokenizer, "is_fast", False):
        return tokenizer.name_or_path
    from tokenizers import Tokenizer

    canonical = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy: the caller's stays as it is
    if truncation:
        canonical.enable_truncation(**truncation)
    else:
        canonical.no_truncation()
    canonical.no_padding()
    return canonical.to_str()


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


__all__ = ["TrainFeatures", "build_train_features", "eval_windows", "features_key", "file_digest",
           "model_inputs"]
